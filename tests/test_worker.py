"""The worker pool with a real store: heartbeats keep long jobs, failures retry, crashes resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import db as dbmod
from bot.store import Job, JobSpec, Store
from bot.worker import WorkerPool


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    database = await dbmod.connect(f"sqlite:///{tmp_path / 'q.db'}")
    s = Store(database)
    await s.init()
    yield s
    await database.close()


async def wait_for_state(store: Store, state: str, n: int = 1, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if (await store.job_counts()).get(state, 0) >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {state} job: {await store.job_counts()}")


SPEC = JobSpec(kind="triage", repo="o/r", installation_id=1, number=1)


async def test_heartbeat_keeps_a_job_longer_than_its_lease(store: Store) -> None:
    runs: list[int] = []

    async def slow(job: Job) -> None:
        runs.append(job.attempts)
        await asyncio.sleep(0.8)  # four lease lengths

    pool = WorkerPool(
        store, slow, concurrency=2, lease_seconds=0.2, backoff_seconds=0.05, poll_interval=0.02
    )
    await store.enqueue(SPEC, max_attempts=3)
    pool.start()
    await wait_for_state(store, "done")
    await pool.stop()
    assert runs == [1], "a heartbeating job must not be leased a second time"


async def test_failure_is_retried_then_succeeds(store: Store) -> None:
    attempts: list[int] = []

    async def flaky(job: Job) -> None:
        attempts.append(job.attempts)
        if job.attempts == 1:
            raise RuntimeError("transient")

    pool = WorkerPool(
        store, flaky, concurrency=1, lease_seconds=5, backoff_seconds=0.05, poll_interval=0.02
    )
    await store.enqueue(SPEC, max_attempts=3)
    pool.start()
    await wait_for_state(store, "done")
    await pool.stop()
    assert attempts == [1, 2]


async def test_a_crashed_worker_job_is_picked_up_by_another(store: Store) -> None:
    started = asyncio.Event()

    async def hangs(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    first = WorkerPool(
        store, hangs, concurrency=1, lease_seconds=0.3, backoff_seconds=0.05, poll_interval=0.02
    )
    await store.enqueue(SPEC, max_attempts=3)
    first.start()
    await started.wait()
    # Simulate the process dying: its tasks stop and nobody heartbeats any more.
    await first.stop()
    seen: list[int] = []

    async def finishes(job: Job) -> None:
        seen.append(job.attempts)

    second = WorkerPool(
        store, finishes, concurrency=1, lease_seconds=0.3, backoff_seconds=0.05, poll_interval=0.02
    )
    second.start()
    await wait_for_state(store, "done")
    await second.stop()
    assert seen == [2]
