"""The dependency environment cache: one virtualenv per repository state, built by the setup
commands in the jail WITH network, reused read-only by every later test run with the same key
(dependency files, setup commands, interpreter)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.flock import FileLock
from bot.sandbox.base import (
    DEFAULT_OUTPUT_CAP,
    SANDBOX_VENV,
    Bind,
    Limits,
    SandboxError,
    SandboxMode,
    SandboxResult,
    python_prefix,
    resolve_user,
)
from bot.sandbox.jail import run_sandboxed
from bot.sandbox.testdeps import default_setup_commands

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


class EnvironmentSetupFailed(SandboxError):
    """A dependency setup command failed; `result` holds its output."""

    def __init__(self, message: str, result: SandboxResult) -> None:
        super().__init__(message)
        self.result = result


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

    repo_dir.mkdir(parents=True, exist_ok=True)
    async with FileLock(repo_dir / f"{key}.lock").held_async():
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
