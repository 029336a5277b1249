"""`issues` events."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.store import JobSpec
from handlers.common import FIX_LABEL, IntakeDeps, installation_of, repo_of

router = Router()


@router.register("issues", action="opened")
async def on_issues_opened(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    issue = event.data["issue"]
    deps.jobs.append(
        JobSpec(
            kind="triage",
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(issue["number"]),
            payload={"trigger": "issues.opened"},
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
            kind="fix",
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(issue["number"]),
            # Anyone with triage access can label; only writers may start a code-changing loop.
            payload={
                "trigger": f"label {FIX_LABEL}",
                "requires_write_from": event.data["sender"]["login"],
            },
        )
    )
