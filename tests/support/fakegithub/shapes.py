"""The JSON GitHub answers with: users, apps, installations, repositories, issues, pull
requests, reviews, comments, reactions, workflow runs, jobs, check runs (webhook payloads are
in payloads.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from tests.support.fakegithub.gitrepos import _made_up_sha
from tests.support.fakegithub.state import (
    DEFAULT_INSTALLATION_PERMISSIONS,
    GITHUB_ACTIONS_APP_ID,
    GITHUB_ACTIONS_SLUG,
    HTML_BASE,
    FakeCheckRun,
    FakeComment,
    FakeInstallation,
    FakeIssue,
    FakeJob,
    FakePull,
    FakeRepo,
    FakeReview,
    FakeWorkflowRun,
    _iso,
)

_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def _login_type(login: str) -> str:
    return "Bot" if login.endswith("[bot]") else "User"


class Shapes:
    """FakeGitHub's JSON shapes (a mixin of FakeGitHub)."""

    # ----------------------------------------------------------------------------- JSON shapes

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def user_id(self, login: str) -> int:
        if login not in self._user_ids:
            self._user_ids[login] = self.next_id()
        return self._user_ids[login]

    def user_json(self, login: str, user_type: str = "User") -> dict[str, Any]:
        uid = self.user_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}" if user_type != "Bot" else f"BOT_{uid}",
            "type": user_type,
            "site_admin": False,
            "url": f"{self.url}/users/{login}",
            "html_url": f"{HTML_BASE}/{login.removesuffix('[bot]')}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        }

    def app_json(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": f"A_{self.app_id}",
            "name": self.app_name,
            "owner": self.user_json("loopwright-org", "Organization"),
            "description": "",
            "external_url": "https://example.invalid/loopwright",
            "html_url": f"{HTML_BASE}/apps/{self.app_slug}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": dict(DEFAULT_INSTALLATION_PERMISSIONS),
            "events": ["issues", "issue_comment", "pull_request", "check_suite", "workflow_run"],
        }

    def installation_json(self, inst: FakeInstallation) -> dict[str, Any]:
        return {
            "id": inst.id,
            "account": self.user_json(inst.account, inst.account_type),
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": self.user_id(inst.account),
            "target_type": inst.account_type,
            "permissions": dict(inst.permissions),
            "events": self.app_json()["events"],
            "repository_selection": "selected",
            "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "suspended_at": None,
        }

    def repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user_json(repo.owner, repo.owner_type),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "fork": False,
            "archived": False,
            "disabled": False,
            "default_branch": repo.default_branch,
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}",
            "clone_url": f"{self.url}/{repo.full_name}.git",
            "issues_url": api + "/issues{/number}",
            "labels_url": api + "/labels{/name}",
        }

    def label_json(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        label = repo.labels[name]
        lid = repo.label_ids[name]
        return {
            "id": lid,
            "node_id": f"LA_{lid}",
            "url": f"{self.url}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": label["name"],
            "color": label["color"],
            "default": False,
            "description": label["description"],
        }

    def issue_json(self, repo: FakeRepo, issue: FakeIssue) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/issues/{issue.number}"
        data = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "user": self.user_json(issue.user_login, issue.user_type),
            "labels": [self.label_json(repo, n) for n in issue.labels],
            "assignees": [self.user_json(a) for a in issue.assignees],
            "assignee": self.user_json(issue.assignees[0]) if issue.assignees else None,
            "comments": len(issue.comments),
            "author_association": self._association(repo, issue.user_login, issue.user_type),
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/issues/{issue.number}",
            "repository_url": f"{self.url}/repos/{repo.full_name}",
            "comments_url": api + "/comments",
            "labels_url": api + "/labels{/name}",
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "performed_via_github_app": self.app_json() if issue.performed_via_app else None,
            "reactions": self._reaction_rollup(issue.reactions, api + "/reactions"),
        }
        pull = repo.pulls.get(issue.number)
        if pull is not None:
            # The issues API serves PRs too; the `pull_request` key is how a client tells them
            # apart (and the only place the issue side says whether it was merged).
            html = f"{HTML_BASE}/{repo.full_name}/pull/{issue.number}"
            data["html_url"] = html
            data["draft"] = pull.draft
            data["pull_request"] = {
                "url": f"{self.url}/repos/{repo.full_name}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": html + ".diff",
                "patch_url": html + ".patch",
                "merged_at": pull.merged_at,
            }
        return data

    def _ref_json(self, repo: FakeRepo, branch: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": self.user_json(repo.owner, repo.owner_type),
            "repo": self.repo_json(repo),
        }

    def pull_json(self, repo: FakeRepo, pull: FakePull, *, full: bool = True) -> dict[str, Any]:
        """`full=False` is the "pull-request-simple" shape that pulls/list answers with: no
        mergeability, counts or merged flag."""
        issue = pull.issue
        # GitHub moves a PR's head with every push to its branch (until it is closed).
        current = self.branch_sha(repo.full_name, pull.head)
        if current is not None and pull.state == "open":
            pull.head_sha = current
        base_sha = self.branch_sha(repo.full_name, pull.base) or pull.base_sha
        api = f"{self.url}/repos/{repo.full_name}"
        n = pull.number
        html = f"{HTML_BASE}/{repo.full_name}/pull/{n}"
        data: dict[str, Any] = {
            "url": f"{api}/pulls/{n}",
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits",
            "review_comments_url": f"{api}/pulls/{n}/comments",
            "review_comment_url": api + "/pulls/comments{/number}",
            "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": n,
            "state": pull.state,
            "locked": False,
            "title": issue.title,
            "user": self.user_json(issue.user_login, issue.user_type),
            "body": issue.body,
            "labels": [self.label_json(repo, name) for name in issue.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": self.user_json(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user_json(a) for a in issue.assignees],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._ref_json(repo, pull.head, pull.head_sha),
            "base": self._ref_json(repo, pull.base, base_sha),
            "_links": {
                "self": {"href": f"{api}/pulls/{n}"},
                "html": {"href": html},
                "issue": {"href": f"{api}/issues/{n}"},
                "comments": {"href": f"{api}/issues/{n}/comments"},
                "review_comments": {"href": f"{api}/pulls/{n}/comments"},
                "review_comment": {"href": api + "/pulls/comments{/number}"},
                "commits": {"href": f"{api}/pulls/{n}/commits"},
                "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
            },
            "author_association": self._association(repo, issue.user_login, issue.user_type),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if not full:
            return data
        open_ = pull.state == "open"
        data.update(
            {
                "merged": pull.merged,
                # Real GitHub computes these in the background (null at first); a fake that
                # answers at once is a valid instant of that.
                "mergeable": True if open_ else None,
                "rebaseable": True if open_ else None,
                "mergeable_state": ("draft" if pull.draft else "clean") if open_ else "unknown",
                "merged_by": self.user_json(pull.merged_by, "Bot") if pull.merged_by else None,
                "comments": len(issue.comments),
                "review_comments": 0,
                "maintainer_can_modify": pull.maintainer_can_modify,
                **self._diff_stats(repo, pull.base_sha if pull.merged else base_sha, pull.head_sha),
            }
        )
        return data

    def review_json(self, repo: FakeRepo, pull: FakePull, review: FakeReview) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}"
        html = f"{HTML_BASE}/{repo.full_name}/pull/{pull.number}#pullrequestreview-{review.id}"
        data: dict[str, Any] = {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self.user_json(review.user_login, review.user_type),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": api,
            "author_association": self._association(repo, review.user_login, review.user_type),
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "commit_id": review.commit_id,
        }
        # A pending review has not been submitted, and GitHub leaves the key out entirely.
        if review.submitted_at is not None:
            data["submitted_at"] = review.submitted_at
        return data

    def comment_json(self, repo: FakeRepo, comment: FakeComment) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/issues/comments/{comment.id}"
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": api,
            "html_url": (
                f"{HTML_BASE}/{repo.full_name}/issues/{comment.issue_number}"
                f"#issuecomment-{comment.id}"
            ),
            "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{comment.issue_number}",
            "body": comment.body,
            "user": self.user_json(comment.user_login, comment.user_type),
            "author_association": self._association(repo, comment.user_login, comment.user_type),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "performed_via_github_app": self.app_json() if comment.performed_via_app else None,
            "reactions": self._reaction_rollup(comment.reactions, api + "/reactions"),
        }

    def reaction_json(self, rid: int, user: str, content: str, created_at: str) -> dict[str, Any]:
        user_type = "Bot" if user.endswith("[bot]") else "User"
        return {
            "id": rid,
            "node_id": f"REA_{rid}",
            "user": self.user_json(user, user_type),
            "content": content,
            "created_at": created_at,
        }

    @staticmethod
    def _reaction_rollup(reactions: list[tuple[str, str]], url: str) -> dict[str, Any]:
        counts = dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket"), 0)
        counts["eyes"] = 0
        for _, content in reactions:
            counts[content] = counts.get(content, 0) + 1
        return {"url": url, "total_count": len(reactions), **counts}

    @staticmethod
    def _association(repo: FakeRepo, login: str, user_type: str) -> str:
        if user_type == "Bot":
            return "NONE"
        if login == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if login in repo.collaborators else "NONE"

    # ----------------------------------------------------------------------------- Actions, checks

    def minimal_repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        """The "minimal-repository" shape of a workflow run's `repository`/`head_repository`."""
        api = f"{self.url}/repos/{repo.full_name}"
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user_json(repo.owner, repo.owner_type),
            "private": repo.private,
            "html_url": f"{HTML_BASE}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": api,
        }
        data.update({key: api + suffix for key, suffix in _REPO_URL_TEMPLATES.items()})
        return data

    def _pull_head_sha(self, repo: FakeRepo, pull: FakePull) -> str:
        # As in pull_json: an open PR's head follows its branch.
        current = self.branch_sha(repo.full_name, pull.head)
        if current is not None and pull.state == "open":
            pull.head_sha = current
        return pull.head_sha

    def minimal_pull_json(self, repo: FakeRepo, pull: FakePull) -> dict[str, Any]:
        """The {url, id, number, head, base} entry of a workflow or check run's
        `pull_requests`."""
        repo_ref = {"id": repo.id, "url": f"{self.url}/repos/{repo.full_name}", "name": repo.name}
        base_sha = self.branch_sha(repo.full_name, pull.base) or pull.base_sha
        return {
            "url": f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}",
            "id": pull.id,
            "number": pull.number,
            "head": {"ref": pull.head, "sha": self._pull_head_sha(repo, pull), "repo": repo_ref},
            "base": {"ref": pull.base, "sha": base_sha, "repo": dict(repo_ref)},
        }

    def workflow_json(self, repo: FakeRepo, run: FakeWorkflowRun) -> dict[str, Any]:
        """The `workflow` object of a workflow_run webhook."""
        api = f"{self.url}/repos/{repo.full_name}/actions/workflows/{run.workflow_id}"
        return {
            "id": run.workflow_id,
            "node_id": f"W_{run.workflow_id}",
            "name": run.name,
            "path": run.path,
            "state": "active",
            "created_at": "2024-01-01T00:00:00.000Z",
            "updated_at": "2024-01-01T00:00:00.000Z",
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/blob/{repo.default_branch}/{run.path}",
            "badge_url": f"{HTML_BASE}/{repo.full_name}/workflows/{quote(run.name)}/badge.svg",
        }

    def workflow_run_json(
        self, repo: FakeRepo, run: FakeWorkflowRun, *, exclude_pull_requests: bool = False
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        run_api = f"{api}/actions/runs/{run.id}"
        actor = self.user_json(run.actor, _login_type(run.actor))
        pulls = [] if exclude_pull_requests else run.pull_requests
        return {
            "id": run.id,
            "name": run.name,
            "node_id": f"WFR_{run.id}",
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.path,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": run.workflow_id,
            "check_suite_id": run.check_suite_id,
            "check_suite_node_id": f"CS_{run.check_suite_id}",
            "url": run_api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/actions/runs/{run.id}",
            "pull_requests": [self.minimal_pull_json(repo, repo.pulls[n]) for n in pulls],
            "created_at": _iso(run.created_at),
            "updated_at": _iso(run.updated_at),
            "actor": actor,
            "triggering_actor": dict(actor),
            "run_attempt": run.run_attempt,
            "run_started_at": _iso(run.created_at),
            "jobs_url": run_api + "/jobs",
            "logs_url": run_api + "/logs",
            "check_suite_url": f"{api}/check-suites/{run.check_suite_id}",
            "artifacts_url": run_api + "/artifacts",
            "cancel_url": run_api + "/cancel",
            "rerun_url": run_api + "/rerun",
            "previous_attempt_url": (
                f"{run_api}/attempts/{run.run_attempt - 1}" if run.run_attempt > 1 else None
            ),
            "workflow_url": f"{api}/actions/workflows/{run.workflow_id}",
            "head_commit": dict(run.head_commit),
            "repository": self.minimal_repo_json(repo),
            "head_repository": self.minimal_repo_json(repo),
        }

    @staticmethod
    def _job_status(job: FakeJob) -> str:
        if job.conclusion is not None:
            return "completed"
        return "queued" if job.started_at is None else "in_progress"

    def job_json(self, repo: FakeRepo, run: FakeWorkflowRun, job: FakeJob) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        status = self._job_status(job)
        start = datetime.fromisoformat(job.started_at) if job.started_at else None
        steps = []
        waiting = False
        for number, (step_name, step_conclusion) in enumerate(job.steps, 1):
            step_start = _iso(start + timedelta(seconds=number)) if start else None
            if step_conclusion is not None:
                step_status = "completed"
            else:
                # The first unfinished step is the one running; the rest wait for it.
                step_status = "queued" if waiting or start is None else "in_progress"
                waiting = True
            steps.append(
                {
                    "name": step_name,
                    "status": step_status,
                    "conclusion": step_conclusion,
                    "number": number,
                    "started_at": None if step_status == "queued" else step_start,
                    "completed_at": (
                        _iso(start + timedelta(seconds=number + 1))
                        if step_status == "completed" and start
                        else None
                    ),
                }
            )
        started = start is not None
        return {
            "id": job.id,
            "run_id": run.id,
            "run_url": f"{api}/actions/runs/{run.id}",
            "run_attempt": job.run_attempt,
            "node_id": f"CR_{job.id}",
            "head_sha": run.head_sha,
            "head_branch": run.head_branch,
            "url": f"{api}/actions/jobs/{job.id}",
            "html_url": f"{HTML_BASE}/{repo.full_name}/actions/runs/{run.id}/job/{job.id}",
            "status": status,
            "conclusion": job.conclusion,
            "created_at": _iso(run.created_at),
            "started_at": job.started_at or _iso(run.created_at),
            "completed_at": job.completed_at if status == "completed" else None,
            "name": job.name,
            "steps": steps,
            "check_run_url": f"{api}/check-runs/{job.id}",
            "labels": list(job.labels),
            "runner_id": 1 if started else None,
            "runner_name": "GitHub Actions 1" if started else None,
            "runner_group_id": 1 if started else None,
            "runner_group_name": "GitHub Actions" if started else None,
            "workflow_name": run.name,
        }

    def find_job(self, repo: FakeRepo, job_id: int) -> tuple[FakeWorkflowRun, FakeJob] | None:
        for run in repo.workflow_runs.values():
            job = run.job(job_id)
            if job is not None:
                return run, job
        return None

    def app_json_for(self, slug: str) -> dict[str, Any]:
        """This app's JSON, or a plausible one for another app (github-actions, a CI)."""
        if slug == self.app_slug:
            return self.app_json()
        app_id = (
            GITHUB_ACTIONS_APP_ID if slug == GITHUB_ACTIONS_SLUG else self.user_id(f"app/{slug}")
        )
        owner = "github" if slug == GITHUB_ACTIONS_SLUG else f"{slug}-org"
        return {
            "id": app_id,
            "slug": slug,
            "node_id": f"A_{app_id}",
            "name": "GitHub Actions" if slug == GITHUB_ACTIONS_SLUG else slug,
            "owner": self.user_json(owner, "Organization"),
            "description": "",
            "external_url": f"https://{slug}.example.invalid",
            "html_url": f"{HTML_BASE}/apps/{slug}",
            "created_at": "2018-07-30T09:30:17Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": {"checks": "write", "metadata": "read"},
            "events": [],
        }

    def _check_run_shape(
        self,
        repo: FakeRepo,
        *,
        check_id: int,
        name: str,
        head_sha: str,
        status: str,
        conclusion: str | None,
        started_at: str | None,
        completed_at: str | None,
        output: dict[str, Any],
        details_url: str | None,
        external_id: str | None,
        check_suite_id: int,
        app_slug: str,
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/check-runs/{check_id}"
        pulls = [
            self.minimal_pull_json(repo, p)
            for p in repo.pulls.values()
            if p.state == "open" and self._pull_head_sha(repo, p) == head_sha
        ]
        return {
            "id": check_id,
            "node_id": f"CR_{check_id}",
            "head_sha": head_sha,
            "external_id": external_id,
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/runs/{check_id}",
            "details_url": details_url,
            "status": status,
            "conclusion": conclusion,
            "started_at": started_at,
            "completed_at": completed_at,
            "output": {**output, "annotations_url": api + "/annotations"},
            "name": name,
            "check_suite": {"id": check_suite_id},
            "app": self.app_json_for(app_slug),
            "pull_requests": pulls,
        }

    def check_run_json(self, repo: FakeRepo, check: FakeCheckRun) -> dict[str, Any]:
        return self._check_run_shape(
            repo,
            check_id=check.id,
            name=check.name,
            head_sha=check.head_sha,
            status=check.status,
            conclusion=check.conclusion,
            started_at=check.started_at,
            completed_at=check.completed_at,
            output={
                "title": check.title,
                "summary": check.summary,
                "text": check.text,
                "annotations_count": len(check.annotations),
            },
            # GitHub falls back to the app's homepage when none was given.
            details_url=check.details_url or self.app_json_for(check.app_slug)["external_url"],
            external_id=check.external_id or "",
            check_suite_id=check.check_suite_id,
            app_slug=check.app_slug,
        )

    def job_check_run_json(
        self, repo: FakeRepo, run: FakeWorkflowRun, job: FakeJob
    ) -> dict[str, Any]:
        """The check run GitHub Actions keeps for every job (same id as the job)."""
        job_data = self.job_json(repo, run, job)
        return self._check_run_shape(
            repo,
            check_id=cast(int, job.id),
            name=job.name,
            head_sha=run.head_sha,
            status=job_data["status"],
            conclusion=job.conclusion,
            started_at=job_data["started_at"],
            completed_at=job_data["completed_at"],
            output={"title": None, "summary": None, "text": None, "annotations_count": 0},
            details_url=job_data["html_url"],
            external_id=_made_up_sha(f"job:{job.id}")[:32],
            check_suite_id=run.check_suite_id,
            app_slug=GITHUB_ACTIONS_SLUG,
        )
