"""Keep/revert over a real pygit2 workspace, and the budget that bounds it."""

from __future__ import annotations

from bot.model import Usage
from bot.workspace import Workspace
from loops.engine import Budget, ExitReason, Proposal, keep_or_revert
from tests.support.calc_workspace import BUGGY, budget, correctness, ws

__all__ = ["ws"]


async def test_worse_attempts_are_reverted_better_ones_kept_until_fixed(ws: Workspace) -> None:
    edits = [
        ("return a - b", "return a -"),  # breaks the file: reverted
        ("return a - b", "return a + b"),  # fixes add: kept
        ("return a + b\n\n\ndef mul", "return a * b\n\n\ndef mul"),  # breaks add again: reverted
        ("def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b"),  # fixed
    ]
    seen_feedback: list[str] = []

    async def propose(n: int, feedback: str) -> Proposal:
        seen_feedback.append(feedback)
        search, replace = edits[n - 1]
        await ws.edit("calc.py", search, replace)
        return Proposal(True, "scripted", Usage(1, 100, 20, 0.001), f"edit {n}")

    base = await correctness(ws)
    result = await keep_or_revert(
        ws, propose=propose, score=lambda: correctness(ws), baseline=base, budget=budget()
    )
    assert result.exit is ExitReason.FIXED
    assert [a.verdict for a in result.ledger.attempts] == ["reverted", "kept", "reverted", "kept"]
    assert "return a + b" in await ws.read_file("calc.py")
    assert "return a * b" in await ws.read_file("calc.py")
    assert seen_feedback[1].startswith("Attempt 1 was reverted: broken")
    table = result.ledger.to_markdown()
    assert table.count("\n") == 5 and "| 2 | scripted | 100+20 |" in table


async def test_budget_stops_the_loop_and_leaves_the_last_kept_state(ws: Workspace) -> None:
    async def propose(n: int, feedback: str) -> Proposal:
        await ws.write_file("calc.py", f"# attempt {n}\n" + BUGGY.replace("a - b", "a -"))
        return Proposal(True, "scripted", Usage(1, 10, 1, 0.0))

    base = await correctness(ws)
    result = await keep_or_revert(
        ws,
        propose=propose,
        score=lambda: correctness(ws),
        baseline=base,
        budget=budget(iterations=2),
        patience=10,
    )
    assert result.exit is ExitReason.BUDGET_EXHAUSTED and "2 of 2 attempts" in result.detail
    assert await ws.read_file("calc.py") == BUGGY
    assert await ws.diff() == ""


async def test_no_change_attempts_end_in_no_progress(ws: Workspace) -> None:
    async def propose(n: int, feedback: str) -> Proposal:
        return Proposal(False, "scripted", Usage(1, 10, 1, 0.0), "model gave up")

    base = await correctness(ws)
    result = await keep_or_revert(
        ws,
        propose=propose,
        score=lambda: correctness(ws),
        baseline=base,
        budget=budget(),
        patience=2,
    )
    assert result.exit is ExitReason.NO_PROGRESS
    assert [a.verdict for a in result.ledger.attempts] == ["no_change", "no_change"]


async def test_token_budget_and_cancellation(ws: Workspace) -> None:
    async def greedy(n: int, feedback: str) -> Proposal:
        return Proposal(False, "big", Usage(1, 6_000, 0, 0.0))

    tight = Budget(max_iterations=10, max_tokens=10_000, max_cost_usd=1.0, wall_clock_seconds=600)
    result = await keep_or_revert(
        ws,
        propose=greedy,
        score=lambda: correctness(ws),
        baseline=await correctness(ws),
        budget=tight,
        patience=10,
    )
    assert result.exit is ExitReason.BUDGET_EXHAUSTED and "tokens" in result.detail
    assert len(result.ledger.attempts) == 2

    async def stop() -> bool:
        return True

    result = await keep_or_revert(
        ws,
        propose=greedy,
        score=lambda: correctness(ws),
        baseline=await correctness(ws),
        budget=budget(),
        cancelled=stop,
    )
    assert result.exit is ExitReason.CANCELLED and result.ledger.attempts == []


def test_budget_counts_spending_not_charged_yet() -> None:
    budget = Budget(max_iterations=5, max_tokens=1000, max_cost_usd=1.0, wall_clock_seconds=60)
    budget.charge(Usage(1, 600, 100, 0.1))
    assert budget.exhausted(1) is None
    # An attempt in progress has spent 400 more: a mid-attempt check must see it.
    assert budget.exhausted(1, pending=Usage(2, 350, 50, 0.0)) == "1100 of 1000 tokens used"
    assert budget.exhausted(1, pending=Usage(1, 0, 0, 0.95)) == "$1.0500 of $1.00 spent"


async def test_max_attempts_without_budget_or_patience(ws: Workspace) -> None:
    """One deterministic attempt (the CI loop's fixers): no budget, no patience, one try; an
    improvement that is not a success is kept and is the best the next stage must beat."""

    async def propose(n: int, feedback: str) -> Proposal:
        await ws.edit("calc.py", "return a - b", "return a + b")  # fixes add only
        return Proposal(True)

    base = await correctness(ws)
    result = await keep_or_revert(
        ws,
        propose=propose,
        score=lambda: correctness(ws),
        baseline=base,
        budget=None,
        patience=None,
        max_attempts=1,
    )
    assert result.exit is ExitReason.NO_PROGRESS and result.detail == "1 of 1 attempts made"
    assert [a.verdict for a in result.ledger.attempts] == ["kept"]
    assert result.best.value == (1.0,) and "return a + b" in await ws.read_file("calc.py")


async def test_uncounted_attempts_and_the_loops_own_feedback(ws: Workspace) -> None:
    """The reproduction's written tests: they do not count against `max_iterations` (the
    tokens still do), and each attempt is told what the loop says, not the default line."""
    seen: list[str] = []

    async def propose(n: int, feedback: str) -> Proposal:
        seen.append(feedback)
        await ws.write_file("calc.py", BUGGY.replace("a - b", "a -"))
        return Proposal(True, "m", Usage(1, 10, 1, 0.0), f"note {n}")

    one = Budget(max_iterations=1, max_tokens=10_000, max_cost_usd=1.0, wall_clock_seconds=600)
    result = await keep_or_revert(
        ws,
        propose=propose,
        score=lambda: correctness(ws),
        baseline=await correctness(ws),
        budget=one,
        counts_iterations=False,
        patience=None,
        max_attempts=3,
        feedback=lambda a, now: f"try {a.attempt + 1}: {now.detail}",
    )
    assert result.exit is ExitReason.NO_PROGRESS and result.detail == "3 of 3 attempts made"
    assert seen == ["", "try 2: broken: SyntaxError", "try 3: broken: SyntaxError"]
    assert await ws.read_file("calc.py") == BUGGY
