"""Pull requests on the FakeGitHub, backed by real git: a branch is pushed over smart HTTP with
a JWT-minted installation token, then the PR is driven through gidgethub's real client."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gidgethub import BadRequest, InvalidField, QueryError, ValidationError
from gidgethub.aiohttp import GitHubAPI

from bot.github import GitHubApp
from tests.support.fakegithub import FakeGitHub, running_fake

REPO = {"owner": "octo", "repo": "hello"}
BRANCH = "loopwright/fix-1"
CONFIG = "loops:\n  triage: true\n"


async def git(cwd: Path, *args: str, token: str | None = None) -> str:
    """The git CLI, async because the server it talks to runs on this very event loop."""
    auth: list[str] = []
    if token is not None:
        # The token travels in a header, never in the URL (it would land in .git/config).
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        auth = ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        "git",
        *auth,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"git {args}: {err.decode()}"
    return out.decode().strip()


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeGitHub]:
    gh = FakeGitHub(git_root=tmp_path / "served")
    await gh.start()
    gh.add_repo(
        "octo/hello",
        git=True,
        labels=["loopwright:draft-pr"],
        files={".github/loopwright.yml": CONFIG, "app.py": "def add(a, b):\n    return a - b\n"},
    )
    gh.add_issue("octo/hello", number=1, title="add() subtracts", user="alice")
    yield gh
    await gh.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def token(fake: FakeGitHub, session: aiohttp.ClientSession) -> str:
    app = GitHubApp(
        session, app_id=fake.app_id, private_key_pem=fake.private_key_pem, base_url=fake.url
    )
    return await app.installation_token(1, "octo/hello")


@pytest.fixture
def gh(fake: FakeGitHub, session: aiohttp.ClientSession, token: str) -> GitHubAPI:
    return GitHubAPI(session, "test", oauth_token=token, base_url=fake.url)


async def push_fix(fake: FakeGitHub, tmp_path: Path, token: str, branch: str = BRANCH) -> str:
    """Clone over smart HTTP, commit a fix on `branch`, push it; returns the pushed sha."""
    work = tmp_path / "work"
    await git(tmp_path, "clone", "-q", f"{fake.url}/octo/hello.git", str(work), token=token)
    await git(work, "checkout", "-q", "-b", branch)
    (work / "app.py").write_text("def add(a, b):\n    return a + b\n")
    await git(work, "commit", "-qam", "Fix add")
    await git(work, "push", "-q", "origin", branch, token=token)
    return await git(work, "rev-parse", "HEAD")


async def open_pr(gh: GitHubAPI, **overrides: Any) -> Any:
    data = {"title": "Fix #1", "head": BRANCH, "base": "main", "body": "v1", "draft": True}
    data.update(overrides)
    return await gh.post("/repos/{owner}/{repo}/pulls", REPO, data=data)


async def test_draft_pr_from_a_pushed_branch(
    fake: FakeGitHub, gh: GitHubAPI, token: str, tmp_path: Path
) -> None:
    sha = await push_fix(fake, tmp_path, token)
    assert fake.branch_sha("octo/hello", BRANCH) == sha

    pr = await open_pr(gh)
    # PRs take the next number of the issue sequence.
    assert (pr["number"], pr["draft"], pr["state"]) == (2, True, "open")
    assert (pr["head"]["ref"], pr["head"]["sha"], pr["head"]["label"]) == (
        BRANCH,
        sha,
        f"octo:{BRANCH}",
    )
    assert pr["base"]["sha"] == fake.branch_sha("octo/hello", "main")
    assert (pr["user"]["login"], pr["mergeable_state"]) == ("loopwright[bot]", "draft")
    assert (pr["commits"], pr["additions"], pr["deletions"], pr["changed_files"]) == (1, 1, 1, 1)
    stored = fake.repo("octo/hello").pulls[2]
    assert (stored.head, stored.base, stored.title, stored.draft) == (
        BRANCH,
        "main",
        "Fix #1",
        True,
    )

    # The duplicate check is on (head, base) among open PRs, with GitHub's custom message.
    with pytest.raises(ValidationError) as dup:
        await open_pr(gh, title="again")
    assert "A pull request already exists for octo:loopwright/fix-1." in str(dup.value)

    # The PR is an issue too: labels and comments go through the issues endpoints.
    issue = await gh.getitem("/repos/{owner}/{repo}/issues/2", REPO)
    assert issue["pull_request"]["url"].endswith("/pulls/2") and issue["draft"] is True
    plain = await gh.getitem("/repos/{owner}/{repo}/issues/1", REPO)
    assert "pull_request" not in plain
    await gh.post(
        "/repos/{owner}/{repo}/issues/2/labels", REPO, data={"labels": ["loopwright:draft-pr"]}
    )
    await gh.post("/repos/{owner}/{repo}/issues/2/comments", REPO, data={"body": "ledger"})
    with pytest.raises(BadRequest) as not_pr:
        await gh.getitem("/repos/{owner}/{repo}/pulls/1", REPO)
    assert not_pr.value.status_code == 404

    found = [
        p
        async for p in gh.getiter(
            "/repos/{owner}/{repo}/pulls{?head,base,state}",
            {**REPO, "head": f"octo:{BRANCH}", "base": "main", "state": "open"},
        )
    ]
    assert [p["number"] for p in found] == [2]
    assert [p["name"] for p in found[0]["labels"]] == ["loopwright:draft-pr"]
    none = await gh.getitem(
        "/repos/{owner}/{repo}/pulls{?head}", {**REPO, "head": "octo:loopwright/fix-9"}
    )
    assert none == []

    updated = await gh.patch("/repos/{owner}/{repo}/pulls/2", REPO, data={"body": "v2"})
    assert updated["body"] == "v2" and updated["draft"] is True
    assert fake.repo("octo/hello").pulls[2].body == "v2"
    assert (await gh.getitem("/repos/{owner}/{repo}/pulls/2", REPO))["comments"] == 1

    # Contents read from git: the branch has the fix, the default branch does not.
    at_branch = await gh.getitem(
        "/repos/{owner}/{repo}/contents/app.py{?ref}", {**REPO, "ref": BRANCH}
    )
    assert "a + b" in base64.b64decode(at_branch["content"]).decode()
    assert (
        fake.read_git_file("octo/hello", BRANCH, "app.py") == "def add(a, b):\n    return a + b\n"
    )
    at_main = await gh.getitem("/repos/{owner}/{repo}/contents/app.py", REPO)
    assert "a - b" in base64.b64decode(at_main["content"]).decode()

    fake.assert_no_violations()
    assert fake.forbidden_actions == []


async def test_missing_branches_and_empty_diffs_are_422(
    fake: FakeGitHub, gh: GitHubAPI, token: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidField) as head:
        await open_pr(gh)
    assert head.value.errors == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]

    await push_fix(fake, tmp_path, token)
    with pytest.raises(InvalidField) as base:
        await open_pr(gh, base="release")
    assert base.value.errors[0]["field"] == "base"
    # Forks are not modelled: another owner's branch does not exist here.
    with pytest.raises(InvalidField):
        await open_pr(gh, head=f"someone:{BRANCH}")

    fake.add_branch("octo/hello", "loopwright/noop")
    with pytest.raises(ValidationError) as empty:
        await open_pr(gh, head="loopwright/noop")
    assert "No commits between main and loopwright/noop" in str(empty.value)
    assert fake.repo("octo/hello").pulls == {}
    fake.assert_no_violations()


async def test_merge_approve_and_ready_are_recorded_as_forbidden(
    fake: FakeGitHub, gh: GitHubAPI, token: str, tmp_path: Path
) -> None:
    await push_fix(fake, tmp_path, token)
    await open_pr(gh)

    # GitHub refuses all three on the bot's own draft PR, and the fake says so, but each
    # attempt is recorded: the bot must never try.
    with pytest.raises(BadRequest) as merge:
        await gh.put("/repos/{owner}/{repo}/pulls/2/merge", REPO, data={"merge_method": "squash"})
    assert (merge.value.status_code, str(merge.value)) == (405, "Pull Request is still a draft")
    with pytest.raises(ValidationError) as approve:
        await gh.post("/repos/{owner}/{repo}/pulls/2/reviews", REPO, data={"event": "APPROVE"})
    assert "Can not approve your own pull request" in str(approve.value)
    # REST has no "ready for review": GitHub ignores `draft` on update without an error.
    ready = await gh.patch("/repos/{owner}/{repo}/pulls/2", REPO, data={"draft": False})
    assert ready["draft"] is True
    # ...which leaves GraphQL, not modelled: the attempt is recorded and fails as a violation.
    with pytest.raises(QueryError):
        await gh.graphql(
            "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id})"
            " { pullRequest { isDraft } } }",
            endpoint=f"{fake.url}/graphql",
            id=ready["node_id"],
        )
    assert fake.forbidden_actions == [
        "merge octo/hello#2",
        "approve octo/hello#2",
        "ready octo/hello#2 (pulls/update)",
        "graphql markPullRequestReadyForReview",
    ]
    assert [v.split(":")[0] for v in fake.violations] == ["POST /graphql"]
    fake.violations.clear()

    # On someone else's ready PR GitHub would accept both; the fake records them and refuses:
    # it never approves or merges (a recorder, not an emulation).
    fake.forbidden_actions.clear()
    sha = fake.seed_git("octo/hello", {"NEWS": "fixed\n"}, message="news", branch="alice-news")
    human = fake.add_pull("octo/hello", head="alice-news", user="alice")
    assert human.number == 3
    with pytest.raises(ValidationError) as approve:
        await gh.post("/repos/{owner}/{repo}/pulls/3/reviews", REPO, data={"event": "APPROVE"})
    assert "FakeGitHub records approvals and never submits them" in str(approve.value)
    with pytest.raises(BadRequest) as merge:
        await gh.put("/repos/{owner}/{repo}/pulls/3/merge", REPO, data={"sha": sha})
    assert (merge.value.status_code, str(merge.value)) == (
        405,
        "FakeGitHub records merges and never performs them",
    )
    # A stale head is still refused in GitHub's words, and recorded all the same.
    with pytest.raises(BadRequest) as stale:
        await gh.put("/repos/{owner}/{repo}/pulls/3/merge", REPO, data={"sha": "0" * 40})
    assert stale.value.status_code == 409
    assert fake.read_git_file("octo/hello", "main", "NEWS") is None
    assert (human.state, human.merged, human.reviews) == ("open", False, [])
    assert fake.forbidden_actions == [
        "approve octo/hello#3",
        "merge octo/hello#3",
        "merge octo/hello#3",
    ]
    # Commenting or requesting changes is not forbidden: those reviews are stored.
    review = await gh.post(
        "/repos/{owner}/{repo}/pulls/3/reviews", REPO, data={"event": "COMMENT", "body": "nice"}
    )
    assert review["state"] == "COMMENTED" and [r.state for r in human.reviews] == ["COMMENTED"]
    assert len(fake.forbidden_actions) == 3
    fake.assert_no_violations()


async def test_config_seeded_through_git_is_what_get_content_reads(
    fake: FakeGitHub, gh: GitHubAPI
) -> None:
    new_config = "loops:\n  triage: false\n"
    fake.seed_git("octo/hello", {".github/loopwright.yml": new_config}, message="tune")
    config = await gh.getitem("/repos/{owner}/{repo}/contents/.github/loopwright.yml", REPO)
    assert base64.b64decode(config["content"]).decode() == new_config
    assert config["sha"] != "" and config["type"] == "file"

    listing = await gh.getitem("/repos/{owner}/{repo}/contents/.github", REPO)
    assert [(e["name"], e["type"]) for e in listing] == [("loopwright.yml", "file")]
    fake.seed_git("octo/hello", {"pkg/mod.py": "x = 1\n"}, message="pkg")
    pkg = await gh.getitem("/repos/{owner}/{repo}/contents/pkg", REPO)
    assert [(e["path"], e["type"], e["size"]) for e in pkg] == [("pkg/mod.py", "file", 6)]

    with pytest.raises(BadRequest) as unknown_ref:
        await gh.getitem("/repos/{owner}/{repo}/contents/app.py{?ref}", {**REPO, "ref": "nope"})
    assert str(unknown_ref.value) == "No commit found for the ref nope"

    fake.add_repo("octo/empty", git=True)
    with pytest.raises(BadRequest) as empty:
        await gh.getitem(
            "/repos/{owner}/{repo}/contents/README.md",
            {**REPO, "repo": "empty"},
            # The fixture's token is scoped to octo/hello, as the bot's tokens are.
            oauth_token=fake.mint_token(1, repositories=["empty"]).token,
        )
    assert str(empty.value) == "This repository is empty."
    fake.assert_no_violations()


async def test_head_filter_without_owner_is_ignored_like_github_and_flagged(
    fake: FakeGitHub, gh: GitHubAPI
) -> None:
    fake.seed_git("octo/hello", {"a.txt": "a"}, branch="feature-a")
    fake.seed_git("octo/hello", {"b.txt": "b"}, branch="feature-b")
    fake.add_pull("octo/hello", head="feature-a", user="alice")
    fake.add_pull("octo/hello", head="feature-b", user="bob")
    everything = await gh.getitem(
        "/repos/{owner}/{repo}/pulls{?head}", {**REPO, "head": "feature-a"}
    )
    assert [p["number"] for p in everything] == [3, 2]
    assert fake.violations and "lacks 'owner:'" in fake.violations[-1]


async def test_in_memory_repos_model_branches_without_git(session: aiohttp.ClientSession) -> None:
    async with running_fake() as fake:
        fake.add_repo("octo/hello", files={"README.md": "hi\n"})
        gh = GitHubAPI(session, "test", oauth_token=fake.mint_token(1).token, base_url=fake.url)
        with pytest.raises(InvalidField):
            await open_pr(gh)
        fake.add_branch("octo/hello", BRANCH)
        pr = await open_pr(gh, draft=False)
        assert (pr["number"], pr["draft"], pr["head"]["sha"]) == (
            1,
            False,
            fake.branch_sha("octo/hello", BRANCH),
        )
        closed = await gh.patch("/repos/{owner}/{repo}/pulls/1", REPO, data={"state": "closed"})
        assert closed["state"] == "closed" and closed["closed_at"] is not None
        assert await gh.getitem("/repos/{owner}/{repo}/pulls", REPO) == []
        fake.assert_no_violations()
