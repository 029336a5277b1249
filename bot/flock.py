"""One exclusive lock on a file across processes (`flock(2)`); the kernel drops it when the holder
dies, so a crashed job never leaves a lock behind.

Used for one mirror fetch per repository, one job per workspace slot, and one build per cached
environment. The caller creates the lock file's directory: a lock must not recreate a directory
another process has just removed (a deleted workspace slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path


class FileLock:
    """An exclusive flock on `path`, created (0600) when missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; with `blocking=False`, False at once when another holder has it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The lock for the `with` block, waiting for it (in a thread, not on an event loop)."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def held_async(self, poll_seconds: float = 0.2) -> AsyncIterator[None]:
        """The lock for the `async with` block, polled so the event loop is never blocked."""
        while not self.acquire(blocking=False):  # noqa: ASYNC110 - a flock has no event to await
            await asyncio.sleep(poll_seconds)
        try:
            yield
        finally:
            self.release()
