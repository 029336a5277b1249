"""End to end: a signed `workflow_run.completed` (failure) delivery → intake → worker → the
run's jobs and logs through the FakeGitHub's Actions API (the log download redirects to another
host, which must never see our token) → deterministic diagnosis, diffed against the last passing
run → reproduction of the failing command in bubblewrap as the unprivileged test user → fixers
or the scripted model's patch → verification → `loopwright/ci-<run id>` pushed over git smart
HTTP → one draft PR into the failing branch and one sticky diagnosis comment.

The logs are real: pytest and ruff run on the fixture project and their output is wrapped the
way GitHub Actions' job log download returns it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import cirepo
from tests.support.ci_stacks import CI_REPO as REPO
from tests.support.ci_stacks import WORKFLOW_ID, CiStack, finish
from tests.support.cilog_fixtures import actions_log
from tests.support.e2e import serve_repo
from tests.support.fakegithub import FakeJob
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, sandbox_run_as
from tests.support.webhooks import payload

__all__ = ["sandbox_run_as"]

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")


@pytest.fixture
async def ci_stack(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> AsyncIterator[CiStack]:
    async with contextlib.AsyncExitStack() as stack:
        plain = await serve_repo(
            stack,
            tmp_path,
            fake_model,
            REPO,
            cirepo.ci_files(),
            collaborators={"maintainer": "write", "reader": "read"},
            sandbox_user=sandbox_run_as,
        )
        yield CiStack(**vars(plain))


def assert_clean(s: CiStack) -> None:
    s.gh.assert_no_violations()
    assert s.gh.forbidden_actions == []
    # The log host got no credential, ever.
    assert s.gh.blob_requests, "the logs were never downloaded"
    for req in s.gh.blob_requests:
        assert not {k.lower() for k in req.headers} & {"authorization", "cookie"}


async def test_red_pr_run_gets_a_diagnosis_and_a_repair_pr(ci_stack: CiStack) -> None:
    s = ci_stack
    s.green_main_run()  # the last green run: its log lines are noise
    pr, run = s.open_broken_pr()
    sha = run.head_sha
    s.script_mean_fix()
    assert await s.deliver_run(run) == 202
    await s.settle(timeout=120)

    (ci_run,) = await s.runs_of("ci_repair")
    assert ci_run["exit_reason"] == "fixed", ci_run["detail"]
    sticky = s.sticky_on(pr.number)
    assert "tests/test_core.py::test_mean" in sticky  # found by the parser, not the model
    assert "python -m pytest -q" in sticky and "failed 3 of 3 runs" in sticky
    (repair,) = s.pulls_from("loopwright/")
    assert repair.head == f"loopwright/ci-{run.id}" and repair.base == "feature"
    assert repair.draft and not repair.merged
    assert f"/pull/{repair.number}" in sticky
    fixed = s.gh.read_git_file(REPO, repair.head, "stats/core.py")
    assert fixed is not None and cirepo.GOOD_MEAN in fixed
    # Never a push into someone else's branch.
    assert s.gh.branch_sha(REPO, "feature") == sha
    assert not s.model.calls_for("summarize")  # the parsers were sure: no explanation asked
    assert_clean(s)


async def test_lint_failure_on_main_is_fixed_by_ruff_and_tracked_in_one_issue(
    ci_stack: CiStack,
) -> None:
    s = ci_stack
    run = s.red_lint_on_main()
    sha = run.head_sha
    assert await s.deliver_run(run) == 202
    await s.settle(timeout=120)

    (ci_run,) = await s.runs_of("ci_repair")
    assert ci_run["exit_reason"] == "fixed", ci_run["detail"]
    assert not s.model.calls, "ruff --fix needed no model"
    tracking = s.tracking_issues()
    assert len(tracking) == 1 and tracking[0].state == "open"
    sticky = s.sticky_on(tracking[0].number)
    assert "F401" in sticky and "ruff check" in sticky
    (repair,) = s.pulls_from("loopwright/")
    assert repair.base == "main" and repair.head == f"loopwright/ci-{run.id}"
    fixed = s.gh.read_git_file(REPO, repair.head, "stats/core.py")
    assert fixed is not None and "import os" not in fixed

    # The next red run of the same workflow updates the same issue.
    run2 = s.add_run({**cirepo.ci_files(), **cirepo.lint_files()}, branch="main", sha=sha)
    assert await s.deliver_run(run2) == 202
    await s.settle(timeout=120)
    tracking = s.tracking_issues()
    assert len(tracking) == 1
    assert f"#{run2.id}" in s.sticky_on(tracking[0].number)
    assert_clean(s)


async def test_the_repair_runs_on_the_ci_sections_own_patch_settings(ci_stack: CiStack) -> None:
    """The patch stage takes its turns and patience from `ci:`, never from `fix:`: a model that
    only looks gets one attempt of `ci.max_turns` actions."""
    s = ci_stack
    config = cirepo.CONFIG + "  max_turns: 2\n  patience: 1\nfix:\n  max_turns: 5\n  patience: 5\n"
    s.gh.seed_git(REPO, {".github/loopwright.yml": config}, message="patch settings")
    _, run = s.open_broken_pr()
    look = json.dumps({"tool": "view", "path": "stats/core.py", "start": 1, "end": 5})
    s.model.script("patch", look)
    assert await s.deliver_run(run) == 202
    await s.settle(timeout=120)
    (ci_run,) = await s.runs_of("ci_repair")
    assert ci_run["exit_reason"] == "no_progress", ci_run["detail"]
    assert len(s.model.calls_for("patch")) == 2
    assert s.pulls_from("loopwright/") == []
    assert_clean(s)


async def test_flaky_test_is_labelled_with_evidence_and_not_patched(ci_stack: CiStack) -> None:
    s = ci_stack
    pr, run = s.open_flaky_pr()
    assert await s.deliver_run(run) == 202
    await s.settle(timeout=120)

    (ci_run,) = await s.runs_of("ci_repair")
    assert ci_run["exit_reason"] == "flaky", ci_run["detail"]
    assert "loopwright:flaky" in s.gh.repo(REPO).issues[pr.number].labels
    sticky = s.sticky_on(pr.number)
    assert "test_sometimes" in sticky and "of 3 runs" in sticky
    assert s.pulls_from("loopwright/") == []
    assert not s.model.calls_for("patch")
    assert_clean(s)


async def test_the_bots_own_failing_branch_starts_nothing(ci_stack: CiStack) -> None:
    s = ci_stack
    sha = s.gh.seed_git(REPO, cirepo.broken_pr_files(), message="repair", branch="loopwright/ci-1")
    run = s.add_run(
        {**cirepo.ci_files(), **cirepo.broken_pr_files()}, branch="loopwright/ci-1", sha=sha
    )
    data = s.gh.workflow_run_payload(REPO, run)
    data["sender"] = {"login": "loopwright[bot]", "type": "Bot", "id": 1}
    status, body = await s.deliver("workflow_run", data)
    assert status == 202 and body["jobs"] == 0
    await s.settle()
    assert await s.runs_of("ci_repair") == []
    assert s.gh.requests_for("actions/list-jobs-for-workflow-run") == []


async def test_diagnose_command_on_a_pr(ci_stack: CiStack) -> None:
    s = ci_stack
    pr, _ = s.open_broken_pr()
    s.model.script("patch", finish("nothing"))  # a model that gives up
    data = payload("issue_comment/created.0", installation={"id": 1})
    data["repository"]["full_name"] = REPO
    data["issue"]["number"] = pr.number
    data["issue"]["pull_request"] = {"url": f"{s.gh.url}/repos/{REPO}/pulls/{pr.number}"}
    data["comment"]["body"] = "/loopwright diagnose"
    data["sender"] = {"login": "maintainer", "type": "User", "id": 5}
    status, _ = await s.deliver("issue_comment", data)
    assert status == 202
    await s.settle(timeout=120)
    (ci_run,) = await s.runs_of("ci_repair")
    assert ci_run["exit_reason"] in ("no_progress", "budget_exhausted"), ci_run["detail"]
    sticky = s.sticky_on(pr.number)
    assert "tests/test_core.py::test_mean" in sticky and "❌" in sticky
    assert s.pulls_from("loopwright/") == []
    assert_clean(s)


async def test_another_ci_apps_red_check_suite_is_repaired_from_its_report(
    ci_stack: CiStack,
) -> None:
    s = ci_stack
    config = cirepo.CONFIG + '  jobs:\n    "lint (linter-ci)": ["ruff check ."]\n'
    sha = s.gh.seed_git(
        REPO, {**cirepo.lint_files(), ".github/loopwright.yml": config}, message="add os import"
    )
    out, code = cirepo.run_tool(
        ["ruff", "check", "."], {**cirepo.ci_files(), **cirepo.lint_files()}
    )
    assert code == 1
    check = s.gh.add_check_run(
        REPO,
        name="lint (linter-ci)",
        head_sha=sha,
        conclusion="failure",
        app_slug="linter-ci",
        title="ruff found 1 error",
        summary="Lint failed",
        text=out,
    )
    data = payload("check_suite/completed.1", installation={"id": 1})
    repo = s.gh.repo(REPO)
    data["repository"].update(full_name=REPO, id=repo.id, default_branch="main")
    suite = data["check_suite"]
    suite.update(id=check.check_suite_id, head_sha=sha, head_branch="main", conclusion="failure")
    suite["app"]["slug"] = "linter-ci"
    status, body = await s.deliver("check_suite", data)
    assert (status, body["jobs"]) == (202, 1)
    await s.settle(timeout=120)

    (ci_run,) = await s.runs_of("ci_repair")
    assert ci_run["exit_reason"] == "fixed", ci_run["detail"]
    (tracking,) = s.tracking_issues()
    sticky = s.sticky_on(tracking.number)
    assert "F401" in sticky and "from the config" in sticky
    (repair,) = s.pulls_from("loopwright/")
    assert repair.base == "main"
    fixed = s.gh.read_git_file(REPO, repair.head, "stats/core.py")
    assert fixed is not None and "import os" not in fixed
    s.gh.assert_no_violations()
    assert s.gh.forbidden_actions == []


#: A project script's output: nothing the parsers know, so the model is asked to explain it.
CHECK_OUTPUT = "layout: ok\nchangelog: missing entry for 1.2\n"
EXPLANATION = json.dumps(
    {"category": "unknown", "explanation": "The changelog check wants an entry for 1.2."}
)


async def test_a_ci_job_retried_after_its_diagnosis_does_not_ask_the_model_again(
    ci_stack: CiStack,
) -> None:
    s = ci_stack
    sha = s.gh.branch_sha(REPO, "main")
    assert sha is not None
    steps = [("Set up job", "success"), ("Run actions/checkout@v4", "success")]
    failed = FakeJob(
        "check",
        "failure",
        [*steps, ("Run ./scripts/check.sh", "failure")],
        log=actions_log([("./scripts/check.sh", CHECK_OUTPUT, 2)]),
    )
    run = s.gh.add_workflow_run(
        REPO,
        workflow_id=WORKFLOW_ID,
        name="ci",
        head_branch="main",
        head_sha=sha,
        event="push",
        conclusion="failure",
        jobs=[failed],
    )
    s.model.script("summarize", EXPLANATION)
    # GitHub refuses the final edit of the comment once: the job errors after its diagnosis
    # (the model explained the log), and is retried.
    s.gh.fail_next(method="PATCH", path_regex=r"/issues/comments/\d+$", status=422)
    assert await s.deliver_run(run) == 202
    await s.settle(timeout=120)

    [job] = await s.store.list_jobs()
    assert (job["state"], job["attempts"]) == ("done", 2)
    runs = await s.runs_of("ci_repair")
    assert [r["state"] for r in reversed(runs)] == ["error", "done"]
    retry = runs[0]
    assert retry["exit_reason"] == "not_reproduced", retry["detail"]
    # The explanation was asked for once, by the first attempt; the retry restored it.
    assert len(s.model.calls_for("summarize")) == 1
    first = [st["name"] for st in await s.store.steps_for(runs[1]["id"])]
    assert "summarize" in first and "diagnose:check" in first
    again = [st["name"] for st in await s.store.steps_for(retry["id"])]
    assert "resume:diagnose" in again
    assert "summarize" not in again and "diagnose:check" not in again
    # The log was read once: the retry's diagnosis is the stored one.
    assert len(s.gh.blob_requests) == 1
    (tracking,) = s.tracking_issues()
    sticky = s.sticky_on(tracking.number)
    assert "The changelog check wants an entry for 1.2." in sticky
    assert "the key `check`" in sticky
    # The comment's footer still counts the model call the first attempt made.
    assert "model `scripted-small`" in sticky
    assert_clean(s)


async def test_a_ci_job_retried_after_its_repair_does_not_ask_for_the_patch_again(
    ci_stack: CiStack,
) -> None:
    s = ci_stack
    pr, run = s.open_broken_pr()
    s.script_mean_fix()
    # GitHub refuses to open the draft PR once: the job errors after the repair was kept and
    # verified, and is retried.
    s.gh.fail_next(method="POST", path_regex=rf"/repos/{REPO}/pulls$", status=422)
    assert await s.deliver_run(run) == 202
    await s.settle(timeout=180)

    [job] = await s.store.list_jobs()
    assert (job["state"], job["attempts"]) == ("done", 2)
    runs = await s.runs_of("ci_repair")
    assert [r["state"] for r in reversed(runs)] == ["error", "done"]
    retry = runs[0]
    assert retry["exit_reason"] == "fixed", retry["detail"]
    # The model's repair (an edit, then finish) was asked for once, by the first attempt.
    assert len(s.model.calls_for("patch")) == 2
    first = [st["name"] for st in await s.store.steps_for(runs[1]["id"])]
    assert "patch" in first and "resume:repair" not in first
    again = [st["name"] for st in await s.store.steps_for(retry["id"])]
    assert "resume:diagnose" in again and "resume:repair" in again
    assert "patch" not in again and "reproduce" in again
    # The restored repair is the one pushed and opened, as one draft PR into the branch.
    (repair,) = s.pulls_from("loopwright/")
    assert repair.base == "feature" and repair.draft
    fixed = s.gh.read_git_file(REPO, repair.head, "stats/core.py")
    assert fixed is not None and cirepo.GOOD_MEAN in fixed
    sticky = s.sticky_on(pr.number)
    assert f"/pull/{repair.number}" in sticky and "**Repair attempts:**" in sticky
    assert_clean(s)
