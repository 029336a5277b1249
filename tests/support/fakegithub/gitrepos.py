"""Git-backed repositories: bare repos under `git_root`, seeded commits, refs, diffs; the git
plumbing the fake runs (with the developer's own git config kept out)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.support.fakegithub.state import FakeRepo


def _made_up_sha(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


def _git_run(
    git_dir: Path,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    # Keep the developer's own git config (signing, hooks paths, templates) out of the fake.
    full_env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        **(env or {}),
    }
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        input=stdin,
        env=full_env,
        capture_output=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode().strip()}")
    return proc


def _git(
    git_dir: Path,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    return _git_run(git_dir, *args, stdin=stdin, env=env).stdout.decode().strip()


class GitRepos:
    """FakeGitHub's git-backed repositories (a mixin of FakeGitHub)."""

    # ----------------------------------------------------------------------------- git

    def git_path(self, full_name: str) -> Path:
        """The bare repository behind a git-backed repo."""
        git_dir = self.repo(full_name).git_dir
        if git_dir is None:
            raise ValueError(f"{full_name} is not git-backed (add_repo(..., git=True))")
        return git_dir

    def seed_git(
        self,
        full_name: str,
        files: Mapping[str, str | bytes | None],
        message: str = "init",
        branch: str | None = None,
    ) -> str:
        """Commit `files` (path -> content; None deletes) on top of `branch` (default: the
        default branch; a new branch starts from the default branch's tip).  Returns the sha.

        Plumbing on a throwaway index, so no work tree and no hooks are involved."""
        repo = self.repo(full_name)
        git_dir = self.git_path(full_name)
        branch = branch or repo.default_branch
        old = self.branch_sha(full_name, branch)
        parent = old or self.branch_sha(full_name, repo.default_branch)
        with tempfile.TemporaryDirectory(prefix="fakegithub-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent is not None:
                _git(git_dir, "read-tree", parent, env=env)
            for path, content in files.items():
                path = path.strip("/")
                if content is None:
                    _git(git_dir, "update-index", "--force-remove", "--", path, env=env)
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = _git(git_dir, "hash-object", "-w", "--stdin", stdin=data)
                cacheinfo = f"100644,{blob},{path}"
                _git(git_dir, "update-index", "--add", "--cacheinfo", cacheinfo, env=env)
            tree = _git(git_dir, "write-tree", env=env)
        parents = ["-p", parent] if parent is not None else []
        commit = _git(
            git_dir,
            "-c",
            "user.name=FakeGitHub Seed",
            "-c",
            "user.email=seed@fakegithub.invalid",
            "commit-tree",
            tree,
            *parents,
            "-m",
            message,
        )
        # The old value makes this a compare-and-swap, like a push without --force.
        _git(git_dir, "update-ref", f"refs/heads/{branch}", commit, old or "0" * 40)
        return commit

    def branch_sha(self, full_name: str, branch: str) -> str | None:
        """The tip of `branch` now, or None if it does not exist."""
        repo = self.repo(full_name)
        if repo.git_dir is None:
            return repo.branches.get(branch)
        return self._resolve_commit(repo, f"refs/heads/{branch}")

    def read_git_file(self, full_name: str, ref: str, path: str) -> str | None:
        """A file's text at `ref` (branch, tag or sha) in the bare repo, or None if absent."""
        git_dir = self.git_path(full_name)
        proc = _git_run(git_dir, "cat-file", "blob", f"{ref}:{path.strip('/')}", check=False)
        return proc.stdout.decode() if proc.returncode == 0 else None

    def _resolve_commit(self, repo: FakeRepo, ref: str) -> str | None:
        if repo.git_dir is None or ref.startswith("-"):
            return None
        proc = _git_run(
            repo.git_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def _ref_for_contents(self, repo: FakeRepo, ref: str) -> str | None:
        # GitHub resolves `ref` as a branch, tag or commit sha; try the branch namespace first so
        # a branch named like a sha prefix still wins, as it does there.
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            sha = self._resolve_commit(repo, candidate)
            if sha is not None:
                return sha
        return None

    def _has_commits_between(self, repo: FakeRepo, base_sha: str, head_sha: str) -> bool:
        if repo.git_dir is None:
            return head_sha != base_sha
        # head already contained in base = nothing to merge, whatever the branch names are.
        proc = _git_run(
            repo.git_dir, "merge-base", "--is-ancestor", head_sha, base_sha, check=False
        )
        return proc.returncode != 0

    def _diff_stats(self, repo: FakeRepo, base_sha: str, head_sha: str) -> dict[str, int]:
        if repo.git_dir is None:
            return {"commits": 1, "additions": 0, "deletions": 0, "changed_files": 0}
        commits = int(_git(repo.git_dir, "rev-list", "--count", f"{base_sha}..{head_sha}"))
        additions = deletions = changed = 0
        # Three dots: changes on head since it forked, which is what a PR's "Files" tab shows.
        for line in _git(
            repo.git_dir, "diff", "--numstat", f"{base_sha}...{head_sha}"
        ).splitlines():
            added, removed, _ = line.split("\t", 2)
            changed += 1
            # Binary files show "-" for both counts.
            additions += int(added) if added.isdigit() else 0
            deletions += int(removed) if removed.isdigit() else 0
        return {
            "commits": commits,
            "additions": additions,
            "deletions": deletions,
            "changed_files": changed,
        }
