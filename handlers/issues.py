"""`issues` events."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.store import JobSpec
from handlers.common import IntakeDeps, installation_of, repo_of

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
