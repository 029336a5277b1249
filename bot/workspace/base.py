"""What the mirror cache, the working copy and the slot pool share: the errors, repository and
branch names, the token callback, the hardened git config."""

from __future__ import annotations

import os
import re

import pygit2

BRANCH_PREFIX = "loopwright/"
DEFAULT_AUTHOR_NAME = "loopwright[bot]"
DEFAULT_AUTHOR_EMAIL = "loopwright[bot]@users.noreply.github.com"
DEFAULT_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_BRANCH_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


class WorkspaceError(Exception):
    """Base of every error this module raises on purpose."""


class FetchError(WorkspaceError):
    """Fetching into the mirror failed (network, missing repository, server error)."""


class AuthenticationError(FetchError):
    """The server rejected the installation token."""


class UnsafePathError(WorkspaceError):
    """A path points outside the workspace (`..`, absolute, symlink out) or into `.git`."""


class EditError(WorkspaceError):
    """An exact search/replace edit could not be applied."""


class SearchTextNotFound(EditError):
    pass


class SearchTextNotUnique(EditError):
    pass


class PushRefused(WorkspaceError):
    """A push that policy forbids; refused before any network traffic."""


class ProtectedBranchError(PushRefused):
    pass


class ProtectedPathError(PushRefused):
    pass


class PushError(WorkspaceError):
    """The server or the network failed the push."""


def check_repo_name(full_name: str) -> tuple[str, str]:
    # The name becomes a path on disk; refuse anything that could climb out of the data dir.
    owner, sep, repo = full_name.partition("/")
    for part in (owner, repo):
        if not sep or not _NAME_RE.match(part) or part in (".", ".."):
            raise WorkspaceError(f"invalid repository name {full_name!r}")
    return owner, repo


def branch_name(loop: str, number: int) -> str:
    """The deterministic branch of one (loop, issue/PR number)."""
    if not _BRANCH_PART_RE.match(loop) or loop.startswith(".") or ".." in loop:
        raise WorkspaceError(f"invalid loop name {loop!r}")
    return f"{BRANCH_PREFIX}{loop}-{int(number)}"


def check_push_branch(branch: str) -> None:
    if not branch.startswith(BRANCH_PREFIX):
        raise ProtectedBranchError(f"refusing to push {branch!r}: only {BRANCH_PREFIX}* is allowed")
    rest = branch[len(BRANCH_PREFIX) :]
    parts = rest.split("/")
    if not rest or any(not _BRANCH_PART_RE.match(p) or p.startswith(".") for p in parts):
        raise ProtectedBranchError(f"refusing to push {branch!r}: not a plain branch name")
    if ".." in rest or rest.endswith(".lock"):
        raise ProtectedBranchError(f"refusing to push {branch!r}: not a plain branch name")


class TokenCallbacks(pygit2.RemoteCallbacks):
    """Hands the token to libgit2 once; a second request means the server rejected it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token
        self.asked = 0
        self.rejected: dict[str, str] = {}

    def credentials(
        self,
        url: str,
        username_from_url: str | None,
        allowed_types: pygit2.enums.CredentialType,
    ) -> pygit2.UserPass:
        self.asked += 1
        if self.asked > 1:
            # Without this libgit2 would retry the same rejected token several times.
            raise AuthenticationError("the server rejected the installation token")
        return pygit2.UserPass("x-access-token", self._token)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected[refname] = message


def harden_config(repo: pygit2.Repository) -> None:
    # pygit2 runs no hooks and no fsmonitor, but other git tools may touch this repository
    # (a human debugging, or a test suite calling git in the sandbox), so switch both off.
    config = repo.config
    config["core.hooksPath"] = os.devnull
    config["core.fsmonitor"] = False
    config["gc.auto"] = 0
    config["maintenance.auto"] = False


def scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
