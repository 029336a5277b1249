"""The mirror cache: one bare mirror per repository, fetched incrementally with an installation
token (held in memory only, by the credential callback), one fetch at a time across processes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import pygit2
from pygit2.enums import FetchPrune

from bot.flock import FileLock
from bot.workspace.base import (
    DEFAULT_REFSPECS,
    AuthenticationError,
    FetchError,
    TokenCallbacks,
    check_repo_name,
    harden_config,
    scrub,
)


class MirrorCache:
    """Bare mirrors of repositories, fetched incrementally with an installation token."""

    def __init__(
        self,
        data_dir: Path,
        *,
        git_base_url: str = "https://github.com",
        remote_urls: Mapping[str, str] | None = None,
    ) -> None:
        """`remote_urls` maps a repository name to a URL or path of its own (local mode
        clones a checkout on disk this way); every other name is under `git_base_url`."""
        self.data_dir = Path(data_dir)
        self.git_base_url = git_base_url.rstrip("/")
        self.remote_urls = dict(remote_urls or {})
        self._locks: dict[str, asyncio.Lock] = {}

    def path_for(self, full_name: str) -> Path:
        owner, repo = check_repo_name(full_name)
        return self.data_dir / "mirrors" / owner / f"{repo}.git"

    def url_for(self, full_name: str) -> str:
        owner, repo = check_repo_name(full_name)
        if full_name in self.remote_urls:
            return self.remote_urls[full_name]
        return f"{self.git_base_url}/{owner}/{repo}.git"

    def lock_for(self, full_name: str) -> asyncio.Lock:
        return self._locks.setdefault(full_name, asyncio.Lock())

    async def fetch(
        self, full_name: str, token: str, *, refspecs: tuple[str, ...] = DEFAULT_REFSPECS
    ) -> Path:
        """Create or update the mirror of `full_name`; returns its path.

        Extra refs (`+refs/pull/7/head:refs/pull/7/head`) can be asked for through `refspecs`.
        """
        path = self.path_for(full_name)
        url = self.url_for(full_name)
        async with self.lock_for(full_name):
            await asyncio.to_thread(self._fetch_sync, path, url, token, refspecs)
        return path

    @staticmethod
    def _fetch_sync(path: Path, url: str, token: str, refspecs: tuple[str, ...]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path.with_name(path.name + ".lock")).held():
            if (path / "HEAD").exists():
                repo = pygit2.Repository(str(path))
            else:
                repo = pygit2.init_repository(str(path), bare=True)
                harden_config(repo)
            # An anonymous remote keeps even the (token-free) URL out of the config.
            remote = repo.remotes.create_anonymous(url)
            callbacks = TokenCallbacks(token)
            try:
                remote.fetch(list(refspecs), callbacks=callbacks, prune=FetchPrune.PRUNE)
            except AuthenticationError:
                raise AuthenticationError(
                    f"fetching {url} failed: the server rejected the installation token"
                ) from None
            except (pygit2.GitError, OSError) as exc:
                if callbacks.asked > 1:
                    raise AuthenticationError(
                        f"fetching {url} failed: the server rejected the installation token"
                    ) from None
                raise FetchError(f"fetching {url} failed: {scrub(str(exc), token)}") from None
            _follow_remote_head(repo, remote)


def _follow_remote_head(repo: pygit2.Repository, remote: pygit2.Remote) -> None:
    """Point the mirror's HEAD at the server's default branch, so `base="HEAD"` works."""
    try:
        # The advertisement of the fetch just made; connect=False reuses it without traffic.
        heads = remote.list_heads(connect=False)
    except pygit2.GitError:
        return
    for head in heads:
        target = head.symref_target
        if head.name == "HEAD" and target and target.startswith("refs/heads/"):
            if target in repo.references:
                repo.set_head(target)
            return
