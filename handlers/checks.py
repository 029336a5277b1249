"""`workflow_run` and `check_suite` events: a red build starts the CI-failure loop."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.jobs import CiTrigger, LoopName, Where
from bot.store import JobSpec
from handlers.common import IntakeDeps, installation_of, repo_of

router = Router()

#: Conclusions that mean the build is red (not cancelled, skipped or neutral).
FAILING = frozenset({"failure", "timed_out", "startup_failure"})

#: Branches loopwright pushes. A failure there never starts a loop: the bot must not repair its
#: own repairs (an endless chain of loopwright/ci-… branches).
OWN_BRANCH_PREFIX = "loopwright/"


def _target(
    repository: dict[str, Any], branch: str, pulls: list[Any]
) -> tuple[int | None, Where | None]:
    """(PR number or None, where) for a failure, or (None, None) when it is not ours to handle:
    a PR from this repository, or the default branch; never a fork's PR or another branch."""
    same_repo = [
        p
        for p in pulls
        if ((p.get("head") or {}).get("repo") or {}).get("id") == repository.get("id")
    ]
    if same_repo:
        return int(same_repo[0]["number"]), "pull_request"
    if branch and branch == repository.get("default_branch"):
        return None, "default_branch"
    return None, None


def _ci_job(event: Event, deps: IntakeDeps, number: int | None, trigger: CiTrigger) -> None:
    deps.jobs.append(
        JobSpec(
            kind=LoopName.CI_REPAIR,
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=number,
            payload=trigger.payload(),
        )
    )


@router.register("workflow_run", action="completed")
async def on_workflow_run_completed(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    run = event.data["workflow_run"]
    branch = str(run.get("head_branch") or "")
    if run.get("conclusion") not in FAILING or branch.startswith(OWN_BRANCH_PREFIX):
        return
    number, where = _target(event.data["repository"], branch, run.get("pull_requests") or [])
    if not where:
        return
    _ci_job(
        event,
        deps,
        number,
        CiTrigger(
            trigger="workflow_run.completed",
            run_id=int(run["id"]),
            where=where,
            head_branch=branch,
            head_sha=str(run.get("head_sha") or ""),
        ),
    )


@router.register("check_suite", action="completed")
async def on_check_suite_completed(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    suite = event.data["check_suite"]
    branch = str(suite.get("head_branch") or "")
    if suite.get("conclusion") not in FAILING or branch.startswith(OWN_BRANCH_PREFIX):
        return
    app = suite.get("app") or {}
    if app.get("slug") == "github-actions":
        # GitHub Actions also sends `workflow_run`, which names the run whose logs we read;
        # handling both would run the loop twice for one failure.
        return
    number, where = _target(event.data["repository"], branch, suite.get("pull_requests") or [])
    if not where:
        return
    _ci_job(
        event,
        deps,
        number,
        CiTrigger(
            trigger="check_suite.completed",
            check_suite_id=int(suite["id"]),
            app_id=app.get("id"),
            app_name=str(app.get("name") or app.get("slug") or "a CI app"),
            where=where,
            head_branch=branch,
            head_sha=str(suite.get("head_sha") or ""),
        ),
    )
