"""Retrieval: documents in, cited answers out.

``tether.index(name)`` opens an Index (documents, chunks, a full-text and a vector index in
the project database, or PostgreSQL); ``Index.ingest`` brings files in incrementally;
``Index.search`` finds chunks by BM25, embeddings or both; ``tether.ask`` answers from them
with every sentence's citation checked. Rerankers (``CrossEncoder``, ``LLMReranker``), query
rewriting (``QueryRewriter``) and contextual enrichment (``tether.index(name, enrich=...)``)
are optional steps around them.
"""

from tether.retrieval.answer import Answer, Grounding, Sentence, aask, ask
from tether.retrieval.chunking import Chunking
from tether.retrieval.indexes import Index, index
from tether.retrieval.ingest import IngestReport
from tether.retrieval.rerank import CrossEncoder, LLMReranker
from tether.retrieval.rewrite import QueryRewriter
from tether.retrieval.types import Chunk, Citation, Document, Hit, Page

__all__ = [
    "Answer",
    "Chunk",
    "Chunking",
    "Citation",
    "CrossEncoder",
    "Document",
    "Grounding",
    "Hit",
    "Index",
    "IngestReport",
    "LLMReranker",
    "Page",
    "QueryRewriter",
    "Sentence",
    "aask",
    "ask",
    "index",
]
