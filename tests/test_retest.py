"""Flaky-vs-real classification over repeated runs."""

from __future__ import annotations

from bot.testresults import TestOutcome, TestRun
from loops.retest import Verdict, classify, is_real_fix, to_markdown


def run(**outcomes: str) -> TestRun:
    return TestRun(
        outcomes={k: TestOutcome(k, v) for k, v in outcomes.items()},  # type: ignore[arg-type]
        exit_code=0,
        duration_s=0.1,
        output="",
    )


def test_real_fix_flaky_fix_and_regression() -> None:
    base = [run(repro="failed", other="passed", flaky="passed") for _ in range(3)]
    head = [
        run(repro="passed", other="passed", flaky="passed"),
        run(repro="passed", other="passed", flaky="failed"),
        run(repro="passed", other="passed", flaky="passed"),
    ]
    verdicts = {v.test_id: v.verdict for v in classify(["repro", "other", "flaky"], base, head)}
    assert verdicts == {
        "repro": Verdict.FIXED,
        "other": Verdict.PASSING,
        "flaky": Verdict.FLAKY_HEAD,
    }
    assert not is_real_fix(classify(["repro", "other", "flaky"], base, head), ["repro"])
    assert is_real_fix(classify(["repro", "other"], base, head), ["repro"])


def test_fix_that_passes_only_some_runs_is_not_a_fix() -> None:
    base = [run(repro="failed")] * 3
    head = [run(repro="passed"), run(repro="failed"), run(repro="passed")]
    [v] = classify(["repro"], base, head)
    assert v.verdict is Verdict.FLAKY_HEAD and (v.base_passes, v.head_passes) == (0, 2)
    assert not is_real_fix([v], ["repro"])
    assert "| `repro` | 0/3 | 2/3 | flaky_head |" in to_markdown([v])


def test_unreliable_reproduction_and_missing_tests() -> None:
    base = [run(repro="failed"), run(repro="passed")]
    head = [run(repro="passed"), run(repro="passed")]
    assert classify(["repro"], base, head)[0].verdict is Verdict.FLAKY_BASE
    assert classify(["gone"], base, head)[0].verdict is Verdict.MISSING
    assert classify(["repro"], base, [run(repro="error")] * 2)[0].verdict is Verdict.STILL_FAILING


def test_pre_existing_failures_are_neutral_when_unchanged() -> None:
    base = [run(repro="failed", old="failed")] * 3
    head = [run(repro="passed", old="failed")] * 3
    verdicts = classify(["repro", "old"], base, head)
    assert [v.verdict for v in verdicts] == [Verdict.FIXED, Verdict.STILL_FAILING]
    assert is_real_fix(verdicts, ["repro"])
    # ...but a test that sometimes passed on base and now never does got worse.
    base = [run(repro="failed", old="passed"), *[run(repro="failed", old="failed")] * 2]
    assert not is_real_fix(classify(["repro", "old"], base, head), ["repro"])
    # A reproduction that is not in the verdicts at all is no fix either.
    assert not is_real_fix(classify(["old"], base, head), ["repro"])
