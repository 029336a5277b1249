"""End to end: a Dependabot `pull_request.opened` delivery → intake (the one bot event that
starts a loop) → worker → the suite on the PR's base and head in bubblewrap (setup installs the
pinned wheel offline; tests run without network) → per-test verdict → `deps:safe`/`deps:breaks`
label and a check run → release-note summary → on breaks, the migration loop on
`loopwright/deps-<pr>` and one draft PR into the Dependabot branch.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import cirepo
from tests.support.ci_stacks import DEPS_REPO as REPO
from tests.support.ci_stacks import DepsStack
from tests.support.e2e import serve_repo
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, sandbox_run_as
from tests.support.webhooks import payload

__all__ = ["sandbox_run_as"]

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")


@pytest.fixture
async def deps_stack(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> AsyncIterator[DepsStack]:
    async with contextlib.AsyncExitStack() as stack:
        plain = await serve_repo(
            stack,
            tmp_path,
            fake_model,
            REPO,
            cirepo.deps_files(),
            collaborators={"maintainer": "write"},
            sandbox_user=sandbox_run_as,
        )
        yield DepsStack(**vars(plain))


async def test_breaking_bump_gets_deps_breaks_and_a_migration_pr(deps_stack: DepsStack) -> None:
    s = deps_stack
    pr = s.open_bump("2.0.0")
    s.model.script("summarize", cirepo.NOTES_SUMMARY)
    # First the model tries to move the pin back (refused), then migrates the call.
    s.model.script("patch", cirepo.PIN_BACK, *cirepo.MIGRATION)
    await s.opened(pr)

    (run,) = await s.deps_runs()
    assert run["exit_reason"] == "fixed", run["detail"]
    labels = s.gh.repo(REPO).issues[pr.number].labels
    assert "deps:breaks" in labels and "deps:safe" not in labels
    (check,) = s.checks_on(pr.head_sha)
    assert check.name == "loopwright/deps" and check.conclusion == "failure"
    assert "tests/test_hello.py::test_hello" in check.summary
    assert "test_unrelated" not in check.summary.split("same outcome")[0]
    sticky = s.sticky_on(pr.number)
    assert "`fakelib` 1.0.0 → 2.0.0 (major)" in sticky
    assert "renamed `greeting()`" in sticky  # the release-note bullet
    (migration,) = [p for p in s.gh.repo(REPO).pulls.values() if p.head.startswith("loopwright/")]
    assert migration.head == f"loopwright/deps-{pr.number}"
    assert migration.base == pr.head and migration.draft
    assert f"/pull/{migration.number}" in sticky
    hello = s.gh.read_git_file(REPO, migration.head, "app/hello.py")
    assert hello is not None and "fakelib.greeting(name)" in hello
    # The pin stays where Dependabot put it; Dependabot's branch is untouched.
    assert s.gh.read_git_file(REPO, migration.head, "requirements.txt") == "fakelib==2.0.0\n"
    assert s.gh.branch_sha(REPO, pr.head) == pr.head_sha
    # The release notes reached the model as data, without the hidden instruction.
    prompts = [m["content"] for c in s.model.calls for m in c.messages]
    assert any("greeting()" in p for p in prompts)
    assert not any("ignore previous instructions" in p for p in prompts)
    s.gh.assert_no_violations()
    assert s.gh.forbidden_actions == []


async def test_harmless_bump_is_safe_and_retest_keeps_one_check(deps_stack: DepsStack) -> None:
    s = deps_stack
    pr = s.open_bump("1.0.1")
    s.model.script("summarize", '{"bullets": ["Packaging fixes only."]}')
    await s.opened(pr)

    (run,) = await s.deps_runs()
    assert run["exit_reason"] == "done", run["detail"]
    labels = s.gh.repo(REPO).issues[pr.number].labels
    assert "deps:safe" in labels and "deps:breaks" not in labels
    (check,) = s.checks_on(pr.head_sha)
    assert check.conclusion == "success"
    assert "(patch)" in s.sticky_on(pr.number)
    assert not s.model.calls_for("patch")
    assert [p for p in s.gh.repo(REPO).pulls.values() if p.head.startswith("loopwright/")] == []

    # `/loopwright retest` by a maintainer re-runs the verdict: same label, one check run.
    data = payload("issue_comment/created.0", installation={"id": 1})
    data["repository"]["full_name"] = REPO
    data["issue"]["number"] = pr.number
    data["issue"]["pull_request"] = {"url": f"{s.gh.url}/repos/{REPO}/pulls/{pr.number}"}
    data["comment"]["body"] = "/loopwright retest"
    data["sender"] = {"login": "maintainer", "type": "User", "id": 5}
    status, _ = await s.deliver("issue_comment", data)
    assert status == 202
    await s.settle(timeout=180)
    assert len(await s.deps_runs()) == 2
    assert len(s.checks_on(pr.head_sha)) == 1
    assert "deps:safe" in s.gh.repo(REPO).issues[pr.number].labels
    s.sticky_on(pr.number)  # still exactly one comment
    s.gh.assert_no_violations()


async def test_a_deps_job_retried_after_its_summary_does_not_summarize_again(
    deps_stack: DepsStack,
) -> None:
    s = deps_stack
    pr = s.open_bump("1.0.1")
    s.model.script("summarize", '{"bullets": ["Packaging fixes only."]}')
    # GitHub refuses the final edit of the comment once: the job errors after the summary,
    # and is retried.
    s.gh.fail_next(method="PATCH", path_regex=r"/issues/comments/\d+$", status=422)
    await s.opened(pr)

    [job] = await s.store.list_jobs()
    assert (job["state"], job["attempts"]) == ("done", 2)
    runs = await s.deps_runs()
    assert [r["state"] for r in reversed(runs)] == ["error", "done"]
    retry = runs[0]
    assert retry["exit_reason"] == "done", retry["detail"]
    # The release notes were summarized once, by the first attempt; the retry restored it.
    assert len(s.model.calls_for("summarize")) == 1
    first = [st["name"] for st in await s.store.steps_for(runs[1]["id"])]
    assert "summarize" in first and "verdict" in first
    again = [st["name"] for st in await s.store.steps_for(retry["id"])]
    assert "resume:summarize" in again and "summarize" not in again
    # The verdict is made again (deterministic), with the same label and the one check run.
    assert "verdict" in again
    labels = s.gh.repo(REPO).issues[pr.number].labels
    assert "deps:safe" in labels and "deps:breaks" not in labels
    (check,) = s.checks_on(pr.head_sha)
    assert check.conclusion == "success"
    sticky = s.sticky_on(pr.number)
    assert "- Packaging fixes only." in sticky
    # The comment's footer still counts the model call the first attempt made.
    assert "model `scripted-small`" in sticky
    s.gh.assert_no_violations()
