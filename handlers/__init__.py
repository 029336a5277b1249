"""Event handlers, one module per event family, composed into one router here."""

from __future__ import annotations

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.store import JobSpec
from handlers import checks, comments, installation, issues, pull_requests
from handlers.common import DEPENDENCY_BOTS, IntakeDeps, NoIOAtIntake, is_automated

router = Router(
    issues.router, comments.router, checks.router, pull_requests.router, installation.router
)


async def decide_jobs(
    event: Event, *, app_id: int | None, dependency_bots: frozenset[str] = DEPENDENCY_BOTS
) -> list[JobSpec]:
    """Route one event to the jobs it should create. Pure: no network, no disk."""
    if is_automated(event, app_id, dependency_bots=dependency_bots):
        return []
    deps = IntakeDeps(dependency_bots=dependency_bots)
    await router.dispatch(event, NoIOAtIntake(), deps=deps)
    return deps.jobs
