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
    # Simulate the process dying: its tasks stop, nobody heartbeats, nothing is handed back.
    await first.stop(release=False)
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


async def test_shutdown_lets_a_job_finish_within_the_grace_period(store: Store) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def short(job: Job) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.set()

    pool = WorkerPool(
        store, short, concurrency=2, lease_seconds=5, backoff_seconds=0.05, poll_interval=0.02
    )
    await store.enqueue(SPEC, max_attempts=3)
    pool.start()
    await started.wait()
    await pool.stop(grace=5)
    assert finished.is_set()
    [job] = await store.list_jobs()
    assert (job["state"], job["attempts"]) == ("done", 1)


async def test_shutdown_hands_an_unfinished_job_back_without_spending_its_attempt(
    store: Store,
) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def long(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    # One attempt only: had the shutdown spent it, the job would be dead.
    await store.enqueue(SPEC, max_attempts=1)
    first = WorkerPool(
        store, long, concurrency=1, lease_seconds=60, backoff_seconds=0.05, poll_interval=0.02
    )
    first.start()
    await started.wait()
    await first.stop(grace=0.2)
    assert cancelled == [True]
    [job] = await store.list_jobs()
    assert (job["state"], job["attempts"], job["lease_owner"]) == ("queued", 0, None)
    assert "shutdown" in job["last_error"]
    seen: list[int] = []

    async def finishes(job: Job) -> None:
        seen.append(job.attempts)

    # Well inside the 60 s lease: the next worker does not wait for it to lapse.
    second = WorkerPool(
        store, finishes, concurrency=1, lease_seconds=60, backoff_seconds=0.05, poll_interval=0.02
    )
    second.start()
    await wait_for_state(store, "done", timeout=5)
    await second.stop()
    assert seen == [1]


async def test_a_job_that_turns_its_interruption_into_an_error_is_still_handed_back(
    store: Store,
) -> None:
    started = asyncio.Event()

    async def converts(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed while cancelling") from None

    await store.enqueue(SPEC, max_attempts=1)
    pool = WorkerPool(
        store, converts, concurrency=1, lease_seconds=60, backoff_seconds=0.05, poll_interval=0.02
    )
    pool.start()
    await started.wait()
    await pool.stop(grace=0)
    [job] = await store.list_jobs()
    assert (job["state"], job["attempts"]) == ("queued", 0)


async def test_hurry_ends_the_grace_period(store: Store) -> None:
    started = asyncio.Event()

    async def long(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    await store.enqueue(SPEC, max_attempts=2)
    pool = WorkerPool(
        store, long, concurrency=1, lease_seconds=60, backoff_seconds=0.05, poll_interval=0.02
    )
    pool.start()
    await started.wait()
    stopping = asyncio.create_task(pool.stop(grace=3600))
    await asyncio.sleep(0.1)
    assert not stopping.done()
    pool.hurry()
    await asyncio.wait_for(stopping, 10)
    [job] = await store.list_jobs()
    assert (job["state"], job["attempts"]) == ("queued", 0)
