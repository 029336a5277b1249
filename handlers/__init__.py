"""Event handlers, one module per event family, composed into one router here."""

from __future__ import annotations

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.store import JobSpec
from handlers import comments, issues
from handlers.common import IntakeDeps, NoIOAtIntake, is_automated

router = Router(issues.router, comments.router)


async def decide_jobs(event: Event, *, app_id: int | None) -> list[JobSpec]:
    """Route one event to the jobs it should create. Pure: no network, no disk."""
    if is_automated(event, app_id):
        return []
    deps = IntakeDeps()
    await router.dispatch(event, NoIOAtIntake(), deps=deps)
    return deps.jobs
