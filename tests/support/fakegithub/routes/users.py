"""Operations a user's own token (an App's user-to-server `ghu_` token from the OAuth web flow,
see `oauth.py`) is used for: who signed in, and which of the App's installations and
repositories they can reach, with their permissions on each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.fakegithub.registry import _json, operation
from tests.support.fakegithub.state import Ctx, FakeRepo, GitHubError

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub

#: A collaborator role → the `permissions` booleans GitHub shows the user on a repository.
_PERMISSIONS = {
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "write": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "read": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
}


def _user(fake: FakeGitHub, ctx: Ctx) -> str:
    login = fake.user_of(ctx.request)
    if login is None:
        raise GitHubError(401, "Bad credentials")
    return login


def _role(repo: FakeRepo, login: str) -> str | None:
    if repo.owner.lower() == login.lower():
        return "admin"
    return next((r for u, r in repo.collaborators.items() if u.lower() == login.lower()), None)


def _reachable(fake: FakeGitHub, login: str, installation_id: int) -> list[tuple[FakeRepo, str]]:
    out = []
    for _key, repo in sorted(fake.repos.items()):
        role = _role(repo, login)
        if repo.installation_id == installation_id and role in _PERMISSIONS:
            out.append((repo, role))
    return out


@operation("users/get-authenticated", None)
async def _get_user(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    return _json(fake.user_json(_user(fake, ctx)))


@operation("apps/list-installations-for-authenticated-user", None)
async def _user_installations(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    login = _user(fake, ctx)
    items = [
        fake.installation_json(inst)
        for inst in fake.installations.values()
        if _reachable(fake, login, inst.id)
    ]
    return fake.paginate(
        ctx.request, items, wrap=lambda page: {"total_count": len(items), "installations": page}
    )


@operation("apps/list-installation-repos-for-authenticated-user", None)
async def _user_installation_repos(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    login = _user(fake, ctx)
    reachable = _reachable(fake, login, ctx.int_param("installation_id"))
    if not reachable:
        raise GitHubError(404, "Not Found")
    items: list[dict[str, Any]] = []
    for repo, role in reachable:
        data = fake.repo_json(repo)
        data["permissions"] = dict(_PERMISSIONS[role])
        items.append(data)
    return fake.paginate(
        ctx.request,
        items,
        wrap=lambda page: {
            "total_count": len(items),
            "repository_selection": "all",
            "repositories": page,
        },
    )
