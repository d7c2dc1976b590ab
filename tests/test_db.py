"""The project database: migrations and writes are all or nothing."""

import sqlite3
from pathlib import Path

import pytest

from tether.store import db as store


def test_a_failed_write_leaves_nothing_behind(project: Path) -> None:
    conn = store.connect(project / "t.db")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    with pytest.raises(sqlite3.IntegrityError), store.transaction(conn):
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (None,)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_failed_migration_is_rolled_back_and_retried_on_next_open(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("crash in the middle of a migration")

    monkeypatch.setattr(store, "MIGRATIONS", [*store.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        store.connect(project / "m.db")
    plain = sqlite3.connect(project / "m.db")
    assert plain.execute("PRAGMA user_version").fetchone() == (len(store.MIGRATIONS) - 1,)
    tables = {row[0] for row in plain.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables and "spans" in tables
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS[:-1])
    store.connect(project / "m.db")  # opens cleanly afterwards


def test_readonly_open_creates_nothing(project: Path) -> None:
    assert store.connect_readonly(project / "none.db") is None
    assert not (project / "none.db").exists()
