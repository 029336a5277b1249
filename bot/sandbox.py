"""Run untrusted repository code: bubblewrap jail, rlimits, wall-clock kill, capped output.

Every command that executes code from a repository under test (its setup, its tests, a CI
command being repaired) goes through `run_sandboxed`. See docs/sandbox.md for the threat model;
the short version:

* no network (unless the caller asks, which only the dependency *setup* phase does),
* a cleared environment - the bwrap process itself is started with a minimal environment too,
  because bwrap's own process is pid 1 inside and its environment is readable as /proc/1/environ,
* system directories read-only, the workspace read-write at `/work`, its `.git` read-only,
  a private `/tmp`,
* rlimits (CPU seconds, address space, file size, open files, processes),
* a wall-clock timeout that kills the whole process tree, also when the caller is cancelled or
  dies (`--die-with-parent` plus a pid namespace),
* when loopwright runs as root, the command runs as an unprivileged user (`run_as`), because
  RLIMIT_NPROC does not bind uid 0.

Two ways to launch bubblewrap, chosen by who we are:

* not root: plain unprivileged bubblewrap (user namespace), command runs as ourselves;
* root with `run_as`: bubblewrap runs as root (so it can bind paths under /root, such as a pyenv
  interpreter or the data directory, that the sandbox user cannot traverse), keeps only
  CAP_SETUID/CAP_SETGID for the first process, which is `setpriv` switching to the sandbox user
  with an empty capability bounding set before exec'ing the command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import time
import tomllib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from configparser import ConfigParser
from configparser import Error as ConfigParserError
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec

from bot import metrics as mx
from bot.text import redact, redact_data

log = logging.getLogger(__name__)

SandboxMode = Literal["bwrap", "none"]

#: Where the workspace appears inside the jail. Fixed, so that paths recorded by an editable
#: install in a cached virtualenv stay valid for the next job's (differently located) workspace.
SANDBOX_WORKDIR = "/work"
#: Where a prepared virtualenv appears inside the jail (same reason: absolute paths in scripts).
SANDBOX_VENV = "/venv"
DEFAULT_BWRAP = "bwrap"
DEFAULT_OUTPUT_CAP = 1024 * 1024
BASE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
#: The jail's private tmpfs (not the host's /tmp).
SANDBOX_TMP = "/tmp"  # noqa: S108

INSTALL_HINT = (
    "bubblewrap is required to run repository code safely: install it with "
    "`apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`; "
    "for local development only, LOOPWRIGHT_SANDBOX=none runs commands without isolation"
)

#: The parts of /etc that ordinary programs need; everything else (app configs, pip.conf with
#: index credentials, gitconfig, ssh keys) stays out.
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "crypto-policies",
    "debian_version",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
)
#: Top-level system directories bound read-only (or recreated as symlinks on merged-/usr systems).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class SandboxError(Exception):
    """Base class for sandbox failures that are not the command's own failure."""


class SandboxUnavailable(SandboxError):
    """Isolation was asked for but cannot be provided; the message says what to do."""


class EnvironmentSetupFailed(SandboxError):
    """A dependency setup command failed; `result` holds its output."""

    def __init__(self, message: str, result: SandboxResult) -> None:
        super().__init__(message)
        self.result = result


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


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


def _chown_tree_to(path: Path, user: SandboxUser | None) -> None:
    if user is None:
        return
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, user.uid, user.gid)
        for name in filenames:
            os.lchown(Path(dirpath) / name, user.uid, user.gid)


def python_prefix() -> Path:
    """The host interpreter's installation, offered to repositories under test."""
    return Path(sys.base_prefix).resolve()


def _minimal_path(path_prepend: Sequence[str], mode: SandboxMode) -> str:
    parts = list(path_prepend)
    py_bin = str(python_prefix() / "bin")
    if py_bin not in BASE_PATH:
        parts.append(py_bin)
    parts.extend(BASE_PATH)
    return ":".join(parts)


def sandbox_workdir(workdir: Path, mode: SandboxMode) -> str:
    """The workspace path as commands see it."""
    return SANDBOX_WORKDIR if mode == "bwrap" else str(workdir)


def sandbox_path(bind: Bind, mode: SandboxMode) -> str:
    """Where a bound path appears to commands in `mode`."""
    return bind.inside if mode == "bwrap" else str(bind.host)


class _CappedOutput:
    """Keeps the first and last `cap // 2` bytes of a stream and counts what falls between."""

    def __init__(self, cap: int) -> None:
        self.head_cap = cap // 2
        self.tail_cap = cap - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.cut:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        marker = f"\n… [loopwright: {self.cut} bytes cut] …\n"
        return (
            bytes(self.head).decode("utf-8", "replace")
            + marker
            + bytes(self.tail).decode("utf-8", "replace")
        )


def _bwrap_argv(
    bwrap: str,
    cmd: Sequence[str],
    *,
    workdir: Path,
    network: bool,
    binds: Sequence[Bind],
    env: Mapping[str, str],
    user: SandboxUser | None,
) -> list[str]:
    argv = [bwrap]
    if user is None:
        # Unprivileged: bubblewrap needs a user namespace; forbid nesting another one inside.
        argv += ["--unshare-all", "--unshare-user", "--disable-userns"]
        if network:
            argv.append("--share-net")
    else:
        # As root a user namespace would map the sandbox to host root, where RLIMIT_NPROC does
        # not apply; so no user namespace, and setpriv drops to the sandbox user below.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if not network:
            argv.append("--unshare-net")
    argv += ["--hostname", "loopwright-sandbox", "--die-with-parent", "--new-session"]
    argv.append("--clearenv")
    for key, value in env.items():
        argv += ["--setenv", key, value]

    made: set[str] = set()

    def mkdirs(dest: str) -> None:
        # Directories bubblewrap creates implicitly are 0700 when it runs as root, which would
        # hide e.g. /root/.pyenv from the sandbox user; create every ancestor 0755 explicitly.
        parent = str(Path(dest).parent)
        chain: list[str] = []
        while parent not in ("/", "") and parent not in made:
            chain.append(parent)
            parent = str(Path(parent).parent)
        for d in reversed(chain):
            argv.extend(["--perms", "0755", "--dir", d])
            made.add(d)

    for sysdir in SYSTEM_DIRS:
        p = Path(sysdir)
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), sysdir]
        elif p.is_dir():
            argv += ["--ro-bind", sysdir, sysdir]
    mkdirs("/etc/x")
    for entry in ETC_ENTRIES:
        argv += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    for name in os.listdir("/etc"):
        if re.fullmatch(r"python3(\.\d+)?", name):
            argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]

    prefix = python_prefix()
    if not any(prefix.is_relative_to(d) for d in SYSTEM_DIRS if Path(d).is_dir()):
        mkdirs(str(prefix))
        argv += ["--ro-bind", str(prefix), str(prefix)]

    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", SANDBOX_TMP]
    # /tmp is a tmpfs owned by whoever runs bwrap; make it usable for the dropped user.
    argv += ["--chmod", "1777", SANDBOX_TMP]

    argv += ["--bind", str(workdir), SANDBOX_WORKDIR]
    git = workdir / ".git"
    if git.exists() or git.is_symlink():
        # Re-bound read-only on top: hooks, config and refs must not be writable from inside,
        # since git commands on the host later read them.
        argv += ["--ro-bind", str(git), f"{SANDBOX_WORKDIR}/.git"]
    for bind in binds:
        mkdirs(bind.inside)
        argv += ["--bind" if bind.writable else "--ro-bind", str(bind.host), bind.inside]
    argv += ["--chdir", SANDBOX_WORKDIR]

    if user is not None:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        argv += [
            _setpriv(),
            f"--reuid={user.uid}",
            f"--regid={user.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]
    argv.append("--")
    argv.extend(_watchdog_wrap(cmd))
    return argv


def _watchdog_wrap(cmd: Sequence[str]) -> list[str]:
    """Run `cmd` next to a watchdog that kills everything in the jail when we go away.

    `--die-with-parent` leaves a window: if loopwright dies while bubblewrap is still setting up,
    bubblewrap's inner init can be orphaned and run the command with no timeout (seen in
    testing). The watchdog reads its stdin, a pipe whose write end only this process holds; EOF
    (our death, or `run_sandboxed` finishing, timing out or being cancelled) means
    `kill -KILL -1`, which inside the pid namespace reaches every process of the sandbox. The
    pipe goes through stdin because dash cannot redirect descriptors above 9; the command
    itself gets /dev/null as stdin and no copy of the pipe.
    """
    script = 'exec 3<&0 </dev/null; (read _ <&3; kill -KILL -1) & exec "$@" 3<&-'
    return ["/bin/sh", "-c", script, "loopwright-watchdog", *cmd]


def _setpriv() -> str:
    found = shutil.which("setpriv", path=":".join(BASE_PATH))
    if found is None:
        raise SandboxUnavailable(
            "setpriv (util-linux) is needed to drop to the sandbox user: "
            "`apt-get install util-linux`"
        )
    return found


def _find_bwrap(bwrap_path: str | os.PathLike[str] | None) -> str:
    candidate = str(bwrap_path) if bwrap_path is not None else DEFAULT_BWRAP
    found = shutil.which(candidate) if os.sep not in candidate else candidate
    if found is None or not os.access(found, os.X_OK):
        raise SandboxUnavailable(f"{candidate} not found. {INSTALL_HINT}")
    return found


def _make_preexec(limits: Limits) -> Callable[[], None]:
    pairs = limits.rlimits()

    def apply() -> None:
        # Runs in the forked child before exec: only plain C-level calls, no logging or locks.
        for res, value in pairs:
            resource.setrlimit(res, (value, value))

    return apply


def _close_fds(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


_P = ParamSpec("_P")


def _counted(
    fn: Callable[_P, Awaitable[SandboxResult]],
) -> Callable[_P, Coroutine[Any, Any, SandboxResult]]:
    """Count each sandboxed command by result (`loopwright_sandbox_runs_total`), when a
    served app's metrics are current."""

    @functools.wraps(fn)
    async def counted(*args: _P.args, **kwargs: _P.kwargs) -> SandboxResult:
        started = time.monotonic()
        try:
            result = await fn(*args, **kwargs)
        except SandboxUnavailable:
            mx.observe_sandbox("unavailable", time.monotonic() - started)
            raise
        outcome = "timeout" if result.timed_out else "ok" if result.exit_code == 0 else "failed"
        mx.observe_sandbox(outcome, result.duration_s)
        return result

    return counted


@_counted
async def run_sandboxed(
    cmd: Sequence[str],
    *,
    workdir: Path,
    timeout: float,  # noqa: ASYNC109 - a wall clock that kills the tree and is reported
    network: bool = False,
    limits: Limits | None = None,
    output_cap: int = DEFAULT_OUTPUT_CAP,
    binds: Iterable[Bind] = (),
    env_extra: Mapping[str, str] | None = None,
    path_prepend: Sequence[str] = (),
    mode: SandboxMode = "bwrap",
    run_as: str | int | None = None,
    bwrap_path: str | os.PathLike[str] | None = None,
    pass_fds: Sequence[int] = (),
) -> SandboxResult:
    """Run `cmd` in `workdir` under the sandbox and return its (capped) combined output.

    `pass_fds` are descriptors the command inherits (loopwright's report channel); they are
    handed over: closed here once the command has started.

    The command sees the workspace at `/work` (mode "bwrap") or at its real path (mode "none").
    It never raises for the command's own failure; it raises `SandboxUnavailable` when the
    requested isolation cannot be provided.
    """
    if not cmd:
        raise ValueError("empty command")
    workdir = Path(workdir).resolve()  # noqa: ASYNC240 - local metadata only
    if not workdir.is_dir():
        raise ValueError(f"workdir {workdir} is not a directory")
    limits = limits or Limits()
    user = resolve_user(run_as)
    bind_list = list(binds)
    env = {
        "PATH": _minimal_path(path_prepend, mode),
        "HOME": SANDBOX_TMP,
        "TMPDIR": SANDBOX_TMP,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    for key, value in (env_extra or {}).items():
        if key.upper().startswith("LOOPWRIGHT_"):
            # Settings never cross the boundary, whatever a caller passes.
            raise ValueError(f"refusing to pass {key} into the sandbox")
        env[key] = value

    scratch: str | None = None
    if mode == "bwrap":
        bwrap = _find_bwrap(bwrap_path)
        if user is None and os.geteuid() == 0:
            raise SandboxUnavailable(
                "loopwright runs as root, and rlimits do not bind root: configure an "
                "unprivileged sandbox user (run_as)"
            )
        watch_read, watch_write = os.pipe2(os.O_CLOEXEC)
        stdin: int = watch_read
        argv = _bwrap_argv(
            bwrap,
            cmd,
            workdir=workdir,
            network=network,
            binds=bind_list,
            env=env,
            user=user,
        )
        cwd = "/"
        user_kwargs: dict[str, Any] = {}
        # bwrap's own process keeps the environment it starts with (readable inside as
        # /proc/1/environ), so it gets the same minimal environment, not ours.
        launch_env = dict(env)
    else:
        log.warning(
            "LOOPWRIGHT_SANDBOX=none: running %s WITHOUT isolation (no namespaces, network "
            "and the host filesystem are reachable); for local development only",
            cmd[0],
        )
        if user is None and os.geteuid() == 0:
            log.warning("sandbox mode none as root: process limits do not apply")
        watch_read = watch_write = -1
        stdin = asyncio.subprocess.DEVNULL
        scratch = tempfile.mkdtemp(prefix="loopwright-none-")
        if user is not None:
            os.chown(scratch, user.uid, user.gid)
        env["HOME"] = env["TMPDIR"] = scratch
        argv = list(cmd)
        cwd = str(workdir)
        user_kwargs = (
            {}
            if user is None
            else {
                "user": user.uid,
                "group": user.gid,
                "extra_groups": [],
            }
        )
        launch_env = env

    started = time.monotonic()
    buffer = _CappedOutput(max(output_cap, 2))
    timed_out = False
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env=launch_env,
            start_new_session=True,
            preexec_fn=_make_preexec(limits),
            pass_fds=tuple(pass_fds),
            **user_kwargs,
        )
    except FileNotFoundError as exc:
        _close_fds(watch_read, watch_write, *pass_fds)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        if mode == "bwrap":
            raise SandboxUnavailable(f"{exc.filename} not found. {INSTALL_HINT}") from None
        return SandboxResult(
            list(cmd), 127, time.monotonic() - started, f"{exc}\n", mode=mode, network=network
        )

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            buffer.feed(chunk)

    # Only the child needs the read end; the write end stays here until the run is over.
    _close_fds(watch_read, *pass_fds)
    watch_open = [watch_write]

    def release_watchdog() -> None:
        # Closed exactly once: a second close could hit an unrelated, reused descriptor.
        if watch_open[0] >= 0:
            _close_fds(watch_open[0])
            watch_open[0] = -1

    reader = asyncio.create_task(pump())
    done = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            release_watchdog()
            _kill_group(proc.pid)
            await proc.wait()
        # Background children still in the group would hold the pipe open (mode "none"; under
        # bwrap the pid namespace is already gone with its init).
        _kill_group(proc.pid)
        try:
            await asyncio.wait_for(asyncio.shield(reader), 5)
        except TimeoutError:
            reader.cancel()
        done = True
    finally:
        release_watchdog()
        if not done:
            # Cancelled (or failed) while the command ran: it must not outlive us.
            _kill_group(proc.pid)
            reader.cancel()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                await asyncio.shield(proc.wait())
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    exit_code = proc.returncode if proc.returncode is not None else -1
    return SandboxResult(
        command=list(cmd),
        exit_code=exit_code,
        duration_s=time.monotonic() - started,
        output=buffer.text(),
        timed_out=timed_out,
        truncated=buffer.cut > 0,
        bytes_cut=buffer.cut,
        mode=mode,
        network=network,
    )


# --- dependency environments -------------------------------------------------------------

DEPENDENCY_GLOBS = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "requirements*.txt",
    "requirements/*.txt",
    # What the default setup also reads (test requirements, tox deps, pytest plugins).
    "*-requirements.txt",
    "*_requirements.txt",
    "tox.ini",
    "pytest.ini",
)
_READY_MARKER = ".loopwright-env.json"


@dataclass
class EnvInfo:
    """A prepared virtualenv for one repository state, and how to use it in the test phase."""

    venv_host: Path
    venv_inside: str
    key: str
    cache_hit: bool
    mode: SandboxMode
    setup_results: list[SandboxResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def binds(self) -> list[Bind]:
        # Read-only in the test phase: tests must not be able to poison the next job's venv.
        return [Bind(self.venv_host, SANDBOX_VENV)] if self.mode == "bwrap" else []

    @property
    def path_prepend(self) -> list[str]:
        return [f"{self.venv_inside}/bin"]

    @property
    def env(self) -> dict[str, str]:
        # No .pyc files: the tests must not leave artifacts a later commit could pick up.
        return {"VIRTUAL_ENV": self.venv_inside, "PYTHONDONTWRITEBYTECODE": "1"}


def dependency_files(workdir: Path) -> list[Path]:
    found: set[Path] = set()
    for pattern in DEPENDENCY_GLOBS:
        found.update(p for p in workdir.glob(pattern) if p.is_file() and not p.is_symlink())
    return sorted(found)


def _extras_declared(workdir: Path) -> set[str]:
    extras: set[str] = set()
    pyproject = workdir / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            extras.update(data.get("project", {}).get("optional-dependencies", {}) or {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
            pass
    setup_cfg = workdir / "setup.cfg"
    if setup_cfg.is_file():
        parser = ConfigParser()
        try:
            parser.read_string(setup_cfg.read_text(encoding="utf-8"))
            if parser.has_section("options.extras_require"):
                extras.update(parser.options("options.extras_require"))
        except (ConfigParserError, UnicodeDecodeError):
            pass
    return extras


#: Extra-name / dependency-group preference, shared by the extras, PEP 735 and poetry lookups.
_TEST_GROUPS = ("test", "tests", "testing", "dev")

#: Top-level test/dev requirement files, in the order they are installed.
_TEST_REQUIREMENT_FILES = (
    "requirements-dev.txt",
    "requirements_dev.txt",
    "dev-requirements.txt",
    "test-requirements.txt",
    "test_requirements.txt",
    "requirements-test.txt",
    "requirements_test.txt",
    "requirements-tests.txt",
)
_TEST_REQUIREMENT_GLOBS = ("requirements/test*.txt", "requirements/dev*.txt")

#: A repository file bigger than this is not a config file worth parsing on the host.
_MAX_CONFIG_BYTES = 1 << 20

#: addopts flags that fail pytest's argument parsing unless their plugin is installed.
_ADDOPTS_PLUGINS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"--(no-)?cov([-_][\w-]*)?(=.*)?"), "pytest-cov"),
    (re.compile(r"-n(\d+|auto|logical)?|--numprocesses(=.*)?|--dist(=.*)?"), "pytest-xdist"),
    (re.compile(r"--timeout([-_][\w-]*)?(=.*)?"), "pytest-timeout"),
    (re.compile(r"--benchmark([-_][\w-]*)?(=.*)?"), "pytest-benchmark"),
    (re.compile(r"--(reruns|only-rerun)([-_][\w-]*)?(=.*)?"), "pytest-rerunfailures"),
)

_REQ_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
#: tox factor-conditional deps ("py311: x", "!cov,lint: y") apply to some environments only.
_TOX_FACTOR = re.compile(r"[A-Za-z0-9_.,!-]+:(?!//)")
_TOX_REQ_OPTION = re.compile(r"(-r|-c|--requirement|--constraint)(?:\s*=\s*|\s*)(\S+)")


def _normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _config_text(workdir: Path, name: str) -> str | None:
    # Parsed on the host, so a symlink or a huge file in the repository must not make us read
    # something outside it (or spend memory on it).
    path = workdir / name
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_CONFIG_BYTES:
            return None
        if not path.resolve().is_relative_to(workdir.resolve()):
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, RuntimeError, UnicodeDecodeError):
        return None


def _load_toml(workdir: Path, name: str) -> dict[str, Any]:
    text = _config_text(workdir, name)
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return {}


def _load_ini(workdir: Path, name: str) -> ConfigParser | None:
    text = _config_text(workdir, name)
    if text is None:
        return None
    # No interpolation: "%" is common in addopts and deps and would raise on access.
    parser = ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except ConfigParserError:
        return None
    return parser


def _ini_value(parser: ConfigParser | None, section: str, option: str) -> str | None:
    if parser is None or not parser.has_option(section, option):
        return None
    try:
        return parser.get(section, option)
    except ConfigParserError:
        return None


def _table(data: object, *keys: str) -> dict[str, Any]:
    for key in keys:
        if not isinstance(data, dict):
            return {}
        data = data.get(key)
    return data if isinstance(data, dict) else {}


def _requirement_file(workdir: Path, rel: str) -> str | None:
    """`rel` as a workspace-relative posix path if it names a regular file inside `workdir`."""
    path = workdir / rel
    try:
        if path.is_symlink() or not path.is_file():
            return None
        resolved, root = path.resolve(), workdir.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None
    if not resolved.is_relative_to(root):
        return None
    return resolved.relative_to(root).as_posix()


def _is_requirement(req: str) -> bool:
    # Requirement strings become pip arguments: one starting with "-" would be an option.
    return bool(req) and "\n" not in req and _REQ_NAME.match(req) is not None


def _test_requirement_files(workdir: Path) -> list[str]:
    found: list[str] = []
    for name in _TEST_REQUIREMENT_FILES:
        rel = _requirement_file(workdir, name)
        if rel is not None:
            found.append(rel)
    for pattern in _TEST_REQUIREMENT_GLOBS:
        for path in sorted(workdir.glob(pattern)):
            rel = _requirement_file(workdir, path.relative_to(workdir).as_posix())
            if rel is not None:
                found.append(rel)
    return found


def _tox_deps(workdir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(`-r`/`-c`, file) pairs and requirement strings from tox.ini `[testenv] deps`."""
    raw = _ini_value(_load_ini(workdir, "tox.ini"), "testenv", "deps")
    if raw is None:
        return [], []
    files: list[tuple[str, str]] = []
    reqs: list[str] = []
    for line in re.sub(r"\\\s*\n", " ", raw).splitlines():
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        if not line or "{" in line or _TOX_FACTOR.match(line):
            continue
        option = _TOX_REQ_OPTION.fullmatch(line)
        if option is not None:
            rel = _requirement_file(workdir, option.group(2))
            if rel is not None:
                # A constraints file stays a constraint: installing every pin it lists as a
                # requirement would pull in packages the tests never asked for.
                files.append(("-c" if option.group(1) in ("-c", "--constraint") else "-r", rel))
            continue
        if line.startswith(".") or not _is_requirement(line):
            continue  # the project itself (".", ".[x]") is installed already; options skipped
        reqs.append(line)
    return files, reqs


def _dependency_group(pyproject: dict[str, Any]) -> list[str]:
    """PEP 735: the first test-like group, with `{include-group = ...}` flattened."""
    # Reversed so that, of two names that normalise alike (invalid per PEP 735), the first wins.
    groups = {
        _normalize_name(name): value
        for name, value in reversed(list(_table(pyproject, "dependency-groups").items()))
    }

    def flatten(name: str, seen: frozenset[str]) -> list[str]:
        entries = groups.get(name)
        if not isinstance(entries, list) or name in seen:
            return []  # malformed, or an include cycle
        out: list[str] = []
        for entry in entries:
            if isinstance(entry, str):
                if _is_requirement(entry.strip()):
                    out.append(entry.strip())
            elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
                out += flatten(_normalize_name(entry["include-group"]), seen | {name})
        return out

    chosen = next((g for g in _TEST_GROUPS if isinstance(groups.get(g), list)), None)
    return flatten(chosen, frozenset()) if chosen else []


_VERSION = r"\d+(?:\.\d+)*(?:(?:a|b|rc|\.post|\.dev)\d+)*"
_PEP440_CLAUSE = rf"(?:==|!=|>=|<=|>|<|~=)\s*{_VERSION}"


def _poetry_constraint(spec: str) -> str | None:
    """A simple poetry version constraint as PEP 440 ("" for any), `None` when not simple."""
    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    if re.fullmatch(rf"\^{_VERSION}", spec):
        return ">=" + spec[1:]
    if re.fullmatch(rf"~{_VERSION}", spec):
        # "~=" needs two release components; poetry's "~1" means >=1,<2, which is "~=1.0".
        return "~=" + spec[1:] + ("" if "." in spec else ".0")
    if re.fullmatch(rf"{_VERSION}(?:\.\*)?", spec):
        return "==" + spec
    if re.fullmatch(rf"{_PEP440_CLAUSE}(?:\s*,\s*{_PEP440_CLAUSE})*", spec):
        return re.sub(r"\s+", "", spec)
    return None


def _poetry_requirement(name: str, spec: object) -> str | None:
    if _normalize_name(name) == "python" or _REQ_NAME.fullmatch(name) is None:
        return None
    extras = ""
    if isinstance(spec, dict):
        # Local, VCS and private-index dependencies cannot be expressed as a plain requirement.
        if any(k in spec for k in ("path", "git", "url", "file", "source")):
            return None
        listed = spec.get("extras")
        if isinstance(listed, list) and all(
            isinstance(e, str) and _REQ_NAME.fullmatch(e) for e in listed
        ):
            extras = f"[{','.join(listed)}]" if listed else ""
        spec = spec.get("version", "*")
    elif isinstance(spec, list):
        # Per-python alternatives: the package is needed, pip picks a version that installs.
        if not all(
            isinstance(s, dict) and s.keys().isdisjoint(("path", "git", "url", "file", "source"))
            for s in spec
        ):
            return None
        spec = "*"
    if not isinstance(spec, str):
        return None
    constraint = _poetry_constraint(spec)
    # A constraint we cannot translate is dropped, not the dependency: tests are likelier to
    # run with some version of it than without it.
    return f"{name}{extras}{constraint or ''}"


def _poetry_deps(pyproject: dict[str, Any]) -> list[str]:
    poetry = _table(pyproject, "tool", "poetry")
    tables = [_table(poetry, "group", g, "dependencies") for g in _TEST_GROUPS]
    tables.append(_table(poetry, "dev-dependencies"))
    reqs: list[str] = []
    for deps in tables:
        for name, spec in deps.items():
            req = _poetry_requirement(name, spec)
            if req is not None:
                reqs.append(req)
    return reqs


def _pytest_addopts(workdir: Path, pyproject: dict[str, Any]) -> list[str]:
    """addopts from the config file pytest itself would pick (its precedence order)."""
    raw: object = None
    for name in ("pytest.ini", ".pytest.ini"):
        if _config_text(workdir, name) is not None:
            raw = _ini_value(_load_ini(workdir, name), "pytest", "addopts")
            break
    else:
        if "ini_options" in _table(pyproject, "tool", "pytest"):
            raw = _table(pyproject, "tool", "pytest", "ini_options").get("addopts")
        else:
            for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
                parser = _load_ini(workdir, name)
                if parser is not None and parser.has_section(section):
                    raw = _ini_value(parser, section, "addopts")
                    break
    items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    args: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        try:
            args += shlex.split(item)
        except ValueError:
            continue  # unbalanced quotes
    return args


def _addopts_plugins(addopts: Sequence[str]) -> list[str]:
    return [p for pattern, p in _ADDOPTS_PLUGINS if any(pattern.fullmatch(a) for a in addopts)]


def _extra_requirements(workdir: Path, skip_files: Iterable[str]) -> list[str]:
    """pip arguments for test dependencies beyond the project itself, de-duplicated, stable."""
    seen: set[tuple[str, str]] = {("-r", rel) for rel in skip_files}
    file_args: list[str] = []
    tox_args, tox_reqs = _tox_deps(workdir)
    for flag, rel in [*(("-r", rel) for rel in _test_requirement_files(workdir)), *tox_args]:
        if (flag, rel) not in seen:
            seen.add((flag, rel))
            file_args += [flag, rel]

    pyproject = _load_toml(workdir, "pyproject.toml")
    reqs: list[str] = []
    for req in [*tox_reqs, *_dependency_group(pyproject), *_poetry_deps(pyproject)]:
        req = re.sub(r"\s+", " ", req.strip())
        if req not in reqs:
            reqs.append(req)
    named = {_normalize_name(m.group(0)) for r in reqs if (m := _REQ_NAME.match(r))}
    reqs += [p for p in _addopts_plugins(_pytest_addopts(workdir, pyproject)) if p not in named]
    if not reqs and all(flag == "-c" for flag in file_args[::2]):
        return []  # constraints alone: pip refuses an install with nothing to install
    return [*file_args, *reqs]


def default_setup_commands(workdir: Path) -> list[list[str]]:
    """Create a venv at `{venv}` and install the project with its test dependencies, plus pytest.

    A project (pyproject.toml / setup.py / setup.cfg) is installed editable with the first
    declared extra among test, tests, testing, dev, then a second pip command installs the
    other test dependencies found (see `_extra_requirements` and docs/sandbox.md); a
    requirements-only repository gets its requirements*.txt files and those dependencies in a
    single command. pytest is always added, since it runs the tests.
    """
    pip = ["{venv}/bin/python", "-m", "pip", "install", "--disable-pip-version-check"]
    cmds: list[list[str]] = [["python3", "-m", "venv", "{venv}"]]
    is_project = any((workdir / n).is_file() for n in ("pyproject.toml", "setup.py", "setup.cfg"))
    if is_project:
        try:
            extras = _extras_declared(workdir)
        except TypeError:  # e.g. `optional-dependencies = 1`, which it does not guard against
            extras = set()
        chosen = next((e for e in _TEST_GROUPS if e in extras), None)
        cmds.append([*pip, "-e", f".[{chosen}]" if chosen else ".", "pytest"])
        extra = _extra_requirements(workdir, ())
        if extra:
            cmds.append([*pip, *extra])
    else:
        reqs = [p.name for p in sorted(workdir.glob("requirements*.txt")) if p.is_file()]
        args: list[str] = []
        for name in reqs:
            args += ["-r", name]
        cmds.append([*pip, *args, *_extra_requirements(workdir, reqs), "pytest"])
    return cmds


def environment_key(workdir: Path, setup_cmds: Sequence[Sequence[str]], mode: SandboxMode) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([list(c) for c in setup_cmds]).encode())
    digest.update(f"\0{mode}\0{python_prefix()}\0{sys.version_info[:2]}\0".encode())
    if mode == "none":
        # Without the fixed /work mount, editable installs record the real workspace path.
        digest.update(str(workdir).encode())
    for path in dependency_files(workdir):
        digest.update(b"\0" + str(path.relative_to(workdir)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


#: The system CA bundle (bound with /etc/ssl). An interpreter built outside Debian (pyenv) looks
#: for CAs elsewhere, and the host's pip.conf, which may hold index credentials, is not bound.
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def system_ca_env() -> dict[str, str]:
    """Point pip and Python's ssl at the system CA bundle in the setup phase (this is how a
    TLS-intercepting proxy's CA, installed system-wide, is trusted); empty if there is none."""
    if not SYSTEM_CA_BUNDLE.is_file():
        return {}
    bundle = str(SYSTEM_CA_BUNDLE)
    return {"PIP_CERT": bundle, "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle}


def repo_slug(repo: str) -> str:
    """A filesystem-safe name for "owner/name"."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", repo.replace("/", "__")).strip("._")
    return slug or "_"


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.2)
        yield
    finally:
        os.close(fd)


async def prepare_environment(
    workdir: Path,
    *,
    repo: str,
    cache_root: Path,
    setup_cmds: Sequence[Sequence[str]] | None = None,
    timeout: float = 900.0,  # noqa: ASYNC109 - per setup command, see run_sandboxed
    limits: Limits | None = None,
    mode: SandboxMode = "bwrap",
    run_as: str | int | None = None,
    bwrap_path: str | os.PathLike[str] | None = None,
    env_extra: Mapping[str, str] | None = None,
    output_cap: int = DEFAULT_OUTPUT_CAP,
) -> EnvInfo:
    """Build (or reuse) the repository's virtualenv; setup runs WITH network, still jailed.

    `{venv}` in a setup command is replaced by the venv's path as the command sees it. The venv
    is cached under `cache_root/<repo>/<key>`, key = hash of the dependency files, the setup
    commands and the interpreter; a second job with the same key skips setup.
    """
    workdir = Path(workdir).resolve()  # noqa: ASYNC240 - local metadata only
    cmds = [list(c) for c in (setup_cmds or default_setup_commands(workdir))]
    env_extra = {**system_ca_env(), **(env_extra or {})}
    key = environment_key(workdir, cmds, mode)
    repo_dir = Path(cache_root) / repo_slug(repo)
    venv_host = repo_dir / key
    venv_inside = SANDBOX_VENV if mode == "bwrap" else str(venv_host)
    marker = venv_host / _READY_MARKER
    started = time.monotonic()

    async with _file_lock(repo_dir / f"{key}.lock"):
        if _marker_key(marker) == key:
            return EnvInfo(venv_host, venv_inside, key, True, mode, [], time.monotonic() - started)
        if venv_host.exists():
            shutil.rmtree(venv_host)  # a half-built environment from a crashed job
        venv_host.mkdir(parents=True)
        user = resolve_user(run_as)
        if user is not None:
            os.chown(venv_host, user.uid, user.gid)
        bind = Bind(venv_host, SANDBOX_VENV, writable=True)
        results: list[SandboxResult] = []
        for raw in cmds:
            cmd = [arg.replace("{venv}", venv_inside) for arg in raw]
            result = await run_sandboxed(
                cmd,
                workdir=workdir,
                timeout=timeout,
                network=True,
                limits=limits,
                output_cap=output_cap,
                binds=[bind],
                env_extra=env_extra,
                mode=mode,
                run_as=run_as,
                bwrap_path=bwrap_path,
            )
            results.append(result)
            if not result.ok:
                shutil.rmtree(venv_host, ignore_errors=True)
                why = "timed out" if result.timed_out else f"exited {result.exit_code}"
                raise EnvironmentSetupFailed(f"setup command {cmd} {why}", result)
        marker.write_text(json.dumps({"key": key, "commands": cmds, "created": time.time()}))
        return EnvInfo(
            venv_host, venv_inside, key, False, mode, results, time.monotonic() - started
        )


def _marker_key(marker: Path) -> str | None:
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    value = data.get("key") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


# --- CLI ---------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    """`loopwright sandbox --workdir PATH [--timeout S] [--network] [--json] -- CMD ...`"""
    parser = argparse.ArgumentParser(
        prog="loopwright sandbox",
        description="Run one command in the sandbox exactly the way loops do.",
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=600.0, help="wall-clock seconds")
    parser.add_argument("--network", action="store_true", help="allow network (setup phase)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--user", default=None, help="unprivileged user to run as (when root)")
    parser.add_argument("--mode", choices=("bwrap", "none"), default=None)
    parser.add_argument("--output-cap", type=int, default=DEFAULT_OUTPUT_CAP)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        parser.error("no command given (put it after --)")

    mode: SandboxMode = args.mode
    run_as: str | None = args.user
    if mode is None or run_as is None:
        from bot.settings import load_settings

        settings = load_settings()
        mode = mode or settings.sandbox
        run_as = run_as or settings.sandbox_user or None
    if mode == "none":
        logging.basicConfig(level=logging.WARNING, format="loopwright: %(message)s")
    try:
        if run_as is not None:
            grant_workspace(args.workdir.resolve(), run_as)
        result = asyncio.run(
            run_sandboxed(
                cmd,
                workdir=args.workdir,
                timeout=args.timeout,
                network=args.network,
                output_cap=args.output_cap,
                mode=mode,
                run_as=run_as,
            )
        )
    except (SandboxError, ValueError) as exc:
        print(f"loopwright sandbox: {exc}", file=sys.stderr)
        return 125
    result.output = redact(result.output)  # every output channel is redacted, this one too
    if args.json:
        print(json.dumps(redact_data(result.to_dict())))
    else:
        sys.stdout.write(result.output)
        if result.output and not result.output.endswith("\n"):
            sys.stdout.write("\n")
        state = "timed out" if result.timed_out else f"exit {result.exit_code}"
        cut = f", {result.bytes_cut} bytes of output cut" if result.truncated else ""
        print(
            f"--- loopwright sandbox ({result.mode}{', network' if result.network else ''}): "
            f"{state} in {result.duration_s:.2f}s{cut}",
            file=sys.stderr,
        )
    return result.exit_code if result.exit_code >= 0 else 128 - result.exit_code
