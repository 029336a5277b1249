"""The worker pool: lease jobs, keep their leases alive, run them, retry or bury failures (at
once when the job can never succeed: `bot.jobs.PermanentJobError`)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable

from bot import logs
from bot import metrics as mx
from bot.jobs import PermanentJobError
from bot.store import Job, JobState, Store

log = logging.getLogger("loopwright.worker")

JobRunner = Callable[[Job], Awaitable[None]]

#: The cancellation message of a job interrupted by a shutdown (`Task.cancel(msg=...)`), so the
#: run it was in can be recorded as interrupted rather than failed.
SHUTDOWN = "loopwright: worker shutting down"


def interrupted_by_shutdown(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError) and SHUTDOWN in exc.args


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
        metrics: mx.Metrics | None = None,
    ) -> None:
        self.store = store
        #: Current in every task the pool starts (None: record nothing).
        self.metrics = metrics
        self.runner = runner
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.backoff_seconds = backoff_seconds
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._release = True
        self._interrupted: set[int] = set()
        self._hurry = asyncio.Event()
        # The job each worker is running, and the task running it, for a shutdown to interrupt.
        self._running: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def notify(self) -> None:
        """New work was committed: wake an idle worker now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        for i in range(self.concurrency):
            # Each worker runs in a context where the pool's metrics are the current ones: the
            # jobs it starts, and everything they call, inherit it.
            ctx = contextvars.copy_context()
            ctx.run(mx._CURRENT.set, self.metrics)
            self._tasks.append(asyncio.create_task(self._loop(f"{self._prefix}:{i}"), context=ctx))

    def hurry(self) -> None:
        """End a shutdown's grace period now (a second SIGTERM/SIGINT)."""
        self._hurry.set()

    @property
    def running_jobs(self) -> list[Job]:
        return [job for job, _ in self._running.values()]

    async def stop(self, grace: float = 0.0, *, release: bool = True) -> None:
        """Stop leasing; give running jobs `grace` seconds to finish; interrupt the rest.

        An interrupted job goes straight back to the queue with its attempt refunded
        (`Store.release`), so another worker takes it at its next poll instead of after the
        lease lapses. `release=False` leaves the leases to lapse, which is what a crash does.
        """
        self._stopping = True
        self._release = release
        self._wake.set()
        if grace > 0 and self._tasks:
            # Until every worker has finished its job, the grace is over, or hurry() is called.
            # (asyncio.wait, unlike gather, does not cancel the tasks when it is cancelled.)
            finished = asyncio.create_task(asyncio.wait(self._tasks))
            hurry = asyncio.create_task(self._hurry.wait())
            await asyncio.wait(
                [finished, hurry], timeout=grace, return_when=asyncio.FIRST_COMPLETED
            )
            finished.cancel()
            hurry.cancel()
            if self._running:
                log.info(
                    "shutdown: %d job(s) still running; handing them back to the queue",
                    len(self._running),
                )
        for job, work in list(self._running.values()):
            self._interrupted.add(job.id)
            work.cancel(SHUTDOWN)
        # Each worker records its interrupted job itself; then nothing is left to wait for.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _loop(self, worker_id: str) -> None:
        while not self._stopping:
            try:
                did_work = await self.run_once(worker_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store itself failed (disk full, DB restart): keep the worker alive.
                log.exception("worker %s: store error", worker_id)
                did_work = False
            if not did_work and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def run_once(self, worker_id: str) -> bool:
        """Lease and run one job. False if there was nothing to do."""
        job = await self.store.lease(worker_id, self.lease_seconds)
        if job is None:
            return False
        # Lines logged about the job, and inside it (the task running it copies this context),
        # carry its id, repository and loop; the scope ends with the job.
        with logs.context(job_id=job.id, repo=job.repo, loop=job.kind):
            return await self._run_leased(worker_id, job)

    async def _reclaimed(self, job: Job) -> bool:
        """Whether this lease took the job over from a worker whose lease lapsed: an earlier
        attempt's run was never finished (a worker that fails or hands back finishes it)."""
        if job.attempts < 2:
            return False
        row = await self.store.db.fetchone(
            "SELECT COUNT(*) AS n FROM runs WHERE job_id=:id AND state='running'", {"id": job.id}
        )
        return bool(row and int(row["n"]))

    async def _run_leased(self, worker_id: str, job: Job) -> bool:
        if self.metrics is not None and await self._reclaimed(job):
            mx.observe_lease_expiry("reclaimed")
        if self._stopping:  # stop() came while we were leasing: not ours to start any more
            self._interrupted.add(job.id)
            await self._hand_back(job)
            return True
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
        self._running[job.id] = (job, work)
        try:
            await work
        except BaseException as exc:
            if job.id in self._interrupted:
                # We interrupted it (shutdown), whatever it raised on the way out.
                await self._hand_back(job)
                return True
            if isinstance(exc, asyncio.CancelledError):
                if beat.done() and not beat.cancelled() and isinstance(beat.exception(), LeaseLost):
                    mx.observe_lease_expiry("lost")
                    log.warning("job %d: lease lost; another worker owns it now", job.id)
                    return True
                raise
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, PermanentJobError):
                # Retrying cannot help (no loop of its kind, a trigger that does not parse):
                # dead now, its message the last error, instead of after every attempt.
                await self.store.fail(
                    job,
                    f"{type(exc).__name__}: {exc}",
                    backoff_seconds=self.backoff_seconds,
                    permanent=True,
                )
                log.error("job %d can never succeed, so it is dead: %s", job.id, exc)
                return True
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
            self._running.pop(job.id, None)
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                await beat
        return True

    async def _hand_back(self, job: Job) -> None:
        if not self._release:
            return  # a simulated crash: the lease lapses
        # Shielded: the final cancel of stop() must not lose the hand-back half-way.
        released = await asyncio.shield(
            self.store.release(job, "interrupted by a shutdown; attempt not counted")
        )
        log.info(
            "job %d interrupted by shutdown: %s",
            job.id,
            "back in the queue" if released else "its lease was no longer ours",
        )

    async def _heartbeat(self, job: Job, work: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not await self.store.heartbeat(job, self.lease_seconds):
                work.cancel()
                raise LeaseLost(str(job.id))
