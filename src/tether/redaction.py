"""Credentials out of what tether records about calls: spans, cassettes, loss reports.

Redaction happens once, where each record is made: the Traced middleware puts only redacted
values on spans, so the trace store, an OTLP exporter and any processor a user adds all get
the same clean spans; the cassette redacts each interaction before writing it. Removed:
every key tether handed out (``tether.config.secret``), the values of key-like environment
variables, anything shaped like an API key or a bearer token, and the value after a
credential header name (``x-api-key: ...``, ``Authorization: ...``).

It runs on the call path, so it is cheap: the secrets are gathered once per call
(``known_secrets``), and the patterns run only over text holding one of their markers.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from tether.config import secrets_handed_out

REDACTED = "[REDACTED]"
MIN_LENGTH = 8  # shorter values are too likely to be ordinary words to replace everywhere
KEY_ENV = re.compile(r"(_KEY|_TOKEN|_SECRET|_PASSWORD)$")  # variables that hold credentials
# A metadata entry or header whose name says it holds a credential: redacted whole. A bare
# "token" is left out: it is also a log-probability's own field.
SECRET_NAME = re.compile(
    r"(api[-_]?key|authorization|cookie|credential|password|secret|[-_]token)$", re.IGNORECASE
)
SHAPES = re.compile(
    r"(?P<header>(?i:\b(?:x-)?api[-_]?key|\bauthorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(?i:bearer|basic|token)\s+)?[^\s\"'\\,;}]+"
    r"|sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}"
)

_env_names: tuple[int, tuple[str, ...]] = (-1, ())


def known_secrets() -> tuple[str, ...]:
    """Every key tether handed out and the values of key-like environment variables, longest
    first (a key that contains another is replaced whole).

    The names of key-like variables are looked for again only when the environment gains
    or loses a variable; their values, and the keys handed out, are read fresh each time.
    """
    global _env_names
    size = len(os.environ)
    if _env_names[0] != size:
        _env_names = (size, tuple(name for name in os.environ if KEY_ENV.search(name)))
    values = {value for name in _env_names[1] if (value := os.environ.get(name))}
    values.update(secrets_handed_out())
    return _longest_first(frozenset(v for v in values if len(v) >= MIN_LENGTH))


@lru_cache(maxsize=8)
def _longest_first(values: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(values, key=len, reverse=True))


def _replace(match: re.Match[str]) -> str:
    header = match.group("header")
    return header + REDACTED if header else REDACTED


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """``text`` without credentials: the known ``secrets`` (default: known_secrets()) and
    anything shaped like a key, a bearer token or a credential header's value."""
    for value in known_secrets() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    if _may_hold_a_shape(text):
        text = SHAPES.sub(_replace, text)
    return text


def _may_hold_a_shape(text: str) -> bool:
    """Whether ``text`` holds what every match of SHAPES holds: plain ``in`` tests spare the
    regular expression the text that cannot match, which is nearly all of it."""
    lowered = text.lower()
    return (
        "sk-" in text
        or "bearer" in lowered
        or "authorization" in lowered
        or ("api" in lowered and "key" in lowered)
    )


def redact_field(name: str, value: str, secrets: tuple[str, ...]) -> str:
    """A named value (a header, a metadata entry): all of it when the name says credential."""
    return REDACTED if SECRET_NAME.search(name) else redact(value, secrets)


def redact_data(value: Any, secrets: tuple[str, ...]) -> Any:
    """Every string in JSON-like data (dicts, lists, strings) redacted; keys are kept, and
    the value of a key that names a credential (``api-key``, ``Authorization``: a header
    passed through provider_options, say) is redacted whole, whatever its shape."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):  # not Mapping: an ABC check costs more than the rest here
        return {
            key: REDACTED
            if isinstance(key, str) and isinstance(item, str) and SECRET_NAME.search(key)
            else redact_data(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_data(item, secrets) for item in value]
    return value


__all__ = ["REDACTED", "known_secrets", "redact", "redact_data", "redact_field"]
