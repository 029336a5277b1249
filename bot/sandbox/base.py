"""What every part of the sandbox shares: where things appear inside the jail, the errors, the
limits, bound paths, results, and the unprivileged user commands run as."""

from __future__ import annotations

import json
import os
import pwd
import resource
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

SandboxMode = Literal["bwrap", "none"]

#: Where the workspace appears inside the jail. Fixed, so that paths recorded by an editable
#: install in a cached virtualenv stay valid for the next job's (differently located) workspace.
SANDBOX_WORKDIR = "/work"
#: Where a prepared virtualenv appears inside the jail (same reason: absolute paths in scripts).
SANDBOX_VENV = "/venv"
DEFAULT_OUTPUT_CAP = 1024 * 1024
BASE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
#: The jail's private tmpfs (not the host's /tmp).
SANDBOX_TMP = "/tmp"  # noqa: S108


class SandboxError(Exception):
    """Base class for sandbox failures that are not the command's own failure."""


class SandboxUnavailable(SandboxError):
    """Isolation was asked for but cannot be provided; the message says what to do."""


@dataclass(frozen=True)
class Limits:
    """Per-process rlimits; None leaves that limit as inherited."""

    cpu_seconds: int | None = 900
    address_space_bytes: int | None = 8 * 1024**3
    file_size_bytes: int | None = 1024**3
    open_files: int | None = 1024
    #: Counted per real uid across the whole host (all sandboxes sharing the user, plus bwrap's
    #: own processes), so it must leave room for concurrency.
    processes: int | None = 512

    def rlimits(self) -> list[tuple[int, int]]:
        pairs = (
            (resource.RLIMIT_CPU, self.cpu_seconds),
            (resource.RLIMIT_AS, self.address_space_bytes),
            (resource.RLIMIT_FSIZE, self.file_size_bytes),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_NPROC, self.processes),
        )
        return [(res, value) for res, value in pairs if value is not None]


@dataclass(frozen=True)
class Bind:
    """A host path made visible inside the jail. In mode "none" commands see the host path."""

    host: Path
    inside: str
    writable: bool = False


@dataclass(frozen=True)
class SandboxUser:
    name: str
    uid: int
    gid: int


@dataclass
class SandboxResult:
    command: list[str]
    exit_code: int
    duration_s: float
    output: str
    timed_out: bool = False
    truncated: bool = False
    bytes_cut: int = 0
    mode: SandboxMode = "bwrap"
    network: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def resolve_user(run_as: str | int | None) -> SandboxUser | None:
    """The user a sandboxed command runs as; None means "as ourselves"."""
    if run_as is None:
        return None
    try:
        entry = pwd.getpwuid(run_as) if isinstance(run_as, int) else pwd.getpwnam(run_as)
    except KeyError:
        raise SandboxUnavailable(f"sandbox user {run_as!r} does not exist") from None
    if entry.pw_uid == 0:
        raise SandboxUnavailable("the sandbox user must not be root: rlimits do not bind root")
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            f"cannot run as {entry.pw_name!r}: switching users needs root; "
            "as a non-root service, leave the sandbox user unset"
        )
    return SandboxUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def grant_workspace(workdir: Path, run_as: str | int | None) -> None:
    """Let the sandbox user write the workspace, except `.git`.

    Files keep their owner (so host-side git, which checks repository ownership, is not upset);
    the tree gets the sandbox user's group with group write, and directories the setgid bit so
    files created inside inherit that group.
    """
    user = resolve_user(run_as)
    if user is None:
        return
    for dirpath, dirnames, filenames in os.walk(workdir):
        if Path(dirpath) == workdir and ".git" in dirnames:
            dirnames.remove(".git")
        _grant_one(Path(dirpath), user.gid, is_dir=True)
        for name in filenames:
            _grant_one(Path(dirpath) / name, user.gid, is_dir=False)


def _grant_one(path: Path, gid: int, *, is_dir: bool) -> None:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return
    os.chown(path, -1, gid)
    mode = stat.S_IMODE(st.st_mode) | stat.S_IRGRP | stat.S_IWGRP
    if is_dir:
        mode |= stat.S_IXGRP | stat.S_ISGID
    elif st.st_mode & stat.S_IXUSR:
        mode |= stat.S_IXGRP
    os.chmod(path, mode)


def python_prefix() -> Path:
    """The host interpreter's installation, offered to repositories under test."""
    return Path(sys.base_prefix).resolve()


def sandbox_path(bind: Bind, mode: SandboxMode) -> str:
    """Where a bound path appears to commands in `mode`."""
    return bind.inside if mode == "bwrap" else str(bind.host)
