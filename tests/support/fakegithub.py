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

New endpoints: write `async def handler(fake, ctx) -> web.StreamResponse` and register it with
`@operation("<operationId>", "<installation permission>")` (module-wide) or `fake.register(...)`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import itertools
import json
import math
import os
import re
import secrets
import socket
import string
import subprocess
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote, unquote, urlencode

import jsonschema
import jwt
import yarl
from aiohttp import hdrs, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import FIXTURES
from tests.support.githttp import add_git_routes, create_bare_repo

OPERATIONS_FILE = FIXTURES / "operations.json"
DOCS_URL = "https://docs.github.com/rest"
HTML_BASE = "https://github.com"

# Template params whose values legitimately contain "/" (file paths, refs like heads/x/y,
# branch names like loopwright/fix-1, "base...head").  GitHub accepts them unencoded.
GREEDY_PARAMS = frozenset({"path", "ref", "branch", "basehead"})

# GitHub rejects comment/issue bodies above this many characters with a 422.
MAX_BODY_CHARS = 65536

# How long a signed log URL on the blob host stays valid (GitHub: "expires after 1 minute").
BLOB_URL_TTL_SECONDS = 60

# The app behind every check run that a GitHub Actions job is.
GITHUB_ACTIONS_APP_ID = 15368
GITHUB_ACTIONS_SLUG = "github-actions"

PERMISSION_LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}

DEFAULT_INSTALLATION_PERMISSIONS: dict[str, str] = {
    "metadata": "read",
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "checks": "write",
    "actions": "read",
}

AuthKind = Literal["jwt", "token"]

# GraphQL mutations that would merge a PR or take it out of draft; the bot must never send them.
_FORBIDDEN_MUTATIONS = (
    "markPullRequestReadyForReview",
    "mergePullRequest",
    "enablePullRequestAutoMerge",
)


# --------------------------------------------------------------------------------------------
# The published operations and path matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    pattern: re.Pattern[str]
    literal_segments: int
    greedy_params: int
    body_schema: Mapping[str, Any] | None
    body_required: bool
    success: frozenset[int]
    # Declared query parameters: name -> enum of allowed values (None = any value).
    query_params: Mapping[str, tuple[str, ...] | None]


def _openapi30_to_jsonschema(node: Any) -> Any:
    # The description is OpenAPI 3.0, where `nullable: true` is a sibling keyword that plain
    # JSON Schema ignores; without this, a legitimate `null` (e.g. milestone) would be rejected.
    if isinstance(node, list):
        return [_openapi30_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi30_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and ("oneOf" in out or "anyOf" in out):
            key = "oneOf" if "oneOf" in out else "anyOf"
            out[key] = [*out[key], {"type": "null"}]
    return out


def _enum_of(schema: Mapping[str, Any]) -> tuple[str, ...] | None:
    enum = schema.get("enum")
    return tuple(str(v) for v in enum) if isinstance(enum, list) else None


def _compile_template(path: str, int_params: set[str]) -> tuple[re.Pattern[str], int, int]:
    parts: list[str] = []
    literals = greedy = 0
    for segment in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)\}", segment)
        if m is None:
            literals += 1
            parts.append(re.escape(segment))
        elif m.group(1) in GREEDY_PARAMS:
            greedy += 1
            parts.append(f"(?P<{m.group(1)}>.+)")
        elif m.group(1) in int_params:
            # GitHub answers 404 for /issues/abc, so a non-numeric id is "no such operation".
            parts.append(f"(?P<{m.group(1)}>[0-9]+)")
        else:
            parts.append(f"(?P<{m.group(1)}>[^/]+)")
    return re.compile("/" + "/".join(parts)), literals, greedy


class OperationIndex:
    """Method + path -> the one published operation GitHub would route it to."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.source: str = raw["source"]
        self.operations: list[Operation] = []
        self._by_key: dict[tuple[str, str], list[Operation]] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        for entry in raw["operations"]:
            int_params = {
                p["name"]
                for p in entry.get("parameters", [])
                if p.get("in") == "path" and p.get("schema", {}).get("type") == "integer"
            }
            pattern, literals, greedy = _compile_template(entry["path"], int_params)
            request_body = entry.get("requestBody") or {}
            schema = request_body.get("content", {}).get("application/json", {}).get("schema")
            op = Operation(
                method=entry["method"].upper(),
                path=entry["path"],
                operation_id=entry["operationId"],
                pattern=pattern,
                literal_segments=literals,
                greedy_params=greedy,
                body_schema=_openapi30_to_jsonschema(schema) if schema else None,
                body_required=bool(request_body.get("required")),
                success=frozenset(int(s) for s in entry.get("success", []) if s.isdigit()),
                query_params={
                    p["name"]: _enum_of(p.get("schema", {}))
                    for p in entry.get("parameters", [])
                    if p.get("in") == "query"
                },
            )
            self.operations.append(op)
            self._by_key.setdefault((op.method, self._first_segment(op.path)), []).append(op)

    @staticmethod
    def _first_segment(path: str) -> str:
        return path.strip("/").split("/", 1)[0]

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        candidates = self._by_key.get((method.upper(), self._first_segment(raw_path)), [])
        best: tuple[tuple[int, int], Operation, dict[str, str]] | None = None
        for op in candidates:
            m = op.pattern.fullmatch(raw_path)
            if m is None:
                continue
            # Like GitHub's router: literal segments beat params (/issues/comments is not
            # issue "comments"), and a slash-spanning param is the last resort.
            rank = (op.literal_segments, -op.greedy_params)
            if best is None or rank > best[0]:
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                best = (rank, op, params)
        return None if best is None else (best[1], best[2])

    def validator(self, op: Operation) -> jsonschema.protocols.Validator | None:
        if op.body_schema is None:
            return None
        if op.operation_id not in self._validators:
            self._validators[op.operation_id] = jsonschema.Draft7Validator(op.body_schema)
        return self._validators[op.operation_id]


@cache
def load_operations(path: Path = OPERATIONS_FILE) -> OperationIndex:
    return OperationIndex(json.loads(path.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_iso() -> str:
    return _iso(datetime.now(UTC))


@dataclass
class FakeComment:
    id: int
    body: str
    user_login: str
    user_type: str
    performed_via_app: bool
    created_at: str
    updated_at: str
    issue_number: int
    reactions: list[tuple[str, str]] = field(default_factory=list)
    # (user_login, content) -> (reaction id, created_at); GitHub returns the original reaction
    # (status 200) when the same user repeats the same content.
    reaction_meta: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)


@dataclass
class FakeIssue:
    id: int
    number: int
    title: str
    body: str | None
    user_login: str
    user_type: str = "User"
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    reactions: list[tuple[str, str]] = field(default_factory=list)
    reaction_meta: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)
    updated_at: str = field(default_factory=_now_iso)
    closed_at: str | None = None
    performed_via_app: bool = False


@dataclass
class FakeReview:
    id: int
    user_login: str
    user_type: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED or PENDING
    body: str
    commit_id: str
    submitted_at: str | None


@dataclass
class FakePull:
    """A pull request.  Its conversation half (title, body, state, labels, comments) is the
    FakeIssue with the same number, as on GitHub, where every PR is also an issue."""

    id: int
    issue: FakeIssue
    head: str  # branch name in the same repository (forks are not modelled)
    base: str
    draft: bool
    head_sha: str
    base_sha: str
    maintainer_can_modify: bool = False
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    reviews: list[FakeReview] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.issue.number

    @property
    def title(self) -> str:
        return self.issue.title

    @property
    def body(self) -> str | None:
        return self.issue.body

    @property
    def state(self) -> str:
        return self.issue.state

    @property
    def user_login(self) -> str:
        return self.issue.user_login


@dataclass
class FakeJob:
    """A job of a workflow run.  `steps` are (name, conclusion) pairs; `log` is what the job's
    log download serves (empty = no log, which GitHub answers with 404).  `id` comes from
    `fake.next_id()` unless given; the job's check run has the same id, as on GitHub."""

    name: str
    conclusion: str | None = "failure"
    steps: list[tuple[str, str | None]] = field(default_factory=list)
    log: str | bytes | None = ""
    id: int | None = None
    # None = the run's latest attempt; an older attempt's jobs only show with filter=all.
    run_attempt: int | None = None
    labels: list[str] = field(default_factory=lambda: ["ubuntu-latest"])
    # Per-step text for the run's log archive (step name -> text); steps without one are empty.
    step_logs: dict[str, str | bytes] = field(default_factory=dict)
    run_id: int = 0
    started_at: str | None = None
    completed_at: str | None = None

    @property
    def log_bytes(self) -> bytes:
        log = self.log or b""
        return log.encode() if isinstance(log, str) else log


@dataclass
class FakeWorkflowRun:
    id: int
    workflow_id: int
    name: str
    path: str
    head_branch: str
    head_sha: str
    event: str
    status: str
    conclusion: str | None
    pull_requests: list[int]
    actor: str
    jobs: list[FakeJob]
    run_number: int
    run_attempt: int
    created_at: datetime
    updated_at: datetime
    check_suite_id: int
    display_title: str
    head_commit: dict[str, Any]

    def job(self, job_id: int) -> FakeJob | None:
        return next((j for j in self.jobs if j.id == job_id), None)


@dataclass
class FakeCheckRun:
    """A check run created through the Checks API.  `history` holds every request that shaped
    it: ("checks/create" | "checks/update", request body), oldest first."""

    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: str | None
    completed_at: str | None
    check_suite_id: int
    app_slug: str
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    details_url: str | None = None
    external_id: str | None = None
    history: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    installation_id: int | None
    default_branch: str
    private: bool
    owner_type: str
    files: dict[str, str | bytes]
    collaborators: dict[str, str]
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_ids: dict[str, int] = field(default_factory=dict)
    # Issues and pull requests share one number sequence; a PR's number is in both maps.
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    # The bare repository served over smart HTTP, when the repo is git-backed.  Otherwise
    # `branches` (name -> made-up sha) stands in for refs so PR validation still has something
    # to check against.
    git_dir: Path | None = None
    branches: dict[str, str] = field(default_factory=dict)
    # GitHub Actions runs (`add_workflow_run`) and check runs made through the Checks API.
    workflow_runs: dict[int, FakeWorkflowRun] = field(default_factory=dict)
    check_runs: dict[int, FakeCheckRun] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def find_label(self, name: str) -> str | None:
        # Label names are case-insensitive on GitHub; return the stored spelling.
        folded = name.casefold()
        return next((n for n in self.labels if n.casefold() == folded), None)

    def next_issue_number(self) -> int:
        return max(self.issues, default=0) + 1


@dataclass
class FakeInstallation:
    id: int
    account: str
    permissions: dict[str, str]
    account_type: str = "User"


@dataclass
class InstallationToken:
    token: str
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]
    # Lower-cased full names; None means "every repo of the installation" (GitHub's "all").
    repositories: frozenset[str] | None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    operation_id: str | None
    json: Any
    auth_kind: AuthKind | None
    token: str | None
    #: What the handler answered (for a lost response: what GitHub did, not what arrived).
    status: int | None = None
    #: How the response was lost (`lose_response` mode: "drop", "502", "timeout"), else None.
    lost: LoseMode | None = None


@dataclass
class RecordedBlobRequest:
    """A request that reached the blob storage host (`fake.blob_url`), headers as sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None


@dataclass
class BlobGrant:
    """One signed, expiring blob URL: valid for `path` only, until `expires_at`."""

    path: str
    expires_at: datetime
    content_type: str
    data: Callable[[], bytes]


LoseMode = Literal["drop", "502", "timeout"]


@dataclass
class Fault:
    method: str | None
    path_regex: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int
    #: None: answer `status` instead of running the handler (`fail_next`).  Otherwise run the
    #: handler (the write is applied) and lose its response this way (`lose_response`).
    lose: LoseMode | None = None
    #: Called after the handler and before the response is lost (another actor's change).
    meanwhile: Callable[[FakeGitHub], None] | None = None
    #: "timeout": how long the answer is held back.
    delay: float = 0.0


@dataclass
class Ctx:
    """What a handler gets: the parsed, authorised request."""

    request: web.Request
    op: Operation
    params: dict[str, str]
    body: Any
    auth_kind: AuthKind | None
    token: InstallationToken | None
    repo: FakeRepo | None
    rec: RecordedRequest | None = None

    def int_param(self, name: str) -> int:
        return int(self.params[name])

    @property
    def via_app(self) -> bool:
        return self.token is not None


class GitHubError(Exception):
    """Raised by handlers to answer with GitHub's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})


Handler = Callable[["FakeGitHub", Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class HandlerSpec:
    fn: Handler
    # Installation permission the token needs (read for GET, write otherwise); None = JWT op.
    permission: str | None


_HANDLERS: dict[str, HandlerSpec] = {}

# Operations GitHub only accepts with the App's JWT, not an installation token.
_JWT_OPERATIONS = frozenset(
    {"apps/get-repo-installation", "apps/get-org-installation", "apps/get-user-installation"}
)

# Operations GitHub accepts with no credentials at all (the manifest code is the credential).
_UNAUTHENTICATED_OPERATIONS = frozenset({"apps/create-from-manifest"})


def operation(operation_id: str, permission: str | None) -> Callable[[Handler], Handler]:
    """Register a handler for a published operationId (module-wide default table)."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[operation_id] = HandlerSpec(fn, permission)
        return fn

    return register


#: Where `_handle` leaves a `lose_response` fault for `_dispatch` (an aiohttp request key).
_LOSS_KEY = web.RequestKey("fakegithub.lose_response", Fault)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error_body(status: int, message: str, errors: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS_URL}
    if errors is not None:
        body["errors"] = errors
    body["status"] = str(status)
    return body


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class FakeGitHub:
    def __init__(
        self,
        *,
        app_id: int = 4242,
        app_slug: str = "loopwright",
        operations_file: Path = OPERATIONS_FILE,
        git_root: Path | None = None,
    ) -> None:
        """`git_root`: serve the bare repositories under it over git smart HTTP (at
        `{url}/{owner}/{repo}.git`, same tokens as REST) and allow `add_repo(..., git=True)`."""
        self.app_id = app_id
        self.app_slug = app_slug
        self.app_name = app_slug.capitalize()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem: str = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._public_key = key.public_key()
        self.operations = load_operations(operations_file)
        self.handlers: dict[str, HandlerSpec] = dict(_HANDLERS)

        self.repos: dict[str, FakeRepo] = {}
        self.installations: dict[int, FakeInstallation] = {}
        self.tokens: dict[str, InstallationToken] = {}
        self.violations: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        # Things the bot must never do (merge, approve, mark ready).  Handlers still answer as
        # GitHub would, so the bot's code path runs; tests assert this list stays empty.
        self.forbidden_actions: list[str] = []
        self.git_root = git_root

        self._ids = itertools.count(1000)
        self._user_ids: dict[str, int] = {}
        self._rate_used: dict[str | None, int] = {}
        self._app_hooks: list[Callable[[web.Application], None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        # The second origin that log downloads redirect to (GitHub's blob storage): signed,
        # expiring URLs only; every request is recorded, and one carrying an Authorization
        # header (our token leaking to another host) is a violation.
        self.blob_url = ""
        self.blob_requests: list[RecordedBlobRequest] = []
        self.blob_grants: dict[str, BlobGrant] = {}
        self._blob_runner: web.AppRunner | None = None
        self._check_suites: dict[tuple[int, str, str], int] = {}
        # Set by close(): releases answers held back by a "timeout" lost response.
        self._closing = asyncio.Event()
        # The App manifest flow: code -> (manifest, owner login, owner type); single use.
        self.manifest_codes: dict[str, tuple[dict[str, Any], str, str]] = {}
        self.created_apps: list[dict[str, Any]] = []

    # ----------------------------------------------------------------------------- lifecycle

    def add_app_hook(self, hook: Callable[[web.Application], None]) -> None:
        """Mount extra non-REST routes (e.g. `githttp.add_git_routes`) before the REST
        catch-all; must be called before start()."""
        if self._runner is not None:
            raise RuntimeError("add_app_hook() must be called before start()")
        self._app_hooks.append(hook)

    async def start(self) -> None:
        self._closing.clear()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        if self.git_root is not None:
            add_git_routes(app, self.git_root, self.token_allows)
        for hook in self._app_hooks:
            hook(app)
        # GraphQL is the only way to mark a PR ready for review (REST ignores `draft` on update),
        # so it gets a route of its own that records such attempts; see `_graphql`.
        app.router.add_post("/graphql", self._graphql)
        # GitHub's web form of the App manifest flow (not REST): see `_manifest_form`.
        app.router.add_post("/settings/apps/new", self._manifest_form)
        app.router.add_post("/organizations/{org}/settings/apps/new", self._manifest_form)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.url = await _serve_on_loopback(self._runner)

        blob_app = web.Application()
        blob_app.router.add_route("*", "/{tail:.*}", self._blob)
        self._blob_runner = web.AppRunner(blob_app, access_log=None)
        await self._blob_runner.setup()
        self.blob_url = await _serve_on_loopback(self._blob_runner)

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._blob_runner is not None:
            await self._blob_runner.cleanup()
            self._blob_runner = None

    # ----------------------------------------------------------------------------- seeding

    def next_id(self) -> int:
        return next(self._ids)

    def add_installation(
        self,
        installation_id: int,
        account: str,
        *,
        permissions: Mapping[str, str] | None = None,
        account_type: str = "User",
    ) -> FakeInstallation:
        inst = FakeInstallation(
            id=installation_id,
            account=account,
            permissions=dict(permissions or DEFAULT_INSTALLATION_PERMISSIONS),
            account_type=account_type,
        )
        self.installations[installation_id] = inst
        return inst

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int | None = 1,
        default_branch: str = "main",
        labels: Iterable[str | Mapping[str, Any]] = (),
        files: Mapping[str, str | bytes] | None = None,
        collaborators: Mapping[str, str] | None = None,
        private: bool = False,
        owner_type: str = "User",
        permissions: Mapping[str, str] | None = None,
        git: bool = False,
    ) -> FakeRepo:
        """Seed a repository.  `permissions` applies only when this call creates the
        installation; `installation_id=None` models a repo the App is not installed on.

        `git=True` (needs `git_root`) creates a bare repository served over smart HTTP; `files`
        then become its first commit on the default branch, and contents are read from git."""
        if git and self.git_root is None:
            raise ValueError("add_repo(git=True) needs FakeGitHub(git_root=...)")
        owner, name = full_name.split("/", 1)
        if installation_id is not None and installation_id not in self.installations:
            self.add_installation(
                installation_id, owner, permissions=permissions, account_type=owner_type
            )
        repo = FakeRepo(
            id=self.next_id(),
            owner=owner,
            name=name,
            installation_id=installation_id,
            default_branch=default_branch,
            private=private,
            owner_type=owner_type,
            files={} if git else dict(files or {}),
            collaborators=dict(collaborators or {}),
        )
        if git:
            repo.git_dir = create_bare_repo(
                cast(Path, self.git_root), full_name, default_branch=default_branch
            )
        else:
            repo.branches[default_branch] = _made_up_sha(f"{full_name}@{default_branch}")
        for label in labels:
            if isinstance(label, str):
                self._create_label(repo, label)
            else:
                self._create_label(
                    repo, label["name"], label.get("color", "ededed"), label.get("description")
                )
        self.repos[full_name.lower()] = repo
        if git and files:
            self.seed_git(full_name, files)
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def add_issue(
        self,
        full_name: str,
        *,
        number: int | None = None,
        title: str = "An issue",
        body: str | None = "",
        user: str = "alice",
        labels: Iterable[str] = (),
        state: str = "open",
    ) -> FakeIssue:
        repo = self.repo(full_name)
        number = repo.next_issue_number() if number is None else number
        issue = FakeIssue(
            id=self.next_id(), number=number, title=title, body=body, user_login=user, state=state
        )
        repo.issues[number] = issue
        self._add_issue_labels(repo, issue, labels)
        return issue

    def add_comment(
        self,
        full_name: str,
        number: int,
        body: str,
        *,
        user: str = "alice",
        user_type: str = "User",
    ) -> FakeComment:
        repo = self.repo(full_name)
        return self._new_comment(repo.issues[number], body, user, user_type, via_app=False)

    def add_branch(self, full_name: str, branch: str, sha: str | None = None) -> str:
        """Create (or move) `branch` at `sha`.  Default for a git-backed repo: the default
        branch's tip; for an in-memory repo: a fresh made-up sha, i.e. a branch "with commits"
        that a PR can be opened from."""
        repo = self.repo(full_name)
        if repo.git_dir is None:
            repo.branches[branch] = sha or _made_up_sha(f"{full_name}@{branch}")
            return repo.branches[branch]
        target = sha or self.branch_sha(full_name, repo.default_branch)
        if target is None:
            raise ValueError(f"{full_name} has no commits to branch from")
        _git(repo.git_dir, "update-ref", f"refs/heads/{branch}", target)
        return target

    def add_pull(
        self,
        full_name: str,
        *,
        head: str,
        base: str | None = None,
        title: str = "A pull request",
        body: str | None = "",
        user: str = "alice",
        user_type: str = "User",
        draft: bool = False,
    ) -> FakePull:
        """Seed a pull request opened by someone else (a human, dependabot[bot]); the same
        validation as `pulls/create` applies, so `head` must exist."""
        repo = self.repo(full_name)
        return self._open_pull(
            repo,
            head=head,
            base=base or repo.default_branch,
            title=title,
            body=body,
            draft=draft,
            user=user,
            user_type=user_type,
            via_app=False,
        )

    def add_workflow_run(
        self,
        full_name: str,
        *,
        workflow_id: int,
        name: str,
        path: str = ".github/workflows/ci.yml",
        head_branch: str,
        head_sha: str,
        event: str = "push",
        status: str = "completed",
        conclusion: str | None = "failure",
        pull_requests: Iterable[int] = (),
        actor: str = "octocat",
        jobs: Iterable[FakeJob] = (),
        run_id: int | None = None,
        created_at: datetime | None = None,
        display_title: str | None = None,
    ) -> FakeWorkflowRun:
        """Seed a GitHub Actions run, as a push or pull request would have triggered it.

        `conclusion` only sticks to a completed run (GitHub has none before).  `pull_requests`
        are numbers of this repo's PRs (the run's minimal PR entries).  Jobs get an id (also
        their check run's id), the run's attempt and timestamps unless set; a job's `log` is
        what its log download serves through the blob host."""
        repo = self.repo(full_name)
        numbers = list(pull_requests)
        for number in numbers:
            if number not in repo.pulls:
                raise ValueError(f"{full_name} has no pull request #{number}")
        created = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        rid = self.next_id() if run_id is None else run_id
        if rid in repo.workflow_runs:
            raise ValueError(f"{full_name} already has workflow run {rid}")
        job_list = list(jobs)
        attempt = max((j.run_attempt or 1 for j in job_list), default=1)
        clock = created + timedelta(seconds=5)
        for job in job_list:
            job.id = self.next_id() if job.id is None else job.id
            job.run_id = rid
            job.run_attempt = job.run_attempt or attempt
            if job.started_at is None and status != "queued":
                job.started_at = _iso(clock)
            if job.completed_at is None and job.conclusion is not None:
                job.completed_at = _iso(clock + timedelta(seconds=60))
            clock += timedelta(seconds=61)
        done = status == "completed"
        head_commit = self._head_commit(repo, head_sha, actor, created)
        if display_title is None:
            pull = repo.pulls.get(numbers[0]) if numbers else None
            if pull is not None and event.startswith("pull_request"):
                display_title = pull.title
            else:
                display_title = str(head_commit["message"]).split("\n", 1)[0] or name
        run = FakeWorkflowRun(
            id=rid,
            workflow_id=workflow_id,
            name=name,
            path=path,
            head_branch=head_branch,
            head_sha=head_sha,
            event=event,
            status=status,
            conclusion=conclusion if done else None,
            pull_requests=numbers,
            actor=actor,
            jobs=job_list,
            run_number=1 + sum(r.workflow_id == workflow_id for r in repo.workflow_runs.values()),
            run_attempt=attempt,
            created_at=created,
            updated_at=clock if done else created,
            check_suite_id=self.next_id(),
            display_title=display_title,
            head_commit=head_commit,
        )
        repo.workflow_runs[rid] = run
        return run

    def add_check_run(
        self,
        full_name: str,
        *,
        name: str,
        head_sha: str,
        status: str = "completed",
        conclusion: str | None = "success",
        app_slug: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
    ) -> FakeCheckRun:
        """Seed a check run, by default one made by another app (`app_slug`, e.g. a CI
        service) so tests can check the bot leaves other apps' check runs alone."""
        repo = self.repo(full_name)
        slug = app_slug or self.app_slug
        now = _now_iso()
        check = FakeCheckRun(
            id=self.next_id(),
            name=name,
            head_sha=head_sha,
            status=status,
            conclusion=conclusion if status == "completed" else None,
            started_at=now,
            completed_at=now if status == "completed" else None,
            check_suite_id=self._check_suite_id(repo, head_sha, slug),
            app_slug=slug,
            title=title,
            summary=summary,
            text=text,
        )
        repo.check_runs[check.id] = check
        return check

    def _head_commit(self, repo: FakeRepo, sha: str, actor: str, when: datetime) -> dict[str, Any]:
        """The run's `head_commit`: read from git for a git-backed repo, else made up."""
        if repo.git_dir is not None:
            proc = _git_run(
                repo.git_dir,
                "show",
                "-s",
                "--format=%T%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%B",
                sha,
                check=False,
            )
            if proc.returncode == 0:
                tree, an, ae, cn, ce, date, message = proc.stdout.decode().split("\0", 6)
                return {
                    "id": sha,
                    "tree_id": tree,
                    "message": message.strip(),
                    "timestamp": _iso(datetime.fromisoformat(date)),
                    "author": {"name": an, "email": ae},
                    "committer": {"name": cn, "email": ce},
                }
        return {
            "id": sha,
            "tree_id": _made_up_sha(f"{sha}:tree"),
            "message": "Update",
            "timestamp": _iso(when),
            "author": {"name": actor, "email": f"{actor}@users.noreply.github.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        }

    def _check_suite_id(self, repo: FakeRepo, head_sha: str, app_slug: str) -> int:
        # One check suite per (commit, app), as GitHub makes them.
        key = (repo.id, head_sha, app_slug)
        if key not in self._check_suites:
            self._check_suites[key] = self.next_id()
        return self._check_suites[key]

    # ----------------------------------------------------------------------------- git

    def git_path(self, full_name: str) -> Path:
        """The bare repository behind a git-backed repo."""
        git_dir = self.repo(full_name).git_dir
        if git_dir is None:
            raise ValueError(f"{full_name} is not git-backed (add_repo(..., git=True))")
        return git_dir

    def seed_git(
        self,
        full_name: str,
        files: Mapping[str, str | bytes | None],
        message: str = "init",
        branch: str | None = None,
    ) -> str:
        """Commit `files` (path -> content; None deletes) on top of `branch` (default: the
        default branch; a new branch starts from the default branch's tip).  Returns the sha.

        Plumbing on a throwaway index, so no work tree and no hooks are involved."""
        repo = self.repo(full_name)
        git_dir = self.git_path(full_name)
        branch = branch or repo.default_branch
        old = self.branch_sha(full_name, branch)
        parent = old or self.branch_sha(full_name, repo.default_branch)
        with tempfile.TemporaryDirectory(prefix="fakegithub-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent is not None:
                _git(git_dir, "read-tree", parent, env=env)
            for path, content in files.items():
                path = path.strip("/")
                if content is None:
                    _git(git_dir, "update-index", "--force-remove", "--", path, env=env)
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = _git(git_dir, "hash-object", "-w", "--stdin", stdin=data)
                cacheinfo = f"100644,{blob},{path}"
                _git(git_dir, "update-index", "--add", "--cacheinfo", cacheinfo, env=env)
            tree = _git(git_dir, "write-tree", env=env)
        parents = ["-p", parent] if parent is not None else []
        commit = _git(
            git_dir,
            "-c",
            "user.name=FakeGitHub Seed",
            "-c",
            "user.email=seed@fakegithub.invalid",
            "commit-tree",
            tree,
            *parents,
            "-m",
            message,
        )
        # The old value makes this a compare-and-swap, like a push without --force.
        _git(git_dir, "update-ref", f"refs/heads/{branch}", commit, old or "0" * 40)
        return commit

    def branch_sha(self, full_name: str, branch: str) -> str | None:
        """The tip of `branch` now, or None if it does not exist."""
        repo = self.repo(full_name)
        if repo.git_dir is None:
            return repo.branches.get(branch)
        return self._resolve_commit(repo, f"refs/heads/{branch}")

    def read_git_file(self, full_name: str, ref: str, path: str) -> str | None:
        """A file's text at `ref` (branch, tag or sha) in the bare repo, or None if absent."""
        git_dir = self.git_path(full_name)
        proc = _git_run(git_dir, "cat-file", "blob", f"{ref}:{path.strip('/')}", check=False)
        return proc.stdout.decode() if proc.returncode == 0 else None

    def _resolve_commit(self, repo: FakeRepo, ref: str) -> str | None:
        if repo.git_dir is None or ref.startswith("-"):
            return None
        proc = _git_run(
            repo.git_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
        )
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def _ref_for_contents(self, repo: FakeRepo, ref: str) -> str | None:
        # GitHub resolves `ref` as a branch, tag or commit sha; try the branch namespace first so
        # a branch named like a sha prefix still wins, as it does there.
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            sha = self._resolve_commit(repo, candidate)
            if sha is not None:
                return sha
        return None

    def _has_commits_between(self, repo: FakeRepo, base_sha: str, head_sha: str) -> bool:
        if repo.git_dir is None:
            return head_sha != base_sha
        # head already contained in base = nothing to merge, whatever the branch names are.
        proc = _git_run(
            repo.git_dir, "merge-base", "--is-ancestor", head_sha, base_sha, check=False
        )
        return proc.returncode != 0

    def _diff_stats(self, repo: FakeRepo, base_sha: str, head_sha: str) -> dict[str, int]:
        if repo.git_dir is None:
            return {"commits": 1, "additions": 0, "deletions": 0, "changed_files": 0}
        commits = int(_git(repo.git_dir, "rev-list", "--count", f"{base_sha}..{head_sha}"))
        additions = deletions = changed = 0
        # Three dots: changes on head since it forked, which is what a PR's "Files" tab shows.
        for line in _git(
            repo.git_dir, "diff", "--numstat", f"{base_sha}...{head_sha}"
        ).splitlines():
            added, removed, _ = line.split("\t", 2)
            changed += 1
            # Binary files show "-" for both counts.
            additions += int(added) if added.isdigit() else 0
            deletions += int(removed) if removed.isdigit() else 0
        return {
            "commits": commits,
            "additions": additions,
            "deletions": deletions,
            "changed_files": changed,
        }

    def _merge_in_git(self, repo: FakeRepo, pull: FakePull, method: str, message: str) -> str:
        """Merge the PR into its base for real (git >= 2.38 `merge-tree --write-tree`); raises
        GitHub's 405 on conflicts."""
        base_sha = cast(str, self.branch_sha(repo.full_name, pull.base))
        git_dir = cast(Path, repo.git_dir)
        proc = _git_run(git_dir, "merge-tree", "--write-tree", base_sha, pull.head_sha, check=False)
        if proc.returncode != 0:
            raise GitHubError(405, "Pull Request is not mergeable")
        tree = proc.stdout.decode().splitlines()[0]
        # squash and rebase both leave base with a single new parent chain; one commit is
        # enough for what a test can observe.
        parents = ["-p", base_sha] + (["-p", pull.head_sha] if method == "merge" else [])
        commit = _git(
            git_dir,
            "-c",
            # GitHub itself commits merges made through the API.
            "user.name=GitHub",
            "-c",
            "user.email=noreply@github.com",
            "commit-tree",
            tree,
            *parents,
            "-m",
            message,
        )
        _git(git_dir, "update-ref", f"refs/heads/{pull.base}", commit, base_sha)
        return commit

    def _open_pull(
        self,
        repo: FakeRepo,
        *,
        head: str,
        base: str,
        title: str,
        body: str | None,
        draft: bool,
        user: str,
        user_type: str,
        via_app: bool,
        maintainer_can_modify: bool = False,
    ) -> FakePull:
        # `head` may be "owner:branch"; another owner means a fork, which is not modelled, and
        # GitHub answers a head it cannot find with the same field error.
        owner, sep, branch = head.rpartition(":")
        if sep and owner.casefold() != repo.owner.casefold():
            raise _pull_field_error("head")
        head_sha = self.branch_sha(repo.full_name, branch)
        if head_sha is None:
            raise _pull_field_error("head")
        base_sha = self.branch_sha(repo.full_name, base)
        if base_sha is None:
            raise _pull_field_error("base")
        for other in repo.pulls.values():
            if other.state == "open" and other.head == branch and other.base == base:
                raise _pull_custom_error(
                    f"A pull request already exists for {repo.owner}:{branch}."
                )
        if not self._has_commits_between(repo, base_sha, head_sha):
            raise _pull_custom_error(f"No commits between {base} and {branch}")
        issue = FakeIssue(
            id=self.next_id(),
            number=repo.next_issue_number(),
            title=title,
            body=body,
            user_login=user,
            user_type=user_type,
            performed_via_app=via_app,
        )
        repo.issues[issue.number] = issue
        pull = FakePull(
            id=self.next_id(),
            issue=issue,
            head=branch,
            base=base,
            draft=draft,
            head_sha=head_sha,
            base_sha=base_sha,
            maintainer_can_modify=maintainer_can_modify,
        )
        repo.pulls[issue.number] = pull
        return pull

    def fail_next(
        self,
        *,
        method: str | None = None,
        path_regex: str = ".*",
        status: int = 500,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching requests (regex searched in the path, no query)
        with `status`.  Faults are consumed FIFO and fire after auth and schema checks, so an
        injected failure never hides an API misuse."""
        self.faults.append(
            Fault(
                method=method.upper() if method else None,
                path_regex=re.compile(path_regex),
                status=status,
                headers=dict(headers or {}),
                body=body,
                times=times,
            )
        )

    def lose_response(
        self,
        *,
        method: str | None = None,
        path_regex: str = ".*",
        times: int = 1,
        mode: LoseMode = "drop",
        meanwhile: Callable[[FakeGitHub], None] | None = None,
        delay: float = 30.0,
    ) -> None:
        """Apply the next `times` matching requests and lose their responses: the handler runs
        (state changes, the request is recorded with the handler's status and `lost=mode`),
        then `mode` decides what the client gets --
        "drop": the connection is closed without a response (aiohttp's client raises
        `ServerDisconnectedError`); "502": a bad-gateway error instead of the real answer;
        "timeout": nothing for `delay` seconds (for a client with a shorter timeout), then the
        real answer, too late.  `meanwhile(fake)` runs between the handler and the loss, to
        model another actor's change.  Shares the FIFO queue and the after-auth-and-schema
        position with `fail_next`; a handler's own error answer is lost the same way."""
        self.faults.append(
            Fault(
                method=method.upper() if method else None,
                path_regex=re.compile(path_regex),
                status=502 if mode == "502" else 0,
                headers={},
                body=None,
                times=times,
                lose=mode,
                meanwhile=meanwhile,
                delay=delay,
            )
        )

    def expire_tokens(self) -> None:
        """Make every minted installation token expired (GitHub's are valid for one hour)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for tok in self.tokens.values():
            tok.expires_at = past

    def expire_blob_urls(self) -> None:
        """Make every signed blob URL handed out so far expired (GitHub's last one minute)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for grant in self.blob_grants.values():
            grant.expires_at = past

    def grant_blob(self, name: str, content_type: str, data: Callable[[], bytes]) -> str:
        """A signed URL on the blob host serving `data()` (read at download time) for
        BLOB_URL_TTL_SECONDS; the signature (`sig`) is random and valid for this path only."""
        token = secrets.token_urlsafe(32)
        path = f"/actions-results/{secrets.token_hex(16)}/{quote(name)}"
        expires = datetime.now(UTC) + timedelta(seconds=BLOB_URL_TTL_SECONDS)
        self.blob_grants[token] = BlobGrant(path, expires, content_type, data)
        query = urlencode(
            {"sv": "2021-12-02", "sr": "b", "sp": "r", "se": _iso(expires), "sig": token}
        )
        return f"{self.blob_url}{path}?{query}"

    def register(self, operation_id: str, fn: Handler, permission: str | None = None) -> None:
        """Add or override a handler on this instance only."""
        self.handlers[operation_id] = HandlerSpec(fn, permission)

    # ----------------------------------------------------------------------------- inspection

    def requests_for(self, operation_id: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation_id == operation_id]

    def assert_no_violations(self) -> None:
        if self.violations:
            raise AssertionError("GitHub API violations:\n" + "\n".join(self.violations))

    # ----------------------------------------------------------------------------- JSON shapes

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def user_id(self, login: str) -> int:
        if login not in self._user_ids:
            self._user_ids[login] = self.next_id()
        return self._user_ids[login]

    def user_json(self, login: str, user_type: str = "User") -> dict[str, Any]:
        uid = self.user_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}" if user_type != "Bot" else f"BOT_{uid}",
            "type": user_type,
            "site_admin": False,
            "url": f"{self.url}/users/{login}",
            "html_url": f"{HTML_BASE}/{login.removesuffix('[bot]')}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        }

    def app_json(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": f"A_{self.app_id}",
            "name": self.app_name,
            "owner": self.user_json("loopwright-org", "Organization"),
            "description": "",
            "external_url": "https://example.invalid/loopwright",
            "html_url": f"{HTML_BASE}/apps/{self.app_slug}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": dict(DEFAULT_INSTALLATION_PERMISSIONS),
            "events": ["issues", "issue_comment", "pull_request", "check_suite", "workflow_run"],
        }

    def installation_json(self, inst: FakeInstallation) -> dict[str, Any]:
        return {
            "id": inst.id,
            "account": self.user_json(inst.account, inst.account_type),
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": self.user_id(inst.account),
            "target_type": inst.account_type,
            "permissions": dict(inst.permissions),
            "events": self.app_json()["events"],
            "repository_selection": "selected",
            "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "suspended_at": None,
        }

    def repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user_json(repo.owner, repo.owner_type),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "fork": False,
            "archived": False,
            "disabled": False,
            "default_branch": repo.default_branch,
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}",
            "clone_url": f"{self.url}/{repo.full_name}.git",
            "issues_url": api + "/issues{/number}",
            "labels_url": api + "/labels{/name}",
        }

    def label_json(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        label = repo.labels[name]
        lid = repo.label_ids[name]
        return {
            "id": lid,
            "node_id": f"LA_{lid}",
            "url": f"{self.url}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": label["name"],
            "color": label["color"],
            "default": False,
            "description": label["description"],
        }

    def issue_json(self, repo: FakeRepo, issue: FakeIssue) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/issues/{issue.number}"
        data = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "user": self.user_json(issue.user_login, issue.user_type),
            "labels": [self.label_json(repo, n) for n in issue.labels],
            "assignees": [self.user_json(a) for a in issue.assignees],
            "assignee": self.user_json(issue.assignees[0]) if issue.assignees else None,
            "comments": len(issue.comments),
            "author_association": self._association(repo, issue.user_login, issue.user_type),
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/issues/{issue.number}",
            "repository_url": f"{self.url}/repos/{repo.full_name}",
            "comments_url": api + "/comments",
            "labels_url": api + "/labels{/name}",
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "performed_via_github_app": self.app_json() if issue.performed_via_app else None,
            "reactions": self._reaction_rollup(issue.reactions, api + "/reactions"),
        }
        pull = repo.pulls.get(issue.number)
        if pull is not None:
            # The issues API serves PRs too; the `pull_request` key is how a client tells them
            # apart (and the only place the issue side says whether it was merged).
            html = f"{HTML_BASE}/{repo.full_name}/pull/{issue.number}"
            data["html_url"] = html
            data["draft"] = pull.draft
            data["pull_request"] = {
                "url": f"{self.url}/repos/{repo.full_name}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": html + ".diff",
                "patch_url": html + ".patch",
                "merged_at": pull.merged_at,
            }
        return data

    def _ref_json(self, repo: FakeRepo, branch: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": self.user_json(repo.owner, repo.owner_type),
            "repo": self.repo_json(repo),
        }

    def pull_json(self, repo: FakeRepo, pull: FakePull, *, full: bool = True) -> dict[str, Any]:
        """`full=False` is the "pull-request-simple" shape that pulls/list answers with: no
        mergeability, counts or merged flag."""
        issue = pull.issue
        # GitHub moves a PR's head with every push to its branch (until it is closed).
        current = self.branch_sha(repo.full_name, pull.head)
        if current is not None and pull.state == "open":
            pull.head_sha = current
        base_sha = self.branch_sha(repo.full_name, pull.base) or pull.base_sha
        api = f"{self.url}/repos/{repo.full_name}"
        n = pull.number
        html = f"{HTML_BASE}/{repo.full_name}/pull/{n}"
        data: dict[str, Any] = {
            "url": f"{api}/pulls/{n}",
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits",
            "review_comments_url": f"{api}/pulls/{n}/comments",
            "review_comment_url": api + "/pulls/comments{/number}",
            "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": n,
            "state": pull.state,
            "locked": False,
            "title": issue.title,
            "user": self.user_json(issue.user_login, issue.user_type),
            "body": issue.body,
            "labels": [self.label_json(repo, name) for name in issue.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": self.user_json(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user_json(a) for a in issue.assignees],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._ref_json(repo, pull.head, pull.head_sha),
            "base": self._ref_json(repo, pull.base, base_sha),
            "_links": {
                "self": {"href": f"{api}/pulls/{n}"},
                "html": {"href": html},
                "issue": {"href": f"{api}/issues/{n}"},
                "comments": {"href": f"{api}/issues/{n}/comments"},
                "review_comments": {"href": f"{api}/pulls/{n}/comments"},
                "review_comment": {"href": api + "/pulls/comments{/number}"},
                "commits": {"href": f"{api}/pulls/{n}/commits"},
                "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
            },
            "author_association": self._association(repo, issue.user_login, issue.user_type),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if not full:
            return data
        open_ = pull.state == "open"
        data.update(
            {
                "merged": pull.merged,
                # Real GitHub computes these in the background (null at first); a fake that
                # answers at once is a valid instant of that.
                "mergeable": True if open_ else None,
                "rebaseable": True if open_ else None,
                "mergeable_state": ("draft" if pull.draft else "clean") if open_ else "unknown",
                "merged_by": self.user_json(pull.merged_by, "Bot") if pull.merged_by else None,
                "comments": len(issue.comments),
                "review_comments": 0,
                "maintainer_can_modify": pull.maintainer_can_modify,
                **self._diff_stats(repo, pull.base_sha if pull.merged else base_sha, pull.head_sha),
            }
        )
        return data

    def review_json(self, repo: FakeRepo, pull: FakePull, review: FakeReview) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}"
        html = f"{HTML_BASE}/{repo.full_name}/pull/{pull.number}#pullrequestreview-{review.id}"
        data: dict[str, Any] = {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self.user_json(review.user_login, review.user_type),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": api,
            "author_association": self._association(repo, review.user_login, review.user_type),
            "_links": {"html": {"href": html}, "pull_request": {"href": api}},
            "commit_id": review.commit_id,
        }
        # A pending review has not been submitted, and GitHub leaves the key out entirely.
        if review.submitted_at is not None:
            data["submitted_at"] = review.submitted_at
        return data

    def comment_json(self, repo: FakeRepo, comment: FakeComment) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/issues/comments/{comment.id}"
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": api,
            "html_url": (
                f"{HTML_BASE}/{repo.full_name}/issues/{comment.issue_number}"
                f"#issuecomment-{comment.id}"
            ),
            "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{comment.issue_number}",
            "body": comment.body,
            "user": self.user_json(comment.user_login, comment.user_type),
            "author_association": self._association(repo, comment.user_login, comment.user_type),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "performed_via_github_app": self.app_json() if comment.performed_via_app else None,
            "reactions": self._reaction_rollup(comment.reactions, api + "/reactions"),
        }

    def reaction_json(self, rid: int, user: str, content: str, created_at: str) -> dict[str, Any]:
        user_type = "Bot" if user.endswith("[bot]") else "User"
        return {
            "id": rid,
            "node_id": f"REA_{rid}",
            "user": self.user_json(user, user_type),
            "content": content,
            "created_at": created_at,
        }

    @staticmethod
    def _reaction_rollup(reactions: list[tuple[str, str]], url: str) -> dict[str, Any]:
        counts = dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket"), 0)
        counts["eyes"] = 0
        for _, content in reactions:
            counts[content] = counts.get(content, 0) + 1
        return {"url": url, "total_count": len(reactions), **counts}

    @staticmethod
    def _association(repo: FakeRepo, login: str, user_type: str) -> str:
        if user_type == "Bot":
            return "NONE"
        if login == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if login in repo.collaborators else "NONE"

    # ----------------------------------------------------------------------------- Actions, checks

    def minimal_repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        """The "minimal-repository" shape of a workflow run's `repository`/`head_repository`."""
        api = f"{self.url}/repos/{repo.full_name}"
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user_json(repo.owner, repo.owner_type),
            "private": repo.private,
            "html_url": f"{HTML_BASE}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": api,
        }
        data.update({key: api + suffix for key, suffix in _REPO_URL_TEMPLATES.items()})
        return data

    def _pull_head_sha(self, repo: FakeRepo, pull: FakePull) -> str:
        # As in pull_json: an open PR's head follows its branch.
        current = self.branch_sha(repo.full_name, pull.head)
        if current is not None and pull.state == "open":
            pull.head_sha = current
        return pull.head_sha

    def minimal_pull_json(self, repo: FakeRepo, pull: FakePull) -> dict[str, Any]:
        """The {url, id, number, head, base} entry of a workflow or check run's
        `pull_requests`."""
        repo_ref = {"id": repo.id, "url": f"{self.url}/repos/{repo.full_name}", "name": repo.name}
        base_sha = self.branch_sha(repo.full_name, pull.base) or pull.base_sha
        return {
            "url": f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}",
            "id": pull.id,
            "number": pull.number,
            "head": {"ref": pull.head, "sha": self._pull_head_sha(repo, pull), "repo": repo_ref},
            "base": {"ref": pull.base, "sha": base_sha, "repo": dict(repo_ref)},
        }

    def workflow_json(self, repo: FakeRepo, run: FakeWorkflowRun) -> dict[str, Any]:
        """The `workflow` object of a workflow_run webhook."""
        api = f"{self.url}/repos/{repo.full_name}/actions/workflows/{run.workflow_id}"
        return {
            "id": run.workflow_id,
            "node_id": f"W_{run.workflow_id}",
            "name": run.name,
            "path": run.path,
            "state": "active",
            "created_at": "2024-01-01T00:00:00.000Z",
            "updated_at": "2024-01-01T00:00:00.000Z",
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/blob/{repo.default_branch}/{run.path}",
            "badge_url": f"{HTML_BASE}/{repo.full_name}/workflows/{quote(run.name)}/badge.svg",
        }

    def workflow_run_json(
        self, repo: FakeRepo, run: FakeWorkflowRun, *, exclude_pull_requests: bool = False
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        run_api = f"{api}/actions/runs/{run.id}"
        actor = self.user_json(run.actor, _login_type(run.actor))
        pulls = [] if exclude_pull_requests else run.pull_requests
        return {
            "id": run.id,
            "name": run.name,
            "node_id": f"WFR_{run.id}",
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.path,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": run.workflow_id,
            "check_suite_id": run.check_suite_id,
            "check_suite_node_id": f"CS_{run.check_suite_id}",
            "url": run_api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/actions/runs/{run.id}",
            "pull_requests": [self.minimal_pull_json(repo, repo.pulls[n]) for n in pulls],
            "created_at": _iso(run.created_at),
            "updated_at": _iso(run.updated_at),
            "actor": actor,
            "triggering_actor": dict(actor),
            "run_attempt": run.run_attempt,
            "run_started_at": _iso(run.created_at),
            "jobs_url": run_api + "/jobs",
            "logs_url": run_api + "/logs",
            "check_suite_url": f"{api}/check-suites/{run.check_suite_id}",
            "artifacts_url": run_api + "/artifacts",
            "cancel_url": run_api + "/cancel",
            "rerun_url": run_api + "/rerun",
            "previous_attempt_url": (
                f"{run_api}/attempts/{run.run_attempt - 1}" if run.run_attempt > 1 else None
            ),
            "workflow_url": f"{api}/actions/workflows/{run.workflow_id}",
            "head_commit": dict(run.head_commit),
            "repository": self.minimal_repo_json(repo),
            "head_repository": self.minimal_repo_json(repo),
        }

    @staticmethod
    def _job_status(job: FakeJob) -> str:
        if job.conclusion is not None:
            return "completed"
        return "queued" if job.started_at is None else "in_progress"

    def job_json(self, repo: FakeRepo, run: FakeWorkflowRun, job: FakeJob) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}"
        status = self._job_status(job)
        start = datetime.fromisoformat(job.started_at) if job.started_at else None
        steps = []
        waiting = False
        for number, (step_name, step_conclusion) in enumerate(job.steps, 1):
            step_start = _iso(start + timedelta(seconds=number)) if start else None
            if step_conclusion is not None:
                step_status = "completed"
            else:
                # The first unfinished step is the one running; the rest wait for it.
                step_status = "queued" if waiting or start is None else "in_progress"
                waiting = True
            steps.append(
                {
                    "name": step_name,
                    "status": step_status,
                    "conclusion": step_conclusion,
                    "number": number,
                    "started_at": None if step_status == "queued" else step_start,
                    "completed_at": (
                        _iso(start + timedelta(seconds=number + 1))
                        if step_status == "completed" and start
                        else None
                    ),
                }
            )
        started = start is not None
        return {
            "id": job.id,
            "run_id": run.id,
            "run_url": f"{api}/actions/runs/{run.id}",
            "run_attempt": job.run_attempt,
            "node_id": f"CR_{job.id}",
            "head_sha": run.head_sha,
            "head_branch": run.head_branch,
            "url": f"{api}/actions/jobs/{job.id}",
            "html_url": f"{HTML_BASE}/{repo.full_name}/actions/runs/{run.id}/job/{job.id}",
            "status": status,
            "conclusion": job.conclusion,
            "created_at": _iso(run.created_at),
            "started_at": job.started_at or _iso(run.created_at),
            "completed_at": job.completed_at if status == "completed" else None,
            "name": job.name,
            "steps": steps,
            "check_run_url": f"{api}/check-runs/{job.id}",
            "labels": list(job.labels),
            "runner_id": 1 if started else None,
            "runner_name": "GitHub Actions 1" if started else None,
            "runner_group_id": 1 if started else None,
            "runner_group_name": "GitHub Actions" if started else None,
            "workflow_name": run.name,
        }

    def find_job(self, repo: FakeRepo, job_id: int) -> tuple[FakeWorkflowRun, FakeJob] | None:
        for run in repo.workflow_runs.values():
            job = run.job(job_id)
            if job is not None:
                return run, job
        return None

    def app_json_for(self, slug: str) -> dict[str, Any]:
        """This app's JSON, or a plausible one for another app (github-actions, a CI)."""
        if slug == self.app_slug:
            return self.app_json()
        app_id = (
            GITHUB_ACTIONS_APP_ID if slug == GITHUB_ACTIONS_SLUG else self.user_id(f"app/{slug}")
        )
        owner = "github" if slug == GITHUB_ACTIONS_SLUG else f"{slug}-org"
        return {
            "id": app_id,
            "slug": slug,
            "node_id": f"A_{app_id}",
            "name": "GitHub Actions" if slug == GITHUB_ACTIONS_SLUG else slug,
            "owner": self.user_json(owner, "Organization"),
            "description": "",
            "external_url": f"https://{slug}.example.invalid",
            "html_url": f"{HTML_BASE}/apps/{slug}",
            "created_at": "2018-07-30T09:30:17Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": {"checks": "write", "metadata": "read"},
            "events": [],
        }

    def _check_run_shape(
        self,
        repo: FakeRepo,
        *,
        check_id: int,
        name: str,
        head_sha: str,
        status: str,
        conclusion: str | None,
        started_at: str | None,
        completed_at: str | None,
        output: dict[str, Any],
        details_url: str | None,
        external_id: str | None,
        check_suite_id: int,
        app_slug: str,
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/check-runs/{check_id}"
        pulls = [
            self.minimal_pull_json(repo, p)
            for p in repo.pulls.values()
            if p.state == "open" and self._pull_head_sha(repo, p) == head_sha
        ]
        return {
            "id": check_id,
            "node_id": f"CR_{check_id}",
            "head_sha": head_sha,
            "external_id": external_id,
            "url": api,
            "html_url": f"{HTML_BASE}/{repo.full_name}/runs/{check_id}",
            "details_url": details_url,
            "status": status,
            "conclusion": conclusion,
            "started_at": started_at,
            "completed_at": completed_at,
            "output": {**output, "annotations_url": api + "/annotations"},
            "name": name,
            "check_suite": {"id": check_suite_id},
            "app": self.app_json_for(app_slug),
            "pull_requests": pulls,
        }

    def check_run_json(self, repo: FakeRepo, check: FakeCheckRun) -> dict[str, Any]:
        return self._check_run_shape(
            repo,
            check_id=check.id,
            name=check.name,
            head_sha=check.head_sha,
            status=check.status,
            conclusion=check.conclusion,
            started_at=check.started_at,
            completed_at=check.completed_at,
            output={
                "title": check.title,
                "summary": check.summary,
                "text": check.text,
                "annotations_count": len(check.annotations),
            },
            # GitHub falls back to the app's homepage when none was given.
            details_url=check.details_url or self.app_json_for(check.app_slug)["external_url"],
            external_id=check.external_id or "",
            check_suite_id=check.check_suite_id,
            app_slug=check.app_slug,
        )

    def job_check_run_json(
        self, repo: FakeRepo, run: FakeWorkflowRun, job: FakeJob
    ) -> dict[str, Any]:
        """The check run GitHub Actions keeps for every job (same id as the job)."""
        job_data = self.job_json(repo, run, job)
        return self._check_run_shape(
            repo,
            check_id=cast(int, job.id),
            name=job.name,
            head_sha=run.head_sha,
            status=job_data["status"],
            conclusion=job.conclusion,
            started_at=job_data["started_at"],
            completed_at=job_data["completed_at"],
            output={"title": None, "summary": None, "text": None, "annotations_count": 0},
            details_url=job_data["html_url"],
            external_id=_made_up_sha(f"job:{job.id}")[:32],
            check_suite_id=run.check_suite_id,
            app_slug=GITHUB_ACTIONS_SLUG,
        )

    # ----------------------------------------------------------------------------- webhooks

    def full_user_json(self, login: str, user_type: str | None = None) -> dict[str, Any]:
        """A user as webhook payloads carry it (`sender`, repository owner): every URL."""
        user_type = user_type or _login_type(login)
        data = self.user_json(login, user_type)
        api = data["url"]
        data.update(
            {
                "gravatar_id": "",
                "followers_url": api + "/followers",
                "following_url": api + "/following{/other_user}",
                "gists_url": api + "/gists{/gist_id}",
                "starred_url": api + "/starred{/owner}{/repo}",
                "subscriptions_url": api + "/subscriptions",
                "organizations_url": api + "/orgs",
                "repos_url": api + "/repos",
                "events_url": api + "/events{/privacy}",
                "received_events_url": api + "/received_events",
            }
        )
        return data

    def webhook_repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        """A webhook's `repository`: every key real payloads carry; `clone_url` still points
        at the fake's git server."""
        data = self.minimal_repo_json(repo)
        data.update(self.repo_json(repo))
        data["owner"] = self.full_user_json(repo.owner, repo.owner_type)
        open_issues = sum(i.state == "open" for i in repo.issues.values())
        data.update(
            {
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "pushed_at": "2024-01-01T00:00:00Z",
                "git_url": f"git://github.com/{repo.full_name}.git",
                "ssh_url": f"git@github.com:{repo.full_name}.git",
                "svn_url": f"{HTML_BASE}/{repo.full_name}",
                "homepage": None,
                "size": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "language": None,
                "has_issues": True,
                "has_projects": True,
                "has_downloads": True,
                "has_wiki": True,
                "has_pages": False,
                "forks_count": 0,
                "mirror_url": None,
                "license": None,
                "forks": 0,
                "open_issues_count": open_issues,
                "open_issues": open_issues,
                "watchers": 0,
                "is_template": False,
                "topics": [],
                "web_commit_signoff_required": False,
                "custom_properties": {},
            }
        )
        return data

    def _webhook_envelope(
        self, repo: FakeRepo, data: dict[str, Any], sender: str
    ) -> dict[str, Any]:
        data["repository"] = self.webhook_repo_json(repo)
        if repo.owner_type == "Organization":
            api = f"{self.url}/orgs/{repo.owner}"
            oid = self.user_id(repo.owner)
            data["organization"] = {
                "login": repo.owner,
                "id": oid,
                "node_id": f"O_{oid}",
                "url": api,
                "repos_url": api + "/repos",
                "events_url": api + "/events",
                "hooks_url": api + "/hooks",
                "issues_url": api + "/issues",
                "members_url": api + "/members{/member}",
                "public_members_url": api + "/public_members{/member}",
                "avatar_url": f"https://avatars.githubusercontent.com/u/{oid}?v=4",
                "description": "",
            }
        data["sender"] = self.full_user_json(sender)
        if repo.installation_id is not None:
            node = base64.b64encode(f"023:IntegrationInstallation{repo.installation_id}".encode())
            data["installation"] = {"id": repo.installation_id, "node_id": node.decode()}
        return data

    def workflow_run_payload(
        self,
        full_name: str,
        run: FakeWorkflowRun | int,
        action: str = "completed",
        *,
        sender: str | None = None,
    ) -> dict[str, Any]:
        """A `workflow_run` webhook body (deliver it with X-GitHub-Event: workflow_run)."""
        repo = self.repo(full_name)
        if isinstance(run, int):
            run = repo.workflow_runs[run]
        data = {
            "action": action,
            "workflow_run": self.workflow_run_json(repo, run),
            "workflow": self.workflow_json(repo, run),
        }
        return self._webhook_envelope(repo, data, sender or run.actor)

    def pull_request_payload(
        self,
        full_name: str,
        number: int,
        action: str = "opened",
        sender: str | None = None,
        *,
        before: str | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """A `pull_request` webhook body from the stored pull (sender: its author unless
        given).  `synchronize` needs `before` (the old head); `labeled`/`unlabeled` a
        `label`."""
        repo = self.repo(full_name)
        pull = repo.pulls[number]
        data: dict[str, Any] = {
            "action": action,
            "number": number,
            "pull_request": self.pull_json(repo, pull),
        }
        if action == "synchronize":
            if before is None:
                raise ValueError("a synchronize payload needs before=<the previous head sha>")
            data["before"] = before
            data["after"] = data["pull_request"]["head"]["sha"]
        if label is not None:
            stored = repo.find_label(label)
            if stored is None:
                raise ValueError(f"{full_name} has no label {label!r}")
            data["label"] = self.label_json(repo, stored)
        return self._webhook_envelope(repo, data, sender or pull.user_login)

    # ----------------------------------------------------------------------------- mutations

    def _create_label(
        self,
        repo: FakeRepo,
        name: str,
        color: str = "ededed",
        description: str | None = None,
    ) -> str:
        existing = repo.find_label(name)
        if existing is not None:
            return existing
        repo.labels[name] = {"name": name, "color": color, "description": description}
        repo.label_ids[name] = self.next_id()
        return name

    def _add_issue_labels(self, repo: FakeRepo, issue: FakeIssue, names: Iterable[str]) -> None:
        # Adding a label the repo lacks silently creates it (grey, no description), as GitHub does.
        for name in names:
            stored = self._create_label(repo, name)
            if stored not in issue.labels:
                issue.labels.append(stored)
        issue.updated_at = _now_iso()

    def _new_comment(
        self, issue: FakeIssue, body: str, user: str, user_type: str, *, via_app: bool
    ) -> FakeComment:
        now = _now_iso()
        comment = FakeComment(
            id=self.next_id(),
            body=body,
            user_login=user,
            user_type=user_type,
            performed_via_app=via_app,
            created_at=now,
            updated_at=now,
            issue_number=issue.number,
        )
        issue.comments.append(comment)
        issue.updated_at = now
        return comment

    def find_comment(self, repo: FakeRepo, comment_id: int) -> FakeComment:
        for issue in repo.issues.values():
            for comment in issue.comments:
                if comment.id == comment_id:
                    return comment
        raise GitHubError(404, "Not Found")

    def get_issue(self, ctx: Ctx) -> tuple[FakeRepo, FakeIssue]:
        repo = _require_repo(ctx)
        issue = repo.issues.get(ctx.int_param("issue_number"))
        if issue is None:
            raise GitHubError(404, "Not Found")
        return repo, issue

    def actor(self, ctx: Ctx) -> tuple[str, str]:
        """(login, type) of whoever the credential acts as."""
        if ctx.token is not None:
            return self.bot_login, "Bot"
        return "unknown", "User"

    def paginate(
        self,
        request: web.Request,
        items: list[Any],
        *,
        wrap: Callable[[list[Any]], Any] | None = None,
    ) -> web.Response:
        """One page of `items` with GitHub's Link header; `wrap` builds an object body for the
        few list endpoints that answer `{"total_count": ..., "<key>": [...]}`."""
        # GitHub: per_page defaults to 30 and is silently capped at 100; a page past the end is
        # an empty list, not an error; Link carries absolute URLs and only the rels that apply.
        per_page = _int_query(request, "per_page", 30)
        per_page = 30 if per_page < 1 else min(per_page, 100)
        page = max(_int_query(request, "page", 1), 1)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        response = _json(wrap(chunk) if wrap else chunk)
        links = []

        def link(n: int, rel: str) -> str:
            return f'<{self.url}{request.rel_url.update_query(page=str(n))}>; rel="{rel}"'

        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    # ----------------------------------------------------------------------------- pipeline

    def _violation(self, rec: RecordedRequest, message: str) -> None:
        self.violations.append(f"{rec.method} {rec.path}: {message}")

    def issue_manifest_code(
        self, manifest: dict[str, Any], *, owner: str = "octocat", owner_type: str = "User"
    ) -> str:
        """What GitHub does when the user confirms a manifest: a one-use code for the
        conversion (`POST /app-manifests/{code}/conversions`)."""
        code = f"mc_{secrets.token_hex(10)}"
        self.manifest_codes[code] = (manifest, owner, owner_type)
        return code

    async def _manifest_form(self, request: web.Request) -> web.StreamResponse:
        """`POST {github}/settings/apps/new` (or an organisation's): the browser posts the
        manifest form; GitHub (after the user confirms) redirects to the manifest's
        `redirect_url` with `?code=...&state=...`. A manifest without one is a 422."""
        form = await request.post()
        try:
            manifest = json.loads(str(form.get("manifest", "")))
        except ValueError:
            return web.Response(status=422, text="Invalid manifest: not JSON")
        if not isinstance(manifest, dict) or not manifest.get("redirect_url"):
            return web.Response(status=422, text="Invalid manifest: redirect_url is required")
        org = request.match_info.get("org")
        code = self.issue_manifest_code(
            manifest, owner=org or "octocat", owner_type="Organization" if org else "User"
        )
        query = {"code": code}
        if form.get("state"):
            query["state"] = str(form["state"])
        target = yarl.URL(str(manifest["redirect_url"])).update_query(query)
        raise web.HTTPFound(str(target))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        auth_kind, credential = _parse_auth(request.headers.get("Authorization"))
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            operation_id=None,
            json=None,
            auth_kind=auth_kind,
            token=credential,
        )
        self.requests.append(rec)
        try:
            response = await self._handle(request, raw_path, rec, auth_kind, credential)
        except GitHubError as exc:
            response = _json(_error_body(exc.status, exc.message, exc.errors), exc.status)
            response.headers.update(exc.headers)
        rec.status = response.status
        loss = request.get(_LOSS_KEY)
        if loss is not None:
            response = await self._lose(request, rec, loss, response)
        self._rate_limit_headers(response, credential)
        return response

    async def _lose(
        self,
        request: web.Request,
        rec: RecordedRequest,
        fault: Fault,
        response: web.StreamResponse,
    ) -> web.StreamResponse:
        """The handler has run; make its answer never reach the client."""
        rec.lost = fault.lose
        if fault.meanwhile is not None:
            fault.meanwhile(self)
        if fault.lose == "502":
            return _json(_error_body(502, _default_fault_message(502)), 502)
        if fault.lose == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay)
            return response
        # "drop": close the connection with the response unsent.  aiohttp's attempt to write
        # it then fails quietly (a ConnectionError on a closing transport), and the client,
        # waiting for a status line, sees the server disconnect.
        if request.transport is not None:
            request.transport.close()
        return response

    async def _handle(
        self,
        request: web.Request,
        raw_path: str,
        rec: RecordedRequest,
        auth_kind: AuthKind | None,
        credential: str | None,
    ) -> web.StreamResponse:
        raw_body = await request.read()
        unparseable = False
        if raw_body:
            try:
                rec.json = json.loads(raw_body)
            except ValueError:
                unparseable = True
                rec.json = raw_body.decode("utf-8", "replace")

        matched = self.operations.match(request.method, raw_path)
        if matched is None:
            self._violation(rec, "no such operation in GitHub's REST API description")
            raise GitHubError(404, "Not Found")
        op, params = matched
        rec.operation_id = op.operation_id
        self._check_query(op, rec)
        spec = self.handlers.get(op.operation_id)

        token, repo = self._authorize(op, params, auth_kind, credential, spec)

        if unparseable:
            self._violation(rec, "request body is not JSON")
            raise GitHubError(400, "Problems parsing JSON")
        self._validate_body(op, rec, has_body=bool(raw_body))

        fault = self._take_fault(request.method, raw_path)
        if fault is not None and fault.lose is not None:
            request[_LOSS_KEY] = fault  # the handler runs; `_dispatch` loses its answer
        elif fault is not None:
            body = fault.body
            if body is None:
                body = _error_body(fault.status, _default_fault_message(fault.status))
            answer = _json(body, fault.status)
            answer.headers.update(fault.headers)
            return answer

        if spec is None:
            self._violation(rec, f"{op.operation_id} is valid but not implemented by FakeGitHub")
            raise GitHubError(501, f"FakeGitHub does not implement {op.operation_id}")
        ctx = Ctx(
            request=request,
            op=op,
            params=params,
            body=rec.json,
            auth_kind=auth_kind,
            token=token,
            repo=repo,
            rec=rec,
        )
        try:
            response = await spec.fn(self, ctx)
        except GitHubError:
            raise
        except Exception as exc:
            # A crash in the fake must fail the test loudly, not look like a GitHub outage.
            self._violation(rec, f"FakeGitHub handler crashed: {exc!r}")
            raise GitHubError(500, "FakeGitHub handler crashed") from exc
        if 200 <= response.status < 300 and op.success and response.status not in op.success:
            # A bug in the fake itself: it answered with a status GitHub never uses here.
            self._violation(rec, f"fake answered {response.status}, spec allows {op.success}")
        return response

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        """The blob storage host: serves what a signed URL grants, to anyone holding it."""
        rec = RecordedBlobRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        self.blob_requests.append(rec)
        if hdrs.AUTHORIZATION in request.headers:
            # The GitHub token must never leave for another host; the signed URL is the only
            # credential here.  Answer anyway, so the test fails on the leak, not a 4xx.
            self.violations.append(
                f"{request.method} {self.blob_url}{request.path}: Authorization header sent to "
                "the blob storage host (the token leaked to another origin)"
            )
        response = self._blob_response(request)
        rec.status = response.status
        return response

    def _blob_response(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return _blob_error(405, "UnsupportedHttpVerb", "The resource doesn't support the verb.")
        grant = self.blob_grants.get(request.query.get("sig", ""))
        if grant is None or grant.path != request.path:
            return _blob_error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization "
                "header is formed correctly including the signature.",
            )
        if grant.expires_at <= datetime.now(UTC):
            return _blob_error(
                403, "AuthenticationFailed", "Signature not valid in the specified time frame"
            )
        return web.Response(body=grant.data(), headers={"Content-Type": grant.content_type})

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        """GraphQL is not modelled; this only records attempts at what the bot must never do
        (mark ready, merge, approve, auto-merge), then fails the call as a violation."""
        auth_kind, credential = _parse_auth(request.headers.get("Authorization"))
        raw = await request.read()
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            operation_id="graphql",
            json=None,
            auth_kind=auth_kind,
            token=credential,
        )
        self.requests.append(rec)
        text = raw.decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            rec.json = json.loads(raw)
        for mutation in _FORBIDDEN_MUTATIONS:
            if re.search(rf"\b{mutation}\b", text):
                self.forbidden_actions.append(f"graphql {mutation}")
        if re.search(r"\b(addPullRequestReview|submitPullRequestReview)\b", text) and (
            "APPROVE" in text
        ):
            self.forbidden_actions.append("graphql approve")
        self._violation(rec, "GraphQL is not modelled by FakeGitHub")
        token = self.tokens.get(credential or "")
        if token is None or token.expires_at <= datetime.now(UTC):
            rec.status = 401
            return _json(_error_body(401, "Bad credentials"), 401)
        rec.status = 200
        # GraphQL reports failures in a 200 body, not with an HTTP status.
        return _json({"data": None, "errors": [{"message": "FakeGitHub does not serve GraphQL"}]})

    def _check_query(self, op: Operation, rec: RecordedRequest) -> None:
        # GitHub silently ignores unknown or invalid query parameters, which is exactly how a
        # typo (`perpage`, `state=opened`) goes unnoticed; record it instead of failing the call.
        for name, value in rec.query.items():
            if name not in op.query_params:
                self._violation(rec, f"{op.operation_id}: unknown query parameter {name!r}")
                continue
            allowed = op.query_params[name]
            if allowed is not None and value not in allowed:
                self._violation(rec, f"{op.operation_id}: {name}={value!r} not in {allowed}")

    def _validate_body(self, op: Operation, rec: RecordedRequest, *, has_body: bool) -> None:
        validator = self.operations.validator(op)
        if validator is None:
            return
        if not has_body:
            if op.body_required:
                self._violation(rec, f"{op.operation_id}: required request body missing")
                raise GitHubError(422, "Invalid request.\n\nNo request body was supplied.")
            return
        error = jsonschema.exceptions.best_match(validator.iter_errors(rec.json))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            message = error.message
            if error.validator == "maxLength" and isinstance(error.instance, str):
                # GitHub's wording, and not the whole over-long value echoed back.
                message = (
                    f"Only {error.validator_value} characters are allowed; "
                    f"{len(error.instance)} were supplied"
                )
                self._violation(rec, f"{op.operation_id}: body invalid at {where}: {message}")
                raise GitHubError(422, f"Invalid request.\n\n{message}.")
            self._violation(rec, f"{op.operation_id}: body invalid at {where}: {message}")
            raise GitHubError(422, f"Invalid request.\n\nFor '{where}', {message}.")

    def _take_fault(self, method: str, raw_path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method not in (None, method.upper()):
                continue
            if not fault.path_regex.search(raw_path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            return fault
        return None

    def _rate_limit_headers(self, response: web.StreamResponse, credential: str | None) -> None:
        used = self._rate_used.get(credential, 0) + 1
        self._rate_used[credential] = used
        limit = 5000 if credential else 60
        # Don't clobber a fault that injects its own rate-limit exhaustion headers.
        defaults = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": "2022-11-28",
        }
        for name, value in defaults.items():
            response.headers.setdefault(name, value)

    # ----------------------------------------------------------------------------- auth

    def _authorize(
        self,
        op: Operation,
        params: dict[str, str],
        auth_kind: AuthKind | None,
        credential: str | None,
        spec: HandlerSpec | None,
    ) -> tuple[InstallationToken | None, FakeRepo | None]:
        repo: FakeRepo | None = None
        if op.operation_id in _UNAUTHENTICATED_OPERATIONS:
            return None, None
        is_jwt_op = (
            op.path == "/app" or op.path.startswith("/app/") or op.operation_id in _JWT_OPERATIONS
        )
        if is_jwt_op:
            # GitHub answers a token on an App endpoint with the same "could not be decoded".
            if auth_kind != "jwt" or credential is None:
                raise GitHubError(401, "A JSON web token could not be decoded")
            self._check_jwt(credential)
            if "owner" in params and "repo" in params:
                repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
                if repo is None or repo.installation_id is None:
                    raise GitHubError(404, "Not Found")
            return None, repo

        if credential is None:
            raise GitHubError(401, "Requires authentication")
        if auth_kind == "jwt":
            raise GitHubError(401, "Bad credentials")
        token = self.tokens.get(credential)
        if token is None or token.expires_at <= datetime.now(UTC):
            raise GitHubError(401, "Bad credentials")

        if "owner" in params and "repo" in params:
            full = f"{params['owner']}/{params['repo']}".lower()
            repo = self.repos.get(full)
            if repo is None:
                raise GitHubError(404, "Not Found")
            in_installation = repo.installation_id == token.installation_id
            in_scope = token.repositories is None or full in token.repositories
            if not (in_installation and in_scope):
                raise GitHubError(403, "Resource not accessible by integration")

        if spec is not None and spec.permission is not None:
            needed = "read" if op.method in ("GET", "HEAD") else "write"
            # Every installation can read metadata, whatever else it was granted.
            floor = "read" if spec.permission == "metadata" else "none"
            have = token.permissions.get(spec.permission, floor)
            if PERMISSION_LEVELS.get(have, 0) < PERMISSION_LEVELS[needed]:
                raise GitHubError(403, "Resource not accessible by integration")
        return token, repo

    def _check_jwt(self, credential: str) -> None:
        try:
            claims = jwt.decode(
                credential,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise GitHubError(401, "A JSON web token could not be decoded") from exc
        now = time.time()
        iat, exp, iss = claims.get("iat"), claims.get("exp"), claims.get("iss")
        if not isinstance(iat, int | float) or iat > now:
            raise GitHubError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued",
            )
        if not isinstance(exp, int | float) or exp <= now:
            raise GitHubError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires",
            )
        if exp - iat > 600:
            raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(iss) != str(self.app_id):
            raise GitHubError(401, "'Issuer' claim ('iss') must be an Integer")

    def token_allows(self, token: str, full_name: str, write: bool) -> bool:
        """Whether `token` may read (or push to) the repo's contents; the shape of
        `githttp.CheckToken`, so git smart HTTP shares the REST auth rules."""
        tok = self.tokens.get(token)
        repo = self.repos.get(full_name.lower())
        if tok is None or repo is None or tok.expires_at <= datetime.now(UTC):
            return False
        if repo.installation_id != tok.installation_id:
            return False
        if tok.repositories is not None and full_name.lower() not in tok.repositories:
            return False
        have = PERMISSION_LEVELS.get(tok.permissions.get("contents", "none"), 0)
        return have >= PERMISSION_LEVELS["write" if write else "read"]

    def mint_token(
        self,
        installation_id: int,
        *,
        repositories: Iterable[str] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> InstallationToken:
        """Mint a token directly (what the access_tokens endpoint does), for test setup."""
        inst = self.installations.get(installation_id)
        if inst is None:
            raise GitHubError(404, "Not Found")
        scope: frozenset[str] | None = None
        if repositories is not None:
            owned = {
                r.name.lower(): r.full_name.lower()
                for r in self.repos.values()
                if r.installation_id == installation_id
            }
            wanted = [n.lower() for n in repositories]
            if any(n not in owned for n in wanted):
                raise GitHubError(
                    422,
                    "There is at least one repository that does not exist or is not accessible "
                    "to the parent installation.",
                )
            scope = frozenset(owned[n] for n in wanted)
        granted = dict(inst.permissions)
        if permissions is not None:
            for name, level in permissions.items():
                have = PERMISSION_LEVELS.get(inst.permissions.get(name, "none"), 0)
                if PERMISSION_LEVELS.get(level, 99) > have:
                    raise GitHubError(
                        422, "The permissions requested are not granted to this installation."
                    )
            granted = dict(permissions)
        alphabet = string.ascii_letters + string.digits
        value = "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))
        token = InstallationToken(
            token=value,
            installation_id=installation_id,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            permissions=granted,
            repositories=scope,
        )
        self.tokens[value] = token
        return token


async def _serve_on_loopback(runner: web.AppRunner) -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    return f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def _login_type(login: str) -> str:
    return "Bot" if login.endswith("[bot]") else "User"


def _parse_auth(header: str | None) -> tuple[AuthKind | None, str | None]:
    if not header:
        return None, None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() not in ("token", "bearer") or not credential:
        return None, None
    # GitHub accepts installation tokens under both schemes; only a JWT has three dot parts.
    if scheme.lower() == "bearer" and credential.count(".") == 2:
        return "jwt", credential
    return "token", credential


def _int_query(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        return default


def _blob_error(status: int, code: str, message: str) -> web.Response:
    # Blob storage speaks XML, not GitHub's JSON error shape.
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _default_fault_message(status: int) -> str:
    if status == 429 or status == 403:
        return (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again."
        )
    if status >= 500:
        return "Server Error"
    return "Injected failure"


def _require_repo(ctx: Ctx) -> FakeRepo:
    if ctx.repo is None:
        raise GitHubError(404, "Not Found")
    return ctx.repo


def _label_names(items: list[Any]) -> list[str]:
    return [item if isinstance(item, str) else str(item["name"]) for item in items]


def _check_body_length(text: str | None, resource: str) -> None:
    if text is not None and len(text) > MAX_BODY_CHARS:
        raise GitHubError(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": resource,
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {MAX_BODY_CHARS} characters)",
                }
            ],
        )


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _github_base64(data: bytes) -> str:
    # GitHub wraps base64 file content at 60 characters, with a trailing newline.
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


# --------------------------------------------------------------------------------------------
# Handlers: operationId -> coroutine.  Add new ones with @operation(...).
# --------------------------------------------------------------------------------------------


@operation("apps/get-authenticated", None)
async def _get_app(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    return _json(fake.app_json())


@operation("apps/create-from-manifest", None)
async def _create_from_manifest(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    """The conversion: the new App's id, key and secrets, once per code. The App is this fake's
    own (same id and key), so what `loopwright setup` writes works against the fake after."""
    entry = fake.manifest_codes.pop(ctx.params["code"], None)
    if entry is None:
        raise GitHubError(404, "Not Found")
    manifest, owner, owner_type = entry
    slug = re.sub(r"[^a-z0-9]+", "-", str(manifest.get("name", fake.app_slug)).lower()).strip("-")
    fake.app_slug = slug or fake.app_slug
    data = fake.app_json()
    data.update(
        {
            "name": manifest.get("name", fake.app_name),
            "description": manifest.get("description", ""),
            "external_url": manifest.get("url", ""),
            "owner": fake.user_json(owner, owner_type),
            "permissions": dict(manifest.get("default_permissions") or {}),
            "events": list(manifest.get("default_events") or []),
            "client_id": f"Iv1.{secrets.token_hex(8)}",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": fake.private_key_pem,
        }
    )
    fake.created_apps.append(data)
    return _json(data, 201)


@operation("apps/list-installations", None)
async def _list_installations(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    items = [fake.installation_json(i) for i in fake.installations.values()]
    return fake.paginate(ctx.request, items)


@operation("apps/get-installation", None)
async def _get_installation(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    inst = fake.installations.get(ctx.int_param("installation_id"))
    if inst is None:
        raise GitHubError(404, "Not Found")
    return _json(fake.installation_json(inst))


@operation("apps/get-repo-installation", None)
async def _get_repo_installation(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    inst = fake.installations[cast(int, repo.installation_id)]
    return _json(fake.installation_json(inst))


@operation("apps/create-installation-access-token", None)
async def _create_access_token(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    repositories: list[str] | None = body.get("repositories")
    if body.get("repository_ids") is not None:
        by_id = {r.id: r.name for r in fake.repos.values()}
        ids = body["repository_ids"]
        if any(i not in by_id for i in ids):
            raise GitHubError(
                422,
                "There is at least one repository that does not exist or is not accessible to "
                "the parent installation.",
            )
        repositories = [*(repositories or []), *(by_id[i] for i in ids)]
    token = fake.mint_token(
        ctx.int_param("installation_id"),
        repositories=repositories,
        permissions=body.get("permissions"),
    )
    data: dict[str, Any] = {
        "token": token.token,
        "expires_at": _iso(token.expires_at),
        "permissions": token.permissions,
        "repository_selection": "all" if token.repositories is None else "selected",
    }
    if token.repositories is not None:
        data["repositories"] = [fake.repo_json(fake.repos[n]) for n in sorted(token.repositories)]
    return _json(data, 201)


@operation("apps/list-repos-accessible-to-installation", None)
async def _installation_repos(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    token = cast(InstallationToken, ctx.token)
    repos = [
        r
        for key, r in sorted(fake.repos.items())
        if r.installation_id == token.installation_id
        and (token.repositories is None or key in token.repositories)
    ]
    # Unlike most lists this one is wrapped in an object (getiter needs
    # iterable_key="repositories").
    return fake.paginate(
        ctx.request,
        [fake.repo_json(r) for r in repos],
        wrap=lambda page: {
            "total_count": len(repos),
            "repository_selection": "all" if token.repositories is None else "selected",
            "repositories": page,
        },
    )


@operation("repos/get", "metadata")
async def _get_repo(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    data = fake.repo_json(repo)
    if ctx.token is not None:
        data["permissions"] = {"admin": False, "maintain": False, "push": True, "pull": True}
    return _json(data)


@operation("repos/get-content", "contents")
async def _get_content(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    ref = ctx.request.query.get("ref")
    path = ctx.params["path"].strip("/")
    if repo.git_dir is not None:
        return _git_content(fake, repo, ref, path)
    # Only the default branch is modelled; GitHub's answer for an unknown ref is this 404.
    if ref is not None and ref not in (repo.default_branch, f"refs/heads/{repo.default_branch}"):
        raise GitHubError(404, f"No commit found for the ref {ref}")

    def entry(p: str, kind: str, data: bytes | None) -> dict[str, Any]:
        sha = _git_blob_sha(data) if data is not None else hashlib.sha1(p.encode()).hexdigest()
        size = len(data) if data is not None else 0
        return _content_entry(fake, repo, p, kind, sha, size, repo.default_branch)

    if path in repo.files:
        raw = repo.files[path]
        data = raw.encode() if isinstance(raw, str) else raw
        content = {"encoding": "base64", "content": _github_base64(data)}
        return _json({**entry(path, "file", data), **content})
    prefix = f"{path}/" if path else ""
    children: dict[str, dict[str, Any]] = {}
    for file_path, raw in sorted(repo.files.items()):
        if not file_path.startswith(prefix):
            continue
        head, sep, _ = file_path[len(prefix) :].partition("/")
        child = prefix + head
        if sep:
            children.setdefault(child, entry(child, "dir", None))
        else:
            children[child] = entry(child, "file", raw.encode() if isinstance(raw, str) else raw)
    if not children:
        raise GitHubError(404, "Not Found")
    return _json(list(children.values()))


def _content_entry(
    fake: FakeGitHub, repo: FakeRepo, path: str, kind: str, sha: str, size: int, ref: str
) -> dict[str, Any]:
    api = f"{fake.url}/repos/{repo.full_name}"
    view = "blob" if kind == "file" else "tree"
    return {
        "type": kind,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "size": size,
        "url": f"{api}/contents/{path}?ref={ref}",
        "html_url": f"{HTML_BASE}/{repo.full_name}/{view}/{ref}/{path}",
        "git_url": f"{api}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}",
        "download_url": (
            f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}"
            if kind == "file"
            else None
        ),
    }


def _git_content(fake: FakeGitHub, repo: FakeRepo, ref: str | None, path: str) -> web.Response:
    git_dir = cast(Path, repo.git_dir)
    shown_ref = ref or repo.default_branch
    commit = fake._ref_for_contents(repo, shown_ref)
    if commit is None:
        # Two different 404s on GitHub: no ref given on an empty repo, or an unknown ref.
        if ref is None:
            raise GitHubError(404, "This repository is empty.")
        raise GitHubError(404, f"No commit found for the ref {ref}")
    spec = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
    kind = _git_run(git_dir, "cat-file", "-t", spec, check=False)
    if kind.returncode != 0:
        raise GitHubError(404, "Not Found")
    if kind.stdout.decode().strip() == "blob":
        data = _git_run(git_dir, "cat-file", "blob", spec).stdout
        sha = _git(git_dir, "rev-parse", spec)
        content = {"encoding": "base64", "content": _github_base64(data)}
        return _json(
            {**_content_entry(fake, repo, path, "file", sha, len(data), shown_ref), **content}
        )
    listing = []
    for record in _git_run(git_dir, "ls-tree", "-z", "-l", spec).stdout.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.decode().partition("\t")
        mode, obj_type, sha, size = meta.split()
        # GitHub's names for git's object kinds in a directory listing.
        kind_name = {"blob": "file", "tree": "dir", "commit": "submodule"}[obj_type]
        if mode == "120000":
            kind_name = "symlink"
        child = f"{path}/{name}" if path else name
        size_int = int(size) if size.isdigit() else 0
        listing.append(_content_entry(fake, repo, child, kind_name, sha, size_int, shown_ref))
    return _json(listing)


@operation("repos/get-collaborator-permission-level", "metadata")
async def _get_permission(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    username = ctx.params["username"]
    role = next((r for u, r in repo.collaborators.items() if u.lower() == username.lower()), None)
    # Modelled as GitHub does for a user that does not exist: 404.  (Real GitHub answers an
    # existing non-collaborator of a public repo with "read"; seed them as "read" if needed.)
    if role is None:
        raise GitHubError(404, "Not Found")
    # The legacy `permission` field folds maintain into write and triage into read.
    legacy = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read"}
    permission = legacy.get(role, "read" if role == "read" else "none")
    user = fake.user_json(username)
    user["permissions"] = {
        "admin": role == "admin",
        "maintain": role in ("admin", "maintain"),
        "push": permission in ("admin", "write"),
        "triage": permission != "none",
        "pull": permission != "none",
    }
    user["role_name"] = role
    return _json({"permission": permission, "role_name": role, "user": user})


@operation("issues/get", "issues")
async def _get_issue(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    return _json(fake.issue_json(repo, issue))


@operation("issues/create", "issues")
async def _create_issue(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    _check_body_length(ctx.body.get("body"), "Issue")
    login, user_type = fake.actor(ctx)
    issue = FakeIssue(
        id=fake.next_id(),
        number=repo.next_issue_number(),
        title=str(ctx.body["title"]),
        body=ctx.body.get("body"),
        user_login=login,
        user_type=user_type,
        assignees=list(ctx.body.get("assignees", [])),
        performed_via_app=ctx.via_app,
    )
    repo.issues[issue.number] = issue
    fake._add_issue_labels(repo, issue, _label_names(ctx.body.get("labels", [])))
    return _json(fake.issue_json(repo, issue), 201)


@operation("issues/update", "issues")
async def _update_issue(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    body: dict[str, Any] = ctx.body or {}
    if "title" in body and body["title"] is not None:
        issue.title = str(body["title"])
    if "body" in body:
        _check_body_length(body["body"], "Issue")
        issue.body = body["body"]
    if body.get("state") in ("open", "closed") and body["state"] != issue.state:
        issue.state = body["state"]
        issue.closed_at = _now_iso() if issue.state == "closed" else None
        issue.state_reason = body.get("state_reason") or (
            "completed" if issue.state == "closed" else "reopened"
        )
    if "labels" in body and body["labels"] is not None:
        issue.labels = []
        fake._add_issue_labels(repo, issue, _label_names(body["labels"]))
    if "assignees" in body and body["assignees"] is not None:
        issue.assignees = list(body["assignees"])
    issue.updated_at = _now_iso()
    return _json(fake.issue_json(repo, issue))


@operation("issues/list-labels-for-repo", "issues")
async def _list_repo_labels(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    names = sorted(repo.labels, key=str.casefold)
    return fake.paginate(ctx.request, [fake.label_json(repo, n) for n in names])


@operation("issues/get-label", "issues")
async def _get_label(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    name = repo.find_label(ctx.params["name"])
    if name is None:
        raise GitHubError(404, "Not Found")
    return _json(fake.label_json(repo, name))


@operation("issues/create-label", "issues")
async def _create_label(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    name = ctx.body["name"]
    if repo.find_label(name) is not None:
        raise GitHubError(
            422,
            "Validation Failed",
            errors=[{"resource": "Label", "code": "already_exists", "field": "name"}],
        )
    # GitHub stores colors without '#', and accepts either spelling on input.
    color = str(ctx.body.get("color", "ededed")).removeprefix("#").lower()
    fake._create_label(repo, name, color, ctx.body.get("description"))
    return _json(fake.label_json(repo, name), 201)


@operation("issues/list-labels-on-issue", "issues")
async def _list_issue_labels(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    return fake.paginate(ctx.request, [fake.label_json(repo, n) for n in issue.labels])


@operation("issues/add-labels", "issues")
async def _add_labels(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    fake._add_issue_labels(repo, issue, _label_names(body.get("labels", [])))
    return _json([fake.label_json(repo, n) for n in issue.labels])


@operation("issues/set-labels", "issues")
async def _set_labels(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    issue.labels = []
    fake._add_issue_labels(repo, issue, _label_names(body.get("labels", [])))
    return _json([fake.label_json(repo, n) for n in issue.labels])


@operation("issues/remove-label", "issues")
async def _remove_label(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    wanted = ctx.params["name"].casefold()
    stored = next((n for n in issue.labels if n.casefold() == wanted), None)
    if stored is None:
        raise GitHubError(404, "Label does not exist")
    issue.labels.remove(stored)
    issue.updated_at = _now_iso()
    return _json([fake.label_json(repo, n) for n in issue.labels])


@operation("issues/remove-all-labels", "issues")
async def _remove_all_labels(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    _, issue = fake.get_issue(ctx)
    issue.labels = []
    issue.updated_at = _now_iso()
    return web.Response(status=204)


@operation("issues/list-comments", "issues")
async def _list_comments(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    comments = issue.comments
    since = ctx.request.query.get("since")
    if since:
        try:
            cutoff = datetime.fromisoformat(since)
        except ValueError as exc:
            raise GitHubError(422, f"Invalid value for `since`: {since}") from exc
        comments = [c for c in comments if datetime.fromisoformat(c.updated_at) >= cutoff]
    return fake.paginate(ctx.request, [fake.comment_json(repo, c) for c in comments])


@operation("issues/create-comment", "issues")
async def _create_comment(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, issue = fake.get_issue(ctx)
    _check_body_length(ctx.body["body"], "IssueComment")
    login, user_type = fake.actor(ctx)
    comment = fake._new_comment(issue, ctx.body["body"], login, user_type, via_app=ctx.via_app)
    response = _json(fake.comment_json(repo, comment), 201)
    response.headers["Location"] = fake.comment_json(repo, comment)["url"]
    return response


@operation("issues/get-comment", "issues")
async def _get_comment(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    return _json(fake.comment_json(repo, fake.find_comment(repo, ctx.int_param("comment_id"))))


@operation("issues/update-comment", "issues")
async def _update_comment(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    comment = fake.find_comment(repo, ctx.int_param("comment_id"))
    _check_body_length(ctx.body["body"], "IssueComment")
    comment.body = ctx.body["body"]
    comment.updated_at = _now_iso()
    return _json(fake.comment_json(repo, comment))


def _react(
    fake: FakeGitHub,
    ctx: Ctx,
    reactions: list[tuple[str, str]],
    meta: dict[tuple[str, str], tuple[int, str]],
) -> web.StreamResponse:
    login, _ = fake.actor(ctx)
    key = (login, str(ctx.body["content"]))
    if key in meta:
        # Idempotent on GitHub: the same user + content returns the existing reaction with 200.
        rid, created = meta[key]
        return _json(fake.reaction_json(rid, *key, created), 200)
    rid, created = fake.next_id(), _now_iso()
    meta[key] = (rid, created)
    reactions.append(key)
    return _json(fake.reaction_json(rid, *key, created), 201)


@operation("reactions/create-for-issue", "issues")
async def _react_issue(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    _, issue = fake.get_issue(ctx)
    return _react(fake, ctx, issue.reactions, issue.reaction_meta)


@operation("reactions/create-for-issue-comment", "issues")
async def _react_comment(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    comment = fake.find_comment(repo, ctx.int_param("comment_id"))
    return _react(fake, ctx, comment.reactions, comment.reaction_meta)


# --------------------------------------------------------------------------------------------
# Pull requests
# --------------------------------------------------------------------------------------------


def _require_pull(ctx: Ctx) -> tuple[FakeRepo, FakePull]:
    repo = _require_repo(ctx)
    pull = repo.pulls.get(ctx.int_param("pull_number"))
    if pull is None:
        # An issue number is "Not Found" here too: pulls/* only know pull requests.
        raise GitHubError(404, "Not Found")
    return repo, pull


def _pull_field_error(field_name: str) -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"resource": "PullRequest", "field": field_name, "code": "invalid"}],
    )


def _pull_custom_error(message: str) -> GitHubError:
    # No `field` key: gidgethub turns this into ValidationError("Validation Failed: '<msg>'").
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"resource": "PullRequest", "code": "custom", "message": message}],
    )


@operation("pulls/create", "pull_requests")
async def _create_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    body: dict[str, Any] = ctx.body
    if body.get("issue") is not None:
        raise GitHubError(501, "FakeGitHub does not model turning an issue into a pull request")
    if not body.get("title"):
        raise GitHubError(
            422,
            "Validation Failed",
            errors=[{"resource": "PullRequest", "code": "missing_field", "field": "title"}],
        )
    _check_body_length(body.get("body"), "PullRequest")
    login, user_type = fake.actor(ctx)
    pull = fake._open_pull(
        repo,
        head=str(body["head"]),
        base=str(body["base"]),
        title=str(body["title"]),
        body=body.get("body"),
        draft=bool(body.get("draft", False)),
        user=login,
        user_type=user_type,
        via_app=ctx.via_app,
        maintainer_can_modify=bool(body.get("maintainer_can_modify", False)),
    )
    data = fake.pull_json(repo, pull)
    response = _json(data, 201)
    response.headers["Location"] = data["url"]
    return response


@operation("pulls/list", "pull_requests")
async def _list_pulls(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    query = ctx.request.query
    state = query.get("state", "open")
    pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
    head = query.get("head")
    if head:
        owner, sep, branch = head.partition(":")
        if not sep:
            # GitHub silently ignores a head filter without the "owner:" prefix and returns
            # every PR: a classic way to "find" someone else's PR and edit it.  Behave the
            # same, but flag it.
            if ctx.rec is not None:
                fake._violation(ctx.rec, f"pulls/list: head={head!r} lacks 'owner:' and is ignored")
        else:
            pulls = [
                p for p in pulls if owner.casefold() == repo.owner.casefold() and p.head == branch
            ]
    base = query.get("base")
    if base:
        pulls = [p for p in pulls if p.base == base]
    sort = query.get("sort", "created")
    if sort == "updated":
        pulls.sort(key=lambda p: (p.issue.updated_at, p.number))
    elif sort == "popularity":
        pulls.sort(key=lambda p: (len(p.issue.comments), p.number))
    else:  # created, long-running (approximated by age)
        pulls.sort(key=lambda p: p.number)
    # Default direction is desc for created (or no sort), asc for anything else.
    default_direction = "desc" if sort == "created" else "asc"
    if query.get("direction", default_direction) == "desc":
        pulls.reverse()
    return fake.paginate(ctx.request, [fake.pull_json(repo, p, full=False) for p in pulls])


@operation("pulls/get", "pull_requests")
async def _get_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    return _json(fake.pull_json(repo, pull))


@operation("pulls/update", "pull_requests")
async def _update_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    body: dict[str, Any] = ctx.body or {}
    if body.get("draft") is False and pull.draft:
        # REST has no way to mark a draft ready: GitHub accepts the key and silently ignores
        # it.  Any attempt is still a forbidden action for the bot.
        fake.forbidden_actions.append(f"ready {repo.full_name}#{pull.number} (pulls/update)")
    if "base" in body:
        base = str(body["base"])
        if fake.branch_sha(repo.full_name, base) is None:
            raise _pull_field_error("base")
        pull.base = base
    if body.get("state") == "open" and pull.state == "closed":
        if pull.merged:
            # A merged PR cannot be reopened on GitHub; the wording here is approximate.
            raise _pull_custom_error("state cannot be changed. The pull request has been merged.")
        for other in repo.pulls.values():
            if other.state == "open" and (other.head, other.base) == (pull.head, pull.base):
                raise _pull_custom_error(
                    f"A pull request already exists for {repo.owner}:{pull.head}."
                )
    if "title" in body and body["title"] is not None:
        pull.issue.title = str(body["title"])
    if "body" in body:
        _check_body_length(body["body"], "PullRequest")
        pull.issue.body = body["body"]
    if body.get("state") in ("open", "closed") and body["state"] != pull.state:
        pull.issue.state = body["state"]
        pull.issue.closed_at = _now_iso() if body["state"] == "closed" else None
    if "maintainer_can_modify" in body:
        pull.maintainer_can_modify = bool(body["maintainer_can_modify"])
    pull.issue.updated_at = _now_iso()
    return _json(fake.pull_json(repo, pull))


@operation("pulls/merge", "contents")
async def _merge_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    # Merging needs contents:write on GitHub, not pull_requests.
    repo, pull = _require_pull(ctx)
    fake.forbidden_actions.append(f"merge {repo.full_name}#{pull.number}")
    body: dict[str, Any] = ctx.body or {}
    if pull.merged or pull.state != "open":
        raise GitHubError(405, "Pull Request is not mergeable")
    if pull.draft:
        raise GitHubError(405, "Pull Request is still a draft")
    current = fake.branch_sha(repo.full_name, pull.head) or pull.head_sha
    if body.get("sha") is not None and body["sha"] != current:
        raise GitHubError(409, "Head branch was modified. Review and try the merge again.")
    pull.head_sha = current
    method = str(body.get("merge_method", "merge"))
    title = body.get("commit_title") or (
        f"Merge pull request #{pull.number} from {repo.owner}/{pull.head}"
        if method == "merge"
        else f"{pull.title} (#{pull.number})"
    )
    message = f"{title}\n\n{body['commit_message']}" if body.get("commit_message") else title
    if repo.git_dir is not None:
        sha = fake._merge_in_git(repo, pull, method, message)
    else:
        sha = _made_up_sha(f"{repo.full_name}#{pull.number}:merge")
        repo.branches[pull.base] = sha
    now = _now_iso()
    login, _ = fake.actor(ctx)
    pull.merged, pull.merged_at, pull.merged_by, pull.merge_commit_sha = True, now, login, sha
    pull.issue.state, pull.issue.closed_at, pull.issue.updated_at = "closed", now, now
    return _json({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


@operation("pulls/create-review", "pull_requests")
async def _create_review(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    body: dict[str, Any] = ctx.body or {}
    event = body.get("event")
    login, user_type = fake.actor(ctx)
    if event == "APPROVE":
        fake.forbidden_actions.append(f"approve {repo.full_name}#{pull.number}")
    if event in ("APPROVE", "REQUEST_CHANGES") and login == pull.user_login:
        # GitHub's wording; `errors` is a list of strings here, unlike the usual objects.
        verb = "approve" if event == "APPROVE" else "request changes on"
        raise GitHubError(
            422, "Unprocessable Entity", errors=[f"Can not {verb} your own pull request"]
        )
    if event in ("REQUEST_CHANGES", "COMMENT") and not body.get("body"):
        # The schema marks body "required" for these two; the wording here is approximate.
        raise GitHubError(
            422,
            "Unprocessable Entity",
            errors=[f"Body is required when the event is {event}"],
        )
    states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
    review = FakeReview(
        id=fake.next_id(),
        user_login=login,
        user_type=user_type,
        # No event = a PENDING review, visible only to its author until submitted.
        state=states.get(str(event), "PENDING"),
        body=str(body.get("body", "")),
        commit_id=str(body.get("commit_id") or pull.head_sha),
        submitted_at=_now_iso() if event else None,
    )
    pull.reviews.append(review)
    return _json(fake.review_json(repo, pull, review))


# --------------------------------------------------------------------------------------------
# Listing issues; the pull requests of a commit
# --------------------------------------------------------------------------------------------


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise GitHubError(422, f"Invalid value for `{name}`: {value}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@operation("issues/list-for-repo", "issues")
async def _list_repo_issues(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    # Pull requests are issues too, and appear here with a `pull_request` key, as on GitHub.
    repo = _require_repo(ctx)
    query = ctx.request.query
    state = query.get("state", "open")
    issues = [i for i in repo.issues.values() if state == "all" or i.state == state]
    wanted = {n.strip().casefold() for n in query.get("labels", "").split(",") if n.strip()}
    if wanted:
        # Every listed label must be on the issue.
        issues = [i for i in issues if wanted <= {n.casefold() for n in i.labels}]
    creator = query.get("creator")
    if creator:
        issues = [i for i in issues if i.user_login.casefold() == creator.casefold()]
    assignee = query.get("assignee")
    if assignee == "none":
        issues = [i for i in issues if not i.assignees]
    elif assignee == "*":
        issues = [i for i in issues if i.assignees]
    elif assignee:
        issues = [i for i in issues if assignee.casefold() in {a.casefold() for a in i.assignees}]
    mentioned = query.get("mentioned")
    if mentioned:
        pattern = re.compile(rf"@{re.escape(mentioned)}\b", re.IGNORECASE)
        issues = [i for i in issues if pattern.search(i.body or "")]
    milestone = query.get("milestone")
    if milestone not in (None, "none"):
        # Milestones are not modelled: no issue has one.
        issues = []
    since = query.get("since")
    if since:
        cutoff = _parse_time(since, "since")
        issues = [i for i in issues if datetime.fromisoformat(i.updated_at) >= cutoff]
    sort = query.get("sort", "created")
    if sort == "updated":
        issues.sort(key=lambda i: (i.updated_at, i.number))
    elif sort == "comments":
        issues.sort(key=lambda i: (len(i.comments), i.number))
    else:
        issues.sort(key=lambda i: (i.created_at, i.number))
    if query.get("direction", "desc") == "desc":
        issues.reverse()
    return fake.paginate(ctx.request, [fake.issue_json(repo, i) for i in issues])


def _is_ancestor(repo: FakeRepo, commit: str, of: str) -> bool:
    proc = _git_run(
        cast(Path, repo.git_dir), "merge-base", "--is-ancestor", commit, of, check=False
    )
    return proc.returncode == 0


@operation("repos/list-pull-requests-associated-with-commit", "pull_requests")
async def _pulls_for_commit(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    """A commit on the default branch: the merged PR that brought it in.  Elsewhere: open and
    merged PRs whose head is (or, git-backed, contains) it.  A branch name lists that branch's
    open or merged PRs, as GitHub allows."""
    repo = _require_repo(ctx)
    wanted = ctx.params["commit_sha"]
    pulls = sorted(repo.pulls.values(), key=lambda p: p.number, reverse=True)
    is_sha = re.fullmatch(r"[0-9a-f]{7,40}", wanted) is not None
    if not is_sha and fake.branch_sha(repo.full_name, wanted) is not None:
        found = [p for p in pulls if p.head == wanted and (p.state == "open" or p.merged)]
        return fake.paginate(ctx.request, [fake.pull_json(repo, p, full=False) for p in found])
    sha = wanted
    if repo.git_dir is not None:
        resolved = fake._resolve_commit(repo, wanted)
        if resolved is None:
            raise GitHubError(422, f"No commit found for SHA: {wanted}")
        sha = resolved
    default_tip = fake.branch_sha(repo.full_name, repo.default_branch)
    on_default = (
        repo.git_dir is not None
        and default_tip is not None
        and _is_ancestor(repo, sha, default_tip)
    )

    def contains(pull: FakePull) -> bool:
        head = fake._pull_head_sha(repo, pull)
        if head == sha:
            return True
        if repo.git_dir is None:
            return False
        base = pull.base_sha if pull.merged else fake.branch_sha(repo.full_name, pull.base)
        return _is_ancestor(repo, sha, head) and not (base and _is_ancestor(repo, sha, base))

    found = []
    for pull in pulls:
        if pull.merge_commit_sha == sha:
            found.append(pull)
        elif on_default:
            if pull.merged and contains(pull):
                found.append(pull)
        elif (pull.state == "open" or pull.merged) and contains(pull):
            found.append(pull)
    return fake.paginate(ctx.request, [fake.pull_json(repo, p, full=False) for p in found])


# --------------------------------------------------------------------------------------------
# GitHub Actions: workflow runs, jobs, logs (through the blob host)
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Check runs
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Git plumbing for git-backed repos
# --------------------------------------------------------------------------------------------


def _made_up_sha(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


def _git_run(
    git_dir: Path,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    # Keep the developer's own git config (signing, hooks paths, templates) out of the fake.
    full_env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        **(env or {}),
    }
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        input=stdin,
        env=full_env,
        capture_output=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode().strip()}")
    return proc


def _git(
    git_dir: Path,
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    return _git_run(git_dir, *args, stdin=stdin, env=env).stdout.decode().strip()


# The App's webhook delivery log and its three operations live in their own module; importing
# it here registers them, so every FakeGitHub answers them (with an empty log until used).
from tests.support import fakegithub_hooks as _hooks  # noqa: E402,F401  (registers at import)
