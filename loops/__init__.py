"""The loops, by name. Each is `async def run(job, ctx) -> Outcome` in its own module; a job's
kind (`bot.jobs.LoopName`) picks one, and its payload parses as the loop's trigger model
(`bot.jobs.TRIGGERS`)."""

from __future__ import annotations

from bot.jobs import LoopName
from loops import ci_repair, deps, fix, learn, triage
from loops.engine import IssueLoopFn, LoopFn

#: The loops whose context asks only for the issue port (`loops.ports.IssuePort`): the ones
#: local mode's forge can run.
ISSUE_LOOPS: dict[LoopName, IssueLoopFn] = {
    LoopName.TRIAGE: triage.run,
    LoopName.FIX: fix.run,
    LoopName.REPRODUCE: fix.run_reproduce,
    LoopName.RETEST: fix.run_retest,
    LoopName.STOP: fix.run_stop,
    LoopName.TRAIN: learn.run_train,
    LoopName.LABEL_FEEDBACK: learn.run_label_feedback,
}

LOOPS: dict[LoopName, LoopFn] = {
    **ISSUE_LOOPS,
    LoopName.CI_REPAIR: ci_repair.run,  # CIPort
    LoopName.DEPS: deps.run,  # PullPort
}
