"""The bubblewrap command line: namespaces, a cleared environment, read-only system directories and
the parts of /etc programs need, a private /tmp, the workspace at `/work` with its `.git`
read-only, and (as root) `setpriv` dropping to the sandbox user. See docs/sandbox.md."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.sandbox.base import (
    BASE_PATH,
    SANDBOX_TMP,
    SANDBOX_WORKDIR,
    Bind,
    SandboxUnavailable,
    SandboxUser,
    python_prefix,
)

DEFAULT_BWRAP = "bwrap"

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


class _Mounts:
    """bwrap's mount arguments, in order, with the ancestors of each mount point made once."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self._made: set[str] = set()

    def mkdirs(self, dest: str) -> None:
        # Directories bubblewrap creates implicitly are 0700 when it runs as root, which would
        # hide e.g. /root/.pyenv from the sandbox user; create every ancestor 0755 explicitly.
        parent = str(Path(dest).parent)
        chain: list[str] = []
        while parent not in ("/", "") and parent not in self._made:
            chain.append(parent)
            parent = str(Path(parent).parent)
        for d in reversed(chain):
            self.args.extend(["--perms", "0755", "--dir", d])
            self._made.add(d)


def bwrap_argv(
    bwrap: str,
    cmd: Sequence[str],
    *,
    workdir: Path,
    network: bool,
    binds: Sequence[Bind],
    env: Mapping[str, str],
    user: SandboxUser | None,
) -> list[str]:
    """The whole command line that runs `cmd` in the jail, next to its watchdog."""
    argv = [bwrap, *_namespace_args(network, user)]
    argv += ["--hostname", "loopwright-sandbox", "--die-with-parent", "--new-session"]
    argv.append("--clearenv")
    for key, value in env.items():
        argv += ["--setenv", key, value]
    mounts = _Mounts()
    _mount_system(mounts)
    _mount_workspace(mounts, workdir, binds)
    argv += mounts.args
    argv += ["--chdir", SANDBOX_WORKDIR]
    if user is not None:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        argv += _drop_to(user)
    argv.append("--")
    argv.extend(_watchdog_wrap(cmd))
    return argv


def _namespace_args(network: bool, user: SandboxUser | None) -> list[str]:
    if user is None:
        # Unprivileged: bubblewrap needs a user namespace; forbid nesting another one inside.
        args = ["--unshare-all", "--unshare-user", "--disable-userns"]
        if network:
            args.append("--share-net")
        return args
    # As root a user namespace would map the sandbox to host root, where RLIMIT_NPROC does
    # not apply; so no user namespace, and setpriv drops to the sandbox user below.
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        args.append("--unshare-net")
    return args


def _mount_system(mounts: _Mounts) -> None:
    """System directories and the host interpreter read-only, the chosen parts of /etc, a private
    /proc, /dev and /tmp."""
    args = mounts.args
    for sysdir in SYSTEM_DIRS:
        p = Path(sysdir)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), sysdir]
        elif p.is_dir():
            args += ["--ro-bind", sysdir, sysdir]
    mounts.mkdirs("/etc/x")
    for entry in ETC_ENTRIES:
        args += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    for name in os.listdir("/etc"):
        if re.fullmatch(r"python3(\.\d+)?", name):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]

    prefix = python_prefix()
    if not any(prefix.is_relative_to(d) for d in SYSTEM_DIRS if Path(d).is_dir()):
        mounts.mkdirs(str(prefix))
        args += ["--ro-bind", str(prefix), str(prefix)]

    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", SANDBOX_TMP]
    # /tmp is a tmpfs owned by whoever runs bwrap; make it usable for the dropped user.
    args += ["--chmod", "1777", SANDBOX_TMP]


def _mount_workspace(mounts: _Mounts, workdir: Path, binds: Sequence[Bind]) -> None:
    args = mounts.args
    args += ["--bind", str(workdir), SANDBOX_WORKDIR]
    git = workdir / ".git"
    if git.exists() or git.is_symlink():
        # Re-bound read-only on top: hooks, config and refs must not be writable from inside,
        # since git commands on the host later read them.
        args += ["--ro-bind", str(git), f"{SANDBOX_WORKDIR}/.git"]
    for bind in binds:
        mounts.mkdirs(bind.inside)
        args += ["--bind" if bind.writable else "--ro-bind", str(bind.host), bind.inside]


def _drop_to(user: SandboxUser) -> list[str]:
    """setpriv as the jail's first process: the sandbox user, no groups, no capabilities."""
    return [
        _setpriv(),
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]


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


def find_bwrap(bwrap_path: str | os.PathLike[str] | None) -> str:
    candidate = str(bwrap_path) if bwrap_path is not None else DEFAULT_BWRAP
    found = shutil.which(candidate) if os.sep not in candidate else candidate
    if found is None or not os.access(found, os.X_OK):
        raise SandboxUnavailable(f"{candidate} not found. {INSTALL_HINT}")
    return found
