"""One job's working copy (`Workspace`): reading, searching and editing confined to the tree,
snapshots of what a sandboxed run changed, keep/revert, and the push policy (only `loopwright/*`,
never a change under `.github/workflows/`)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import pygit2
from pygit2.enums import CheckoutStrategy, DiffOption, SortMode

from bot.workspace.base import (
    AuthenticationError,
    ProtectedPathError,
    PushError,
    SearchTextNotFound,
    SearchTextNotUnique,
    TokenCallbacks,
    UnsafePathError,
    WorkspaceError,
    check_push_branch,
    scrub,
)

T = TypeVar("T")

PROTECTED_PREFIXES = (".github/workflows/",)
_BINARY_SNIFF = 8192
_MAX_LINE_CHARS = 500


@dataclass(frozen=True)
class SearchHit:
    path: str
    line: int
    text: str


def _glob_escape(path: str) -> str:
    """A literal path as a gitignore pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\!#" else c for c in path)


def _is_protected(path: str) -> bool:
    # Lower-cased so that a case-insensitive checkout elsewhere cannot smuggle a workflow in.
    lowered = path.lower()
    return any(lowered.startswith(prefix) for prefix in PROTECTED_PREFIXES)


#: How many files inside ignored directories a snapshot lists (a `.tox/` can hold 100k).
MAX_SNAPSHOT_FILES = 20_000


@dataclass(frozen=True)
class TreeSnapshot:
    #: path -> (git status flags, size, mtime in ns); -1 for a path that is gone.
    entries: dict[str, tuple[int, int, int]]


@dataclass
class TreeChanges:
    tracked: set[str] = field(default_factory=set)
    #: Untracked or ignored files that are new or changed...
    other: set[str] = field(default_factory=set)
    #: ...and those of them a commit would pick up (untracked, not ignored).
    untracked: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.tracked or self.other)


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        st = path.lstat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _is_link(dirpath: str, name: str) -> bool:
    return os.path.islink(os.path.join(dirpath, name))


class Workspace:
    """One job's working copy. Use `open_workspace`; every method is confined to `root`."""

    def __init__(
        self,
        *,
        root: Path,
        full_name: str,
        remote_url: str,
        branch: str,
        base: str,
        author_name: str,
        author_email: str,
    ) -> None:
        self.root = root
        self.full_name = full_name
        self.branch = branch
        self.base = base
        self.last_kept = base
        self._remote_url = remote_url
        self._author_name = author_name
        self._author_email = author_email
        self._repo = pygit2.Repository(str(root))
        self._real_root = root.resolve()
        # pygit2 objects are not meant for concurrent use; one operation at a time.
        self._op_lock = asyncio.Lock()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._op_lock:
            return await asyncio.to_thread(fn, *args)

    # -- paths ---------------------------------------------------------------------------------

    def _resolve(self, path: str) -> Path:
        """The real path of a workspace-relative `path`, or UnsafePathError."""
        if not path or "\x00" in path:
            raise UnsafePathError(f"invalid path {path!r}")
        pure = PurePosixPath(path)
        if pure.is_absolute() or path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
            raise UnsafePathError(f"absolute path {path!r} refused")
        if ".." in pure.parts:
            raise UnsafePathError(f"path {path!r} climbs out of the workspace")
        if pure.parts and pure.parts[0] == ".git":
            raise UnsafePathError(f"path {path!r} is inside .git")
        real = (self._real_root / pure).resolve()
        # resolve() follows every symlink on the way, so a link anywhere in the path that
        # points out of the tree (or into .git) lands here.
        if not real.is_relative_to(self._real_root):
            raise UnsafePathError(f"path {path!r} resolves outside the workspace")
        if real.is_relative_to(self._real_root / ".git"):
            raise UnsafePathError(f"path {path!r} resolves into .git")
        return real

    # -- reading -------------------------------------------------------------------------------

    async def list_files(self, glob: str | None = None) -> list[str]:
        """Tracked and new (untracked, not ignored) files, sorted; `glob` is matched against
        the whole relative path with fnmatch (so `*` also crosses `/`)."""
        return await self._run(self._list_files_sync, glob)

    def _list_files_sync(self, glob: str | None) -> list[str]:
        self._repo.index.read(force=False)
        names = {entry.path for entry in self._repo.index}
        for path, flags in self._repo.status(untracked_files="all").items():
            if flags & pygit2.enums.FileStatus.WT_NEW:
                names.add(path)
            if flags & pygit2.enums.FileStatus.WT_DELETED:
                names.discard(path)
        if glob is not None:
            names = {n for n in names if fnmatch.fnmatchcase(n, glob)}
        return sorted(names)

    async def read_file(self, path: str, start: int = 1, end: int | None = None) -> str:
        """Lines `start`..`end` (1-based, inclusive; `end=None` means to the end)."""
        return await self._run(self._read_file_sync, path, start, end)

    def _read_file_sync(self, path: str, start: int, end: int | None) -> str:
        real = self._resolve(path)
        if not real.is_file():
            raise WorkspaceError(f"{path!r} is not a file")
        lines = real.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        first = max(start, 1) - 1
        return "".join(lines[first:end])

    async def search(
        self, pattern: str, max_results: int = 100, glob: str | None = None
    ) -> list[SearchHit]:
        """Regex search over tracked text files, at most `max_results` hits."""
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise WorkspaceError(f"invalid search pattern: {exc}") from None
        return await self._run(self._search_sync, regex, max_results, glob)

    def _search_sync(
        self, regex: re.Pattern[str], max_results: int, glob: str | None
    ) -> list[SearchHit]:
        hits: list[SearchHit] = []
        for name in self._list_files_sync(glob):
            try:
                real = self._resolve(name)
                data = real.read_bytes()
            except (UnsafePathError, OSError):
                continue
            if b"\x00" in data[:_BINARY_SNIFF]:
                continue
            text = data.decode("utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), start=1):
                if regex.search(line):
                    hits.append(SearchHit(name, number, line[:_MAX_LINE_CHARS]))
                    if len(hits) >= max_results:
                        return hits
        return hits

    # -- writing -------------------------------------------------------------------------------

    async def edit(self, path: str, search: str, replace: str) -> None:
        """Replace the one exact occurrence of `search` in `path`."""
        await self._run(self._edit_sync, path, search, replace)

    def _edit_sync(self, path: str, search: str, replace: str) -> None:
        real = self._resolve(path)
        if not real.is_file():
            raise SearchTextNotFound(f"{path!r} does not exist")
        if not search:
            raise SearchTextNotFound("the search text is empty")
        text = real.read_text(encoding="utf-8")
        count = text.count(search)
        if count == 0:
            raise SearchTextNotFound(f"the search text does not occur in {path!r}")
        if count > 1:
            raise SearchTextNotUnique(f"the search text occurs {count} times in {path!r}")
        self._atomic_write(real, text.replace(search, replace, 1))

    async def write_file(self, path: str, content: str) -> None:
        """Create or overwrite a whole file (for new files such as a reproduction test)."""
        await self._run(self._write_file_sync, path, content)

    def _write_file_sync(self, path: str, content: str) -> None:
        real = self._resolve(path)
        real.parent.mkdir(parents=True, exist_ok=True)
        # mkdir may have created directories through links; check again before writing.
        self._resolve(path)
        self._atomic_write(real, content)

    @staticmethod
    def _atomic_write(real: Path, content: str) -> None:
        # Write-then-rename: never leaves a half-written file, and replaces a hard link
        # instead of writing through it.
        tmp = real.with_name(f".{real.name}.loopwright-{uuid.uuid4().hex[:8]}")
        mode = real.stat().st_mode & 0o7777 if real.exists() else 0o644
        try:
            with open(tmp, "x", encoding="utf-8", newline="") as handle:
                handle.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, real)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    async def exclude(self, paths: list[str]) -> None:
        """Have git treat `paths` as ignored in this working copy (`.git/info/exclude`): files
        the environment's setup wrote are neither committed nor removed by a revert."""
        if paths:
            await self._run(self._exclude_sync, paths)

    def _exclude_sync(self, paths: list[str]) -> None:
        info = Path(self._repo.path) / "info"
        info.mkdir(exist_ok=True)
        lines = "".join(f"/{_glob_escape(p)}\n" for p in paths)
        with open(info / "exclude", "a", encoding="utf-8") as fh:
            fh.write(lines)

    async def untracked(self) -> set[str]:
        """New files that are not ignored (what a commit would add)."""
        return await self._run(self._untracked_sync)

    def _untracked_sync(self) -> set[str]:
        return {
            path
            for path, flags in self._repo.status(untracked_files="all").items()
            if flags & pygit2.enums.FileStatus.WT_NEW
        }

    async def snapshot(self) -> TreeSnapshot:
        """Every path that is not as HEAD has it — tracked files changed or deleted, new files,
        ignored files (inside ignored directories too) — with a fingerprint, so that what a
        sandboxed run changed can be told afterwards (`changes_since`)."""
        return await self._run(self._snapshot_sync)

    def _snapshot_sync(self) -> TreeSnapshot:
        entries: dict[str, tuple[int, int, int]] = {}
        walked = 0
        for path, flags in self._repo.status(untracked_files="all", ignored=True).items():
            full = self._real_root / path
            if path.endswith("/") and flags & pygit2.enums.FileStatus.IGNORED:
                # An ignored directory comes as one entry: its files are listed one by one
                # (a `__pycache__/` is where a planted .pyc would hide), up to a cap.
                for dirpath, dirnames, filenames in os.walk(full):
                    dirnames.sort()
                    for name in sorted(filenames) + [d for d in dirnames if _is_link(dirpath, d)]:
                        walked += 1
                        if walked > MAX_SNAPSHOT_FILES:
                            break
                        rel = (Path(dirpath) / name).relative_to(self._real_root).as_posix()
                        entries[rel] = (int(flags), *_fingerprint(self._real_root / rel))
                continue
            entries[path] = (int(flags), *_fingerprint(full))
        return TreeSnapshot(entries)

    async def changes_since(self, before: TreeSnapshot) -> TreeChanges:
        """What changed in the tree since `before`: tracked files modified or deleted, and
        other (untracked or ignored) files that are new or changed."""
        after = await self.snapshot()
        tracked_bits = (
            pygit2.enums.FileStatus.WT_MODIFIED
            | pygit2.enums.FileStatus.WT_DELETED
            | pygit2.enums.FileStatus.WT_TYPECHANGE
            | pygit2.enums.FileStatus.WT_RENAMED
        )
        changed = TreeChanges()
        for path, entry in after.entries.items():
            if before.entries.get(path) == entry:
                continue
            if entry[0] & tracked_bits:
                changed.tracked.add(path)
            else:
                changed.other.add(path)
                if entry[0] & pygit2.enums.FileStatus.WT_NEW:
                    changed.untracked.add(path)
        for path, entry in before.entries.items():
            if path not in after.entries and entry[0] & int(tracked_bits):
                changed.tracked.add(path)  # was modified before, restored or rewritten now
        return changed

    async def restore_tracked(self, paths: set[str]) -> None:
        """Put tracked files back as HEAD has them (what a sandboxed run rewrote)."""
        if paths:
            await self._run(self._restore_tracked_sync, sorted(paths))

    def _restore_tracked_sync(self, paths: list[str]) -> None:
        head = self._repo.head.peel(pygit2.Commit)
        self._repo.checkout_tree(  # type: ignore[no-untyped-call]
            head, strategy=CheckoutStrategy.FORCE, paths=paths
        )

    async def remove_new(self, paths: set[str]) -> None:
        """Delete files and directories a run created (untracked or ignored alike)."""
        await self._run(self._remove_new_sync, paths)

    def _remove_new_sync(self, paths: set[str]) -> None:
        self._remove_files_sync(paths)
        for path in paths:
            with contextlib.suppress(UnsafePathError, OSError):
                real = self._resolve(path)
                if real.is_dir() and not real.is_symlink() and real != self._real_root:
                    shutil.rmtree(real)

    async def scrub(self) -> None:
        """The working tree exactly as HEAD has it: every untracked and ignored file removed
        and every tracked file restored (before a decisive run: nothing an earlier run wrote
        may be present). Put back what must stay (the environment's setup files) afterwards."""
        await self._run(self._scrub_sync)

    def _scrub_sync(self) -> None:
        head = self._repo.head.peel(pygit2.Commit)
        strategy = (
            CheckoutStrategy.FORCE
            | CheckoutStrategy.REMOVE_UNTRACKED
            | CheckoutStrategy.REMOVE_IGNORED
        )
        self._repo.checkout_tree(head, strategy=strategy)  # type: ignore[no-untyped-call]
        self._repo.index.read(force=True)

    async def remove_files(self, paths: set[str]) -> None:
        """Delete files (e.g. what a test run left behind); missing ones are skipped."""
        await self._run(self._remove_files_sync, paths)

    def _remove_files_sync(self, paths: set[str]) -> None:
        for path in paths:
            pure = PurePosixPath(path)
            # The directory is resolved (and confined); the entry itself is not followed, so a
            # symlink a test planted is removed rather than its target.
            parent = self._resolve(str(pure.parent)) if str(pure.parent) != "." else self._real_root
            entry = parent / pure.name
            if entry.is_symlink() or entry.is_file():
                entry.unlink()

    # -- history -------------------------------------------------------------------------------

    async def diff(self) -> str:
        """Unified diff of the working tree (committed or not, new files included) vs base."""
        return await self._run(self._diff_sync)

    def _diff_sync(self) -> str:
        base = self._repo[self.base].peel(pygit2.Commit)
        flags = (
            DiffOption.INCLUDE_UNTRACKED
            | DiffOption.RECURSE_UNTRACKED_DIRS
            | DiffOption.SHOW_UNTRACKED_CONTENT
        )
        return base.tree.diff_to_workdir(flags=flags).patch or ""

    async def changes_vs_base(self) -> dict[str, tuple[str | None, str | None]]:
        """The whole working tree against base — committed or not, new files included — as
        path -> (text on base or None, text now or None); binary files as "" (for screens that
        must see every change, not only the commits)."""
        return await self._run(self._changes_vs_base_sync)

    def _changes_vs_base_sync(self) -> dict[str, tuple[str | None, str | None]]:
        repo = self._repo
        base = repo[self.base].peel(pygit2.Commit)
        flags = DiffOption.INCLUDE_UNTRACKED | DiffOption.RECURSE_UNTRACKED_DIRS
        out: dict[str, tuple[str | None, str | None]] = {}
        for delta in base.tree.diff_to_workdir(flags=flags).deltas:
            old: str | None = None
            new: str | None = None
            if delta.old_file.id != pygit2.Oid(hex="0" * 40) and delta.status_char() != "A":
                with contextlib.suppress(KeyError, ValueError):
                    old = _text(repo[delta.old_file.id].read_raw())
            full = self._real_root / delta.new_file.path
            if delta.status_char() not in ("D",) and (full.is_file() or full.is_symlink()):
                new = (
                    f"symlink -> {os.readlink(full)}"
                    if full.is_symlink()
                    else _text(full.read_bytes())
                )
            out[delta.new_file.path or delta.old_file.path] = (old, new)
        return out

    async def commit(self, message: str) -> str | None:
        """Commit every change on the job branch; None when there is nothing to commit."""
        return await self._run(self._commit_sync, message)

    def _commit_sync(self, message: str) -> str | None:
        repo = self._repo
        index = repo.index
        index.read(force=False)
        index.add_all()
        index.write()
        tree_id = index.write_tree()
        head = repo.head.peel(pygit2.Commit)
        if tree_id == head.tree_id:
            return None
        signature = pygit2.Signature(self._author_name, self._author_email)
        oid = repo.create_commit(
            f"refs/heads/{self.branch}", signature, signature, message, tree_id, [head.id]
        )
        return str(oid)

    async def keep(self, message: str | None = None) -> str:
        """Mark the current state as kept (committing first when `message` is given)."""
        return await self._run(self._keep_sync, message)

    def _keep_sync(self, message: str | None) -> str:
        if message is not None:
            self._commit_sync(message)
        self.last_kept = str(self._repo.head.target)
        return self.last_kept

    async def restore(self, commit: str) -> str:
        """Make `commit` (one of this branch's attempts) the kept state and check it out."""
        self.last_kept = commit
        return await self.reset_to_last_kept()

    async def reset_to_last_kept(self) -> str:
        """Drop every commit and edit since the last kept state (the revert of keep/revert)."""
        return await self._run(self._reset_sync, self.last_kept, False)

    def _reset_sync(self, target: str, remove_ignored: bool) -> str:
        commit = self._repo[target].peel(pygit2.Commit)
        strategy = CheckoutStrategy.FORCE | CheckoutStrategy.REMOVE_UNTRACKED
        if remove_ignored:
            strategy |= CheckoutStrategy.REMOVE_IGNORED
        # Ignored files (a prepared .venv, caches) survive a revert: they are not the edit.
        self._repo.checkout_tree(commit, strategy=strategy)  # type: ignore[no-untyped-call]
        self._repo.references.create(f"refs/heads/{self.branch}", commit.id, force=True)
        self._repo.set_head(f"refs/heads/{self.branch}")
        self._repo.index.read(force=True)
        return target

    # -- push ----------------------------------------------------------------------------------

    def changed_paths(self) -> set[str]:
        """Every path touched by any commit between base and the branch head."""
        repo = self._repo
        head = repo.references[f"refs/heads/{self.branch}"].target
        walker = repo.walk(head, SortMode.TOPOLOGICAL)
        walker.hide(repo[self.base].peel(pygit2.Commit).id)
        paths: set[str] = set()
        for commit in walker:
            # Each commit on its own: a workflow added then removed still passes through the
            # remote, and GitHub checks every pushed commit, not only the tip.
            diffs = [repo.diff(parent, commit) for parent in commit.parents]
            if not diffs:
                diffs = [commit.tree.diff_to_tree(swap=True)]
            for diff in diffs:
                for delta in diff.deltas:
                    paths.add(delta.old_file.path)
                    paths.add(delta.new_file.path)
        return paths

    async def push(self, token: str, branch: str | None = None) -> str:
        """Push the job branch (or `branch`, which must also be under loopwright/) to the
        repository; force-updates it because reruns rebuild it from base. Returns the sha."""
        target = branch or self.branch
        check_push_branch(target)
        return await self._run(self._push_sync, token, target)

    def _push_sync(self, token: str, target: str) -> str:
        local = f"refs/heads/{self.branch}"
        touched = sorted(p for p in self.changed_paths() if _is_protected(p))
        if touched:
            raise ProtectedPathError(
                f"refusing to push: the commits change protected paths: {', '.join(touched)}"
            )
        sha = str(self._repo.references[local].target)
        remote = self._repo.remotes.create_anonymous(self._remote_url)
        callbacks = TokenCallbacks(token)
        try:
            remote.push([f"+{local}:refs/heads/{target}"], callbacks=callbacks)
        except AuthenticationError:
            raise AuthenticationError(
                f"pushing to {self._remote_url} failed: the server rejected the token"
            ) from None
        except (pygit2.GitError, OSError) as exc:
            raise PushError(
                f"pushing {target} to {self._remote_url} failed: {scrub(str(exc), token)}"
            ) from None
        if callbacks.rejected:
            reasons = "; ".join(f"{ref}: {msg}" for ref, msg in callbacks.rejected.items())
            raise PushError(f"the server rejected the push: {scrub(reasons, token)}")
        return sha
