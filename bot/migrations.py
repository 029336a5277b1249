"""Numbered schema migrations, one table of applied versions, the same on SQLite and PostgreSQL.

Version 1 is the schema the first release created with `CREATE TABLE IF NOT EXISTS` and no
version table; a database from that release is at version 1 once the table is added, so it is
upgraded like any other. Each later version is a list of statements applied in one transaction
together with its row in `schema_version`: a migration is applied completely or not at all.
Several processes starting at once (serve, workers) serialise on the migration: SQLite's
`BEGIN IMMEDIATE` takes the write lock, PostgreSQL takes a transaction-level advisory lock.

Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.db import Database, Tx

log = logging.getLogger("loopwright.migrations")

#: The advisory lock key that serialises migrations on PostgreSQL (any fixed 64-bit number).
PG_MIGRATION_LOCK = 0x6C77_6D69_6772  # "lwmigr"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Sequence[str]


V1_INITIAL = Migration(
    1,
    "initial schema (deliveries, jobs, runs, steps)",
    [
        """CREATE TABLE IF NOT EXISTS deliveries (
            id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            action TEXT,
            repo TEXT,
            received_at DOUBLE PRECISION NOT NULL,
            job_count INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE IF NOT EXISTS jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id TEXT REFERENCES deliveries(id),
            kind TEXT NOT NULL,
            repo TEXT NOT NULL,
            installation_id BIGINT,
            number INTEGER,
            payload TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            run_after DOUBLE PRECISION NOT NULL,
            lease_owner TEXT,
            lease_expires_at DOUBLE PRECISION,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, run_after)",
        """CREATE TABLE IF NOT EXISTS runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id INTEGER REFERENCES jobs(id),
            loop TEXT NOT NULL,
            repo TEXT NOT NULL,
            number INTEGER,
            state TEXT NOT NULL,
            exit_reason TEXT,
            detail TEXT,
            model_calls INTEGER NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost DOUBLE PRECISION NOT NULL DEFAULT 0,
            started_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION
        )""",
        """CREATE TABLE IF NOT EXISTS steps (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            model TEXT,
            input TEXT,
            output TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost DOUBLE PRECISION NOT NULL DEFAULT 0,
            duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            verdict TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS steps_run ON steps (run_id)",
    ],
)

V2_TARGETS_COSTS_REDELIVERY = Migration(
    2,
    "per-target job locks, queueing locks, spend by installation, redelivery claims",
    [
        # At most one running job per lock key (repo#number); at most one queued job per queue key.
        "ALTER TABLE jobs ADD COLUMN lock_key TEXT",
        "ALTER TABLE jobs ADD COLUMN queue_key TEXT",
        "CREATE INDEX jobs_lock ON jobs (lock_key, state)",
        "CREATE UNIQUE INDEX jobs_queued_once ON jobs (queue_key) WHERE state = 'queued'",
        # Spend windows per repository and installation are summed from the step records.
        "ALTER TABLE runs ADD COLUMN installation_id BIGINT",
        "CREATE INDEX runs_repo ON runs (repo)",
        "CREATE INDEX runs_installation ON runs (installation_id)",
        "CREATE INDEX steps_created ON steps (created_at)",
        """CREATE TABLE spend_reservations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            repo TEXT NOT NULL,
            installation_id BIGINT,
            run_id INTEGER,
            amount DOUBLE PRECISION NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX spend_reservations_repo ON spend_reservations (repo, created_at)",
        # A failed delivery we asked GitHub to redeliver, so no pass or process asks twice.
        """CREATE TABLE redelivery_requests (
            guid TEXT PRIMARY KEY,
            delivery_id BIGINT,
            event TEXT,
            requested_at DOUBLE PRECISION NOT NULL
        )""",
    ],
)

V3_TRIAGE_LEARNING = Migration(
    3,
    "triage decisions and maintainers' corrections, for the per-repository classifier",
    [
        # The type label loopwright applied to an issue, and who decided it.
        """CREATE TABLE triage_decisions (
            repo TEXT NOT NULL,
            number INTEGER NOT NULL,
            label TEXT NOT NULL,
            decider TEXT NOT NULL,
            confidence DOUBLE PRECISION,
            run_id INTEGER,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (repo, number)
        )""",
        # A writer removed or swapped a type label loopwright applied.
        """CREATE TABLE triage_corrections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            repo TEXT NOT NULL,
            number INTEGER NOT NULL,
            applied_label TEXT NOT NULL,
            new_label TEXT,
            by_user TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX triage_corrections_repo ON triage_corrections (repo, number)",
    ],
)

V4_STEP_MESSAGES = Migration(
    4,
    "the chat messages of each model step, as JSON (for `loopwright traces export`)",
    ["ALTER TABLE steps ADD COLUMN messages TEXT"],
)

V5_STAGE_RESULTS = Migration(
    5,
    "each completed stage's typed result, as JSON, so a retried job resumes after it",
    [
        # Keyed by the job, not the run: a retry is a new run of the same job.
        """CREATE TABLE stage_results (
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            stage TEXT NOT NULL,
            result TEXT NOT NULL,
            run_id INTEGER,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job_id, stage)
        )""",
    ],
)

MIGRATIONS: tuple[Migration, ...] = (
    V1_INITIAL,
    V2_TARGETS_COSTS_REDELIVERY,
    V3_TRIAGE_LEARNING,
    V4_STEP_MESSAGES,
    V5_STAGE_RESULTS,
)

#: The version this code needs.
SCHEMA_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


class SchemaTooNew(Exception):
    """The database was migrated by a newer loopwright than this one."""


def adapt(statement: str, dialect: str) -> str:
    """The few DDL differences between the two databases (only the id column type)."""
    if dialect == "postgres":
        return statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
    return statement


async def _current(tx: Tx) -> int:
    row = await tx.fetchone("SELECT MAX(version) AS v FROM schema_version")
    return int(row["v"]) if row and row["v"] is not None else 0


async def current_version(db: Database) -> int:
    """The applied version (0: an empty database, or one from before the version table)."""
    async with db.transaction() as tx:
        await tx.execute(_VERSION_TABLE)
        return await _current(tx)


async def migrate(
    db: Database, *, target: int = SCHEMA_VERSION, migrations: Sequence[Migration] = MIGRATIONS
) -> list[int]:
    """Apply every migration above the database's version up to `target`; returns those applied.

    Each migration runs in its own transaction under the migration lock, and re-reads the
    version inside it, so two processes migrating at once apply each version exactly once.
    """
    applied: list[int] = []
    for migration in migrations:
        if migration.version > target:
            break
        async with db.transaction() as tx:
            if db.dialect == "postgres":
                await tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": PG_MIGRATION_LOCK})
            await tx.execute(_VERSION_TABLE)
            have = await _current(tx)
            if have > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"the database is at schema version {have}, this loopwright knows up to "
                    f"{SCHEMA_VERSION}: upgrade loopwright (never downgrade a migrated database)"
                )
            if have >= migration.version:
                continue
            for statement in migration.statements:
                await tx.execute(adapt(statement, db.dialect))
            await tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (:v, :n, :t)",
                {"v": migration.version, "n": migration.name, "t": time.time()},
            )
        applied.append(migration.version)
        log.debug("applied schema migration %d (%s)", migration.version, migration.name)
    if applied and applied[0] > 1:  # an upgrade, not a new database being created
        log.info("database upgraded to schema version %d (from %d)", applied[-1], applied[0] - 1)
    return applied
