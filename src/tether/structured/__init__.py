"""Structured outputs: a Pydantic model in, a validated object out.

``model.generate(prompt, output=Invoice)`` (that is, ``tether.structured.generate(model,
prompt, Invoice)``), ``tether.extract(text, Invoice)`` and ``tether.classify(text, labels)``
pick how to get valid JSON:

- ``native``: the provider's own structured-output mode (OpenAI's strict json_schema);
- ``grammar``: constrained decoding for local models (a llama.cpp grammar built from the
  schema), valid by construction;
- ``repair``: for models with neither: ask for JSON, validate, send the errors back, retry.

``auto`` (the default) constrains the answer when the model can, and otherwise falls back to
``repair`` with a warning. Every attempt is an ordinary traced call.
"""

from tether.structured.classify import Classification, aclassify, classify
from tether.structured.extract import aextract, extract
from tether.structured.generate import Strategy, agenerate, generate
from tether.structured.partial import Partial
from tether.structured.stream import astream, stream
from tether.types import Bounds

__all__ = [
    "Bounds",
    "Classification",
    "Partial",
    "Strategy",
    "aclassify",
    "aextract",
    "agenerate",
    "astream",
    "classify",
    "extract",
    "generate",
    "stream",
]
