"""The slot pool: a working copy per job under `workspaces/<owner>/<repo>/<slot>/`, made from
the mirror without copying objects, kept warm after the job (reset and verified clean) for the
next job on the same repository, and swept when its holder died."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy

from bot.flock import FileLock
from bot.workspace.base import (
    DEFAULT_AUTHOR_EMAIL,
    DEFAULT_AUTHOR_NAME,
    WorkspaceError,
    branch_name,
    check_repo_name,
    harden_config,
)
from bot.workspace.mirror import MirrorCache
from bot.workspace.working_copy import Workspace

# The name of the module this was split from, so log records and their filters stay the same.
log = logging.getLogger("bot.workspace")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _workspaces_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "workspaces"


def _new_tree(tree: Path, mirror: Path) -> pygit2.Repository:
    repo = pygit2.init_repository(str(tree))
    # Borrow every object from the mirror instead of copying: creation cost is independent of
    # history size. The mirror is never garbage-collected (gc.auto=0), so the objects stay.
    alternates = tree / ".git" / "objects" / "info" / "alternates"
    alternates.write_text(str((mirror / "objects").resolve()) + "\n")
    repo = pygit2.Repository(str(tree))
    harden_config(repo)
    return repo


_FULL_CLEAN = (
    CheckoutStrategy.FORCE | CheckoutStrategy.REMOVE_UNTRACKED | CheckoutStrategy.REMOVE_IGNORED
)


def _prepare_tree(tree: Path, mirror: Path, base: str, branch: str, how: str) -> str:
    """Make `tree` a clean checkout of `base` on `branch`; returns the base commit sha.

    how: "new" (init, then check out everything), "clean" (full scan: rewrite whatever differs,
    remove untracked and ignored files) or "switch" (a tree verified clean at release: write
    only the paths that differ between its commit and `base`).
    """
    # Names (`main`, `refs/pull/7/head`) live in the mirror; the tree only shares its objects.
    try:
        commit = pygit2.Repository(str(mirror)).revparse_single(base).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        raise WorkspaceError(f"base {base!r} is not in the mirror; fetch it first") from None
    repo = _new_tree(tree, mirror) if how == "new" else pygit2.Repository(str(tree))
    commit = repo[commit.id].peel(pygit2.Commit)
    if how == "switch":
        # Scanning 20,000 files costs more than writing the few that differ (docs/workspace.md).
        # Safe because the tree was verified clean when its last job released it and nothing
        # has run in it since.
        current = repo.head.peel(pygit2.Commit)
        deltas = list(repo.diff(current, commit).deltas)
        paths = sorted({d.old_file.path for d in deltas} | {d.new_file.path for d in deltas})
        if paths:  # an empty list would mean "every path" to libgit2
            strategy = CheckoutStrategy.FORCE | CheckoutStrategy.DISABLE_PATHSPEC_MATCH
            repo.checkout_tree(commit, strategy=strategy, paths=paths)  # type: ignore[no-untyped-call]
    else:
        repo.checkout_tree(commit, strategy=_FULL_CLEAN)  # type: ignore[no-untyped-call]
    repo.references.create(f"refs/heads/{branch}", commit.id, force=True)
    repo.set_head(f"refs/heads/{branch}")
    # Old job branches in a reused slot are irrelevant and could be pushed by mistake.
    for name in list(repo.branches.local):
        if name != branch:
            with contextlib.suppress(pygit2.GitError):
                repo.branches.local.delete(name)
    return str(commit.id)


@dataclass
class _Slot:
    dir: Path
    lock: FileLock

    @property
    def tree(self) -> Path:
        return self.dir / "tree"

    @property
    def owner(self) -> Path:
        return self.dir / "owner"


def _remove_slot(slot_dir: Path) -> None:
    # Rename first so nobody picks up a half-deleted slot.
    trash = slot_dir.with_name(f".trash-{uuid.uuid4().hex}")
    try:
        slot_dir.rename(trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _acquire_slot(repo_dir: Path, job: str) -> tuple[_Slot, bool]:
    """An unused slot for `repo_dir` (reused if a warm one is free); True if the tree is new."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    for slot_dir in sorted(p for p in repo_dir.iterdir() if not p.name.startswith(".")):
        lock = FileLock(slot_dir / "lock")
        try:
            if not lock.acquire(blocking=False):
                continue
        except FileNotFoundError:
            continue
        slot = _Slot(slot_dir, lock)
        if not slot_dir.is_dir():
            # Deleted by its last holder between our listing and our lock.
            lock.release()
            continue
        if slot.owner.exists() or not (slot.tree / ".git").is_dir():
            # A holder died mid-job: its tree is in an unknown state; never reuse it.
            _remove_slot(slot_dir)
            lock.release()
            continue
        _write_owner(slot, job)
        return slot, False
    slot_dir = repo_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    slot_dir.mkdir()
    lock = FileLock(slot_dir / "lock")
    lock.acquire()
    slot = _Slot(slot_dir, lock)
    _write_owner(slot, job)
    return slot, True


def _write_owner(slot: _Slot, job: str) -> None:
    slot.owner.write_text(json.dumps({"pid": os.getpid(), "job": job}))


def _release_slot(slot: _Slot, mirror: Path, base: str, branch: str, keep_warm: int) -> None:
    try:
        warm = [
            p
            for p in slot.dir.parent.iterdir()
            if p != slot.dir and not p.name.startswith(".") and not (p / "owner").exists()
        ]
        if len(warm) >= keep_warm:
            _remove_slot(slot.dir)
            return
        # Wipe the job's changes now, so an idle slot holds nothing of it and the next job's
        # reset is cheap.
        _prepare_tree(slot.tree, mirror, base, branch, "clean")
        repo = pygit2.Repository(str(slot.tree))
        repo.set_head(repo.head.target)
        repo.branches.local.delete(branch)
        # The next job trusts this tree to be clean (it only writes what differs): verify.
        if repo.status(untracked_files="all", ignored=True):
            raise WorkspaceError("the tree is not clean after reset")
        slot.owner.unlink()
    except (OSError, pygit2.GitError, WorkspaceError):
        _remove_slot(slot.dir)
    finally:
        slot.lock.release()


@contextlib.asynccontextmanager
async def open_workspace(
    mirrors: MirrorCache,
    full_name: str,
    base: str,
    *,
    loop: str,
    number: int,
    keep_warm: int = 2,
    author_name: str = DEFAULT_AUTHOR_NAME,
    author_email: str = DEFAULT_AUTHOR_EMAIL,
) -> AsyncIterator[Workspace]:
    """A working copy of `full_name` at `base` (a sha or a ref of the mirror) on the branch
    `loopwright/<loop>-<number>`, for the duration of the `async with` block.

    The mirror must have been fetched. Concurrent jobs on one repository get separate slots.
    """
    owner, repo = check_repo_name(full_name)
    branch = branch_name(loop, number)
    mirror = mirrors.path_for(full_name)
    if not (mirror / "HEAD").exists():
        raise WorkspaceError(f"no mirror of {full_name}; call MirrorCache.fetch first")
    repo_dir = _workspaces_dir(mirrors.data_dir) / owner / repo
    async with mirrors.lock_for(full_name):
        slot, fresh = await asyncio.to_thread(_acquire_slot, repo_dir, branch)
    base_sha = ""
    try:
        how = "new" if fresh else "switch"
        base_sha = await asyncio.to_thread(_prepare_tree, slot.tree, mirror, base, branch, how)
        workspace = Workspace(
            root=slot.tree,
            full_name=full_name,
            remote_url=mirrors.url_for(full_name),
            branch=branch,
            base=base_sha,
            author_name=author_name,
            author_email=author_email,
        )
    except BaseException:
        await asyncio.to_thread(_remove_slot_and_unlock, slot)
        raise
    try:
        yield workspace
    finally:
        async with workspace._op_lock:
            await asyncio.shield(
                asyncio.to_thread(_release_slot, slot, mirror, base_sha, branch, keep_warm)
            )


def _remove_slot_and_unlock(slot: _Slot) -> None:
    try:
        _remove_slot(slot.dir)
    finally:
        slot.lock.release()


def sweep_stale(data_dir: Path) -> list[Path]:
    """Remove workspaces left by dead processes (call at start-up); returns what was removed.

    A slot is stale when it still has an owner marker but nobody holds its lock: the kernel
    drops a flock when its holder dies, so this also covers a pid reused by another process.
    """
    removed: list[Path] = []
    root = _workspaces_dir(data_dir)
    if not root.is_dir():
        return removed
    for owner_dir in root.iterdir():
        for repo_dir in owner_dir.iterdir() if owner_dir.is_dir() else ():
            for slot_dir in list(repo_dir.iterdir()):
                if slot_dir.name.startswith(".trash-"):
                    shutil.rmtree(slot_dir, ignore_errors=True)
                    continue
                marker = slot_dir / "owner"
                if not marker.exists():
                    continue
                try:
                    pid = int(json.loads(marker.read_text())["pid"])
                except (OSError, ValueError, KeyError, TypeError):
                    pid = -1
                lock = FileLock(slot_dir / "lock")
                if not lock.acquire(blocking=False):
                    continue
                try:
                    if pid > 0 and _pid_alive(pid):
                        # Alive yet not holding the lock: the pid was reused; still stale.
                        log.info("pid %d of %s is alive but holds no lock", pid, slot_dir)
                    _remove_slot(slot_dir)
                    removed.append(slot_dir)
                finally:
                    lock.release()
    return removed
