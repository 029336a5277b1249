"""A two-function repository (`add` and `mul`, both wrong) served over git smart HTTP, opened
as a real workspace: what the keep/revert and budget tests edit, score and revert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.workspace import MirrorCache, Workspace, open_workspace
from loops.engine import Budget, Score
from tests.support.githttp import commit_files, create_bare_repo, git_server

TOKEN = "ghs_engineTestToken0123456789abcdef"
REPO = "acme/calc"
BUGGY = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n"


@pytest.fixture
async def ws(tmp_path: Path) -> AsyncIterator[Workspace]:
    repos = tmp_path / "server"
    bare = create_bare_repo(repos, REPO)
    commit_files(bare, {"calc.py": BUGGY}, "initial")
    async with git_server(repos, {TOKEN: True}) as base_url:
        mirrors = MirrorCache(tmp_path / "data", git_base_url=base_url)
        await mirrors.fetch(REPO, TOKEN)
        async with open_workspace(mirrors, REPO, "main", loop="patch", number=1) as w:
            yield w


async def correctness(ws: Workspace) -> Score:
    """Score = how many of the two functions are right (the 'test suite' of this repo)."""
    namespace: dict[str, object] = {}
    try:
        exec(await ws.read_file("calc.py"), namespace)
        add, mul = namespace["add"], namespace["mul"]
        right = int(add(2, 3) == 5) + int(mul(2, 3) == 6)  # type: ignore[operator]
    except Exception as exc:
        return Score((-1.0,), False, f"broken: {type(exc).__name__}")
    return Score((float(right),), right == 2, f"{right}/2 pass")


def budget(iterations: int = 10) -> Budget:
    return Budget(
        max_iterations=iterations, max_tokens=10_000, max_cost_usd=1.0, wall_clock_seconds=600
    )
