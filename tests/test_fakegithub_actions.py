"""GitHub Actions runs, jobs and logs, check runs, commit -> PRs, the issue list and webhook
payload builders on the FakeGitHub, driven through gidgethub's real aiohttp client."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from gidgethub import BadRequest
from gidgethub.aiohttp import GitHubAPI

from tests.support.fakegithub import FakeGitHub, FakeJob, FakeWorkflowRun, running_fake

REPO = {"owner": "octo", "repo": "hello"}
FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    """A real payload, copied from the shared examples into tests/fixtures/webhooks."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    async with running_fake() as fake:
        fake.add_repo("octo/hello", installation_id=1, labels=["bug", "urgent", "ci"])
        fake.add_branch("octo/hello", "feature")
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def token(fake: FakeGitHub) -> str:
    return fake.mint_token(1).token


@pytest.fixture
def gh(fake: FakeGitHub, session: aiohttp.ClientSession, token: str) -> GitHubAPI:
    return GitHubAPI(session, "test", oauth_token=token, base_url=fake.url)


def seed_run(fake: FakeGitHub, **overrides: Any) -> FakeWorkflowRun:
    args: dict[str, Any] = {
        "workflow_id": 7,
        "name": "CI",
        "head_branch": "main",
        "head_sha": fake.branch_sha("octo/hello", "main"),
        "jobs": [
            FakeJob(
                "test",
                "failure",
                [("Set up job", "success"), ("Run pytest", "failure")],
                log="2024-05-01T12:00:01Z E   assert add(1, 2) == 3\n",
            ),
            FakeJob("lint", "success", [("Run ruff", "success")], log=b"All checks passed!\n"),
        ],
    }
    args.update(overrides)
    return fake.add_workflow_run("octo/hello", **args)


# --------------------------------------------------------------------------------- runs, jobs


async def test_get_run_has_githubs_shape(fake: FakeGitHub, gh: GitHubAPI) -> None:
    pull = fake.add_pull("octo/hello", head="feature", title="Fix add")
    run = seed_run(
        fake,
        head_branch="feature",
        head_sha=fake.branch_sha("octo/hello", "feature"),
        event="pull_request",
        pull_requests=[pull.number],
        created_at=T0,
    )
    data = await gh.getitem(
        "/repos/{owner}/{repo}/actions/runs/{run_id}", {**REPO, "run_id": run.id}
    )
    assert set(data) == set(example("workflow_run/completed.2")["workflow_run"])
    assert (data["id"], data["status"], data["conclusion"], data["event"]) == (
        run.id,
        "completed",
        "failure",
        "pull_request",
    )
    assert data["display_title"] == "Fix add"
    assert data["created_at"] == "2024-05-01T12:00:00Z"
    assert data["jobs_url"] == f"{fake.url}/repos/octo/hello/actions/runs/{run.id}/jobs"
    (entry,) = data["pull_requests"]
    assert set(entry) == {"url", "id", "number", "head", "base"}
    assert entry["number"] == pull.number
    assert entry["head"]["ref"] == "feature" and entry["base"]["ref"] == "main"
    assert set(entry["head"]["repo"]) == {"id", "url", "name"}
    example_repo = example("workflow_run/completed.2")["workflow_run"]["repository"]
    assert set(data["repository"]) == set(example_repo)

    no_prs = await gh.getitem(
        "/repos/{owner}/{repo}/actions/runs/{run_id}{?exclude_pull_requests}",
        {**REPO, "run_id": run.id, "exclude_pull_requests": "true"},
    )
    assert no_prs["pull_requests"] == []
    with pytest.raises(BadRequest) as exc:
        await gh.getitem("/repos/{owner}/{repo}/actions/runs/{run_id}", {**REPO, "run_id": 1})
    assert exc.value.status_code == 404
    fake.assert_no_violations()


async def test_list_jobs_paginates_with_link_headers(
    fake: FakeGitHub, gh: GitHubAPI, session: aiohttp.ClientSession, token: str
) -> None:
    jobs = [FakeJob(f"test ({i})", "success", [("Run pytest", "success")]) for i in range(35)]
    run = seed_run(fake, jobs=jobs)
    seen = [
        job
        async for job in gh.getiter(
            "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs{?filter,per_page}",
            {**REPO, "run_id": run.id, "filter": "latest", "per_page": 10},
            iterable_key="jobs",
        )
    ]
    assert [j["name"] for j in seen] == [f"test ({i})" for i in range(35)]
    assert len(fake.requests_for("actions/list-jobs-for-workflow-run")) == 4
    first = seen[0]
    assert (first["run_id"], first["workflow_name"], first["head_branch"]) == (run.id, "CI", "main")
    assert first["status"] == "completed" and first["labels"] == ["ubuntu-latest"]
    assert first["steps"][0] | {"started_at": None, "completed_at": None} == {
        "name": "Run pytest",
        "status": "completed",
        "conclusion": "success",
        "number": 1,
        "started_at": None,
        "completed_at": None,
    }
    assert set(first) >= set(example("workflow_job/completed.1")["workflow_job"])

    url = f"{fake.url}/repos/octo/hello/actions/runs/{run.id}/jobs?per_page=10&page=2"
    async with session.get(url, headers={"Authorization": f"token {token}"}) as resp:
        body = await resp.json()
        link = resp.headers["Link"]
    assert body["total_count"] == 35 and len(body["jobs"]) == 10
    assert 'page=3>; rel="next"' in link and 'page=4>; rel="last"' in link
    assert 'page=1>; rel="prev"' in link
    fake.assert_no_violations()


async def test_jobs_filter_latest_hides_earlier_attempts(fake: FakeGitHub, gh: GitHubAPI) -> None:
    run = seed_run(
        fake,
        jobs=[
            FakeJob("test", "failure", [("Run pytest", "failure")], run_attempt=1),
            FakeJob("test", "success", [("Run pytest", "success")], run_attempt=2),
        ],
    )
    assert run.run_attempt == 2
    path = "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs{?filter}"
    latest = await gh.getitem(path, {**REPO, "run_id": run.id, "filter": "latest"})
    every = await gh.getitem(path, {**REPO, "run_id": run.id, "filter": "all"})
    assert [j["conclusion"] for j in latest["jobs"]] == ["success"]
    assert [j["run_attempt"] for j in every["jobs"]] == [1, 2]
    fake.assert_no_violations()


async def test_list_runs_filters_by_branch_status_and_sha(fake: FakeGitHub, gh: GitHubAPI) -> None:
    main_sha = fake.branch_sha("octo/hello", "main")
    feature_sha = fake.branch_sha("octo/hello", "feature")
    old_green = seed_run(fake, conclusion="success", created_at=T0)
    red = seed_run(fake, conclusion="failure", created_at=T0 + timedelta(hours=1))
    new_green = seed_run(fake, conclusion="success", created_at=T0 + timedelta(hours=2))
    feature_red = seed_run(
        fake, head_branch="feature", head_sha=feature_sha, created_at=T0 + timedelta(hours=3)
    )
    other_workflow = seed_run(
        fake, workflow_id=8, name="Docs", path=".github/workflows/docs.yml", created_at=T0
    )
    running = seed_run(fake, status="in_progress", created_at=T0 + timedelta(hours=4))
    assert running.conclusion is None

    def ids(data: dict[str, Any]) -> list[int]:
        return [r["id"] for r in data["workflow_runs"]]

    per_workflow = (
        "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs{?branch,status,per_page}"
    )
    # The newest successful run of a workflow on a branch (what the bot uses as the baseline).
    data = await gh.getitem(
        per_workflow,
        {**REPO, "workflow_id": 7, "branch": "main", "status": "success", "per_page": 1},
    )
    assert (ids(data), data["total_count"]) == ([new_green.id], 2)
    # The file name works as the workflow id too; newest first; a status or a conclusion.
    by_file = await gh.getitem(per_workflow, {**REPO, "workflow_id": "ci.yml", "branch": "main"})
    assert ids(by_file) == [running.id, new_green.id, red.id, old_green.id]
    completed = await gh.getitem(per_workflow, {**REPO, "workflow_id": 7, "status": "completed"})
    assert ids(completed) == [feature_red.id, new_green.id, red.id, old_green.id]
    assert {r["run_number"] for r in completed["workflow_runs"]} == {1, 2, 3, 4}

    for_repo = "/repos/{owner}/{repo}/actions/runs{?head_sha,status,event,per_page}"
    failed = await gh.getitem(for_repo, {**REPO, "head_sha": main_sha, "status": "failure"})
    assert ids(failed) == [red.id, other_workflow.id]
    on_feature = await gh.getitem(for_repo, {**REPO, "head_sha": feature_sha})
    assert ids(on_feature) == [feature_red.id]
    assert (await gh.getitem(for_repo, {**REPO, "event": "schedule"}))["total_count"] == 0
    paged = [
        r
        async for r in gh.getiter(
            "/repos/{owner}/{repo}/actions/runs{?per_page}",
            {**REPO, "per_page": 2},
            iterable_key="workflow_runs",
        )
    ]
    assert len(paged) == 6

    with pytest.raises(BadRequest) as exc:
        await gh.getitem(per_workflow, {**REPO, "workflow_id": "nope.yml"})
    assert exc.value.status_code == 404
    fake.assert_no_violations()


async def test_actions_endpoints_need_the_actions_permission(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    run = seed_run(fake)
    weak = fake.mint_token(1, permissions={"metadata": "read", "issues": "write"}).token
    gh = GitHubAPI(session, "test", oauth_token=weak, base_url=fake.url)
    for path, extra in (
        ("/repos/{owner}/{repo}/actions/runs/{run_id}", {"run_id": run.id}),
        ("/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", {"run_id": run.id}),
        ("/repos/{owner}/{repo}/actions/runs", {}),
        ("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", {"job_id": run.jobs[0].id}),
        ("/repos/{owner}/{repo}/commits/{ref}/check-runs", {"ref": run.head_sha}),
    ):
        with pytest.raises(BadRequest) as exc:
            await gh.getitem(path, {**REPO, **extra})
        assert exc.value.status_code == 403, path
        assert "Resource not accessible by integration" in str(exc.value)
    fake.assert_no_violations()


# --------------------------------------------------------------------------------- logs


async def logs_location(
    fake: FakeGitHub, session: aiohttp.ClientSession, token: str, job_id: int | None
) -> str:
    url = f"{fake.url}/repos/octo/hello/actions/jobs/{job_id}/logs"
    headers = {"Authorization": f"token {token}", "Accept": "application/vnd.github+json"}
    async with session.get(url, headers=headers, allow_redirects=False) as resp:
        assert resp.status == 302
        return resp.headers["Location"]


async def test_job_log_redirects_to_another_origin_with_a_signed_url(
    fake: FakeGitHub, session: aiohttp.ClientSession, token: str
) -> None:
    run = seed_run(fake)
    test_job, lint_job = run.jobs
    location = await logs_location(fake, session, token, test_job.id)
    api, blob = urlsplit(fake.url), urlsplit(location)
    assert (blob.hostname, blob.port) == ("127.0.0.1", urlsplit(fake.blob_url).port)
    assert blob.port != api.port  # another origin: a client must not send the token there
    assert location.startswith(fake.blob_url + "/")
    sig = parse_qs(blob.query)["sig"][0]
    assert len(sig) >= 32 and str(test_job.id) not in sig

    async with session.get(location) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        assert await resp.read() == b"2024-05-01T12:00:01Z E   assert add(1, 2) == 3\n"
    assert len(fake.blob_requests) == 1
    assert token not in repr(fake.blob_requests)
    assert "Authorization" not in fake.blob_requests[0].headers
    fake.assert_no_violations()

    # A signature is for one job's blob only.
    other = await logs_location(fake, session, token, lint_job.id)
    other_sig = parse_qs(urlsplit(other).query)["sig"][0]
    async with session.get(location.replace(sig, other_sig)) as resp:
        assert resp.status == 403
        assert "AuthenticationFailed" in await resp.text()
    async with session.get(blob._replace(query="").geturl()) as resp:
        assert resp.status == 403
    async with session.get(other) as resp:
        assert await resp.read() == b"All checks passed!\n"

    # ... and for one minute.
    fake.expire_blob_urls()
    async with session.get(location) as resp:
        assert resp.status == 403
    assert [r.status for r in fake.blob_requests] == [200, 403, 403, 200, 403]
    fake.assert_no_violations()


async def test_authorization_header_on_the_blob_host_is_a_violation(
    fake: FakeGitHub, session: aiohttp.ClientSession, token: str
) -> None:
    run = seed_run(fake)
    location = await logs_location(fake, session, token, run.jobs[0].id)
    # Following the redirect by hand while keeping the header: the bug this guards against.
    async with session.get(location, headers={"Authorization": f"token {token}"}) as resp:
        assert resp.status == 200  # storage still answers; the leak is what fails the test
    assert fake.blob_requests[-1].headers["Authorization"] == f"token {token}"
    with pytest.raises(AssertionError, match="Authorization header sent to the blob storage"):
        fake.assert_no_violations()


async def test_gidgethub_follows_the_log_redirect_without_leaking_the_token(
    fake: FakeGitHub, gh: GitHubAPI, token: str
) -> None:
    # aiohttp drops Authorization on a cross-origin redirect, so the plain client path is safe.
    run = seed_run(fake)
    text = await gh.getitem(
        "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", {**REPO, "job_id": run.jobs[1].id}
    )
    assert text == "All checks passed!\n"
    assert token not in repr(fake.blob_requests)
    fake.assert_no_violations()


async def test_job_without_log_or_unknown_job_is_404(fake: FakeGitHub, gh: GitHubAPI) -> None:
    run = seed_run(fake, jobs=[FakeJob("queued", None, [], log="")], status="queued")
    for job_id in (run.jobs[0].id, 999_999):
        with pytest.raises(BadRequest) as exc:
            await gh.getitem(
                "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", {**REPO, "job_id": job_id}
            )
        assert exc.value.status_code == 404
    assert fake.blob_requests == []
    fake.assert_no_violations()


async def test_run_logs_archive(
    fake: FakeGitHub, session: aiohttp.ClientSession, token: str
) -> None:
    run = seed_run(fake)
    run.jobs[0].step_logs["Run pytest"] = "E   assert add(1, 2) == 3\n"
    url = f"{fake.url}/repos/octo/hello/actions/runs/{run.id}/logs"
    async with session.get(
        url, headers={"Authorization": f"token {token}"}, allow_redirects=False
    ) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    async with session.get(location) as resp:
        assert resp.status == 200 and resp.content_type == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert sorted(archive.namelist()) == [
        "0_test.txt",
        "1_lint.txt",
        "lint/1_Run ruff.txt",
        "test/1_Set up job.txt",
        "test/2_Run pytest.txt",
    ]
    assert archive.read("1_lint.txt") == b"All checks passed!\n"
    assert archive.read("test/2_Run pytest.txt") == b"E   assert add(1, 2) == 3\n"
    fake.assert_no_violations()


# --------------------------------------------------------------------------------- check runs


async def test_check_run_create_update_and_list_for_ref(fake: FakeGitHub, gh: GitHubAPI) -> None:
    sha = fake.branch_sha("octo/hello", "feature")
    pull = fake.add_pull("octo/hello", head="feature")
    made = await gh.post(
        "/repos/{owner}/{repo}/check-runs",
        REPO,
        data={
            "name": "loopwright/reproduce",
            "head_sha": sha,
            "status": "in_progress",
            "external_id": "job-1",
            "output": {"title": "Reproducing", "summary": "Working on it"},
        },
    )
    assert (made["status"], made["conclusion"], made["completed_at"]) == ("in_progress", None, None)
    assert made["app"]["slug"] == fake.app_slug and made["app"]["id"] == fake.app_id
    assert made["output"]["annotations_count"] == 0
    assert [p["number"] for p in made["pull_requests"]] == [pull.number]
    assert set(made) >= set(example("check_run/completed.1")["check_run"]) - {"deployment"}

    updated = await gh.patch(
        "/repos/{owner}/{repo}/check-runs/{check_run_id}",
        {**REPO, "check_run_id": made["id"]},
        data={
            "conclusion": "failure",
            "output": {
                "title": "Reproduced",
                "summary": "The test fails on main",
                "text": "details",
                "annotations": [
                    {
                        "path": "app.py",
                        "start_line": 2,
                        "end_line": 2,
                        "annotation_level": "failure",
                        "message": "subtracts",
                    }
                ],
            },
        },
    )
    # A conclusion completes the run.
    assert (updated["status"], updated["conclusion"]) == ("completed", "failure")
    assert updated["completed_at"] is not None
    assert updated["output"] | {"annotations_url": ""} == {
        "title": "Reproduced",
        "summary": "The test fails on main",
        "text": "details",
        "annotations_count": 1,
        "annotations_url": "",
    }
    stored = fake.repo("octo/hello").check_runs[made["id"]]
    assert [op for op, _ in stored.history] == ["checks/create", "checks/update"]
    assert stored.history[1][1]["conclusion"] == "failure"

    # Another check on the same commit, and a GitHub Actions job's check run.
    await gh.post(
        "/repos/{owner}/{repo}/check-runs",
        REPO,
        data={"name": "other", "head_sha": sha, "conclusion": "success"},
    )
    run = seed_run(fake, head_branch="feature", head_sha=sha)
    listed = await gh.getitem(
        "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,per_page}",
        {**REPO, "ref": sha, "check_name": "loopwright/reproduce", "per_page": 100},
    )
    assert listed["total_count"] == 1
    assert listed["check_runs"][0]["id"] == made["id"]
    assert listed["check_runs"][0]["output"]["title"] == "Reproduced"
    every = await gh.getitem(
        "/repos/{owner}/{repo}/commits/{ref}/check-runs", {**REPO, "ref": "feature"}
    )
    by_name = {c["name"]: c["app"]["slug"] for c in every["check_runs"]}
    assert by_name == {
        "loopwright/reproduce": "loopwright",
        "other": "loopwright",
        "test": "github-actions",
        "lint": "github-actions",
    }
    job_check = next(c for c in every["check_runs"] if c["name"] == "test")
    assert job_check["id"] == run.jobs[0].id and job_check["conclusion"] == "failure"
    assert (
        await gh.getitem("/repos/{owner}/{repo}/commits/{ref}/check-runs", {**REPO, "ref": "main"})
    )["total_count"] == 0

    # A job's check run belongs to GitHub Actions: this app cannot edit it.
    with pytest.raises(BadRequest) as exc:
        await gh.patch(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            {**REPO, "check_run_id": run.jobs[0].id},
            data={"conclusion": "success"},
        )
    assert exc.value.status_code == 403
    fake.assert_no_violations()


async def test_check_run_summary_over_the_limit_is_422(fake: FakeGitHub, gh: GitHubAPI) -> None:
    sha = fake.branch_sha("octo/hello", "main")
    with pytest.raises(BadRequest) as exc:
        await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            REPO,
            data={
                "name": "loopwright",
                "head_sha": sha,
                "conclusion": "neutral",
                "output": {"title": "t", "summary": "x" * 65536},
            },
        )
    assert exc.value.status_code == 422
    assert "Only 65535 characters are allowed; 65536 were supplied" in str(exc.value)
    assert fake.repo("octo/hello").check_runs == {}
    (violation,) = fake.violations
    assert "output/summary" in violation and "x" * 100 not in violation

    fake.violations.clear()
    ok = await gh.post(
        "/repos/{owner}/{repo}/check-runs",
        REPO,
        data={
            "name": "loopwright",
            "head_sha": sha,
            "conclusion": "neutral",
            "output": {"title": "t", "summary": "x" * 65535},
        },
    )
    assert len(ok["output"]["summary"]) == 65535
    # "completed" without a conclusion is refused as well.
    with pytest.raises(BadRequest) as exc:
        await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            REPO,
            data={"name": "loopwright", "head_sha": sha, "status": "completed"},
        )
    assert exc.value.status_code == 422 and "conclusion" in str(exc.value)


async def test_check_runs_need_the_checks_permission(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    reader = fake.mint_token(1, permissions={"checks": "read", "metadata": "read"}).token
    gh = GitHubAPI(session, "test", oauth_token=reader, base_url=fake.url)
    sha = fake.branch_sha("octo/hello", "main")
    listed = await gh.getitem(
        "/repos/{owner}/{repo}/commits/{ref}/check-runs", {**REPO, "ref": sha}
    )
    assert listed == {"total_count": 0, "check_runs": []}
    with pytest.raises(BadRequest) as exc:
        await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            REPO,
            data={"name": "x", "head_sha": sha, "conclusion": "success"},
        )
    assert exc.value.status_code == 403


async def test_check_run_head_sha_must_exist_in_a_git_repo(tmp_path: Path) -> None:
    async with running_fake(git_root=tmp_path / "served") as fake:
        fake.add_repo("octo/hello", git=True, files={"a.py": "x = 1\n"})
        async with aiohttp.ClientSession() as session:
            gh = GitHubAPI(session, "t", oauth_token=fake.mint_token(1).token, base_url=fake.url)
            with pytest.raises(BadRequest) as exc:
                await gh.post(
                    "/repos/{owner}/{repo}/check-runs",
                    REPO,
                    data={"name": "x", "head_sha": "ab" * 20, "conclusion": "success"},
                )
            assert exc.value.status_code == 422
            assert "No commit found for SHA" in str(exc.value)


# --------------------------------------------------------------------------------- commits, issues


async def test_pulls_for_a_commit(fake: FakeGitHub, gh: GitHubAPI) -> None:
    fake.add_branch("octo/hello", "other")
    open_pull = fake.add_pull("octo/hello", head="feature")
    closed = fake.add_pull("octo/hello", head="other")
    closed.issue.state = "closed"
    feature_sha = fake.branch_sha("octo/hello", "feature")

    async def numbers(sha: str | None) -> list[int]:
        return [
            p["number"]
            async for p in gh.getiter(
                "/repos/{owner}/{repo}/commits/{commit_sha}/pulls", {**REPO, "commit_sha": sha}
            )
        ]

    assert await numbers(feature_sha) == [open_pull.number]
    # Closed without merging: not associated any more.
    assert await numbers(fake.branch_sha("octo/hello", "other")) == []
    assert await numbers(fake.branch_sha("octo/hello", "main")) == []
    assert await numbers("feature") == [open_pull.number]  # a branch name works too
    fake.assert_no_violations()


async def test_pulls_for_a_commit_in_git(tmp_path: Path) -> None:
    async with running_fake(git_root=tmp_path / "served") as fake:
        fake.add_repo("octo/hello", git=True, files={"a.py": "x = 1\n"})
        first = fake.seed_git("octo/hello", {"a.py": "x = 2\n"}, branch="fix")
        tip = fake.seed_git("octo/hello", {"a.py": "x = 3\n"}, branch="fix")
        pull = fake.add_pull("octo/hello", head="fix", user="dependabot[bot]", user_type="Bot")
        async with aiohttp.ClientSession() as session:
            gh = GitHubAPI(session, "t", oauth_token=fake.mint_token(1).token, base_url=fake.url)
            path = "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"
            for sha in (tip, first):  # the head, or any commit the PR brings
                (found,) = await gh.getitem(path, {**REPO, "commit_sha": sha})
                assert found["number"] == pull.number
                assert found["user"] | {"id": 0} == found["user"] | {
                    "login": "dependabot[bot]",
                    "type": "Bot",
                    "id": 0,
                }
            main = fake.branch_sha("octo/hello", "main")
            assert await gh.getitem(path, {**REPO, "commit_sha": main}) == []
            with pytest.raises(BadRequest) as exc:
                await gh.getitem(path, {**REPO, "commit_sha": "ab" * 20})
            assert exc.value.status_code == 422
        fake.assert_no_violations()


async def test_issue_list_filters_like_github(fake: FakeGitHub, gh: GitHubAPI) -> None:
    one = fake.add_issue("octo/hello", title="crash", user="alice", labels=["bug", "urgent"])
    two = fake.add_issue("octo/hello", title="slow", user="bob", labels=["bug"])
    three = fake.add_issue("octo/hello", title="old", user="alice", labels=["bug"], state="closed")
    tracking = fake.add_issue("octo/hello", title="CI red", user=fake.bot_login, labels=["ci"])
    pull = fake.add_pull("octo/hello", head="feature", user="alice")

    async def listed(**query: str) -> list[int]:
        template = "/repos/{owner}/{repo}/issues{?state,labels,creator,per_page,direction,sort}"
        return [i["number"] async for i in gh.getiter(template, {**REPO, **query})]

    # Open by default, newest first, PRs included.
    assert await listed() == [pull.number, tracking.number, two.number, one.number]
    assert await listed(state="closed") == [three.number]
    assert await listed(state="all", per_page="2") == [
        pull.number,
        tracking.number,
        three.number,
        two.number,
        one.number,
    ]
    assert await listed(labels="bug,URGENT") == [one.number]  # every label must match
    assert await listed(labels="bug", state="all", direction="asc") == [
        one.number,
        two.number,
        three.number,
    ]
    assert await listed(labels="nope") == []
    assert await listed(creator="alice") == [pull.number, one.number]
    assert await listed(creator=fake.bot_login) == [tracking.number]

    data = await gh.getitem("/repos/{owner}/{repo}/issues{?creator}", {**REPO, "creator": "alice"})
    assert "pull_request" in data[0] and "pull_request" not in data[1]
    assert data[0]["pull_request"]["url"].endswith(f"/pulls/{pull.number}")
    fake.assert_no_violations()


# --------------------------------------------------------------------------------- payloads


async def test_workflow_run_payload_has_the_real_shape(fake: FakeGitHub) -> None:
    pull = fake.add_pull("octo/hello", head="feature")
    run = seed_run(
        fake,
        head_branch="feature",
        head_sha=fake.branch_sha("octo/hello", "feature"),
        event="pull_request",
        pull_requests=[pull.number],
        actor="dependabot[bot]",
    )
    real = example("workflow_run/completed.2")
    data = fake.workflow_run_payload("octo/hello", run)
    # A user-owned repo has no `organization`; an installed App's delivery has `installation`.
    assert set(data) == set(real) - {"organization"} | {"installation"}
    assert data["installation"]["id"] == 1
    assert data["action"] == "completed"
    assert set(data["workflow_run"]) == set(real["workflow_run"])
    assert set(data["workflow"]) == set(real["workflow"])
    assert set(data["repository"]) >= set(real["repository"])
    assert set(data["sender"]) == set(real["sender"])
    assert data["sender"]["login"] == "dependabot[bot]" and data["sender"]["type"] == "Bot"
    assert data["workflow_run"]["pull_requests"][0]["number"] == pull.number
    assert data["workflow"]["id"] == 7 and data["workflow"]["path"] == ".github/workflows/ci.yml"
    assert fake.workflow_run_payload("octo/hello", run.id, "requested")["action"] == "requested"
    json.dumps(data)  # deliverable as is

    fake.add_repo("acme/app", installation_id=5, owner_type="Organization")
    org_run = fake.add_workflow_run(
        "acme/app", workflow_id=1, name="CI", head_branch="main", head_sha="a" * 40
    )
    org_data = fake.workflow_run_payload("acme/app", org_run)
    assert set(org_data) == set(real) | {"installation"}
    assert set(org_data["organization"]) == set(real["organization"])


async def test_pull_request_payload_has_the_real_shape(fake: FakeGitHub) -> None:
    pull = fake.add_pull(
        "octo/hello", head="feature", title="Bump x", user="dependabot[bot]", user_type="Bot"
    )
    real = example("pull_request/opened.12")
    data = fake.pull_request_payload("octo/hello", pull.number)
    assert set(data) == set(real)
    assert (data["action"], data["number"], data["installation"]["id"]) == (
        "opened",
        pull.number,
        1,
    )
    assert set(data["pull_request"]) >= set(example("pull_request/opened.0")["pull_request"])
    assert data["pull_request"]["user"]["login"] == "dependabot[bot]"
    assert data["pull_request"]["user"]["type"] == "Bot"
    assert data["sender"]["login"] == "dependabot[bot]"
    assert set(data["repository"]) >= set(real["repository"])
    assert set(data["sender"]) == set(real["sender"])
    assert data["pull_request"]["head"]["sha"] == fake.branch_sha("octo/hello", "feature")

    sync = fake.pull_request_payload(
        "octo/hello", pull.number, "synchronize", sender="alice", before="0" * 40
    )
    assert set(sync) == set(example("pull_request/synchronize.22"))
    assert sync["after"] == data["pull_request"]["head"]["sha"]
    assert sync["sender"]["login"] == "alice" and sync["sender"]["type"] == "User"
    labeled = fake.pull_request_payload("octo/hello", pull.number, "labeled", label="bug")
    assert labeled["label"]["name"] == "bug"
    with pytest.raises(ValueError):
        fake.pull_request_payload("octo/hello", pull.number, "synchronize")
