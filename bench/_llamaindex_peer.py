"""The LlamaIndex peer of retrieval_quality.py: LlamaIndex's default ingestion and retrieval
over the same corpus, with the same embedder and the same chunk size as tether's index.

It runs in a virtual environment of its own (bench/.peer-llamaindex, made by
retrieval_quality.py with the requirements below, the ONNX runtime, tokenizers and numpy at
the versions tether's own environment has) as a child process: one job file in, one result
file out, both JSON.

The job names the ONNX model file and tokenizer tether's local:minilm uses (the parent finds
and checks them), the documents, the queries and the settings. The peer wraps that model as a
LlamaIndex ``BaseEmbedding`` computing what tether's does (the attention-masked mean of the
last hidden state, normalised; texts cut to 256 tokens), and then does what the LlamaIndex
documentation shows: ``Document``s with the title as metadata (its default embed mode puts
``title: ...`` above every chunk, as tether embeds the title with each of its chunks),
``VectorStoreIndex.from_documents`` with a ``SentenceSplitter`` (chunk size and overlap
counted in the embedder's tokens) on the default in-memory ``SimpleVectorStore``, and
``as_retriever(similarity_top_k=...)``. The result holds the ingestion time, the node count,
the query times and, per query, the source document of each retrieved node in rank order;
the parent turns those into document rankings and scores them with its own functions.

    bench/.peer-llamaindex/bin/python bench/_llamaindex_peer.py JOB.json RESULT.json
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

# What the peer's environment needs beyond the packages pinned to tether's own versions.
LLAMAINDEX = "llama-index-core==0.14.25"
# Pinned to the versions in tether's environment, so both sides run the same runtime.
SAME_AS_TETHER = ("onnxruntime", "tokenizers", "numpy")


def embedding_class() -> Any:
    """A LlamaIndex BaseEmbedding over tether's MiniLM ONNX file (defined here so that
    importing this module needs no LlamaIndex: the parent reads the constants above)."""
    import numpy as np
    import onnxruntime as ort
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr
    from tokenizers import Tokenizer

    class MiniLMEmbedding(BaseEmbedding):
        """all-MiniLM-L6-v2 as int8 ONNX: masked mean pooling, unit length, 256 tokens."""

        _tokenizer: Any = PrivateAttr()
        _session: Any = PrivateAttr()

        def __init__(
            self, model: str, tokenizer: str, window: int, threads: int | None, **kwargs: Any
        ) -> None:
            super().__init__(model_name="all-MiniLM-L6-v2 (int8 ONNX)", **kwargs)
            self._tokenizer = Tokenizer.from_file(tokenizer)
            self._tokenizer.enable_truncation(max_length=window)
            self._tokenizer.no_padding()
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            options.log_severity_level = 3
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

        @classmethod
        def class_name(cls) -> str:
            return "MiniLMEmbedding"

        def _vectors(self, texts: list[str]) -> list[list[float]]:
            encodings = self._tokenizer.encode_batch(texts)
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(texts), width), dtype=np.int64)
            mask = np.zeros((len(texts), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            (hidden,) = self._session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            unit = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
            return [row.tolist() for row in unit]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._vectors([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._vectors([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._vectors(texts)

    return MiniLMEmbedding


def run(job: dict[str, Any]) -> dict[str, Any]:
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from tokenizers import Tokenizer

    # Chunk sizes in the embedder's own tokens, counted as tether counts them (no special
    # tokens, no truncation). LlamaIndex's default tokenizer (tiktoken) would also need a
    # download, which an offline machine cannot make.
    counter = Tokenizer.from_file(job["tokenizer"])
    counter.no_truncation()
    counter.no_padding()

    def tokenize(text: str) -> list[int]:
        ids: list[int] = counter.encode(text, add_special_tokens=False).ids
        return ids

    Settings.tokenizer = tokenize
    documents = [
        Document(id_=d["id"], text=d["text"], metadata={"title": d["title"]} if d["title"] else {})
        for d in job["documents"]
    ]
    started = time.perf_counter()
    embed_model = embedding_class()(
        job["model"],
        job["tokenizer"],
        job["window"],
        job["threads"],
        embed_batch_size=job["batch_size"],
    )
    splitter = SentenceSplitter(
        chunk_size=job["chunk_size"], chunk_overlap=job["chunk_overlap"], tokenizer=tokenize
    )
    index = VectorStoreIndex.from_documents(
        documents, embed_model=embed_model, transformations=[splitter]
    )
    ingest_s = time.perf_counter() - started

    retriever = index.as_retriever(similarity_top_k=job["top_k"])
    ranked: dict[str, list[str]] = {}
    started = time.perf_counter()
    for query_id, text in job["queries"].items():
        ranked[query_id] = [hit.node.ref_doc_id or "" for hit in retriever.retrieve(text)]
    query_s = time.perf_counter() - started
    return {
        "ingest_s": ingest_s,
        "query_s": query_s,
        "nodes": len(index.index_struct.nodes_dict),
        "ranked": ranked,
        "versions": {
            name: metadata.version(name) for name in ("llama-index-core", *SAME_AS_TETHER)
        },
    }


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text("utf-8"))
    Path(sys.argv[2]).write_text(json.dumps(run(job)), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
