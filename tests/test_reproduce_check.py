"""When is a new test a reproduction of the issue? Judged on the new test's own run; "broken
test" is decided by where the failure was raised, not by the exception's name."""

from __future__ import annotations

from bot.testresults import TestOutcome, TestRun
from loops.reproduce_check import (
    broken_test,
    exception_name,
    failure_kind,
    judge,
    matches_signal,
    reported_signals,
)

ISSUE = """parse_line("a,b,")[2] raises

    IndexError: list index out of range

(expected an AssertionError-free empty field)"""
TEST = "tests/test_loopwright_issue_1.py"


def run(**o: tuple[str, str]) -> TestRun:
    return TestRun(
        outcomes={k: TestOutcome(k, v[0], v[1]) for k, v in o.items()},  # type: ignore[arg-type]
        exit_code=1,
        duration_s=0.1,
        output="",
    )


def pytest_failure(exc_line: str, frames: list[str]) -> str:
    """A failure message as pytest's JUnit writer makes it: the message attribute, then the
    long traceback with `path:line: in func` frames and the final `path:line: ExcType`."""
    body = []
    for i, path in enumerate(frames):
        body += [f"{path}:{10 + i}: in f{i}", "    call()"]
    kind = exc_line.split(":")[0]
    body += [f"E   {exc_line}", f"{frames[-1]}:99: {kind}"]
    return exc_line + "\n" + "\n".join(body)


def test_signals_prefer_specific_exceptions() -> None:
    assert reported_signals(ISSUE) == ["IndexError", "AssertionError"]
    assert reported_signals("it just looks wrong") == []


def test_a_failure_for_the_reported_reason_is_a_reproduction() -> None:
    msg = pytest_failure("IndexError: list index out of range", [TEST, "calc/parse.py"])
    verdict = judge(["repro"], run(repro=("failed", msg)), reported_signals(ISSUE))
    assert verdict.ok and "IndexError" in verdict.reason


def test_name_error_raised_in_the_project_is_the_bug_not_a_broken_test() -> None:
    msg = pytest_failure(
        "NameError: name 'pbar' is not defined", [TEST, "/work/tqdm/std.py", "tqdm/utils.py"]
    )
    outcome = TestOutcome("repro", "failed", msg)
    assert broken_test(outcome, [TEST]) == ""
    verdict = judge(["repro"], run(repro=("failed", msg)), ["NameError"], test_files=[TEST])
    assert verdict.ok, verdict


def test_name_and_import_errors_raised_in_the_test_file_are_a_broken_test() -> None:
    for exc in ("NameError: name 'parse_lin' is not defined", "ImportError: cannot import x"):
        # An absolute path inside the jail still names the repository-relative test file.
        msg = pytest_failure(exc, [f"/work/{TEST}"])
        verdict = judge(["repro"], run(repro=("failed", msg)), [], test_files=[TEST])
        assert not verdict.ok and "test itself is broken" in verdict.reason, exc


def test_an_error_the_issue_quotes_is_the_reported_failure_wherever_it_is_raised() -> None:
    exc = "ImportError: cannot import name 'Widget' from 'shop' (/work/shop/__init__.py)"
    msg = pytest_failure(exc, [TEST])
    outcome = TestOutcome("repro", "failed", msg)
    assert broken_test(outcome, [TEST], issue_text="") != ""
    assert broken_test(outcome, [TEST], issue_text=f"I get\n\n    {exc}\n") == ""


def test_an_assertion_that_mentions_name_error_is_not_a_broken_test() -> None:
    msg = pytest_failure("AssertionError: assert 'NameError' not in out", [TEST])
    assert exception_name(msg) == "AssertionError"
    assert broken_test(TestOutcome("repro", "failed", msg), [TEST]) == ""


def test_collection_errors_of_the_test_file_and_of_the_project() -> None:
    in_test = (
        "collection failure\nImportError while importing test module '/work/tests/x.py'.\n"
        "Traceback:\n/usr/lib/python3.11/importlib/__init__.py:126: in import_module\n"
        f"    return _bootstrap._gcd_import(name[level:], package)\n{TEST}:3: in <module>\n"
        "    from calc import nope\nE   ImportError: cannot import name 'nope' from 'calc'"
    )
    assert exception_name(in_test) == "ImportError"
    assert broken_test(TestOutcome("repro", "error", in_test), [TEST])
    in_project = in_test.replace(
        "E   ImportError", "calc/__init__.py:7: in <module>\n    import missing\nE   ImportError"
    )
    assert broken_test(TestOutcome("repro", "error", in_project), [TEST]) == ""


def test_wrong_reason_passing_and_missing_tests_are_refused() -> None:
    signals = reported_signals(ISSUE)
    cases = {
        "not for the reported reason": run(repro=("failed", "KeyError: 'x'")),
        "passes on the base commit": run(repro=("passed", "")),
        "test itself is broken": run(repro=("error", "fixture 'client' not found")),
        "was not collected": run(other=("passed", "")),
    }
    for expected, head in cases.items():
        verdict = judge(["repro"], head, signals, test_files=[TEST])
        assert not verdict.ok and expected in verdict.reason, (expected, verdict)
    assert "collected no tests" in judge([], run(), signals).reason


def test_side_effects_on_other_tests_do_not_refuse_the_reproduction() -> None:
    # The new test's own run is what is judged; other tests failing in the same process (a
    # crash left global state behind) are the patch step's business: they must pass once fixed.
    head = run(
        repro=("failed", "IndexError: list index out of range"),
        t_other=("failed", "RuntimeError: a progress bar is still registered"),
    )
    assert judge(["repro"], head, reported_signals(ISSUE), test_files=[TEST]).ok


def test_a_failure_of_the_same_kind_or_a_timeout_for_a_hang_is_the_reported_reason() -> None:
    assert failure_kind("HTTPTimeoutError") == failure_kind("TimeoutError") == "timeout"
    assert failure_kind("KeyError") == "key" and failure_kind("UnicodeDecodeError") == "decode"
    timeout = "tornado.util.TimeoutError: Operation timed out after 5 seconds"
    assert matches_signal(timeout, ["HTTPTimeoutError"])
    # The user pressed Ctrl-C on a hang: a test that times out shows the same thing.
    assert matches_signal("Failed: Timeout >5.0s", ["KeyboardInterrupt"])
    assert not matches_signal("KeyError: 'x'", ["IndexError", "KeyboardInterrupt"])
    assert not matches_signal("UnicodeEncodeError: 'ascii'", ["UnicodeDecodeError"])


def test_the_reported_error_in_the_failing_tests_captured_log_counts() -> None:
    # tornado-style: the assertion fails in the test, the reported exception is logged by the
    # server handler it called, in the same test.
    outcome = TestOutcome(
        "repro",
        "failed",
        "AssertionError: 'bytes 10-3/26' != None",
        output="ERROR tornado.application: Uncaught exception\nValueError: read length",
    )
    head = TestRun({"repro": outcome}, 1, 0.1, "")
    assert judge(["repro"], head, ["OSError", "ValueError"], test_files=[TEST]).ok
    quiet = TestRun({"repro": TestOutcome("repro", "failed", "AssertionError: x")}, 1, 0.1, "")
    assert not judge(["repro"], quiet, ["OSError", "ValueError"], test_files=[TEST]).ok
