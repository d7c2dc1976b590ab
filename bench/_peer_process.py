"""The Instructor peer of structured_extraction.py, as the benchmark drives it: a child
process in its own virtual environment (bench/.peer), one receipt per JSON line, running the
code in _instructor_peer.py against llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as common
from _instructor_peer import INSTRUCTOR
from _sroie import Outcome

PEER_VENV = common.BENCH / ".peer"
# Instructor's modes for an OpenAI-compatible server, its best first. llama.cpp's server
# constrains a forced tool call (TOOLS) to the tool's schema with a grammar; it refuses
# response_format json_schema (JSON_SCHEMA); json_object (JSON) gets a grammar for any JSON;
# MD_JSON asks for a ```json block and is not constrained at all.
PEER_MODES = ("TOOLS", "JSON_SCHEMA", "JSON", "MD_JSON")
SCHEMA_BOUND = ("TOOLS", "JSON_SCHEMA")  # capped as grammar is; the others as repair is
PEER = " (peer)"  # ends every peer contender's name

Contender = Callable[[str], Outcome]


def peer_name(mode: str) -> str:
    return f"instructor {mode}{PEER}"


def peer_python() -> Path:
    """bench/.peer's interpreter, with Instructor installed (made on first use, ~20 s)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {PEER_VENV.relative_to(common.ROOT)} for the peer: {INSTRUCTOR}")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = [str(python), "-c", "import instructor"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        install = [str(python), "-m", "pip", "install", "-q", INSTRUCTOR]
        subprocess.run(install, check=True)
    return python


class PeerProcess:
    """Instructor in its own environment, one receipt per JSON line (bench/_instructor_peer.py)."""

    def __init__(self, base_url: str) -> None:
        script = common.BENCH / "_instructor_peer.py"
        self.process = subprocess.Popen(
            [str(peer_python()), str(script), base_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def contender(self, mode: str, params: dict[str, Any]) -> Contender:
        """The peer in ``mode`` with ``params`` (a None max_tokens is left out: no cap)."""
        sent = {k: v for k, v in params.items() if v is not None}

        def call(prompt: str) -> Outcome:
            assert self.process.stdin is not None and self.process.stdout is not None
            ask = {"prompt": prompt, "mode": mode, "params": sent}
            self.process.stdin.write(json.dumps(ask) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the Instructor peer process ended; see its output above")
            answer = json.loads(line)
            return Outcome(
                answer["seconds"], answer["output_tokens"], 1, answer["fields"], answer["error"]
            )

        return call

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
