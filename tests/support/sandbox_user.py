"""The unprivileged user that sandbox tests run commands as, and workspaces it can write.

Red-team tests as root prove nothing (root ignores RLIMIT_NPROC and file permissions), so when
the test process is root we create a dedicated system user and run every sandboxed command as it.
When the test process is not root it is itself unprivileged and commands run as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import grant_workspace

SANDBOX_TEST_USER = "lw-sandbox-test"


def ensure_sandbox_user(name: str = SANDBOX_TEST_USER) -> str | None:
    """`run_as` for tests: the dedicated user when we are root, None (ourselves) otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            pytest.skip(f"running as root, user {name} is missing and useradd is not available")
        made = subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                name,
            ],
            capture_output=True,
            text=True,
        )
        try:
            pwd.getpwnam(name)  # another test worker may have created it at the same moment
        except KeyError:
            raise RuntimeError(f"useradd {name} failed: {made.stderr.strip()}") from None
    return name


def bwrap_works() -> str | None:
    """None when bubblewrap can start a jail here, else the reason it cannot."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    probe = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip()}"
    return None


def make_workspace(run_as: str | None, *, git: bool = True) -> Path:
    """A fresh workspace the sandbox user can write (and, for mode "none", reach)."""
    # mkdtemp makes 0700 directories; mode "none" has no bind mount, so the user must be able
    # to traverse to the workspace itself.
    base = Path(tempfile.mkdtemp(prefix="lw-sandbox-ws-"))
    base.chmod(0o755)
    ws = base / "repo"
    ws.mkdir()
    if git:
        subprocess.run(["git", "init", "-q", str(ws)], check=True)
        (ws / ".git" / "hooks").mkdir(exist_ok=True)
    grant_workspace(ws, run_as)
    return ws


@pytest.fixture(scope="session")
def sandbox_run_as() -> str | None:
    return ensure_sandbox_user()


@pytest.fixture
def workspace(sandbox_run_as: str | None) -> Iterator[Path]:
    ws = make_workspace(sandbox_run_as)
    yield ws
    shutil.rmtree(ws.parent, ignore_errors=True)
