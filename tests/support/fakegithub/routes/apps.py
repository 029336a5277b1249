"""The App's own operations: the authenticated app, the manifest conversion, installations and
their access tokens and repositories."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from tests.support.fakegithub.registry import _json, _require_repo, operation
from tests.support.fakegithub.state import Ctx, GitHubError, InstallationToken, _iso

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


@operation("apps/get-authenticated", None)
async def _get_app(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    return _json(fake.app_json())


@operation("apps/create-from-manifest", None)
async def _create_from_manifest(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    """The conversion: the new App's id, key and secrets, once per code. The App is this fake's
    own (same id and key), so what `loopwright setup` writes works against the fake after."""
    entry = fake.manifest_codes.pop(ctx.params["code"], None)
    if entry is None:
        raise GitHubError(404, "Not Found")
    manifest, owner, owner_type = entry
    slug = re.sub(r"[^a-z0-9]+", "-", str(manifest.get("name", fake.app_slug)).lower()).strip("-")
    fake.app_slug = slug or fake.app_slug
    data = fake.app_json()
    data.update(
        {
            "name": manifest.get("name", fake.app_name),
            "description": manifest.get("description", ""),
            "external_url": manifest.get("url", ""),
            "owner": fake.user_json(owner, owner_type),
            "permissions": dict(manifest.get("default_permissions") or {}),
            "events": list(manifest.get("default_events") or []),
            "client_id": f"Iv1.{secrets.token_hex(8)}",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": fake.private_key_pem,
        }
    )
    fake.created_apps.append(data)
    return _json(data, 201)


@operation("apps/list-installations", None)
async def _list_installations(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    items = [fake.installation_json(i) for i in fake.installations.values()]
    return fake.paginate(ctx.request, items)


@operation("apps/get-installation", None)
async def _get_installation(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    inst = fake.installations.get(ctx.int_param("installation_id"))
    if inst is None:
        raise GitHubError(404, "Not Found")
    return _json(fake.installation_json(inst))


@operation("apps/get-repo-installation", None)
async def _get_repo_installation(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    inst = fake.installations[cast(int, repo.installation_id)]
    return _json(fake.installation_json(inst))


@operation("apps/create-installation-access-token", None)
async def _create_access_token(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    repositories: list[str] | None = body.get("repositories")
    if body.get("repository_ids") is not None:
        by_id = {r.id: r.name for r in fake.repos.values()}
        ids = body["repository_ids"]
        if any(i not in by_id for i in ids):
            raise GitHubError(
                422,
                "There is at least one repository that does not exist or is not accessible to "
                "the parent installation.",
            )
        repositories = [*(repositories or []), *(by_id[i] for i in ids)]
    token = fake.mint_token(
        ctx.int_param("installation_id"),
        repositories=repositories,
        permissions=body.get("permissions"),
    )
    data: dict[str, Any] = {
        "token": token.token,
        "expires_at": _iso(token.expires_at),
        "permissions": token.permissions,
        "repository_selection": "all" if token.repositories is None else "selected",
    }
    if token.repositories is not None:
        data["repositories"] = [fake.repo_json(fake.repos[n]) for n in sorted(token.repositories)]
    return _json(data, 201)


@operation("apps/list-repos-accessible-to-installation", None)
async def _installation_repos(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    token = cast(InstallationToken, ctx.token)
    repos = [
        r
        for key, r in sorted(fake.repos.items())
        if r.installation_id == token.installation_id
        and (token.repositories is None or key in token.repositories)
    ]
    # Unlike most lists this one is wrapped in an object (getiter needs
    # iterable_key="repositories").
    return fake.paginate(
        ctx.request,
        [fake.repo_json(r) for r in repos],
        wrap=lambda page: {
            "total_count": len(repos),
            "repository_selection": "all" if token.repositories is None else "selected",
            "repositories": page,
        },
    )
