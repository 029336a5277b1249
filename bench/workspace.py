"""Benchmark: how fast does a job get a working copy of a large repository?

Generates a bare repository (about 20,000 files, 5,000 commits) with `git fast-import`, serves it
with the test git server on 127.0.0.1, and measures, with medians over several runs:

- the first mirror fetch (bot.workspace.MirrorCache over smart HTTP) and a no-op refetch;
- a per-job working copy made from the mirror, by each method considered;
- a plain `git clone` over HTTP (what a job would do with no cache), the 100 % line;
- `cp -al` of a checked-out tree: hard-linking every file, the floor for materialising a tree.

Usage: python bench/workspace.py [--files N] [--commits N] [--reps N] [--dir DIR]
Only loopback is used; everything happens in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pygit2  # noqa: E402
from pygit2.enums import CheckoutStrategy  # noqa: E402

from bot.workspace import MirrorCache, open_workspace  # noqa: E402
from tests.support.githttp import git_server  # noqa: E402

TOKEN = "bench-token"
REPO = "bench/big"
TIMEOUT = 300


def generate(path: Path, n_files: int, n_commits: int, seed: int = 7) -> None:
    """A bare repo: one commit adding n_files, then commits changing 4 files each."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
    paths = [f"src/pkg{i // 100:03d}/mod{i % 100:03d}.py" for i in range(n_files)]
    versions = [0] * n_files

    def content(index: int) -> bytes:
        lines = [f'"""Module {index}."""', "", f"VERSION = {versions[index]}", ""]
        for k in range(8):
            lines.append(f"def f{k}(x):\n    return x * {rng.randrange(1000)} + {k}\n")
        return "\n".join(lines).encode()

    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    write = proc.stdin.write

    def commit(number: int, changed: list[int] | range) -> None:
        message = f"commit {number}\n".encode()
        write(
            f"commit refs/heads/main\n"
            f"committer Bench <bench@example.com> {1_600_000_000 + number * 60} +0000\n"
            f"data {len(message)}\n".encode()
            + message
        )
        for index in changed:
            data = content(index)
            write(f"M 100644 inline {paths[index]}\ndata {len(data)}\n".encode() + data + b"\n")
        write(b"\n")

    commit(0, range(n_files))
    for number in range(1, n_commits):
        changed = rng.sample(range(n_files), 4)
        for index in changed:
            versions[index] += 1
        commit(number, changed)
    proc.stdin.close()
    if proc.wait(timeout=TIMEOUT) != 0:
        raise SystemExit("git fast-import failed")
    # A served repository is packed with deltas, like one on GitHub.
    subprocess.run(["git", "-C", str(path), "repack", "-a", "-d", "-q"], check=True)


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        ["git", *args],
        check=True,
        cwd=cwd,
        timeout=TIMEOUT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )


async def timed(
    reps: int,
    run: Callable[[int], Awaitable[None]],
    setup: Callable[[int], Awaitable[None]] | None = None,
) -> list[float]:
    times = []
    for rep in range(reps):
        if setup is not None:
            await setup(rep)
        start = time.perf_counter()
        await run(rep)
        times.append(time.perf_counter() - start)
    return times


async def bench(
    n_files: int, n_commits: int, reps: int, where: str | None
) -> list[tuple[str, list[float], str]]:
    rows: list[tuple[str, list[float], str]] = []
    with tempfile.TemporaryDirectory(prefix="loopwright-bench-", dir=where) as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "served"
        bare = served / "bench" / "big.git"
        bare.parent.mkdir(parents=True)
        start = time.perf_counter()
        generate(bare, n_files, n_commits)
        print(
            f"generated {n_files} files, {n_commits} commits in "
            f"{time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )

        async with git_server(served, {TOKEN: True}) as base_url:
            url = f"{base_url}/{REPO}.git"
            scratch = tmp / "scratch"

            # Deleting the previous run's 20,000 files is setup, not part of any measurement.
            async def clear(rep: int) -> None:
                await asyncio.to_thread(shutil.rmtree, scratch, True)
                scratch.mkdir()

            # -- mirror ----------------------------------------------------------------------
            async def first_fetch(rep: int) -> None:
                await MirrorCache(scratch / "data", git_base_url=base_url).fetch(REPO, TOKEN)

            rows.append(
                ("first mirror fetch (pygit2, HTTP)", await timed(3, first_fetch, clear), "")
            )

            data_dir = tmp / "data"
            mirrors = MirrorCache(data_dir, git_base_url=base_url)
            await mirrors.fetch(REPO, TOKEN)
            mirror = mirrors.path_for(REPO)

            async def refetch(rep: int) -> None:
                await mirrors.fetch(REPO, TOKEN)

            rows.append(("mirror refetch, nothing new", await timed(reps, refetch), ""))

            # -- the 100 % line and the floor --------------------------------------------------
            async def plain_clone(rep: int) -> None:
                auth = (
                    "Authorization: Basic "
                    + __import__("base64").b64encode(f"x-access-token:{TOKEN}".encode()).decode()
                )
                await asyncio.to_thread(
                    git, "-c", f"http.extraHeader={auth}", "clone", "-q", url,
                    str(scratch / "c"),
                )  # fmt: skip

            clone_times = await timed(3, plain_clone, clear)
            rows.append(("plain `git clone` over HTTP", clone_times, "baseline"))

            async def local_clone(rep: int) -> None:
                await asyncio.to_thread(git, "clone", "-q", str(bare), str(scratch / "c"))

            rows.append(
                (
                    "`git clone` of the local bare repo (hard links)",
                    await timed(reps, local_clone, clear),
                    "",
                )
            )

            template = tmp / "template"
            git("clone", "-q", str(bare), str(template))

            async def hardlink_copy(rep: int) -> None:
                await asyncio.to_thread(
                    subprocess.run,
                    ["cp", "-al", str(template), str(scratch / "c")],
                    check=True,
                    timeout=TIMEOUT,
                )

            rows.append(
                (
                    "`cp -al` of a checked-out tree (floor)",
                    await timed(reps, hardlink_copy, clear),
                    "",
                )
            )

            # -- per-job workspaces from the mirror -------------------------------------------
            async def ws_fresh(rep: int) -> None:
                cm = open_workspace(mirrors, REPO, "main", loop="bench", number=rep, keep_warm=0)
                start = time.perf_counter()
                await cm.__aenter__()
                enter.append(time.perf_counter() - start)
                await cm.__aexit__(None, None, None)

            enter: list[float] = []
            await timed(reps, ws_fresh)
            rows.append(("workspace: alternates + checkout (fresh slot)", enter, "open"))

            # Alternate base commits so each reuse rewrites the files that differ (~80 here),
            # as consecutive jobs on a busy repository would.
            bases = ["main~20", "main"]
            async with open_workspace(mirrors, REPO, "main", loop="bench", number=0, keep_warm=1):
                pass
            enter = []

            async def ws_warm(rep: int) -> None:
                cm = open_workspace(
                    mirrors, REPO, bases[rep % 2], loop="bench", number=rep, keep_warm=1
                )
                start = time.perf_counter()
                await cm.__aenter__()
                enter.append(time.perf_counter() - start)
                await cm.__aexit__(None, None, None)

            release = await timed(reps, ws_warm)
            rows.append(("workspace: alternates, warm slot reused (chosen)", enter, "open"))
            rows.append(
                (
                    "  job end: reset + release of that slot",
                    [r - e for r, e in zip(release, enter, strict=True)],
                    "",
                )
            )

            head = pygit2.Repository(str(mirror)).references["refs/heads/main"].target

            async def worktree(rep: int) -> None:
                def run() -> None:
                    repo = pygit2.Repository(str(mirror))
                    name = f"bench{rep}"
                    ref = repo.references.create(f"refs/heads/{name}", head, force=True)
                    repo.add_worktree(name, str(scratch / "w"), ref)

                await asyncio.to_thread(run)

            rows.append(
                (
                    "workspace: `git worktree` of the mirror (pygit2)",
                    await timed(reps, worktree, clear),
                    "",
                )
            )
            subprocess.run(["git", "-C", str(mirror), "worktree", "prune"], check=True)

            async def hardlinks(rep: int) -> None:
                def run() -> None:
                    dest = scratch / "h"
                    repo = pygit2.init_repository(str(dest))
                    src_objects = mirror / "objects"
                    for dirpath, _dirs, files in os.walk(src_objects):
                        target = dest / ".git" / "objects" / Path(dirpath).relative_to(src_objects)
                        target.mkdir(parents=True, exist_ok=True)
                        for name in files:
                            os.link(Path(dirpath) / name, target / name)
                    repo = pygit2.Repository(str(dest))
                    repo.checkout_tree(repo[head], strategy=CheckoutStrategy.FORCE)
                    repo.set_head(head)

                await asyncio.to_thread(run)

            rows.append(
                (
                    "workspace: hard-linked objects + checkout",
                    await timed(reps, hardlinks, clear),
                    "",
                )
            )

            async def local_pygit2_clone(rep: int) -> None:
                await asyncio.to_thread(
                    pygit2.clone_repository,
                    str(mirror),
                    str(scratch / "p"),
                    checkout_branch="main",
                )

            rows.append(
                (
                    "workspace: pygit2 clone of the mirror",
                    await timed(reps, local_pygit2_clone, clear),
                    "",
                )
            )
            shutil.rmtree(scratch, ignore_errors=True)
    return rows


def table(rows: list[tuple[str, list[float], str]]) -> str:
    baseline = next(statistics.median(times) for _, times, note in rows if note == "baseline")
    lines = [
        "| operation | median (s) | runs | vs plain clone |",
        "|---|---:|---:|---:|",
    ]
    for label, times, _note in rows:
        median = statistics.median(times)
        lines.append(f"| {label} | {median:.3f} | {len(times)} | {100 * median / baseline:.1f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--commits", type=int, default=5_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--dir", help="where to work (default: the system temp dir)")
    args = parser.parse_args()
    rows = asyncio.run(bench(args.files, args.commits, args.reps, args.dir))
    where = Path(args.dir or tempfile.gettempdir())
    print(f"\n{args.files} files, {args.commits} commits, {os.cpu_count()} CPUs, in {where}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
