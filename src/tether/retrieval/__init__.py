"""Retrieval: documents in, cited answers out.

``tether.index(name)`` opens an Index (documents, chunks, a full-text and a vector index in
the project database, or PostgreSQL); ``Index.ingest`` brings files in incrementally;
``Index.search`` finds chunks by BM25, embeddings or both; ``tether.ask`` answers from them
with every sentence's citation checked.
"""

from tether.retrieval.answer import Answer, Grounding, Sentence, aask, ask
from tether.retrieval.chunking import Chunking
from tether.retrieval.indexes import Index, index
from tether.retrieval.ingest import IngestReport
from tether.retrieval.types import Chunk, Citation, Document, Hit, Page

__all__ = [
    "Answer",
    "Chunk",
    "Chunking",
    "Citation",
    "Document",
    "Grounding",
    "Hit",
    "Index",
    "IngestReport",
    "Page",
    "Sentence",
    "aask",
    "ask",
    "index",
]
