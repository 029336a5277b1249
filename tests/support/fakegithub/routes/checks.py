"""Check runs: create, update, get, list for a ref."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.fakegithub.registry import _json, _require_repo, operation
from tests.support.fakegithub.state import Ctx, FakeCheckRun, FakeRepo, GitHubError, _now_iso

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


def _missing_conclusion() -> GitHubError:
    return GitHubError(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.')


def _apply_check_body(check: FakeCheckRun, body: dict[str, Any]) -> None:
    for key in ("name", "details_url", "external_id", "started_at"):
        if key in body:
            setattr(check, key, body[key])
    if "status" in body:
        check.status = str(body["status"])
        if check.status != "completed":
            check.conclusion, check.completed_at = None, None
    if body.get("conclusion") is not None:
        # A conclusion completes the run, whatever `status` said.
        check.conclusion = str(body["conclusion"])
        check.status = "completed"
    if check.status == "completed":
        check.completed_at = body.get("completed_at") or check.completed_at or _now_iso()
    output = body.get("output")
    if isinstance(output, dict):
        check.title = output.get("title", check.title)
        check.summary = output.get("summary", check.summary)
        check.text = output.get("text", check.text)
        # Annotations add up over updates; images are replaced.
        check.annotations.extend(output.get("annotations") or [])
        if "images" in output:
            check.images = list(output["images"])
    if "actions" in body:
        check.actions = list(body["actions"])


def _require_check_run(fake: FakeGitHub, ctx: Ctx) -> tuple[FakeRepo, FakeCheckRun]:
    repo = _require_repo(ctx)
    check_id = ctx.int_param("check_run_id")
    check = repo.check_runs.get(check_id)
    if check is None:
        if fake.find_job(repo, check_id) is not None:
            # A job's check run belongs to GitHub Actions, not to this app.
            raise GitHubError(403, "Resource not accessible by integration")
        raise GitHubError(404, "Not Found")
    return repo, check


@operation("checks/create", "checks")
async def _create_check_run(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    body: dict[str, Any] = ctx.body
    head_sha = str(body["head_sha"])
    if repo.git_dir is not None and fake._resolve_commit(repo, head_sha) != head_sha:
        raise GitHubError(422, f"No commit found for SHA: {head_sha}")
    completing = body.get("status") == "completed" or body.get("completed_at") is not None
    if completing and body.get("conclusion") is None:
        if ctx.rec is not None:
            fake._violation(ctx.rec, "checks/create: completed without a conclusion")
        raise _missing_conclusion()
    slug = fake.app_slug
    check = FakeCheckRun(
        id=fake.next_id(),
        name=str(body["name"]),
        head_sha=head_sha,
        status="queued",
        conclusion=None,
        started_at=_now_iso(),
        completed_at=None,
        check_suite_id=fake._check_suite_id(repo, head_sha, slug),
        app_slug=slug,
    )
    _apply_check_body(check, body)
    check.history.append(("checks/create", body))
    repo.check_runs[check.id] = check
    data = fake.check_run_json(repo, check)
    response = _json(data, 201)
    response.headers["Location"] = data["url"]
    return response


@operation("checks/update", "checks")
async def _update_check_run(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, check = _require_check_run(fake, ctx)
    if check.app_slug != fake.app_slug:
        # Only the app that created a check run may change it.
        raise GitHubError(403, "Resource not accessible by integration")
    body: dict[str, Any] = ctx.body or {}
    if body.get("completed_at") is not None and body.get("conclusion") is None:
        if ctx.rec is not None:
            fake._violation(ctx.rec, "checks/update: completed_at without a conclusion")
        raise _missing_conclusion()
    _apply_check_body(check, body)
    check.history.append(("checks/update", body))
    return _json(fake.check_run_json(repo, check))


@operation("checks/get", "checks")
async def _get_check_run(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    check_id = ctx.int_param("check_run_id")
    check = repo.check_runs.get(check_id)
    if check is not None:
        return _json(fake.check_run_json(repo, check))
    found = fake.find_job(repo, check_id)
    if found is None:
        raise GitHubError(404, "Not Found")
    return _json(fake.job_check_run_json(repo, *found))


@operation("checks/list-for-ref", "checks")
async def _list_check_runs_for_ref(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    """Check runs of a commit (a sha, branch or tag): the app-made ones and one per GitHub
    Actions job, newest first."""
    repo = _require_repo(ctx)
    ref = ctx.params["ref"]
    if repo.git_dir is not None:
        sha = fake._ref_for_contents(repo, ref.removeprefix("refs/heads/"))
        if sha is None:
            raise GitHubError(422, f"No commit found for SHA: {ref}")
    else:
        sha = fake.branch_sha(repo.full_name, ref.removeprefix("refs/heads/")) or ref
    items = [fake.check_run_json(repo, c) for c in repo.check_runs.values() if c.head_sha == sha]
    for run in repo.workflow_runs.values():
        if run.head_sha == sha:
            items.extend(fake.job_check_run_json(repo, run, job) for job in run.jobs)
    query = ctx.request.query
    if query.get("check_name"):
        items = [c for c in items if c["name"] == query["check_name"]]
    if query.get("status"):
        items = [c for c in items if c["status"] == query["status"]]
    if query.get("app_id"):
        items = [c for c in items if str(c["app"]["id"]) == query["app_id"]]
    items.sort(key=lambda c: c["id"], reverse=True)
    if query.get("filter", "latest") == "latest":
        # Only the most recent run of each name (per app).
        seen: set[tuple[int, str]] = set()
        latest = []
        for item in items:
            key = (item["app"]["id"], item["name"])
            if key not in seen:
                seen.add(key)
                latest.append(item)
        items = latest
    return fake.paginate(
        ctx.request, items, wrap=lambda page: {"total_count": len(items), "check_runs": page}
    )
