"""One job at a time per issue: `issues.opened` and a writer's `/loopwright triage` arriving at
the same instant used to run side by side, both find no sticky comment and both create one."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from tests.support.e2e import make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.webhooks import payload

REPO = "Codertocat/Hello-World"
ISSUES = 6


def _opened(number: int) -> dict[str, Any]:
    data = payload("issues/opened.15", installation={"id": 1})
    data["issue"]["number"], data["issue"]["title"] = number, f"Crash {number}"
    return data


def _command(number: int) -> dict[str, Any]:
    data = payload("issue_comment/created.0", installation={"id": 1})
    data["issue"]["number"] = number
    data["comment"]["body"] = "/loopwright triage"
    data["comment"]["id"] = 5000 + number
    data["sender"]["login"] = "Codertocat"
    return data


async def test_two_triggers_for_one_issue_at_once_make_one_sticky_comment(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    async def slow(request: dict[str, Any]) -> str:
        await asyncio.sleep(0.3)  # both jobs are in their loop at the same time, if allowed
        return triage_answer("bug", "low", "none", [], "Crash")

    fake_model.script("triage", slow)
    async with contextlib.AsyncExitStack() as stack:
        gh = await stack.enter_async_context(running_fake())
        gh.add_repo(
            REPO,
            installation_id=1,
            labels=["bug", "question"],
            files={},
            collaborators={"Codertocat": "admin"},
        )
        for n in range(1, ISSUES + 1):
            gh.add_issue(REPO, number=n, title=f"Crash {n}", body="It crashes.", user="octo")
        settings = make_settings(gh, fake_model, tmp_path)
        s = await serve(stack, gh, fake_model, settings, REPO, workers=4)
        answers = await asyncio.gather(
            *(
                delivery
                for n in range(1, ISSUES + 1)
                for delivery in (
                    s.deliver("issues", _opened(n)),
                    s.deliver("issue_comment", _command(n)),
                )
            )
        )
        assert [status for status, _ in answers] == [202] * 2 * ISSUES
        await s.settle()
        for n in range(1, ISSUES + 1):
            stickies = [
                c
                for c in gh.repo(REPO).issues[n].comments
                if c.user_login == "loopwright[bot]" and "loopwright:sticky" in c.body
            ]
            assert len(stickies) == 1, f"#{n} got {len(stickies)} sticky comments"
        runs = await s.store.list_runs(limit=100)
        # Both jobs of every issue ran (they waited for each other, neither was dropped).
        assert len(runs) == 2 * ISSUES and {r["exit_reason"] for r in runs} == {"done"}
        by_issue: dict[int, list[tuple[float, float]]] = {}
        for r in runs:
            by_issue.setdefault(r["number"], []).append((r["started_at"], r["finished_at"]))
        for n, spans in by_issue.items():
            (_, first_end), (second_start, _) = sorted(spans)
            assert first_end <= second_start, f"#{n}: two runs overlapped"
        gh.assert_no_violations()
