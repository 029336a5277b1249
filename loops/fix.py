"""The issue loops, composed: reproduce → patch → re-test → draft PR (`fix`), reproduce alone
(`reproduce`), re-test of an existing fix branch (`retest`), and `stop`.

Steps: D read issue → D checkout + environment + baseline → D localize → M write_test ×K
(judged) → M patch (keep/revert) → D re-test N× on base and head → D push
`loopwright/fix-<n>` → D draft PR (created once, then edited) + labels + sticky comment.

Every output is idempotent: the branch is force-pushed, the PR is found by its head branch and
edited, labels are added, the comment is the sticky one. So a retried job (a crashed worker, a
repeated trigger) leaves one branch, one PR, one comment.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bot.forge import WRITE_PERMISSIONS, Issue, PullRef
from bot.model import CostCapReached, ModelUnavailable, Usage
from bot.sandbox import EnvironmentSetupFailed, SandboxError
from bot.store import Job, StepRecord
from bot.text import strip_hidden
from bot.workspace import ProtectedPathError, WorkspaceError, branch_name
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
    run_so_far,
)
from loops.fix_patch import FixPatchOutcome, patch
from loops.localize import localize
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
    report = FixReport(issue)
    base = await ctx.forge.default_branch()
    budget = Budget.from_config(ctx.config.budgets)
    cancelled = cancel_check(job, ctx)
    await _progress(ctx, report, "Reproducing the issue with a test…")
    try:
        async with ctx.code.checkout(
            ctx.forge.repo, base, loop="fix", number=number, commands=ctx.config.commands
        ) as co:
            report.branch = co.ws.branch
            try:
                await _steps(base, ctx, co, report, budget, cancelled, patching=patching)
            finally:
                report.test_runs = co.test_runs
                if not report.diff and report.patched is not None:
                    # Whatever the exit, a reviewer sees what was kept (the reproduction and
                    # the best candidate, if one was kept).
                    report.diff = await co.ws.diff()
    except ProtectedPathError as exc:
        # The push guard's refusal is an end of the loop, not a crash to retry.
        report.exit, report.detail = ExitReason.PROTECTED_PATH, str(exc)
    except NoTestCommand as exc:
        report.exit, report.detail = ExitReason.SETUP_ERROR, str(exc)
    except ModelUnavailable as exc:
        report.exit, report.detail = ExitReason.MODEL_ERROR, str(exc)
    except CostCapReached as exc:
        # Refused before a model call (the reproduction and the patch loop end on it
        # themselves; this is any other call). The tallies went with the exception.
        report.exit, report.detail = ExitReason.COST_CAP, str(exc)
        report.usage, report.models = await run_so_far(ctx)
    except EnvironmentSetupFailed as exc:
        tail = exc.result.output[-600:]
        report.exit = ExitReason.SETUP_ERROR
        report.detail = f"{exc}: fix commands.setup in .github/loopwright.yml\n{tail}"
    except SandboxError as exc:
        report.exit, report.detail = ExitReason.SANDBOX_ERROR, str(exc)
    return await _publish(ctx, report, patching=patching)


async def _steps(
    base: str,
    ctx: LoopContext,
    co: Checkout,
    report: FixReport,
    budget: Budget,
    cancelled: Callable[[], Awaitable[bool]],
    *,
    patching: bool,
) -> None:
    issue = report.issue
    await ctx.progress("setup: preparing the project's environment")
    env = await co.prepare()
    await ctx.record(
        StepRecord(
            name="environment",
            kind="deterministic",
            verdict="cached" if env.cache_hit else "built",
            output=env.key,
            duration_ms=env.duration_s * 1000,
        )
    )
    await ctx.progress("localize: finding the code the issue points at")
    loc = await localize(issue.title, issue.body, co.ws)
    await ctx.record(
        StepRecord(
            name="localize",
            kind="deterministic",
            verdict="ok",
            output=", ".join(c.path for c in loc.candidates[:10]),
        )
    )
    repro = await reproduce(ctx, co, issue, loc, budget)
    report.repro = repro
    report.add_usage(repro.usage, repro.models)
    if not repro.ok:
        report.exit, report.detail = repro.exit, repro.reason
        return
    if not patching:
        report.exit, report.detail = ExitReason.DONE, repro.reason
        return
    if await cancelled():
        report.exit, report.detail = ExitReason.CANCELLED, "stopped after reproducing"
        return
    await _progress(ctx, report, f"Reproduced ({repro.reason}). Looking for a fix…", phase="patch")
    patched = await patch(ctx, co, issue, loc, repro, budget, cancelled=cancelled)
    report.patched = patched
    report.add_usage(patched.usage, patched.models)
    assert patched.result is not None
    found = patched.result.exit
    if found not in (ExitReason.FIXED, ExitReason.BEHAVIOUR_CHANGE):
        report.exit, report.detail = found, patched.result.detail
        return
    # Defence in depth: the Toolbox refuses protected edits, and this checks what was committed
    # (every commit, as the push guard does) and the whole tree against base.
    protected = [*PATCH_PROTECTED_PATHS, *ctx.config.fix.protected_paths]
    policy = PathPolicy(protected)
    ours = {repro.test_path, repro.holdout_path, *repro.support_paths}
    touched = sorted(p for p in co.ws.changed_paths() if p not in ours and policy.match(p))
    if touched:
        report.exit = ExitReason.PROTECTED_PATH
        report.detail = f"the patch changed protected paths: {', '.join(touched)}"
        return
    screened = await screen_problem(co, protected, ours)
    if screened:
        report.exit = ExitReason.PROTECTED_PATH
        report.detail = f"refused by the diff screen: {screened}"
        return
    await _progress(ctx, report, "Found a candidate fix. Re-testing it…", phase="re-test")
    head_runs = await runs_with_holdout(co, repro, repro.selection, ctx.config.fix.retest_runs)
    ids = [*repro.test_ids, *repro.holdout_ids]
    ids += [t for t in sorted(repro.baseline.failing if repro.baseline else ()) if t not in ids][
        :20
    ]
    report.verdicts = classify(ids, repro.base_runs, head_runs)
    await ctx.record(
        StepRecord(
            name="retest",
            kind="deterministic",
            verdict=", ".join(sorted({v.verdict.value for v in report.verdicts})),
            output=to_markdown(report.verdicts),
        )
    )
    if not is_real_fix(report.verdicts, repro.reproducing):
        report.exit = ExitReason.FLAKY
        report.detail = "the candidate fix did not pass every re-test run"
        return
    behaviour_change = found is ExitReason.BEHAVIOUR_CHANGE
    if repro.holdout_ids:
        # The held-out variant joins the branch now that the fix is in: reviewers see both.
        await co.ws.write_file(repro.holdout_path, repro.holdout_code)
        await co.ws.keep(f"loopwright: held-out reproduction for #{issue.number}")
    report.diff = await co.ws.diff()
    # Once more before the push: the tree that goes out is the tree that was screened.
    screened = await screen_problem(co, protected, ours)
    if screened:
        report.exit = ExitReason.PROTECTED_PATH
        report.detail = f"refused by the diff screen before the push: {screened}"
        return
    report.exit, report.detail = found, patched.result.detail
    if await cancelled():
        report.exit, report.detail = ExitReason.CANCELLED, "stopped before opening the PR"
        return
    report.pull = await push_and_open_pull(
        ctx,
        co,
        base=base,
        title=(
            f"{'Behaviour change for' if behaviour_change else 'Fix'} #{issue.number}: "
            f"{strip_hidden(issue.title)[:200]}"
        ),
        body=render_pr_body(ctx, report),
    )


# --- outputs ----------------------------------------------------------------------------------


async def _progress(
    ctx: LoopContext, report: FixReport, text: str, *, phase: str | None = None
) -> None:
    if phase:
        await ctx.progress(phase)
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
    runs = ctx.config.fix.retest_runs
    base = await ctx.forge.default_branch()
    head = branch_name("fix", number)
    commands = ctx.config.commands
    lines = ["### loopwright re-test", ""]
    try:
        async with ctx.code.checkout(
            ctx.forge.repo, head, loop="retest", number=number, commands=commands
        ) as co_head:
            # The names the fix loop gave its reproduction and held-out tests.
            names = {PurePosixPath(p).name for p in test_paths([], number)}
            files = [f for f in await co_head.ws.list_files() if PurePosixPath(f).name in names]
            if not files:
                raise WorkspaceError(f"{head} has no loopwright reproduction test")
            sources = {f: await co_head.ws.read_file(f) for f in files}
            head_runs = [await co_head.run_tests(files) for _ in range(runs)]
        async with ctx.code.checkout(
            ctx.forge.repo, base, loop="retest-base", number=number, commands=commands
        ) as co_base:
            for path, text in sources.items():
                await co_base.ws.write_file(path, text)
            await co_base.grant()
            base_runs = [await co_base.run_tests(files) for _ in range(runs)]
    except WorkspaceError as exc:
        lines += [f"❌ Nothing to re-test: {exc}. `/loopwright fix` makes one.", ""]
        await ctx.forge.upsert_sticky(
            number, "retest", "\n".join([*lines, f"<sub>run #{ctx.run_id}</sub>"])
        )
        return Outcome(ExitReason.NOT_REPRODUCED, str(exc))
    except (EnvironmentSetupFailed, SandboxError) as exc:
        await ctx.forge.upsert_sticky(
            number,
            "retest",
            "\n".join(
                [*lines, f"❌ The sandbox failed: {exc}", "", f"<sub>run #{ctx.run_id}</sub>"]
            ),
        )
        return Outcome(ExitReason.SANDBOX_ERROR, str(exc))
    ids = sorted({t for r in head_runs + base_runs for t in r.outcomes})
    verdicts = classify(ids, base_runs, head_runs)
    real = is_real_fix(verdicts, ids)
    await ctx.record(
        StepRecord(
            name="retest",
            kind="deterministic",
            verdict="fixed" if real else "not fixed",
            output=to_markdown(verdicts),
        )
    )
    verdict = (
        f"✅ `{head}` fixes the reproduction on every run."
        if real
        else f"❌ `{head}` does not reliably fix the reproduction: see the table."
    )
    lines += [
        verdict,
        "",
        to_markdown(verdicts),
        "",
        f"<sub>{runs} runs each on `{base}` and `{head}` · run #{ctx.run_id}</sub>",
    ]
    if not real:
        await ctx.forge.add_labels(number, [NEEDS_HUMAN_LABEL])
    await ctx.forge.upsert_sticky(number, "retest", "\n".join(lines))
    exit_ = ExitReason.FIXED if real else ExitReason.FLAKY
    return Outcome(exit_, verdict, posted={"verification": [vars(v) for v in verdicts]})
