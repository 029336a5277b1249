"""The loops, by name. Each is `async def run(job, ctx) -> Outcome` in its own module."""

from __future__ import annotations

from loops import ci_repair, deps, fix, learn, triage
from loops.engine import IssueLoopFn, LoopFn

#: The loops whose context asks only for the issue port (`loops.ports.IssuePort`): the ones
#: local mode's forge can run.
ISSUE_LOOPS: dict[str, IssueLoopFn] = {
    "triage": triage.run,
    "fix": fix.run,
    "reproduce": fix.run_reproduce,
    "retest": fix.run_retest,
    "stop": fix.run_stop,
    "train": learn.run_train,
    "label_feedback": learn.run_label_feedback,
}

LOOPS: dict[str, LoopFn] = {
    **ISSUE_LOOPS,
    "ci_repair": ci_repair.run,  # CIPort
    "deps": deps.run,  # PullPort
}
