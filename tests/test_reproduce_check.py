"""When is a new test a reproduction of the issue?"""

from __future__ import annotations

from bot.testresults import TestOutcome, TestRun
from loops.reproduce_check import judge, reported_signals

ISSUE = """parse_line("a,b,")[2] raises

    IndexError: list index out of range

(expected an AssertionError-free empty field)"""


def run(**o: tuple[str, str]) -> TestRun:
    return TestRun(
        outcomes={k: TestOutcome(k, v[0], v[1]) for k, v in o.items()},  # type: ignore[arg-type]
        exit_code=1,
        duration_s=0.1,
        output="",
    )


BASE = run(t_ok=("passed", ""), t_other=("passed", ""))


def test_signals_prefer_specific_exceptions() -> None:
    assert reported_signals(ISSUE) == ["IndexError", "AssertionError"]
    assert reported_signals("it just looks wrong") == []


def test_a_failure_for_the_reported_reason_is_a_reproduction() -> None:
    head = run(
        t_ok=("passed", ""),
        t_other=("passed", ""),
        repro=("failed", "IndexError: list index out of range"),
    )
    verdict = judge(["repro"], BASE, head, reported_signals(ISSUE))
    assert verdict.ok and "IndexError" in verdict.reason


def test_wrong_reason_passing_broken_test_and_disturbed_baseline_are_refused() -> None:
    signals = reported_signals(ISSUE)
    cases = {
        "not for the reported reason": run(
            t_ok=("passed", ""), t_other=("passed", ""), repro=("failed", "KeyError: 'x'")
        ),
        "passes on the base commit": run(
            t_ok=("passed", ""), t_other=("passed", ""), repro=("passed", "")
        ),
        "test itself is broken": run(
            t_ok=("passed", ""),
            t_other=("passed", ""),
            repro=("error", "ModuleNotFoundError: No module named 'x'"),
        ),
        "baseline changed": run(
            t_ok=("passed", ""),
            t_other=("failed", "boom"),
            repro=("failed", "IndexError: list index out of range"),
        ),
        "was not collected": run(t_ok=("passed", ""), t_other=("passed", "")),
    }
    for expected, head in cases.items():
        verdict = judge(["repro"], BASE, head, signals)
        assert not verdict.ok and expected in verdict.reason, (expected, verdict)
    assert not judge([], BASE, BASE, signals).ok
