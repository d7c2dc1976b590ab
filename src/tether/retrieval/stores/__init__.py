"""Where indexes live: one interface, two implementations with the same behaviour, the
embedded one (the project's SQLite database, FTS5, a vector file) and PostgreSQL (pgvector
and full-text search). One test suite runs against both."""

from tether.retrieval.stores.base import IndexInfo, Store, StoredDocument

__all__ = ["IndexInfo", "Store", "StoredDocument"]
