"""`installation` and `installation_repositories` events: a repository loopwright starts to
serve learns from its own issue history first (one `train` job per repository)."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.jobs import LoopName, TrainTrigger
from bot.store import JobSpec
from handlers.common import IntakeDeps, installation_of

router = Router()


def _train_each(event: Event, deps: IntakeDeps, repositories: list[Any], trigger: str) -> None:
    installation = installation_of(event)
    for repository in repositories:
        name = str((repository or {}).get("full_name") or "")
        if "/" not in name:
            continue
        deps.jobs.append(
            JobSpec(
                kind=LoopName.TRAIN,
                repo=name,
                installation_id=installation,
                number=None,
                payload=TrainTrigger(trigger=trigger).payload(),
            )
        )


@router.register("installation", action="created")
async def on_installation_created(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    _train_each(event, deps, event.data.get("repositories") or [], "installation.created")


@router.register("installation_repositories", action="added")
async def on_repositories_added(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    _train_each(
        event, deps, event.data.get("repositories_added") or [], "installation_repositories.added"
    )
