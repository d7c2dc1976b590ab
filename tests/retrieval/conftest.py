"""Retrieval fixtures: project settings on either store, the second one a real PostgreSQL
with pgvector started for the session (pgserver)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.config import Settings


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tether.testing.servers import postgres_server

    with postgres_server(str(tmp_path_factory.mktemp("pgdata"))) as url:
        yield url


def fresh_database(url: str) -> str:
    """A new empty database on the server at ``url``: each test starts from nothing."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}{'?' + query if query else ''}"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, project: Path) -> Settings:
    """Settings for a project in the test's folder, on the embedded store or PostgreSQL."""
    url = None
    if request.param == "postgres":
        url = fresh_database(request.getfixturevalue("postgres"))
    return Settings(home=project / ".tether", database_url=url)
