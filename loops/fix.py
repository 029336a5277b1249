"""The issue loops, composed: reproduce → patch → re-test → draft PR (`fix`), reproduce alone
(`reproduce`), re-test of an existing fix branch (`retest`), and `stop`.

The fix loop is a declared chart (`CHART`, run by `loops.chart.run_chart`): D read issue →
D checkout → D environment → D localize → M reproduce (baseline, write_test ×K, judged) →
M patch (keep/revert) → D guard → D re-test N× on base and head → D finalize → D push
`loopwright/fix-<n>` + draft PR (created once, then edited) → labels + sticky comment.

Every output is idempotent: the branch is force-pushed, the PR is found by its head branch and
edited, labels are added, the comment is the sticky one. So a retried job (a crashed worker, a
repeated trigger) leaves one branch, one PR, one comment; and a retry of the same job resumes
after the reproduction (its stored result is restored into the fresh checkout), so the
`write_test` model call is not made twice.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bot.forge import Issue, PullRef
from bot.model import CostCapReached, Usage
from bot.sandbox import EnvironmentSetupFailed, SandboxError
from bot.store import Job, StepRecord
from bot.testresults import TestRun
from bot.text import strip_hidden
from bot.workspace import WorkspaceError, branch_name
from loops.chart import (
    MODEL_UNAVAILABLE,
    PUSH_REFUSED,
    Catch,
    Chart,
    End,
    OnReport,
    Stage,
    config_key,
    run_chart,
)
from loops.chart import cancel_check as cancel_check
from loops.checkout import Checkout, NoTestCommand
from loops.engine import (
    Budget,
    ExitReason,
    IssueContext,
    Ledger,
    LoopContext,
    Outcome,
    format_footer,
    push_and_open_pull,
)
from loops.fix_patch import FixPatchOutcome, patch
from loops.localize import Localization, localize
from loops.patch import screen_problem
from loops.reproduce import Reproduction, reproduce, runs_with_holdout, test_paths
from loops.retest import TestVerdict, classify, is_real_fix, to_markdown
from loops.tools import PATCH_PROTECTED_PATHS, PathPolicy

FIX_LABEL = "loopwright:fix"
DRAFT_PR_LABEL = "loopwright:draft-pr"
BEHAVIOUR_CHANGE_LABEL = "loopwright:behaviour-change"
NEEDS_HUMAN_LABEL = "loopwright:needs-human"
SECTION = "fix"

_PLAIN = {
    ExitReason.NOT_REPRODUCED: "could not reproduce the issue with a test",
    ExitReason.BUDGET_EXHAUSTED: "ran out of budget before finding a fix",
    ExitReason.NO_PROGRESS: "stopped: several attempts in a row did not get closer to a fix",
    ExitReason.MODEL_ERROR: "could not get a usable answer from the model",
    ExitReason.SANDBOX_ERROR: "could not run the project's tests in the sandbox",
    ExitReason.PROTECTED_PATH: "refused a change to a protected path",
    ExitReason.CANCELLED: "was stopped on request",
    ExitReason.FLAKY: "found a change that passes only some of the time, which is not a fix",
    ExitReason.SETUP_ERROR: "could not prepare the project's tests",
    ExitReason.BEHAVIOUR_CHANGE: (
        "found a change that fixes the reproduction but changes what existing tests expect"
    ),
    ExitReason.COST_CAP: "stopped before a model call: a spend cap is reached",
}


@dataclass
class FixReport:
    """Everything the outputs (comment, PR body, --json) are rendered from."""

    issue: Issue
    exit: ExitReason = ExitReason.NOT_REPRODUCED
    detail: str = ""
    repro: Reproduction | None = None
    patched: FixPatchOutcome | None = None
    verdicts: list[TestVerdict] = field(default_factory=list)
    diff: str = ""
    pull: PullRef | None = None
    branch: str = ""
    usage: Usage = field(default_factory=Usage)
    models: list[str] = field(default_factory=list)
    test_runs: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def ledger(self) -> Ledger | None:
        return self.patched.result.ledger if self.patched and self.patched.result else None

    def add_usage(self, usage: Usage, models: list[str]) -> None:
        self.usage.add(usage)
        self.models.extend(models)

    def as_dict(self) -> dict[str, Any]:
        ledger = self.ledger
        return {
            "exit": self.exit.value,
            "detail": self.detail,
            "branch": self.branch,
            "pull": self.pull.url if self.pull else None,
            "reproduction": None
            if self.repro is None
            else {
                "ok": self.repro.ok,
                "reason": self.repro.reason,
                "test_path": self.repro.test_path,
                "test_ids": self.repro.test_ids,
                "holdout_ids": self.repro.holdout_ids,
                "attempts": [vars(a) for a in self.repro.attempts],
            },
            "attempts": [vars(a) for a in ledger.attempts] if ledger else [],
            "verification": [
                {
                    "test": v.test_id,
                    "verdict": v.verdict.value,
                    "base_passes": v.base_passes,
                    "head_passes": v.head_passes,
                    "runs": v.runs,
                }
                for v in self.verdicts
            ],
            "diff": self.diff,
            "usage": self.usage.as_dict(),
            "test_runs": self.test_runs,
        }


# --- entry points ---------------------------------------------------------------------------


async def run(job: Job, ctx: IssueContext) -> Outcome:
    """`loopwright:fix` label or `/loopwright fix`: the whole pipeline."""
    return await _pipeline(job, ctx, patching=ctx.config.loops.patch)


async def run_reproduce(job: Job, ctx: IssueContext) -> Outcome:
    """`/loopwright reproduce`: the reproduction only, reported in the comment."""
    return await _pipeline(job, ctx, patching=False)


async def run_stop(job: Job, ctx: IssueContext) -> Outcome:
    """`/loopwright stop`. The running loop sees the request in the queue between steps (it
    does not wait for this job); this job only acknowledges it (the 👀 of the preamble)."""
    return Outcome(ExitReason.DONE, "stop requested")


async def _pipeline(job: Job, ctx: IssueContext, *, patching: bool) -> Outcome:
    number = job.number
    assert number is not None, "the issue loops need an issue number"
    if ctx.code is None:
        raise ValueError("this runtime has no code host: the issue loops cannot run")
    if not ctx.config.loops.reproduce:
        return Outcome(ExitReason.DISABLED, "loops.reproduce is off in .github/loopwright.yml")
    issue: Issue = await ctx.deterministic(
        "read_issue", lambda: ctx.forge.get_issue(number), describe_input=f"#{number}"
    )
    state = FixRun(
        ctx,
        FixReport(issue),
        base=await ctx.forge.default_branch(),
        budget=Budget.from_config(ctx.config.budgets),
        cancelled=cancel_check(job, ctx),
        patching=patching,
    )
    return await run_chart(CHART, job, ctx, state, cancelled=state.cancelled)


# --- the chart ---------------------------------------------------------------------------------


@dataclass
class FixRun(OnReport):
    """One run of the fix chart: the report it publishes, and what its stages hand on."""

    ctx: IssueContext
    report: FixReport
    base: str
    budget: Budget
    cancelled: Callable[[], Awaitable[bool]]
    patching: bool
    co: Checkout | None = None
    loc: Localization | None = None
    protected: list[str] = field(default_factory=list)

    @property
    def checkout(self) -> Checkout:
        assert self.co is not None, "the stage runs inside the working copy"
        return self.co

    @property
    def repro(self) -> Reproduction:
        assert self.report.repro is not None, "the stage runs after the reproduction"
        return self.report.repro

    @property
    def ours(self) -> set[str]:
        repro = self.repro
        return {repro.test_path, repro.holdout_path, *repro.support_paths}


@asynccontextmanager
async def _working_copy(s: FixRun) -> AsyncIterator[None]:
    ctx, report = s.ctx, s.report
    assert ctx.code is not None
    async with ctx.code.checkout(
        ctx.forge.repo, s.base, loop="fix", number=report.issue.number, commands=ctx.config.commands
    ) as co:
        s.co = co
        report.branch = co.ws.branch
        try:
            yield
        finally:
            report.test_runs = co.test_runs
            if not report.diff and report.patched is not None:
                # Whatever the exit, a reviewer sees what was kept (the reproduction and
                # the best candidate, if one was kept).
                report.diff = await co.ws.diff()


async def _environment(s: FixRun) -> None:
    env = await s.checkout.prepare()
    await s.ctx.record(
        StepRecord(
            name="environment",
            kind="deterministic",
            verdict="cached" if env.cache_hit else "built",
            output=env.key,
            duration_ms=env.duration_s * 1000,
        )
    )


async def _localize(s: FixRun) -> None:
    issue = s.report.issue
    s.loc = loc = await localize(issue.title, issue.body, s.checkout.ws)
    await s.ctx.record(
        StepRecord(
            name="localize",
            kind="deterministic",
            verdict="ok",
            output=", ".join(c.path for c in loc.candidates[:10]),
        )
    )


@dataclass
class ReproStage:
    """The reproduce stage's stored result: the reproduction, the files it committed, and
    what it set on the working copy, so a retry's fresh checkout can be put in the same state."""

    repro: Reproduction
    #: The base commit and the config it was made with: a retry on another base, or with
    #: another config, reproduces again.
    base: str
    config: str
    files: dict[str, str] = field(default_factory=dict)
    own_tests: list[str] = field(default_factory=list)
    pytest_extra: list[str] = field(default_factory=list)
    run_timeout: float | None = None


async def _reproduce(s: FixRun) -> ReproStage:
    co = s.checkout
    assert s.loc is not None
    repro = await reproduce(s.ctx, co, s.report.issue, s.loc, s.budget)
    s.report.repro = repro
    s.report.add_usage(repro.usage, repro.models)
    files = {}
    if repro.ok:
        for path in (repro.test_path, *repro.support_paths):
            files[path] = await co.ws.read_file(path)
    return ReproStage(
        repro,
        co.ws.base,
        config_key(s.ctx),
        files,
        list(co.own_tests),
        list(co.pytest_extra),
        co.run_timeout,
    )


async def _restore_reproduction(s: FixRun, stored: ReproStage) -> bool:
    co = s.checkout
    if (stored.base, stored.config) != (co.ws.base, config_key(s.ctx)):
        return False
    repro = stored.repro
    if repro.ok:
        for path, text in stored.files.items():
            await co.ws.write_file(path, text)
        await co.grant()
        await co.ws.keep(f"loopwright: reproduce #{s.report.issue.number}\n\n{repro.reason}")
    co.own_tests, co.pytest_extra = stored.own_tests, stored.pytest_extra
    co.run_timeout = stored.run_timeout
    s.report.repro = repro
    s.report.add_usage(repro.usage, repro.models)
    # What the reproduction spent counts against this run's budget as it did the first time.
    s.budget.charge(repro.usage)
    return True


def _reproduced(s: FixRun, stored: ReproStage) -> End | None:
    repro = stored.repro
    if not repro.ok:
        return End(repro.exit, repro.reason)
    if not s.patching:
        return End(ExitReason.DONE, repro.reason)
    return None


@dataclass
class Patched:
    """The patch stage's stored result: its outcome, and the files of the commit it left
    checked out (beside the reproduction's), so a retry's checkout can be put back there."""

    patched: FixPatchOutcome
    base: str
    config: str
    #: Path → its text at the end of the stage (None: deleted).
    files: dict[str, str | None] = field(default_factory=dict)


async def _patch(s: FixRun) -> Patched:
    assert s.loc is not None
    co = s.checkout
    patched = await patch(
        s.ctx, co, s.report.issue, s.loc, s.repro, s.budget, cancelled=s.cancelled
    )
    s.report.patched = patched
    s.report.add_usage(patched.usage, patched.models)
    files = await co.changed_files(exclude=s.ours)
    return Patched(patched, co.ws.base, config_key(s.ctx), files)


async def _restore_patch(s: FixRun, stored: Patched) -> bool:
    co = s.checkout
    if (stored.base, stored.config) != (co.ws.base, config_key(s.ctx)):
        return False
    ledger = stored.patched.result.ledger if stored.patched.result else None
    kept = [a.attempt for a in ledger.attempts if a.verdict == "kept"] if ledger else []
    what = f"attempt {kept[-1]}" if kept else "the patch"
    await co.restore_files(stored.files, f"loopwright: {what} (restored by a retry of the job)")
    s.report.patched = patched = stored.patched
    s.report.add_usage(patched.usage, patched.models)
    s.budget.charge(patched.usage)
    return True


def _patched(s: FixRun, _: Patched) -> End | None:
    patched = s.report.patched
    assert patched is not None and patched.result is not None
    found = patched.result.exit
    if found not in (ExitReason.FIXED, ExitReason.BEHAVIOUR_CHANGE):
        return End(found, patched.result.detail)
    return None


async def _guard(s: FixRun) -> End | None:
    # Defence in depth: the Toolbox refuses protected edits, and this checks what was committed
    # (every commit, as the push guard does) and the whole tree against base.
    co = s.checkout
    s.protected = protected = [*PATCH_PROTECTED_PATHS, *s.ctx.config.fix.protected_paths]
    policy = PathPolicy(protected)
    ours = s.ours
    touched = sorted(p for p in co.ws.changed_paths() if p not in ours and policy.match(p))
    if touched:
        return End(
            ExitReason.PROTECTED_PATH, f"the patch changed protected paths: {', '.join(touched)}"
        )
    screened = await screen_problem(co, protected, ours)
    if screened:
        return End(ExitReason.PROTECTED_PATH, f"refused by the diff screen: {screened}")
    return None


async def _retest(s: FixRun) -> None:
    repro, report = s.repro, s.report
    head_runs = await runs_with_holdout(
        s.checkout, repro, repro.selection, s.ctx.config.fix.retest_runs
    )
    ids = [*repro.test_ids, *repro.holdout_ids]
    ids += [t for t in sorted(repro.baseline.failing if repro.baseline else ()) if t not in ids][
        :20
    ]
    report.verdicts = classify(ids, repro.base_runs, head_runs)
    await s.ctx.record(
        StepRecord(
            name="retest",
            kind="deterministic",
            verdict=", ".join(sorted({v.verdict.value for v in report.verdicts})),
            output=to_markdown(report.verdicts),
        )
    )


def _retested(s: FixRun, _: None) -> End | None:
    if not is_real_fix(s.report.verdicts, s.repro.reproducing):
        return End(ExitReason.FLAKY, "the candidate fix did not pass every re-test run")
    return None


async def _finalize(s: FixRun) -> End | None:
    co, repro, report = s.checkout, s.repro, s.report
    if repro.holdout_ids:
        # The held-out variant joins the branch now that the fix is in: reviewers see both.
        await co.ws.write_file(repro.holdout_path, repro.holdout_code)
        await co.ws.keep(f"loopwright: held-out reproduction for #{report.issue.number}")
    report.diff = await co.ws.diff()
    # Once more before the push: the tree that goes out is the tree that was screened.
    screened = await screen_problem(co, s.protected, s.ours)
    if screened:
        return End(
            ExitReason.PROTECTED_PATH, f"refused by the diff screen before the push: {screened}"
        )
    assert report.patched is not None and report.patched.result is not None
    report.exit, report.detail = report.patched.result.exit, report.patched.result.detail
    return None


async def _open_pull(s: FixRun) -> None:
    report = s.report
    issue = report.issue
    behaviour_change = report.exit is ExitReason.BEHAVIOUR_CHANGE
    report.pull = await push_and_open_pull(
        s.ctx,
        s.checkout,
        base=s.base,
        title=(
            f"{'Behaviour change for' if behaviour_change else 'Fix'} #{issue.number}: "
            f"{strip_hidden(issue.title)[:200]}"
        ),
        body=render_pr_body(s.ctx, report),
        diff=report.diff,
    )


def _as_end(_: FixRun, end: End | None) -> End | None:
    return end


CHART: Chart[FixRun] = Chart(
    name="fix",
    before="D read the issue, the default branch; the sticky section says «Reproducing the "
    "issue with a test…»",
    inside="the loop's working copy (`loopwright/fix-<n>` off the default branch, "
    "`CodeHost.checkout`)",
    publishes="the label (`loopwright:draft-pr`, `loopwright:behaviour-change` or "
    "`loopwright:needs-human`) and the `fix` section of the sticky comment",
    start="Reproducing the issue with a test…",
    workspace=_working_copy,
    stages=[
        Stage(
            "environment",
            "deterministic",
            reads=("the checkout of the default branch", "commands.setup"),
            produces="the sandbox environment (cached per dependency-file hash)",
            run=_environment,
            phase="setup: preparing the project's environment",
        ),
        Stage(
            "localize",
            "deterministic",
            reads=("the issue", "the checkout"),
            produces="`Localization`: candidate files, snippets, repo map",
            run=_localize,
            phase="localize: finding the code the issue points at",
        ),
        Stage(
            "reproduce",
            "model",
            reads=("the issue", "`Localization`", "the baseline run"),
            produces="`ReproStage`: the `Reproduction` and the test files it committed",
            run=_reproduce,
            budget="the loop's budget; each reply ≤ 30 % of the tokens left (1k–12k), "
            "`fix.reproduce_attempts` tries",
            ends="not reproduced → its exit (`not_reproduced`, `setup_error`, `sandbox_error`, "
            "`budget_exhausted`, `cost_cap`); `/loopwright reproduce` → `done`",
            end=_reproduced,
            result=ReproStage,
            restore=_restore_reproduction,
        ),
        Stage(
            "patch",
            "model",
            reads=("the issue", "`Localization`", "`Reproduction`"),
            produces="`Patched`: the `FixPatchOutcome` (attempts ledger, kept or settled "
            "candidate) and the files of the commit it left checked out",
            run=_patch,
            budget="what is left of the loop's budget; `fix.max_turns` actions per attempt",
            ends="no fix or behaviour change kept → its exit (`budget_exhausted`, "
            "`no_progress`, `cancelled`, `cost_cap`)",
            end=_patched,
            result=Patched,
            restore=_restore_patch,
            phase="patch",
            announce=lambda s: f"Reproduced ({s.repro.reason}). Looking for a fix…",
            stop_before="stopped after reproducing",
        ),
        Stage(
            "guard",
            "deterministic",
            reads=("the kept commits", "fix.protected_paths"),
            produces="nothing: a refusal or not",
            run=_guard,
            ends="a protected path changed or the diff screen hits → `protected_path`",
            end=_as_end,
        ),
        Stage(
            "retest",
            "deterministic",
            reads=("`Reproduction`", "the kept commit"),
            produces="per-test verdicts, `fix.retest_runs` runs on base and head",
            run=_retest,
            ends="not every reproduction fixed on every run → `flaky`",
            end=_retested,
            phase="re-test",
            announce=lambda _: "Found a candidate fix. Re-testing it…",
        ),
        Stage(
            "finalize",
            "deterministic",
            reads=("`Reproduction`", "the kept commit"),
            produces="the held-out variant committed, the diff",
            run=_finalize,
            ends="the diff screen hits before the push → `protected_path`",
            end=_as_end,
        ),
        Stage(
            "draft_pr",
            "deterministic",
            reads=("the diff", "the report"),
            produces="`loopwright/fix-<n>` pushed, one draft PR",
            run=_open_pull,
            stop_before="stopped before opening the PR",
        ),
    ],
    catches=[
        PUSH_REFUSED,
        Catch(NoTestCommand, ExitReason.SETUP_ERROR),
        MODEL_UNAVAILABLE,
        Catch(
            CostCapReached,
            ExitReason.COST_CAP,
            why="refused before a model call; the tallies are the run's recorded steps",
            usage_so_far=True,
        ),
        Catch(
            EnvironmentSetupFailed,
            ExitReason.SETUP_ERROR,
            detail=lambda exc: (
                f"{exc}: fix commands.setup in .github/loopwright.yml\n{exc.result.output[-600:]}"
            ),
        ),
        Catch(SandboxError, ExitReason.SANDBOX_ERROR),
    ],
    progress=lambda s, text: _progress(s.ctx, s.report, text),
    publish=lambda s: _publish(s.ctx, s.report, patching=s.patching),
)


# --- outputs ----------------------------------------------------------------------------------


async def _progress(ctx: LoopContext, report: FixReport, text: str) -> None:
    elapsed = time.monotonic() - report.started
    await ctx.forge.upsert_sticky(
        report.issue.number,
        SECTION,
        f"### loopwright fix\n\n⏳ {text}\n\n<sub>run #{ctx.run_id} · {elapsed:.0f}s so far · "
        "`/loopwright stop` stops it</sub>",
    )


async def _publish(ctx: LoopContext, report: FixReport, *, patching: bool) -> Outcome:
    number = report.issue.number
    if report.exit is ExitReason.FIXED:
        label = DRAFT_PR_LABEL
    elif report.exit is ExitReason.BEHAVIOUR_CHANGE and report.pull:
        label = BEHAVIOUR_CHANGE_LABEL
    elif report.exit in (ExitReason.DONE, ExitReason.CANCELLED, ExitReason.COST_CAP):
        # A reproduction on request, a human stopped it, or a spend cap did (the comment
        # says when it frees up): nothing about the issue itself to flag.
        label = None
    else:
        label = NEEDS_HUMAN_LABEL
    if label:
        await ctx.forge.add_labels(number, [label])
    comment = render_comment(ctx, report, patching=patching)
    await ctx.forge.upsert_sticky(number, SECTION, comment)
    return Outcome(
        report.exit,
        report.detail.splitlines()[0][:300] if report.detail else "",
        posted={**report.as_dict(), "comment": comment},
        usage=report.usage,
    )


def _footer(ctx: LoopContext, report: FixReport) -> str:
    return format_footer(ctx, report.usage, report.models) + (
        f"<sub> · {report.test_runs} sandboxed test runs</sub>"
    )


def _repro_section(repro: Reproduction) -> list[str]:
    lines = [f"**Reproduction:** {repro.reason}", ""]
    if repro.test_code:
        lines += [
            f"<details><summary><code>{repro.test_path}</code></summary>",
            "",
            "```python",
            repro.test_code.strip(),
            "```",
            "</details>",
            "",
        ]
    if repro.attempts:
        lines += ["Tests written:", "", repro.attempts_markdown(), ""]
    return lines


def render_comment(ctx: LoopContext, report: FixReport, *, patching: bool) -> str:
    lines = ["### loopwright fix", ""]
    if report.exit is ExitReason.FIXED and report.pull:
        lines += [
            f"✅ Draft PR: {report.pull.url} (branch `{report.branch}`). The fix makes the "
            "reproduction pass on every re-test run and breaks no other test. It is a draft: "
            "review it before merging.",
            "",
        ]
    elif report.exit is ExitReason.DONE:
        lines += ["✅ Reproduced. (`/loopwright fix` also looks for a fix.)", ""]
    elif report.exit is ExitReason.BEHAVIOUR_CHANGE and report.pull:
        lines += [
            f"⚖️ Draft PR: {report.pull.url} (branch `{report.branch}`). The change makes the "
            "reproduction and the held-out variant pass on every re-test run, but existing "
            "tests that expect the old behaviour now fail (listed below and in the PR). A "
            "maintainer decides whether the old expectation or the fix is right "
            "(`behaviour_change`).",
            "",
            *_changed_expectations(report),
        ]
    elif report.exit is ExitReason.COST_CAP:
        why = report.detail.splitlines()[0] if report.detail else "a spend cap is reached"
        lines += [
            f"💸 loopwright stopped before a model call (`{report.exit.value}`). "
            f"{why[:1].upper()}{why[1:]}.",
            "",
            "Nothing more is spent on this issue until the cap frees up: comment "
            "`/loopwright fix` (or label it again) then, or raise the cap (the operator's "
            "`LOOPWRIGHT_COST_CAP_*_USD`; `costs:` in `.github/loopwright.yml` can only lower it).",
            "",
        ]
    else:
        what = _PLAIN.get(report.exit, report.exit.value)
        lines += [
            f"❌ loopwright {what} (`{report.exit.value}`). A human needs to take this one.",
            "",
        ]
        if report.detail:
            first, _, rest = report.detail.partition("\n")
            lines += [f"> {first[:400]}", ""]
            if rest.strip() and report.exit in (ExitReason.SANDBOX_ERROR, ExitReason.SETUP_ERROR):
                lines += ["```", rest.strip()[-1500:], "```", ""]
    if report.repro is not None:
        lines += _repro_section(report.repro)
    ledger = report.ledger
    if ledger and ledger.attempts:
        lines += ["**Patch attempts:**", "", ledger.to_markdown(), ""]
    if report.verdicts:
        lines += ["**Re-test:**", "", to_markdown(report.verdicts), ""]
    lines.append(_footer(ctx, report))
    return "\n".join(lines)


def _changed_expectations(report: FixReport) -> list[str]:
    changed = report.patched.changed_expectations if report.patched else []
    if not changed:
        return []
    lines = [
        "**Existing tests whose expectation changes:**",
        "",
        "| test | on base | with the change | failure |",
        "|---|---|---|---|",
    ]
    for c in changed:
        first = next(
            (ln[1:].strip() for ln in c.message.splitlines() if ln.startswith("E ")),
            c.message.splitlines()[0] if c.message else "",
        )
        why = first.replace("|", "/").replace("`", "'")[:200]
        lines.append(f"| `{c.test_id}` | {c.before} | {c.after} | {why} |")
    return [*lines, ""]


def render_pr_body(ctx: LoopContext, report: FixReport) -> str:
    repro = report.repro
    assert repro is not None
    summary = report.patched.summary if report.patched else ""
    changed = sorted(
        {
            line[6:]
            for line in report.diff.splitlines()
            if line.startswith("+++ b/") and PurePosixPath(line[6:]).name
        }
    )
    behaviour_change = report.exit is ExitReason.BEHAVIOUR_CHANGE
    lines = [
        f"{'Addresses' if behaviour_change else 'Fixes'} #{report.issue.number} — drafted by "
        "loopwright; a human reviews and merges.",
        "",
    ]
    if behaviour_change:
        lines += [
            "## ⚖️ Behaviour change: a maintainer decides",
            "",
            "This change makes the reproduction and its held-out variant pass, but the existing "
            "tests below fail with it: they expect the behaviour the issue reports as wrong, "
            "or the change is wrong. No test was edited; merge only after deciding which.",
            "",
            *_changed_expectations(report),
        ]
    lines += [
        "## Summary",
        "",
        strip_hidden(summary)[:1500] if summary else "(the model gave no summary)",
        "",
        f"Files changed: {', '.join(f'`{c}`' for c in changed)}",
        "",
        "## Reproduction",
        "",
        f"`{repro.test_path}` — {repro.reason}.",
    ]
    if repro.holdout_ids:
        lines.append(
            f"`{repro.holdout_path}` — a held-out variant the patch step never saw; it must pass "
            "too, so a fix that special-cases the visible test's input is rejected."
        )
    lines += [
        "",
        "## Verification",
        "",
        f"Re-test: each test below ran {ctx.config.fix.retest_runs}× on base (with the new tests) "
        f"and {ctx.config.fix.retest_runs}× on this branch, in the sandbox without network.",
        "",
        to_markdown(report.verdicts),
        "",
        (
            "The whole suite ran after the kept attempt: apart from the tests listed above, no "
            "test that passed on base fails, is skipped or is gone."
            if behaviour_change
            else "The whole suite ran after the kept attempt: no test that passed on base "
            "fails, is skipped or is gone."
        ),
        "",
        "## Attempts",
        "",
        report.ledger.to_markdown() if report.ledger else "(none)",
        "",
        _footer(ctx, report),
    ]
    return "\n".join(lines)


async def run_retest(job: Job, ctx: IssueContext) -> Outcome:
    """`/loopwright retest`: the reproduction tests of `loopwright/fix-<n>`, N times on the fix
    branch and N times on the default branch (with those tests added): fixed, flaky or not."""
    number = job.number
    assert number is not None, "retest needs an issue number"
    if ctx.code is None:
        raise ValueError("this runtime has no code host: retest cannot run")
    state = RetestRun(ctx, number, base=await ctx.forge.default_branch())
    return await run_chart(RETEST_CHART, job, ctx, state)


@dataclass
class RetestRun:
    """One run of the re-test chart."""

    ctx: IssueContext
    number: int
    base: str
    exit: ExitReason = ExitReason.FLAKY
    detail: str = ""
    usage: Usage = field(default_factory=Usage)
    models: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    head_runs: list[TestRun] = field(default_factory=list)
    base_runs: list[TestRun] = field(default_factory=list)
    verdicts: list[TestVerdict] = field(default_factory=list)

    @property
    def head(self) -> str:
        return branch_name("fix", self.number)

    @property
    def runs(self) -> int:
        return self.ctx.config.fix.retest_runs


async def _head_runs(s: RetestRun) -> None:
    ctx = s.ctx
    assert ctx.code is not None
    async with ctx.code.checkout(
        ctx.forge.repo, s.head, loop="retest", number=s.number, commands=ctx.config.commands
    ) as co_head:
        # The names the fix loop gave its reproduction and held-out tests.
        names = {PurePosixPath(p).name for p in test_paths([], s.number)}
        files = [f for f in await co_head.ws.list_files() if PurePosixPath(f).name in names]
        if not files:
            raise WorkspaceError(f"{s.head} has no loopwright reproduction test")
        s.sources = {f: await co_head.ws.read_file(f) for f in files}
        s.head_runs = [await co_head.run_tests(files) for _ in range(s.runs)]


async def _base_runs(s: RetestRun) -> None:
    ctx = s.ctx
    assert ctx.code is not None
    async with ctx.code.checkout(
        ctx.forge.repo, s.base, loop="retest-base", number=s.number, commands=ctx.config.commands
    ) as co_base:
        for path, text in s.sources.items():
            await co_base.ws.write_file(path, text)
        await co_base.grant()
        s.base_runs = [await co_base.run_tests(list(s.sources)) for _ in range(s.runs)]


async def _classify_runs(s: RetestRun) -> None:
    ids = sorted({t for r in s.head_runs + s.base_runs for t in r.outcomes})
    s.verdicts = classify(ids, s.base_runs, s.head_runs)
    real = is_real_fix(s.verdicts, ids)
    await s.ctx.record(
        StepRecord(
            name="retest",
            kind="deterministic",
            verdict="fixed" if real else "not fixed",
            output=to_markdown(s.verdicts),
        )
    )
    s.exit = ExitReason.FIXED if real else ExitReason.FLAKY
    s.detail = (
        f"✅ `{s.head}` fixes the reproduction on every run."
        if real
        else f"❌ `{s.head}` does not reliably fix the reproduction: see the table."
    )


async def _publish_retest(s: RetestRun) -> Outcome:
    ctx, number = s.ctx, s.number
    lines = ["### loopwright re-test", ""]
    if s.exit is ExitReason.NOT_REPRODUCED:
        lines += [f"❌ Nothing to re-test: {s.detail}. `/loopwright fix` makes one.", ""]
        await ctx.forge.upsert_sticky(
            number, "retest", "\n".join([*lines, f"<sub>run #{ctx.run_id}</sub>"])
        )
        return Outcome(s.exit, s.detail)
    if s.exit is ExitReason.SANDBOX_ERROR:
        await ctx.forge.upsert_sticky(
            number,
            "retest",
            "\n".join(
                [*lines, f"❌ The sandbox failed: {s.detail}", "", f"<sub>run #{ctx.run_id}</sub>"]
            ),
        )
        return Outcome(s.exit, s.detail)
    lines += [
        s.detail,
        "",
        to_markdown(s.verdicts),
        "",
        f"<sub>{s.runs} runs each on `{s.base}` and `{s.head}` · run #{ctx.run_id}</sub>",
    ]
    if s.exit is not ExitReason.FIXED:
        await ctx.forge.add_labels(number, [NEEDS_HUMAN_LABEL])
    await ctx.forge.upsert_sticky(number, "retest", "\n".join(lines))
    return Outcome(s.exit, s.detail, posted={"verification": [vars(v) for v in s.verdicts]})


RETEST_CHART: Chart[RetestRun] = Chart(
    name="retest",
    before="D the default branch",
    stages=[
        Stage(
            "head_runs",
            "deterministic",
            reads=("`loopwright/fix-<n>`", "fix.retest_runs"),
            produces="the fix branch's reproduction tests and their runs on it",
            run=_head_runs,
        ),
        Stage(
            "base_runs",
            "deterministic",
            reads=("the default branch", "those tests"),
            produces="their runs on the default branch, with the tests added",
            run=_base_runs,
        ),
        Stage(
            "classify",
            "deterministic",
            reads=("both series of runs",),
            produces="per-test verdicts: `fixed` only if every test passes every time on the "
            "branch",
            run=_classify_runs,
            ends="→ `fixed`, or `flaky` (labelled `loopwright:needs-human`)",
        ),
    ],
    catches=[
        Catch(
            WorkspaceError,
            ExitReason.NOT_REPRODUCED,
            why="no fix branch, or no reproduction test on it",
        ),
        Catch(SandboxError, ExitReason.SANDBOX_ERROR),  # EnvironmentSetupFailed too
    ],
    publish=_publish_retest,
    publishes="the `retest` section of the sticky comment with the table; "
    "`loopwright:needs-human` when not fixed",
)
