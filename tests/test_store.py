"""The durable store on both backends: atomic intake, leases, retries, dead jobs, runs."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import db as dbmod
from bot.jobs import LoopName
from bot.store import JobSpec, StepRecord, Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[Store]:
    database = await dbmod.connect(database_url)
    s = Store(database, clock=clock)
    await s.init()
    yield s
    await database.close()


def spec(number: int = 1) -> JobSpec:
    return JobSpec(
        kind="triage",
        repo="octo/hello",
        installation_id=7,
        number=number,
        payload={"trigger": "issues.opened"},
    )


async def test_delivery_and_jobs_commit_together_and_duplicates_add_nothing(store: Store) -> None:
    assert await store.record_delivery(
        "d-1", "issues", "opened", "octo/hello", [spec(1), spec(2)], max_attempts=3
    )
    assert not await store.record_delivery(
        "d-1", "issues", "opened", "octo/hello", [spec(3)], max_attempts=3
    )
    jobs = await store.list_jobs()
    assert sorted(j["number"] for j in jobs) == [1, 2]


async def test_a_failing_job_insert_rolls_back_the_delivery(store: Store) -> None:
    bad = JobSpec(kind="triage", repo=None, installation_id=1, number=1)  # type: ignore[arg-type]
    with pytest.raises(dbmod.IntegrityError):
        await store.record_delivery("d-2", "issues", "opened", "octo/hello", [bad], max_attempts=3)
    # Nothing half-written: the same delivery can be stored again once it is valid.
    assert await store.record_delivery(
        "d-2", "issues", "opened", "octo/hello", [spec()], max_attempts=3
    )


async def test_lease_is_exclusive_until_it_lapses(store: Store, clock: Clock) -> None:
    await store.enqueue(spec(), max_attempts=3)
    job = await store.lease("w1", lease_seconds=30)
    assert job is not None and job.attempts == 1 and job.payload["trigger"] == "issues.opened"
    assert await store.lease("w2", lease_seconds=30) is None
    clock.now += 10
    assert await store.heartbeat(job, 30)
    clock.now += 25  # t=35: the heartbeat at t=10 moved the lease to t=40; still held
    assert await store.lease("w2", lease_seconds=30) is None
    clock.now += 10  # t=45: lapsed, the worker is presumed dead
    again = await store.lease("w2", lease_seconds=30)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not await store.heartbeat(job, 30), "the old owner must learn it lost the lease"


async def test_failures_back_off_then_go_dead(store: Store, clock: Clock) -> None:
    await store.enqueue(spec(), max_attempts=2)
    job = await store.lease("w", 30)
    assert job is not None
    assert await store.fail(job, "boom", backoff_seconds=5) == "queued"
    assert await store.lease("w", 30) is None, "backoff must delay the retry"
    clock.now += 5.1
    job = await store.lease("w", 30)
    assert job is not None and job.attempts == 2
    assert await store.fail(job, "boom again", backoff_seconds=5) == "dead"
    clock.now += 1000
    assert await store.lease("w", 30) is None
    dead = await store.list_jobs("dead")
    assert len(dead) == 1 and "boom again" in dead[0]["last_error"]


async def test_a_permanent_failure_is_dead_at_once_with_attempts_left(
    store: Store, clock: Clock
) -> None:
    await store.enqueue(spec(), max_attempts=4)
    job = await store.lease("w", 30)
    assert job is not None and job.attempts == 1
    error = "PermanentJobError: no loop named 'frobnicate'"
    assert await store.fail(job, error, backoff_seconds=5, permanent=True) == "dead"
    clock.now += 1000
    assert await store.lease("w", 30) is None, "a permanent failure is never retried"
    [dead] = await store.list_jobs("dead")
    assert (dead["attempts"], dead["last_error"], dead["lease_owner"]) == (1, error, None)
    # A writer can still queue it again from the dashboard (after a deploy that knows the kind).
    assert await store.retry_job(dead["id"])


async def test_a_row_whose_kind_has_no_loop_still_loads(store: Store) -> None:
    await store.enqueue(
        JobSpec("frobnicate", "octo/hello", 7, 1, {"trigger": "x"}),  # type: ignore[arg-type]
        max_attempts=3,
    )
    await store.enqueue(spec(2), max_attempts=3)
    first, second = await store.lease("w", 30), await store.lease("w", 30)
    assert first is not None and second is not None
    assert first.kind == "frobnicate" and not isinstance(first.kind, LoopName)
    assert second.kind is LoopName.TRIAGE


async def test_lapsed_lease_on_last_attempt_is_dead_not_retried(store: Store, clock: Clock) -> None:
    await store.enqueue(spec(), max_attempts=1)
    assert await store.lease("w1", 30) is not None
    clock.now += 31
    assert await store.lease("w2", 30) is None
    assert (await store.job_counts()).get("dead") == 1


async def test_runs_accumulate_model_usage_from_steps(store: Store) -> None:
    run_id = await store.start_run(None, "triage", "octo/hello", 5)
    await store.record_step(
        run_id,
        StepRecord(
            name="triage",
            kind="model",
            verdict="invalid",
            model="m",
            prompt_tokens=100,
            completion_tokens=10,
            cost=0.001,
        ),
    )
    await store.record_step(
        run_id,
        StepRecord(
            name="triage",
            kind="model",
            verdict="valid",
            model="m",
            prompt_tokens=120,
            completion_tokens=12,
            cost=0.002,
        ),
    )
    await store.record_step(run_id, StepRecord(name="post", kind="deterministic", verdict="ok"))
    await store.finish_run(run_id, "done", "done", "bug/high/none")
    run = await store.get_run(run_id)
    assert run is not None
    assert (run["model_calls"], run["prompt_tokens"], run["completion_tokens"]) == (2, 220, 22)
    assert run["cost"] == pytest.approx(0.003)
    assert run["exit_reason"] == "done" and run["finished_at"] is not None
    assert [s["verdict"] for s in await store.steps_for(run_id)] == ["invalid", "valid", "ok"]


async def test_concurrent_deliveries_share_commits_and_keep_their_own_answers(
    store: Store,
) -> None:
    import asyncio

    bad = JobSpec(kind="triage", repo=None, installation_id=1, number=1)  # type: ignore[arg-type]
    calls = [
        store.record_delivery(
            f"d-{i % 40}", "issues", "opened", "octo/hello", [spec(i)], max_attempts=3
        )
        for i in range(60)
    ]
    calls.append(store.record_delivery("d-bad", "issues", "opened", "o/h", [bad], max_attempts=3))
    results = await asyncio.gather(*calls, return_exceptions=True)
    # Ids 0..39 are new once each; 40..59 repeat ids 0..19 and are duplicates.
    assert results[:40] == [True] * 40 and results[40:60] == [False] * 20
    assert isinstance(results[60], dbmod.IntegrityError)
    jobs = await store.list_jobs(limit=1000)
    assert sorted(j["number"] for j in jobs) == list(range(40))
    rows = await store.db.fetchall("SELECT id FROM deliveries")
    assert len(rows) == 40 and "d-bad" not in {r["id"] for r in rows}


async def test_stop_requests_are_read_from_the_queue(store: Store, clock: Clock) -> None:
    fix = JobSpec("fix", "octo/hello", 7, 5, {"requires_write_from": "alice"})
    await store.record_delivery("d-fix", "issues", "labeled", "octo/hello", [fix], max_attempts=3)
    queued_at = clock.now
    assert await store.stop_requests("octo/hello", 5, queued_at) == []
    clock.now += 10
    stops = [
        JobSpec("stop", "octo/hello", 7, 5, {"requires_write_from": "bob"}),
        JobSpec("stop", "octo/hello", 7, 6, {"requires_write_from": "carol"}),  # another issue
        JobSpec("stop", "octo/other", 7, 5, {"requires_write_from": "dave"}),  # another repo
    ]
    await store.record_delivery(
        "d-stop", "issue_comment", "created", "octo/hello", stops, max_attempts=3
    )
    assert await store.stop_requests("octo/hello", 5, queued_at) == ["bob"]
    # A stop given before the loop was queued does not stop it.
    assert await store.stop_requests("octo/hello", 5, clock.now + 1) == []
    [job] = [j for j in [await store.lease("w", 60)] if j is not None]
    assert job.created_at == queued_at


async def test_one_running_job_per_target_the_next_waits_for_it(store: Store, clock: Clock) -> None:
    opened = JobSpec("triage", "octo/hello", 7, 5, {"trigger": "issues.opened"})
    command = JobSpec("triage", "octo/hello", 7, 5, {"requires_write_from": "alice"})
    other_issue = JobSpec("triage", "octo/hello", 7, 6, {"trigger": "issues.opened"})
    stop = JobSpec("stop", "octo/hello", 7, 5, {"requires_write_from": "alice"})
    await store.record_delivery(
        "d-1", "issues", "opened", "octo/hello", [opened, command, other_issue], max_attempts=3
    )
    first = await store.lease("w1", 30)
    assert first is not None and first.number == 5
    # The second job on #5 waits; #6 is free; a stop never waits for the loop it stops.
    second = await store.lease("w2", 30)
    assert second is not None and second.number == 6
    assert await store.lease("w3", 30) is None
    await store.enqueue(stop, max_attempts=1)
    got_stop = await store.lease("w3", 30)
    assert got_stop is not None and got_stop.kind == "stop"
    await store.complete(first)
    third = await store.lease("w1", 30)
    assert third is not None and third.number == 5 and third.payload == command.payload
    # A target whose running job's worker died is free once that lease lapses.
    clock.now += 31
    fourth = await store.lease("w4", 30)
    assert fourth is not None and fourth.number in (5, 6)


async def test_identical_queued_jobs_collapse_into_one(store: Store) -> None:
    label = JobSpec("fix", "octo/hello", 7, 5, {"requires_write_from": "alice", "comment_id": 1})
    same_again = JobSpec(
        "fix", "octo/hello", 7, 5, {"requires_write_from": "alice", "comment_id": 2}
    )
    by_bob = JobSpec("fix", "octo/hello", 7, 5, {"requires_write_from": "bob", "comment_id": 3})
    await store.record_delivery(
        "d-1", "issue_comment", "created", "octo/hello", [label], max_attempts=3
    )
    await store.record_delivery(
        "d-2", "issue_comment", "created", "octo/hello", [same_again], max_attempts=3
    )
    first_id = (await store.list_jobs())[0]["id"]
    assert await store.enqueue(same_again, max_attempts=3) == first_id
    await store.enqueue(by_bob, max_attempts=3)  # another requester is another request
    jobs = await store.list_jobs()
    assert sorted(j["payload"].count("bob") for j in jobs) == [0, 1] and len(jobs) == 2
    # Once the first one runs, the same request queued again is new work (the issue may have
    # changed since the running one read it).
    running = await store.lease("w", 30)
    assert running is not None
    assert await store.enqueue(same_again, max_attempts=3) != first_id
    assert len(await store.list_jobs()) == 3


async def test_release_hands_a_job_back_at_once_without_spending_its_attempt(
    store: Store, clock: Clock
) -> None:
    await store.enqueue(spec(), max_attempts=1)
    job = await store.lease("w1", 30)
    assert job is not None and job.attempts == 1
    assert await store.release(job, "interrupted by a shutdown")
    assert not await store.release(job, "twice"), "only the lease owner releases, once"
    again = await store.lease("w2", 30)
    # On its only attempt, and still not dead: the shutdown did not spend it.
    assert again is not None and again.id == job.id and again.attempts == 1
    assert not await store.heartbeat(job, 30)


async def test_concurrent_workers_on_separate_connections_never_share_a_target(
    database_url: str, tmp_path: Path
) -> None:
    """Four leasers, each with its own connection (as four worker processes have), race for
    jobs on three issues: no two jobs of one issue ever hold a lease at the same time."""
    import asyncio
    import time

    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores = []
    for _ in range(4):
        s = Store(await dbmod.connect(database_url))
        await s.init()
        stores.append(s)
    try:
        for i in range(18):
            await stores[0].enqueue(
                JobSpec("triage", "octo/hello", 7, 1 + i % 3, {"n": i}), max_attempts=1
            )
        spans: list[tuple[int, float, float]] = []

        async def leaser(store: Store, name: str) -> None:
            idle = 0
            while idle < 20:
                job = await store.lease(name, 30)
                if job is None:
                    idle += 1
                    await asyncio.sleep(0.01)
                    continue
                idle = 0
                start = time.monotonic()
                await asyncio.sleep(0.02)
                spans.append((int(job.number or 0), start, time.monotonic()))
                await store.complete(job)

        await asyncio.gather(*(leaser(s, f"w{i}") for i, s in enumerate(stores)))
        assert len(spans) == 18, "every job ran once"
        for number in (1, 2, 3):
            mine = sorted((a, b) for n, a, b in spans if n == number)
            assert len(mine) == 6
            for (_, end), (start, _) in itertools.pairwise(mine):
                assert end <= start, f"two jobs of #{number} ran at once"
    finally:
        for s in stores:
            await s.db.close()


async def test_triage_decisions_corrections_and_live_precision(store: Store, clock: Clock) -> None:
    for n, label in ((1, "bug"), (2, "enhancement"), (3, "question")):
        await store.record_triage_decision(
            "octo/hello", n, label=label, decider="classifier", confidence=0.9, run_id=None
        )
    assert await store.live_precision("octo/hello") == (3, 0)
    clock.now += 5
    await store.record_correction(
        "octo/hello", 2, applied_label="enhancement", new_label="bug", by_user="alice"
    )
    assert await store.live_precision("octo/hello") == (2, 1)
    # A later decision (a re-triage) supersedes the correction of the earlier one.
    clock.now += 5
    await store.record_triage_decision(
        "octo/hello", 2, label="bug", decider="classifier", confidence=0.8, run_id=None
    )
    assert await store.live_precision("octo/hello") == (3, 0)
    assert (await store.triage_decision("octo/hello", 2) or {})["label"] == "bug"
    [c] = await store.corrections("octo/hello")
    assert (c["applied_label"], c["new_label"], c["by_user"]) == ("enhancement", "bug", "alice")
    assert await store.live_precision("octo/other") == (0, 0)


async def test_a_label_put_back_confirms_the_decision(store: Store, clock: Clock) -> None:
    await store.record_triage_decision(
        "octo/hello", 1, label="bug", decider="classifier", confidence=0.9, run_id=None
    )
    clock.now += 1
    await store.record_correction(
        "octo/hello", 1, applied_label="bug", new_label=None, by_user="alice"
    )
    assert await store.live_precision("octo/hello") == (0, 1)
    clock.now += 1
    await store.record_correction(
        "octo/hello", 1, applied_label="bug", new_label="bug", by_user="alice"
    )
    assert await store.live_precision("octo/hello") == (1, 0)


# --- the dashboard's queries ----------------------------------------------------------------------


async def test_query_runs_shows_only_the_repositories_asked_for_with_filters(
    store: Store, clock: Clock
) -> None:
    a = await store.start_run(None, "fix", "octo/hello", 1)
    await store.finish_run(a, "done", "fixed")
    clock.now += 86400
    b = await store.start_run(None, "triage", "octo/hello", 2)
    await store.finish_run(b, "done", "done")
    c = await store.start_run(None, "fix", "octo/secret", 3)
    assert [r["id"] for r in await store.query_runs(["octo/hello"])] == [b, a]
    assert await store.query_runs([]) == []  # no repository allowed: nothing, not everything
    assert [r["id"] for r in await store.query_runs(["octo/hello", "octo/secret"])] == [c, b, a]
    assert [r["id"] for r in await store.query_runs(["octo/hello"], loop="fix")] == [a]
    assert [r["id"] for r in await store.query_runs(["octo/hello"], exit_reason="done")] == [b]
    assert [r["id"] for r in await store.query_runs(["octo/secret"], state="running")] == [c]
    since = await store.query_runs(["octo/hello"], since=1_000_000.0 + 3600)
    assert [r["id"] for r in since] == [b]
    until = await store.query_runs(["octo/hello"], until=1_000_000.0 + 3600)
    assert [r["id"] for r in until] == [a]


async def test_retry_job_queues_only_a_dead_job_again_with_fresh_attempts(
    store: Store, clock: Clock
) -> None:
    await store.record_delivery("d-1", "issues", "opened", "octo/hello", [spec(1)], max_attempts=1)
    job = await store.lease("w1", 60)
    assert job is not None
    assert not await store.retry_job(job.id)  # running: not touched
    assert await store.fail(job, "boom", backoff_seconds=1) == "dead"
    assert [j["state"] for j in await store.jobs_of(["octo/hello"])] == ["dead"]
    assert await store.jobs_of(["octo/other"]) == []
    clock.now += 10
    assert await store.retry_job(job.id)
    again = await store.get_job(job.id)
    assert again is not None and again["state"] == "queued" and again["attempts"] == 0
    assert not await store.retry_job(job.id)  # already queued
    leased = await store.lease("w2", 60)
    assert leased is not None and leased.id == job.id


async def test_spend_by_day_groups_by_repo_loop_and_model(store: Store, clock: Clock) -> None:
    run = await store.start_run(None, "fix", "octo/hello", 1)
    for model, cost in (("small", 0.01), ("big", 0.25)):
        await store.record_step(
            run,
            StepRecord(
                name="patch", kind="model", verdict="ok", model=model, cost=cost, prompt_tokens=10
            ),
        )
    other = await store.start_run(None, "triage", "octo/secret", 2)
    await store.record_step(
        other, StepRecord(name="triage", kind="model", verdict="ok", model="small", cost=9.0)
    )
    day = "1970-01-12"  # the test clock's day
    assert await store.spend_by_day(["octo/hello"], by="repo", since=0) == [
        (day, "octo/hello", pytest.approx(0.26), 20)
    ]
    assert await store.spend_by_day(["octo/hello"], by="loop", since=0) == [
        (day, "fix", pytest.approx(0.26), 20)
    ]
    by_model = await store.spend_by_day(["octo/hello"], by="model", since=0)
    assert by_model == [(day, "big", 0.25, 10), (day, "small", 0.01, 10)]
    with pytest.raises(ValueError, match="expected repo, loop or model"):
        await store.spend_by_day(["octo/hello"], by="label", since=0)


async def test_stage_results_are_kept_per_job_redacted_and_the_latest_wins(
    database_url: str, clock: Clock
) -> None:
    database = await dbmod.connect(database_url)
    store = Store(database, clock=clock, secrets=["hunter2-secret-value"])
    await store.init()
    try:
        first = await store.enqueue(spec(1), max_attempts=3)
        other = await store.enqueue(spec(2), max_attempts=3)
        token = "ghp_" + "a" * 36
        await store.save_stage_result(
            first, "reproduce", {"code": f"TOKEN = '{token}'  # hunter2-secret-value", "n": 1}
        )
        await store.save_stage_result(first, "localize", {"files": ["a.py"]})
        await store.save_stage_result(first, "localize", {"files": ["b.py"]}, run_id=9)
        stored = await store.stage_results(first)
        assert set(stored) == {"reproduce", "localize"}
        assert stored["localize"] == {"files": ["b.py"]}
        code = stored["reproduce"]["code"]
        assert token not in code and "hunter2-secret-value" not in code and "REDACTED" in code
        assert stored["reproduce"]["n"] == 1
        assert await store.stage_results(other) == {}
    finally:
        await database.close()


async def test_a_done_job_drops_its_stage_results_and_a_dead_one_keeps_them(
    store: Store, clock: Clock
) -> None:
    for n in (1, 2):
        await store.enqueue(spec(n), max_attempts=1)
    done = await store.lease("w1", 30)
    dead = await store.lease("w2", 30)
    assert done is not None and dead is not None
    for job in (done, dead):
        await store.save_stage_result(job.id, "classify", {"reply": None})
    # A worker that lost its lease does not complete the job, nor delete what it stored.
    await store.complete(dataclasses.replace(done, lease_owner="another worker"))
    assert await store.stage_results(done.id) == {"classify": {"reply": None}}
    await store.complete(done)
    assert await store.stage_results(done.id) == {}
    await store.fail(dead, "boom", backoff_seconds=1)
    assert (await store.get_job(dead.id) or {})["state"] == "dead"
    # The dashboard's Retry of the dead job resumes from what it stored.
    assert await store.retry_job(dead.id)
    assert await store.stage_results(dead.id) == {"classify": {"reply": None}}
