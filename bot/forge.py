"""What loops may do to the outside world, behind one interface.

`GitHubForge` talks to GitHub through a repository-scoped client and implements every port of
`loops.ports`; `DryRunForge` reads from local files and records what would have been posted
(local mode and `replay`): it implements `IssuePort`, the port of the issue loops, all of it.
Every outbound text goes through redaction here, in one place, whichever forge is used.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gidgethub import BadRequest

from bot.github import AmbiguousWrite, RepoClient, download_redirected
from bot.settings import SettingsError
from bot.text import redact

log = logging.getLogger("loopwright.forge")

T = TypeVar("T")
F = TypeVar("F")

#: Marks the one comment per issue/PR that loopwright owns and edits.
STICKY_MARKER = "<!-- loopwright:sticky -->"
_SECTION = re.compile(
    r"<!-- loopwright:section:(?P<name>[a-z0-9_-]+) -->\n(?P<body>.*?)\n"
    r"<!-- /loopwright:section:(?P=name) -->",
    re.DOTALL,
)

#: The labels of a new GitHub repository, used when there is no GitHub to ask.
GITHUB_DEFAULT_LABELS = [
    "bug",
    "documentation",
    "duplicate",
    "enhancement",
    "good first issue",
    "help wanted",
    "invalid",
    "question",
    "wontfix",
]

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    author: str
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PullRef:
    number: int
    url: str
    created: bool = False


@dataclass(frozen=True)
class PullInfo:
    number: int
    title: str
    body: str
    author: str
    head_ref: str
    head_sha: str
    #: `owner/name` of the head branch's repository ("" when the fork is gone).
    head_repo: str
    base_ref: str
    base_sha: str
    state: str = "open"
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkflowJob:
    id: int
    name: str
    conclusion: str | None
    #: Names of the steps that failed, in order.
    failed_steps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkflowRun:
    id: int
    name: str
    workflow_id: int
    path: str
    head_branch: str
    head_sha: str
    event: str
    conclusion: str | None
    html_url: str
    #: Numbers of the open PRs (from this repository) the run belongs to.
    pull_requests: list[int] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkflowRun:
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or ""),
            workflow_id=int(data.get("workflow_id") or 0),
            path=str(data.get("path") or ""),
            head_branch=str(data.get("head_branch") or ""),
            head_sha=str(data.get("head_sha") or ""),
            event=str(data.get("event") or ""),
            conclusion=data.get("conclusion"),
            html_url=str(data.get("html_url") or ""),
            pull_requests=[int(p["number"]) for p in data.get("pull_requests") or []],
        )


#: Hidden marker of the issue loopwright opens to track a failing workflow on the default branch.
TRACKING_MARKER = "<!-- loopwright:tracking:{key} -->"


def compose_sticky(existing: str | None, section: str, content: str) -> str:
    """Replace (or add) one loop's section of the sticky comment, keeping the others."""
    sections: dict[str, str] = {}
    if existing:
        for m in _SECTION.finditer(existing):
            sections[m.group("name")] = m.group("body")
    sections[section] = content.strip()
    parts = [STICKY_MARKER]
    for name, body in sections.items():
        parts.append(
            f"<!-- loopwright:section:{name} -->\n{body}\n<!-- /loopwright:section:{name} -->"
        )
    return "\n".join(parts)


def _lost(exc: AmbiguousWrite, what: str) -> None:
    log.info(
        "%s %s response lost (%s); re-reading before creating %s",
        exc.method,
        exc.url,
        exc.last,
        what,
    )


async def create_once(
    what: str,
    create: Callable[[], Awaitable[T]],
    find: Callable[[], Awaitable[F | None]],
    found: Callable[[F], Awaitable[T]],
) -> T:
    """`create()`, unless its answer is lost (`AmbiguousWrite`): then `find()` what the lost
    create (or another job meanwhile) may have made and hand it to `found`, else create once
    more. A second lost answer propagates: the job's retry upserts again."""
    try:
        return await create()
    except AmbiguousWrite as exc:
        _lost(exc, what)
    existing = await find()
    if existing is not None:
        log.info("%s exists (%s); using it", what, existing)
        return await found(existing)
    log.info("no %s; creating it once more", what)
    return await create()


class BaseForge:
    repo: str

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = secrets

    def clean(self, text: str) -> str:
        return redact(text, self._secrets)

    async def upsert_sticky(self, number: int, section: str, content: str) -> str:
        existing = await self._find_sticky(number)
        body = self.clean(compose_sticky(existing[1] if existing else None, section, content))
        if existing:
            return await self._update_comment(existing[0], body)

        async def edit(found: tuple[int, str]) -> str:
            # Made by the lost create, or by another job meanwhile: edit it, keeping its other
            # sections (the comment found may be older than ours).
            merged = self.clean(compose_sticky(found[1], section, content))
            return await self._update_comment(found[0], merged)

        return await create_once(
            f"the sticky comment on #{number}",
            lambda: self._create_comment(number, body),
            lambda: self._find_sticky(number),
            edit,
        )

    async def _find_sticky(self, number: int) -> tuple[int, str] | None:
        raise NotImplementedError

    async def _create_comment(self, number: int, body: str) -> str:
        raise NotImplementedError

    async def _update_comment(self, comment_id: int, body: str) -> str:
        raise NotImplementedError


class GitHubForge(BaseForge):
    def __init__(self, client: RepoClient, *, bot_login: str, secrets: list[str]) -> None:
        super().__init__(secrets)
        self.client = client
        self.repo = client.repo
        self.bot_login = bot_login

    async def default_branch(self) -> str:
        data = await self.client.get("/repos/{owner}/{repo}")
        return str(data["default_branch"])

    async def upsert_draft_pull(self, *, head: str, base: str, title: str, body: str) -> PullRef:
        """Open a draft PR from `head`, or edit the open one from it: one PR per branch.

        Never marks it ready, approves or merges: a human decides.
        """
        title, body = self.clean(title), self.clean(body)
        found = await self._find_open_pull(head)
        if found is not None:
            return await self._update_pull(found, title, body, created=False)
        create = {
            "title": title,
            "head": head,
            "base": base,
            "body": body,
            "draft": True,
            "maintainer_can_modify": True,
        }

        async def post() -> PullRef:
            data = await self.client.post("/repos/{owner}/{repo}/pulls", data=create)
            return PullRef(int(data["number"]), str(data.get("html_url", "")), created=True)

        async def edit(number: int) -> PullRef:
            return await self._update_pull(number, title, body, created=True)

        return await create_once(
            f"a draft PR from {head}", post, lambda: self._find_open_pull(head), edit
        )

    async def _find_open_pull(self, head: str) -> int | None:
        owner = self.repo.split("/", 1)[0]
        async for pr in self.client.getiter(
            "/repos/{owner}/{repo}/pulls{?state,head,per_page}",
            # "owner:branch": without the owner GitHub ignores the filter.
            {"state": "open", "head": f"{owner}:{head}", "per_page": 100},
        ):
            if (pr.get("head") or {}).get("ref") == head:
                return int(pr["number"])
        return None

    async def _update_pull(self, number: int, title: str, body: str, *, created: bool) -> PullRef:
        data = await self.client.patch(
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            {"pull_number": number},
            data={"title": title, "body": body},
        )
        return PullRef(int(data["number"]), str(data.get("html_url", "")), created=created)

    async def get_pull(self, number: int) -> PullInfo:
        data = await self.client.get(
            "/repos/{owner}/{repo}/pulls/{pull_number}", {"pull_number": number}
        )
        head, base = data.get("head") or {}, data.get("base") or {}
        return PullInfo(
            number=number,
            title=data.get("title") or "",
            body=data.get("body") or "",
            author=(data.get("user") or {}).get("login", ""),
            head_ref=str(head.get("ref", "")),
            head_sha=str(head.get("sha", "")),
            head_repo=str((head.get("repo") or {}).get("full_name", "")),
            base_ref=str(base.get("ref", "")),
            base_sha=str(base.get("sha", "")),
            state=str(data.get("state", "open")),
            labels=[lb["name"] for lb in data.get("labels", [])],
        )

    async def get_run(self, run_id: int) -> WorkflowRun:
        data = await self.client.get(
            "/repos/{owner}/{repo}/actions/runs/{run_id}", {"run_id": run_id}
        )
        return WorkflowRun.from_json(data)

    async def failed_jobs(self, run_id: int) -> list[WorkflowJob]:
        jobs = []
        async for job in self.client.getiter(
            "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs{?filter,per_page}",
            {"run_id": run_id, "filter": "latest", "per_page": 100},
            iterable_key="jobs",
        ):
            if job.get("conclusion") not in ("failure", "timed_out", "startup_failure"):
                continue
            failed = [
                str(s.get("name", ""))
                for s in job.get("steps") or []
                if s.get("conclusion") in ("failure", "timed_out")
            ]
            jobs.append(WorkflowJob(int(job["id"]), str(job["name"]), job["conclusion"], failed))
        return jobs

    async def jobs_of(self, run_id: int) -> list[WorkflowJob]:
        return [
            WorkflowJob(int(j["id"]), str(j["name"]), j.get("conclusion"))
            async for j in self.client.getiter(
                "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs{?filter,per_page}",
                {"run_id": run_id, "filter": "latest", "per_page": 100},
                iterable_key="jobs",
            )
        ]

    async def last_successful_run(self, workflow_id: int, branch: str) -> WorkflowRun | None:
        """The newest successful run of the workflow on `branch`: its logs are the noise."""
        data = await self.client.get(
            "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs{?branch,status,per_page}",
            {"workflow_id": workflow_id, "branch": branch, "status": "success", "per_page": 1},
        )
        runs = data.get("workflow_runs") or []
        return WorkflowRun.from_json(runs[0]) if runs else None

    async def failed_runs_for(self, head_sha: str) -> list[WorkflowRun]:
        data = await self.client.get(
            "/repos/{owner}/{repo}/actions/runs{?head_sha,status,per_page}",
            {"head_sha": head_sha, "status": "failure", "per_page": 20},
        )
        return [WorkflowRun.from_json(r) for r in data.get("workflow_runs") or []]

    async def failed_check_runs(self, head_sha: str, suite_id: int) -> list[tuple[str, str]]:
        """(name, output text) of the failed check runs of one check suite (another CI app's:
        its report is all there is to read, there is no log download)."""
        failed = []
        async for run in self.client.getiter(
            "/repos/{owner}/{repo}/commits/{ref}/check-runs{?filter,per_page}",
            {"ref": head_sha, "filter": "latest", "per_page": 100},
            iterable_key="check_runs",
        ):
            if (run.get("check_suite") or {}).get("id") != suite_id:
                continue
            if run.get("conclusion") not in ("failure", "timed_out"):
                continue
            out = run.get("output") or {}
            text = "\n".join(str(out.get(k) or "") for k in ("title", "summary", "text"))
            failed.append((str(run.get("name", "")), text))
        return failed

    async def job_log(self, job_id: int, *, max_bytes: int) -> tuple[bytes, int]:
        """A job's log (bytes, bytes cut from the middle to respect `max_bytes`)."""
        got = await download_redirected(
            self.client,
            "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs",
            {"job_id": job_id},
            max_bytes=max_bytes,
        )
        return got.data, got.bytes_cut

    async def upsert_tracking_issue(self, key: str, title: str, body: str) -> int:
        """The one open issue loopwright keeps for `key` (a failing workflow): found by a hidden
        marker in an issue the bot itself opened, created only if there is none."""
        marker = TRACKING_MARKER.format(key=key)
        found = await self._find_tracking_issue(marker)
        if found is not None:
            return found
        create = {"title": self.clean(title)[:250], "body": self.clean(f"{marker}\n{body}")}

        async def post() -> int:
            data = await self.client.post("/repos/{owner}/{repo}/issues", data=create)
            return int(data["number"])

        async def use(number: int) -> int:
            return number  # its title and body are fixed at creation; the comment has the news

        return await create_once(
            f"the tracking issue for {key}", post, lambda: self._find_tracking_issue(marker), use
        )

    async def _find_tracking_issue(self, marker: str) -> int | None:
        async for issue in self.client.getiter(
            "/repos/{owner}/{repo}/issues{?state,creator,per_page}",
            {"state": "open", "creator": self.bot_login, "per_page": 100},
        ):
            if marker in (issue.get("body") or "") and not issue.get("pull_request"):
                return int(issue["number"])
        return None

    async def upsert_check_run(
        self, *, head_sha: str, name: str, conclusion: str, title: str, summary: str, text: str = ""
    ) -> int:
        """One check run per (commit, name): a re-run edits it instead of adding another."""
        output = {
            "title": self.clean(title)[:250],
            "summary": self.clean(summary)[:60000],
            "text": self.clean(text)[:60000],
        }
        update = {"status": "completed", "conclusion": conclusion, "output": output}
        found = await self._find_check_run(head_sha, name)
        if found is not None:
            return await self._update_check_run(found, update)
        create = {"name": name, "head_sha": head_sha, **update}

        async def post() -> int:
            made = await self.client.post("/repos/{owner}/{repo}/check-runs", data=create)
            return int(made["id"])

        async def edit(check_run_id: int) -> int:
            return await self._update_check_run(check_run_id, update)

        return await create_once(
            f"the check run {name!r} on {head_sha[:12]}",
            post,
            lambda: self._find_check_run(head_sha, name),
            edit,
        )

    async def _find_check_run(self, head_sha: str, name: str) -> int | None:
        """Our app's check run of this name on the commit (another app's is not ours to edit)."""
        data = await self.client.get(
            "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,per_page}",
            {"ref": head_sha, "check_name": name, "per_page": 100},
        )
        for run in data.get("check_runs") or []:
            if run.get("name") == name and (run.get("app") or {}).get("slug") in (
                None,
                self.bot_login.removesuffix("[bot]"),
            ):
                return int(run["id"])
        return None

    async def _update_check_run(self, check_run_id: int, update: dict[str, Any]) -> int:
        await self.client.patch(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            {"check_run_id": check_run_id},
            data=update,
        )
        return check_run_id

    async def remove_label(self, number: int, label: str) -> None:
        try:
            await self.client.delete(
                "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}",
                {"issue_number": number, "name": label},
            )
        except BadRequest as exc:
            if exc.status_code != 404:  # not there: nothing to remove
                raise

    async def get_issue(self, number: int) -> Issue:
        data = await self.client.get(
            "/repos/{owner}/{repo}/issues/{issue_number}", {"issue_number": number}
        )
        return Issue(
            number=number,
            title=data.get("title") or "",
            body=data.get("body") or "",
            author=(data.get("user") or {}).get("login", ""),
            labels=[lb["name"] for lb in data.get("labels", [])],
        )

    async def list_labels(self) -> list[str]:
        return [lb["name"] async for lb in self.client.getiter("/repos/{owner}/{repo}/labels")]

    async def open_issues(self) -> list[tuple[int, str, str]]:
        """The open issues (number, title, body), newest first, pull requests left out."""
        from bot.similar import open_issues

        return await open_issues(self.client)

    async def read_file(self, path: str) -> str | None:
        """A file on the default branch (where the bot's config is read from)."""
        return await self.read_file_at(path, await self.default_branch())

    async def read_file_at(self, path: str, ref: str) -> str | None:
        try:
            data = await self.client.get(
                "/repos/{owner}/{repo}/contents/{path}{?ref}", {"path": path, "ref": ref}
            )
        except BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")

    async def permission(self, user: str) -> str:
        try:
            data = await self.client.get(
                "/repos/{owner}/{repo}/collaborators/{username}/permission", {"username": user}
            )
        except BadRequest as exc:
            if exc.status_code == 404:  # not a collaborator at all
                return "none"
            raise
        return str(data.get("permission", "none"))

    async def add_reaction(self, number: int, content: str) -> None:
        # Safe to repeat: GitHub answers the same user + content with the existing reaction.
        await self.client.post(
            "/repos/{owner}/{repo}/issues/{issue_number}/reactions",
            {"issue_number": number},
            data={"content": content},
            idempotent=True,
        )

    async def add_labels(self, number: int, labels: list[str]) -> None:
        # Safe to repeat: this adds to the issue's labels, and one already there is a no-op.
        if labels:
            await self.client.post(
                "/repos/{owner}/{repo}/issues/{issue_number}/labels",
                {"issue_number": number},
                data={"labels": labels},
                idempotent=True,
            )

    async def _find_sticky(self, number: int) -> tuple[int, str] | None:
        async for c in self.client.getiter(
            "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}",
            {"issue_number": number, "per_page": 100},
        ):
            # Only our own comment counts: anyone can paste the marker into theirs.
            if (c.get("user") or {}).get("login") == self.bot_login and STICKY_MARKER in (
                c.get("body") or ""
            ):
                return int(c["id"]), str(c["body"])
        return None

    async def _create_comment(self, number: int, body: str) -> str:
        data = await self.client.post(
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            {"issue_number": number},
            data={"body": body},
        )
        return str(data.get("html_url", ""))

    async def _update_comment(self, comment_id: int, body: str) -> str:
        data = await self.client.patch(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            {"comment_id": comment_id},
            data={"body": body},
        )
        return str(data.get("html_url", ""))


class NeedsGitHub(SettingsError):
    """A loop asked of local mode that needs more than the issue port (pull requests, workflow
    runs, their logs, check runs): only GitHub has them."""

    def __init__(self, loop: str) -> None:
        super().__init__(
            f"local mode cannot run `{loop}`: it reads pull requests and CI runs from GitHub. "
            "Run it from the GitHub App (`loopwright serve` or `loopwright worker`, with "
            "LOOPWRIGHT_APP_ID and LOOPWRIGHT_PRIVATE_KEY set); locally, `loopwright run` "
            "runs the issue loops (triage, fix, reproduce)"
        )
        self.loop = loop


class DryRunForge(BaseForge):
    """No GitHub: reads a local checkout, records what would be posted. It implements the issue
    port (`loops.ports.IssuePort`), all of it; the loops that need more are refused before they
    start (`NeedsGitHub`)."""

    def __init__(
        self,
        repo: str,
        *,
        issue: Issue,
        labels: list[str] | None = None,
        repo_path: Path | None = None,
        secrets: list[str] | None = None,
    ) -> None:
        super().__init__(secrets or [])
        self.repo = repo
        self.issue = issue
        self.labels = list(labels) if labels is not None else list(GITHUB_DEFAULT_LABELS)
        self.repo_path = repo_path
        self.reactions: list[str] = []
        self.added_labels: list[str] = []
        self.comment: str | None = None
        self.pull: dict[str, Any] | None = None
        #: key → the tracking issue that would be opened (number, title, body).
        self.tracking: dict[str, dict[str, Any]] = {}

    async def default_branch(self) -> str:
        return "HEAD"

    async def upsert_draft_pull(self, *, head: str, base: str, title: str, body: str) -> PullRef:
        created = self.pull is None
        self.pull = {
            "head": head,
            "base": base,
            "title": self.clean(title),
            "body": self.clean(body),
        }
        return PullRef(1, "(dry run)", created=created)

    async def get_issue(self, number: int) -> Issue:
        return self.issue

    async def upsert_tracking_issue(self, key: str, title: str, body: str) -> int:
        """Recorded, one per key as on GitHub; numbered after the issue (no issue is opened)."""
        if key not in self.tracking:
            self.tracking[key] = {
                "number": self.issue.number + 1 + len(self.tracking),
                "title": self.clean(title)[:250],
                "body": self.clean(f"{TRACKING_MARKER.format(key=key)}\n{body}"),
            }
        return int(self.tracking[key]["number"])

    async def list_labels(self) -> list[str]:
        return list(self.labels)

    async def open_issues(self) -> list[tuple[int, str, str]]:
        return []  # local mode: there is no repository of issues to compare with

    async def read_file(self, path: str) -> str | None:
        if self.repo_path is None:
            return None
        target = (self.repo_path / path).resolve()
        if not target.is_relative_to(self.repo_path.resolve()) or not target.is_file():
            return None
        return target.read_text(errors="replace")

    async def permission(self, user: str) -> str:
        return "admin"  # local mode: the operator is running it by hand

    async def add_reaction(self, number: int, content: str) -> None:
        self.reactions.append(content)

    async def add_labels(self, number: int, labels: list[str]) -> None:
        self.added_labels.extend(lb for lb in labels if lb not in self.added_labels)

    async def _find_sticky(self, number: int) -> tuple[int, str] | None:
        return (1, self.comment) if self.comment is not None else None

    async def _create_comment(self, number: int, body: str) -> str:
        self.comment = body
        return "(dry run)"

    async def _update_comment(self, comment_id: int, body: str) -> str:
        self.comment = body
        return "(dry run)"

    def posted(self) -> dict[str, Any]:
        return {
            "labels": self.added_labels,
            "reactions": self.reactions,
            "comment": self.comment,
            "pull": self.pull,
            "tracking": list(self.tracking.values()),
        }
