"""The contract between intake, the queue and the loops (`bot/jobs.py`): every loop name has a
loop and a trigger model, payloads stored by earlier releases still parse into the same JSON,
and a job that can never run is buried at once by the real worker while a transient failure is
still retried."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.jobs import (
    TRIGGERS,
    CiTrigger,
    LabelFeedbackTrigger,
    LoopName,
    PermanentJobError,
    TriageTrigger,
    loop_name,
)
from bot.store import Job, JobSpec
from loops import ISSUE_LOOPS, LOOPS
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.triage_repo import CONFIG, LABELS, opened

REPO = "Codertocat/Hello-World"


def job(kind: str, payload: Any) -> Job:
    return Job(
        id=12,
        delivery_id=None,
        kind=kind,
        repo=REPO,
        installation_id=1,
        number=1,
        payload=payload,
        attempts=1,
        max_attempts=3,
        lease_owner="w",
    )


def test_every_loop_name_has_a_loop_and_a_trigger_model() -> None:
    assert set(LOOPS) == set(LoopName) == set(TRIGGERS)
    assert set(ISSUE_LOOPS) < set(LOOPS)
    assert all(isinstance(name, LoopName) for name in LOOPS)
    # The stored strings (`jobs.kind`, `runs.loop`, metric labels): a rename would orphan the
    # rows already queued, so it must be a deliberate change here too.
    assert [n.value for n in LoopName] == [
        "triage",
        "fix",
        "reproduce",
        "retest",
        "stop",
        "train",
        "label_feedback",
        "ci_repair",
        "deps",
    ]


#: Payloads exactly as the handlers of earlier releases wrote them into `jobs.payload`.
EARLIER_PAYLOADS: list[tuple[LoopName, dict[str, Any]]] = [
    (LoopName.TRIAGE, {"trigger": "issues.opened"}),
    (
        LoopName.TRIAGE,
        {"trigger": "/loopwright triage", "requires_write_from": "alice", "comment_id": 7},
    ),
    (LoopName.FIX, {"trigger": "label loopwright:fix", "requires_write_from": "alice"}),
    (
        LoopName.FIX,
        {"trigger": "/loopwright fix", "requires_write_from": "alice", "comment_id": None},
    ),
    (
        LoopName.REPRODUCE,
        {"trigger": "/loopwright reproduce", "requires_write_from": "a", "comment_id": 1},
    ),
    (
        LoopName.RETEST,
        {"trigger": "/loopwright retest", "requires_write_from": "a", "comment_id": 1},
    ),
    (LoopName.STOP, {"trigger": "/loopwright stop", "requires_write_from": "a", "comment_id": 1}),
    (LoopName.TRAIN, {"trigger": "installation.created"}),
    (LoopName.TRAIN, {"trigger": "/loopwright train", "requires_write_from": "a", "comment_id": 1}),
    (
        LoopName.LABEL_FEEDBACK,
        {
            "trigger": "issues.labeled",
            "issue": 3,
            "label": "bug",
            "action": "labeled",
            "writer": "a",
        },
    ),
    # Before the `writer` key (3f72db7): the labeller in `requires_write_from`.
    (
        LoopName.LABEL_FEEDBACK,
        {
            "trigger": "issues.unlabeled",
            "issue": 3,
            "label": "bug",
            "action": "unlabeled",
            "requires_write_from": "a",
        },
    ),
    (
        LoopName.CI_REPAIR,
        {
            "trigger": "workflow_run.completed",
            "run_id": 42,
            "where": "pull_request",
            "head_branch": "topic",
            "head_sha": "abc",
        },
    ),
    (
        LoopName.CI_REPAIR,
        {
            "trigger": "check_suite.completed",
            "check_suite_id": 9,
            "app_id": None,
            "app_name": "a CI app",
            "where": "default_branch",
            "head_branch": "main",
            "head_sha": "abc",
        },
    ),
    (
        LoopName.CI_REPAIR,
        {"trigger": "/loopwright diagnose", "requires_write_from": "a", "comment_id": 1},
    ),
    (LoopName.DEPS, {"trigger": "pull_request.synchronize", "head_sha": "abc"}),
    (LoopName.DEPS, {"trigger": "/loopwright retest", "requires_write_from": "a", "comment_id": 1}),
]


@pytest.mark.parametrize(("kind", "stored"), EARLIER_PAYLOADS)
def test_payloads_stored_by_earlier_releases_parse_and_dump_to_the_same_json(
    kind: LoopName, stored: dict[str, Any]
) -> None:
    trigger = TRIGGERS[kind].of(job(kind, stored))
    # The same keys and values, nothing added: a job queued before an upgrade runs, and the
    # same request queued after it still collapses into it (the queue key hashes the payload).
    assert trigger.payload() == stored


def test_what_the_loops_read_from_a_trigger() -> None:
    old = LabelFeedbackTrigger.of(job(LoopName.LABEL_FEEDBACK, EARLIER_PAYLOADS[10][1]))
    assert (old.issue, old.label, old.action, old.who) == (3, "bug", "unlabeled", "a")
    diagnose = CiTrigger.of(job(LoopName.CI_REPAIR, EARLIER_PAYLOADS[13][1]))
    assert diagnose.run_id is None and diagnose.check_suite_id is None
    assert (diagnose.where, diagnose.head_branch) == ("pull_request", "")


@pytest.mark.parametrize(
    ("kind", "payload", "problem"),
    [
        (LoopName.TRIAGE, {"trigger": "issues.opened", "bogus": 1}, "bogus: Extra inputs"),
        (LoopName.TRIAGE, {}, "trigger: Field required"),
        (LoopName.TRIAGE, ["issues.opened"], "payload: Input should be"),
        (LoopName.LABEL_FEEDBACK, {"trigger": "issues.labeled", "issue": 3}, "label: Field"),
        (LoopName.CI_REPAIR, {"trigger": "t", "where": "elsewhere"}, "where: Input should be"),
        (LoopName.CI_REPAIR, {"trigger": "t", "run_id": 1, "check_suite_id": 2}, "not both"),
    ],
)
def test_a_payload_that_is_not_its_loops_trigger_is_a_permanent_error(
    kind: LoopName, payload: Any, problem: str
) -> None:
    with pytest.raises(PermanentJobError) as exc:
        TRIGGERS[kind].of(job(kind, payload))
    message = str(exc.value)
    assert message.startswith(f"job 12 ({kind}): its payload is not a {TRIGGERS[kind].__name__}")
    assert problem in message and "errors.pydantic.dev" not in message


def test_a_kind_without_a_loop_is_a_permanent_error() -> None:
    assert loop_name("ci_repair") is LoopName.CI_REPAIR
    with pytest.raises(PermanentJobError, match="no loop named 'frobnicate'"):
        loop_name("frobnicate")


# --- through the real worker -------------------------------------------------------------------


@pytest.fixture
async def stack(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as exits:
        gh = await exits.enter_async_context(running_fake())
        gh.add_repo(
            REPO,
            installation_id=1,
            labels=LABELS,
            files={".github/loopwright.yml": CONFIG},
            collaborators={"Codertocat": "admin"},
        )
        gh.add_issue(REPO, number=1, title="Crash on start", body="It crashes.", user="Codertocat")
        # One try per GitHub request: a 502 fails the attempt, and the worker retries the job.
        settings = make_settings(gh, fake_model, tmp_path, job_max_attempts=3, github_max_tries=1)
        yield await serve(exits, gh, fake_model, settings, REPO)


async def test_the_worker_buries_a_job_that_can_never_run_and_retries_one_that_can(
    stack: Stack,
) -> None:
    s = stack
    s.model.script("triage", triage_answer("bug"))
    s.gh.fail_next(method="GET", path_regex=r"/issues/1$", status=502)  # transient
    status, _ = await s.deliver("issues", opened())
    assert status == 202
    # What no handler of this release enqueues: a kind from a newer (or older) release, and a
    # triage job whose payload is not a triage trigger.
    unknown = await s.store.enqueue(
        JobSpec("frobnicate", REPO, 1, 1, {"trigger": "x"}),  # type: ignore[arg-type]
        max_attempts=3,
    )
    garbled = await s.store.enqueue(
        JobSpec(LoopName.TRIAGE, REPO, 1, 2, {"trigger": "issues.opened", "run_id": 5}),
        max_attempts=3,
    )
    await s.settle(timeout=60)

    jobs = {j["id"]: j for j in await s.store.list_jobs()}
    assert (jobs[unknown]["state"], jobs[unknown]["attempts"]) == ("dead", 1)
    assert jobs[unknown]["last_error"] == "PermanentJobError: no loop named 'frobnicate'"
    assert (jobs[garbled]["state"], jobs[garbled]["attempts"]) == ("dead", 1)
    assert jobs[garbled]["last_error"] == (
        f"PermanentJobError: job {garbled} (triage): its payload is not a TriageTrigger: "
        "run_id: Extra inputs are not permitted"
    )
    [good] = [j for j in jobs.values() if j["id"] not in (unknown, garbled)]
    assert (good["state"], good["attempts"]) == ("done", 2)
    assert "GitHubBroken" in good["last_error"]  # the failed attempt, retried
    # The buried jobs never started a run (nor asked GitHub anything): only the good one did.
    runs = await s.store.list_runs()
    assert {r["job_id"] for r in runs} == {good["id"]}
    assert [r["state"] for r in sorted(runs, key=lambda r: r["id"])] == ["error", "done"]
    assert s.issue().labels[0] == "bug"
    assert TriageTrigger.model_validate(json.loads(good["payload"])).trigger == "issues.opened"
