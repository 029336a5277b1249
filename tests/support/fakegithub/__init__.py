"""A loopback fake of GitHub's REST API, as a GitHub App sees it.

The production code talks to it through gidgethub's real aiohttp client with
``base_url=fake.url``, so everything here is about the wire: JSON bodies, GitHub's status codes
and error shape, ``Link`` pagination, ``x-ratelimit-*`` headers, App JWT and installation-token
auth.  Every request is checked against GitHub's published REST description (a subset copied into
``tests/fixtures/operations.json``, MIT, see ``LICENSE-rest-api``): a call GitHub would not
recognise, or a body its schema rejects, is recorded in ``fake.violations`` so tests can fail on
API misuse that a hand-written mock would happily accept.

Request pipeline (order matters for tests that combine scenarios):
match path (+ query names) -> auth -> JSON parse + schema -> injected fault -> handler
-> lost response (a `lose_response` fault: the handler ran, the client never hears of it).

Quick use::

    async with running_fake() as fake:
        fake.add_repo("octo/hello", installation_id=1, labels=["bug"], files={...})
        fake.add_issue("octo/hello", number=1, title="...", user="alice")
        gh = GitHubAPI(session, "test", oauth_token=fake.mint_token(1).token, base_url=fake.url)
        ...
        fake.assert_no_violations()

Git-backed repos and pull requests::

    fake = FakeGitHub(git_root=tmp_path / "served")   # serves {url}/{owner}/{repo}.git
    fake.add_repo("octo/hello", git=True, files={...})  # files = first commit on main
    fake.seed_git("octo/hello", {"a.py": "..."}, branch="feature")
    ... push over smart HTTP, POST /repos/{owner}/{repo}/pulls ...
    fake.repo("octo/hello").pulls[2].draft; fake.branch_sha(...); fake.read_git_file(...)
    assert fake.forbidden_actions == []  # merge / approve / ready attempts land here

GitHub Actions, check runs and webhook payloads::

    run = fake.add_workflow_run("octo/hello", workflow_id=7, name="CI", head_branch="main",
                                head_sha=sha, jobs=[FakeJob("test", "failure",
                                [("Run pytest", "failure")], log="E   assert 1 == 2\n")])
    # GET .../actions/jobs/{id}/logs -> 302 to a signed one-minute URL on `fake.blob_url`, a
    # second origin like GitHub's blob storage; `fake.blob_requests` records what reached it,
    # and an Authorization header arriving there is a violation (the token leaked).
    fake.repo("octo/hello").check_runs[id].history   # every create/update body, in order
    body = fake.workflow_run_payload("octo/hello", run)   # or pull_request_payload(...)

New endpoints: write `async def handler(fake, ctx) -> web.StreamResponse` in the routes module of
its area and register it with `@operation("<operationId>", "<installation permission>")`
(`registry`, module-wide) or `fake.register(...)`.

Layout: `operations` (the published operations, path matching), `validation` (every call
checked against them), `state` (what the fake holds and records), `seeding`, `gitrepos`,
`shapes` (GitHub's JSON), `payloads` (webhook payloads), `auth`, `server` (the pipeline,
faults, `FakeGitHub`, `running_fake`), `registry` (the handler table), `routes/` (one module
per area: apps, repos, issues, pulls, actions, checks), `forbidden` (merge, approve, ready,
GraphQL: recorded and refused, never performed), `hooks` (the App's webhook delivery log).
"""

from __future__ import annotations

# Importing the routes (and `forbidden`, `hooks`) registers their handlers in the table every
# FakeGitHub copies when it is made.
from tests.support.fakegithub import forbidden, hooks, routes
from tests.support.fakegithub.operations import Operation, OperationIndex, load_operations
from tests.support.fakegithub.registry import HandlerSpec, operation
from tests.support.fakegithub.server import FakeGitHub, running_fake
from tests.support.fakegithub.state import (
    BlobGrant,
    Ctx,
    FakeCheckRun,
    FakeComment,
    FakeInstallation,
    FakeIssue,
    FakeJob,
    FakePull,
    FakeRepo,
    FakeReview,
    FakeWorkflowRun,
    Fault,
    GitHubError,
    InstallationToken,
    LoseMode,
    RecordedBlobRequest,
    RecordedRequest,
)

__all__ = [
    "BlobGrant",
    "Ctx",
    "FakeCheckRun",
    "FakeComment",
    "FakeGitHub",
    "FakeInstallation",
    "FakeIssue",
    "FakeJob",
    "FakePull",
    "FakeRepo",
    "FakeReview",
    "FakeWorkflowRun",
    "Fault",
    "GitHubError",
    "HandlerSpec",
    "InstallationToken",
    "LoseMode",
    "Operation",
    "OperationIndex",
    "RecordedBlobRequest",
    "RecordedRequest",
    "forbidden",
    "hooks",
    "load_operations",
    "operation",
    "routes",
    "running_fake",
]
