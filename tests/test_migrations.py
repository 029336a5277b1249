"""Numbered migrations on both databases: a database made by the release before migrations is
upgraded in place with its rows intact, concurrent starts migrate once, a newer schema refuses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot import db as dbmod
from bot import migrations
from bot.store import JobSpec, Store

RELEASE_SCHEMA = Path(__file__).parent / "fixtures" / "schema" / "release-before-migrations.sql"


def _release_statements(dialect: str) -> list[str]:
    text = "\n".join(
        line for line in RELEASE_SCHEMA.read_text().splitlines() if not line.startswith("--")
    )
    statements = [s.strip() for s in text.split("\n;\n") if s.strip().strip(";").strip()]
    return [migrations.adapt(s.rstrip(";").strip(), dialect) for s in statements]


async def _old_release_database(url: str) -> dbmod.SqliteDatabase | dbmod.PostgresDatabase:
    """A database exactly as the previous release left it: its DDL, and rows it wrote."""
    database = await dbmod.connect(url)
    async with database.transaction() as tx:
        for statement in _release_statements(database.dialect):
            await tx.execute(statement)
        await tx.execute(
            "INSERT INTO deliveries (id, event, action, repo, received_at, job_count) "
            "VALUES ('old-1', 'issues', 'opened', 'octo/hello', 10.0, 1)"
        )
        await tx.execute(
            "INSERT INTO jobs (delivery_id, kind, repo, installation_id, number, payload, state, "
            "attempts, max_attempts, run_after, created_at, updated_at) VALUES ('old-1', "
            "'triage', 'octo/hello', 7, 3, :p, 'queued', 0, 4, 10.0, 10.0, 10.0)",
            {"p": json.dumps({"trigger": "issues.opened"})},
        )
        await tx.execute(
            "INSERT INTO runs (job_id, loop, repo, number, state, cost, started_at) "
            "VALUES (NULL, 'triage', 'octo/hello', 2, 'done', 0.25, 5.0)"
        )
    return database


async def test_a_database_from_the_previous_release_is_upgraded_in_place(
    database_url: str,
) -> None:
    database = await _old_release_database(database_url)
    try:
        assert await migrations.current_version(database) == 0
        store = Store(database)
        await store.init()
        assert await migrations.current_version(database) == migrations.SCHEMA_VERSION
        versions = await database.fetchall("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in migrations.MIGRATIONS]
        # The old rows are all there and the queue still works on them.
        assert await store.known_deliveries(["old-1", "never"]) == {"old-1"}
        [old_run] = await store.list_runs()
        assert old_run["cost"] == 0.25 and old_run["installation_id"] is None
        job = await store.lease("w", 30)
        assert job is not None and job.number == 3 and job.payload == {"trigger": "issues.opened"}
        # And the new columns are in use by new rows.
        run_id = await store.start_run(job.id, "triage", "octo/hello", 3, installation_id=7)
        assert (await store.get_run(run_id) or {})["installation_id"] == 7
        await store.enqueue(JobSpec("triage", "octo/hello", 7, 4, {"t": 1}), max_attempts=2)
        [new] = await database.fetchall("SELECT lock_key, queue_key FROM jobs WHERE number=4")
        assert new["lock_key"] == "octo/hello#4" and new["queue_key"]
        assert await store.claim_redelivery("g-1", delivery_id=5, event="issues")
        # Running init again (every process start does) changes nothing.
        await store.init()
        again = await database.fetchall("SELECT version FROM schema_version")
        assert len(again) == len(migrations.MIGRATIONS)
    finally:
        await database.close()


async def test_a_fresh_database_gets_every_migration_once_even_from_concurrent_starts(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        # Two processes share an SQLite file, not a connection: model that with two connections.
        database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = await dbmod.connect(database_url), await dbmod.connect(database_url)
    try:
        applied = await asyncio.gather(migrations.migrate(first), migrations.migrate(second))
        # Every version applied by exactly one of them.
        assert sorted(applied[0] + applied[1]) == [m.version for m in migrations.MIGRATIONS]
        rows = await first.fetchall("SELECT version FROM schema_version")
        assert len(rows) == len(migrations.MIGRATIONS)
    finally:
        await first.close()
        await second.close()


async def test_a_failed_migration_leaves_the_previous_version_and_no_half_schema(
    database_url: str,
) -> None:
    database = await dbmod.connect(database_url)
    broken = migrations.Migration(
        migrations.SCHEMA_VERSION + 1,
        "broken on purpose",
        ["CREATE TABLE half_done (x INTEGER)", "ALTER TABLE no_such_table ADD COLUMN y TEXT"],
    )
    try:
        await migrations.migrate(database)
        with pytest.raises(Exception, match="no_such_table"):
            await migrations.migrate(
                database, target=broken.version, migrations=[*migrations.MIGRATIONS, broken]
            )
        assert await migrations.current_version(database) == migrations.SCHEMA_VERSION
        tables = await database.fetchall(
            "SELECT name FROM sqlite_master WHERE name='half_done'"
            if database.dialect == "sqlite"
            else "SELECT tablename AS name FROM pg_tables WHERE tablename='half_done' "
            "AND schemaname = current_schema()"
        )
        assert tables == [], "a failed migration must roll back all of its statements"
    finally:
        await database.close()


async def test_a_database_migrated_by_a_newer_release_is_refused(database_url: str) -> None:
    database = await dbmod.connect(database_url)
    try:
        await migrations.migrate(database)
        async with database.transaction() as tx:
            await tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (:v, 'future', 0)",
                {"v": migrations.SCHEMA_VERSION + 1},
            )
        with pytest.raises(migrations.SchemaTooNew, match="upgrade loopwright"):
            await Store(database).init()
    finally:
        await database.close()
