"""Shared fixtures: an isolated project folder per test, and a real llama.cpp server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.models.local import resolve_path

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start in {seconds} s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the embedded GGUF; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_path("smollm2")),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--model_alias", "smollm2", "--n_threads", "2",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(f"{base_url}/models", process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
