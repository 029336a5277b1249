"""FakeGitHub driven through gidgethub's real aiohttp client, as production code will drive it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gidgethub import BadRequest, GitHubBroken, InvalidField
from gidgethub.aiohttp import GitHubAPI

from tests.support.fakegithub import FakeGitHub, running_fake

REPO = {"owner": "octo", "repo": "hello"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    async with running_fake() as fake:
        fake.add_repo(
            "octo/hello",
            installation_id=1,
            labels=["bug", "enhancement"],
            files={".github/loopwright.yml": "loops:\n  triage: true\n", "README.md": "hi\n"},
            collaborators={"alice": "write", "bob": "read", "carol": "maintain"},
        )
        fake.add_repo("octo/other", installation_id=1)
        fake.add_repo("elsewhere/repo", installation_id=2)
        fake.add_issue("octo/hello", number=1, title="It broke", body="Steps...", user="alice")
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_jwt(fake: FakeGitHub, *, iat_offset: int = -30, lifetime: int = 570, **extra: Any) -> str:
    now = int(time.time())
    claims = {"iat": now + iat_offset, "exp": now + iat_offset + lifetime, "iss": str(fake.app_id)}
    claims.update(extra)
    return jwt.encode(claims, fake.private_key_pem, algorithm="RS256")


def app_client(session: aiohttp.ClientSession, fake: FakeGitHub) -> GitHubAPI:
    return GitHubAPI(session, "test", base_url=fake.url)


def token_client(
    session: aiohttp.ClientSession, fake: FakeGitHub, token: str | None = None
) -> GitHubAPI:
    token = token or fake.mint_token(1).token
    return GitHubAPI(session, "test", oauth_token=token, base_url=fake.url)


async def test_app_endpoints_accept_a_valid_jwt(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = app_client(session, fake)
    app = await gh.getitem("/app", jwt=make_jwt(fake))
    assert (app["id"], app["slug"]) == (fake.app_id, "loopwright")
    inst = await gh.getitem("/repos/{owner}/{repo}/installation", REPO, jwt=make_jwt(fake))
    assert inst["id"] == 1
    assert fake.requests[-1].auth_kind == "jwt"
    fake.assert_no_violations()


@pytest.mark.parametrize(
    "claims",
    [
        {"lifetime": 601, "iat_offset": -1},  # GitHub caps JWT lifetime at 10 minutes
        {"iat_offset": -700, "lifetime": 600},  # expired
        {"iss": "9999"},  # another app
    ],
)
async def test_bad_jwt_is_401_not_a_violation(
    fake: FakeGitHub, session: aiohttp.ClientSession, claims: dict[str, Any]
) -> None:
    async with session.get(
        f"{fake.url}/app", headers={"Authorization": f"Bearer {make_jwt(fake, **claims)}"}
    ) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert set(body) >= {"message", "documentation_url"}
    assert fake.violations == []


async def test_jwt_signed_by_another_key_or_token_on_app_endpoint_is_401(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    now = int(time.time())
    forged = jwt.encode({"iat": now - 10, "exp": now + 500, "iss": str(fake.app_id)}, pem, "RS256")
    for header in (f"Bearer {forged}", f"token {fake.mint_token(1).token}"):
        async with session.get(f"{fake.url}/app", headers={"Authorization": header}) as resp:
            assert resp.status == 401
            assert "JSON web token" in (await resp.json())["message"]
    assert fake.violations == []


async def test_minted_token_is_scoped_to_requested_repositories(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    minted = await app_client(session, fake).post(
        "/app/installations/{installation_id}/access_tokens",
        {"installation_id": 1},
        data={"repositories": ["hello"]},
        jwt=make_jwt(fake),
    )
    assert minted["token"].startswith("ghs_") and len(minted["token"]) == 40
    assert minted["expires_at"].endswith("Z")
    assert minted["repository_selection"] == "selected"
    assert [r["full_name"] for r in minted["repositories"]] == ["octo/hello"]
    assert fake.requests[-1].status == 201

    gh = token_client(session, fake, minted["token"])
    repo = await gh.getitem("/repos/{owner}/{repo}", REPO)
    assert (repo["full_name"], repo["default_branch"]) == ("octo/hello", "main")

    # Same installation but outside the token's scope, then another installation's repo.
    for owner, name in (("octo", "other"), ("elsewhere", "repo")):
        with pytest.raises(BadRequest) as exc:
            await gh.getitem("/repos/{owner}/{repo}", {"owner": owner, "repo": name})
        assert exc.value.status_code == 403
        assert "Resource not accessible by integration" in str(exc.value)

    with pytest.raises(BadRequest) as exc:
        await token_client(session, fake, "ghs_" + "x" * 36).getitem("/repos/{owner}/{repo}", REPO)
    assert exc.value.status_code == 401

    fake.expire_tokens()
    with pytest.raises(BadRequest) as exc:
        await gh.getitem("/repos/{owner}/{repo}", REPO)
    assert exc.value.status_code == 401
    assert fake.violations == []


async def test_minting_for_a_repository_outside_the_installation_is_422(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(InvalidField):
        await app_client(session, fake).post(
            "/app/installations/{installation_id}/access_tokens",
            {"installation_id": 1},
            data={"repositories": ["repo"]},
            jwt=make_jwt(fake),
        )


async def test_add_labels_creates_missing_repo_labels(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    url = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
    labels = await gh.post(
        url, {**REPO, "issue_number": 1}, data={"labels": ["BUG", "loopwright:triaged"]}
    )
    # Case-insensitive match keeps the repo's existing spelling.
    assert [label["name"] for label in labels] == ["bug", "loopwright:triaged"]
    repo = fake.repo("octo/hello")
    assert repo.issues[1].labels == ["bug", "loopwright:triaged"]
    assert repo.labels["loopwright:triaged"]["color"] == "ededed"

    # gidgethub's delete() discards the body, so check state (GitHub returns the remaining list).
    await gh.delete(url + "/{name}", {**REPO, "issue_number": 1, "name": "bug"})
    assert repo.issues[1].labels == ["loopwright:triaged"]
    with pytest.raises(BadRequest) as exc:
        await gh.delete(url + "/{name}", {**REPO, "issue_number": 1, "name": "bug"})
    assert exc.value.status_code == 404

    await gh.put(url, {**REPO, "issue_number": 1}, data={"labels": ["enhancement"]})
    assert repo.issues[1].labels == ["enhancement"]

    names = [label["name"] async for label in gh.getiter("/repos/{owner}/{repo}/labels", REPO)]
    assert names == ["bug", "enhancement", "loopwright:triaged"]
    fake.assert_no_violations()


async def test_getiter_follows_link_pagination_over_75_comments(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    for i in range(75):
        fake.add_comment("octo/hello", 1, f"comment {i}", user="bob")
    gh = token_client(session, fake)
    url = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    bodies = [c["body"] async for c in gh.getiter(url, {**REPO, "issue_number": 1})]
    assert bodies == [f"comment {i}" for i in range(75)]
    pages = [r.query.get("page", "1") for r in fake.requests_for("issues/list-comments")]
    assert pages == ["1", "2", "3"]

    fake.requests.clear()
    big = [c async for c in gh.getiter(url + "?per_page=100", {**REPO, "issue_number": 1})]
    assert len(big) == 75 and len(fake.requests) == 1
    fake.assert_no_violations()


async def test_bot_comment_is_attributed_to_the_app_and_editable(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    created = await gh.post(
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        {**REPO, "issue_number": 1},
        data={"body": "<!-- loopwright:sticky -->\nWorking on it"},
    )
    assert created["user"]["login"] == "loopwright[bot]"
    assert created["user"]["type"] == "Bot"
    assert created["performed_via_github_app"]["slug"] == "loopwright"
    assert fake.requests[-1].status == 201

    comment_url = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    ids = {**REPO, "comment_id": created["id"]}
    await gh.patch(comment_url, ids, data={"body": "Done"})
    assert (await gh.getitem(comment_url, ids))["body"] == "Done"
    stored = fake.repo("octo/hello").issues[1].comments[0]
    assert (stored.body, stored.user_type, stored.performed_via_app) == ("Done", "Bot", True)
    fake.assert_no_violations()


async def test_reactions_are_idempotent_and_schema_checked(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    url = "/repos/{owner}/{repo}/issues/{issue_number}/reactions"
    first = await gh.post(url, {**REPO, "issue_number": 1}, data={"content": "eyes"})
    again = await gh.post(url, {**REPO, "issue_number": 1}, data={"content": "eyes"})
    assert first["id"] == again["id"]
    assert [r.status for r in fake.requests] == [201, 200]
    assert fake.repo("octo/hello").issues[1].reactions == [("loopwright[bot]", "eyes")]
    fake.assert_no_violations()

    with pytest.raises(InvalidField) as exc:
        await gh.post(url, {**REPO, "issue_number": 1}, data={"content": "nope"})
    assert exc.value.status_code == 422
    assert len(fake.violations) == 1 and "reactions/create-for-issue" in fake.violations[0]


async def test_unknown_path_and_unimplemented_operation_are_violations(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    with pytest.raises(BadRequest) as exc:
        await gh.getitem("/repos/{owner}/{repo}/frobnicate", REPO)
    assert exc.value.status_code == 404
    assert fake.violations == [
        "GET /repos/octo/hello/frobnicate: no such operation in GitHub's REST API description"
    ]

    with pytest.raises(GitHubBroken) as broken:
        await gh.getitem("/repos/{owner}/{repo}/milestones", REPO)
    assert broken.value.status_code == 501
    assert "issues/list-milestones" in fake.violations[-1]


async def test_fail_next_injects_429_with_retry_after(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    fake.fail_next(
        method="POST",
        path_regex=r"/issues/\d+/labels$",
        status=429,
        headers={"Retry-After": "1"},
        times=2,
    )
    token = fake.mint_token(1).token
    gh = token_client(session, fake, token)
    url = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
    with pytest.raises(BadRequest) as exc:
        await gh.post(url, {**REPO, "issue_number": 1}, data={"labels": ["bug"]})
    assert exc.value.status_code == 429

    # gidgethub drops headers of client errors, so look at the second fault on the raw wire.
    async with session.post(
        f"{fake.url}/repos/octo/hello/issues/1/labels",
        json={"labels": ["bug"]},
        headers={"Authorization": f"token {token}"},
    ) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert "x-ratelimit-remaining" in resp.headers

    assert await gh.post(url, {**REPO, "issue_number": 1}, data={"labels": ["bug"]})
    assert fake.faults == []
    assert fake.violations == []


async def test_lose_response_applies_the_write_then_loses_the_answer(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    token = fake.mint_token(1).token
    url = f"{fake.url}/repos/octo/hello/issues/1/comments"
    auth = {"Authorization": f"token {token}"}
    fake.lose_response(method="POST", path_regex=r"/comments$", mode="drop")
    fake.lose_response(method="POST", path_regex=r"/comments$", mode="502")
    # "drop": the connection closes with no status line at all.
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with session.post(url, json={"body": "one"}, headers=auth) as resp:
            await resp.read()
    # "502": a bad gateway in place of the 201.
    async with session.post(url, json={"body": "two"}, headers=auth) as resp:
        assert resp.status == 502
        assert (await resp.json())["message"] == "Server Error"
    # Both were applied, and recorded with what the handler answered.
    assert [c.body for c in fake.repo("octo/hello").issues[1].comments] == ["one", "two"]
    recs = fake.requests_for("issues/create-comment")
    assert [(r.status, r.lost) for r in recs] == [(201, "drop"), (201, "502")]
    assert fake.faults == []

    # Auth and schema come first: a refused call neither applies nor uses up the fault.
    fake.lose_response(method="POST", path_regex=r"/comments$", mode="drop")
    async with session.post(url, json={"body": "x"}) as resp:
        assert resp.status == 401
    async with session.post(url, json={"nobody": 1}, headers=auth) as resp:
        assert resp.status == 422
    assert len(fake.faults) == 1 and len(fake.repo("octo/hello").issues[1].comments) == 2
    fake.violations.clear()

    # One FIFO queue with fail_next: the pending loss fires first (applied), then the 429
    # (not applied).
    fake.fail_next(method="POST", path_regex=r"/comments$", status=429)
    gh = token_client(session, fake, token)
    with pytest.raises(aiohttp.ClientConnectionError):
        await gh.post(url, data={"body": "three"})
    with pytest.raises(BadRequest) as exc:
        await gh.post(url, data={"body": "four"})
    assert exc.value.status_code == 429
    assert [c.body for c in fake.repo("octo/hello").issues[1].comments] == ["one", "two", "three"]
    fake.assert_no_violations()


async def test_lose_response_timeout_holds_the_answer_back(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    fake.lose_response(method="GET", path_regex=r"/issues/1$", mode="timeout", delay=5)
    gh = token_client(session, fake)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await gh.getitem(
                "/repos/{owner}/{repo}/issues/{issue_number}", {**REPO, "issue_number": 1}
            )
    assert time.monotonic() - started < 2
    assert fake.requests[-1].lost == "timeout"


async def test_get_content_is_base64_wrapped_like_github(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    fake.repo("octo/hello").files["big.txt"] = "x" * 200
    gh = token_client(session, fake)
    url = "/repos/{owner}/{repo}/contents/{+path}"
    config = await gh.getitem(url, {**REPO, "path": ".github/loopwright.yml"})
    assert (config["type"], config["encoding"], config["name"]) == (
        "file",
        "base64",
        "loopwright.yml",
    )
    assert base64.b64decode(config["content"]) == b"loops:\n  triage: true\n"

    big = await gh.getitem(url, {**REPO, "path": "big.txt"})
    assert all(len(line) <= 60 for line in big["content"].splitlines())
    assert big["content"].count("\n") > 1

    listing = await gh.getitem("/repos/{owner}/{repo}/contents/{path}", {**REPO, "path": ".github"})
    assert [e["path"] for e in listing] == [".github/loopwright.yml"]

    for path, query in (("missing.yml", ""), ("README.md", "?ref=feature")):
        with pytest.raises(BadRequest) as exc:
            await gh.getitem(url + query, {**REPO, "path": path})
        assert exc.value.status_code == 404
    assert gh.rate_limit is not None and gh.rate_limit.remaining < gh.rate_limit.limit
    fake.assert_no_violations()


async def test_collaborator_permission_levels(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    url = "/repos/{owner}/{repo}/collaborators/{username}/permission"
    got = {}
    for user in ("alice", "bob", "carol"):
        data = await gh.getitem(url, {**REPO, "username": user})
        got[user] = (data["permission"], data["role_name"], data["user"]["login"])
    assert got == {
        "alice": ("write", "write", "alice"),
        "bob": ("read", "read", "bob"),
        "carol": ("write", "maintain", "carol"),
    }
    with pytest.raises(BadRequest) as exc:
        await gh.getitem(url, {**REPO, "username": "mallory"})
    assert exc.value.status_code == 404
    fake.assert_no_violations()


async def test_create_issue_and_label_conflict(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    issue = await gh.post(
        "/repos/{owner}/{repo}/issues",
        REPO,
        data={"title": "Tracking: flaky tests", "labels": ["loopwright:tracking"]},
    )
    assert issue["number"] == 2
    assert [label["name"] for label in issue["labels"]] == ["loopwright:tracking"]

    with pytest.raises(InvalidField) as exc:
        await gh.post("/repos/{owner}/{repo}/labels", REPO, data={"name": "Bug"})
    assert exc.value.status_code == 422
    created = await gh.post(
        "/repos/{owner}/{repo}/labels", REPO, data={"name": "loopwright:fix", "color": "#1D76DB"}
    )
    assert created["color"] == "1d76db"
    fake.assert_no_violations()


async def test_query_typos_are_violations_but_still_answered(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake)
    url = "/repos/{owner}/{repo}/issues/{issue_number}/comments?perpage=100"
    assert [c async for c in gh.getiter(url, {**REPO, "issue_number": 1})] == []
    assert fake.violations == [
        "GET /repos/octo/hello/issues/1/comments: issues/list-comments: "
        "unknown query parameter 'perpage'"
    ]


async def test_installation_repositories_respect_token_scope(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    gh = token_client(session, fake, fake.mint_token(1, repositories=["other"]).token)
    names = [
        r["full_name"]
        async for r in gh.getiter("/installation/repositories", iterable_key="repositories")
    ]
    assert names == ["octo/other"]
    assert fake.token_allows(gh.oauth_token or "", "octo/other", write=True)
    assert not fake.token_allows(gh.oauth_token or "", "octo/hello", write=False)
    fake.assert_no_violations()


async def test_repo_endpoints_reject_jwt_and_anonymous_calls(
    fake: FakeGitHub, session: aiohttp.ClientSession
) -> None:
    for headers in ({"Authorization": f"Bearer {make_jwt(fake)}"}, {}):
        async with session.get(f"{fake.url}/repos/octo/hello", headers=headers) as resp:
            assert resp.status == 401
    assert [r.auth_kind for r in fake.requests] == ["jwt", None]
    assert fake.violations == []
