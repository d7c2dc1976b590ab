"""Embedders: text in, unit-length float32 vectors out, traced, costed and cached.

``tether.embedder("local:minilm")`` is the embedded default (all-MiniLM-L6-v2, int8 ONNX, no
torch). ``openai:text-embedding-3-small`` and ``ENDPOINT:name`` (any OpenAI-compatible
``/v1/embeddings``, llama.cpp's server among them) go through the openai SDK;
``sentence-transformers:NAME`` runs a model through that optional extra.
"""

from tether.models.embeddings.backend import Backend, Batch
from tether.models.embeddings.embed import Embedder, embedder

__all__ = ["Backend", "Batch", "Embedder", "embedder"]
