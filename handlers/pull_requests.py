"""`pull_request` events: a dependency bot's update PR starts the dependency loop."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.jobs import DepsTrigger, LoopName
from bot.store import JobSpec
from handlers.common import IntakeDeps, installation_of, repo_of

router = Router()


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
async def on_pull_request_updated(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    pr = event.data["pull_request"]
    author = str((pr.get("user") or {}).get("login", ""))
    if author not in deps.dependency_bots or pr.get("state") == "closed":
        return
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    if head_repo != repo_of(event):
        return  # a fork's branch: not a dependency bot's update of this repository
    deps.jobs.append(
        JobSpec(
            kind=LoopName.DEPS,
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(pr["number"]),
            payload=DepsTrigger(
                trigger=f"pull_request.{event.data['action']}",
                head_sha=str((pr.get("head") or {}).get("sha", "")),
            ).payload(),
        )
    )
