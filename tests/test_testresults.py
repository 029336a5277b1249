"""Test results as data: real JUnit XML from real pytest runs, comparison, baseline cache."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.sandbox import SANDBOX_VENV, EnvInfo, grant_workspace
from bot.testresults import (
    MAX_JUNIT_BYTES,
    JUnitError,
    TestOutcome,
    TestRun,
    baseline_cache_path,
    baseline_run,
    clip_message,
    collection_errors,
    compare,
    default_test_command,
    failed_to_collect,
    frames,
    origin,
    parse_junit_xml,
    pytest_position,
    regressions,
    shape_pytest_command,
)
from tests.support.sandbox_user import bwrap_works, make_workspace, sandbox_run_as

__all__ = ["sandbox_run_as"]

BASE_TESTS = """
import pytest

def test_ok():
    assert 1 + 1 == 2

def test_broken():
    import logging, sys
    logging.getLogger("server").error("ValueError: read length must be non-negative")
    print("printed by the failing test", file=sys.stderr)
    assert 1 == 2, "one is not two"

@pytest.fixture
def exploding():
    raise RuntimeError("fixture blew up")

def test_uses_fixture(exploding):
    pass

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

class TestGroup:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, n):
        assert n == 1
"""
# Head: test_broken fixed, test_ok regressed, test_new added, TestGroup unchanged.
HEAD_TESTS = (
    BASE_TESTS.replace("assert 1 + 1 == 2", "assert 1 + 1 == 3").replace(
        'assert 1 == 2, "one is not two"', "assert 1 == 1"
    )
    + "\ndef test_new():\n    pass\n"
)

MOD = "tests/test_sample.py"


def write_project(root: Path, tests: str) -> None:
    (root / "tests").mkdir(parents=True, exist_ok=True)
    (root / "tests" / "test_sample.py").write_text(tests)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "sample"\nversion = "0"\n\n[tool.pytest.ini_options]\n'
    )


def run_pytest_junit(root: Path) -> bytes:
    """Run real pytest on the host the way run_tests does, and return its JUnit XML."""
    junit = root / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-o",
            "junit_family=xunit1",
            "-o",
            "junit_logging=all",
            "-o",
            "junit_log_passing_tests=false",
            "tests",
        ],
        cwd=root,
        capture_output=True,
    )
    return junit.read_bytes()


def test_parse_real_pytest_junit(tmp_path: Path):
    write_project(tmp_path, BASE_TESTS)
    outcomes = parse_junit_xml(run_pytest_junit(tmp_path))
    assert {t: o.outcome for t, o in outcomes.items()} == {
        f"{MOD}::test_ok": "passed",
        f"{MOD}::test_broken": "failed",
        f"{MOD}::test_uses_fixture": "error",
        f"{MOD}::test_skipped": "skipped",
        f"{MOD}::TestGroup::test_param[1]": "passed",
        f"{MOD}::TestGroup::test_param[2]": "failed",
    }
    assert "one is not two" in outcomes[f"{MOD}::test_broken"].message
    # A failing test's captured output and logs come along (a server-side error logged
    # during the test is often the reported failure); passing tests carry none.
    captured = outcomes[f"{MOD}::test_broken"].output
    assert "read length must be non-negative" in captured and "printed by" in captured
    assert outcomes[f"{MOD}::test_ok"].output == ""
    assert "fixture blew up" in outcomes[f"{MOD}::test_uses_fixture"].message
    assert "not today" in outcomes[f"{MOD}::test_skipped"].message


def test_compare_base_and_head(tmp_path: Path):
    base_dir, head_dir = tmp_path / "base", tmp_path / "head"
    write_project(base_dir, BASE_TESTS)
    write_project(head_dir, HEAD_TESTS)
    base = TestRun(parse_junit_xml(run_pytest_junit(base_dir)), 1, 0.1, "")
    head = TestRun(parse_junit_xml(run_pytest_junit(head_dir)), 1, 0.1, "")
    result = compare(base, head)
    assert result.regressions == [f"{MOD}::test_ok"]
    assert result.newly_passing == [f"{MOD}::test_broken"]
    assert result.still_failing == [
        f"{MOD}::TestGroup::test_param[2]",
        f"{MOD}::test_uses_fixture",
    ]
    assert result.added == {f"{MOD}::test_new": "passed"}
    assert result.removed == []
    assert result.has_regressions


def test_hostile_or_oversized_xml_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<testsuite><testcase name='&b;'/></testsuite>"
    )
    with pytest.raises(JUnitError, match="DOCTYPE"):
        parse_junit_xml(bomb)
    with pytest.raises(JUnitError, match="cap"):
        parse_junit_xml(b"<testsuite>" + b" " * MAX_JUNIT_BYTES + b"</testsuite>")
    with pytest.raises(JUnitError, match="parse"):
        parse_junit_xml(b"<testsuite><testcase")


def test_duplicate_ids_keep_the_worst_outcome():
    xml = (
        b"<testsuites><testsuite>"
        b"<testcase classname='m' name='t'/>"
        b"<testcase classname='m' name='t'><error message='teardown failed'/></testcase>"
        b"</testsuite></testsuites>"
    )
    assert parse_junit_xml(xml) == {"m::t": TestOutcome("m::t", "error", "teardown failed")}


def test_default_test_command(tmp_path: Path):
    assert default_test_command(tmp_path) is None
    write_project(tmp_path, BASE_TESTS)
    assert default_test_command(tmp_path) == ["python", "-m", "pytest"]


def test_baseline_cache_path_is_safe(tmp_path: Path):
    path = baseline_cache_path(tmp_path, "octo/../evil", "a" * 40, "python -m pytest")
    assert path.is_relative_to(tmp_path) and ".." not in path.parts
    with pytest.raises(ValueError):
        baseline_cache_path(tmp_path, "octo/x", "../../etc/passwd")


_no_bwrap = bwrap_works()


@pytest.mark.skipif(_no_bwrap is not None, reason=_no_bwrap or "")
async def test_baseline_run_in_sandbox_is_cached(tmp_path: Path, sandbox_run_as: str | None):
    # pytest is taken from this test process's own virtualenv, bound read-only like a prepared
    # environment, so the run needs no network.
    env = EnvInfo(Path(sys.prefix), SANDBOX_VENV, "test", True, "bwrap")
    ws = make_workspace(sandbox_run_as)
    try:
        write_project(ws, BASE_TESTS)
        grant_workspace(ws, sandbox_run_as)
        kwargs = {
            "cache_dir": tmp_path,
            "repo": "octo/sample",
            "commit": "b" * 40,
            "env": env,
            "run_as": sandbox_run_as,
            "timeout": 60,
        }
        run, hit = await baseline_run(ws, **kwargs)  # type: ignore[arg-type]
        assert not hit and run.junit_found, (run.junit_error, run.output)
        assert run.exit_code == 1
        assert run.outcomes[f"{MOD}::test_broken"].outcome == "failed"
        assert run.outcomes[f"{MOD}::test_ok"].outcome == "passed"
        assert len(run.outcomes) == 6
        # No cache or junit files were left behind in the workspace.
        assert not (ws / ".pytest_cache").exists()
        again, hit = await baseline_run(ws, **kwargs)  # type: ignore[arg-type]
        assert hit and again.outcomes == run.outcomes
    finally:
        shutil.rmtree(ws.parent, ignore_errors=True)


def _run(exit_code: int = 1, **outcomes: tuple[str, str]) -> TestRun:
    return TestRun(
        {k: TestOutcome(k, v[0], v[1]) for k, v in outcomes.items()},  # type: ignore[arg-type]
        exit_code,
        0.1,
        "",
    )


def test_one_definition_of_a_regression() -> None:
    base = _run(a=("passed", ""), b=("passed", ""), c=("passed", ""), d=("failed", ""))
    head = _run(a=("passed", ""), b=("skipped", "skipped by code under test"), d=("failed", ""))
    # Passed -> skipped and passed -> missing are regressions; a pre-existing failure is not.
    assert regressions(base, head) == ["b", "c"]
    assert regressions(base, head, ignore=["c"]) == ["b"]
    assert compare(base, head).regressions == ["b", "c"]


def test_a_suite_that_does_not_collect_is_not_a_baseline() -> None:
    broken = _run(
        2,
        **{
            "tests.test_app": (
                "error",
                "collection failure\nImportError while importing test module 'tests/test_app.py'"
                "\nE   ModuleNotFoundError: No module named 'requests'",
            )
        },
    )
    assert failed_to_collect(broken)
    assert collection_errors(broken)[0].test_id == "tests.test_app"
    assert failed_to_collect(_run(4))  # usage error: e.g. an addopts plugin is missing
    ok = _run(1, a=("passed", ""), b=("failed", "AssertionError"))
    assert not failed_to_collect(ok)
    assert not failed_to_collect(_run(5))  # no tests at all is an empty suite, not a failure


def test_frames_and_origin_of_a_failure() -> None:
    msg = (
        "NameError: name 'x' is not defined\ntests/test_a.py:3: in test_a\n    f()\n"
        "pkg/mod.py:9: in f\n    x\nE   NameError: name 'x' is not defined\npkg/mod.py:9: NameError"
    )
    assert frames(msg)[0] == "tests/test_a.py" and origin(msg) == "pkg/mod.py"
    native = 'Traceback:\n  File "/work/tests/t.py", line 2, in test\n  File "/work/p/m.py", line 5'
    assert origin(native) == "/work/p/m.py"
    assert origin("just text") is None
    long = "A" * 3000 + "\n" + "B" * 3000 + "\npkg/mod.py:9: NameError"
    clipped = clip_message(long)
    assert len(clipped) <= 4000 and clipped.startswith("A") and clipped.endswith("NameError")


def test_pytest_command_is_narrowed_or_extended(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tornado" / "test").mkdir(parents=True)
    (tmp_path / "tornado" / "test" / "web_test.py").write_text("")
    cmd = ["env", "PYTHONPATH=docs/src", "python", "-m", "pytest", "-k", "tests", "tests", "-q"]
    assert pytest_position(cmd) == 5
    assert shape_pytest_command(cmd, tmp_path, selection=["tests/test_x.py"]) == [
        "env", "PYTHONPATH=docs/src", "python", "-m", "pytest", "-k", "tests", "-q",
        "tests/test_x.py",
    ]  # fmt: skip
    mod = ["python", "-m", "pytest", "tornado/test/web_test.py"]
    own = "tornado/test/loopwright_issue_1_test.py"
    assert shape_pytest_command(mod, tmp_path, extra=[own]) == [*mod, own]
    assert shape_pytest_command(["make", "test"], tmp_path, selection=["x"]) == ["make", "test"]
    # No paths of its own: discovery finds the loop's files; naming them would narrow the run.
    assert shape_pytest_command(["pytest", "-q"], tmp_path, extra=[own]) == ["pytest", "-q"]
