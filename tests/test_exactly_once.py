"""Exactly once: a write whose response is lost is never repeated blindly.

GitHub may apply a POST and the answer may still never arrive (a dropped connection, a timeout,
a 502 from the load balancer). Repeating such a POST makes a second comment, PR, check run or
issue. These tests lose responses on the FakeGitHub (over real HTTP, through gidgethub) and
check that every kind of output ends up existing exactly once, with the content we meant.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.forge import STICKY_MARKER, TRACKING_MARKER, GitHubForge, compose_sticky
from bot.github import AmbiguousWrite, GitHubApp, GitHubGaveUp, RepoClient
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import FakeGitHub, LoseMode, running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.triage_repo import CONFIG, LABELS, opened

REPO = "octo/hello"
BOT = "loopwright[bot]"
COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
PATH = "/repos/octo/hello/issues/1/comments"
SHA = "a" * 40
MODES: list[LoseMode] = ["drop", "502"]


@dataclass
class Env:
    fake: FakeGitHub
    client: RepoClient
    forge: GitHubForge
    #: Every backoff the retrying client asked for (nothing is really slept).
    sleeps: list[float]

    def issue(self, number: int = 1) -> Any:
        return self.fake.repo(REPO).issues[number]

    def bot_comments(self, number: int = 1) -> list[Any]:
        return [c for c in self.issue(number).comments if c.user_login == BOT]


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    async with running_fake() as fake:
        fake.add_repo(REPO, installation_id=1, labels=["bug", "enhancement"])
        fake.add_issue(REPO, number=1, title="It broke", body="Steps...", user="alice")
        yield fake


async def make_env(fake: FakeGitHub, session: aiohttp.ClientSession) -> Env:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    app = GitHubApp(
        session,
        app_id=fake.app_id,
        private_key_pem=fake.private_key_pem,
        base_url=fake.url,
        sleep=sleep,
    )
    client = app.for_repo(1, REPO)
    await client.token()  # minted up front: the faults below are for the calls under test
    forge = GitHubForge(client, bot_login=await app.bot_login(), secrets=[])
    return Env(fake, client, forge, sleeps)


@pytest.fixture
async def env(fake: FakeGitHub) -> AsyncIterator[Env]:
    async with aiohttp.ClientSession() as session:
        yield await make_env(fake, session)
    fake.assert_no_violations()


# ------------------------------------------------------------------------- the retrying client


@pytest.mark.parametrize("mode", MODES)
async def test_post_whose_response_is_lost_is_not_repeated(env: Env, mode: LoseMode) -> None:
    env.fake.lose_response(method="POST", path_regex=r"/issues/1/comments$", mode=mode)
    with pytest.raises(AmbiguousWrite) as exc:
        await env.client.post(COMMENTS, {"issue_number": 1}, data={"body": "hello"})
    assert isinstance(exc.value, GitHubGaveUp)
    assert (exc.value.method, exc.value.url) == ("POST", f"{env.fake.url}{PATH}")
    # GitHub applied it once, and it was asked once.
    [rec] = env.fake.requests_for("issues/create-comment")
    assert (rec.status, rec.lost) == (201, mode)
    assert [c.body for c in env.bot_comments()] == ["hello"]
    assert env.sleeps == []


async def test_post_answered_5xx_is_not_repeated_either(env: Env) -> None:
    # A 5xx says nothing about whether the write happened (here it did not).
    env.fake.fail_next(method="POST", path_regex=r"/comments$", status=502)
    with pytest.raises(AmbiguousWrite):
        await env.client.post(COMMENTS, {"issue_number": 1}, data={"body": "hello"})
    assert len(env.fake.requests_for("issues/create-comment")) == 1
    assert env.bot_comments() == []


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, {"Retry-After": "1"}, 1.0),
        (403, {"Retry-After": "2"}, 2.0),  # secondary rate limit
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"}, 1.0),  # primary limit
    ],
)
async def test_post_rejected_by_a_rate_limit_is_retried_once_applied(
    env: Env, status: int, headers: dict[str, str], wait: float
) -> None:
    # A rate-limit answer is a definite "not applied": repeating the POST is safe.
    env.fake.fail_next(method="POST", path_regex=r"/comments$", status=status, headers=headers)
    made = await env.client.post(COMMENTS, {"issue_number": 1}, data={"body": "hello"})
    assert made["body"] == "hello"
    assert [r.status for r in env.fake.requests_for("issues/create-comment")] == [status, 201]
    assert len(env.bot_comments()) == 1
    assert env.sleeps == [wait]


async def test_get_with_dropped_connections_is_retried(env: Env) -> None:
    # aiohttp itself repeats an idempotent request once when a kept-alive connection drops;
    # the second drop reaches our client, which backs off and tries again.
    env.fake.lose_response(method="GET", path_regex=r"/issues/1$", mode="drop", times=2)
    issue = await env.client.get("/repos/{owner}/{repo}/issues/{issue_number}", {"issue_number": 1})
    assert issue["title"] == "It broke"
    assert [r.lost for r in env.fake.requests_for("issues/get")] == ["drop", "drop", None]
    assert len(env.sleeps) >= 1


async def test_patch_with_a_lost_response_is_retried(env: Env) -> None:
    env.fake.add_comment(REPO, 1, "old", user="alice")
    [comment] = env.issue().comments
    env.fake.lose_response(method="PATCH", path_regex=r"/comments/\d+$", mode="502")
    data = await env.client.patch(
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        {"comment_id": comment.id},
        data={"body": "new"},
    )
    assert data["body"] == "new" == comment.body
    assert len(env.fake.requests_for("issues/update-comment")) == 2


async def test_idempotent_post_is_retried_and_the_mark_does_not_leak(env: Env) -> None:
    labels = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
    env.fake.lose_response(method="POST", path_regex=r"/labels$", mode="drop")
    await env.client.post(labels, {"issue_number": 1}, data={"labels": ["bug"]}, idempotent=True)
    assert env.issue().labels == ["bug"]
    assert [r.lost for r in env.fake.requests_for("issues/add-labels")] == ["drop", None]
    # The next plain POST is not idempotent any more.
    env.fake.lose_response(method="POST", path_regex=r"/comments$", mode="drop")
    with pytest.raises(AmbiguousWrite):
        await env.client.post(COMMENTS, {"issue_number": 1}, data={"body": "hello"})


async def test_token_mint_is_retried_after_a_lost_response(fake: FakeGitHub) -> None:
    fake.lose_response(method="POST", path_regex=r"/access_tokens$", mode="drop")
    async with aiohttp.ClientSession() as session:
        await make_env(fake, session)
    assert [r.lost for r in fake.requests_for("apps/create-installation-access-token")] == [
        "drop",
        None,
    ]


async def test_timeouts_are_ambiguous_for_posts_and_retried_for_gets(fake: FakeGitHub) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
        e = await make_env(fake, session)
        fake.lose_response(method="GET", path_regex=r"/issues/1$", mode="timeout", delay=2)
        issue = await e.client.get(
            "/repos/{owner}/{repo}/issues/{issue_number}", {"issue_number": 1}
        )
        assert issue["number"] == 1
        fake.lose_response(method="POST", path_regex=r"/comments$", mode="timeout", delay=2)
        with pytest.raises(AmbiguousWrite) as exc:
            await e.client.post(COMMENTS, {"issue_number": 1}, data={"body": "hello"})
        assert "Timeout" in exc.value.last
    assert [r.lost for r in fake.requests_for("issues/get")] == ["timeout", None]
    assert len(e.bot_comments()) == 1 and len(fake.requests_for("issues/create-comment")) == 1


async def test_post_that_could_not_connect_is_retried(fake: FakeGitHub) -> None:
    # Connection refused: the request never left, so trying again cannot duplicate anything.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with aiohttp.ClientSession() as session:
        app = GitHubApp(
            session, app_id=1, private_key_pem=fake.private_key_pem, base_url=closed, sleep=sleep
        )
        with pytest.raises(GitHubGaveUp) as exc:
            await app.api.post(
                "/repos/o/r/issues/1/comments", data={"body": "x"}, oauth_token="ghs_x"
            )
    assert not isinstance(exc.value, AmbiguousWrite)
    assert exc.value.tries == 5 and len(sleeps) == 4


# ------------------------------------------------------------------------- every kind of output


@pytest.mark.parametrize("mode", MODES)
async def test_sticky_comment_create_with_a_lost_response(env: Env, mode: LoseMode) -> None:
    env.fake.lose_response(method="POST", path_regex=r"/issues/1/comments$", mode=mode)
    url = await env.forge.upsert_sticky(1, "triage", "Looks like a bug.")
    [comment] = env.bot_comments()
    assert url.endswith(f"#issuecomment-{comment.id}")
    assert STICKY_MARKER in comment.body and "Looks like a bug." in comment.body
    assert len(env.fake.requests_for("issues/create-comment")) == 1
    # The comment found is edited to what the create meant.
    [edit] = env.fake.requests_for("issues/update-comment")
    assert edit.json == {"body": comment.body}


async def test_sticky_comment_found_after_a_lost_create_keeps_other_sections(env: Env) -> None:
    def another_job_writes_its_section(fake: FakeGitHub) -> None:
        [ours] = fake.repo(REPO).issues[1].comments
        ours.body = compose_sticky(ours.body, "fix", "Fixing it.")

    env.fake.lose_response(
        method="POST", path_regex=r"/comments$", meanwhile=another_job_writes_its_section
    )
    await env.forge.upsert_sticky(1, "triage", "Looks like a bug.")
    [comment] = env.bot_comments()
    assert "Fixing it." in comment.body and "Looks like a bug." in comment.body


async def test_sticky_comment_not_made_by_the_lost_create_is_created_once_more(env: Env) -> None:
    # Someone else's comment with our marker does not count as ours.
    env.fake.add_comment(REPO, 1, f"{STICKY_MARKER} pasted", user="mallory")
    env.fake.fail_next(method="POST", path_regex=r"/comments$", status=502)
    await env.forge.upsert_sticky(1, "triage", "Looks like a bug.")
    [comment] = env.bot_comments()
    assert "Looks like a bug." in comment.body
    assert [r.status for r in env.fake.requests_for("issues/create-comment")] == [502, 201]
    assert env.fake.requests_for("issues/update-comment") == []


async def test_twice_ambiguous_create_raises_and_the_job_retry_makes_one(env: Env) -> None:
    env.fake.fail_next(method="POST", path_regex=r"/comments$", status=502)
    env.fake.lose_response(method="POST", path_regex=r"/comments$", mode="drop")
    with pytest.raises(AmbiguousWrite):
        await env.forge.upsert_sticky(1, "triage", "first try")
    # The second create was applied, its answer lost: the job's own retry finds it.
    await env.forge.upsert_sticky(1, "triage", "second try")
    [comment] = env.bot_comments()
    assert "second try" in comment.body and "first try" not in comment.body
    assert len(env.fake.requests_for("issues/create-comment")) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_draft_pull_create_with_a_lost_response(env: Env, mode: LoseMode) -> None:
    env.fake.add_branch(REPO, "loopwright/fix-1")

    def stale(fake: FakeGitHub) -> None:
        [pull] = fake.repo(REPO).pulls.values()
        pull.issue.body = "an older body"

    env.fake.lose_response(method="POST", path_regex=r"/pulls$", mode=mode, meanwhile=stale)
    ref = await env.forge.upsert_draft_pull(
        head="loopwright/fix-1", base="main", title="Fix #1", body="Fixes #1."
    )
    [pull] = env.fake.repo(REPO).pulls.values()
    assert (ref.number, ref.created) == (pull.number, True)
    assert (pull.draft, pull.title, pull.body) == (True, "Fix #1", "Fixes #1.")
    assert len(env.fake.requests_for("pulls/create")) == 1
    assert len(env.fake.requests_for("pulls/update")) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_check_run_create_with_a_lost_response(env: Env, mode: LoseMode) -> None:
    def stale(fake: FakeGitHub) -> None:
        [check] = fake.repo(REPO).check_runs.values()
        check.conclusion = "neutral"

    env.fake.lose_response(method="POST", path_regex=r"/check-runs$", mode=mode, meanwhile=stale)
    made = await env.forge.upsert_check_run(
        head_sha=SHA, name="loopwright / deps", conclusion="success", title="safe", summary="ok"
    )
    [check] = env.fake.repo(REPO).check_runs.values()
    assert made == check.id
    assert (check.name, check.conclusion) == ("loopwright / deps", "success")
    assert [step for step, _ in check.history] == ["checks/create", "checks/update"]


async def test_check_run_of_another_app_is_not_taken_for_ours(env: Env) -> None:
    env.fake.add_check_run(REPO, head_sha=SHA, name="loopwright / deps", app_slug="other-ci")
    env.fake.fail_next(method="POST", path_regex=r"/check-runs$", status=503)
    made = await env.forge.upsert_check_run(
        head_sha=SHA, name="loopwright / deps", conclusion="failure", title="t", summary="s"
    )
    ours = [c for c in env.fake.repo(REPO).check_runs.values() if c.app_slug == "loopwright"]
    assert [c.id for c in ours] == [made]
    assert len(env.fake.requests_for("checks/create")) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_tracking_issue_create_with_a_lost_response(env: Env, mode: LoseMode) -> None:
    env.fake.lose_response(method="POST", path_regex=r"/issues$", mode=mode)
    number = await env.forge.upsert_tracking_issue("workflow-7", "CI is failing", "Tracking.")
    marker = TRACKING_MARKER.format(key="workflow-7")
    tracking = [i for i in env.fake.repo(REPO).issues.values() if marker in (i.body or "")]
    assert [i.number for i in tracking] == [number]
    assert tracking[0].user_login == BOT
    assert len(env.fake.requests_for("issues/create")) == 1
    # And the next run finds it without creating anything.
    assert await env.forge.upsert_tracking_issue("workflow-7", "CI is failing", "x") == number
    assert len(env.fake.requests_for("issues/create")) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_labels_with_a_lost_response_are_simply_retried(env: Env, mode: LoseMode) -> None:
    env.fake.lose_response(method="POST", path_regex=r"/issues/1/labels$", mode=mode)
    await env.forge.add_labels(1, ["bug", "enhancement"])
    assert env.issue().labels == ["bug", "enhancement"]
    assert len(env.fake.requests_for("issues/add-labels")) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_reaction_with_a_lost_response_is_simply_retried(env: Env, mode: LoseMode) -> None:
    env.fake.lose_response(method="POST", path_regex=r"/reactions$", mode=mode)
    await env.forge.add_reaction(1, "eyes")
    assert env.issue().reactions == [(BOT, "eyes")]
    # GitHub answered the repeat with the reaction the first one made.
    assert [r.status for r in env.fake.requests_for("reactions/create-for-issue")] == [201, 200]


# ------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("mode", MODES)
async def test_triage_with_a_lost_comment_response_leaves_one_sticky(
    tmp_path: Path, fake_model: FakeModel, mode: LoseMode
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        gh = await stack.enter_async_context(running_fake())
        gh.add_repo(
            "Codertocat/Hello-World",
            installation_id=1,
            labels=LABELS,
            files={".github/loopwright.yml": CONFIG},
            collaborators={"Codertocat": "admin"},
        )
        gh.add_issue("Codertocat/Hello-World", number=1, title="Crash on start", user="Codertocat")
        settings = make_settings(gh, fake_model, tmp_path)
        s: Stack = await serve(stack, gh, fake_model, settings, "Codertocat/Hello-World")
        s.model.script("triage", triage_answer("bug", summary="Parser crashes on start"))
        gh.lose_response(method="POST", path_regex=r"/issues/1/comments$", mode=mode)
        assert (await s.deliver("issues", opened()))[0] == 202
        await s.settle()

        [comment] = s.issue().comments
        assert comment.user_login == BOT and "Parser crashes on start" in comment.body
        assert s.issue().labels == ["bug", "needs-info"]  # nothing to act on in the report
        assert [r.lost for r in gh.requests_for("issues/create-comment")] == [mode]
        assert len(gh.requests_for("issues/update-comment")) == 1
        # Recovered inside the job: no error, no retry of the job.
        [run] = await s.store.list_runs()
        assert (run["state"], run["exit_reason"]) == ("done", "done")
        gh.assert_no_violations()
