"""Routing real payloads to jobs: pure decisions, no I/O."""

from __future__ import annotations

import json

from gidgethub.sansio import Event

from bot.jobs import TRIGGERS, LoopName
from bot.store import JobSpec
from handlers import decide_jobs
from handlers.common import COMMANDS, PR_COMMANDS, parse_command
from loops import LOOPS
from tests.support import FIXTURES
from tests.support.webhooks import payload


def event(name: str, data: dict) -> Event:  # type: ignore[type-arg]
    return Event(data, event=name, delivery_id="d")


async def test_issue_opened_becomes_a_triage_job() -> None:
    data = payload("issues/opened.15", installation={"id": 42})
    [job] = await decide_jobs(event("issues", data), app_id=1)
    assert (job.kind, job.repo, job.number, job.installation_id) == (
        "triage",
        "Codertocat/Hello-World",
        1,
        42,
    )
    assert "requires_write_from" not in job.payload


async def test_other_actions_and_events_make_no_job() -> None:
    # assigned.1 assigns someone: nothing of ours.
    assert await decide_jobs(event("issues", payload("issues/assigned.1")), app_id=1) == []
    # labeled.9 adds the "bug" label: not ours to act on, but a writer's type-label change may
    # correct loopwright's triage, which a silent `label_feedback` job checks.
    [feedback] = await decide_jobs(event("issues", payload("issues/labeled.9")), app_id=1)
    assert feedback.kind == "label_feedback" and feedback.payload["label"] == "bug"
    assert await decide_jobs(event("ping", payload("ping/event.0")), app_id=1) == []
    plain = payload("issue_comment/created.0")
    assert await decide_jobs(event("issue_comment", plain), app_id=1) == []


async def test_comment_command_needs_write_access_checked_later() -> None:
    data = payload("issue_comment/created.0")
    data["comment"]["body"] = "Thanks!\n/loopwright triage please"
    [job] = await decide_jobs(event("issue_comment", data), app_id=1)
    assert job.kind == "triage" and job.payload["requires_write_from"] == "Codertocat"


async def test_bots_and_our_own_app_never_trigger() -> None:
    data = payload("issues/opened.15")
    data["sender"] = {"login": "dependabot[bot]", "type": "Bot"}
    assert await decide_jobs(event("issues", data), app_id=1) == []
    data = payload("issue_comment/created.0")
    data["comment"]["body"] = "/loopwright triage"
    data["comment"]["performed_via_github_app"] = {"id": 99}
    assert await decide_jobs(event("issue_comment", data), app_id=99) == []


def test_parse_command() -> None:
    assert parse_command("/loopwright triage") == ("triage", "")
    assert parse_command("  /loopwright fix now") == ("fix", "now")
    assert parse_command("please run /loopwright triage") is None  # not at line start
    assert parse_command("/loopwrighttriage") is None


def fix_labeled(**issue: object) -> dict:  # type: ignore[type-arg]
    data = payload("issues/labeled.9", installation={"id": 42})
    data["label"]["name"] = "loopwright:fix"
    data["issue"].update(issue)
    return data


async def test_fix_label_becomes_a_fix_job_for_a_writer_to_be() -> None:
    [job] = await decide_jobs(event("issues", fix_labeled(state="open")), app_id=1)
    assert (job.kind, job.number) == ("fix", 1)
    # Labelling needs only triage access: the worker checks the labeller can write.
    assert job.payload["requires_write_from"] == "Codertocat"


async def test_fix_label_on_a_closed_issue_or_a_pull_request_makes_no_job() -> None:
    assert await decide_jobs(event("issues", fix_labeled(state="closed")), app_id=1) == []
    pr = fix_labeled(state="open", pull_request={"url": "https://api.github.com/x"})
    assert await decide_jobs(event("issues", pr), app_id=1) == []


async def test_issue_loop_commands() -> None:
    for command, kind in [
        ("fix", "fix"),
        ("reproduce", "reproduce"),
        ("retest", "retest"),
        ("stop", "stop"),
    ]:
        data = payload("issue_comment/created.0")
        data["comment"]["body"] = f"/loopwright {command}"
        [job] = await decide_jobs(event("issue_comment", data), app_id=1)
        assert job.kind == kind and job.payload["requires_write_from"] == "Codertocat"


async def test_issue_loop_commands_are_ignored_in_a_pull_request() -> None:
    data = payload("issue_comment/created.0")
    data["comment"]["body"] = "/loopwright fix"
    data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    assert await decide_jobs(event("issue_comment", data), app_id=1) == []


# --- CI failures and dependency updates -------------------------------------------------------


def red_run(**run: object) -> dict:  # type: ignore[type-arg]
    """workflow_run/completed.2 (a real payload) turned red. The example's pull request names
    another repository id than its `repository` (octokit mixed two captures): aligned here."""
    data = payload("workflow_run/completed.2", installation={"id": 42})
    data["workflow_run"]["conclusion"] = "failure"
    data["workflow_run"]["pull_requests"][0]["head"]["repo"]["id"] = data["repository"]["id"]
    data["workflow_run"].update(run)
    return data


async def test_red_workflow_run_of_a_pr_becomes_a_ci_repair_job() -> None:
    [job] = await decide_jobs(event("workflow_run", red_run()), app_id=1)
    assert (job.kind, job.number, job.installation_id) == ("ci_repair", 2, 42)
    assert job.payload["run_id"] == 289782451 and job.payload["where"] == "pull_request"
    assert "requires_write_from" not in job.payload  # GitHub itself reported the failure


async def test_red_run_on_the_default_branch_goes_to_a_tracking_issue() -> None:
    [job] = await decide_jobs(event("workflow_run", red_run(pull_requests=[])), app_id=1)
    assert job.number is None and job.payload["where"] == "default_branch"
    assert job.payload["head_branch"] == "master"


async def test_green_runs_other_branches_forks_and_our_branches_make_no_job() -> None:
    green = red_run(conclusion="success")
    cancelled = red_run(conclusion="cancelled")
    other_branch = red_run(pull_requests=[], head_branch="feature")
    fork = red_run()
    fork["workflow_run"]["pull_requests"][0]["head"]["repo"]["id"] = 1
    fork["workflow_run"]["head_branch"] = "changes"
    ours = red_run(head_branch="loopwright/ci-289782451")
    for data in (green, cancelled, other_branch, fork, ours):
        assert await decide_jobs(event("workflow_run", data), app_id=1) == []


async def test_a_run_triggered_by_a_bot_push_makes_no_job() -> None:
    data = red_run()
    data["sender"] = {"login": "loopwright[bot]", "type": "Bot"}
    assert await decide_jobs(event("workflow_run", data), app_id=1) == []


async def test_check_suite_from_actions_is_left_to_workflow_run() -> None:
    data = payload("check_suite/completed.1", installation={"id": 42})
    assert data["check_suite"]["app"]["slug"] == "github-actions"
    data["check_suite"]["conclusion"] = "failure"
    data["check_suite"]["head_branch"] = data["repository"]["default_branch"]
    assert await decide_jobs(event("check_suite", data), app_id=1) == []
    # Another CI app's red suite on the default branch is ours to diagnose.
    data["check_suite"]["app"]["slug"] = "octocoders-linter"
    [job] = await decide_jobs(event("check_suite", data), app_id=1)
    assert job.kind == "ci_repair" and job.payload["check_suite_id"] == 118578147


def dependabot_pr(action: str = "opened", **pr: object) -> dict:  # type: ignore[type-arg]
    name = {"opened": "opened.0", "synchronize": "synchronize.22", "reopened": "reopened.18"}
    data = payload(f"pull_request/{name[action]}", installation={"id": 42})
    bot = {"login": "dependabot[bot]", "type": "Bot", "id": 49699333}
    data["pull_request"]["user"] = dict(bot)
    data["sender"] = dict(bot)
    data["pull_request"]["title"] = "Bump requests from 2.31.0 to 2.32.0"
    data["pull_request"]["head"]["ref"] = "dependabot/pip/requests-2.32.0"
    data["pull_request"].update(pr)
    return data


async def test_dependabot_pr_opened_synchronized_reopened_become_deps_jobs() -> None:
    for action in ("opened", "synchronize", "reopened"):
        data = dependabot_pr(action, state="open")
        [job] = await decide_jobs(event("pull_request", data), app_id=1)
        assert (job.kind, job.number) == ("deps", data["pull_request"]["number"])
        assert job.payload["trigger"] == f"pull_request.{action}"


async def test_human_prs_other_bots_and_forks_make_no_deps_job() -> None:
    human = payload("pull_request/opened.0")
    assert await decide_jobs(event("pull_request", human), app_id=1) == []
    other = dependabot_pr()
    other["pull_request"]["user"] = other["sender"] = {"login": "pre-commit-ci[bot]", "type": "Bot"}
    assert await decide_jobs(event("pull_request", other), app_id=1) == []
    # Someone else pushing to a Dependabot PR: the sender is not the bot, the PR still is ours.
    pushed = dependabot_pr("synchronize")
    pushed["sender"] = {"login": "Codertocat", "type": "User"}
    assert len(await decide_jobs(event("pull_request", pushed), app_id=1)) == 1
    fork = dependabot_pr()
    fork["pull_request"]["head"]["repo"]["full_name"] = "someone/fork"
    assert await decide_jobs(event("pull_request", fork), app_id=1) == []
    # Renovate is a dependency bot by default too.
    renovate = dependabot_pr()
    bot = {"login": "renovate[bot]", "type": "Bot"}
    renovate["pull_request"]["user"] = renovate["sender"] = bot
    assert len(await decide_jobs(event("pull_request", renovate), app_id=1)) == 1


async def test_pr_commands_retest_and_diagnose() -> None:
    data = payload("issue_comment/created.0")
    data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/x/y/pulls/1"}
    data["comment"]["body"] = "/loopwright retest"
    [job] = await decide_jobs(event("issue_comment", data), app_id=1)
    assert job.kind == "deps" and job.payload["requires_write_from"] == "Codertocat"
    data["comment"]["body"] = "/loopwright diagnose"
    [job] = await decide_jobs(event("issue_comment", data), app_id=1)
    assert job.kind == "ci_repair" and job.payload["requires_write_from"] == "Codertocat"
    # On an issue, `diagnose` means nothing and `retest` is the fix loop's re-test.
    del data["issue"]["pull_request"]
    assert await decide_jobs(event("issue_comment", data), app_id=1) == []
    data["comment"]["body"] = "/loopwright retest"
    [job] = await decide_jobs(event("issue_comment", data), app_id=1)
    assert job.kind == "retest"


# --- the contract with the loops ------------------------------------------------------------


def _command(text: str, *, on_pull: bool) -> dict:  # type: ignore[type-arg]
    data = payload("issue_comment/created.0", installation={"id": 42})
    data["comment"]["body"] = text
    if on_pull:
        data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    return data


def _red_suite() -> dict:  # type: ignore[type-arg]
    data = payload("check_suite/completed.1", installation={"id": 42})
    data["check_suite"].update(
        conclusion="failure", head_branch=data["repository"]["default_branch"]
    )
    data["check_suite"]["app"]["slug"] = "octocoders-linter"
    return data


async def _every_job_a_handler_enqueues() -> list[JobSpec]:
    """The jobs of every real payload in tests/fixtures/webhooks as GitHub sent it, and of the
    variants that start the loops those alone do not: each command on an issue and on a pull
    request, the fix label, red builds, a dependency bot's pull request."""
    deliveries = [
        (path.parent.name, json.loads(path.read_text()))
        for path in sorted((FIXTURES / "webhooks").glob("*/*.json"))
    ]
    deliveries += [
        ("issue_comment", _command(f"/loopwright {name}", on_pull=on_pull))
        for name in COMMANDS
        for on_pull in (False, True)
    ]
    deliveries += [
        ("issues", fix_labeled(state="open")),
        ("workflow_run", red_run()),
        ("workflow_run", red_run(pull_requests=[])),
        ("check_suite", _red_suite()),
        ("pull_request", dependabot_pr(state="open")),
    ]
    jobs: list[JobSpec] = []
    for name, data in deliveries:
        jobs += await decide_jobs(event(name, data), app_id=1)
    return jobs


async def test_every_kind_a_handler_enqueues_has_a_loop_and_its_payload_is_the_trigger() -> None:
    jobs = await _every_job_a_handler_enqueues()
    # Every loop is started by some real event, and nothing is enqueued that no loop runs.
    assert {job.kind for job in jobs} == set(LoopName) == set(LOOPS)
    for job in jobs:
        assert isinstance(job.kind, LoopName) and job.kind in LOOPS
        # What the handler stored is exactly what the loop's trigger model reads back.
        assert TRIGGERS[job.kind].model_validate(job.payload).payload() == job.payload
    # And from the tables: every command names a loop.
    assert set(COMMANDS.values()) | set(PR_COMMANDS.values()) <= set(LOOPS)
