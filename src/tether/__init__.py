"""tether: a toolkit for building dependable applications on foundation models.

The first call is ``tether.model("local:smollm2")``: a Model with ``generate``/``stream`` and
their async twins ``agenerate``/``astream``; ``tether.extract`` and ``tether.classify`` give
validated objects; ``tether.index`` and ``tether.ask`` give cited answers from documents.
Names load lazily so ``import tether`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "model": "tether.models.registry",
    "Model": "tether.models.base",
    "Message": "tether.types",
    "Request": "tether.types",
    "Response": "tether.types",
    "Params": "tether.types",
    "Bounds": "tether.types",
    "Usage": "tether.types",
    "ToolSpec": "tether.types",
    "StreamEvent": "tether.types",
    "TextDelta": "tether.types",
    "ToolCallDelta": "tether.types",
    "ReasoningDelta": "tether.types",
    "UsageEvent": "tether.types",
    "FinishEvent": "tether.types",
    "ResponseEvent": "tether.types",
    "Settings": "tether.config",
    "load_settings": "tether.config",
    "TetherError": "tether.errors",
    "ConfigError": "tether.errors",
    "ModelNotFound": "tether.errors",
    "UnsupportedParameter": "tether.errors",
    "ModelFileError": "tether.errors",
    "CassetteMiss": "tether.errors",
    "PromptError": "tether.errors",
    "ProviderError": "tether.errors",
    "RateLimited": "tether.errors",
    "Timeout": "tether.errors",
    "Unavailable": "tether.errors",
    "BadRequest": "tether.errors",
    "ContextTooLong": "tether.errors",
    "AuthError": "tether.errors",
    "MalformedResponse": "tether.errors",
    "OutputInvalid": "tether.errors",
    "Refused": "tether.errors",
    "BudgetExceeded": "tether.errors",
    "ApprovalRequired": "tether.errors",
    "InputRejected": "tether.errors",
    "prompt": "tether.prompts",
    "Prompt": "tether.prompts",
    "extract": "tether.structured.extract",
    "aextract": "tether.structured.extract",
    "classify": "tether.structured.classify",
    "aclassify": "tether.structured.classify",
    "Classification": "tether.structured.classify",
    "Partial": "tether.structured.partial",
    "embedder": "tether.models.embeddings",
    "Embedder": "tether.models.embeddings",
    "index": "tether.retrieval.indexes",
    "Index": "tether.retrieval.indexes",
    "ask": "tether.retrieval.answer",
    "aask": "tether.retrieval.answer",
    "Answer": "tether.retrieval.answer",
    "Grounding": "tether.retrieval.answer",
    "Chunking": "tether.retrieval.chunking",
    "Document": "tether.retrieval.types",
    "Chunk": "tether.retrieval.types",
    "Hit": "tether.retrieval.types",
    "Citation": "tether.retrieval.types",
    "DocumentError": "tether.errors",
    "IndexMismatch": "tether.errors",
    "StoreUnavailable": "tether.errors",
}

__all__ = [
    "Answer",
    "ApprovalRequired",
    "AuthError",
    "BadRequest",
    "Bounds",
    "BudgetExceeded",
    "CassetteMiss",
    "Chunk",
    "Chunking",
    "Citation",
    "Classification",
    "ConfigError",
    "ContextTooLong",
    "Document",
    "DocumentError",
    "Embedder",
    "FinishEvent",
    "Grounding",
    "Hit",
    "Index",
    "IndexMismatch",
    "InputRejected",
    "MalformedResponse",
    "Message",
    "Model",
    "ModelFileError",
    "ModelNotFound",
    "OutputInvalid",
    "Params",
    "Partial",
    "Prompt",
    "PromptError",
    "ProviderError",
    "RateLimited",
    "ReasoningDelta",
    "Refused",
    "Request",
    "Response",
    "ResponseEvent",
    "Settings",
    "StoreUnavailable",
    "StreamEvent",
    "TetherError",
    "TextDelta",
    "Timeout",
    "ToolCallDelta",
    "ToolSpec",
    "Unavailable",
    "UnsupportedParameter",
    "Usage",
    "UsageEvent",
    "aask",
    "aclassify",
    "aextract",
    "ask",
    "classify",
    "embedder",
    "extract",
    "index",
    "load_settings",
    "model",
    "prompt",
]

if TYPE_CHECKING:
    from tether.config import Settings, load_settings
    from tether.errors import (
        ApprovalRequired,
        AuthError,
        BadRequest,
        BudgetExceeded,
        CassetteMiss,
        ConfigError,
        ContextTooLong,
        DocumentError,
        IndexMismatch,
        InputRejected,
        MalformedResponse,
        ModelFileError,
        ModelNotFound,
        OutputInvalid,
        PromptError,
        ProviderError,
        RateLimited,
        Refused,
        StoreUnavailable,
        TetherError,
        Timeout,
        Unavailable,
        UnsupportedParameter,
    )
    from tether.models.base import Model
    from tether.models.embeddings import Embedder, embedder
    from tether.models.registry import model
    from tether.prompts import Prompt, prompt
    from tether.retrieval.answer import Answer, Grounding, aask, ask
    from tether.retrieval.chunking import Chunking
    from tether.retrieval.indexes import Index, index
    from tether.retrieval.types import Chunk, Citation, Document, Hit
    from tether.structured.classify import Classification, aclassify, classify
    from tether.structured.extract import aextract, extract
    from tether.structured.partial import Partial
    from tether.types import (
        Bounds,
        FinishEvent,
        Message,
        Params,
        ReasoningDelta,
        Request,
        Response,
        ResponseEvent,
        StreamEvent,
        TextDelta,
        ToolCallDelta,
        ToolSpec,
        Usage,
        UsageEvent,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
