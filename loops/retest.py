"""Re-test: run the same tests several times on base and head and tell real from flaky.

A fix that passes only some of the time is not a fix; a test that fails only some of the time on
base was never a reproduction.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from bot.testresults import TestRun

PASSING = frozenset({"passed"})


class Verdict(enum.StrEnum):
    FIXED = "fixed"  # fails every time on base, passes every time on head
    STILL_FAILING = "still_failing"  # fails every time on head
    FLAKY_HEAD = "flaky_head"  # passes only some of the time on head
    FLAKY_BASE = "flaky_base"  # did not fail every time on base: not a reliable reproduction
    PASSING = "passing"  # passes every time on base and head
    MISSING = "missing"  # not reported by some run (not collected, crashed run)


@dataclass(frozen=True)
class TestVerdict:
    __test__ = False

    test_id: str
    verdict: Verdict
    base_passes: int
    head_passes: int
    runs: int


def passes(runs: Sequence[TestRun], test_id: str) -> int | None:
    """How many runs passed the test; None if any run did not report it."""
    count = 0
    for run in runs:
        outcome = run.outcomes.get(test_id)
        if outcome is None:
            return None
        count += outcome.outcome in PASSING
    return count


def classify(
    test_ids: Sequence[str], base_runs: Sequence[TestRun], head_runs: Sequence[TestRun]
) -> list[TestVerdict]:
    verdicts = []
    for tid in test_ids:
        b, h = passes(base_runs, tid), passes(head_runs, tid)
        nb, nh = len(base_runs), len(head_runs)
        if b is None or h is None:
            v = Verdict.MISSING
        elif 0 < h < nh:
            v = Verdict.FLAKY_HEAD
        elif h == 0:
            v = Verdict.STILL_FAILING
        elif b == nb:
            v = Verdict.PASSING
        elif b == 0:
            v = Verdict.FIXED
        else:
            v = Verdict.FLAKY_BASE
        verdicts.append(TestVerdict(tid, v, b or 0, h or 0, max(nb, nh)))
    return verdicts


def is_real_fix(verdicts: Sequence[TestVerdict], must_be_fixed: Sequence[str]) -> bool:
    """Every reproduction is fixed reliably and nothing else is worse than it was."""
    by_id = {v.test_id: v for v in verdicts}
    if not must_be_fixed:
        return False
    if any(t not in by_id or by_id[t].verdict is not Verdict.FIXED for t in must_be_fixed):
        return False
    return all(neutral_or_better(v) for v in by_id.values())


def neutral_or_better(v: TestVerdict) -> bool:
    """Fixed, passing, flaky only on base — or a pre-existing failure that fails exactly as
    it did on base (every run on both): neutral, it neither sinks nor helps a fix."""
    if v.verdict in (Verdict.FIXED, Verdict.PASSING, Verdict.FLAKY_BASE):
        return True
    return v.verdict is Verdict.STILL_FAILING and v.base_passes == 0


def to_markdown(verdicts: Sequence[TestVerdict]) -> str:
    lines = ["| test | base passes | head passes | verdict |", "|---|---|---|---|"]
    for v in verdicts:
        lines.append(
            f"| `{v.test_id}` | {v.base_passes}/{v.runs} | {v.head_passes}/{v.runs} | "
            f"{v.verdict.value} |"
        )
    return "\n".join(lines)
