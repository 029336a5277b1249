"""What loops may do to the outside world, behind one interface.

`GitHubForge` talks to GitHub through a repository-scoped client; `DryRunForge` reads from local
files and records what would have been posted (local mode and `replay`). Every outbound text goes
through redaction here, in one place, whichever forge is used.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gidgethub import BadRequest

from bot.github import RepoClient
from bot.text import redact

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
        return await self._create_comment(number, body)

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
        owner = self.repo.split("/", 1)[0]
        async for pr in self.client.getiter(
            "/repos/{owner}/{repo}/pulls{?state,head,per_page}",
            # "owner:branch": without the owner GitHub ignores the filter.
            {"state": "open", "head": f"{owner}:{head}", "per_page": 100},
        ):
            if (pr.get("head") or {}).get("ref") != head:
                continue
            data = await self.client.patch(
                "/repos/{owner}/{repo}/pulls/{pull_number}",
                {"pull_number": pr["number"]},
                data={"title": title, "body": body},
            )
            return PullRef(int(data["number"]), str(data.get("html_url", "")), created=False)
        data = await self.client.post(
            "/repos/{owner}/{repo}/pulls",
            data={
                "title": title,
                "head": head,
                "base": base,
                "body": body,
                "draft": True,
                "maintainer_can_modify": True,
            },
        )
        return PullRef(int(data["number"]), str(data.get("html_url", "")), created=True)

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

    async def read_file(self, path: str) -> str | None:
        ref = await self.default_branch()
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
        await self.client.post(
            "/repos/{owner}/{repo}/issues/{issue_number}/reactions",
            {"issue_number": number},
            data={"content": content},
        )

    async def add_labels(self, number: int, labels: list[str]) -> None:
        if labels:
            await self.client.post(
                "/repos/{owner}/{repo}/issues/{issue_number}/labels",
                {"issue_number": number},
                data={"labels": labels},
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


class DryRunForge(BaseForge):
    """No GitHub: reads a local checkout, records what would be posted."""

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

    async def list_labels(self) -> list[str]:
        return list(self.labels)

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
        }
