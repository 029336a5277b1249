"""Is a new test a reproduction? It must fail on base, for the reason the issue reports, without
disturbing the rest of the baseline. Pure decisions over test outcomes, shared by the reproduce
step and by re-test."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.testresults import TestOutcome, TestRun, compare

_EXC = re.compile(r"\b([A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning|Exit|Interrupt))\b")
# Failures that say the test itself is wrong, not the code under test.
_SELF_INFLICTED = re.compile(
    r"\b(?:SyntaxError|IndentationError|ModuleNotFoundError|ImportError|fixture '[^']+' not "
    r"found|NameError: name '[^']+' is not defined)\b"
)


def reported_signals(issue_text: str) -> list[str]:
    """Exception names the issue mentions (`IndexError`, `KeyError`…), most specific first."""
    found = list(dict.fromkeys(_EXC.findall(issue_text)))
    # A bare AssertionError says little; keep it, but after anything more specific.
    return sorted(found, key=lambda name: name == "AssertionError")


@dataclass(frozen=True)
class ReproVerdict:
    ok: bool
    reason: str


def judge(
    new_tests: Iterable[str], base: TestRun, with_repro: TestRun, signals: list[str]
) -> ReproVerdict:
    """Decide whether `new_tests`, run on the base code, reproduce the issue."""
    ids = list(new_tests)
    if not ids:
        return ReproVerdict(False, "the new test file collected no tests")
    if not with_repro.junit_found:
        return ReproVerdict(False, f"the run produced no test results ({with_repro.junit_error})")
    outcomes: list[TestOutcome] = []
    for tid in ids:
        outcome = with_repro.outcomes.get(tid)
        if outcome is None:
            return ReproVerdict(False, f"{tid} was not collected")
        outcomes.append(outcome)
    failing = [o for o in outcomes if o.outcome in ("failed", "error")]
    if not failing:
        return ReproVerdict(False, "the new test passes on the base commit: nothing reproduced")
    for o in failing:
        if _SELF_INFLICTED.search(o.message):
            return ReproVerdict(
                False,
                f"{o.test_id} fails because the test itself is broken: "
                f"{o.message.splitlines()[0][:200] if o.message else ''}",
            )
    if signals and not any(s in o.message for o in failing for s in signals):
        return ReproVerdict(
            False, f"fails, but not for the reported reason (expected {', '.join(signals)})"
        )
    cmp = compare(base, with_repro)
    if cmp.newly_failing or cmp.removed:
        return ReproVerdict(
            False,
            "the rest of the baseline changed: " + ", ".join((cmp.newly_failing + cmp.removed)[:5]),
        )
    why = failing[0].message.splitlines()[0][:200] if failing[0].message else failing[0].outcome
    return ReproVerdict(True, f"{failing[0].test_id} fails on base: {why}")
