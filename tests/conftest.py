"""Shared fixtures: the scripted model, the database backends (helpers live in tests/support)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.fakemodel import FakeModel, running_model


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModel]:
    async with running_model() as fake:
        yield fake


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


PG_URL = os.environ.get("LOOPWRIGHT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each store test runs on SQLite and, where the local server is up, on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not _postgres_up():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.close()
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()
