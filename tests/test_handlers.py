"""Routing real payloads to jobs: pure decisions, no I/O."""

from __future__ import annotations

from gidgethub.sansio import Event

from handlers import decide_jobs
from handlers.common import parse_command
from tests.conftest import payload


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
    # labeled.9 adds the "bug" label: not ours, no job.
    assert await decide_jobs(event("issues", payload("issues/labeled.9")), app_id=1) == []
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
