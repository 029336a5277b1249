"""The durable store: deliveries, jobs (a leased queue), loop runs and their step records."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.db import Database, Row, Tx, adapt_ddl
from bot.text import Redactor

SCHEMA = [
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
]


_LEASE_SQL = (
    "UPDATE jobs SET state='running', lease_owner=:w, lease_expires_at=:exp, "
    "attempts=attempts+1, updated_at=:now WHERE id = (SELECT id FROM jobs WHERE "
    "(state='queued' AND run_after <= :now) OR (state='running' AND "
    "lease_expires_at < :now) ORDER BY run_after, id LIMIT 1{lock}) RETURNING *"
)


_INSERT_JOB = (
    "INSERT INTO jobs (delivery_id, kind, repo, installation_id, number, payload, state, "
    "attempts, max_attempts, run_after, created_at, updated_at) VALUES (:delivery, :kind, "
    ":repo, :inst, :number, :payload, 'queued', 0, :max, :now, :now, :now)"
)

#: Deliveries written per transaction at most (6 parameters each, far below SQLite's limit).
MAX_INTAKE_BATCH = 256


def _job_params(
    spec: JobSpec, delivery_id: str | None, max_attempts: int, now: float
) -> dict[str, Any]:
    return {
        "delivery": delivery_id,
        "kind": spec.kind,
        "repo": spec.repo,
        "inst": spec.installation_id,
        "number": spec.number,
        "payload": json.dumps(spec.payload, separators=(",", ":")),
        "max": max_attempts,
        "now": now,
    }


def _settle(fut: asyncio.Future[bool], result: bool | BaseException) -> None:
    if fut.done():  # the request that waited for it went away
        return
    if isinstance(result, BaseException):
        fut.set_exception(result)
    else:
        fut.set_result(result)


class JobState:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True)
class JobSpec:
    """What a handler decides at intake; becomes a `jobs` row in the delivery's transaction."""

    kind: str
    repo: str
    installation_id: int | None
    number: int | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    id: int
    delivery_id: str | None
    kind: str
    repo: str
    installation_id: int | None
    number: int | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_owner: str
    created_at: float = 0.0

    @classmethod
    def from_row(cls, row: Row) -> Job:
        return cls(
            id=int(row["id"]),
            delivery_id=row["delivery_id"],
            kind=row["kind"],
            repo=row["repo"],
            installation_id=row["installation_id"],
            number=row["number"],
            payload=json.loads(row["payload"]),
            attempts=int(row["attempts"]),
            max_attempts=int(row["max_attempts"]),
            lease_owner=row["lease_owner"],
            created_at=float(row.get("created_at") or 0.0),
        )


@dataclass(frozen=True)
class _Delivery:
    id: str
    event: str
    action: str | None
    repo: str | None
    jobs: list[JobSpec]
    max_attempts: int
    now: float


@dataclass(frozen=True)
class StepRecord:
    name: str
    kind: str  # "model" or "deterministic"
    verdict: str
    input: str = ""
    output: str = ""
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    duration_ms: float = 0.0


class Store:
    def __init__(
        self, db: Database, *, clock: Any = time.time, secrets: Iterable[str] = ()
    ) -> None:
        self.db = db
        self._clock = clock
        # What loops record (prompts, model replies, test output, errors) is redacted here,
        # before it is written: token-like strings and the configured secrets never reach
        # the database, whichever loop recorded them.
        self._redact = Redactor(secrets)
        self._pending: list[tuple[_Delivery, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Postgres lets concurrent workers skip each other's candidate rows; SQLite has one writer.
        self._lease_sql = _LEASE_SQL.format(
            lock=" FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
        )

    async def init(self) -> None:
        async with self.db.transaction() as tx:
            for stmt in adapt_ddl(SCHEMA, self.db.dialect):
                await tx.execute(stmt)

    # --- intake ---------------------------------------------------------------------------------

    async def record_delivery(
        self,
        delivery_id: str,
        event: str,
        action: str | None,
        repo: str | None,
        jobs: list[JobSpec],
        *,
        max_attempts: int,
    ) -> bool:
        """Store a delivery and its jobs atomically. False if the delivery id was seen before.

        Returns only after the COMMIT that holds them. Concurrent calls share one transaction
        (group commit): one writer drains everything queued while the previous commit ran, so
        the cost of a commit and of each trip to the database is paid per batch, not per
        delivery, and a lone delivery still commits at once.
        """
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        item = _Delivery(delivery_id, event, action, repo, jobs, max_attempts, self._clock())
        self._pending.append((item, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_INTAKE_BATCH]
            del self._pending[:MAX_INTAKE_BATCH]
            try:
                results = await self._write_deliveries([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                # One bad delivery must not fail its neighbours: write each on its own.
                for item, fut in batch:
                    try:
                        _settle(fut, (await self._write_deliveries([item]))[0])
                    except Exception as single_exc:
                        _settle(fut, single_exc)
                continue
            for (_, fut), ok in zip(batch, results, strict=True):
                _settle(fut, ok)

    async def _write_deliveries(self, items: list[_Delivery]) -> list[bool]:
        params: dict[str, Any] = {}
        values = []
        for i, d in enumerate(items):
            values.append(f"(:id{i}, :event{i}, :action{i}, :repo{i}, :now{i}, :n{i})")
            params.update(
                {
                    f"id{i}": d.id,
                    f"event{i}": d.event,
                    f"action{i}": d.action,
                    f"repo{i}": d.repo,
                    f"now{i}": d.now,
                    f"n{i}": len(d.jobs),
                }
            )
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "INSERT INTO deliveries (id, event, action, repo, received_at, job_count) "  # noqa: S608 - placeholders only
                f"VALUES {', '.join(values)} ON CONFLICT (id) DO NOTHING RETURNING id",
                params,
            )
            fresh = {r["id"] for r in rows}
            results: list[bool] = []
            job_rows = []
            for d in items:
                # The same id twice in one batch: the first one is the delivery, the second a
                # duplicate, exactly as if they had come in separate transactions.
                ok = d.id in fresh
                fresh.discard(d.id)
                results.append(ok)
                if ok:
                    job_rows += [_job_params(spec, d.id, d.max_attempts, d.now) for spec in d.jobs]
            if job_rows:
                await tx.executemany(_INSERT_JOB, job_rows)
        return results

    async def enqueue(self, spec: JobSpec, *, max_attempts: int) -> int:
        async with self.db.transaction() as tx:
            return await self._insert_job(tx, spec, None, max_attempts, self._clock())

    async def _insert_job(
        self, tx: Tx, spec: JobSpec, delivery_id: str | None, max_attempts: int, now: float
    ) -> int:
        row = await tx.fetchone(
            _INSERT_JOB + " RETURNING id", _job_params(spec, delivery_id, max_attempts, now)
        )
        assert row is not None
        return int(row["id"])

    # --- the queue ------------------------------------------------------------------------------

    async def lease(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Take the next ready job, or one whose lease lapsed (its worker died)."""
        now = self._clock()
        async with self.db.transaction() as tx:
            # A job whose lease lapsed on its last allowed attempt is dead, not retried forever.
            await tx.execute(
                "UPDATE jobs SET state='dead', last_error='lease lapsed on the last attempt', "
                "lease_owner=NULL, updated_at=:now WHERE state='running' "
                "AND lease_expires_at < :now AND attempts >= max_attempts",
                {"now": now},
            )
            row = await tx.fetchone(
                self._lease_sql,
                {"w": worker_id, "exp": now + lease_seconds, "now": now},
            )
        return Job.from_row(row) if row else None

    async def heartbeat(self, job: Job, lease_seconds: float) -> bool:
        """Extend the lease; False if another worker has taken the job over."""
        now = self._clock()
        async with self.db.transaction() as tx:
            n = await tx.execute(
                "UPDATE jobs SET lease_expires_at=:exp, updated_at=:now WHERE id=:id "
                "AND lease_owner=:w AND state='running'",
                {"exp": now + lease_seconds, "now": now, "id": job.id, "w": job.lease_owner},
            )
        return bool(n == 1)

    async def complete(self, job: Job) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET state='done', lease_owner=NULL, updated_at=:now "
                "WHERE id=:id AND lease_owner=:w",
                {"now": self._clock(), "id": job.id, "w": job.lease_owner},
            )

    async def fail(self, job: Job, error: str, *, backoff_seconds: float) -> str:
        """Record a failed attempt: queue a retry with exponential backoff, or go `dead`."""
        now = self._clock()
        if job.attempts >= job.max_attempts:
            state, run_after = JobState.DEAD, now
        else:
            state, run_after = JobState.QUEUED, now + backoff_seconds * 2 ** (job.attempts - 1)
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET state=:state, run_after=:after, last_error=:err, "
                "lease_owner=NULL, updated_at=:now WHERE id=:id AND lease_owner=:w",
                {
                    "state": state,
                    "after": run_after,
                    "err": self._redact(error)[:2000],
                    "now": now,
                    "id": job.id,
                    "w": job.lease_owner,
                },
            )
        return state

    async def list_jobs(self, state: str | None = None, limit: int = 100) -> list[Row]:
        if state:
            return await self.db.fetchall(
                "SELECT * FROM jobs WHERE state=:s ORDER BY id DESC LIMIT :limit",
                {"s": state, "limit": limit},
            )
        return await self.db.fetchall(
            "SELECT * FROM jobs ORDER BY id DESC LIMIT :limit", {"limit": limit}
        )

    async def job_counts(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {r["state"]: int(r["n"]) for r in rows}

    # --- runs and steps -------------------------------------------------------------------------

    async def start_run(self, job_id: int | None, loop: str, repo: str, number: int | None) -> int:
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "INSERT INTO runs (job_id, loop, repo, number, state, started_at) "
                "VALUES (:job, :loop, :repo, :number, 'running', :now) RETURNING id",
                {"job": job_id, "loop": loop, "repo": repo, "number": number, "now": self._clock()},
            )
        assert row is not None
        return int(row["id"])

    async def record_step(self, run_id: int, step: StepRecord) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO steps (run_id, name, kind, model, input, output, prompt_tokens, "
                "completion_tokens, cost, duration_ms, verdict, created_at) VALUES (:run, :name, "
                ":kind, :model, :input, :output, :pt, :ct, :cost, :ms, :verdict, :now)",
                {
                    "run": run_id,
                    "name": step.name,
                    "kind": step.kind,
                    "model": step.model,
                    "input": self._redact.data(step.input),
                    "output": self._redact.data(step.output),
                    "pt": step.prompt_tokens,
                    "ct": step.completion_tokens,
                    "cost": step.cost,
                    "ms": step.duration_ms,
                    "verdict": self._redact.data(step.verdict),
                    "now": self._clock(),
                },
            )
            if step.kind == "model":
                await tx.execute(
                    "UPDATE runs SET model_calls=model_calls+1, prompt_tokens=prompt_tokens+:pt, "
                    "completion_tokens=completion_tokens+:ct, cost=cost+:cost WHERE id=:run",
                    {
                        "pt": step.prompt_tokens,
                        "ct": step.completion_tokens,
                        "cost": step.cost,
                        "run": run_id,
                    },
                )

    async def finish_run(self, run_id: int, state: str, exit_reason: str, detail: str = "") -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE runs SET state=:state, exit_reason=:reason, detail=:detail, "
                "finished_at=:now WHERE id=:id",
                {
                    "state": state,
                    "reason": exit_reason,
                    "detail": self._redact(detail)[:4000],
                    "now": self._clock(),
                    "id": run_id,
                },
            )

    async def get_run(self, run_id: int) -> Row | None:
        return await self.db.fetchone("SELECT * FROM runs WHERE id=:id", {"id": run_id})

    async def list_runs(self, limit: int = 50) -> list[Row]:
        return await self.db.fetchall(
            "SELECT * FROM runs ORDER BY id DESC LIMIT :limit", {"limit": limit}
        )

    async def steps_for(self, run_id: int) -> list[Row]:
        return await self.db.fetchall(
            "SELECT * FROM steps WHERE run_id=:id ORDER BY id", {"id": run_id}
        )

    async def stop_requests(self, repo: str, number: int, since: float) -> list[str]:
        """Who asked (`/loopwright stop`) to stop loops on `repo#number` since `since`.

        Read from the queue itself, so a stop is seen while every worker is busy with the loop
        it stops; the loop checks the requester's permission before it obeys.
        """
        rows = await self.db.fetchall(
            "SELECT payload FROM jobs WHERE kind='stop' AND repo=:repo AND number=:number "
            "AND created_at >= :since ORDER BY id",
            {"repo": repo, "number": number, "since": since},
        )
        who = []
        for row in rows:
            payload = json.loads(row["payload"])
            if isinstance(payload, dict) and payload.get("requires_write_from"):
                who.append(str(payload["requires_write_from"]))
        return who
