"""Prometheus metrics for `loopwright serve`'s `/metrics`.

Each app gets its own `CollectorRegistry` (never the global one), so several apps in one
process (the tests) keep separate counts. Event counters are incremented where things happen:
intake (a middleware of the app), the worker, `bot.app`'s run wrapper, `bot.model`,
`bot.github` and `bot.sandbox`. Those modules reach the app's metrics through a context
variable the worker pool's tasks inherit (`use`), so nothing threads a metrics object through
the loops, and code outside a served app (local mode, tests of one module) records nothing.

What the queue holds is not counted but read from the store at scrape time (`StoreCollector`),
so `loopwright_jobs` and `loopwright_queue_lag_seconds` always say what the store says, across
every process sharing it.

Label values are bounded: events, results, loops, steps, exits, configured model names, HTTP
methods and statuses. No issue numbers, run ids, repositories or URLs.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from bot.jobs import LoopName
from bot.store import JobState, Store

#: Job states always exported (0 when empty), so an alert on `dead` has a series to watch.
JOB_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.DEAD)

#: Run durations reach from a triage (seconds) to a fix loop with test runs (many minutes).
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))
SANDBOX_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, float("inf"))

#: A GitHub event name as GitHub spells them; anything else is exported as "other".
_EVENT_NAME = re.compile(r"^[a-z_]{1,40}$")


class Metrics:
    """The metrics of one app, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "loopwright_deliveries",
            "Webhook deliveries answered, by event and result.",
            ["event", "result"],
            registry=r,
        )
        self.lease_expiries = Counter(
            "loopwright_lease_expiries",
            "Job leases that lapsed: 'lost' when this process's heartbeat found another worker "
            "owning its job, 'reclaimed' when a worker took over a job whose worker had died.",
            ["kind"],
            registry=r,
        )
        self.run_seconds = Histogram(
            "loopwright_run_duration_seconds",
            "Wall time of loop runs, by loop and exit reason.",
            ["loop", "exit"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.model_calls = Counter(
            "loopwright_model_calls",
            "Model requests, by loop, step, model and result (valid, invalid, unavailable).",
            ["loop", "step", "model", "result"],
            registry=r,
        )
        self.model_tokens = Counter(
            "loopwright_model_tokens",
            "Tokens the model endpoint reported, by loop, step, model and type.",
            ["loop", "step", "model", "type"],
            registry=r,
        )
        self.model_cost = Counter(
            "loopwright_model_cost_usd",
            "What model calls cost in US dollars (LOOPWRIGHT_PRICES), by loop, step and model.",
            ["loop", "step", "model"],
            registry=r,
        )
        self.github_requests = Counter(
            "loopwright_github_requests",
            "HTTP requests to the GitHub API (each try), by method and status "
            "('error' when no answer came).",
            ["method", "status"],
            registry=r,
        )
        self.github_rate_remaining = Gauge(
            "loopwright_github_rate_limit_remaining",
            "The last x-ratelimit-remaining GitHub sent, by its x-ratelimit-resource.",
            ["resource"],
            registry=r,
        )
        self.sandbox_runs = Counter(
            "loopwright_sandbox_runs",
            "Sandboxed commands, by result (ok, failed, timeout, unavailable).",
            ["result"],
            registry=r,
        )
        self.sandbox_seconds = Histogram(
            "loopwright_sandbox_duration_seconds",
            "Wall time of sandboxed commands, by result.",
            ["result"],
            buckets=SANDBOX_BUCKETS,
            registry=r,
        )
        self.store_collector = StoreCollector()
        r.register(self.store_collector)

    async def render(self, store: Store | None) -> bytes:
        """The exposition text, with the store read now (an async read before the synchronous
        collection `prometheus_client` does)."""
        if store is not None:
            self.store_collector.snapshot = await read_queue(store)
        return generate_latest(self.registry)


@dataclass
class QueueSnapshot:
    jobs: dict[str, int] = field(default_factory=dict)
    lag_seconds: float = 0.0
    lease_expired: int = 0


async def read_queue(store: Store, now: float | None = None) -> QueueSnapshot:
    """What the queue holds, read from the store."""
    now = time.time() if now is None else now
    counts = await store.job_counts()
    row = await store.db.fetchone(
        "SELECT MIN(run_after) AS oldest FROM jobs WHERE state='queued' AND run_after <= :now",
        {"now": now},
    )
    oldest = row["oldest"] if row else None
    expired = await store.db.fetchone(
        "SELECT COUNT(*) AS n FROM jobs WHERE state='running' AND lease_expires_at < :now",
        {"now": now},
    )
    return QueueSnapshot(
        jobs={state: int(counts.get(state, 0)) for state in {*JOB_STATES, *counts}},
        lag_seconds=max(0.0, now - float(oldest)) if oldest is not None else 0.0,
        lease_expired=int(expired["n"]) if expired else 0,
    )


class StoreCollector(Collector):
    """Exports the last `QueueSnapshot` (taken by `Metrics.render` just before)."""

    def __init__(self) -> None:
        self.snapshot: QueueSnapshot | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # the families are known only once read; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        if snap is None:
            return []
        jobs = GaugeMetricFamily(
            "loopwright_jobs", "Jobs in the store, by state.", labels=["state"]
        )
        for state in sorted(snap.jobs):
            jobs.add_metric([state], snap.jobs[state])
        lag = GaugeMetricFamily(
            "loopwright_queue_lag_seconds",
            "How long the longest-waiting runnable queued job has waited (since it was "
            "enqueued or its retry backoff ended); 0 when none waits.",
            value=snap.lag_seconds,
        )
        expired = GaugeMetricFamily(
            "loopwright_jobs_lease_expired",
            "Running jobs whose lease has lapsed (their worker died), not yet taken over.",
            value=snap.lease_expired,
        )
        return [jobs, lag, expired]


# --- the current app's metrics, for the modules that record events ------------------------------

_CURRENT: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar(
    "loopwright_metrics", default=None
)


def current() -> Metrics | None:
    """The metrics of the app whose task this is; None outside a served app."""
    return _CURRENT.get()


@contextlib.contextmanager
def use(metrics: Metrics | None) -> Iterator[None]:
    """Make `metrics` the current ones for the code inside and the tasks it starts."""
    token = _CURRENT.set(metrics)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def observe_model_call(
    loop: str | None,
    step: str,
    model: str,
    result: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost: float = 0.0,
) -> None:
    m = current()
    if m is None:
        return
    labels = (loop or "none", step, model)
    m.model_calls.labels(*labels, result).inc()
    if prompt_tokens:
        m.model_tokens.labels(*labels, "prompt").inc(prompt_tokens)
    if completion_tokens:
        m.model_tokens.labels(*labels, "completion").inc(completion_tokens)
    if cost:
        m.model_cost.labels(*labels).inc(cost)


def observe_github(method: str, status: int | None, headers: dict[str, str] | None) -> None:
    m = current()
    if m is None:
        return
    m.github_requests.labels(method.upper(), str(status) if status is not None else "error").inc()
    if headers:
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None:
            with contextlib.suppress(ValueError):
                resource = headers.get("x-ratelimit-resource") or "core"
                if not _EVENT_NAME.match(resource):
                    resource = "other"
                m.github_rate_remaining.labels(resource).set(float(remaining))


def observe_sandbox(result: str, seconds: float) -> None:
    m = current()
    if m is None:
        return
    m.sandbox_runs.labels(result).inc()
    m.sandbox_seconds.labels(result).observe(seconds)


def observe_run(loop: LoopName, exit_reason: str, seconds: float) -> None:
    m = current()
    if m is None:
        return
    m.run_seconds.labels(loop, exit_reason).observe(seconds)


def observe_lease_expiry(kind: str) -> None:
    m = current()
    if m is not None:
        m.lease_expiries.labels(kind).inc()


# --- intake and the endpoint ---------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def delivery_result(status: int, body: bytes | None) -> str:
    """What the intake's answer says happened to a delivery (see `bot.server.webhook`)."""
    if status == 401:
        return "bad_signature"
    if status == 413:
        return "too_large"
    if status >= 400:
        return "malformed"
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        doc = {}
    if doc.get("duplicate"):
        return "duplicate"
    return "accepted" if doc.get("jobs") else "ignored"


def intake_middleware(metrics: Metrics) -> Middleware:
    """Count each `/webhook` answer by event and result. The event label is GitHub's event
    name only once the signature checked out; an unsigned request's header is anyone's."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        resp = await handler(request)
        if request.path == "/webhook" and request.method == "POST":
            body = resp.body if isinstance(resp, web.Response) else None
            result = delivery_result(resp.status, body if isinstance(body, bytes) else None)
            event = request.headers.get("X-GitHub-Event", "")
            if result in ("bad_signature", "too_large") or not _EVENT_NAME.match(event):
                event = "unknown" if result in ("bad_signature", "too_large") else "other"
            metrics.deliveries.labels(event, result).inc()
        return resp

    return count


def metrics_handler(metrics: Metrics, store: Callable[[], Store | None]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        text = await metrics.render(store())
        resp = web.Response(body=text)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    return handle
