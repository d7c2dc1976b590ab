"""Which files under a folder to ingest.

Patterns are globs over the path relative to the root, with ``/`` between parts: ``*`` and
``?`` match within one part, ``[...]`` a character class, and ``**`` any number of parts,
none included, so ``**/*.md`` matches ``a.md`` as well as ``docs/x/a.md``. A pattern without
a ``/`` matches the file's name at any depth (as in ``.gitignore``): ``*.md`` is ``**/*.md``.
An exclude pattern also prunes a folder it matches, with everything in it.

Hidden files and folders (names starting with ``.``), ``__pycache__`` and ``node_modules``
are skipped unless an include pattern names them in a part of its own that starts with ``.``
or is that name (``.github/**/*.md``, ``**/.env``, ``node_modules/pkg/*.md``). Links to
files are followed; links to folders too, each folder visited once, so a loop ends.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence
from pathlib import Path

from tether.errors import DocumentError

SKIPPED = frozenset({"__pycache__", "node_modules"})


def walk(
    root: Path, *, include: Sequence[str] = ("**/*",), exclude: Sequence[str] = ()
) -> list[Path]:
    """The files under ``root`` that an include pattern matches and no exclude pattern does,
    sorted; ``[root]`` when root is a file. Raises DocumentError when root does not exist."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DocumentError(f"{root} does not exist; give a file or a folder", source=str(root))
    includes = [_compile(p) for p in include]
    excludes = [_compile(p) for p in exclude]
    named = _named(include)
    found: list[tuple[str, Path]] = []
    seen: set[tuple[int, int]] = set()
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            identity = folder.stat()
            entries = list(os.scandir(folder))
        except OSError:  # unreadable or vanished: nothing to ingest there
            continue
        if (identity.st_dev, identity.st_ino) in seen:
            continue
        seen.add((identity.st_dev, identity.st_ino))
        for entry in entries:
            relative = prefix + entry.name
            if _hidden(entry.name) and not any(_fits(entry.name, n) for n in named):
                continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()  # links followed
            except OSError:
                continue
            as_folder = relative + "/" if is_dir else relative  # "build/**" prunes build/
            if any(p.fullmatch(relative) or p.fullmatch(as_folder) for p in excludes):
                continue
            if is_dir:
                pending.append((Path(entry.path), relative + "/"))
            elif is_file and any(p.fullmatch(relative) for p in includes):
                found.append((relative, Path(entry.path)))
    return [path for _, path in sorted(found)]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED


def _named(include: Sequence[str]) -> list[str]:
    """The parts of the include patterns that name a hidden or skipped file or folder."""
    return [part for p in include for part in p.split("/") if part != "**" and _hidden(part)]


def _fits(name: str, part: str) -> bool:
    return fnmatch.fnmatchcase(name, part)


def _compile(pattern: str) -> re.Pattern[str]:
    """A glob as described in the module's docstring, as a regular expression."""
    pattern = pattern.strip("/")
    if "/" not in pattern and pattern != "**":
        pattern = "**/" + pattern
    out: list[str] = []
    parts = pattern.split("/")
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
        else:
            out.append(_part(part) + ("" if last else "/"))
    return re.compile("".join(out))


def _part(part: str) -> str:
    """One path part's glob: fnmatch's rules, but no wildcard crosses a ``/``."""
    out: list[str] = []
    index = 0
    while index < len(part):
        char = part[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and part.find("]", index + 2) != -1:  # "[]...]" holds a "]"
            end = part.find("]", index + 2)
            body = part[index + 1 : end].replace("\\", "\\\\").replace("[", "\\[")
            if body.startswith("!"):
                body = "^" + body[1:]
            elif body.startswith("^"):
                body = "\\" + body
            out.append(f"[{body}]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
