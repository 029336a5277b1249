"""End to end: a signed `issues.labeled` (or `/loopwright fix`) delivery → intake → worker →
clone over git smart HTTP from the FakeGitHub → sandboxed baseline → reproduction test written
by the scripted model → patch attempts kept or reverted by the sandboxed suite → re-test → push
of `loopwright/fix-1` → one draft PR, labels and the sticky comment.

Everything is real except GitHub (the FakeGitHub, over HTTP, with git served by
`git http-backend`) and the model (a scripted OpenAI-compatible server). Tests run in bubblewrap
as the unprivileged test user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime
from tests.support import fixrepo
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, sandbox_run_as
from tests.support.webhooks import payload

__all__ = ["sandbox_run_as"]

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")

REPO = "octo/calc"


class FixStack(Stack):
    #: The settings the stack serves with (for a test that starts workers of its own).
    settings: Any = None

    async def post(self, event: str, data: dict[str, Any]) -> int:
        status, _ = await self.deliver(event, data)
        return status

    def sticky(self) -> str:
        bodies = [c.body for c in self.issue().comments if "loopwright:sticky" in (c.body or "")]
        assert len(bodies) == 1, f"expected one sticky comment, found {len(bodies)}"
        return str(bodies[0])

    def pulls(self) -> list[Any]:
        return list(self.gh.repo(REPO).pulls.values())

    async def last_run(self) -> dict[str, Any]:
        runs = await self.store.list_runs()
        return next(r for r in runs if r["loop"] in ("fix", "reproduce", "retest"))


def labeled(sender: str = "maintainer") -> dict[str, Any]:
    data = payload("issues/labeled.9", installation={"id": 1})
    data["repository"]["full_name"] = REPO
    data["issue"]["number"] = 1
    data["issue"]["state"] = "open"
    data["issue"].pop("pull_request", None)
    data["label"]["name"] = "loopwright:fix"
    data["sender"]["login"] = sender
    data["sender"]["type"] = "User"
    return data


def command(text: str, sender: str = "maintainer") -> dict[str, Any]:
    data = payload("issue_comment/created.0", installation={"id": 1})
    data["repository"]["full_name"] = REPO
    data["issue"]["number"] = 1
    data["comment"]["body"] = text
    data["sender"]["login"] = sender
    data["sender"]["type"] = "User"
    return data


@pytest.fixture
async def stack_factory(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(config: str | None = None, *, workers: int = 2, **extra: Any) -> FixStack:
            gh = await stack.enter_async_context(running_fake(git_root=tmp_path / "git"))
            gh.add_repo(
                REPO,
                installation_id=1,
                labels=["bug"],
                files=fixrepo.files(config),
                collaborators={"maintainer": "write", "reader": "read"},
                git=True,
            )
            gh.add_issue(REPO, number=1, title=fixrepo.ISSUE_TITLE, body=fixrepo.ISSUE_BODY)
            settings = make_settings(
                gh,
                fake_model,
                tmp_path / "data",
                model_write_test="scripted-small",
                model_patch="scripted-small",
                github_max_wait_seconds=2,
                sandbox_user=sandbox_run_as,
                **extra,
            )
            plain = await serve(stack, gh, fake_model, settings, REPO, workers=workers)
            made = FixStack(**vars(plain))
            made.settings = settings
            return made

        yield make


def assert_nothing_forbidden(s: FixStack) -> None:
    s.gh.assert_no_violations()
    assert s.gh.forbidden_actions == []


async def test_label_fix_opens_one_draft_pr_with_a_verified_fix(stack_factory: Any) -> None:
    s: FixStack = await stack_factory()
    s.model.script("write_test", fixrepo.repro_answer())
    s.model.script("patch", *fixrepo.RIGHT_FIX)
    assert await s.post("issues", labeled()) == 202
    await s.settle()

    run = await s.last_run()
    assert run["exit_reason"] == "fixed", run["detail"]
    (pr,) = s.pulls()
    assert pr.draft and pr.head == "loopwright/fix-1" and pr.base == "main"
    assert pr.state == "open" and not pr.merged
    body = pr.issue.body
    assert "Fixes #1" in body and "tests/test_loopwright_issue_1.py" in body
    assert "| fixed |" in body and "3/3" in body  # the verification table
    assert "| kept |" in body  # the attempts ledger
    assert f"run #{run['id']}" in body
    # The branch really holds the reproduction, the held-out variant and the fix.
    fixed = s.gh.read_git_file(REPO, "loopwright/fix-1", "calc/words.py")
    assert fixed is not None and "if words else" in fixed
    assert s.gh.read_git_file(REPO, "loopwright/fix-1", "tests/test_loopwright_issue_1.py")
    assert s.gh.read_git_file(REPO, "loopwright/fix-1", "tests/test_loopwright_holdout_1.py")
    assert s.gh.read_git_file(REPO, "main", "calc/words.py") == fixrepo.WORDS_PY
    # The run records the diff that went out (the dashboard's run page shows it), before the
    # push and the PR.
    names = [st["name"] for st in await s.store.steps_for(run["id"])]
    assert names[-3:] == ["diff", "push", "draft_pr"], names
    (diff,) = [st for st in await s.store.steps_for(run["id"]) if st["name"] == "diff"]
    assert diff["verdict"] == "kept" and "+++ b/calc/words.py" in diff["output"]
    assert "if words else" in diff["output"] and "test_loopwright_holdout_1.py" in diff["output"]
    assert "loopwright:draft-pr" in s.issue().labels
    assert "loopwright:needs-human" not in s.issue().labels
    sticky = s.sticky()
    assert "Draft PR:" in sticky and f"/pull/{pr.number}" in sticky
    assert "sk-test-" not in sticky and "sk-test-" not in body
    # The patch model never saw the held-out variant.
    for call in s.model.calls_for("patch"):
        assert "blank_text" not in json.dumps(call.messages)
    assert_nothing_forbidden(s)


async def test_wrong_patches_are_rejected_and_the_right_one_kept(stack_factory: Any) -> None:
    wrong = list(fixrepo.WRONG_PATCHES.values())
    config = fixrepo.loopwright_config(patience=len(wrong) + 1, max_turns=3)
    config += "budgets:\n  max_iterations: 10\n  max_tokens: 200000\n"
    s: FixStack = await stack_factory(config)
    s.model.script("write_test", fixrepo.repro_answer())
    s.model.script("patch", *[a for attempt in wrong for a in attempt], *fixrepo.RIGHT_FIX)
    assert await s.post("issues", labeled()) == 202
    await s.settle(timeout=240)

    run = await s.last_run()
    steps = await s.store.steps_for(run["id"])
    assert run["exit_reason"] == "fixed", "\n".join(
        str(x) for x in [(st["name"], st["verdict"], st["output"][:200]) for st in steps[-45:]]
    )
    verdicts = [st["verdict"] for st in steps if st["name"].startswith("attempt ")]
    # Protected paths: the edit is refused, nothing changes. Source hacks: scored, reverted.
    assert verdicts == [
        "no_change",  # delete the failing test
        "no_change",  # skip it
        "no_change",  # weaken its assertion
        "no_change",  # edit conftest.py
        "no_change",  # edit CI config
        "reverted",  # special-case the test's input: the held-out variant fails
        # Break another test (which then fails its assertion): a behaviour-change candidate,
        # remembered for a human but not built on; the next attempt starts from the
        # reproduction again.
        "kept",
        "kept",  # the right fix, which wins
    ], verdicts
    notes = [st["output"] for st in steps if st["name"].startswith("attempt ")]
    assert "held-out variant FAILS" in notes[5]
    assert "test_words.py::test_last_word" in notes[6]
    refusals = [
        st["output"] for st in steps if st["name"] == "tool:edit" and st["verdict"] == "error"
    ]
    assert len(refusals) == 5 and all("protected" in r for r in refusals), refusals
    # What was pushed: only the right fix, the tests untouched.
    branch = "loopwright/fix-1"
    assert s.gh.read_git_file(REPO, branch, "tests/conftest.py") == fixrepo.CONFTEST_PY
    assert s.gh.read_git_file(REPO, branch, ".github/workflows/ci.yml") == fixrepo.CI_YML
    assert 'assert last_word("") == ""' in (
        s.gh.read_git_file(REPO, branch, "tests/test_loopwright_issue_1.py") or ""
    )
    words = s.gh.read_git_file(REPO, branch, "calc/words.py") or ""
    assert "if words else" in words and 'if text == ""' not in words
    assert len(s.pulls()) == 1
    assert_nothing_forbidden(s)


async def test_a_fix_that_passes_only_sometimes_is_not_a_fix(stack_factory: Any) -> None:
    s: FixStack = await stack_factory()
    s.model.script("write_test", fixrepo.repro_answer(holdout=""))
    s.model.script("patch", *fixrepo.FLAKY_FIX)
    assert await s.post("issues", labeled()) == 202
    await s.settle()

    run = await s.last_run()
    assert run["exit_reason"] == "flaky", run["detail"]
    assert s.pulls() == []
    assert s.gh.branch_sha(REPO, "loopwright/fix-1") is None
    assert "loopwright:needs-human" in s.issue().labels
    sticky = s.sticky()
    assert "flaky_head" in sticky and "passes only some of the time" in sticky
    assert_nothing_forbidden(s)


async def test_budget_exhaustion_ends_quickly_and_says_so(stack_factory: Any) -> None:
    config = fixrepo.loopwright_config(patience=10) + "budgets:\n  max_iterations: 2\n"
    s: FixStack = await stack_factory(config)
    s.model.script("write_test", fixrepo.repro_answer())
    # A model that never manages an edit (the search text does not exist).
    s.model.script("patch", fixrepo.edit("calc/words.py", "no such text", "x"), fixrepo.finish())
    assert await s.post("issues", labeled()) == 202
    await s.settle()

    run = await s.last_run()
    assert run["exit_reason"] == "budget_exhausted"
    assert "2 of 2 attempts used" in run["detail"]
    assert s.pulls() == []
    assert "loopwright:needs-human" in s.issue().labels
    sticky = s.sticky()
    assert "ran out of budget" in sticky and "budget_exhausted" in sticky
    assert "test_loopwright_issue_1.py" in sticky  # what was tried: the reproduction


async def test_an_issue_that_cannot_be_reproduced(stack_factory: Any) -> None:
    s: FixStack = await stack_factory(fixrepo.loopwright_config(reproduce_attempts=2))
    s.model.script("write_test", fixrepo.repro_answer(test=fixrepo.PASSING_TEST))
    assert await s.post("issues", labeled()) == 202
    await s.settle()

    run = await s.last_run()
    assert run["exit_reason"] == "not_reproduced"
    assert len(s.model.calls_for("write_test")) == 2
    assert s.model.calls_for("patch") == []
    # The second attempt was told why the first was refused.
    second = json.dumps(s.model.calls_for("write_test")[1].messages)
    assert "passes on the base commit" in second
    assert s.pulls() == [] and "loopwright:needs-human" in s.issue().labels
    sticky = s.sticky()
    assert "could not reproduce" in sticky and "passes on the base commit" in sticky


async def test_a_non_writers_label_is_ignored(stack_factory: Any) -> None:
    s: FixStack = await stack_factory()
    s.model.script("write_test", fixrepo.repro_answer())
    assert await s.post("issues", labeled(sender="reader")) == 202
    await s.settle()
    run = await s.last_run()
    assert run["exit_reason"] == "unauthorized"
    assert s.model.calls == []
    assert s.pulls() == [] and s.issue().comments == []
    assert s.gh.requests_for("pulls/create") == []


async def test_stop_cancels_a_running_loop(stack_factory: Any) -> None:
    s: FixStack = await stack_factory()

    async def reproduce_then_stop(_request: dict[str, Any]) -> str:
        # A writer says stop while the model is answering; the delivery is accepted (and
        # durably queued) before the answer returns, so the loop sees it at its next check.
        assert await s.post("issue_comment", command("/loopwright stop")) == 202
        return fixrepo.repro_answer()

    s.model.script("write_test", reproduce_then_stop)
    s.model.script("patch", *fixrepo.RIGHT_FIX)
    assert await s.post("issues", labeled()) == 202
    await s.settle()
    run = await s.last_run()
    assert run["exit_reason"] == "cancelled"
    assert s.model.calls_for("patch") == []
    assert s.pulls() == []
    assert "was stopped on request" in s.sticky()


async def test_a_readers_stop_does_not_cancel(stack_factory: Any) -> None:
    s: FixStack = await stack_factory()

    async def reproduce_then_stop(_request: dict[str, Any]) -> str:
        assert await s.post("issue_comment", command("/loopwright stop", "reader")) == 202
        return fixrepo.repro_answer()

    s.model.script("write_test", reproduce_then_stop)
    s.model.script("patch", *fixrepo.RIGHT_FIX)
    assert await s.post("issues", labeled()) == 202
    await s.settle()
    runs = {r["loop"]: r for r in await s.store.list_runs()}
    assert runs["fix"]["exit_reason"] == "fixed"
    assert runs["stop"]["exit_reason"] == "unauthorized"
    assert len(s.pulls()) == 1


async def test_crash_and_retry_and_a_second_trigger_leave_one_pr(stack_factory: Any) -> None:
    s: FixStack = await stack_factory(github_max_tries=2)
    s.model.script("write_test", fixrepo.repro_answer())
    s.model.script("patch", *fixrepo.RIGHT_FIX * 3)
    # The PR is opened, then GitHub fails every try to label the issue: the job errors after
    # its outputs are half made, and the worker retries it.
    s.gh.fail_next(method="POST", path_regex=r"/issues/1/labels$", status=502, times=2)
    assert await s.post("issues", labeled()) == 202
    await s.settle(timeout=240)

    runs = [r for r in await s.store.list_runs() if r["loop"] == "fix"]
    assert [r["state"] for r in reversed(runs)] == ["error", "done"]
    assert runs[0]["exit_reason"] == "fixed"
    assert len(s.gh.requests_for("pulls/create")) == 1
    assert len(s.gh.requests_for("pulls/update")) == 1  # the retry edited the same PR
    assert len(s.pulls()) == 1
    # The retry resumed after the patch stage: no model call was made twice.
    assert len(s.model.calls_for("write_test")) == 1
    assert len(s.model.calls_for("patch")) == len(fixrepo.RIGHT_FIX)
    retry = [st["name"] for st in await s.store.steps_for(runs[0]["id"])]
    assert "resume:reproduce" in retry and "resume:patch" in retry and "retest" in retry
    # A repeated trigger reuses the branch and the PR.
    assert await s.post("issue_comment", command("/loopwright fix")) == 202
    await s.settle(timeout=240)
    assert len(s.pulls()) == 1 and len(s.gh.requests_for("pulls/create")) == 1
    assert "loopwright:draft-pr" in s.issue().labels
    s.sticky()  # still exactly one comment
    assert_nothing_forbidden(s)


async def test_a_worker_killed_while_patching_is_resumed_without_a_second_reproduction(
    stack_factory: Any,
) -> None:
    # The intake alone; the workers are started (and one killed) by the test.
    s: FixStack = await stack_factory(workers=0, job_lease_seconds=3)
    patching, answered = asyncio.Event(), asyncio.Event()

    async def first_patch_call(_request: dict[str, Any]) -> str:
        patching.set()
        # The worker dies before this answers.
        await asyncio.wait_for(answered.wait(), 60)
        return fixrepo.RIGHT_FIX[0]

    s.model.script("write_test", fixrepo.repro_answer())
    s.model.script("patch", first_patch_call, *fixrepo.RIGHT_FIX)
    async with Runtime.open(s.settings, workers=1) as first:
        assert await s.post("issues", labeled()) == 202
        await asyncio.wait_for(patching.wait(), 180)
        assert first.pool is not None
        # Its tasks stop, nobody heartbeats, nothing is handed back: the lease lapses.
        await first.pool.stop(release=False)
    answered.set()
    [job] = [j for j in await s.store.list_jobs() if j["kind"] == "fix"]
    assert (job["state"], job["attempts"]) == ("running", 1)
    async with Runtime.open(s.settings, workers=1):
        await s.settle(timeout=240)

    runs = [r for r in await s.store.list_runs() if r["loop"] == "fix"]
    assert len(runs) == 2
    retry = runs[0]
    assert retry["exit_reason"] == "fixed", retry["detail"]
    # The reproduction's model call was made once, by the first worker; the retry restored it.
    assert len(s.model.calls_for("write_test")) == 1
    steps = [st["name"] for st in await s.store.steps_for(retry["id"])]
    assert "resume:reproduce" in steps
    assert "write_test" not in steps and "judge_repro" not in steps and "baseline" not in steps
    assert "patch" in steps and "retest" in steps
    first_steps = [st["name"] for st in await s.store.steps_for(runs[1]["id"])]
    assert "write_test" in first_steps and "resume:reproduce" not in first_steps
    assert len(s.pulls()) == 1 and len(s.gh.requests_for("pulls/create")) == 1
    pull = s.pulls()[0]
    # The restored reproduction is on the branch and in the report, as if made in this run.
    assert "tests/test_loopwright_issue_1.py" in s.sticky()
    assert "tests/test_loopwright_issue_1.py" in pull.body
    assert "loopwright:draft-pr" in s.issue().labels
    assert_nothing_forbidden(s)


async def test_retest_command_reports_the_fix_branch(stack_factory: Any) -> None:
    s: FixStack = await stack_factory()
    s.model.script("write_test", fixrepo.repro_answer())
    s.model.script("patch", *fixrepo.RIGHT_FIX)
    assert await s.post("issues", labeled()) == 202
    await s.settle()
    assert await s.post("issue_comment", command("/loopwright retest")) == 202
    await s.settle()
    run = await s.last_run()
    assert run["loop"] == "retest" and run["exit_reason"] == "fixed", run["detail"]
    sticky = s.sticky()
    assert "loopwright re-test" in sticky and "fixes the reproduction on every run" in sticky
    assert "test_last_word_of_empty_text | 0/3 | 3/3 | fixed" in sticky.replace("`", "")


async def test_retest_without_a_fix_branch_says_there_is_nothing_to_re_test(
    stack_factory: Any,
) -> None:
    s: FixStack = await stack_factory()
    assert await s.post("issue_comment", command("/loopwright retest")) == 202
    await s.settle()
    run = await s.last_run()
    assert run["loop"] == "retest" and run["exit_reason"] == "not_reproduced", run["detail"]
    sticky = s.sticky()
    assert "❌ Nothing to re-test:" in sticky and "`/loopwright fix` makes one." in sticky
    assert "loopwright:needs-human" not in s.issue().labels
    assert s.model.calls == []
