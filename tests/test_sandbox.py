"""Red-team tests for bot/sandbox.py: every sandboxed command runs as an unprivileged user.

No timing assertions: deadlines below only bound how long we wait for something to happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.sandbox import (
    SANDBOX_VENV,
    Limits,
    SandboxUnavailable,
    cli,
    grant_workspace,
    prepare_environment,
    run_sandboxed,
)
from tests.support.sandbox_user import (
    bwrap_works,
    ensure_sandbox_user,
    make_workspace,
    sandbox_run_as,
    workspace,
)

__all__ = ["sandbox_run_as", "workspace"]  # fixtures, re-exported for pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_no_bwrap = bwrap_works()
needs_bwrap = pytest.mark.skipif(_no_bwrap is not None, reason=_no_bwrap or "")

SECRETS = {
    "LOOPWRIGHT_WEBHOOK_SECRET": "whsec-" + uuid.uuid4().hex,
    "LOOPWRIGHT_PRIVATE_KEY": "pk-" + uuid.uuid4().hex,
    "GITHUB_TOKEN": "ghs_" + uuid.uuid4().hex,
    "DATABASE_URL": "postgres://u:pw-" + uuid.uuid4().hex + "@db/x",
}


def processes_matching(token: str) -> list[int]:
    """Host pids whose command line mentions `token` (our tests' unique sleep durations)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def wait_until(predicate: Callable[[], bool], deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def unique_sleep() -> str:
    """A sleep duration nobody else uses, so its processes can be found on the host."""
    return f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6:06d}"


@needs_bwrap
async def test_no_network_even_to_host_loopback(workspace: Path, sandbox_run_as: str | None):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0)
    port = server.getsockname()[1]
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "except OSError as e:\n"
        "    print('BLOCKED', e); sys.exit(3)\n"
        "print('CONNECTED')\n"
    )
    try:
        jailed = await run_sandboxed(
            ["python3", "-c", probe], workdir=workspace, timeout=20, run_as=sandbox_run_as
        )
        assert jailed.exit_code == 3, jailed.output
        assert "BLOCKED" in jailed.output
        with pytest.raises(BlockingIOError):
            server.accept()
        # The positive control: the same probe reaches the listener when network is allowed,
        # so the failure above is the namespace, not a broken probe.
        allowed = await run_sandboxed(
            ["python3", "-c", probe],
            workdir=workspace,
            timeout=20,
            network=True,
            run_as=sandbox_run_as,
        )
        assert "CONNECTED" in allowed.output, allowed.output
    finally:
        server.close()


@needs_bwrap
async def test_environment_holds_no_parent_secret(
    workspace: Path, sandbox_run_as: str | None, monkeypatch: pytest.MonkeyPatch
):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    script = "env; for f in /proc/[0-9]*/environ; do echo \"== $f\"; tr '\\0' '\\n' < $f; done"
    result = await run_sandboxed(
        ["sh", "-c", script], workdir=workspace, timeout=20, run_as=sandbox_run_as
    )
    assert "PATH=" in result.output and "== /proc/1/environ" in result.output
    for key, value in SECRETS.items():
        assert value not in result.output
        assert key not in result.output


@needs_bwrap
async def test_bwrap_process_itself_starts_with_clean_environment(
    workspace: Path, sandbox_run_as: str | None, monkeypatch: pytest.MonkeyPatch
):
    # The trap: bwrap is pid 1 inside and keeps the environment it was started with. Look at
    # every host process of this sandbox (bwrap, its init, the command) from outside.
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    token = unique_sleep()
    task = asyncio.create_task(
        run_sandboxed(["sleep", token], workdir=workspace, timeout=30, run_as=sandbox_run_as)
    )
    try:
        await asyncio.to_thread(wait_until, lambda: len(processes_matching(token)) >= 2)
        pids = processes_matching(token)
        assert pids
        for pid in pids:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
            for key, value in SECRETS.items():
                assert value not in environ and key not in environ, (pid, environ)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Cancelling the caller kills the sandbox too.
    assert await asyncio.to_thread(wait_until, lambda: not processes_matching(token))


@pytest.fixture
def bomb_user(sandbox_run_as: str | None) -> str | None:
    """A user of its own: the process limit counts every process of a uid, and other tests
    (another test worker) run sandboxes as the shared test user at the same time."""
    return ensure_sandbox_user("lw-sandbox-bomb") if sandbox_run_as is not None else None


@needs_bwrap
async def test_fork_bomb_is_contained(bomb_user: str | None) -> None:
    workspace = make_workspace(bomb_user)
    try:
        await _fork_bomb_is_contained(workspace, bomb_user)
    finally:
        shutil.rmtree(workspace.parent, ignore_errors=True)


async def _fork_bomb_is_contained(workspace: Path, sandbox_run_as: str | None) -> None:
    counter = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(500):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('FORK FAILED', e.errno, flush=True)\n"
        "print('FORKED', n, flush=True)\n"
        "os.killpg(0, 9)\n"
    )
    limits = Limits(processes=40)
    counted = await run_sandboxed(
        ["python3", "-c", counter],
        workdir=workspace,
        timeout=20,
        limits=limits,
        run_as=sandbox_run_as,
    )
    assert "FORK FAILED" in counted.output, counted.output
    forked = int(re.search(r"FORKED (\d+)", counted.output).group(1))  # type: ignore[union-attr]
    assert forked < 40
    # The classic bomb: it cannot grow past the limit, and the wall clock ends it with its tree.
    bomb = await run_sandboxed(
        ["bash", "-c", "b() { b | b & }; b; sleep 30"],
        workdir=workspace,
        timeout=3,
        limits=limits,
        run_as=sandbox_run_as,
    )
    assert "Resource temporarily unavailable" in bomb.output
    assert not bomb.ok
    if sandbox_run_as is not None:
        uid = int(
            subprocess.run(
                ["id", "-u", sandbox_run_as], capture_output=True, text=True, check=True
            ).stdout
        )
        assert await asyncio.to_thread(wait_until, lambda: not _pids_of_uid(uid))


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


@needs_bwrap
async def test_file_size_limit_stops_yes(workspace: Path, sandbox_run_as: str | None):
    cap = 1024 * 1024
    result = await run_sandboxed(
        ["sh", "-c", "yes > big"],
        workdir=workspace,
        timeout=30,
        limits=Limits(file_size_bytes=cap),
        run_as=sandbox_run_as,
    )
    assert not result.timed_out
    assert result.exit_code != 0
    assert (workspace / "big").stat().st_size <= cap


@needs_bwrap
async def test_git_dir_is_read_only(workspace: Path, sandbox_run_as: str | None):
    result = await run_sandboxed(
        ["sh", "-c", "echo ok > allowed.txt && echo evil > .git/hooks/x"],
        workdir=workspace,
        timeout=20,
        run_as=sandbox_run_as,
    )
    assert result.exit_code != 0
    assert "Read-only file system" in result.output
    assert (workspace / "allowed.txt").read_text() == "ok\n"
    assert not (workspace / ".git" / "hooks" / "x").exists()


@needs_bwrap
async def test_killing_the_parent_kills_the_sandbox(workspace: Path, sandbox_run_as: str | None):
    token = unique_sleep()
    parent_code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from bot.sandbox import run_sandboxed\n"
        "asyncio.run(run_sandboxed(['sleep', sys.argv[1]], workdir=Path(sys.argv[2]),"
        " timeout=120, run_as=(sys.argv[3] or None)))\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, token, str(workspace), sandbox_run_as or ""],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert await asyncio.to_thread(wait_until, lambda: len(processes_matching(token)) >= 2)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert await asyncio.to_thread(wait_until, lambda: not processes_matching(token))
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("mode", ["bwrap", "none"])
async def test_timeout_kills_the_whole_tree(workspace: Path, sandbox_run_as: str | None, mode: str):
    if mode == "bwrap" and _no_bwrap:
        pytest.skip(_no_bwrap)
    tokens = [unique_sleep() for _ in range(3)]
    script = f"sleep {tokens[0]} & (sleep {tokens[1]} &) ; sleep {tokens[2]}"
    result = await run_sandboxed(
        ["sh", "-c", script],
        workdir=workspace,
        timeout=1,
        mode=mode,  # type: ignore[arg-type]
        run_as=sandbox_run_as,
    )
    assert result.timed_out
    assert not result.ok
    for token in tokens:
        assert await asyncio.to_thread(wait_until, lambda t=token: not processes_matching(t))


@needs_bwrap
async def test_output_over_cap_is_truncated_and_marked(workspace: Path, sandbox_run_as: str | None):
    code = "import sys; sys.stdout.write('HEAD' + 'x' * 500000 + 'TAIL')"
    result = await run_sandboxed(
        ["python3", "-c", code],
        workdir=workspace,
        timeout=20,
        output_cap=10_000,
        run_as=sandbox_run_as,
    )
    assert result.ok
    assert result.truncated and result.bytes_cut == 500008 - 10_000
    assert result.output.startswith("HEAD") and result.output.endswith("TAIL")
    assert f"[loopwright: {result.bytes_cut} bytes cut]" in result.output
    assert len(result.output) < 10_100
    data = json.loads(result.to_json())
    assert data["truncated"] is True and data["exit_code"] == 0


async def test_mode_none_warns_on_every_run(
    workspace: Path, sandbox_run_as: str | None, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="bot.sandbox")
    for _ in range(2):
        result = await run_sandboxed(
            ["sh", "-c", "echo $HOME; env"],
            workdir=workspace,
            timeout=20,
            mode="none",
            run_as=sandbox_run_as,
        )
        assert result.exit_code == 0
    warnings = [r for r in caplog.records if "WITHOUT isolation" in r.getMessage()]
    assert len(warnings) == 2
    assert "LOOPWRIGHT_" not in result.output


async def test_missing_bwrap_explains_how_to_install(workspace: Path, sandbox_run_as: str | None):
    with pytest.raises(SandboxUnavailable) as info:
        await run_sandboxed(
            ["true"],
            workdir=workspace,
            timeout=5,
            run_as=sandbox_run_as,
            bwrap_path="/nonexistent/bwrap",
        )
    assert "apt-get install bubblewrap" in str(info.value)
    assert "LOOPWRIGHT_SANDBOX=none" in str(info.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a separate sandbox user")
@needs_bwrap
async def test_root_without_sandbox_user_is_refused(workspace: Path):
    with pytest.raises(SandboxUnavailable, match="rlimits do not bind root"):
        await run_sandboxed(["true"], workdir=workspace, timeout=5)


async def test_settings_cannot_be_passed_in(workspace: Path, sandbox_run_as: str | None):
    with pytest.raises(ValueError, match="LOOPWRIGHT_"):
        await run_sandboxed(
            ["true"],
            workdir=workspace,
            timeout=5,
            mode="none",
            run_as=sandbox_run_as,
            env_extra={"LOOPWRIGHT_WEBHOOK_SECRET": "x"},
        )


@needs_bwrap
async def test_environment_cache_is_hit_on_second_run(tmp_path: Path, sandbox_run_as: str | None):
    # A venv without pip needs no network; the cache logic is the same as for a full install.
    setup = [["python3", "-m", "venv", "--without-pip", "{venv}"]]
    cache = tmp_path / "envs"
    workspaces = [make_workspace(sandbox_run_as) for _ in range(3)]
    try:
        for ws in workspaces:
            (ws / "pyproject.toml").write_text('[project]\nname = "tiny"\nversion = "0"\n')
            grant_workspace(ws, sandbox_run_as)
        kwargs = {
            "repo": "octo/tiny",
            "cache_root": cache,
            "setup_cmds": setup,
            "run_as": sandbox_run_as,
            "timeout": 60,
        }
        first = await prepare_environment(workspaces[0], **kwargs)  # type: ignore[arg-type]
        assert not first.cache_hit and len(first.setup_results) == 1
        second = await prepare_environment(workspaces[1], **kwargs)  # type: ignore[arg-type]
        assert second.cache_hit and second.key == first.key and not second.setup_results

        # The test phase sees the venv first on PATH, read-only, with no network.
        used = await run_sandboxed(
            ["sh", "-c", "python -c 'import sys; print(sys.prefix)'; touch $VIRTUAL_ENV/x"],
            workdir=workspaces[1],
            timeout=20,
            binds=second.binds,
            path_prepend=second.path_prepend,
            env_extra=second.env,
            run_as=sandbox_run_as,
        )
        assert SANDBOX_VENV in used.output and "Read-only file system" in used.output

        (workspaces[2] / "pyproject.toml").write_text(
            '[project]\nname = "tiny"\nversion = "0"\ndependencies = []\n'
        )
        third = await prepare_environment(workspaces[2], **kwargs)  # type: ignore[arg-type]
        assert not third.cache_hit and third.key != first.key
    finally:
        for ws in workspaces:
            shutil.rmtree(ws.parent, ignore_errors=True)


@needs_bwrap
def test_cli_json(workspace: Path, sandbox_run_as: str | None, capsys: pytest.CaptureFixture[str]):
    args = ["--workdir", str(workspace), "--json", "--mode", "bwrap"]
    if sandbox_run_as:
        args += ["--user", sandbox_run_as]
    code = cli([*args, "--", "sh", "-c", "echo hello; exit 7"])
    assert code == 7
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 7 and data["output"] == "hello\n" and not data["timed_out"]


@needs_bwrap
def test_cli_output_is_redacted(
    workspace: Path, sandbox_run_as: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "ghp_" + "A1b2" * 9
    args = ["--workdir", str(workspace), "--mode", "bwrap"]
    if sandbox_run_as:
        args += ["--user", sandbox_run_as]
    for extra in ([], ["--json"]):
        assert cli([*args, *extra, "--", "echo", f"token={token}"]) == 0
        out = capsys.readouterr().out
        assert token not in out and "token=" in out
