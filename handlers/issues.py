"""`issues` events."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.jobs import FixTrigger, LabelFeedbackTrigger, LoopName, TriageTrigger
from bot.store import JobSpec
from handlers.common import FIX_LABEL, OWN_LABEL_PREFIX, IntakeDeps, installation_of, repo_of

router = Router()


@router.register("issues", action="opened")
async def on_issues_opened(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    issue = event.data["issue"]
    deps.jobs.append(
        JobSpec(
            kind=LoopName.TRIAGE,
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(issue["number"]),
            payload=TriageTrigger(trigger="issues.opened").payload(),
        )
    )


@router.register("issues", action="labeled")
async def on_issues_labeled(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    label = (event.data.get("label") or {}).get("name")
    issue = event.data["issue"]
    if label != FIX_LABEL or issue.get("pull_request") or issue.get("state") == "closed":
        return
    deps.jobs.append(
        JobSpec(
            kind=LoopName.FIX,
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(issue["number"]),
            # Anyone with triage access can label; only writers may start a code-changing loop.
            payload=FixTrigger(
                trigger=f"label {FIX_LABEL}", requires_write_from=event.data["sender"]["login"]
            ).payload(),
        )
    )


@router.register("issues", action="labeled")
@router.register("issues", action="unlabeled")
async def on_issues_label_changed(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    """A person changed a label: maybe a writer correcting the type loopwright applied. Whether
    it is a type label, a writer, an issue loopwright triaged, is for the worker to find out
    (the config and the permission are GitHub calls); bots never get here (`is_automated`)."""
    label = str((event.data.get("label") or {}).get("name") or "")
    issue = event.data["issue"]
    if not label or label.startswith(OWN_LABEL_PREFIX) or issue.get("pull_request"):
        return
    action = str(event.data["action"])
    deps.jobs.append(
        JobSpec(
            kind=LoopName.LABEL_FEEDBACK,
            repo=repo_of(event),
            installation_id=installation_of(event),
            # No number: the job is silent (the preamble would react on an issue's number),
            # and one lock per repository keeps a repository's label events in order.
            number=None,
            payload=LabelFeedbackTrigger(
                trigger=f"issues.{action}",
                issue=int(issue["number"]),
                label=label,
                action=action,
                # Not `requires_write_from`: the loop checks the permission itself, and only
                # for a type label on an issue loopwright triaged (one API call saved on every
                # other label event).
                writer=event.data["sender"]["login"],
            ).payload(),
        )
    )
