"""Workspaces over real git smart HTTP: mirror fetch, per-job working copies, edits, push policy."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pygit2
import pytest

from bot.workspace import (
    AuthenticationError,
    MirrorCache,
    ProtectedBranchError,
    ProtectedPathError,
    PushError,
    SearchTextNotFound,
    SearchTextNotUnique,
    UnsafePathError,
    Workspace,
    open_workspace,
    sweep_stale,
)
from tests.support.githttp import commit_files, create_bare_repo, git_server

TOKEN = "ghs_s3cretInstallationToken0123456789"
READ_ONLY = "ghs_readOnlyToken0123456789abcdef"
REPO = "acme/widget"
ROOT = Path(__file__).resolve().parent.parent


class Env:
    def __init__(self, tmp: Path, base_url: str, bare: Path) -> None:
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.bare = bare
        self.mirrors = MirrorCache(self.data_dir, git_base_url=base_url)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    repos = tmp_path / "server"
    bare = create_bare_repo(repos, REPO)
    commit_files(
        bare,
        {
            "README.md": "# widget\n",
            "src/widget.py": "def area(w, h):\n    return w * h\n\n\ndef double(x):\n"
            "    return x + x\n",
            "src/util.py": "x = 1\nx = 1\n",
            "tests/test_widget.py": "from src.widget import area\n",
            ".gitignore": ".venv/\n__pycache__/\n",
        },
        "initial",
    )
    async with git_server(repos, {TOKEN: True, READ_ONLY: False}) as base_url:
        yield Env(tmp_path, base_url, bare)


async def fetched(env: Env) -> Path:
    return await env.mirrors.fetch(REPO, TOKEN)


def all_file_bytes(root: Path) -> bytes:
    chunks = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                chunks.append(path.read_bytes())
    return b"\n".join(chunks)


async def test_token_reaches_the_server_only_through_the_callback(env: Env) -> None:
    mirror = await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="fix", number=1) as ws:
        await ws.edit("src/widget.py", "return x + x", "return 2 * x")
        await ws.commit("Double by multiplication")
        await ws.push(TOKEN)
        git_dir = ws.root / ".git"
        for where in (mirror, git_dir, env.data_dir):
            assert TOKEN.encode() not in all_file_bytes(where)
        config = pygit2.Repository(str(ws.root)).config
        assert config["core.hooksPath"] == os.devnull
        assert config.get_bool("core.fsmonitor") is False
        assert (git_dir / "objects" / "info" / "alternates").read_text().strip() == str(
            (mirror / "objects").resolve()
        )


async def test_wrong_token_fails_clearly(env: Env) -> None:
    with pytest.raises(AuthenticationError, match="rejected the installation token") as info:
        await env.mirrors.fetch(REPO, "ghs_wrong")
    assert "ghs_wrong" not in str(info.value)


async def test_incremental_fetch_sees_new_commit(env: Env) -> None:
    mirror = await fetched(env)
    sha = commit_files(env.bare, {"NEWS.md": "news\n"}, "second")
    assert sha not in pygit2.Repository(str(mirror))
    await fetched(env)
    assert str(pygit2.Repository(str(mirror)).references["refs/heads/main"].target) == sha
    async with open_workspace(env.mirrors, REPO, sha, loop="fix", number=2) as ws:
        assert await ws.read_file("NEWS.md") == "news\n"
    async with open_workspace(env.mirrors, REPO, "HEAD", loop="fix", number=2) as ws:
        assert ws.base == sha


async def test_read_list_search_diff(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=3) as ws:
        assert ws.branch == "loopwright/patch-3"
        assert pygit2.Repository(str(ws.root)).head.shorthand == "loopwright/patch-3"
        assert await ws.list_files("src/*.py") == ["src/util.py", "src/widget.py"]
        assert await ws.read_file("src/widget.py", 2, 2) == "    return w * h\n"
        assert await ws.read_file("src/widget.py", 5) == "def double(x):\n    return x + x\n"
        hits = await ws.search(r"def \w+", max_results=1)
        assert len(hits) == 1
        assert len(await ws.search(r"def \w+", max_results=10)) == 2
        await ws.write_file("src/new.py", "NEW = 1\n")
        await ws.edit("README.md", "# widget", "# Widget")
        diff = await ws.diff()
        assert "+# Widget" in diff
        assert "+NEW = 1" in diff
        assert "src/new.py" in await ws.list_files()


async def test_keep_and_revert_round_trip(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=4) as ws:
        base_diff = await ws.diff()
        assert base_diff == ""
        await ws.edit("src/widget.py", "return w * h", "return h * w")
        kept = await ws.keep("Swap operands")
        await ws.edit("src/widget.py", "return x + x", "return x << 1")
        await ws.write_file("scratch.txt", "temporary\n")
        await ws.commit("An attempt that fails")
        await ws.edit("README.md", "# widget", "# oops")
        assert await ws.reset_to_last_kept() == kept
        text = await ws.read_file("src/widget.py")
        assert "return h * w" in text
        assert "return x + x" in text
        assert not (ws.root / "scratch.txt").exists()
        assert await ws.read_file("README.md") == "# widget\n"
        repo = pygit2.Repository(str(ws.root))
        assert str(repo.references["refs/heads/loopwright/patch-4"].target) == kept
        # Reverting to base when nothing was kept.
        ws.last_kept = ws.base
        await ws.reset_to_last_kept()
        assert await ws.diff() == ""


async def test_edit_refused_when_text_missing_or_not_unique(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=5) as ws:
        with pytest.raises(SearchTextNotFound):
            await ws.edit("src/util.py", "y = 2", "y = 3")
        with pytest.raises(SearchTextNotUnique, match="2 times"):
            await ws.edit("src/util.py", "x = 1", "x = 2")
        with pytest.raises(SearchTextNotFound):
            await ws.edit("src/missing.py", "x", "y")
        assert await ws.read_file("src/util.py") == "x = 1\nx = 1\n"


async def test_path_traversal_refused(env: Env) -> None:
    await fetched(env)
    outside = env.tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=6) as ws:
        (ws.root / "link").symlink_to(outside)
        (ws.root / "file-link").symlink_to(outside / "secret.txt")
        attempts = [
            "../outside/secret.txt",
            "src/../../outside/secret.txt",
            str(outside / "secret.txt"),
            "/etc/passwd",
            "link/secret.txt",
            "file-link",
            ".git/config",
        ]
        for path in attempts:
            with pytest.raises(UnsafePathError):
                await ws.read_file(path)
            with pytest.raises(UnsafePathError):
                await ws.edit(path, "secret", "pwned")
            with pytest.raises(UnsafePathError):
                await ws.write_file(path, "pwned\n")
        assert (outside / "secret.txt").read_text() == "secret\n"
        assert all(hit.path not in ("link", "file-link") for hit in await ws.search("secret"))


async def test_push_job_branch_reaches_server(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="fix", number=1) as ws:
        await ws.edit("README.md", "# widget", "# widget, fixed")
        sha = await ws.commit("Fix the README")
        assert sha is not None
        assert await ws.push(TOKEN) == sha
        server = pygit2.Repository(str(env.bare))
        assert str(server.references["refs/heads/loopwright/fix-1"].target) == sha
        commit = server[sha].peel(pygit2.Commit)
        assert commit.author.name == "loopwright[bot]"
        # A rerun rebuilds the branch from base: the push must force-update it.
        await ws.reset_to_last_kept()
        await ws.edit("README.md", "# widget", "# widget, again")
        second = await ws.commit("Fix the README differently")
        assert await ws.push(TOKEN) == second
        assert str(server.references["refs/heads/loopwright/fix-1"].target) == second


async def test_push_outside_loopwright_refused(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="fix", number=7) as ws:
        await ws.edit("README.md", "# widget", "# hijacked")
        await ws.commit("x")
        for branch in ("main", "refs/heads/main", "loopwright/../main", "loopwright/", "x/y"):
            with pytest.raises(ProtectedBranchError):
                await ws.push(TOKEN, branch)
        server = pygit2.Repository(str(env.bare))
        assert server.references["refs/heads/main"].peel(pygit2.Commit).message == "initial"


async def test_push_touching_workflows_refused(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="ci_repair", number=8) as ws:
        await ws.write_file(".github/workflows/ci.yml", "on: push\n")
        await ws.commit("Sneak a workflow in")
        with pytest.raises(ProtectedPathError, match=r"\.github/workflows/ci\.yml"):
            await ws.push(TOKEN)
        # Added then removed still passes a workflow through the remote: refused too.
        os.remove(ws.root / ".github/workflows/ci.yml")
        await ws.commit("And out again")
        assert await ws.diff() == ""
        with pytest.raises(ProtectedPathError):
            await ws.push(TOKEN)
        server = pygit2.Repository(str(env.bare))
        assert server.references.get("refs/heads/loopwright/ci_repair-8") is None


async def test_push_without_write_permission_fails(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="fix", number=9) as ws:
        await ws.edit("README.md", "# widget", "# w")
        await ws.commit("x")
        with pytest.raises(PushError) as info:
            await ws.push(READ_ONLY)
        assert READ_ONLY not in str(info.value)


async def test_concurrent_jobs_get_separate_workspaces(env: Env) -> None:
    await fetched(env)

    async def job(number: int) -> tuple[Path, str]:
        async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=number) as ws:
            await ws.edit("README.md", "# widget", f"# job {number}")
            await asyncio.sleep(0.05)
            return ws.root, await ws.read_file("README.md")

    results = await asyncio.gather(*(job(n) for n in (10, 11, 12)))
    assert len({root for root, _ in results}) == 3
    assert [text for _, text in results] == ["# job 10\n", "# job 11\n", "# job 12\n"]


async def test_finished_job_leaves_a_clean_warm_slot(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=13) as ws:
        first_root = ws.root
        await ws.edit("README.md", "# widget", "# dirty")
        await ws.write_file(".venv/marker", "ignored\n")
        await ws.write_file("untracked.txt", "left over\n")
        await ws.commit("x")
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=14) as ws:
        assert ws.root == first_root
        assert await ws.read_file("README.md") == "# widget\n"
        assert not (ws.root / "untracked.txt").exists()
        assert not (ws.root / ".venv").exists()
        assert await ws.diff() == ""
        assert list(pygit2.Repository(str(ws.root)).branches.local) == ["loopwright/patch-14"]
    # Reuse at another base: only the differing paths are written, and the result is exact.
    old_base = str(pygit2.Repository(str(env.bare)).head.target)
    new_base = commit_files(
        env.bare, {"README.md": None, "src/util.py": "y = 2\n", "docs/new.md": "new\n"}, "next"
    )
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, new_base, loop="patch", number=16) as ws:
        assert ws.root == first_root
        assert not (ws.root / "README.md").exists()
        assert await ws.read_file("src/util.py") == "y = 2\n"
        assert await ws.read_file("docs/new.md") == "new\n"
        assert await ws.diff() == ""
        assert pygit2.Repository(str(ws.root)).status() == {}
    async with open_workspace(env.mirrors, REPO, old_base, loop="patch", number=17) as ws:
        assert ws.root == first_root
        assert await ws.read_file("README.md") == "# widget\n"
        assert not (ws.root / "docs").exists()
        assert pygit2.Repository(str(ws.root)).status() == {}
    async with open_workspace(
        env.mirrors, REPO, "main", loop="patch", number=15, keep_warm=0
    ) as ws:
        root = ws.root
    assert not root.exists()


CRASHING_JOB = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from bot.workspace import MirrorCache, open_workspace

    async def main() -> None:
        mirrors = MirrorCache(Path(sys.argv[1]), git_base_url=sys.argv[2])
        async with open_workspace(mirrors, "acme/widget", "main", loop="fix", number=99) as ws:
            print(ws.root, flush=True)
            os._exit(3)  # a crash: no cleanup runs

    asyncio.run(main())
    """
)


def crash_in_workspace(env: Env) -> Path:
    """Run a job in another process that dies inside its workspace; returns that tree."""
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_JOB, str(env.data_dir), env.mirrors.git_base_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 3, proc.stderr
    crashed = Path(proc.stdout.strip())
    assert crashed.is_dir()
    return crashed


async def test_sweep_removes_workspaces_of_dead_processes(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="fix", number=100) as live:
        crashed = await asyncio.to_thread(crash_in_workspace, env)
        assert crashed != live.root
        removed = sweep_stale(env.data_dir)
        assert removed == [crashed.parent]
        assert not crashed.exists()
        assert live.root.is_dir()  # held by a live job: kept
    assert sweep_stale(env.data_dir) == []


async def test_tree_of_a_crashed_job_is_never_reused(env: Env) -> None:
    await fetched(env)
    crashed = await asyncio.to_thread(crash_in_workspace, env)
    (crashed / "planted.txt").write_text("left by the crashed job\n")
    async with open_workspace(env.mirrors, REPO, "main", loop="fix", number=101) as ws:
        assert ws.root != crashed
        assert not crashed.exists()
        assert not (ws.root / "planted.txt").exists()


async def test_git_cli_clone_with_gzip_requests(env: Env, tmp_path: Path) -> None:
    """The test server also speaks to git itself (which gzips its upload-pack requests)."""
    auth = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    url = f"{env.mirrors.git_base_url}/{REPO}.git"
    proc = await asyncio.to_thread(
        subprocess.run,
        ["git", "-c", f"http.extraHeader=Authorization: Basic {auth}", "clone", "-q", url],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "widget" / "src" / "widget.py").exists()


def test_workspace_type_is_public() -> None:
    assert Workspace.__name__ == "Workspace"


async def test_what_a_run_changed_is_seen_and_undone_ignored_files_included(env: Env) -> None:
    await fetched(env)
    async with open_workspace(env.mirrors, REPO, "main", loop="patch", number=5) as ws:
        (ws.root / ".git" / "info" / "exclude").write_text("__pycache__/\n*.log\n")
        (ws.root / "src" / "__pycache__").mkdir()
        (ws.root / "setup.log").write_text("from setup\n")
        before = await ws.snapshot()
        # What code under test might do during a run:
        (ws.root / "README.md").write_text("# rewritten\n")
        (ws.root / "src" / "__pycache__" / "widget.cpython-311.pyc").write_bytes(b"\x00")
        (ws.root / "sitecustomize.py").write_text("import os\n")
        (ws.root / "setup.log").write_text("changed\n")
        changed = await ws.changes_since(before)
        assert changed.tracked == {"README.md"}
        assert changed.untracked == {"sitecustomize.py"}
        assert changed.other == {
            "src/__pycache__/widget.cpython-311.pyc",
            "sitecustomize.py",
            "setup.log",
        }
        await ws.restore_tracked(changed.tracked)
        await ws.remove_new(changed.other - {"setup.log"})
        assert await ws.read_file("README.md") == "# widget\n"
        assert not (ws.root / "sitecustomize.py").exists()
        assert not (ws.root / "src" / "__pycache__" / "widget.cpython-311.pyc").exists()
        # A scrub leaves exactly the commit: nothing ignored or untracked survives.
        await ws.scrub()
        assert not (ws.root / "setup.log").exists()
        assert not (ws.root / "src" / "__pycache__").exists()
        assert not await ws.changes_since(await ws.snapshot())
        assert await ws.diff() == ""
