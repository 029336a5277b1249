"""The worker pool: lease jobs, keep their leases alive, run them, retry or bury failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable

from bot.store import Job, JobState, Store

log = logging.getLogger("loopwright.worker")

JobRunner = Callable[[Job], Awaitable[None]]


class LeaseLost(Exception):
    """Another worker took the job over (our heartbeats stopped reaching the store in time)."""


class WorkerPool:
    def __init__(
        self,
        store: Store,
        runner: JobRunner,
        *,
        concurrency: int,
        lease_seconds: float,
        backoff_seconds: float,
        poll_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.runner = runner
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.backoff_seconds = backoff_seconds
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def notify(self) -> None:
        """New work was committed: wake an idle worker now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        for i in range(self.concurrency):
            self._tasks.append(asyncio.create_task(self._loop(f"{self._prefix}:{i}")))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _loop(self, worker_id: str) -> None:
        while True:
            try:
                did_work = await self.run_once(worker_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store itself failed (disk full, DB restart): keep the worker alive.
                log.exception("worker %s: store error", worker_id)
                did_work = False
            if not did_work:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def run_once(self, worker_id: str) -> bool:
        """Lease and run one job. False if there was nothing to do."""
        job = await self.store.lease(worker_id, self.lease_seconds)
        if job is None:
            return False
        log.info(
            "job %d (%s %s#%s) leased by %s, attempt %d/%d",
            job.id,
            job.kind,
            job.repo,
            job.number,
            worker_id,
            job.attempts,
            job.max_attempts,
        )
        work: asyncio.Task[None] = asyncio.ensure_future(self.runner(job))
        beat = asyncio.create_task(self._heartbeat(job, work))
        try:
            await work
        except asyncio.CancelledError:
            if beat.done() and isinstance(beat.exception(), LeaseLost):
                log.warning("job %d: lease lost; another worker owns it now", job.id)
                return True
            raise
        except Exception as exc:
            state = await self.store.fail(
                job,
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
                backoff_seconds=self.backoff_seconds,
            )
            log.warning("job %d failed (%s: %s); now %s", job.id, type(exc).__name__, exc, state)
            if state == JobState.DEAD:
                log.error("job %d is dead after %d attempts", job.id, job.attempts)
        else:
            await self.store.complete(job)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                await beat
        return True

    async def _heartbeat(self, job: Job, work: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not await self.store.heartbeat(job, self.lease_seconds):
                work.cancel()
                raise LeaseLost(str(job.id))
