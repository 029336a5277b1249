"""Learning from the repository itself.

`train` (on installation, or `/loopwright train` by an admin): the repository's own labelled
issues, corrected by its writers, train its issue-type classifier (`bot.triage_model`); the eval
card is kept in one tracking issue. Too little history: no model, and triage keeps asking the
model.

`label_feedback` (a writer changed a type label on an issue loopwright triaged): records the
correction, silently — no comment, no reaction, only the run's step. What counts:

- the writer removed the type label loopwright applied → a correction to the one other type
  label the issue carries now, or to none (removed, nothing in its place; two or more other type
  labels are no agreed answer either);
- the writer added another type label while ours is still on → nothing yet: it becomes a swap
  only once ours is removed (the removal's event records it with the new label);
- the issue's type labels are read when the job runs, not taken from the event, so events that
  arrive together or out of order end in the issue's actual state; a change that leaves the
  latest correction as it is records nothing new;
- the writer put our label back after a correction → a correction to our own label (the writer
  confirmed it: training keeps the issue with that type);
- labels that are not type labels, issues loopwright never triaged, non-writers and bots
  (dropped at intake) are ignored. The writer's permission is asked here, not by the preamble
  (the payload carries `writer`, not `requires_write_from`), and only once the label is a type
  label on an issue loopwright triaged: no API call for every other label event. A correction made
  before loopwright's latest decision on the issue is about an earlier decision and no longer
  counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping

from bot.db import Row
from bot.forge import WRITE_PERMISSIONS, GitHubForge
from bot.history import CorrectedHistory, apply_corrections, labelled_issues, type_of_label
from bot.jobs import LabelFeedbackTrigger, TrainTrigger
from bot.store import Job, StepRecord, Store
from bot.triage_model import (
    MIN_PER_CLASS,
    MODEL_JSON,
    EvalCard,
    Example,
    TrainingError,
    model_dir,
    train,
)
from loops.engine import ExitReason, IssueContext, LoopContext, Outcome

#: The tracking issue that carries the eval card (its comment is refreshed on every training).
TRACKING_KEY = "triage-model"
TRACKING_TITLE = "loopwright: issue-type classifier for this repository"
TRACKING_BODY = (
    "loopwright trained an issue-type classifier on this repository's own labelled issues. "
    "The comment below is its eval card, replaced on every retraining, with the live precision "
    "of the type labels loopwright applied (kept, or corrected by a writer). Retrain it with "
    "`/loopwright train` in any issue (admin permission needed)."
)
#: The sticky section, on the tracking issue and on the issue a command came from.
SECTION = "train"

#: At most this many issues are read from the history.
MAX_HISTORY = 5000


def _type_labels(ctx: LoopContext) -> dict[str, str]:
    """type → label name, from `triage.labels` of the repository's config."""
    return {str(kind): name for kind, name in ctx.config.triage.labels.items()}


def _footer(ctx: LoopContext) -> str:
    return f"<sub>loopwright · no model calls · run #{ctx.run_id}</sub>"


async def _reply(ctx: LoopContext, job: Job, text: str) -> None:
    """Answer the issue a `/loopwright train` came from (a training on installation has none)."""
    if job.number is not None:
        await ctx.forge.upsert_sticky(
            job.number, SECTION, f"### loopwright train\n\n{text}\n\n{_footer(ctx)}"
        )


async def _step(
    ctx: LoopContext, name: str, verdict: str, started: float, *, input: str = "", output: str = ""
) -> None:
    await ctx.record(
        StepRecord(
            name=name,
            kind="deterministic",
            verdict=verdict,
            input=input,
            output=output,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    )


async def current_corrections(store: Store, repo: str) -> list[Row]:
    """The corrections that are about loopwright's latest decision on their issue (a later
    triage of the issue replaces the decision; corrections of the earlier one lapse)."""
    rows = await store.corrections(repo)
    decided: dict[int, float | None] = {}
    out: list[Row] = []
    for row in rows:
        number = int(row["number"])
        if number not in decided:
            decision = await store.triage_decision(repo, number)
            decided[number] = float(decision["created_at"]) if decision else None
        since = decided[number]
        if since is None or float(row["created_at"]) >= since:
            out.append(row)
    return out


def precision_line(kept: int, corrected: int) -> str:
    total = kept + corrected
    if not total:
        return "- live precision: no type labels applied by loopwright yet"
    return (
        f"- live precision: **{kept / total:.0%}** of the {total} type labels loopwright applied "
        f"were kept ({kept} kept, {corrected} corrected by a writer)"
    )


def render_card(
    card: EvalCard,
    *,
    kept: int,
    corrected: int,
    history: CorrectedHistory,
    n_corrected: int,
    type_labels: Mapping[str, str],
    footer: str,
) -> str:
    mapping = ", ".join(f"`{name}` → {kind}" for kind, name in type_labels.items())
    lines = [
        card.to_markdown(),
        "",
        "**In use**",
        "",
        precision_line(kept, corrected),
        f"- trained on this repository's issues, open and closed, with exactly one type label "
        f"({mapping}); writers' corrections of {n_corrected} issues applied "
        f"({len(history.relabelled)} relabelled, {len(history.dropped)} dropped)",
        "- triage lets it decide the type per `triage.type_model` in `.github/loopwright.yml`; "
        "its confidence must reach the threshold above. `/loopwright train` retrains it.",
        "",
        footer,
    ]
    return "\n".join(lines)


def _sizes(examples: Iterable[Example]) -> str:
    counts = Counter(e.label for e in examples)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _shortfall(counts: Counter[str], type_labels: Mapping[str, str]) -> list[str]:
    return [
        f"{kind} (`{name}`) {counts.get(kind, 0)}"
        for kind, name in type_labels.items()
        if counts.get(kind, 0) < MIN_PER_CLASS
    ]


async def run_train(job: Job, ctx: IssueContext) -> Outcome:
    repo = ctx.forge.repo
    requester = TrainTrigger.of(job).requires_write_from
    if requester:
        # The preamble let writers through; retraining what decides every issue's type is an
        # admin's call.
        started = time.perf_counter()
        perm = await ctx.forge.permission(str(requester))
        await _step(
            ctx,
            "authorize_admin",
            "allowed" if perm == "admin" else "denied",
            started,
            input=str(requester),
            output=perm,
        )
        if perm != "admin":
            detail = f"{requester} has {perm} permission; /loopwright train needs admin"
            await _reply(
                ctx,
                job,
                f"Not trained: `/loopwright train` needs admin permission on this repository "
                f"(`{requester}` has `{perm}`).",
            )
            return Outcome(ExitReason.UNAUTHORIZED, detail)
    if not ctx.config.loops.triage:
        return Outcome(ExitReason.DISABLED, "loops.triage is off: no classifier to train")
    if not isinstance(ctx.forge, GitHubForge):
        return Outcome(ExitReason.DISABLED, "training reads the issue history from GitHub")
    type_labels = _type_labels(ctx)
    if len(type_labels) < 2:
        return Outcome(ExitReason.DISABLED, "triage.labels maps fewer than two types")

    started = time.perf_counter()
    issues = await labelled_issues(ctx.forge.client, type_labels, max_issues=MAX_HISTORY)
    await _step(
        ctx,
        "history",
        "ok",
        started,
        input=f"state=all, labels {', '.join(type_labels.values())}, at most {MAX_HISTORY}",
        output=f"{len(issues)} issues with exactly one type label: {_sizes(issues.values())}",
    )
    started = time.perf_counter()
    corrections = await current_corrections(ctx.store, repo)
    history = apply_corrections(issues, corrections, type_labels=type_labels)
    await _step(
        ctx,
        "corrections",
        "ok",
        started,
        input=f"{len(corrections)} corrections",
        output=f"relabelled {history.relabelled} dropped {history.dropped}",
    )
    counts = Counter(e.label for e in history.examples.values())
    short = _shortfall(counts, type_labels)
    directory = model_dir(ctx.settings.data_dir, repo)
    # A classifier trained before is left in place (triage decides whether it still fits).
    meanwhile = (
        "The classifier trained before stays as it is."
        if (directory / MODEL_JSON).exists()
        else "Triage keeps asking the model."
    )
    if short:
        why = f"too few labelled issues: {', '.join(short)} of the {MIN_PER_CLASS} per type needed"
        await _step(ctx, "enough_data", "not_enough", time.perf_counter(), output=why)
        await _reply(
            ctx,
            job,
            f"Not trained: {why}. {meanwhile} Label more issues (open or "
            "closed) and comment `/loopwright train` again, or map only the types this "
            "repository uses in `triage.labels` of `.github/loopwright.yml`.",
        )
        return Outcome(ExitReason.NOT_ENOUGH_DATA, f"not trained: {why}")
    await _step(ctx, "enough_data", "ok", time.perf_counter(), output=str(dict(counts)))

    examples = list(history.examples.values())
    source = f"{repo}: {len(examples)} labelled issues on GitHub, {len(corrections)} corrections"
    started = time.perf_counter()
    try:
        model, card = await asyncio.to_thread(train, examples, source=source)
    except TrainingError as exc:
        await _step(ctx, "train", "error", started, input=source, output=str(exc))
        await _reply(ctx, job, f"Not trained: {exc}. {meanwhile}")
        return Outcome(ExitReason.NOT_ENOUGH_DATA, f"not trained: {exc}")
    await _step(
        ctx,
        "train",
        "ok",
        started,
        input=source,
        output=f"macro-F1 {card.macro_f1:.3f}, threshold {card.threshold:.3f}",
    )
    started = time.perf_counter()
    await asyncio.to_thread(model.save, directory)
    await _step(ctx, "save", "ok", started, output=str(directory))

    kept, corrected = await ctx.store.live_precision(repo)
    text = render_card(
        card,
        kept=kept,
        corrected=corrected,
        history=history,
        n_corrected=len({int(r["number"]) for r in corrections}),
        type_labels=type_labels,
        footer=_footer(ctx),
    )
    tracking = await ctx.forge.upsert_tracking_issue(TRACKING_KEY, TRACKING_TITLE, TRACKING_BODY)
    url = await ctx.forge.upsert_sticky(tracking, SECTION, text)
    await _step(ctx, "post", "ok", time.perf_counter(), output=f"#{tracking} {url}")
    if job.number is not None and job.number != tracking:
        await _reply(
            ctx,
            job,
            f"Retrained on {len(examples)} issues: macro-F1 {card.macro_f1:.3f}. The eval card "
            f"is in #{tracking}.",
        )
    return Outcome(
        ExitReason.DONE,
        f"trained on {len(examples)} issues: macro-F1 {card.macro_f1:.3f}; card in #{tracking}",
        posted={"tracking_issue": tracking, "card": text, "model_dir": str(directory)},
    )


def _latest_correction(rows: list[Row], number: int) -> Row | None:
    mine = [r for r in rows if int(r["number"]) == number]
    return mine[-1] if mine else None


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").casefold() == (b or "").casefold()


async def run_label_feedback(job: Job, ctx: IssueContext) -> Outcome:
    repo = ctx.forge.repo
    trigger = LabelFeedbackTrigger.of(job)
    number = trigger.issue
    label = trigger.label
    writer = trigger.who
    what = f"#{number}: {trigger.action} {label!r} by {writer}"
    started = time.perf_counter()
    type_labels = _type_labels(ctx)
    types = type_of_label(type_labels)

    async def end(verdict: str, detail: str) -> Outcome:
        await _step(ctx, "feedback", verdict, started, input=what, output=detail)
        return Outcome(ExitReason.DONE, f"#{number}: {detail}")

    if label.casefold() not in types:
        return await end("ignored", f"{label!r} is not a type label")
    decision = await ctx.store.triage_decision(repo, number)
    if decision is None:
        return await end("ignored", "loopwright never triaged this issue")
    asked = time.perf_counter()
    perm = await ctx.forge.permission(writer)
    await _step(
        ctx,
        "authorize",
        "allowed" if perm in WRITE_PERMISSIONS else "denied",
        asked,
        input=writer,
        output=perm,
    )
    if perm not in WRITE_PERMISSIONS:
        await _step(ctx, "feedback", "ignored", started, input=what, output="not a writer")
        return Outcome(ExitReason.UNAUTHORIZED, f"{writer} has {perm} permission")
    applied = str(decision["label"])
    # Recorded by label name; a decision recorded by type (`feature`) is read as its label.
    if applied.casefold() not in types and applied in type_labels:
        applied = type_labels[applied]
    issue = await ctx.forge.get_issue(number)
    now = [name for name in issue.labels if name.casefold() in types]
    ours_on = any(_same(name, applied) for name in now)
    others = [name for name in now if not _same(name, applied)]
    since = float(decision["created_at"])
    latest = _latest_correction(
        [r for r in await ctx.store.corrections(repo) if float(r["created_at"]) >= since], number
    )
    new: str | None
    if ours_on and others:
        return await end("pending", f"{applied!r} still on beside {others}: no swap yet")
    if ours_on:
        if latest is None:
            return await end("kept", f"{applied!r} is still on")
        new = applied
    else:
        new = others[0] if len(others) == 1 else None
    if latest is not None and _same(latest["new_label"], new):
        return await end("unchanged", f"already recorded: {applied!r} → {new!r}")
    await ctx.store.record_correction(
        repo, number, applied_label=applied, new_label=new, by_user=writer
    )
    verdict = "restored" if _same(new, applied) else "corrected"
    return await end(verdict, f"correction recorded: {applied!r} → {new!r}")
