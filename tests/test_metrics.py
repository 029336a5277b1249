"""`/metrics` of `loopwright serve`, parsed with prometheus_client's own parser after scripted
runs through the real stack (intake, workers, triage loop, FakeGitHub, scripted model): the
values must say what the store says."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import db as dbmod
from bot import metrics as mx
from bot.sandbox import SandboxUnavailable, run_sandboxed
from bot.store import Job, JobSpec, Store
from bot.worker import WorkerPool
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.webhooks import payload

REPO = "Codertocat/Hello-World"
LABELS = ["bug", "enhancement", "question", "needs-info"]

#: Label names a metric may carry: all bounded (no issue numbers, run ids, repos, URLs).
BOUNDED_LABELS = {
    "event",
    "result",
    "state",
    "kind",
    "loop",
    "exit",
    "step",
    "model",
    "type",
    "method",
    "status",
    "resource",
    "le",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels` (0 if none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


async def scrape(s: Stack) -> tuple[str, Samples]:
    async with s.session.get(f"{s.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return text, parse(text)


@pytest.fixture
async def stack(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as es:
        gh = await es.enter_async_context(running_fake())
        gh.add_repo(
            REPO,
            installation_id=1,
            labels=LABELS,
            files={".github/loopwright.yml": "triage:\n  needs_info_label: needs-info\n"},
            collaborators={"Codertocat": "admin"},
        )
        gh.add_issue(REPO, number=1, title="Crash on start", body="It crashes.", user="Codertocat")
        gh.add_issue(REPO, number=2, title="Other crash", body="Also.", user="Codertocat")
        settings = make_settings(gh, fake_model, tmp_path, job_max_attempts=1)
        yield await serve(es, gh, fake_model, settings, REPO)


def opened(number: int) -> dict[str, Any]:
    data = payload("issues/opened.15", installation={"id": 1})
    data["issue"]["number"] = number
    data["issue"]["title"], data["issue"]["body"] = "Crash on start", "It crashes."
    return data


async def test_metrics_after_scripted_runs_match_the_store(stack: Stack) -> None:
    s = stack
    # One valid triage; the second issue's model answers garbage twice: invalid calls, a run
    # that ends with a typed exit, one attempt allowed.
    s.model.script("triage", triage_answer("bug", "high"), "not json", "still not json")
    assert (await s.deliver("issues", opened(1), delivery="d-1"))[0] == 202
    await s.settle()
    assert (await s.deliver("issues", opened(2), delivery="d-2"))[0] == 202
    assert (await s.deliver("issues", opened(2), delivery="d-2"))[1]["duplicate"] is True
    assert (await s.deliver("issues", opened(1), secret="wrong"))[0] == 401
    assert (await s.deliver("issues", b"{not json"))[0] == 400
    assert (await s.deliver("ping", {"zen": "hi", "hook_id": 1}))[0] == 202
    await s.settle()

    text, m = await scrape(s)

    # Intake, by event and result.
    assert value(m, "loopwright_deliveries_total", event="issues", result="accepted") == 2
    assert value(m, "loopwright_deliveries_total", event="issues", result="duplicate") == 1
    assert value(m, "loopwright_deliveries_total", event="unknown", result="bad_signature") == 1
    assert value(m, "loopwright_deliveries_total", event="issues", result="malformed") == 1
    assert value(m, "loopwright_deliveries_total", event="ping", result="ignored") == 1

    # Jobs by state, read from the store at scrape time.
    counts = await s.store.job_counts()
    for state in ("queued", "running", "done", "dead"):
        assert value(m, "loopwright_jobs", state=state) == counts.get(state, 0), state
    assert value(m, "loopwright_queue_lag_seconds") == 0
    assert value(m, "loopwright_jobs_lease_expired") == 0

    # Runs by loop and exit: the histogram's counts are the store's runs.
    runs = await s.store.list_runs()
    assert len(runs) == 2
    for run in runs:
        exit_label = run["exit_reason"] if run["state"] == "done" else "error"
        expected = sum(
            1 for r in runs if (r["exit_reason"] if r["state"] == "done" else "error") == exit_label
        )
        got = value(m, "loopwright_run_duration_seconds_count", loop="triage", exit=exit_label)
        assert got == expected, (exit_label, text)
    assert value(m, "loopwright_run_duration_seconds_count") == len(runs)
    assert value(m, "loopwright_run_duration_seconds_bucket", le="+Inf") == len(runs)

    # Model calls, tokens and cost equal the recorded steps, per loop, step and model.
    assert value(m, "loopwright_model_calls_total", loop="triage", step="triage") == sum(
        r["model_calls"] for r in runs
    )
    assert value(m, "loopwright_model_calls_total", result="valid") == 1
    assert value(m, "loopwright_model_calls_total", result="invalid") == 2
    prompt = sum(r["prompt_tokens"] for r in runs)
    completion = sum(r["completion_tokens"] for r in runs)
    assert prompt > 0 and completion > 0
    assert (
        value(
            m, "loopwright_model_tokens_total", loop="triage", model="scripted-small", type="prompt"
        )
        == prompt
    )
    assert value(m, "loopwright_model_tokens_total", type="completion") == completion
    cost = sum(r["cost"] for r in runs)
    assert cost > 0
    assert value(m, "loopwright_model_cost_usd_total", step="triage") == pytest.approx(cost)

    # GitHub calls by status; the rate limit the FakeGitHub reports.
    gets = len([r for r in s.gh.requests if r.method == "GET"])
    assert value(m, "loopwright_github_requests_total", method="GET", status="200") == gets
    assert value(m, "loopwright_github_requests_total", method="POST", status="201") >= 1
    assert 0 < value(m, "loopwright_github_rate_limit_remaining", resource="core") < 5000

    # Bounded labels only: no issue number, run id or repository in any series.
    for name, labels in m:
        assert {k for k, _ in labels} <= BOUNDED_LABELS, name
        assert REPO not in str(labels)
    s.gh.assert_no_violations()


async def test_two_apps_in_one_process_count_apart(tmp_path: Path, fake_model: FakeModel) -> None:
    # The global registry would refuse the second app's metrics (duplicated timeseries).
    async with contextlib.AsyncExitStack() as es:
        stacks = []
        for i in range(2):
            gh = await es.enter_async_context(running_fake())
            gh.add_repo(REPO, installation_id=1, labels=LABELS)
            settings = make_settings(gh, fake_model, tmp_path / str(i))
            stacks.append(await serve(es, gh, fake_model, settings, REPO, workers=0))
        await stacks[0].deliver("ping", {"zen": "hi", "hook_id": 1})
        _, first = await scrape(stacks[0])
        _, second = await scrape(stacks[1])
        assert value(first, "loopwright_deliveries_total", result="ignored") == 1
        assert value(second, "loopwright_deliveries_total", result="ignored") == 0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    database = await dbmod.connect(f"sqlite:///{tmp_path / 'q.db'}")
    s = Store(database, clock=lambda: 1000.0)
    await s.init()
    yield s
    await database.close()


SPEC = JobSpec(kind="triage", repo="o/r", installation_id=1, number=1)


async def test_queue_lag_lease_expiry_and_dead_jobs_come_from_the_store(store: Store) -> None:
    await store.enqueue(SPEC, max_attempts=1)
    await store.enqueue(
        JobSpec(kind="triage", repo="o/r", installation_id=1, number=2), max_attempts=2
    )
    await store.enqueue(
        JobSpec(kind="triage", repo="o/r", installation_id=1, number=3), max_attempts=1
    )
    leased = await store.lease("w", 5)
    assert leased is not None
    await store.fail(leased, "boom", backoff_seconds=1)  # max 1 attempt: dead
    expired = await store.lease("gone", 5)  # its worker "dies": the lease lapses at 1005
    assert expired is not None

    metrics = mx.Metrics()
    snap = await mx.read_queue(store, now=1042.0)
    assert snap.jobs == {"queued": 1, "running": 1, "done": 0, "dead": 1}
    assert snap.lag_seconds == 42.0  # the waiting job was runnable from 1000
    assert snap.lease_expired == 1
    metrics.store_collector.snapshot = snap
    from prometheus_client import generate_latest

    m = parse(generate_latest(metrics.registry).decode())
    assert value(m, "loopwright_jobs", state="dead") == 1
    assert value(m, "loopwright_queue_lag_seconds") == 42.0
    assert value(m, "loopwright_jobs_lease_expired") == 1

    # A worker that takes over the lapsed job (its run never finished) counts the expiry.
    await store.start_run(expired.id, "triage", "o/r", expired.number)
    store._clock = lambda: 1042.0
    seen: list[Job] = []

    async def runner(job: Job) -> None:
        seen.append(job)

    pool = WorkerPool(
        store, runner, concurrency=1, lease_seconds=5, backoff_seconds=1, metrics=metrics
    )
    with mx.use(metrics):
        while await pool.run_once("w2"):
            pass
    assert sorted(j.number or 0 for j in seen) == [2, 3]
    m = parse(generate_latest(metrics.registry).decode())
    assert value(m, "loopwright_lease_expiries_total", kind="reclaimed") == 1


async def test_sandbox_runs_are_counted_by_result(tmp_path: Path) -> None:
    metrics = mx.Metrics()
    with mx.use(metrics):
        ok = await run_sandboxed(["true"], workdir=tmp_path, timeout=10, mode="none")
        bad = await run_sandboxed(["false"], workdir=tmp_path, timeout=10, mode="none")
        slow = await run_sandboxed(
            [sys.executable, "-c", "import time; time.sleep(5)"],
            workdir=tmp_path,
            timeout=0.3,
            mode="none",
        )
        with pytest.raises(SandboxUnavailable):
            await run_sandboxed(
                ["true"], workdir=tmp_path, timeout=10, bwrap_path=tmp_path / "no-bwrap"
            )
    assert (ok.ok, bad.exit_code, slow.timed_out) == (True, 1, True)
    await run_sandboxed(["true"], workdir=tmp_path, timeout=10, mode="none")  # no app: not counted
    from prometheus_client import generate_latest

    m = parse(generate_latest(metrics.registry).decode())
    for result in ("ok", "failed", "timeout", "unavailable"):
        assert value(m, "loopwright_sandbox_runs_total", result=result) == 1, result
    assert value(m, "loopwright_sandbox_duration_seconds_count") == 4


def test_delivery_results_follow_the_intake_answers() -> None:
    assert mx.delivery_result(202, json.dumps({"jobs": 1}).encode()) == "accepted"
    assert mx.delivery_result(202, json.dumps({"jobs": 0}).encode()) == "ignored"
    assert mx.delivery_result(200, json.dumps({"duplicate": True}).encode()) == "duplicate"
    assert mx.delivery_result(401, b"{}") == "bad_signature"
    assert mx.delivery_result(413, b"{}") == "too_large"
    assert mx.delivery_result(400, b"{}") == "malformed"


def test_the_example_alerts_and_scrape_config_use_metrics_that_exist() -> None:
    import re

    import yaml
    from prometheus_client import generate_latest

    metrics = mx.Metrics()
    metrics.store_collector.snapshot = mx.QueueSnapshot(jobs={"dead": 0})
    exported: set[str] = set()
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            exported |= {name, f"{name}_total"} if kind == "counter" else {name}
    docs = Path(__file__).resolve().parent.parent / "docs" / "metrics"
    rules = yaml.safe_load((docs / "alerts.yml").read_text())["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [
        "LoopwrightDeadJobs",
        "LoopwrightQueueLag",
        "LoopwrightCostRate",
    ]
    for rule in rules:
        used = set(re.findall(r"loopwright_\w+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)
    scrape = yaml.safe_load((docs / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
