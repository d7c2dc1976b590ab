"""A real OpenAI-compatible server for tests: llama-cpp-python's, on a local GGUF.

Tests of code that talks to an OpenAI-compatible endpoint can run it against this server,
offline, instead of a mock (``pip install "llama-cpp-python[server]"``).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

from tether.models.local_files import resolve_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the llama.cpp server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the llama.cpp server at {url} did not start in {seconds:g} s")


@contextlib.contextmanager
def llama_server(
    model: str = "smollm2",
    *,
    n_ctx: int = 2048,
    threads: int | None = None,
    timeout: float = 90,
    embedding: bool = False,
) -> Iterator[str]:
    """Serve ``model`` (an embedded model's name or a GGUF path) on a free loopback port;
    yields the base URL (``http://127.0.0.1:PORT/v1``), whose model name is ``model``'s
    short name, and stops the server on exit. ``embedding`` serves ``/v1/embeddings``."""
    path = resolve_path(model)
    alias = model if "/" not in model else path.stem
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(path),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
        "--model_alias", alias,
    ]  # fmt: skip
    if threads:
        command += ["--n_threads", str(threads)]
    if embedding:
        command += ["--embedding", "true"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            try:
                _wait_for(f"{base_url}/models", process, timeout)
            except RuntimeError as exc:
                log.seek(0)
                tail = log.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"{exc}; its last output:\n{tail}") from exc
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def postgres_server(folder: str) -> Iterator[str]:
    """A real PostgreSQL with pgvector (the PyPI package ``pgserver`` bundles both) with its
    data in ``folder``, on a Unix socket; yields its URL and stops it on exit."""
    from pgserver.postgres_server import get_server

    server = get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
