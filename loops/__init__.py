"""The loops, by name. Each is `async def run(job, ctx) -> Outcome` in its own module."""

from __future__ import annotations

from loops import ci_repair, deps, fix, learn, triage
from loops.engine import LoopFn

LOOPS: dict[str, LoopFn] = {
    "triage": triage.run,
    "fix": fix.run,
    "reproduce": fix.run_reproduce,
    "retest": fix.run_retest,
    "stop": fix.run_stop,
    "ci_repair": ci_repair.run,
    "deps": deps.run,
    "train": learn.run_train,
    "label_feedback": learn.run_label_feedback,
}
