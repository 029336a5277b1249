"""The one place that composes bot/ with handlers/ and loops/: process resources, the job
runner, the aiohttp app for `serve`, and the local (no GitHub) entry points."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from gidgethub.sansio import Event

import handlers
from bot import db as dbmod
from bot import logs
from bot import metrics as mx
from bot.costs import CostGuard, reservation_ttl
from bot.forge import DryRunForge, GitHubForge, Issue, NeedsGitHub
from bot.github import GitHubApp
from bot.jobs import TRIGGERS, LoopName, PermanentJobError, loop_name
from bot.local_model import EmbeddedModel
from bot.model import ModelClient
from bot.redeliver import reconcile_periodically
from bot.server import NOTIFY, STORE, create_app
from bot.settings import Settings
from bot.store import Job, JobSpec, Store
from bot.ui import setup_ui
from bot.worker import WorkerPool, interrupted_by_shutdown
from bot.workspace import MirrorCache, sweep_stale
from loops import ISSUE_LOOPS, LOOPS
from loops.checkout import CodeHost, local_host
from loops.engine import LoopContext, Outcome, execute
from loops.ports import Forge, IssuePort, LoopPort

log = logging.getLogger("loopwright")

#: The port of the loop being run, which the forge it is run with implements.
Port = TypeVar("Port", bound=LoopPort)


class Runtime:
    """The resources one process shares: store, HTTP session, GitHub App, model, workers."""

    def __init__(self, settings: Settings, store: Store, metrics: mx.Metrics | None = None) -> None:
        self.settings = settings
        self.store = store
        #: The served app's metrics (None in local mode): current in the workers' tasks.
        self.metrics = metrics
        self.session: aiohttp.ClientSession | None = None
        self.github: GitHubApp | None = None
        self.model: ModelClient | None = None
        self.embedded: EmbeddedModel | None = None
        self.pool: WorkerPool | None = None
        #: Periodic tasks of a worker process (the redelivery reconciliation).
        self.background: list[asyncio.Task[None]] = []
        # One mirror cache per process: its locks serialise fetches of one repository.
        self.mirrors = MirrorCache(settings.data_dir, git_base_url=settings.git_base_url)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        github: bool = False,
        model: bool = False,
        workers: int = 0,
        metrics: mx.Metrics | None = None,
    ) -> AsyncIterator[Runtime]:
        if github or workers:
            settings.require("app_id", "private_key")
            key = settings.private_key_pem()
        database = await dbmod.connect(settings.resolved_database_url())
        rt = cls(settings, Store(database, secrets=settings.secret_values()), metrics)
        try:
            await rt.store.init()
            if github or workers:
                rt.session = aiohttp.ClientSession()
                assert settings.app_id is not None
                rt.github = GitHubApp(
                    rt.session,
                    app_id=settings.app_id,
                    private_key_pem=key,
                    base_url=settings.github_api_url,
                    max_tries=settings.github_max_tries,
                    max_wait=settings.github_max_wait_seconds,
                )
            if model or workers:
                await rt._open_model()
            if workers:
                # Workspaces left behind by a process that died mid-job go before any new job.
                removed = await asyncio.to_thread(sweep_stale, settings.data_dir)
                if removed:
                    log.info("swept %d stale workspace(s)", len(removed))
                rt.pool = WorkerPool(
                    rt.store,
                    rt.run_job,
                    concurrency=workers,
                    lease_seconds=settings.job_lease_seconds,
                    backoff_seconds=settings.job_backoff_seconds,
                    metrics=metrics,
                )
                rt.pool.start()
                if settings.redeliver_interval_seconds > 0:
                    assert rt.github is not None
                    # Deliveries that failed while no process was up are asked for again.
                    with rt.metrics_current():
                        reconciling = asyncio.create_task(
                            reconcile_periodically(
                                rt.github,
                                rt.store,
                                interval_seconds=settings.redeliver_interval_seconds,
                                window_seconds=settings.redeliver_window_seconds,
                                first_delay=min(5.0, settings.redeliver_interval_seconds),
                            )
                        )
                    rt.background.append(reconciling)
            yield rt
        finally:
            for task in rt.background:
                task.cancel()
            for task in rt.background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if rt.pool:
                # Running jobs get the grace period; what must be interrupted goes back to the
                # queue with its attempt refunded, for another worker to take at once.
                await rt.pool.stop(settings.shutdown_grace_seconds)
            if rt.model:
                await rt.model.close()
            if rt.embedded:
                await rt.embedded.stop()
            if rt.session:
                await rt.session.close()
            await database.close()

    async def _open_model(self) -> None:
        s = self.settings
        style = s.model_schema_style
        if s.model_base_url:
            base_url = s.model_base_url
            style = "openai" if style == "auto" else style
        else:
            self.embedded = EmbeddedModel(s)
            base_url = await self.embedded.start()
            style = "llama" if style == "auto" else style
        self.model = ModelClient(
            s,
            base_url=base_url,
            api_key=s.model_api_key.get_secret_value(),
            schema_style=style,
        )

    def metrics_current(self) -> contextlib.AbstractContextManager[None]:
        """This runtime's metrics current for the tasks started inside."""
        return mx.use(self.metrics)

    def notify(self) -> None:
        if self.pool:
            self.pool.notify()

    async def run_job(self, job: Job) -> None:
        """Run one leased job; an exception makes the worker retry it with backoff, except a
        `PermanentJobError` (checked before any GitHub call), which buries it at once."""
        assert self.github is not None and self.model is not None
        name = runnable(job)
        if job.installation_id is None:
            raise PermanentJobError("the delivery carried no installation id")
        client = self.github.for_repo(job.installation_id, job.repo)
        forge = GitHubForge(
            client, bot_login=await self.github.bot_login(), secrets=self.settings.secret_values()
        )
        # The token reaches git only through pygit2's credential callback, never the sandbox.
        code = CodeHost(self.settings, self.mirrors, client.token)
        await self.run_loop(job, forge, code=code, name=name)

    async def run_loop(
        self,
        job: Job,
        forge: Forge | DryRunForge,
        *,
        code: CodeHost | None = None,
        dry_run: bool = False,
        on_progress: Callable[[str], None] | None = None,
        name: LoopName | None = None,
    ) -> tuple[Outcome, int]:
        """Run one loop as a recorded run; returns its outcome and run id. Local mode's forge
        implements the issue port only: a loop that needs another is refused before it starts
        (`NeedsGitHub`). `name`: the loop `runnable(job)` already returned, if the caller
        checked the job."""
        if name is None:
            name = runnable(job)
        if isinstance(forge, DryRunForge):
            if name not in ISSUE_LOOPS:
                raise NeedsGitHub(name)
            # Checked by mypy: local mode's forge implements the issue port, all of it.
            issue_port: IssuePort = forge
            loop = ISSUE_LOOPS[name]
            return await self._run(job, name, issue_port, loop, code, dry_run, on_progress)
        return await self._run(job, name, forge, LOOPS[name], code, dry_run, on_progress)

    async def _run(
        self,
        job: Job,
        name: LoopName,
        forge: Port,
        loop: Callable[[Job, LoopContext[Port]], Awaitable[Outcome]],
        code: CodeHost | None,
        dry_run: bool,
        on_progress: Callable[[str], None] | None,
    ) -> tuple[Outcome, int]:
        assert self.model is not None
        run_id = await self.store.start_run(
            job.id or None, name, job.repo, job.number, installation_id=job.installation_id
        )
        # Every line logged from here to the end of this task names the run (and its job).
        logs.bind(run_id=run_id, job_id=job.id or None, repo=job.repo, loop=name)
        started = time.monotonic()
        # The spend caps of this repository and installation, checked before every model call
        # of the run (local mode has no installation: the repository's caps still apply).
        guard = CostGuard(
            self.store,
            self.settings,
            repo=job.repo,
            installation_id=job.installation_id,
            run_id=run_id,
            stale_after=reservation_ttl(self.settings, self.model.max_requests),
        )
        ctx = LoopContext(
            self.settings,
            self.store,
            forge,
            self.model.with_guard(guard),
            run_id,
            dry_run=dry_run,
            code=code,
            queued_at=job.created_at,
            on_progress=on_progress,
            costs=guard,
        )
        try:
            outcome = await execute(name, loop, job, ctx)
        except BaseException as exc:
            if interrupted_by_shutdown(exc):
                mx.observe_run(name, "shutdown", time.monotonic() - started)
                await asyncio.shield(
                    self.store.finish_run(
                        run_id, "interrupted", "shutdown", "the worker stopped; job requeued"
                    )
                )
            else:
                # The exception's type is the recorded exit reason; the metric keeps one label
                # value for all of them (type names are open-ended).
                mx.observe_run(name, "error", time.monotonic() - started)
                await self.store.finish_run(run_id, "error", type(exc).__name__, str(exc))
            raise
        mx.observe_run(name, outcome.exit.value, time.monotonic() - started)
        await self.store.finish_run(run_id, "done", outcome.exit.value, outcome.detail)
        log.info(
            "run %d (%s %s#%s): %s %s",
            run_id,
            name,
            job.repo,
            job.number,
            outcome.exit.value,
            outcome.detail,
        )
        return outcome, run_id


def runnable(job: Job) -> LoopName:
    """The loop `job` runs, once its payload has parsed as that loop's trigger model; a kind
    with no loop or a payload that is not its trigger can never run (`PermanentJobError`)."""
    name = loop_name(job.kind)
    TRIGGERS[name].of(job)
    return name


async def decide(event: Event, settings: Settings) -> list[JobSpec]:
    return await handlers.decide_jobs(event, app_id=settings.app_id)


METRICS = web.AppKey("metrics", mx.Metrics)


def build_app(settings: Settings, *, workers: int) -> web.Application:
    """The app of `loopwright serve`: the intake (`bot.server`), its workers, `/metrics` (on a
    registry of this app's own, so several apps in one process count apart) and the dashboard
    under `/ui` (`bot.ui`)."""
    app_metrics = mx.Metrics()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with Runtime.open(settings, workers=workers, metrics=app_metrics) as rt:
            app[STORE] = rt.store
            app[NOTIFY] = rt.notify
            yield

    async def route(event: Event) -> list[JobSpec]:
        return await decide(event, settings)

    app = create_app(settings, decide=route, lifecycle=lifecycle)
    app[METRICS] = app_metrics
    app.middlewares.append(mx.intake_middleware(app_metrics))
    app.router.add_get("/metrics", mx.metrics_handler(app_metrics, lambda: app.get(STORE)))
    setup_ui(app, settings, lambda: app.get(STORE))
    return app


# --- local mode -----------------------------------------------------------------------------------


_REPORT_KEYS = (
    "reproduction",
    "attempts",
    "verification",
    "diff",
    "branch",
    "test_runs",
    # Triage: which decider chose the issue type (classifier or model) and why.
    "decider",
    "routing",
)


@dataclass
class LocalResult:
    outcome: Outcome
    forge: DryRunForge
    run_id: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit": self.outcome.exit.value,
            "detail": self.outcome.detail,
            "labels": self.forge.added_labels,
            "comment": self.forge.comment,
            "usage": self.outcome.usage.as_dict(),
            "run_id": self.run_id,
            # The code-changing loops add attempts, verification table, diff, branch.
            **{k: v for k, v in self.outcome.posted.items() if k in _REPORT_KEYS},
            **({"note": self.note} if self.note else {}),
        }


def read_issue_file(path: Path, number: int = 1) -> Issue:
    """Markdown whose first `# ` line is the title; the rest is the body."""
    text = path.read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# "):
            body = "\n".join(lines[:i] + lines[i + 1 :]).strip()
            return Issue(number=number, title=line[2:].strip(), body=body, author="local")
    raise ValueError(f"{path}: no '# Title' line found")


#: The trigger of a local run (`loopwright run`): nobody's permission to check.
LOCAL_TRIGGER = "loopwright run"


async def run_local(
    rt: Runtime,
    kind: LoopName,
    repo_name: str,
    forge: DryRunForge,
    number: int,
    payload: dict[str, Any] | None = None,
    *,
    repo_path: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> LocalResult:
    job = Job(
        id=0,
        delivery_id=None,
        kind=kind,
        repo=repo_name,
        installation_id=None,
        number=number,
        payload=payload if payload is not None else {"trigger": LOCAL_TRIGGER},
        attempts=1,
        max_attempts=1,
        lease_owner="local",
    )
    code = local_host(rt.settings, repo_path, repo_name) if repo_path is not None else None
    outcome, run_id = await rt.run_loop(
        job, forge, code=code, dry_run=True, on_progress=on_progress
    )
    return LocalResult(outcome, forge, run_id)


async def replay(
    rt: Runtime,
    event: Event,
    specs: list[JobSpec],
    *,
    labels: list[str] | None,
    repo_path: Path | None,
) -> list[LocalResult]:
    """Run the jobs the handlers decided for a saved payload, each in dry-run."""
    results = []
    for spec in specs:
        issue_data = event.data.get("issue") or event.data.get("pull_request") or {}
        issue = Issue(
            number=int(issue_data.get("number", spec.number or 0)),
            title=issue_data.get("title") or "",
            body=issue_data.get("body") or "",
            author=(issue_data.get("user") or {}).get("login", ""),
        )
        forge = DryRunForge(
            spec.repo,
            issue=issue,
            labels=labels,
            repo_path=repo_path,
            secrets=rt.settings.secret_values(),
        )
        result = await run_local(rt, spec.kind, spec.repo, forge, spec.number or 0, spec.payload)
        requester = TRIGGERS[spec.kind].model_validate(spec.payload).requires_write_from
        if requester:
            result.note = f"dry run: the permission of {requester} was not checked (no GitHub)"
        results.append(result)
    return results
