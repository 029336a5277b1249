"""The FakeGitHub serves real git over smart HTTP with the same installation tokens as its REST
API, so a token minted by `bot.github` really clones, fetches and pushes through pygit2."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.github import GitHubApp
from bot.workspace import FetchError, MirrorCache, PushRefused, open_workspace
from tests.support.fakegithub import FakeGitHub
from tests.support.githttp import add_git_routes, create_bare_repo


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeGitHub]:
    repos = tmp_path / "served"
    gh = FakeGitHub()
    gh.add_app_hook(lambda app: add_git_routes(app, repos, gh.token_allows))
    await gh.start()
    gh.add_repo("octo/hello", installation_id=1)
    gh.add_repo("octo/other", installation_id=1)
    bare = create_bare_repo(repos, "octo/hello")
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    (src / "app.py").write_text("def add(a, b):\n    return a - b\n")
    git(src, "add", ".")
    git(src, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")
    git(src, "push", "-q", str(bare), "main")
    yield gh
    await gh.close()


async def test_minted_token_clones_edits_and_pushes_a_loopwright_branch(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        app = GitHubApp(
            session, app_id=fake.app_id, private_key_pem=fake.private_key_pem, base_url=fake.url
        )
        token = await app.installation_token(1, "octo/hello")
        other_token = await app.installation_token(1, "octo/other")
    mirrors = MirrorCache(tmp_path / "data", git_base_url=fake.url)
    await mirrors.fetch("octo/hello", token)
    async with open_workspace(mirrors, "octo/hello", "main", loop="fix", number=1) as ws:
        await ws.edit("app.py", "return a - b", "return a + b")
        await ws.keep("Fix add")
        with pytest.raises(PushRefused):
            await ws.push(token, "main")
        await ws.push(token)
    served = tmp_path / "served" / "octo" / "hello.git"
    assert "return a + b" in git(served, "show", "loopwright/fix-1:app.py")
    assert "return a - b" in git(served, "show", "main:app.py")
    # The token never lands on disk, and a token scoped to another repository cannot read.
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file() and path.stat().st_size < 1_000_000:
            assert token.encode() not in path.read_bytes(), path
    with pytest.raises(FetchError):
        await MirrorCache(tmp_path / "data2", git_base_url=fake.url).fetch(
            "octo/hello", other_token
        )
    fake.assert_no_violations()
