"""Seeding the fake from a test (installations, repositories, issues, PRs, workflow runs, check
runs) and the state changes handlers share (labels, comments, opening a PR)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from tests.support.fakegithub.gitrepos import _git, _git_run, _made_up_sha
from tests.support.fakegithub.state import (
    DEFAULT_INSTALLATION_PERMISSIONS,
    FakeCheckRun,
    FakeComment,
    FakeInstallation,
    FakeIssue,
    FakeJob,
    FakePull,
    FakeRepo,
    FakeWorkflowRun,
    GitHubError,
    _iso,
    _now_iso,
    _pull_custom_error,
    _pull_field_error,
)
from tests.support.githttp import create_bare_repo


class Seeding:
    """FakeGitHub's seeding API and shared mutations (a mixin of FakeGitHub)."""

    # ----------------------------------------------------------------------------- seeding

    def next_id(self) -> int:
        return next(self._ids)

    def add_installation(
        self,
        installation_id: int,
        account: str,
        *,
        permissions: Mapping[str, str] | None = None,
        account_type: str = "User",
    ) -> FakeInstallation:
        inst = FakeInstallation(
            id=installation_id,
            account=account,
            permissions=dict(permissions or DEFAULT_INSTALLATION_PERMISSIONS),
            account_type=account_type,
        )
        self.installations[installation_id] = inst
        return inst

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int | None = 1,
        default_branch: str = "main",
        labels: Iterable[str | Mapping[str, Any]] = (),
        files: Mapping[str, str | bytes] | None = None,
        collaborators: Mapping[str, str] | None = None,
        private: bool = False,
        owner_type: str = "User",
        permissions: Mapping[str, str] | None = None,
        git: bool = False,
    ) -> FakeRepo:
        """Seed a repository.  `permissions` applies only when this call creates the
        installation; `installation_id=None` models a repo the App is not installed on.

        `git=True` (needs `git_root`) creates a bare repository served over smart HTTP; `files`
        then become its first commit on the default branch, and contents are read from git."""
        if git and self.git_root is None:
            raise ValueError("add_repo(git=True) needs FakeGitHub(git_root=...)")
        owner, name = full_name.split("/", 1)
        if installation_id is not None and installation_id not in self.installations:
            self.add_installation(
                installation_id, owner, permissions=permissions, account_type=owner_type
            )
        repo = FakeRepo(
            id=self.next_id(),
            owner=owner,
            name=name,
            installation_id=installation_id,
            default_branch=default_branch,
            private=private,
            owner_type=owner_type,
            files={} if git else dict(files or {}),
            collaborators=dict(collaborators or {}),
        )
        if git:
            repo.git_dir = create_bare_repo(
                cast(Path, self.git_root), full_name, default_branch=default_branch
            )
        else:
            repo.branches[default_branch] = _made_up_sha(f"{full_name}@{default_branch}")
        for label in labels:
            if isinstance(label, str):
                self._create_label(repo, label)
            else:
                self._create_label(
                    repo, label["name"], label.get("color", "ededed"), label.get("description")
                )
        self.repos[full_name.lower()] = repo
        if git and files:
            self.seed_git(full_name, files)
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def add_issue(
        self,
        full_name: str,
        *,
        number: int | None = None,
        title: str = "An issue",
        body: str | None = "",
        user: str = "alice",
        labels: Iterable[str] = (),
        state: str = "open",
    ) -> FakeIssue:
        repo = self.repo(full_name)
        number = repo.next_issue_number() if number is None else number
        issue = FakeIssue(
            id=self.next_id(), number=number, title=title, body=body, user_login=user, state=state
        )
        repo.issues[number] = issue
        self._add_issue_labels(repo, issue, labels)
        return issue

    def add_comment(
        self,
        full_name: str,
        number: int,
        body: str,
        *,
        user: str = "alice",
        user_type: str = "User",
    ) -> FakeComment:
        repo = self.repo(full_name)
        return self._new_comment(repo.issues[number], body, user, user_type, via_app=False)

    def add_branch(self, full_name: str, branch: str, sha: str | None = None) -> str:
        """Create (or move) `branch` at `sha`.  Default for a git-backed repo: the default
        branch's tip; for an in-memory repo: a fresh made-up sha, i.e. a branch "with commits"
        that a PR can be opened from."""
        repo = self.repo(full_name)
        if repo.git_dir is None:
            repo.branches[branch] = sha or _made_up_sha(f"{full_name}@{branch}")
            return repo.branches[branch]
        target = sha or self.branch_sha(full_name, repo.default_branch)
        if target is None:
            raise ValueError(f"{full_name} has no commits to branch from")
        _git(repo.git_dir, "update-ref", f"refs/heads/{branch}", target)
        return target

    def add_pull(
        self,
        full_name: str,
        *,
        head: str,
        base: str | None = None,
        title: str = "A pull request",
        body: str | None = "",
        user: str = "alice",
        user_type: str = "User",
        draft: bool = False,
    ) -> FakePull:
        """Seed a pull request opened by someone else (a human, dependabot[bot]); the same
        validation as `pulls/create` applies, so `head` must exist."""
        repo = self.repo(full_name)
        return self._open_pull(
            repo,
            head=head,
            base=base or repo.default_branch,
            title=title,
            body=body,
            draft=draft,
            user=user,
            user_type=user_type,
            via_app=False,
        )

    def add_workflow_run(
        self,
        full_name: str,
        *,
        workflow_id: int,
        name: str,
        path: str = ".github/workflows/ci.yml",
        head_branch: str,
        head_sha: str,
        event: str = "push",
        status: str = "completed",
        conclusion: str | None = "failure",
        pull_requests: Iterable[int] = (),
        actor: str = "octocat",
        jobs: Iterable[FakeJob] = (),
        run_id: int | None = None,
        created_at: datetime | None = None,
        display_title: str | None = None,
    ) -> FakeWorkflowRun:
        """Seed a GitHub Actions run, as a push or pull request would have triggered it.

        `conclusion` only sticks to a completed run (GitHub has none before).  `pull_requests`
        are numbers of this repo's PRs (the run's minimal PR entries).  Jobs get an id (also
        their check run's id), the run's attempt and timestamps unless set; a job's `log` is
        what its log download serves through the blob host."""
        repo = self.repo(full_name)
        numbers = list(pull_requests)
        for number in numbers:
            if number not in repo.pulls:
                raise ValueError(f"{full_name} has no pull request #{number}")
        created = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        rid = self.next_id() if run_id is None else run_id
        if rid in repo.workflow_runs:
            raise ValueError(f"{full_name} already has workflow run {rid}")
        job_list = list(jobs)
        attempt = max((j.run_attempt or 1 for j in job_list), default=1)
        clock = created + timedelta(seconds=5)
        for job in job_list:
            job.id = self.next_id() if job.id is None else job.id
            job.run_id = rid
            job.run_attempt = job.run_attempt or attempt
            if job.started_at is None and status != "queued":
                job.started_at = _iso(clock)
            if job.completed_at is None and job.conclusion is not None:
                job.completed_at = _iso(clock + timedelta(seconds=60))
            clock += timedelta(seconds=61)
        done = status == "completed"
        head_commit = self._head_commit(repo, head_sha, actor, created)
        if display_title is None:
            pull = repo.pulls.get(numbers[0]) if numbers else None
            if pull is not None and event.startswith("pull_request"):
                display_title = pull.title
            else:
                display_title = str(head_commit["message"]).split("\n", 1)[0] or name
        run = FakeWorkflowRun(
            id=rid,
            workflow_id=workflow_id,
            name=name,
            path=path,
            head_branch=head_branch,
            head_sha=head_sha,
            event=event,
            status=status,
            conclusion=conclusion if done else None,
            pull_requests=numbers,
            actor=actor,
            jobs=job_list,
            run_number=1 + sum(r.workflow_id == workflow_id for r in repo.workflow_runs.values()),
            run_attempt=attempt,
            created_at=created,
            updated_at=clock if done else created,
            check_suite_id=self.next_id(),
            display_title=display_title,
            head_commit=head_commit,
        )
        repo.workflow_runs[rid] = run
        return run

    def add_check_run(
        self,
        full_name: str,
        *,
        name: str,
        head_sha: str,
        status: str = "completed",
        conclusion: str | None = "success",
        app_slug: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
    ) -> FakeCheckRun:
        """Seed a check run, by default one made by another app (`app_slug`, e.g. a CI
        service) so tests can check the bot leaves other apps' check runs alone."""
        repo = self.repo(full_name)
        slug = app_slug or self.app_slug
        now = _now_iso()
        check = FakeCheckRun(
            id=self.next_id(),
            name=name,
            head_sha=head_sha,
            status=status,
            conclusion=conclusion if status == "completed" else None,
            started_at=now,
            completed_at=now if status == "completed" else None,
            check_suite_id=self._check_suite_id(repo, head_sha, slug),
            app_slug=slug,
            title=title,
            summary=summary,
            text=text,
        )
        repo.check_runs[check.id] = check
        return check

    def _head_commit(self, repo: FakeRepo, sha: str, actor: str, when: datetime) -> dict[str, Any]:
        """The run's `head_commit`: read from git for a git-backed repo, else made up."""
        if repo.git_dir is not None:
            proc = _git_run(
                repo.git_dir,
                "show",
                "-s",
                "--format=%T%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%B",
                sha,
                check=False,
            )
            if proc.returncode == 0:
                tree, an, ae, cn, ce, date, message = proc.stdout.decode().split("\0", 6)
                return {
                    "id": sha,
                    "tree_id": tree,
                    "message": message.strip(),
                    "timestamp": _iso(datetime.fromisoformat(date)),
                    "author": {"name": an, "email": ae},
                    "committer": {"name": cn, "email": ce},
                }
        return {
            "id": sha,
            "tree_id": _made_up_sha(f"{sha}:tree"),
            "message": "Update",
            "timestamp": _iso(when),
            "author": {"name": actor, "email": f"{actor}@users.noreply.github.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        }

    def _check_suite_id(self, repo: FakeRepo, head_sha: str, app_slug: str) -> int:
        # One check suite per (commit, app), as GitHub makes them.
        key = (repo.id, head_sha, app_slug)
        if key not in self._check_suites:
            self._check_suites[key] = self.next_id()
        return self._check_suites[key]

    def _open_pull(
        self,
        repo: FakeRepo,
        *,
        head: str,
        base: str,
        title: str,
        body: str | None,
        draft: bool,
        user: str,
        user_type: str,
        via_app: bool,
        maintainer_can_modify: bool = False,
    ) -> FakePull:
        # `head` may be "owner:branch"; another owner means a fork, which is not modelled, and
        # GitHub answers a head it cannot find with the same field error.
        owner, sep, branch = head.rpartition(":")
        if sep and owner.casefold() != repo.owner.casefold():
            raise _pull_field_error("head")
        head_sha = self.branch_sha(repo.full_name, branch)
        if head_sha is None:
            raise _pull_field_error("head")
        base_sha = self.branch_sha(repo.full_name, base)
        if base_sha is None:
            raise _pull_field_error("base")
        for other in repo.pulls.values():
            if other.state == "open" and other.head == branch and other.base == base:
                raise _pull_custom_error(
                    f"A pull request already exists for {repo.owner}:{branch}."
                )
        if not self._has_commits_between(repo, base_sha, head_sha):
            raise _pull_custom_error(f"No commits between {base} and {branch}")
        issue = FakeIssue(
            id=self.next_id(),
            number=repo.next_issue_number(),
            title=title,
            body=body,
            user_login=user,
            user_type=user_type,
            performed_via_app=via_app,
        )
        repo.issues[issue.number] = issue
        pull = FakePull(
            id=self.next_id(),
            issue=issue,
            head=branch,
            base=base,
            draft=draft,
            head_sha=head_sha,
            base_sha=base_sha,
            maintainer_can_modify=maintainer_can_modify,
        )
        repo.pulls[issue.number] = pull
        return pull

    # ----------------------------------------------------------------------------- mutations

    def _create_label(
        self,
        repo: FakeRepo,
        name: str,
        color: str = "ededed",
        description: str | None = None,
    ) -> str:
        existing = repo.find_label(name)
        if existing is not None:
            return existing
        repo.labels[name] = {"name": name, "color": color, "description": description}
        repo.label_ids[name] = self.next_id()
        return name

    def _add_issue_labels(self, repo: FakeRepo, issue: FakeIssue, names: Iterable[str]) -> None:
        # Adding a label the repo lacks silently creates it (grey, no description), as GitHub does.
        for name in names:
            stored = self._create_label(repo, name)
            if stored not in issue.labels:
                issue.labels.append(stored)
        issue.updated_at = _now_iso()

    def _new_comment(
        self, issue: FakeIssue, body: str, user: str, user_type: str, *, via_app: bool
    ) -> FakeComment:
        now = _now_iso()
        comment = FakeComment(
            id=self.next_id(),
            body=body,
            user_login=user,
            user_type=user_type,
            performed_via_app=via_app,
            created_at=now,
            updated_at=now,
            issue_number=issue.number,
        )
        issue.comments.append(comment)
        issue.updated_at = now
        return comment

    def find_comment(self, repo: FakeRepo, comment_id: int) -> FakeComment:
        for issue in repo.issues.values():
            for comment in issue.comments:
                if comment.id == comment_id:
                    return comment
        raise GitHubError(404, "Not Found")
