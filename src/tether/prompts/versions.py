"""Every version of every prompt file, kept in the project database.

A version is the content hash of the file; each time a prompt is loaded its text is stored
under (name, version), so ``tether prompt diff NAME@OLD NAME@NEW`` works after the file has
changed. Storing is best effort: a read-only project still loads its prompts.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import time
from pathlib import Path

from tether.config import load_settings
from tether.store import db as store

_warned: set[Path] = set()


def version_of(data: bytes) -> str:
    """The first 12 hex characters of the sha256 of the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:12]


def _db_path() -> Path:
    return load_settings().db_path


def record(name: str, version: str, text: str) -> None:
    """Store this version's text unless it is already there; warn once if we cannot."""
    path = _db_path()
    try:
        db = store.connect(path)
        try:
            with store.transaction(db):
                db.execute(
                    "INSERT OR IGNORE INTO prompt_versions (name, version, text, first_seen_ns) "
                    "VALUES (?, ?, ?, ?)",
                    (name, version, text, time.time_ns()),
                )
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        if path not in _warned:
            _warned.add(path)
            print(
                f"tether: prompt versions are not being stored in {path} ({exc}); "
                "prompts still load, but `tether prompt diff` cannot see older versions",
                file=sys.stderr,
            )


def stored(name: str) -> dict[str, str]:
    """The stored texts of ``name`` by version, oldest first."""
    db = store.connect_readonly(_db_path())
    if db is None:
        return {}
    try:
        rows = db.execute(
            "SELECT version, text FROM prompt_versions WHERE name = ? ORDER BY first_seen_ns",
            (name,),
        ).fetchall()
    except sqlite3.OperationalError:
        return {}  # a database from before prompt versions existed
    finally:
        db.close()
    return {version: text for version, text in rows}
