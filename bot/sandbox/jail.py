"""Run one untrusted command: in the bubblewrap jail (or, mode "none", without isolation), with
rlimits, a cleared environment, a wall-clock kill of the whole tree and capped output.

`run_sandboxed` is the one way loopwright runs a repository's code; its steps, in order:
`_jail_env` (the command's whole environment), `_bwrap_launch` / `_unjailed_launch` (how it is
started), `_spawn`, `_supervise` (wait, time out, collect the output, never let it outlive us).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import resource
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

from bot import metrics as mx
from bot.sandbox.base import (
    BASE_PATH,
    DEFAULT_OUTPUT_CAP,
    SANDBOX_TMP,
    Bind,
    Limits,
    SandboxMode,
    SandboxResult,
    SandboxUnavailable,
    SandboxUser,
    python_prefix,
    resolve_user,
)
from bot.sandbox.bwrap import INSTALL_HINT, bwrap_argv, find_bwrap

# The name of the module this was split from, so log records and their filters stay the same.
log = logging.getLogger("bot.sandbox")


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


def _minimal_path(path_prepend: Sequence[str]) -> str:
    parts = list(path_prepend)
    py_bin = str(python_prefix() / "bin")
    if py_bin not in BASE_PATH:
        parts.append(py_bin)
    parts.extend(BASE_PATH)
    return ":".join(parts)


def _jail_env(path_prepend: Sequence[str], env_extra: Mapping[str, str] | None) -> dict[str, str]:
    """The command's whole environment: a minimal base plus `env_extra`, never a setting."""
    env = {
        "PATH": _minimal_path(path_prepend),
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
    return env


@dataclass
class _Launch:
    """How the command is started, and what must be closed or removed around it."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    stdin: int
    user_kwargs: dict[str, Any] = field(default_factory=dict)
    #: The watchdog's pipe (mode "bwrap"; -1 otherwise): the child reads, we hold the write end.
    watch_read: int = -1
    watch_write: int = -1
    #: HOME and TMPDIR of a command run without isolation, removed afterwards.
    scratch: str | None = None

    def remove_scratch(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _bwrap_launch(
    cmd: Sequence[str],
    *,
    workdir: Path,
    network: bool,
    binds: Sequence[Bind],
    env: dict[str, str],
    user: SandboxUser | None,
    bwrap_path: str | os.PathLike[str] | None,
) -> _Launch:
    bwrap = find_bwrap(bwrap_path)
    if user is None and os.geteuid() == 0:
        raise SandboxUnavailable(
            "loopwright runs as root, and rlimits do not bind root: configure an "
            "unprivileged sandbox user (run_as)"
        )
    watch_read, watch_write = os.pipe2(os.O_CLOEXEC)
    argv = bwrap_argv(bwrap, cmd, workdir=workdir, network=network, binds=binds, env=env, user=user)
    # bwrap's own process keeps the environment it starts with (readable inside as
    # /proc/1/environ), so it gets the same minimal environment, not ours.
    return _Launch(argv, "/", dict(env), watch_read, watch_read=watch_read, watch_write=watch_write)


def _unjailed_launch(
    cmd: Sequence[str], *, workdir: Path, env: dict[str, str], user: SandboxUser | None
) -> _Launch:
    log.warning(
        "LOOPWRIGHT_SANDBOX=none: running %s WITHOUT isolation (no namespaces, network "
        "and the host filesystem are reachable); for local development only",
        cmd[0],
    )
    if user is None and os.geteuid() == 0:
        log.warning("sandbox mode none as root: process limits do not apply")
    scratch = tempfile.mkdtemp(prefix="loopwright-none-")
    if user is not None:
        os.chown(scratch, user.uid, user.gid)
    env["HOME"] = env["TMPDIR"] = scratch
    user_kwargs: dict[str, Any] = (
        {} if user is None else {"user": user.uid, "group": user.gid, "extra_groups": []}
    )
    return _Launch(
        list(cmd), str(workdir), env, asyncio.subprocess.DEVNULL, user_kwargs, scratch=scratch
    )


async def _spawn(
    launch: _Launch, limits: Limits, pass_fds: Sequence[int]
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *launch.argv,
        stdin=launch.stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=launch.cwd,
        env=launch.env,
        start_new_session=True,
        preexec_fn=_make_preexec(limits),
        pass_fds=tuple(pass_fds),
        **launch.user_kwargs,
    )


async def _supervise(
    proc: asyncio.subprocess.Process,
    buffer: _CappedOutput,
    *,
    timeout: float,  # noqa: ASYNC109 - see run_sandboxed
    watch_write: int,
) -> bool:
    """Collect the output until the command ends or its time is up (then kill the whole tree);
    True when it timed out. Cancelled or failing, it kills the command before it returns."""

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            buffer.feed(chunk)

    watch_open = [watch_write]

    def release_watchdog() -> None:
        # Closed exactly once: a second close could hit an unrelated, reused descriptor.
        if watch_open[0] >= 0:
            _close_fds(watch_open[0])
            watch_open[0] = -1

    reader = asyncio.create_task(pump())
    timed_out = False
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
    return timed_out


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
    env = _jail_env(path_prepend, env_extra)
    if mode == "bwrap":
        launch = _bwrap_launch(
            cmd,
            workdir=workdir,
            network=network,
            binds=bind_list,
            env=env,
            user=user,
            bwrap_path=bwrap_path,
        )
    else:
        launch = _unjailed_launch(cmd, workdir=workdir, env=env, user=user)

    started = time.monotonic()
    buffer = _CappedOutput(max(output_cap, 2))
    try:
        proc = await _spawn(launch, limits, pass_fds)
    except FileNotFoundError as exc:
        _close_fds(launch.watch_read, launch.watch_write, *pass_fds)
        launch.remove_scratch()
        if mode == "bwrap":
            raise SandboxUnavailable(f"{exc.filename} not found. {INSTALL_HINT}") from None
        return SandboxResult(
            list(cmd), 127, time.monotonic() - started, f"{exc}\n", mode=mode, network=network
        )
    # Only the child needs the read end; the write end stays here until the run is over.
    _close_fds(launch.watch_read, *pass_fds)
    try:
        timed_out = await _supervise(proc, buffer, timeout=timeout, watch_write=launch.watch_write)
    finally:
        launch.remove_scratch()

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
