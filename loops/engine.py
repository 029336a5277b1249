"""What every loop shares: its context, typed exits, step records, and the common preamble
(authorise the trigger, acknowledge, load the repository's config) that runs before a loop."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar

from bot.costs import CAPS_STEP, CostGuard, caps_record, run_usage
from bot.forge import WRITE_PERMISSIONS, PullRef
from bot.model import CostCapReached, ModelClient, Usage
from bot.repo_config import CONFIG_PATH, BudgetConfig, ConfigError, RepoConfig, parse_config
from bot.settings import Settings
from bot.store import Job, StepRecord, Store
from loops.checkout import Checkout, CodeHost
from loops.ports import CIPort, Forge, IssuePort, LoopPort, PullPort

log = logging.getLogger("loopwright.engine")


class ExitReason(enum.StrEnum):
    DONE = "done"
    DISABLED = "disabled"
    UNAUTHORIZED = "unauthorized"
    CONFIG_ERROR = "config_error"
    MODEL_ERROR = "model_error"
    # Shared with the code-changing loops built on this engine.
    FIXED = "fixed"
    NOT_REPRODUCED = "not_reproduced"
    BUDGET_EXHAUSTED = "budget_exhausted"
    NO_PROGRESS = "no_progress"
    SANDBOX_ERROR = "sandbox_error"
    PROTECTED_PATH = "protected_path"
    CANCELLED = "cancelled"
    #: A candidate fix that passed once but not on every re-test run.
    FLAKY = "flaky"
    #: The project could not be prepared: no test command, or a suite that does not collect.
    SETUP_ERROR = "setup_error"
    #: A candidate fix that makes the reproduction and the held-out variant pass but changes
    #: what some existing tests expect: a draft PR for a maintainer to decide, never `fixed`.
    BEHAVIOUR_CHANGE = "behaviour_change"
    #: Stopped before a model call: a spend cap (repository or installation, day or month)
    #: is reached (`bot.costs`).
    COST_CAP = "cost_cap"
    #: A classifier was not trained: too little labelled history (or it cannot be learnt); the
    #: triage model step keeps deciding (`loops.learn`).
    NOT_ENOUGH_DATA = "not_enough_data"

    @property
    def succeeded(self) -> bool:
        return self in (ExitReason.DONE, ExitReason.FIXED)


@dataclass
class Outcome:
    exit: ExitReason
    detail: str = ""
    posted: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


#: The port a loop's context holds (`loops.ports`); a bare `LoopContext` holds the one every
#: loop has, so a helper that needs no more takes any loop's context.
P = TypeVar("P", bound=LoopPort, covariant=True, default=LoopPort)
#: Some port, the same one in a loop and in the context it is run with.
Q = TypeVar("Q", bound=LoopPort)


@dataclass
class LoopContext(Generic[P]):
    settings: Settings
    store: Store
    #: What the loop may do to the outside world: its port, nothing more.
    forge: P
    model: ModelClient
    run_id: int
    config: RepoConfig = field(default_factory=RepoConfig)
    dry_run: bool = False
    #: Working copies and pushes, for the loops that change code (None: this loop cannot).
    code: CodeHost | None = None
    #: When the job was queued: stop requests from then on apply to this run.
    queued_at: float = 0.0
    #: Where phase changes go as they happen (the terminal in local mode); None: nowhere.
    on_progress: Callable[[str], None] | None = None
    #: The run's spend caps, checked by `model` before every call; `execute` installs the
    #: repository's own caps once its config is read. None: no caps checked.
    costs: CostGuard | None = None

    async def record(self, step: StepRecord) -> None:
        await self.store.record_step(self.run_id, step)

    async def progress(self, text: str) -> None:
        """Tell whoever watches (a terminal) which phase the loop is in."""
        if self.on_progress is not None:
            self.on_progress(text)

    async def deterministic(
        self, name: str, fn: Callable[[], Awaitable[Any]], *, describe_input: str = ""
    ) -> Any:
        """Run and record a deterministic step; the output is stored as its repr, capped."""
        started = time.perf_counter()
        try:
            result = await fn()
        except Exception as exc:
            await self.record(
                StepRecord(
                    name=name,
                    kind="deterministic",
                    verdict=f"error: {type(exc).__name__}",
                    input=describe_input,
                    output=str(exc)[:2000],
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            )
            raise
        await self.record(
            StepRecord(
                name=name,
                kind="deterministic",
                verdict="ok",
                input=describe_input,
                output=repr(result)[:4000],
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return result


@dataclass
class Tally:
    """A recorder for model calls: records each step in the run and adds up the usage and the
    models the steps report (into lists the caller may own, e.g. a result object's fields)."""

    ctx: LoopContext
    usage: Usage = field(default_factory=Usage)
    models: list[str] = field(default_factory=list)

    async def record(self, step: StepRecord) -> None:
        if step.kind == "model":
            self.usage.add(Usage(1, step.prompt_tokens, step.completion_tokens, step.cost))
        if step.model:
            self.models.append(step.model)
        await self.ctx.record(step)


#: The context of each kind of loop: the one port it asks for (`loops.ports`).
IssueContext = LoopContext[IssuePort]
PullContext = LoopContext[PullPort]
CIContext = LoopContext[CIPort]

#: A loop, as the runner holds it: run with a forge that implements every port.
LoopFn = Callable[[Job, LoopContext[Forge]], Awaitable[Outcome]]
#: A loop whose context asks only for the issue port (what local mode's forge implements).
IssueLoopFn = Callable[[Job, IssueContext], Awaitable[Outcome]]


#: The most of a kept diff a `diff` step stores (the PR holds the whole of it).
DIFF_STEP_CAP = 200_000


async def push_and_open_pull(
    ctx: LoopContext, co: Checkout, *, base: str, title: str, body: str, diff: str
) -> PullRef:
    """The code-changing loops' last step: force-push the job's `loopwright/*` branch and open
    (or edit) its one draft PR into `base`, all recorded: the diff that goes out (the run page
    of the dashboard shows it; `diff` is the loop's own `co.ws.diff()` of the tree it screened
    last), the push, the PR."""
    await ctx.record(
        StepRecord(
            name="diff",
            kind="deterministic",
            verdict="kept",
            input=f"{co.ws.branch} into {base}",
            output=diff[:DIFF_STEP_CAP],
        )
    )
    sha = await co.push()
    await ctx.record(
        StepRecord(
            name="push",
            kind="deterministic",
            verdict="ok" if sha else "skipped",
            input=co.ws.branch,
            output=sha or "no push (local mode)",
        )
    )
    pull = await ctx.forge.upsert_draft_pull(head=co.ws.branch, base=base, title=title, body=body)
    await ctx.record(
        StepRecord(
            name="draft_pr",
            kind="deterministic",
            verdict="created" if pull.created else "updated",
            output=pull.url,
        )
    )
    return pull


def cost_cap_note(exc: CostCapReached) -> str:
    """What a sticky comment says when a spend cap stopped the loop."""
    why = str(exc)
    return (
        f"💸 loopwright stopped before a model call (`cost_cap`). {why[:1].upper()}{why[1:]}."
        "\n\nNothing more is spent on this until the cap frees up: trigger the loop again then, "
        "or raise the cap (the operator's `LOOPWRIGHT_COST_CAP_*_USD`; `costs:` in "
        "`.github/loopwright.yml` can only lower it)."
    )


async def run_so_far(ctx: LoopContext) -> tuple[Usage, list[str]]:
    """What the run's recorded model calls used, and their models (for the comment of a loop
    that stopped part-way, whose own tallies went with the exception)."""
    return await run_usage(ctx.store, ctx.run_id)


def format_footer(ctx: LoopContext, usage: Usage, models: list[str]) -> str:
    model = ", ".join(dict.fromkeys(models)) or "none"
    return (
        f"<sub>loopwright · model `{model}` · {usage.prompt_tokens} prompt + "
        f"{usage.completion_tokens} completion tokens · ${usage.cost:.4f} · run #{ctx.run_id}</sub>"
    )


async def execute(
    loop: str,
    fn: Callable[[Job, LoopContext[Q]], Awaitable[Outcome]],
    job: Job,
    ctx: LoopContext[Q],
) -> Outcome:
    """The preamble every loop gets, then the loop itself.

    Authorisation happens here, in the worker, not at intake: intake must answer GitHub before
    making any API call, and the permission check is one.
    """
    number = job.number
    requester = job.payload.get("requires_write_from")
    if requester:
        perm = await ctx.forge.permission(str(requester))
        await ctx.record(
            StepRecord(
                name="authorize",
                kind="deterministic",
                verdict="allowed" if perm in WRITE_PERMISSIONS else "denied",
                input=str(requester),
                output=perm,
            )
        )
        if perm not in WRITE_PERMISSIONS:
            log.info("ignoring /loopwright %s from %s (permission %s)", loop, requester, perm)
            return Outcome(ExitReason.UNAUTHORIZED, f"{requester} has {perm} permission")
    if number is not None:
        await ctx.forge.add_reaction(number, "eyes")
    text = await ctx.forge.read_file(CONFIG_PATH)
    try:
        ctx.config = parse_config(text)
    except ConfigError as exc:
        await ctx.record(
            StepRecord(
                name="config",
                kind="deterministic",
                verdict="invalid",
                input=CONFIG_PATH,
                output="\n".join(exc.problems),
            )
        )
        if number is not None:
            problems = "\n".join(f"- {p}" for p in exc.problems)
            # The complaint lives in the loop's own section, so the next good run replaces it.
            await ctx.forge.upsert_sticky(
                number,
                loop,
                (
                    f"**loopwright could not run `{loop}`: `{CONFIG_PATH}` is invalid.**\n\n"
                    f"{problems}\n\nFix the file on the default branch; `loopwright config-schema` "
                    f"prints the full schema.\n\n<sub>run #{ctx.run_id}</sub>"
                ),
            )
        return Outcome(ExitReason.CONFIG_ERROR, "; ".join(exc.problems))
    if ctx.costs is not None:
        ctx.costs.repo_costs = ctx.config.costs
        caps = ctx.costs.caps()
        if caps:
            clamped = any(c.clamped_from is not None for c in caps)
            await ctx.record(
                StepRecord(
                    name=CAPS_STEP,
                    kind="deterministic",
                    verdict="clamped" if clamped else "ok",
                    input="; ".join(f"{c.scope} {c.window}: {c.describe()}" for c in caps),
                    output=caps_record(caps, ctx.config.costs),
                )
            )
    if not getattr(ctx.config.loops, loop, True):
        return Outcome(ExitReason.DISABLED, f"loops.{loop} is off in {CONFIG_PATH}")
    try:
        return await fn(job, ctx)
    except CostCapReached as exc:
        # The loops that report more (fix, ci_repair, deps) end on the cap themselves; any
        # other says so in its own sticky section.
        usage, models = await run_so_far(ctx)
        if number is not None:
            await ctx.forge.upsert_sticky(
                number,
                loop,
                f"### loopwright {loop}\n\n{cost_cap_note(exc)}\n\n"
                + format_footer(ctx, usage, models),
            )
        return Outcome(ExitReason.COST_CAP, str(exc), usage=usage)


# --- budgets and keep/revert ---------------------------------------------------------------------


class Budget:
    """Caps on one loop: iterations, tokens, cost and wall clock (from `budgets:` in the config)."""

    def __init__(
        self,
        *,
        max_iterations: int,
        max_tokens: int,
        max_cost_usd: float,
        wall_clock_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_iterations = max_iterations
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self.wall_clock_seconds = wall_clock_seconds
        self._clock = clock
        self._started = clock()
        self.usage = Usage()

    @classmethod
    def from_config(cls, cfg: BudgetConfig, **kw: Any) -> Budget:
        return cls(
            max_iterations=cfg.max_iterations,
            max_tokens=cfg.max_tokens,
            max_cost_usd=cfg.max_cost_usd,
            wall_clock_seconds=cfg.wall_clock_seconds,
            **kw,
        )

    def charge(self, usage: Usage) -> None:
        self.usage.add(usage)

    def remaining_tokens(self, pending: Usage | None = None) -> int:
        spent = self.usage.copy()
        if pending is not None:
            spent.add(pending)
        return max(0, self.max_tokens - spent.prompt_tokens - spent.completion_tokens)

    def exhausted(self, iterations: int, pending: Usage | None = None) -> str | None:
        """Which cap is reached, in words, or None while there is room for another attempt.

        `pending` is spending not charged yet (the attempt in progress), so a check mid-attempt
        sees it too.
        """
        spent = self.usage.copy()
        if pending is not None:
            spent.add(pending)
        tokens = spent.prompt_tokens + spent.completion_tokens
        if iterations >= self.max_iterations:
            return f"{iterations} of {self.max_iterations} attempts used"
        if tokens >= self.max_tokens:
            return f"{tokens} of {self.max_tokens} tokens used"
        if spent.cost >= self.max_cost_usd:
            return f"${spent.cost:.4f} of ${self.max_cost_usd:.2f} spent"
        elapsed = self._clock() - self._started
        if elapsed >= self.wall_clock_seconds:
            return f"{elapsed:.0f}s of {self.wall_clock_seconds:.0f}s wall clock used"
        return None


@dataclass(frozen=True)
class Score:
    """How good the workspace is now. `value` compares lexicographically, higher is better;
    `success` is the loop's stop condition (e.g. the repro passes and nothing regressed)."""

    value: tuple[float, ...]
    success: bool
    detail: str = ""
    #: Not a success, but an acceptable end (e.g. a behaviour change for a human to decide):
    #: once it is the best, one more attempt that does not beat it ends the loop.
    settled: bool = False


@dataclass(frozen=True)
class Proposal:
    """What one attempt did to the workspace before it is scored."""

    changed: bool
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    note: str = ""


@dataclass(frozen=True)
class AttemptRecord:
    attempt: int
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    score: str
    verdict: str  # kept | reverted | no_change | error
    duration_s: float
    commit: str | None = None
    note: str = ""


@dataclass
class Ledger:
    attempts: list[AttemptRecord] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [
            "| # | model | tokens | cost | score | verdict | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for a in self.attempts:
            lines.append(
                f"| {a.attempt} | {a.model or '-'} | {a.prompt_tokens}+{a.completion_tokens} | "
                f"${a.cost:.4f} | {a.score} | {a.verdict} | {a.note.replace('|', '/')[:80]} |"
            )
        return "\n".join(lines)


class Revertible(Protocol):
    async def commit(self, message: str) -> str | None: ...
    async def keep(self, message: str | None = None) -> str: ...
    async def reset_to_last_kept(self) -> str: ...
    async def restore(self, commit: str) -> str: ...


@dataclass
class KeepRevertResult:
    exit: ExitReason
    best: Score
    ledger: Ledger
    detail: str = ""


ProposeFn = Callable[[int, str], Awaitable[Proposal]]
ScoreFn = Callable[[], Awaitable[Score]]
#: What the next attempt is told about the last one (its record and its score).
FeedbackFn = Callable[[AttemptRecord, Score], str]


def attempt_feedback(record: AttemptRecord, now: Score) -> str:
    """The default feedback: the last attempt's verdict, its score's detail and its note."""
    return (
        f"Attempt {record.attempt} was {record.verdict}"
        + (f": {now.detail}" if now.detail and record.verdict != "no_change" else "")
        + (f" ({record.note})" if record.note else "")
    )


async def keep_or_revert(
    ws: Revertible,
    *,
    propose: ProposeFn,
    score: ScoreFn,
    baseline: Score,
    budget: Budget | None,
    patience: int | None = 3,
    max_attempts: int | None = None,
    counts_iterations: bool = True,
    cancelled: Callable[[], Awaitable[bool]] | None = None,
    on_attempt: Callable[[AttemptRecord], Awaitable[None]] | None = None,
    feedback: FeedbackFn = attempt_feedback,
) -> KeepRevertResult:
    """The one keep/revert driver: every attempt loop of the code-changing loops (the patch
    stage, the reproduction's written tests, the CI loop's deterministic fixers) goes through it.

    Each attempt is proposed (`propose(n, feedback)` changes the workspace), committed
    (`ws.commit`; a `Revertible` that judges its attempts before committing them, as the
    reproduction does, commits nothing there), scored; it is kept only if its score beats the
    best so far, otherwise the workspace goes back to the last kept state. A better score that
    is only `settled` (an acceptable end, not a success) is remembered but not built on: the
    next attempt starts from the last kept commit again, and the settled commit is checked out
    when the loop ends without a success. Stops on success, on the budget (`budget`: None for
    attempts that spend nothing; with `counts_iterations` False the attempts do not count
    against its `max_iterations`), after `patience` attempts in a row that did not improve
    (one, once the best is settled; None: no such limit), after `max_attempts`, when cancelled
    between attempts, or when a spend cap refuses a model call (`cost_cap`: the attempt in
    progress is reverted). `on_attempt` records each attempt as the loop wants it recorded;
    `feedback` says what the next attempt is told.
    """
    run = _Attempts(ws, score, best=baseline)
    notes = ""
    stale = n = 0
    while True:
        if cancelled is not None and await cancelled():
            return await run.end(ExitReason.CANCELLED, "stopped on request")
        reason = budget.exhausted(n if counts_iterations else 0) if budget is not None else None
        if reason:
            return await run.end(ExitReason.BUDGET_EXHAUSTED, reason)
        n += 1
        started = time.perf_counter()
        try:
            proposal = await propose(n, notes)
        except CostCapReached as exc:
            # Refused before a model call: the attempt's partial edits go, the ledger stays.
            await ws.reset_to_last_kept()
            return await run.end(ExitReason.COST_CAP, str(exc))
        if budget is not None:
            budget.charge(proposal.usage)
        record, now = await run.judge(n, proposal, started)
        if on_attempt is not None:
            await on_attempt(record)
        best = run.best
        if record.verdict == "kept" and best.success:
            return KeepRevertResult(ExitReason.FIXED, best, run.ledger, best.detail)
        stale = 0 if record.verdict == "kept" else stale + 1
        limit = 1 if best.settled else patience
        if limit is not None and stale >= limit:
            return await run.end(
                ExitReason.NO_PROGRESS, f"{stale} attempts in a row did not improve"
            )
        if max_attempts is not None and n >= max_attempts:
            return await run.end(ExitReason.NO_PROGRESS, f"{n} of {max_attempts} attempts made")
        notes = feedback(record, now)


class _Attempts:
    """The driver's state: the best score so far, the ledger, and a settled commit."""

    def __init__(self, ws: Revertible, score: ScoreFn, *, best: Score) -> None:
        self.ws, self.score, self.best = ws, score, best
        self.ledger = Ledger()
        # A settled best (e.g. a behaviour change) is an acceptable end, not a base to build
        # on: later attempts start again from the last kept state; it is checked out at the end.
        self.settled_commit: str | None = None

    async def end(self, exit_: ExitReason, detail: str) -> KeepRevertResult:
        if self.best.settled and self.settled_commit is not None:
            await self.ws.restore(self.settled_commit)
        return KeepRevertResult(exit_, self.best, self.ledger, detail)

    async def judge(
        self, n: int, proposal: Proposal, started: float
    ) -> tuple[AttemptRecord, Score]:
        """Apply (commit), score, keep or revert one proposed attempt; its ledger record."""
        commit: str | None = None
        if not proposal.changed:
            verdict, now = "no_change", self.best
        else:
            commit = await self.ws.commit(f"loopwright: attempt {n}")
            now = await self.score()
            if now.value > self.best.value or (now.success and not self.best.success):
                if now.settled and not now.success and commit is not None:
                    self.settled_commit = commit
                    await self.ws.reset_to_last_kept()
                else:
                    await self.ws.keep()
                    self.settled_commit = None
                verdict, self.best = "kept", now
            else:
                await self.ws.reset_to_last_kept()
                verdict = "reverted"
        record = AttemptRecord(
            attempt=n,
            model=proposal.model,
            prompt_tokens=proposal.usage.prompt_tokens,
            completion_tokens=proposal.usage.completion_tokens,
            cost=proposal.usage.cost,
            score=now.detail or str(now.value),
            verdict=verdict,
            duration_s=time.perf_counter() - started,
            commit=commit,
            note=proposal.note,
        )
        self.ledger.attempts.append(record)
        return record, now
