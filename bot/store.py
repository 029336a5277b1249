"""The durable store: deliveries, jobs (a leased queue), loop runs and their step records."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.db import Database, Row, Tx
from bot.jobs import LoopName
from bot.migrations import migrate
from bot.text import Redactor

#: Lease the next ready job (or one whose worker died: its lease lapsed) whose target is free:
#: no other job with the same lock key holds a live lease. Ready order is `run_after, id`.
_LEASE_SQL = (
    "UPDATE jobs SET state='running', lease_owner=:w, lease_expires_at=:exp, "
    "attempts=attempts+1, updated_at=:now WHERE id = (SELECT j.id FROM jobs j WHERE "
    "((j.state='queued' AND j.run_after <= :now) OR (j.state='running' AND "
    "j.lease_expires_at < :now)) AND (j.lock_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs r "
    "WHERE r.lock_key = j.lock_key AND r.id <> j.id AND r.state='running' AND "
    "r.lease_expires_at >= :now)) ORDER BY j.run_after, j.id LIMIT 1{lock}) RETURNING *"
)

#: PostgreSQL: the advisory lock key that serialises leasing. Under READ COMMITTED two workers
#: could otherwise each see the other's target as free before either commits; leasing is one
#: short statement, so serialising it costs nothing next to the jobs themselves.
PG_LEASE_LOCK = 0x6C77_6C65_6173  # "lwleas"

_INSERT_JOB = (
    "INSERT INTO jobs (delivery_id, kind, repo, installation_id, number, payload, state, "
    "attempts, max_attempts, run_after, lock_key, queue_key, created_at, updated_at) VALUES "
    "(:delivery, :kind, :repo, :inst, :number, :payload, 'queued', 0, :max, :now, :lock, "
    ":qkey, :now, :now)"
)

#: An identical job already waiting in the queue absorbs the new one (a queueing lock).
_COLLAPSE = " ON CONFLICT (queue_key) WHERE state = 'queued' DO NOTHING"

#: Kinds that never wait for their target: `stop` must reach a loop while it runs.
UNLOCKED_KINDS = frozenset({LoopName.STOP})

#: Payload keys that say where a trigger came from, not what it asks: two otherwise equal
#: jobs that differ only in these are the same work.
_PROVENANCE_KEYS = frozenset({"comment_id"})


def lock_key(spec: JobSpec) -> str | None:
    """The target a job writes to: its issue or PR (`owner/name#12`), or for a repository-wide
    job (a failing default branch's tracking issue) the repository and kind. None: no lock."""
    if spec.kind in UNLOCKED_KINDS:
        return None
    if spec.number is not None:
        return f"{spec.repo}#{spec.number}"
    return f"{spec.repo}#{spec.kind}"


def queue_key(spec: JobSpec) -> str | None:
    """Identical queued jobs collapse into one: same kind, target and request."""
    if spec.kind in UNLOCKED_KINDS:
        return None
    request = {k: v for k, v in spec.payload.items() if k not in _PROVENANCE_KEYS}
    canonical = json.dumps(
        [str(spec.kind), spec.repo, spec.number, request], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Deliveries written per transaction at most (6 parameters each, far below SQLite's limit).
MAX_INTAKE_BATCH = 256


def _job_params(
    spec: JobSpec, delivery_id: str | None, max_attempts: int, now: float
) -> dict[str, Any]:
    return {
        "delivery": delivery_id,
        "kind": str(spec.kind),
        "repo": spec.repo,
        "inst": spec.installation_id,
        "number": spec.number,
        "payload": json.dumps(spec.payload, separators=(",", ":")),
        "max": max_attempts,
        "lock": lock_key(spec),
        "qkey": queue_key(spec),
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
    """What a handler decides at intake; becomes a `jobs` row in the delivery's transaction.
    `payload` is the loop's trigger model dumped (`bot.jobs.Trigger.payload()`)."""

    kind: LoopName
    repo: str
    installation_id: int | None
    number: int | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    id: int
    delivery_id: str | None
    #: A `LoopName`, or the plain string of a row whose kind this release has no loop for (it
    #: loads, and the worker buries it: `bot.jobs.loop_name`).
    kind: LoopName | str
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
            kind=_kind(row["kind"]),
            repo=row["repo"],
            installation_id=row["installation_id"],
            number=row["number"],
            payload=json.loads(row["payload"]),
            attempts=int(row["attempts"]),
            max_attempts=int(row["max_attempts"]),
            lease_owner=row["lease_owner"],
            created_at=float(row.get("created_at") or 0.0),
        )


def _kind(kind: str) -> LoopName | str:
    try:
        return LoopName(kind)
    except ValueError:
        return kind


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
    #: A model step's request messages (role/content dicts), kept as JSON for trace export.
    messages: list[dict[str, str]] | None = None


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
            lock=" FOR UPDATE OF j SKIP LOCKED" if db.dialect == "postgres" else ""
        )

    async def init(self) -> None:
        """Bring the schema up to date (numbered migrations, see `bot.migrations`)."""
        await migrate(self.db)

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
                await tx.executemany(_INSERT_JOB + _COLLAPSE, job_rows)
        return results

    async def enqueue(self, spec: JobSpec, *, max_attempts: int) -> int:
        """Queue a job; returns its id, or the id of the identical job already waiting."""
        async with self.db.transaction() as tx:
            return await self._insert_job(tx, spec, None, max_attempts, self._clock())

    async def _insert_job(
        self, tx: Tx, spec: JobSpec, delivery_id: str | None, max_attempts: int, now: float
    ) -> int:
        params = _job_params(spec, delivery_id, max_attempts, now)
        row = await tx.fetchone(_INSERT_JOB + _COLLAPSE + " RETURNING id", params)
        if row is None:
            row = await tx.fetchone(
                "SELECT id FROM jobs WHERE queue_key=:q AND state='queued'", {"q": params["qkey"]}
            )
        assert row is not None
        return int(row["id"])

    # --- the queue ------------------------------------------------------------------------------

    async def lease(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Take the next ready job, or one whose lease lapsed (its worker died), whose target
        (issue or PR) no other job is running on."""
        now = self._clock()
        async with self.db.transaction() as tx:
            if self.db.dialect == "postgres":
                await tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": PG_LEASE_LOCK})
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
        """Mark the job done. A done job never runs again (the same command later is a new
        job), so its stored stage results go with it; a dead job keeps its own for a Retry."""
        async with self.db.transaction() as tx:
            n = await tx.execute(
                "UPDATE jobs SET state='done', lease_owner=NULL, updated_at=:now "
                "WHERE id=:id AND lease_owner=:w",
                {"now": self._clock(), "id": job.id, "w": job.lease_owner},
            )
            if n:
                await tx.execute("DELETE FROM stage_results WHERE job_id=:id", {"id": job.id})

    async def release(self, job: Job, reason: str) -> bool:
        """Hand a job we must interrupt (shutdown) back to the queue at once, without spending
        the attempt its lease took. False if the lease was no longer ours."""
        async with self.db.transaction() as tx:
            n = await tx.execute(
                "UPDATE jobs SET state='queued', attempts=CASE WHEN attempts > 0 THEN "
                "attempts - 1 ELSE 0 END, run_after=:now, lease_owner=NULL, "
                "lease_expires_at=NULL, last_error=:err, updated_at=:now "
                "WHERE id=:id AND lease_owner=:w AND state='running'",
                {
                    "now": self._clock(),
                    "err": self._redact(reason)[:2000],
                    "id": job.id,
                    "w": job.lease_owner,
                },
            )
        return bool(n == 1)

    async def fail(
        self, job: Job, error: str, *, backoff_seconds: float, permanent: bool = False
    ) -> str:
        """Record a failed attempt: queue a retry with exponential backoff, or go `dead` — on
        the last attempt, or at once when the job can never succeed (`permanent`)."""
        now = self._clock()
        if permanent or job.attempts >= job.max_attempts:
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

    async def start_run(
        self,
        job_id: int | None,
        loop: LoopName,
        repo: str,
        number: int | None,
        *,
        installation_id: int | None = None,
    ) -> int:
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "INSERT INTO runs (job_id, loop, repo, number, installation_id, state, started_at) "
                "VALUES (:job, :loop, :repo, :number, :inst, 'running', :now) RETURNING id",
                {
                    "job": job_id,
                    "loop": str(loop),
                    "repo": repo,
                    "number": number,
                    "inst": installation_id,
                    "now": self._clock(),
                },
            )
        assert row is not None
        return int(row["id"])

    async def record_step(self, run_id: int, step: StepRecord) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO steps (run_id, name, kind, model, input, output, prompt_tokens, "
                "completion_tokens, cost, duration_ms, verdict, messages, created_at) VALUES "
                "(:run, :name, :kind, :model, :input, :output, :pt, :ct, :cost, :ms, :verdict, "
                ":msgs, :now)",
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
                    "msgs": None
                    if step.messages is None
                    else json.dumps(self._redact.data(step.messages)),
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

    async def model_steps(
        self, *, since: float | None = None, repo: str | None = None, step: str | None = None
    ) -> list[Row]:
        """Model steps with their run's repo, number and loop, oldest first (for trace export)."""
        where = ["s.kind = 'model'"]
        params: dict[str, Any] = {}
        if since is not None:
            where.append("s.created_at >= :since")
            params["since"] = since
        if repo is not None:
            where.append("r.repo = :repo")
            params["repo"] = repo
        if step is not None:
            where.append("s.name = :step")
            params["step"] = step
        # Only the fixed clauses above are joined; every value is a bound parameter.
        head = "SELECT s.*, r.repo AS repo, r.number AS number, r.loop AS loop FROM steps s "
        sql = head + "JOIN runs r ON r.id = s.run_id WHERE " + " AND ".join(where)
        sql += " ORDER BY s.id"
        return await self.db.fetchall(sql, params)

    async def stop_requests(self, repo: str, number: int, since: float) -> list[str]:
        """Who asked (`/loopwright stop`) to stop loops on `repo#number` since `since`.

        Read from the queue itself, so a stop is seen while every worker is busy with the loop
        it stops; the loop checks the requester's permission before it obeys.
        """
        rows = await self.db.fetchall(
            "SELECT payload FROM jobs WHERE kind=:kind AND repo=:repo AND number=:number "
            "AND created_at >= :since ORDER BY id",
            {"kind": str(LoopName.STOP), "repo": repo, "number": number, "since": since},
        )
        who = []
        for row in rows:
            payload = json.loads(row["payload"])
            if isinstance(payload, dict) and payload.get("requires_write_from"):
                who.append(str(payload["requires_write_from"]))
        return who

    # --- stage results (resume) ----------------------------------------------------------------

    async def save_stage_result(
        self, job_id: int, stage: str, result: Any, *, run_id: int | None = None
    ) -> None:
        """A completed stage's typed result (a JSON document), redacted like every stored
        output; a retry of the job resumes after it (`loops.chart`). The latest write wins."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO stage_results (job_id, stage, result, run_id, created_at) "
                "VALUES (:job, :stage, :result, :run, :now) "
                "ON CONFLICT (job_id, stage) DO UPDATE SET result=excluded.result, "
                "run_id=excluded.run_id, created_at=excluded.created_at",
                {
                    "job": job_id,
                    "stage": stage,
                    "result": json.dumps(self._redact.data(result)),
                    "run": run_id,
                    "now": self._clock(),
                },
            )

    async def stage_results(self, job_id: int) -> dict[str, Any]:
        """The stored results of the job's completed stages, by stage name (parsed JSON)."""
        rows = await self.db.fetchall(
            "SELECT stage, result FROM stage_results WHERE job_id=:job", {"job": job_id}
        )
        return {row["stage"]: json.loads(row["result"]) for row in rows}

    # --- redelivery of missed webhook deliveries ---------------------------------------------

    async def known_deliveries(self, ids: list[str]) -> set[str]:
        """Which of these delivery ids (GitHub's `X-GitHub-Delivery` guids) we have stored."""
        known: set[str] = set()
        for start in range(0, len(ids), MAX_INTAKE_BATCH):
            chunk = ids[start : start + MAX_INTAKE_BATCH]
            params = {f"id{i}": d for i, d in enumerate(chunk)}
            marks = ", ".join(f":id{i}" for i in range(len(chunk)))
            rows = await self.db.fetchall(
                f"SELECT id FROM deliveries WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                params,
            )
            known.update(str(r["id"]) for r in rows)
        return known

    async def claim_redelivery(
        self, guid: str, *, delivery_id: int, event: str | None, now: float | None = None
    ) -> bool:
        """Claim the right to ask GitHub to redeliver `guid`: True for exactly one caller."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "INSERT INTO redelivery_requests (guid, delivery_id, event, requested_at) "
                "VALUES (:g, :d, :e, :now) ON CONFLICT (guid) DO NOTHING RETURNING guid",
                {
                    "g": guid,
                    "d": delivery_id,
                    "e": event,
                    "now": self._clock() if now is None else now,
                },
            )
        return row is not None

    async def redelivery_claimed_at(self, guid: str) -> float | None:
        row = await self.db.fetchone(
            "SELECT requested_at FROM redelivery_requests WHERE guid=:g", {"g": guid}
        )
        return float(row["requested_at"]) if row else None

    async def reclaim_redelivery(self, guid: str, *, claimed_at: float, now: float) -> bool:
        """Take over a claim taken at `claimed_at` (its taker died): True for one caller."""
        async with self.db.transaction() as tx:
            n = await tx.execute(
                "UPDATE redelivery_requests SET requested_at=:now WHERE guid=:g "
                "AND requested_at=:then",
                {"now": now, "g": guid, "then": claimed_at},
            )
        return bool(n == 1)

    async def release_redelivery(self, guid: str) -> None:
        """Give a claim back (the request failed), so a later pass may ask again."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM redelivery_requests WHERE guid=:g", {"g": guid})

    # --- triage decisions and corrections ------------------------------------------------------

    async def record_triage_decision(
        self,
        repo: str,
        number: int,
        *,
        label: str,
        decider: str,
        confidence: float | None,
        run_id: int | None,
    ) -> None:
        """The type label loopwright applied to `repo#number` (the latest decision wins)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO triage_decisions (repo, number, label, decider, confidence, run_id, "
                "created_at) VALUES (:repo, :n, :label, :decider, :conf, :run, :now) "
                "ON CONFLICT (repo, number) DO UPDATE SET label=excluded.label, "
                "decider=excluded.decider, confidence=excluded.confidence, "
                "run_id=excluded.run_id, created_at=excluded.created_at",
                {
                    "repo": repo,
                    "n": number,
                    "label": label,
                    "decider": decider,
                    "conf": confidence,
                    "run": run_id,
                    "now": self._clock(),
                },
            )

    async def triage_decision(self, repo: str, number: int) -> Row | None:
        return await self.db.fetchone(
            "SELECT * FROM triage_decisions WHERE repo=:repo AND number=:n",
            {"repo": repo, "n": number},
        )

    async def record_correction(
        self, repo: str, number: int, *, applied_label: str, new_label: str | None, by_user: str
    ) -> None:
        """A writer removed (`new_label` None) or swapped the type label loopwright applied."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO triage_corrections (repo, number, applied_label, new_label, by_user, "
                "created_at) VALUES (:repo, :n, :applied, :new, :by, :now)",
                {
                    "repo": repo,
                    "n": number,
                    "applied": applied_label,
                    "new": new_label,
                    "by": by_user,
                    "now": self._clock(),
                },
            )

    async def corrections(self, repo: str) -> list[Row]:
        """Every correction of `repo`, oldest first (the latest one per issue is what counts)."""
        return await self.db.fetchall(
            "SELECT * FROM triage_corrections WHERE repo=:repo ORDER BY id", {"repo": repo}
        )

    async def triaged_repos(self) -> list[str]:
        """Repositories with at least one recorded type-label decision."""
        rows = await self.db.fetchall("SELECT DISTINCT repo FROM triage_decisions ORDER BY repo")
        return [str(r["repo"]) for r in rows]

    # --- the dashboard's queries ------------------------------------------------------------
    # Only fixed clauses and column names from fixed lists are joined into the SQL (S608); every
    # value, the repositories included, is a bound parameter.

    async def query_runs(
        self,
        repos: Sequence[str],
        *,
        loop: str | None = None,
        state: str | None = None,
        exit_reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Runs of `repos` only (none when empty), newest first, with the given filters."""
        if not repos:
            return []
        params: dict[str, Any] = {"limit": limit}
        where = [_in_clause("repo", repos, params)]
        for column, value in (("loop", loop), ("state", state), ("exit_reason", exit_reason)):
            if value:
                where.append(f"{column} = :{column}")
                params[column] = value
        if since is not None:
            where.append("started_at >= :since")
            params["since"] = since
        if until is not None:
            where.append("started_at < :until")
            params["until"] = until
        return await self.db.fetchall(
            f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit",  # noqa: S608
            params,
        )

    async def jobs_of(self, repos: Sequence[str], *, limit: int = 200) -> list[Row]:
        """Jobs of `repos` that are waiting, running or dead, newest first."""
        if not repos:
            return []
        params: dict[str, Any] = {"limit": limit}
        clause = _in_clause("repo", repos, params)
        return await self.db.fetchall(
            f"SELECT * FROM jobs WHERE {clause} AND state IN ('queued', 'running', 'dead') "  # noqa: S608
            "ORDER BY id DESC LIMIT :limit",
            params,
        )

    async def get_job(self, job_id: int) -> Row | None:
        return await self.db.fetchone("SELECT * FROM jobs WHERE id=:id", {"id": job_id})

    async def retry_job(self, job_id: int) -> bool:
        """Queue a dead job again with a fresh set of attempts; False if it is not dead."""
        now = self._clock()
        async with self.db.transaction() as tx:
            n = await tx.execute(
                "UPDATE jobs SET state='queued', attempts=0, run_after=:now, lease_owner=NULL, "
                "lease_expires_at=NULL, updated_at=:now WHERE id=:id AND state='dead'",
                {"now": now, "id": job_id},
            )
        return bool(n > 0)

    async def spend_by_day(
        self, repos: Sequence[str], *, by: str, since: float
    ) -> list[tuple[str, str, float, int]]:
        """(UTC day, group, cost, tokens) of `repos` since `since`; `by` is repo, loop or model
        (a model's spend is its steps', the others' their runs')."""
        if not repos:
            return []
        params: dict[str, Any] = {"since": since}
        if by == "model":
            clause = _in_clause("r.repo", repos, params)
            rows = await self.db.fetchall(
                "SELECT s.created_at AS at, s.model AS g, s.cost AS cost, "  # noqa: S608
                "s.prompt_tokens + s.completion_tokens AS tokens FROM steps s "
                f"JOIN runs r ON r.id = s.run_id WHERE {clause} AND s.kind = 'model' "
                "AND s.created_at >= :since",
                params,
            )
        elif by in ("repo", "loop"):
            clause = _in_clause("repo", repos, params)
            rows = await self.db.fetchall(
                f"SELECT started_at AS at, {by} AS g, cost, "  # noqa: S608
                "prompt_tokens + completion_tokens AS tokens FROM runs "
                f"WHERE {clause} AND started_at >= :since",
                params,
            )
        else:
            raise ValueError(f"spend by {by!r}: expected repo, loop or model")
        totals: dict[tuple[str, str], list[float]] = {}
        for r in rows:
            day = time.strftime("%Y-%m-%d", time.gmtime(float(r["at"])))
            cell = totals.setdefault((day, str(r["g"] or "-")), [0.0, 0])
            cell[0] += float(r["cost"] or 0)
            cell[1] += int(r["tokens"] or 0)
        return [(d, g, c, int(t)) for (d, g), (c, t) in sorted(totals.items())]

    async def live_precision(self, repo: str) -> tuple[int, int]:
        """(type labels applied and kept, of them corrected by a writer) for `repo`: a decision
        counts as corrected when the latest correction after it changed or removed its label
        (a writer who put our label back confirmed it)."""
        rows = await self.db.fetchall(
            "SELECT d.label, (SELECT c.new_label FROM triage_corrections c WHERE c.repo = d.repo "
            "AND c.number = d.number AND c.created_at >= d.created_at ORDER BY c.id DESC "
            "LIMIT 1) AS latest, (SELECT COUNT(*) FROM triage_corrections c WHERE c.repo = "
            "d.repo AND c.number = d.number AND c.created_at >= d.created_at) AS n "
            "FROM triage_decisions d WHERE d.repo=:repo",
            {"repo": repo},
        )
        corrected = sum(1 for r in rows if int(r["n"]) and r["latest"] != r["label"])
        return len(rows) - corrected, corrected


def _in_clause(column: str, values: Sequence[str], params: dict[str, Any]) -> str:
    """`column IN (:in0, :in1, …)` with the values bound in `params` (never interpolated)."""
    names = []
    for k, value in enumerate(values):
        params[f"in{k}"] = value
        names.append(f":in{k}")
    return f"{column} IN ({', '.join(names)})"
