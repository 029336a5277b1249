"""The patch stage every code-changing loop runs (fix, CI repair, dependency migration): the
model edits source through the five actions until it calls `finish` (or runs out of turns);
each attempt is committed, scored and kept only if it beats the best so far
(`engine.keep_or_revert`), with escalation to the next patch model after failed attempts.

The stage knows no loop: the loop that runs it hands it a `PatchStage` — its prompt, its score,
the score to beat, its protected paths, the patch models and its own config section's turns,
patience and escalation (`fix:`, `ci:`, `deps:`). The fix loop's scoring (reproduction, held-out
variant, behaviour changes) and prompt are in `loops/fix_patch.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from bot.model import ModelOutputError, Usage
from bot.repo_config import PatchSettings
from bot.store import StepRecord
from bot.text import untrusted_block
from loops.checkout import Checkout
from loops.engine import (
    AttemptRecord,
    Budget,
    KeepRevertResult,
    LoopContext,
    Proposal,
    Score,
    Tally,
    keep_or_revert,
)
from loops.screen import screen_change
from loops.tools import PathPolicy, Toolbox, ToolBudgets

#: The action protocol every patch-style loop (fix, CI repair, migration) tells the model.
ACTIONS = """Reply with exactly one JSON action per turn:
{{"tool": "view", "path": "...", "start": 1, "end": 60}}
{{"tool": "search", "pattern": "regex"}}
{{"tool": "edit", "path": "...", "search": "exact old text", "replace": "new text"}}
{{"tool": "run_tests", "selection": [{selection}]}}
{{"tool": "finish", "summary": "what you changed and why"}}
You have at most {turns} actions in this attempt; call finish when the change is in place."""

#: Tool results older than this many turns are shortened in the conversation: every turn
#: re-sends the whole conversation, and an old `view` is rarely needed verbatim again.
KEEP_FULL_RESULTS = 2
#: An older action longer than this is re-sent with its long texts replaced by their length.
SHORT_ACTION_CHARS = 300
#: Per model call of a turn: the reply's token limit, and the share of a tool's output.
REPLY_TOKENS, TOOL_OUTPUT_TOKENS = 1200, 800

#: Scores the committed attempt: the score, and what was run to get it (the `score` step).
StageScoreFn = Callable[[], Awaitable[tuple[Score, str]]]


@dataclass(frozen=True)
class PatchStage:
    """The patch stage as the loop that runs it configures it; the stage reads no loop's
    settings itself."""

    #: What every attempt starts from: the loop's task, ending with `ACTIONS`.
    prompt: str
    score: StageScoreFn
    #: The workspace's score before any attempt: what an attempt must beat to be kept.
    base_score: Score
    #: Globs no edit may touch (the Toolbox refuses them).
    protected: list[str]
    #: The patch models, smallest first: the escalation list.
    models: list[str]
    #: Actions per attempt.
    max_turns: int
    #: Failed attempts with one model before the next of `models` takes over.
    attempts_per_model: int
    #: Attempts in a row that may fail to improve before `no_progress`.
    patience: int

    @classmethod
    def of(
        cls,
        ctx: LoopContext,
        section: PatchSettings,
        *,
        prompt: str,
        score: StageScoreFn,
        base_score: Score,
        protected: list[str],
    ) -> PatchStage:
        """The stage with a loop's own config section (`fix:`, `ci:` or `deps:`: turns,
        escalation, patience) and the operator's patch models (`LOOPWRIGHT_MODEL_PATCH`)."""
        return cls(
            prompt=prompt,
            score=score,
            base_score=base_score,
            protected=protected,
            models=ctx.settings.models_for("patch"),
            max_turns=section.max_turns,
            attempts_per_model=section.attempts_per_model,
            patience=section.patience,
        )


@dataclass
class PatchOutcome:
    result: KeepRevertResult | None = None
    usage: Usage = field(default_factory=Usage)
    models: list[str] = field(default_factory=list)
    summary: str = ""


async def screen_problem(co: Checkout, protected: list[str], ours: set[str]) -> str:
    """Why the working tree, as a whole against base (committed or not), must not be kept:
    protected paths it changes, or code that games the tests (`loops.screen`); "" if none.
    `ours` are the loop's own files (the reproduction), which it may add."""
    policy = PathPolicy(protected)
    changes = await co.ws.changes_vs_base()
    hits = screen_change(
        changes, protected=lambda p: None if p in ours else policy.match(p), allowed=ours
    )
    if not hits:
        return ""
    more = f" (and {len(hits) - 3} more)" if len(hits) > 3 else ""
    return "; ".join(h.describe() for h in hits[:3]) + more


def shorten_history(convo: list[dict[str, str]]) -> None:
    """Shorten, in place, what every later turn would re-send: the tool results (user turns
    after the first) and the model's own actions (an edit's search and replace texts) but the
    last few. The edits are already applied — the file shows them if the model looks again."""
    results = [i for i, m in enumerate(convo) if i > 0 and m["role"] == "user"]
    for i in results[:-KEEP_FULL_RESULTS]:
        text = convo[i]["content"]
        head = "\n".join(text.splitlines()[:2])
        if len(head) < len(text):
            convo[i] = {
                "role": "user",
                "content": head[:300] + "\n[… shortened; repeat the action to see it again]",
            }
    actions = [i for i, m in enumerate(convo) if m["role"] == "assistant"]
    for i in actions[:-KEEP_FULL_RESULTS]:
        convo[i] = {"role": "assistant", "content": _short_action(convo[i]["content"])}


def _short_action(text: str) -> str:
    if len(text) <= SHORT_ACTION_CHARS:
        return text
    try:
        action = json.loads(text)
    except ValueError:
        return text[:SHORT_ACTION_CHARS] + " […]"
    if not isinstance(action, dict):
        return text[:SHORT_ACTION_CHARS] + " […]"
    short = {
        k: (f"[{len(v)} chars, applied]" if isinstance(v, str) and len(v) > 80 else v)
        for k, v in action.items()
    }
    return json.dumps(short)


class _ActionReply(BaseModel):
    # Only "tool" is checked here; the arguments are validated by the Toolbox, whose errors go
    # back to the model as the action's result instead of costing a retry.
    model_config = ConfigDict(extra="allow")
    tool: str


@dataclass
class _Attempt:
    """One attempt in progress: its conversation and what it spent and was refused."""

    convo: list[dict[str, str]]
    model: str
    usage: Usage = field(default_factory=Usage)
    refusals: list[str] = field(default_factory=list)
    note: str = "no finish"


class _PatchAttempts:
    """The stage's three parts for the keep/revert driver: propose (the model's turns through
    the Toolbox), score (the loop's, recorded as a `score` step) and the `attempt` record."""

    def __init__(self, ctx: LoopContext, co: Checkout, stage: PatchStage, budget: Budget) -> None:
        self.ctx, self.stage, self.budget = ctx, stage, budget
        self.out = PatchOutcome()
        self.tally = Tally(ctx, self.out.usage, self.out.models)
        self.toolbox = Toolbox(
            co.ws,
            run_tests=co.run_tests,
            protected=stage.protected,
            budgets=ToolBudgets(output_tokens=TOOL_OUTPUT_TOKENS),
        )

    def _models(self, n: int) -> list[str]:
        """Escalation: `attempts_per_model` failed attempts per model, then the next one."""
        models = self.stage.models
        return models[min((n - 1) // self.stage.attempts_per_model, len(models) - 1) :]

    async def propose(self, n: int, feedback: str) -> Proposal:
        models = self._models(n)
        # The score's detail quotes test output, which the code under test controls.
        content = self.stage.prompt + (
            f"\n\nPrevious attempt:\n{untrusted_block('previous-attempt', feedback)}"
            if feedback
            else ""
        )
        attempt = _Attempt([{"role": "user", "content": content}], models[0])
        accepted_before = self.toolbox.stats.edits_accepted
        self.toolbox.finished, self.toolbox.summary = False, None
        for turn in range(1, self.stage.max_turns + 1):
            await self.ctx.progress(f"patch: attempt {n}, turn {turn} of {self.stage.max_turns}")
            if await self._turn(attempt, models, last=turn == self.stage.max_turns):
                break
        note = attempt.note
        if attempt.refusals:
            note = f"{note}; refused: {'; '.join(attempt.refusals[:2])}"
        changed = self.toolbox.stats.edits_accepted > accepted_before
        return Proposal(changed=changed, model=attempt.model, usage=attempt.usage, note=note)

    async def _turn(self, attempt: _Attempt, models: list[str], *, last: bool) -> bool:
        """One model action, dispatched and recorded; True when the attempt ends with it."""
        spent_before = self.out.usage.copy()
        try:
            reply = await self.ctx.model.structured(
                "patch",
                attempt.convo,
                _ActionReply,
                schema=self.toolbox.action_schema(),
                record=self.tally.record,
                max_tokens=REPLY_TOKENS,
                models=models,
            )
        except ModelOutputError as exc:
            attempt.usage.add(self.out.usage.minus(spent_before))
            attempt.note = f"invalid reply: {exc}"
            return True
        attempt.usage.add(self.out.usage.minus(spent_before))
        attempt.model = reply.model
        started = time.perf_counter()
        result = await self.toolbox.dispatch_text(reply.raw)
        if not result.ok and reply.value.tool == "edit":
            attempt.refusals.append(result.output.splitlines()[0][:120] if result.output else "")
        await self.ctx.record(
            StepRecord(
                name=f"tool:{reply.value.tool}",
                kind="deterministic",
                verdict="ok" if result.ok else "error",
                input=reply.raw[:2000],
                output=result.output[:2000],
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        if result.finished:
            attempt.note = (result.summary or "")[:300]
            self.out.summary = result.summary or self.out.summary
            return True
        if last:
            return True
        attempt.convo += [
            {"role": "assistant", "content": reply.raw[:4000]},
            {"role": "user", "content": f"Result of {reply.value.tool}:\n{result.output}"},
        ]
        shorten_history(attempt.convo)
        if self.budget.exhausted(0, pending=attempt.usage) is not None:
            attempt.note = "budget reached mid-attempt"
            return True
        return False

    async def score(self) -> Score:
        started = time.perf_counter()
        result, ran = await self.stage.score()
        await self.ctx.record(
            StepRecord(
                name="score",
                kind="deterministic",
                verdict="success" if result.success else "not yet",
                input=ran,
                output=result.detail,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return result

    async def record(self, a: AttemptRecord) -> None:
        await self.ctx.record(
            StepRecord(
                name=f"attempt {a.attempt}",
                kind="deterministic",
                verdict=a.verdict,
                model=None,
                input=a.note[:2000],
                output=f"score: {a.score}; commit {a.commit or '-'}",
                duration_ms=a.duration_s * 1000,
            )
        )


async def patch_stage(
    ctx: LoopContext,
    co: Checkout,
    stage: PatchStage,
    *,
    budget: Budget,
    cancelled: Callable[[], Awaitable[bool]] | None = None,
) -> PatchOutcome:
    """Model attempts through the Toolbox's actions, each committed, scored by the stage's
    score and kept or reverted by the one driver (`engine.keep_or_revert`), with the turns,
    escalation and patience the calling loop gave the stage."""
    attempts = _PatchAttempts(ctx, co, stage, budget)
    attempts.out.result = await keep_or_revert(
        co.ws,
        propose=attempts.propose,
        score=attempts.score,
        baseline=stage.base_score,
        budget=budget,
        patience=stage.patience,
        cancelled=cancelled,
        on_attempt=attempts.record,
    )
    return attempts.out
