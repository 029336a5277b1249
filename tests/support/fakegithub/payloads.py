"""Webhook payloads as GitHub would send them for the fake's state (`workflow_run`,
`pull_request`): the full user and repository objects of webhooks, and their envelope."""

from __future__ import annotations

import base64
from typing import Any

from tests.support.fakegithub.shapes import _login_type
from tests.support.fakegithub.state import (
    HTML_BASE,
    FakeRepo,
    FakeWorkflowRun,
)


class Payloads:
    """FakeGitHub's webhook payloads (a mixin of FakeGitHub)."""

    # ----------------------------------------------------------------------------- webhooks

    def full_user_json(self, login: str, user_type: str | None = None) -> dict[str, Any]:
        """A user as webhook payloads carry it (`sender`, repository owner): every URL."""
        user_type = user_type or _login_type(login)
        data = self.user_json(login, user_type)
        api = data["url"]
        data.update(
            {
                "gravatar_id": "",
                "followers_url": api + "/followers",
                "following_url": api + "/following{/other_user}",
                "gists_url": api + "/gists{/gist_id}",
                "starred_url": api + "/starred{/owner}{/repo}",
                "subscriptions_url": api + "/subscriptions",
                "organizations_url": api + "/orgs",
                "repos_url": api + "/repos",
                "events_url": api + "/events{/privacy}",
                "received_events_url": api + "/received_events",
            }
        )
        return data

    def webhook_repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        """A webhook's `repository`: every key real payloads carry; `clone_url` still points
        at the fake's git server."""
        data = self.minimal_repo_json(repo)
        data.update(self.repo_json(repo))
        data["owner"] = self.full_user_json(repo.owner, repo.owner_type)
        open_issues = sum(i.state == "open" for i in repo.issues.values())
        data.update(
            {
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "pushed_at": "2024-01-01T00:00:00Z",
                "git_url": f"git://github.com/{repo.full_name}.git",
                "ssh_url": f"git@github.com:{repo.full_name}.git",
                "svn_url": f"{HTML_BASE}/{repo.full_name}",
                "homepage": None,
                "size": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "language": None,
                "has_issues": True,
                "has_projects": True,
                "has_downloads": True,
                "has_wiki": True,
                "has_pages": False,
                "forks_count": 0,
                "mirror_url": None,
                "license": None,
                "forks": 0,
                "open_issues_count": open_issues,
                "open_issues": open_issues,
                "watchers": 0,
                "is_template": False,
                "topics": [],
                "web_commit_signoff_required": False,
                "custom_properties": {},
            }
        )
        return data

    def _webhook_envelope(
        self, repo: FakeRepo, data: dict[str, Any], sender: str
    ) -> dict[str, Any]:
        data["repository"] = self.webhook_repo_json(repo)
        if repo.owner_type == "Organization":
            api = f"{self.url}/orgs/{repo.owner}"
            oid = self.user_id(repo.owner)
            data["organization"] = {
                "login": repo.owner,
                "id": oid,
                "node_id": f"O_{oid}",
                "url": api,
                "repos_url": api + "/repos",
                "events_url": api + "/events",
                "hooks_url": api + "/hooks",
                "issues_url": api + "/issues",
                "members_url": api + "/members{/member}",
                "public_members_url": api + "/public_members{/member}",
                "avatar_url": f"https://avatars.githubusercontent.com/u/{oid}?v=4",
                "description": "",
            }
        data["sender"] = self.full_user_json(sender)
        if repo.installation_id is not None:
            node = base64.b64encode(f"023:IntegrationInstallation{repo.installation_id}".encode())
            data["installation"] = {"id": repo.installation_id, "node_id": node.decode()}
        return data

    def workflow_run_payload(
        self,
        full_name: str,
        run: FakeWorkflowRun | int,
        action: str = "completed",
        *,
        sender: str | None = None,
    ) -> dict[str, Any]:
        """A `workflow_run` webhook body (deliver it with X-GitHub-Event: workflow_run)."""
        repo = self.repo(full_name)
        if isinstance(run, int):
            run = repo.workflow_runs[run]
        data = {
            "action": action,
            "workflow_run": self.workflow_run_json(repo, run),
            "workflow": self.workflow_json(repo, run),
        }
        return self._webhook_envelope(repo, data, sender or run.actor)

    def pull_request_payload(
        self,
        full_name: str,
        number: int,
        action: str = "opened",
        sender: str | None = None,
        *,
        before: str | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """A `pull_request` webhook body from the stored pull (sender: its author unless
        given).  `synchronize` needs `before` (the old head); `labeled`/`unlabeled` a
        `label`."""
        repo = self.repo(full_name)
        pull = repo.pulls[number]
        data: dict[str, Any] = {
            "action": action,
            "number": number,
            "pull_request": self.pull_json(repo, pull),
        }
        if action == "synchronize":
            if before is None:
                raise ValueError("a synchronize payload needs before=<the previous head sha>")
            data["before"] = before
            data["after"] = data["pull_request"]["head"]["sha"]
        if label is not None:
            stored = repo.find_label(label)
            if stored is None:
                raise ValueError(f"{full_name} has no label {label!r}")
            data["label"] = self.label_json(repo, stored)
        return self._webhook_envelope(repo, data, sender or pull.user_login)
