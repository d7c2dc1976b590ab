"""Shared fixtures: an isolated project folder per test, a real llama.cpp server, and the full
data sets for the tests that need them (``data_sets``, from tests/data_sets.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ("data_sets",)

ROOT = Path(__file__).resolve().parents[1]
# OpenAI's encodings for tiktoken, rebuilt offline by `make test` (scripts/tiktoken_cache.py).
TIKTOKEN_CACHE = ROOT / ".venv" / "tiktoken-cache"
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TIKTOKEN_CACHE))

CLEARED_ENV = (
    "TETHER_MODEL", "TETHER_HOME", "TETHER_CONFIG", "TETHER_TRACING", "TETHER_TRACE_CONTENT",
    "TETHER_TRACE_MAX_CHARS", "TETHER_RECORD", "TETHER_REPLAY", "TETHER_LOCAL_N_CTX",
    "TETHER_LOCAL_THREADS", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL",
)  # fmt: skip


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own empty project folder with no tether settings in the env."""
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the embedded GGUF; yields its base URL."""
    from tether.testing.servers import llama_server as serve

    with serve("smollm2", threads=2) as base_url:
        yield base_url
