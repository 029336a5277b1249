"""One SQL layer over SQLite (aiosqlite) and PostgreSQL (asyncpg).

The store writes portable SQL with `:name` parameters; each backend adapts the parameter style and
the few DDL differences. Every write happens inside `Database.transaction()`, so a delivery and its
jobs commit together or not at all.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import aiosqlite

Row = dict[str, Any]
Params = Mapping[str, Any]

_PARAM = re.compile(r"(?<!:):([a-zA-Z_][a-zA-Z0-9_]*)")


class IntegrityError(Exception):
    """A unique or foreign-key constraint was violated."""


class Tx(Protocol):
    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; return the number of affected rows."""

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter sets (one round trip where the driver can)."""


class Database(Protocol):
    dialect: str

    def transaction(self) -> Any:
        """An async context manager yielding a `Tx`; commits on success, rolls back on error."""

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def close(self) -> None: ...


# --- SQLite -------------------------------------------------------------------------------------


class _SqliteTx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params | None = None) -> int:
        try:
            cur = await self._conn.execute(sql, dict(params or {}))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        rowcount = cur.rowcount
        await cur.close()
        return rowcount

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        # One trip to aiosqlite's thread instead of three (execute, fetch, close): on the intake
        # path each trip is a thread handoff and an event-loop wake-up.
        try:
            rows = await self._conn.execute_fetchall(sql, dict(params or {}))
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        return [dict(r) for r in rows]

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            cur = await self._conn.executemany(sql, [dict(r) for r in rows])
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        await cur.close()

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


class SqliteDatabase:
    """One connection; writers are serialised by an asyncio lock (SQLite has one writer anyway).

    WAL with synchronous=NORMAL: a committed transaction survives a crash of the process, which
    is what a webhook acknowledgement promises; only a power loss can drop the last few commits.
    """

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.execute("PRAGMA foreign_keys=ON")
        return cls(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            # IMMEDIATE takes the write lock up front, so two processes (serve + worker) sharing
            # the file never deadlock upgrading a read lock.
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        async with self._lock:
            return await _SqliteTx(self._conn).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        await self._conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def _param_names(sql: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in _PARAM.finditer(sql)))


def _to_dollar(sql: str, params: Params | None) -> tuple[str, list[Any]]:
    names: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    converted = _PARAM.sub(repl, sql)
    values = [(params or {})[n] for n in names]
    return converted, values


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params | None = None) -> int:
        import asyncpg

        q, values = _to_dollar(sql, params)
        try:
            status: str = await self._conn.execute(q, *values)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        import asyncpg

        q, values = _to_dollar(sql, params)
        try:
            rows = await self._conn.fetch(q, *values)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc
        return [dict(r) for r in rows]

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        import asyncpg

        if not rows:
            return
        q, _ = _to_dollar(sql, rows[0])
        names = _param_names(sql)
        try:
            await self._conn.executemany(q, [[r[n] for n in names] for r in rows])
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresDatabase:
        import asyncpg

        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgTx(conn)

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        async with self._pool.acquire() as conn:
            return await _PgTx(conn).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        await self._pool.close()


async def connect(url: str) -> SqliteDatabase | PostgresDatabase:
    """`sqlite:///abs/path.db`, `sqlite:///:memory:` or `postgresql://…`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        if path == ":memory:":
            conn = await aiosqlite.connect(":memory:", isolation_level=None)
            conn.row_factory = aiosqlite.Row
            return SqliteDatabase(conn)
        return await SqliteDatabase.open(Path(path))
    if parsed.scheme in ("postgres", "postgresql"):
        return await PostgresDatabase.open(url)
    raise ValueError(
        f"unsupported database URL scheme {parsed.scheme!r}: use sqlite:/// or postgresql://"
    )
