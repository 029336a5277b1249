"""GitHub Actions: workflow runs, their jobs, and logs (a redirect to a signed, expiring URL on
the blob host)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from aiohttp import web

from tests.support.fakegithub.registry import _json, _require_repo, operation
from tests.support.fakegithub.routes.issues import _parse_time
from tests.support.fakegithub.state import Ctx, FakeJob, FakeRepo, FakeWorkflowRun, GitHubError

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


# A run's `status` values; anything else in a `status` filter is a conclusion.
_RUN_STATUSES = frozenset({"requested", "in_progress", "completed", "queued", "pending", "waiting"})


def _require_run(ctx: Ctx) -> tuple[FakeRepo, FakeWorkflowRun]:
    repo = _require_repo(ctx)
    run = repo.workflow_runs.get(ctx.int_param("run_id"))
    if run is None:
        raise GitHubError(404, "Not Found")
    return repo, run


def _created_matches(spec: str, when: datetime) -> bool:
    """GitHub's date-range syntax for `created`: a date/time, >=, <=, >, < or a..b (* open)."""

    def bound(value: str, *, end: bool) -> datetime | None:
        if value == "*":
            return None
        parsed = _parse_time(value, "created")
        if end and len(value) == 10:  # a bare date includes the whole day
            parsed += timedelta(days=1) - timedelta(seconds=1)
        return parsed

    if ".." in spec:
        low_text, high_text = spec.split("..", 1)
        low, high = bound(low_text, end=False), bound(high_text, end=True)
        return (low is None or when >= low) and (high is None or when <= high)
    for op_text in (">=", "<=", ">", "<"):
        if spec.startswith(op_text):
            point = cast(datetime, bound(spec[len(op_text) :], end=op_text in ("<=", ">")))
            return {
                ">=": when >= point,
                "<=": when <= point,
                ">": when > point,
                "<": when < point,
            }[op_text]
    start = cast(datetime, bound(spec, end=False))
    if len(spec) == 10:
        return start <= when < start + timedelta(days=1)
    return when == start


def _list_runs(
    fake: FakeGitHub, ctx: Ctx, repo: FakeRepo, runs: list[FakeWorkflowRun]
) -> web.Response:
    query = ctx.request.query
    filters: list[Callable[[FakeWorkflowRun], bool]] = []
    if query.get("actor"):
        filters.append(lambda r: r.actor.casefold() == query["actor"].casefold())
    if query.get("branch"):
        filters.append(lambda r: r.head_branch == query["branch"])
    if query.get("event"):
        filters.append(lambda r: r.event == query["event"])
    if query.get("head_sha"):
        filters.append(lambda r: r.head_sha == query["head_sha"])
    if query.get("check_suite_id"):
        filters.append(lambda r: str(r.check_suite_id) == query["check_suite_id"])
    status = query.get("status")
    if status in _RUN_STATUSES:
        filters.append(lambda r: r.status == status)
    elif status:
        filters.append(lambda r: r.conclusion == status)
    if query.get("created"):
        filters.append(lambda r: _created_matches(query["created"], r.created_at))
    chosen = [r for r in runs if all(f(r) for f in filters)]
    chosen.sort(key=lambda r: (r.created_at, r.id), reverse=True)  # newest first
    exclude = query.get("exclude_pull_requests") == "true"
    items = [fake.workflow_run_json(repo, r, exclude_pull_requests=exclude) for r in chosen]
    return fake.paginate(
        ctx.request,
        items,
        wrap=lambda page: {"total_count": len(items), "workflow_runs": page},
    )


@operation("actions/list-workflow-runs-for-repo", "actions")
async def _list_repo_runs(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    return _list_runs(fake, ctx, repo, list(repo.workflow_runs.values()))


@operation("actions/list-workflow-runs", "actions")
async def _list_workflow_runs(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    # `workflow_id` is the numeric id or the workflow's file name (ci.yml).
    repo = _require_repo(ctx)
    workflow = ctx.params["workflow_id"]
    runs = [
        r
        for r in repo.workflow_runs.values()
        if str(r.workflow_id) == workflow or r.path.rsplit("/", 1)[-1] == workflow
    ]
    if not runs:
        # Workflows are only known through their runs here.
        raise GitHubError(404, "Not Found")
    return _list_runs(fake, ctx, repo, runs)


@operation("actions/get-workflow-run", "actions")
async def _get_workflow_run(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, run = _require_run(ctx)
    exclude = ctx.request.query.get("exclude_pull_requests") == "true"
    return _json(fake.workflow_run_json(repo, run, exclude_pull_requests=exclude))


@operation("actions/list-jobs-for-workflow-run", "actions")
async def _list_run_jobs(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, run = _require_run(ctx)
    every_attempt = ctx.request.query.get("filter", "latest") == "all"
    jobs = [j for j in run.jobs if every_attempt or j.run_attempt == run.run_attempt]
    items = [fake.job_json(repo, run, j) for j in jobs]
    return fake.paginate(
        ctx.request, items, wrap=lambda page: {"total_count": len(items), "jobs": page}
    )


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


@operation("actions/download-job-logs-for-workflow-run", "actions")
async def _download_job_logs(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    # 302 to a signed, one-minute URL on another host; the log itself never comes from here.
    repo = _require_repo(ctx)
    found = fake.find_job(repo, ctx.int_param("job_id"))
    if found is None or not found[1].log_bytes:
        raise GitHubError(404, "Not Found")
    job = found[1]
    return _redirect(
        fake.grant_blob("job-logs.txt", "text/plain; charset=utf-8", lambda: job.log_bytes)
    )


_UNSAFE_IN_ZIP_NAMES = re.compile(r'[\\/:*?"<>|]')


def _run_logs_zip(jobs: list[FakeJob]) -> bytes:
    """GitHub's archive layout: `<n>_<job>.txt` (the whole job log) at the top, and a folder
    per job with `<step number>_<step>.txt`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, job in enumerate(jobs):
            job_name = _UNSAFE_IN_ZIP_NAMES.sub("", job.name)
            archive.writestr(f"{index}_{job_name}.txt", job.log_bytes)
            for number, (step, _) in enumerate(job.steps, 1):
                text = job.step_logs.get(step, b"")
                data = text.encode() if isinstance(text, str) else text
                step_name = _UNSAFE_IN_ZIP_NAMES.sub("", step)
                archive.writestr(f"{job_name}/{number}_{step_name}.txt", data)
    return buffer.getvalue()


@operation("actions/download-workflow-run-logs", "actions")
async def _download_run_logs(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    _, run = _require_run(ctx)
    jobs = [j for j in run.jobs if j.run_attempt == run.run_attempt]
    if not any(j.log_bytes for j in jobs):
        raise GitHubError(404, "Not Found")
    return _redirect(
        fake.grant_blob(f"logs_{run.id}.zip", "application/zip", lambda: _run_logs_zip(jobs))
    )
