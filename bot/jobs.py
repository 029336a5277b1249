"""The contract between intake, the queue and the loops.

- `LoopName`: the loops there are. A job's `kind` is one; handlers enqueue with it and
  `loops.LOOPS` is keyed by it (a test proves every kind a handler can enqueue has a loop).
- A trigger model per loop (`TRIGGERS`): what started a job, built by its handler and stored as
  the job's `payload` (`Trigger.payload()`), parsed back by the worker before the run and by the
  loop that reads it (`Trigger.of(job)`). The stored JSON keeps the keys the payload dicts always
  had, so jobs queued by an older release still run after an upgrade.
- `PermanentJobError`: a job that can never succeed (no loop of its kind, a trigger that does
  not parse). The worker marks it dead at once instead of retrying it until it dies.

Here in `bot/` so that handlers, loops and the store import it without a cycle.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

if TYPE_CHECKING:
    from bot.store import Job


class LoopName(enum.StrEnum):
    """A loop, by the name stored in `jobs.kind` and `runs.loop` (a `str`: rows, metric labels
    and log fields hold the same strings as before)."""

    TRIAGE = "triage"
    FIX = "fix"
    REPRODUCE = "reproduce"
    RETEST = "retest"
    STOP = "stop"
    TRAIN = "train"
    LABEL_FEEDBACK = "label_feedback"
    CI_REPAIR = "ci_repair"
    DEPS = "deps"


class PermanentJobError(Exception):
    """The job can never succeed, however often it is tried: the worker buries it at once, with
    this message as its last error (`Store.fail(..., permanent=True)`)."""


#: Where a red build is: a same-repository pull request's branch, or the default branch.
Where = Literal["pull_request", "default_branch"]


def loop_name(kind: str) -> LoopName:
    """The loop a job's `kind` names; a kind this release has no loop for is permanent."""
    try:
        return LoopName(kind)
    except ValueError:
        raise PermanentJobError(f"no loop named {kind!r}") from None


# --- triggers ------------------------------------------------------------------------------------


class Trigger(BaseModel):
    """What started a job, as its handler saw it. Unknown keys are refused: a payload this
    release does not understand fails the job permanently rather than running it half-read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Where it came from, for people: `issues.opened`, `/loopwright fix`, `label loopwright:fix`.
    trigger: str
    #: Who asked: the preamble (`loops.engine.execute`) runs the loop only if this user may
    #: write. None: an event started it, or nobody's permission is checked before the loop.
    requires_write_from: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON stored in `jobs.payload`: the fields the handler set and nothing else, so a
        job row holds the keys it always did (and the queue key, a hash of them, is unchanged)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def of(cls, job: Job) -> Self:
        """`job`'s trigger; `PermanentJobError` if its payload is not one."""
        try:
            return cls.model_validate(job.payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise PermanentJobError(
                f"job {job.id} ({job.kind}): its payload is not a {cls.__name__}: {problems}"
            ) from None


class Requested(Trigger):
    """A trigger a person may give with a command (`/loopwright <name>` in a comment)."""

    #: The comment that gave the command: where the request came from, not what it asks (left
    #: out of the queue key, so the same command twice collapses into one queued job).
    comment_id: int | None = None


class TriageTrigger(Requested):
    """`issues.opened`, or `/loopwright triage`."""


class FixTrigger(Requested):
    """The `loopwright:fix` label, or `/loopwright fix`; the labeller or commenter must write."""


class ReproduceTrigger(Requested):
    """`/loopwright reproduce`."""


class RetestTrigger(Requested):
    """`/loopwright retest` on an issue (on a pull request it is the dependency loop's)."""


class StopTrigger(Requested):
    """`/loopwright stop`: read from the queue by the loop it stops (`Store.stop_requests`)."""


class TrainTrigger(Requested):
    """`installation.created`, `installation_repositories.added`, or `/loopwright train`."""


class LabelFeedbackTrigger(Trigger):
    """A person added or removed a label (`issues.labeled`/`issues.unlabeled`). Silent: the job
    has no number, and the loop checks the permission itself, only when it matters."""

    issue: int
    label: str
    #: `labeled` or `unlabeled`.
    action: str
    #: Who changed the label. Jobs queued before this key existed named them in
    #: `requires_write_from` instead (the preamble checked them then).
    writer: str | None = None

    @property
    def who(self) -> str:
        return self.writer or self.requires_write_from or ""


class CiTrigger(Requested):
    """A red build (`workflow_run.completed`: `run_id`; another CI app's
    `check_suite.completed`: `check_suite_id`, `app_id`, `app_name`), or `/loopwright diagnose`
    on a pull request (neither id: the loop finds the newest failed run of the PR's head)."""

    run_id: int | None = None
    check_suite_id: int | None = None
    app_id: int | None = None
    app_name: str | None = None
    #: The failing branch is a same-repository PR's or the default branch.
    where: Where = "pull_request"
    head_branch: str = ""
    head_sha: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.run_id is not None and self.check_suite_id is not None:
            raise ValueError("a CI trigger names a workflow run or a check suite, not both")
        return self


class DepsTrigger(Requested):
    """A dependency bot's pull request (`pull_request.opened`/`synchronize`/`reopened`, with
    its `head_sha`), or `/loopwright retest` on a pull request."""

    head_sha: str | None = None


#: Each loop's trigger model: what its jobs' payloads must parse as.
TRIGGERS: dict[LoopName, type[Trigger]] = {
    LoopName.TRIAGE: TriageTrigger,
    LoopName.FIX: FixTrigger,
    LoopName.REPRODUCE: ReproduceTrigger,
    LoopName.RETEST: RetestTrigger,
    LoopName.STOP: StopTrigger,
    LoopName.TRAIN: TrainTrigger,
    LoopName.LABEL_FEEDBACK: LabelFeedbackTrigger,
    LoopName.CI_REPAIR: CiTrigger,
    LoopName.DEPS: DepsTrigger,
}
