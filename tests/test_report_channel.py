"""Test outcomes come back through loopwright's own pytest reporter over a socket the code under
test cannot find or forge; the runs here are real pytest runs in the sandbox, as the
unprivileged user, and the hostile code is the project's own (a conftest, a test)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox import SANDBOX_VENV, EnvInfo, grant_workspace
from bot.testresults import TestRun, read_report, run_tests
from tests.support.sandbox_user import bwrap_works, make_workspace, sandbox_run_as

__all__ = ["sandbox_run_as"]

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")

TESTS = """
import os
import pytest

def test_ok():
    assert 1 + 1 == 2

def test_broken():
    assert 1 + 1 == 3

@pytest.fixture
def exploding():
    raise RuntimeError("setup blew up")

def test_uses_fixture(exploding):
    pass

def test_skipped():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

class TestGroup:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, n):
        assert n

def test_channel_is_not_in_the_environment():
    assert not [k for k in os.environ if k.startswith("LWR_")]
"""

#: Forges an all-pass record on every socket the process holds, at import, and again at exit.
FORGE = """
import atexit, json, os

def _forge():
    record = {"nonce": "0" * 32, "exitstatus": 0, "collected": 1,
              "outcomes": [{"test_id": "tests/test_mod.py::test_broken", "outcome": "passed"}]}
    for name in os.listdir("/proc/self/fd"):
        try:
            os.write(int(name), (json.dumps(record) + "\\n").encode())
        except OSError:
            pass

_forge()
atexit.register(_forge)
"""


@pytest.fixture
def project(sandbox_run_as: str | None) -> Iterator[Path]:
    ws = make_workspace(sandbox_run_as)
    (ws / "tests").mkdir()
    (ws / "tests" / "test_mod.py").write_text(TESTS)
    yield ws
    shutil.rmtree(ws.parent, ignore_errors=True)


async def _run(ws: Path, run_as: str | None, **files: str) -> TestRun:
    for name, text in files.items():
        (ws / name).write_text(text)
    grant_workspace(ws, run_as)
    env = EnvInfo(Path(sys.prefix), SANDBOX_VENV, "test", True, "bwrap")
    return await run_tests(
        ws, test_cmd=["python", "-m", "pytest", "-q"], env=env, run_as=run_as, timeout=60
    )


async def test_outcomes_come_from_loopwrights_own_reporter(
    project: Path, sandbox_run_as: str | None
) -> None:
    run = await _run(project, sandbox_run_as)
    assert run.junit_found, (run.junit_error, run.output)
    assert run.report_channel == "plugin"
    got = {tid.split("::", 1)[1]: o.outcome for tid, o in run.outcomes.items()}
    assert got == {
        "test_ok": "passed",
        "test_broken": "failed",
        "test_uses_fixture": "error",
        "test_skipped": "skipped",
        "test_xfail": "skipped",
        "TestGroup::test_param[1]": "passed",
        "TestGroup::test_param[2]": "passed",
        "test_channel_is_not_in_the_environment": "passed",
    }
    broken = run.outcomes["tests/test_mod.py::test_broken"]
    assert "assert (1 + 1) == 3" in broken.message or "assert 2 == 3" in broken.message
    assert 'failed on setup with "RuntimeError: setup blew up"' in (
        run.outcomes["tests/test_mod.py::test_uses_fixture"].message
    )
    # No JUnit file is asked for, so there is none to rewrite.
    assert "junitxml" not in run.output


@pytest.mark.parametrize(
    ("name", "files", "why"),
    [
        ("a forged record on every socket", {"conftest.py": FORGE}, "forged report"),
        (
            "exit 0 in the middle of the run",
            {"tests/test_zz.py": "import os\n\ndef test_exit():\n    os._exit(0)\n"},
            "left no report",
        ),
        (
            "exit 0 after pytest finished",
            {"conftest.py": "import atexit, os\natexit.register(lambda: os._exit(0))\n"},
            "exit status 1 but the process exited 0",
        ),
        (
            "every descriptor closed at import",
            {"conftest.py": "import os\nos.closerange(3, 4096)\n"},
            "left no report",
        ),
    ],
)
async def test_code_under_test_cannot_forge_or_silence_the_report(
    project: Path, sandbox_run_as: str | None, name: str, files: dict[str, str], why: str
) -> None:
    run = await _run(project, sandbox_run_as, **files)
    assert not run.junit_found and not run.outcomes, name
    assert why in run.junit_error, run.junit_error


def test_a_record_is_read_only_when_it_is_the_only_one_and_agrees() -> None:
    nonce = "a" * 32
    good = (
        b'{"nonce": "' + nonce.encode() + b'", "exitstatus": 1, "collected": 2, "outcomes": '
        b'[{"test_id": "t.py::a", "outcome": "passed"}, {"test_id": "t.py::b", '
        b'"outcome": "failed", "message": "E boom"}]}\n'
    )
    outcomes, why = read_report(good, nonce, 1)
    assert why == "" and outcomes["t.py::b"].message == "E boom"
    assert "forged" in read_report(good + good, nonce, 1)[1]
    assert "forged" in read_report(good, "b" * 32, 1)[1]
    assert "exited 0" in read_report(good, nonce, 0)[1]
    assert "no report" in read_report(b"", nonce, 1)[1]
    all_pass = good.replace(b'"outcome": "failed"', b'"outcome": "passed"')
    assert "disagree" in read_report(all_pass, nonce, 1)[1]
    assert read_report(good, nonce, 1, timed_out=True)[1] == "the run timed out"


async def test_a_command_that_sets_its_own_pythonpath_still_reports(
    project: Path, sandbox_run_as: str | None
) -> None:
    (project / "docs").mkdir()
    (project / "docs" / "helper.py").write_text("VALUE = 3\n")
    (project / "tests" / "test_docs.py").write_text(
        "import helper\n\ndef test_helper():\n    assert helper.VALUE == 3\n"
    )
    grant_workspace(project, sandbox_run_as)
    env = EnvInfo(Path(sys.prefix), SANDBOX_VENV, "test", True, "bwrap")
    run = await run_tests(
        project,
        test_cmd="env PYTHONPATH=docs python -m pytest tests/test_docs.py",
        env=env,
        run_as=sandbox_run_as,
        timeout=60,
    )
    assert run.junit_found, (run.junit_error, run.output)
    assert run.outcomes["tests/test_docs.py::test_helper"].outcome == "passed"


async def test_a_process_that_never_read_the_nonce_is_no_report_not_a_crash() -> None:
    import socket

    from bot.testresults import _receive

    ours, theirs = socket.socketpair()
    ours.sendall(b"n" * 32)
    ours.shutdown(socket.SHUT_WR)
    theirs.close()  # unread data in its queue: the kernel resets the connection
    try:
        assert await _receive(ours) == b""
    finally:
        ours.close()
