"""The CI-repair and dependency end-to-end stacks: `Stack` (tests/support/e2e.py) over the
fixture projects of tests/support/cirepo.py, with what their tests and bench/ci_tokens.py seed
and inspect (workflow runs with real logs, PRs, Dependabot bumps, sticky comments, check runs)."""

from __future__ import annotations

import json
from typing import Any

from tests.support import cirepo
from tests.support.cilog_fixtures import actions_log
from tests.support.e2e import Stack
from tests.support.fakegithub import FakeJob

CI_REPO = "octo/stats"
WORKFLOW_ID = 77


def edit(path: str, search: str, replace: str) -> str:
    return json.dumps({"tool": "edit", "path": path, "search": search, "replace": replace})


def finish(summary: str) -> str:
    return json.dumps({"tool": "finish", "summary": summary})


class CiStack(Stack):
    def sticky_on(self, number: int) -> str:
        issue = self.gh.repo(CI_REPO).issues[number]
        bodies = [c.body for c in issue.comments if "loopwright:sticky" in (c.body or "")]
        assert len(bodies) == 1, f"expected one sticky comment, found {len(bodies)}"
        return str(bodies[0])

    def tracking_issues(self) -> list[Any]:
        issues = self.gh.repo(CI_REPO).issues.values()
        return [i for i in issues if "loopwright:tracking" in (i.body or "")]

    def pulls_from(self, prefix: str) -> list[Any]:
        return [p for p in self.gh.repo(CI_REPO).pulls.values() if p.head.startswith(prefix)]

    async def runs_of(self, loop: str) -> list[dict[str, Any]]:
        jobs = await self.store.list_jobs()
        assert all(j["state"] == "done" for j in jobs), [
            (j["kind"], j["state"], j["last_error"]) for j in jobs
        ]
        return [r for r in await self.store.list_runs() if r["loop"] == loop]

    def add_run(
        self,
        files: dict[str, str | bytes | None],
        *,
        branch: str,
        sha: str,
        pulls: list[int] | None = None,
        event: str = "push",
    ) -> Any:
        """A workflow run of the fixture's CI on `files`, with the real output of its two jobs
        (ruff, pytest) as their logs."""
        lint_out, lint_code = cirepo.run_tool(["ruff", "check", "."], files)
        test_out, test_code = cirepo.run_tool(["pytest", "-q"], files)
        lint_log = actions_log([("ruff check .", lint_out, lint_code)])
        test_log = actions_log([("python -m pytest -q", test_out, test_code)])
        lint_ok, test_ok = lint_code == 0, test_code == 0

        def job(name: str, step: str, ok: bool, log: str) -> FakeJob:
            steps = [("Set up job", "success"), ("Run actions/checkout@v4", "success")]
            return FakeJob(
                name,
                "success" if ok else "failure",
                [*steps, (step, "success" if ok else "failure")],
                log=log,
            )

        return self.gh.add_workflow_run(
            CI_REPO,
            workflow_id=WORKFLOW_ID,
            name="ci",
            head_branch=branch,
            head_sha=sha,
            event=event,
            conclusion="success" if lint_ok and test_ok else "failure",
            pull_requests=pulls or [],
            jobs=[
                job("lint", "Run ruff check .", lint_ok, lint_log),
                job("test", "Run tests", test_ok, test_log),
            ],
        )

    def green_main_run(self) -> Any:
        sha = self.gh.branch_sha(CI_REPO, "main")
        assert sha is not None
        return self.add_run(cirepo.ci_files(), branch="main", sha=sha)

    def open_broken_pr(self) -> tuple[Any, Any]:
        """A PR whose change breaks `test_mean`, and its red workflow run: (pull, run)."""
        sha = self.gh.seed_git(
            CI_REPO, cirepo.broken_pr_files(), message="faster mean", branch="feature"
        )
        pr = self.gh.add_pull(CI_REPO, head="feature", title="Faster mean", user="alice")
        run = self.add_run(
            {**cirepo.ci_files(), **cirepo.broken_pr_files()},
            branch="feature",
            sha=sha,
            pulls=[pr.number],
            event="pull_request",
        )
        return pr, run

    def script_mean_fix(self) -> None:
        self.model.script(
            "patch",
            edit("stats/core.py", cirepo.BROKEN_MEAN, cirepo.GOOD_MEAN),
            finish("divide by the number of values"),
        )

    def red_lint_on_main(self) -> Any:
        """An unused import pushed to main, and its red workflow run."""
        sha = self.gh.seed_git(CI_REPO, cirepo.lint_files(), message="add os import")
        return self.add_run({**cirepo.ci_files(), **cirepo.lint_files()}, branch="main", sha=sha)

    def open_flaky_pr(self) -> tuple[Any, Any]:
        """A PR adding a test that fails every other run, and the red run CI saw: (pull, run)."""
        sha = self.gh.seed_git(
            CI_REPO, cirepo.flaky_files(), message="a flaky test", branch="flaky"
        )
        pr = self.gh.add_pull(CI_REPO, head="flaky", title="More tests", user="alice")
        # CI saw the failing half of the flake: the counter file is there when the log is made.
        files = {**cirepo.ci_files(), **cirepo.flaky_files(), ".cache/runs": "x"}
        run = self.add_run(files, branch="flaky", sha=sha, pulls=[pr.number], event="pull_request")
        return pr, run

    async def deliver_run(self, run: Any) -> int:
        data = self.gh.workflow_run_payload(CI_REPO, run)
        status, body = await self.deliver("workflow_run", data)
        assert body.get("jobs") == 1, body
        return status


DEPS_REPO = "octo/greeter"


class DepsStack(Stack):
    def open_bump(self, new: str) -> Any:
        branch = f"dependabot/pip/fakelib-{new}"
        self.gh.seed_git(
            DEPS_REPO,
            {"requirements.txt": f"fakelib=={new}\n"},
            message=cirepo.dependabot_title(new),
            branch=branch,
        )
        return self.gh.add_pull(
            DEPS_REPO,
            head=branch,
            title=cirepo.dependabot_title(new),
            body=cirepo.dependabot_body(new),
            user="dependabot[bot]",
            user_type="Bot",
        )

    async def opened(self, pr: Any) -> None:
        data = self.gh.pull_request_payload(DEPS_REPO, pr.number, action="opened")
        status, body = await self.deliver("pull_request", data)
        assert (status, body["jobs"]) == (202, 1)
        await self.settle(timeout=180)

    def sticky_on(self, number: int) -> str:
        issue = self.gh.repo(DEPS_REPO).issues[number]
        bodies = [c.body for c in issue.comments if "loopwright:sticky" in (c.body or "")]
        assert len(bodies) == 1, f"expected one sticky comment, found {len(bodies)}"
        return str(bodies[0])

    def checks_on(self, sha: str) -> list[Any]:
        return [c for c in self.gh.repo(DEPS_REPO).check_runs.values() if c.head_sha == sha]

    async def deps_runs(self) -> list[dict[str, Any]]:
        return [r for r in await self.store.list_runs() if r["loop"] == "deps"]
