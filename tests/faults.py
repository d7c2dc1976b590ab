"""FaultProxy: a loopback HTTP proxy that breaks requests on demand, in front of a real server.

A test queues faults (``proxy.push("429", "drop")``) or sets one for every request
(``proxy.always = "500"``); each request takes the next fault, and a request with none is
forwarded to the upstream server untouched. The proxy runs its own event loop in a daemon
thread, so sync and async clients alike can use it, handles one request per connection, and
stops by itself after ``lifetime`` seconds if the test forgets to.

Faults:
    429       status 429 with ``Retry-After: 1`` and an OpenAI error body
    400 401 500 503 529   that status with an OpenAI error body (529: overloaded)
    hang      accept the request and say nothing until ``hang_s`` passes or the client leaves
    drop      close the connection before any response
    drop_mid  send part of the response head, then close
    cut       forward, but close the connection after ``cut_after`` SSE events
    malformed status 200 and a JSON content type, with a body that breaks off half-way
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

ERRORS: dict[str, tuple[int, str, str, str | None]] = {
    "400": (400, "Invalid value for 'messages'.", "invalid_request_error", "invalid_value"),
    "401": (401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    "429": (429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    "500": (500, "The server had an error while processing your request.", "server_error", None),
    "503": (503, "The engine is currently overloaded.", "server_error", None),
    "529": (529, "Overloaded.", "overloaded_error", None),
}
FAULTS = frozenset({*ERRORS, "hang", "drop", "drop_mid", "cut", "malformed"})
MALFORMED = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "mes'

REASONS = {400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}  # fmt: skip


@dataclass
class Seen:
    """One request that reached the proxy, and what the proxy did with it."""

    path: str
    body: dict[str, Any]
    fault: str | None


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        hang_s: float = 5.0,
        cut_after: int = 3,
        lifetime: float = 120.0,
    ) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, f"upstream needs a host and port: {upstream}"
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.hang_s = hang_s
        self.cut_after = cut_after
        self.lifetime = lifetime
        self.always: str | None = None
        self.seen: list[Seen] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self.port = 0

    # -- the test's side -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def push(self, *faults: str) -> None:
        """Queue faults for the next requests, one each, in order."""
        unknown = set(faults) - FAULTS
        assert not unknown, f"unknown faults {unknown}; known: {sorted(FAULTS)}"
        with self._lock:
            self._faults.extend(faults)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def faults_applied(self) -> list[str | None]:
        with self._lock:
            return [s.fault for s in self.seen]

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._stopping is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the proxy's side ----------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        handlers: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await self._handle(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                handlers.discard(task)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.lifetime)
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    def _next_fault(self, path: str, body: dict[str, Any]) -> str | None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else self.always
            self.seen.append(Seen(path, body, fault))
            return fault

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = [line for line in header_lines if line]
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")),
            0,
        )
        raw_body = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(raw_body) if raw_body else {}
        except ValueError:
            body = {}
        fault = self._next_fault(path, body)
        if fault in ERRORS:
            await self._error(writer, fault)
        elif fault == "hang":
            # say nothing until the client gives up (read returns b"") or hang_s passes
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1), self.hang_s)
        elif fault == "drop":
            return
        elif fault == "malformed":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n" % len(MALFORMED) + MALFORMED
            )
            await writer.drain()
        elif fault == "drop_mid":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-le")
            await writer.drain()
        else:
            await self._forward(method, path, headers, raw_body, writer, cut=fault == "cut")

    async def _error(self, writer: asyncio.StreamWriter, fault: str) -> None:
        status, message, kind, code = ERRORS[fault]
        body = json.dumps(
            {"error": {"message": message, "type": kind, "param": None, "code": code}}
        ).encode()
        extra = "Retry-After: 1\r\n" if status == 429 else ""
        writer.write(
            f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async def _forward(
        self,
        method: str,
        path: str,
        headers: list[str],
        body: bytes,
        writer: asyncio.StreamWriter,
        *,
        cut: bool,
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        try:
            kept = [h for h in headers if not h.lower().startswith(("connection:", "host:"))]
            head = [f"{method} {path} HTTP/1.1", f"host: {self.upstream_host}", *kept]
            up_writer.write(("\r\n".join([*head, "connection: close"]) + "\r\n\r\n").encode())
            up_writer.write(body)
            await up_writer.drain()
            # one request per connection: tell the client not to reuse this one
            response_head = (await up_reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = [
                line for line in response_head.split("\r\n")
                if line and not line.lower().startswith("connection:")
            ]  # fmt: skip
            writer.write(("\r\n".join([*lines, "connection: close"]) + "\r\n\r\n").encode())
            events = 0
            while chunk := await up_reader.read(65536):
                start = 0
                while cut and (found := chunk.find(b"data: ", start)) != -1:
                    events += 1
                    if events > self.cut_after:
                        # send what came before this event, then drop the connection
                        writer.write(chunk[:found])
                        await writer.drain()
                        return
                    start = found + 1
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()
