"""``tether chat`` as a person meets it: at a real terminal (a pseudo-terminal, keys typed,
Ctrl-C sent through it, which the terminal turns into SIGINT), and on the embedded model's
defaults."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import common
from tether.cli.common import Interrupted, print_stream
from tether.cli.main import app
from tether.models.base import Model
from tether.tracing.query import recent_calls
from tether.types import Message, Request, Response, StreamEvent, TextDelta

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
FOOTER = re.compile(rb"local:smollm2 \xc2\xb7 (\d+) in / (\d+) out tokens")


class Terminal:
    """A command running on a pseudo-terminal of 100 columns, read and typed into."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes the command, the terminal its controlling one
            try:
                os.execve(sys.executable, [sys.executable, *args], env)
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.pid, self.fd = pid, fd
        self.screen = b""  # everything shown so far, colours removed
        self.read_to = 0  # where the next expect() starts looking
        self.status: int | None = None

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the command has exited and closed the terminal
            data = b""
        if not data:
            return False
        self.screen = ANSI.sub(b"", self.screen + data)
        return True

    def wait_for(self, done: Callable[[bytes], int | None], timeout: float) -> int:
        """Read until ``done(unread screen)`` gives an offset; the next read starts there."""
        deadline = time.monotonic() + timeout
        while (end := done(self.screen[self.read_to :])) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.2)):
                shown = self.screen[self.read_to :].decode(errors="replace")
                raise AssertionError(f"timed out or ended; the terminal shows:\n{shown}")
        self.read_to += end
        return self.read_to

    def expect(self, pattern: bytes | re.Pattern[bytes], timeout: float = 60) -> re.Match[bytes]:
        found: list[re.Match[bytes]] = []

        def match(unread: bytes) -> int | None:
            if hit := re.search(pattern, unread):
                found.append(hit)
                return hit.end()
            return None

        self.wait_for(match, timeout)
        return found[0]

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def exit_code(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.1)  # keep draining, or a full terminal would block the command
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        shown = self.screen[self.read_to :].decode(errors="replace")
        raise AssertionError(f"the command did not exit; the terminal shows:\n{shown}")

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def chat(project: Path) -> Iterator[Terminal]:
    env = {**os.environ, "TETHER_TRACE_CONTENT": "full", "TERM": "xterm"}
    args = ["-m", "tether.cli.main", "chat", "-m", "local:smollm2", "-o", "temperature", "0"]
    terminal = Terminal(args, env)
    yield terminal
    terminal.close()


@pytest.mark.slow  # a process of its own, which loads the model again
def test_ctrl_c_stops_the_answer_keeps_the_history_and_ctrl_c_again_quits(
    chat: Terminal, project: Path
) -> None:
    chat.expect(rb"you> ")
    chat.type(b"Tell me a long story about a dragon.\r")
    chat.expect(rb"model> ")
    begun = chat.read_to
    chat.wait_for(lambda unread: 40 if len(unread) >= 40 else None, 60)  # it is streaming
    chat.type(b"\x03")
    stopped = chat.expect(rb"\r\nanswer stopped", timeout=10)
    shown = chat.screen[begun : chat.read_to - len(stopped[0])].decode()
    shown = shown.replace("^C", "").replace("\r\n", "\n")  # the terminal echoes the key
    assert len(shown) >= 40
    chat.expect(rb"you> ", timeout=10)

    chat.type(b"Say it shorter.\r")
    chat.expect(FOOTER, timeout=120)  # the next turn runs: the model was left free
    chat.expect(rb"you> ")
    # A person is never this quick: Ctrl-C landing after the prompt is drawn but before
    # input() starts reading waits for the next key (CPython checks for signals only when
    # that read is interrupted).
    time.sleep(0.5)
    chat.type(b"\x03")
    assert chat.exit_code(timeout=20) == 0

    second, first = recent_calls(project / ".tether" / "tether.db")
    assert first["prompt"] and second["prompt"]
    history = [(m["role"], m["content"][0]["text"]) for m in json.loads(second["prompt"])]
    assert history == [
        ("user", "Tell me a long story about a dragon."),
        ("assistant", shown),  # what the screen showed of the stopped answer, exactly
        ("user", "Say it shorter."),
    ]


def chat_footer(*options: str, said: str) -> re.Match[str]:
    result = CliRunner().invoke(app, ["chat", "-m", "local:smollm2", *options], input=said)
    assert result.exit_code == 0, result.output
    footer = " ".join(result.stderr.split())  # as one line, however the console wrapped it
    found = re.search(r"local:smollm2 · \d+ in / (\d+) out tokens · .*", footer)
    assert found, result.stderr
    return found


def test_the_ada_conversation_ends_with_a_bounded_answer() -> None:
    # Once answered with one sentence over and over until the 2,048-token window was full.
    footer = chat_footer(said="My name is Ada. Remember it.\n")
    assert int(footer[1]) <= 512  # the embedded model's cap, if nothing ends it sooner


def test_a_looping_answer_is_stopped_and_the_footer_says_why(project: Path) -> None:
    (project / "tether.toml").write_text("[local]\nrepeat_penalty = 1.0\n")  # free to loop
    footer = chat_footer("-o", "temperature", "0", said="My name is Ada. Remember it.\n")
    assert footer[0].endswith("ms · stopped: repeating itself")
    assert int(footer[1]) < 512


class Endless(Model):
    """Streams a word every few milliseconds until its stream is closed."""

    id = "test:endless"

    def __init__(self) -> None:
        self.closed = False

    async def request(self, request: Request) -> Response:
        raise NotImplementedError

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        import asyncio

        try:
            while True:
                await asyncio.sleep(0.005)
                yield TextDelta(text="word ")
        finally:
            self.closed = True


def test_ctrl_c_while_printing_closes_the_stream_and_keeps_what_was_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[str] = []

    def write(text: str) -> None:
        written.append(text)
        if len(written) == 4:
            raise KeyboardInterrupt  # Ctrl-C lands while the terminal is being written to

    monkeypatch.setattr(common, "write", write)
    model = Endless()
    with pytest.raises(Interrupted) as info:
        print_stream(model, "go on")
    assert info.value.text == "word " * 4  # the delta being written counts as shown
    assert model.closed  # at once, not when the stream is garbage-collected
    assert written[-1] == "\n"  # the line is ended for the next prompt


@pytest.mark.parametrize(
    ("shown", "kept"),
    [
        ("Once upon a", [("user", "Tell a tale."), ("assistant", "Once upon a")]),
        (" \n", []),  # nothing worth keeping was shown: the question goes too
    ],
)
def test_a_stopped_turn_leaves_its_question_and_what_was_shown(
    monkeypatch: pytest.MonkeyPatch, shown: str, kept: list[tuple[str, str]]
) -> None:
    import tether
    from tether.cli import chat
    from tether.testing import ScriptedModel

    model = ScriptedModel("The end.")
    monkeypatch.setattr(tether, "model", lambda _id: model)
    calls = iter([Interrupted(shown)])

    def stop_first(chosen: Model, history: list[Message], **kwargs: Any) -> Response:
        if (stop := next(calls, None)) is not None:
            raise stop
        return print_stream(chosen, history, **kwargs)

    monkeypatch.setattr(chat, "print_stream", stop_first)
    result = CliRunner().invoke(app, ["chat"], input="Tell a tale.\nGo on.\n")
    assert result.exit_code == 0, result.output
    assert "answer stopped" in result.stderr
    (request,) = model.requests
    assert [(m.role, m.text) for m in request.messages] == [*kept, ("user", "Go on.")]
