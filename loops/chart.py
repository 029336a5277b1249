"""A loop as a declared chart of stages, run by one engine.

Each loop module declares its `Chart`: the ordered `Stage`s (deterministic or model, what each
reads and produces, its share of the budget, which of its results end the loop with which
exit), the exceptions that are typed exits rather than crashes, and how the outcome is
published. `run_chart` does the rest, the same for every loop:

- progress: the stage's phase on the terminal (`ctx.progress`) and its line in the loop's own
  sticky-comment section (the chart's `progress` renders it);
- stop requests: before a stage marked `stop_before`, a writer's `/loopwright stop` ends the
  loop `cancelled`;
- the budget and the spend caps: a model stage spends from the loop's `Budget` (each checks it
  before every call), a spend cap refuses the call (`CostCapReached`), and either ends the
  loop with its typed exit;
- exceptions: those the chart lists become typed exits (`Catch`), anything else is a crash the
  worker retries;
- resume: a stage with a typed `result` has it stored as JSON (`Store.save_stage_result`,
  redacted like every stored output) once it completes; when the worker runs the job again (a
  crash, a lapsed lease, an error), the stage is skipped and its result restored into the
  fresh run (`restore`: e.g. the reproduction's files written back into the new checkout and
  committed), so no model call is made twice. A stored result that no longer parses (the code
  changed between attempts) or that `restore` refuses (the base branch moved, the
  repository's config changed: `config_key`) runs the stage again, and every later one;
- publishing: the chart's `publish` renders the outcome, whatever ended the loop.

`docs/loops.md` holds each chart's table as `chart_markdown` renders it
(tests/test_chart.py checks it; `python bench/loop_charts.py --write` rewrites it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypeVar

from bot.forge import WRITE_PERMISSIONS
from bot.model import ModelUnavailable, Usage
from bot.store import Job, StepRecord
from bot.workspace import ProtectedPathError
from loops.engine import ExitReason, LoopContext, Outcome, run_so_far

Kind = Literal["deterministic", "model"]


class ChartState(Protocol):
    """What the runner reads and writes on a loop's state: how it ends, and what it spent."""

    exit: ExitReason
    detail: str
    usage: Usage
    models: list[str]


@dataclass(frozen=True)
class SpendMark:
    """What a state had spent at one moment (`spend_mark`), to tell a stage's own spend."""

    usage: Usage
    calls: int


def spend_mark(state: ChartState) -> SpendMark:
    return SpendMark(state.usage.copy(), len(state.models))


def spent_since(state: ChartState, mark: SpendMark) -> tuple[Usage, list[str]]:
    """The tokens and model calls `state` gained since `mark`: a stage's spend, to store."""
    return state.usage.minus(mark.usage), state.models[mark.calls :]


def add_spend(state: ChartState, usage: Usage, models: Sequence[str]) -> None:
    """Count spend made elsewhere (a stored stage's, a nested stage's) on `state`: it counts
    against the run's caps and shows in its comment."""
    state.usage.add(usage)
    state.models.extend(models)


class OnReport:
    """A loop's state whose end and tallies are those of the report it publishes."""

    report: ChartState

    @property
    def exit(self) -> ExitReason:
        return self.report.exit

    @exit.setter
    def exit(self, value: ExitReason) -> None:
        self.report.exit = value

    @property
    def detail(self) -> str:
        return self.report.detail

    @detail.setter
    def detail(self, value: str) -> None:
        self.report.detail = value

    @property
    def usage(self) -> Usage:
        return self.report.usage

    @usage.setter
    def usage(self, value: Usage) -> None:
        self.report.usage = value

    @property
    def models(self) -> list[str]:
        return self.report.models

    @models.setter
    def models(self, value: list[str]) -> None:
        self.report.models = value


S = TypeVar("S", bound=ChartState)
R = TypeVar("R", default=Any)


@dataclass(frozen=True)
class End:
    """A stage's result that ends the loop."""

    exit: ExitReason
    detail: str


@dataclass(frozen=True)
class Stage(Generic[S, R]):
    name: str
    kind: Kind
    #: What the stage reads (earlier stages' results, the issue, the config), for the reader.
    reads: tuple[str, ...]
    #: What it produces, in words (the type of `result` when it is stored).
    produces: str
    run: Callable[[S], Awaitable[R]]
    #: Its share of the loop's budget, in words ("" for a deterministic stage).
    budget: str = ""
    #: Which results end the loop, with which exit, in words; `end` decides it.
    ends: str = ""
    end: Callable[[S, R], End | None] | None = None
    #: The phase shown on the terminal before it runs.
    phase: str | None = None
    #: The line shown in the loop's sticky section before it runs.
    announce: Callable[[S], str] | None = None
    #: A writer's stop request seen before this stage ends the loop `cancelled`, saying this.
    stop_before: str | None = None
    #: The type of the stored result (None: not stored, the stage runs again on a retry).
    result: type[R] | None = None
    #: Puts a stored result back into a fresh run's state; False when it no longer applies
    #: (the stage then runs again).
    restore: Callable[[S, R], Awaitable[bool]] | None = None

    @property
    def resumable(self) -> bool:
        return self.result is not None and self.restore is not None


@dataclass(frozen=True)
class Catch:
    """An exception that ends the loop with a typed exit instead of crashing the job."""

    error: type[Exception]
    exit: ExitReason
    detail: Callable[[Any], str] = str
    #: Why it is an exit, not a crash (for the reader and docs/loops.md).
    why: str = ""
    #: The loop's tallies went with the exception: take the run's recorded usage instead.
    usage_so_far: bool = False


#: Every code-changing loop's: the push guard refused the branch (a protected path, a branch
#: outside `loopwright/*`).
PUSH_REFUSED = Catch(
    ProtectedPathError,
    ExitReason.PROTECTED_PATH,
    why="the push guard's refusal is an end of the loop, not a crash to retry",
)
#: Every model-calling loop's: the model endpoint gave no usable answer after its retries.
MODEL_UNAVAILABLE = Catch(ModelUnavailable, ExitReason.MODEL_ERROR)


@dataclass(frozen=True)
class Chart(Generic[S]):
    name: str
    stages: Sequence[Stage[S, Any]]
    #: Renders the outcome (labels, sticky comment, PR) from the final state.
    publish: Callable[[S], Awaitable[Outcome]]
    #: Writes one progress line into the loop's sticky section.
    progress: Callable[[S, str], Awaitable[None]] | None = None
    #: The line shown before the first stage (before the working copy is made).
    start: str | None = None
    #: What the stages run inside (e.g. the loop's working copy); entered after `start`.
    workspace: Callable[[S], AbstractAsyncContextManager[None]] | None = None
    catches: Sequence[Catch] = ()
    #: For docs/loops.md: what runs before the chart, what the stages run inside, what
    #: `publish` posts.
    before: str = ""
    inside: str = ""
    publishes: str = ""


def cancel_check(job: Job, ctx: LoopContext) -> Callable[[], Awaitable[bool]]:
    """True once a writer has asked to stop this issue's loops since the job was queued."""
    since = ctx.queued_at or time.time()
    refused: set[str] = set()

    async def cancelled() -> bool:
        if job.number is None:
            return False
        for who in await ctx.store.stop_requests(ctx.forge.repo, job.number, since):
            if who in refused:
                continue
            if await ctx.forge.permission(who) in WRITE_PERMISSIONS:
                await ctx.record(
                    StepRecord(name="stop", kind="deterministic", verdict="stopped", input=who)
                )
                return True
            refused.add(who)
        return False

    return cancelled


@dataclass
class _Resume:
    """The stored results of the job's earlier attempts (none on its first)."""

    job: Job
    stored: dict[str, Any] = field(default_factory=dict)

    @property
    def keeps(self) -> bool:
        # Local runs have no job row (id 0): nothing to resume from, nothing to store.
        return bool(self.job.id)


async def run_chart(
    chart: Chart[S],
    job: Job,
    ctx: LoopContext,
    state: S,
    *,
    cancelled: Callable[[], Awaitable[bool]] | None = None,
) -> Outcome:
    """Run the chart's stages in order on `state`, then publish."""
    resume = _Resume(job)
    if resume.keeps:
        # Whatever brought the job back (a crash, a lapsed lease, an error, a shutdown that
        # handed it back with its attempt refunded, a Retry on the dashboard).
        resume.stored = await ctx.store.stage_results(job.id)
    if chart.start and chart.progress:
        await chart.progress(state, chart.start)
    try:
        async with chart.workspace(state) if chart.workspace else nullcontext():
            for stage in chart.stages:
                end = await _run_stage(chart, stage, job, ctx, state, resume, cancelled)
                if end is not None:
                    state.exit, state.detail = end.exit, end.detail
                    break
    except Exception as exc:
        catch = next((c for c in chart.catches if isinstance(exc, c.error)), None)
        if catch is None:
            raise
        state.exit, state.detail = catch.exit, catch.detail(exc)
        if catch.usage_so_far:
            state.usage, state.models = await run_so_far(ctx)
    return await chart.publish(state)


async def _run_stage(
    chart: Chart[S],
    stage: Stage[S, Any],
    job: Job,
    ctx: LoopContext,
    state: S,
    resume: _Resume,
    cancelled: Callable[[], Awaitable[bool]] | None,
) -> End | None:
    if stage.stop_before is not None and cancelled is not None and await cancelled():
        return End(ExitReason.CANCELLED, stage.stop_before)
    result = await _restored(stage, ctx, state, resume)
    if result is None:
        if stage.phase:
            await ctx.progress(stage.phase)
        if stage.announce is not None and chart.progress is not None:
            await chart.progress(state, stage.announce(state))
        result = await stage.run(state)
        if stage.resumable:
            # What later stages stored was built on this stage's earlier result: they run
            # again (a deterministic stage that is not stored makes the same result again).
            resume.stored = {}
        if stage.resumable and resume.keeps:
            assert stage.result is not None
            await ctx.store.save_stage_result(
                job.id,
                stage.name,
                TypeAdapter(stage.result).dump_python(result, mode="json"),
                run_id=ctx.run_id,
            )
    return stage.end(state, result) if stage.end is not None else None


async def _restored(stage: Stage[S, Any], ctx: LoopContext, state: S, resume: _Resume) -> Any:
    """The stage's stored result, put back into `state`; None when the stage must run."""
    if not stage.resumable or stage.name not in resume.stored:
        return None
    assert stage.result is not None and stage.restore is not None
    try:
        result = TypeAdapter(stage.result).validate_python(resume.stored[stage.name])
    except ValidationError:
        # Stored by another version of the code: the stage runs again.
        return None
    if not await stage.restore(state, result):
        return None
    await ctx.record(
        StepRecord(
            name=f"resume:{stage.name}",
            kind="deterministic",
            verdict="restored",
            input=f"job {resume.job.id}, attempt {resume.job.attempts}",
            output=f"the result of an earlier attempt's {stage.name} stage",
        )
    )
    return result


# --- docs -------------------------------------------------------------------------------------


def chart_markdown(chart: Chart[Any]) -> str:
    """The chart as a table: what a reader of docs/loops.md sees of the declaration."""
    lines = []
    if chart.before:
        lines += [f"Before the stages: {chart.before}.", ""]
    if chart.inside:
        lines += [f"The stages run inside {chart.inside}.", ""]
    lines += [
        "| # | stage | kind | reads | produces | budget | ends the loop | on a retry |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, s in enumerate(chart.stages, 1):
        kind = "M" if s.kind == "model" else "D"
        ends = s.ends
        if s.stop_before:
            stop = f"a writer's stop before it → `cancelled` ({s.stop_before})"
            ends = f"{stop}; {ends}" if ends else stop
        retry = "restored" if s.resumable else "runs again"
        cells = [
            str(n),
            f"`{s.name}`",
            kind,
            ", ".join(s.reads) or "—",
            s.produces,
            s.budget or "—",
            ends or "—",
            retry,
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if chart.publishes:
        lines += ["", f"Then, whatever ended it, `publish`: {chart.publishes}."]
    if chart.catches:
        lines += ["", "Typed exits from exceptions (anything else is a crash, and retried):", ""]
        for c in chart.catches:
            lines.append(
                f"- `{c.error.__name__}` → `{c.exit.value}`" + (f": {c.why}" if c.why else "")
            )
    return "\n".join(lines)


def digest(value: Any) -> str:
    """A short digest of a JSON value (keys sorted): what a stored result was made from, to
    tell whether it still applies."""
    text = json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_key(ctx: LoopContext) -> str:
    """A digest of the repository's config as this run read it: a stored result made under
    another config (another test command, other budgets) does not apply."""
    return digest(ctx.config.model_dump(mode="json"))


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- chart:{name} -->", f"<!-- /chart:{name} -->"


def sync_doc(text: str, charts: Sequence[Chart[Any]]) -> str:
    """`text` (docs/loops.md) with each chart's block, between its markers, regenerated."""
    for chart in charts:
        start, stop = _markers(chart.name)
        head, found, rest = text.partition(start)
        if not found:
            raise ValueError(f"docs/loops.md has no {start} block")
        _, found, tail = rest.partition(stop)
        if not found:
            raise ValueError(f"docs/loops.md has no {stop} after {start}")
        text = f"{head}{start}\n{chart_markdown(chart)}\n{stop}{tail}"
    return text
