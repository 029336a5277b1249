"""Repositories: metadata, contents (from seeded files or the git repository), collaborator
permissions."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from tests.support.fakegithub.gitrepos import _git, _git_run
from tests.support.fakegithub.registry import _json, _require_repo, operation
from tests.support.fakegithub.state import HTML_BASE, Ctx, FakeRepo, GitHubError

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _github_base64(data: bytes) -> str:
    # GitHub wraps base64 file content at 60 characters, with a trailing newline.
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


@operation("repos/get", "metadata")
async def _get_repo(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    data = fake.repo_json(repo)
    if ctx.token is not None:
        data["permissions"] = {"admin": False, "maintain": False, "push": True, "pull": True}
    return _json(data)


@operation("repos/get-content", "contents")
async def _get_content(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    ref = ctx.request.query.get("ref")
    path = ctx.params["path"].strip("/")
    if repo.git_dir is not None:
        return _git_content(fake, repo, ref, path)
    # Only the default branch is modelled; GitHub's answer for an unknown ref is this 404.
    if ref is not None and ref not in (repo.default_branch, f"refs/heads/{repo.default_branch}"):
        raise GitHubError(404, f"No commit found for the ref {ref}")

    def entry(p: str, kind: str, data: bytes | None) -> dict[str, Any]:
        sha = _git_blob_sha(data) if data is not None else hashlib.sha1(p.encode()).hexdigest()
        size = len(data) if data is not None else 0
        return _content_entry(fake, repo, p, kind, sha, size, repo.default_branch)

    if path in repo.files:
        raw = repo.files[path]
        data = raw.encode() if isinstance(raw, str) else raw
        content = {"encoding": "base64", "content": _github_base64(data)}
        return _json({**entry(path, "file", data), **content})
    prefix = f"{path}/" if path else ""
    children: dict[str, dict[str, Any]] = {}
    for file_path, raw in sorted(repo.files.items()):
        if not file_path.startswith(prefix):
            continue
        head, sep, _ = file_path[len(prefix) :].partition("/")
        child = prefix + head
        if sep:
            children.setdefault(child, entry(child, "dir", None))
        else:
            children[child] = entry(child, "file", raw.encode() if isinstance(raw, str) else raw)
    if not children:
        raise GitHubError(404, "Not Found")
    return _json(list(children.values()))


def _content_entry(
    fake: FakeGitHub, repo: FakeRepo, path: str, kind: str, sha: str, size: int, ref: str
) -> dict[str, Any]:
    api = f"{fake.url}/repos/{repo.full_name}"
    view = "blob" if kind == "file" else "tree"
    return {
        "type": kind,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "size": size,
        "url": f"{api}/contents/{path}?ref={ref}",
        "html_url": f"{HTML_BASE}/{repo.full_name}/{view}/{ref}/{path}",
        "git_url": f"{api}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}",
        "download_url": (
            f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}"
            if kind == "file"
            else None
        ),
    }


def _git_content(fake: FakeGitHub, repo: FakeRepo, ref: str | None, path: str) -> web.Response:
    git_dir = cast(Path, repo.git_dir)
    shown_ref = ref or repo.default_branch
    commit = fake._ref_for_contents(repo, shown_ref)
    if commit is None:
        # Two different 404s on GitHub: no ref given on an empty repo, or an unknown ref.
        if ref is None:
            raise GitHubError(404, "This repository is empty.")
        raise GitHubError(404, f"No commit found for the ref {ref}")
    spec = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
    kind = _git_run(git_dir, "cat-file", "-t", spec, check=False)
    if kind.returncode != 0:
        raise GitHubError(404, "Not Found")
    if kind.stdout.decode().strip() == "blob":
        data = _git_run(git_dir, "cat-file", "blob", spec).stdout
        sha = _git(git_dir, "rev-parse", spec)
        content = {"encoding": "base64", "content": _github_base64(data)}
        return _json(
            {**_content_entry(fake, repo, path, "file", sha, len(data), shown_ref), **content}
        )
    listing = []
    for record in _git_run(git_dir, "ls-tree", "-z", "-l", spec).stdout.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.decode().partition("\t")
        mode, obj_type, sha, size = meta.split()
        # GitHub's names for git's object kinds in a directory listing.
        kind_name = {"blob": "file", "tree": "dir", "commit": "submodule"}[obj_type]
        if mode == "120000":
            kind_name = "symlink"
        child = f"{path}/{name}" if path else name
        size_int = int(size) if size.isdigit() else 0
        listing.append(_content_entry(fake, repo, child, kind_name, sha, size_int, shown_ref))
    return _json(listing)


@operation("repos/get-collaborator-permission-level", "metadata")
async def _get_permission(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    username = ctx.params["username"]
    role = next((r for u, r in repo.collaborators.items() if u.lower() == username.lower()), None)
    # Modelled as GitHub does for a user that does not exist: 404.  (Real GitHub answers an
    # existing non-collaborator of a public repo with "read"; seed them as "read" if needed.)
    if role is None:
        raise GitHubError(404, "Not Found")
    # The legacy `permission` field folds maintain into write and triage into read.
    legacy = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read"}
    permission = legacy.get(role, "read" if role == "read" else "none")
    user = fake.user_json(username)
    user["permissions"] = {
        "admin": role == "admin",
        "maintain": role in ("admin", "maintain"),
        "push": permission in ("admin", "write"),
        "triage": permission != "none",
        "pull": permission != "none",
    }
    user["role_name"] = role
    return _json({"permission": permission, "role_name": role, "user": user})
