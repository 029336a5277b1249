"""A loopback fake of GitHub's REST API, as a GitHub App sees it.

The production code talks to it through gidgethub's real aiohttp client with
``base_url=fake.url``, so everything here is about the wire: JSON bodies, GitHub's status codes
and error shape, ``Link`` pagination, ``x-ratelimit-*`` headers, App JWT and installation-token
auth.  Every request is checked against GitHub's published REST description (a subset copied into
``tests/fixtures/operations.json``, MIT, see ``LICENSE-rest-api``): a call GitHub would not
recognise, or a body its schema rejects, is recorded in ``fake.violations`` so tests can fail on
API misuse that a hand-written mock would happily accept.

Request pipeline (order matters for tests that combine scenarios):
match path (+ query names) -> auth -> JSON parse + schema -> injected fault -> handler.

Quick use::

    async with running_fake() as fake:
        fake.add_repo("octo/hello", installation_id=1, labels=["bug"], files={...})
        fake.add_issue("octo/hello", number=1, title="...", user="alice")
        gh = GitHubAPI(session, "test", oauth_token=fake.mint_token(1).token, base_url=fake.url)
        ...
        fake.assert_no_violations()

New endpoints: write `async def handler(fake, ctx) -> web.StreamResponse` and register it with
`@operation("<operationId>", "<installation permission>")` (module-wide) or `fake.register(...)`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import math
import re
import secrets
import socket
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote, unquote

import jsonschema
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

OPERATIONS_FILE = Path(__file__).parent / "fixtures" / "operations.json"
DOCS_URL = "https://docs.github.com/rest"
HTML_BASE = "https://github.com"

# Template params whose values legitimately contain "/" (file paths, refs like heads/x/y,
# branch names like loopwright/fix-1, "base...head").  GitHub accepts them unencoded.
GREEDY_PARAMS = frozenset({"path", "ref", "branch", "basehead"})

# GitHub rejects comment/issue bodies above this many characters with a 422.
MAX_BODY_CHARS = 65536

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
    issues: dict[int, FakeIssue] = field(default_factory=dict)

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
    status: int | None = None


@dataclass
class Fault:
    method: str | None
    path_regex: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


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


def operation(operation_id: str, permission: str | None) -> Callable[[Handler], Handler]:
    """Register a handler for a published operationId (module-wide default table)."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[operation_id] = HandlerSpec(fn, permission)
        return fn

    return register


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
    ) -> None:
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

        self._ids = itertools.count(1000)
        self._user_ids: dict[str, int] = {}
        self._rate_used: dict[str | None, int] = {}
        self._app_hooks: list[Callable[[web.Application], None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ----------------------------------------------------------------------------- lifecycle

    def add_app_hook(self, hook: Callable[[web.Application], None]) -> None:
        """Mount extra non-REST routes (e.g. `githttp.add_git_routes`) before the REST
        catch-all; must be called before start()."""
        if self._runner is not None:
            raise RuntimeError("add_app_hook() must be called before start()")
        self._app_hooks.append(hook)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for hook in self._app_hooks:
            hook(app)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
    ) -> FakeRepo:
        """Seed a repository.  `permissions` applies only when this call creates the
        installation; `installation_id=None` models a repo the App is not installed on."""
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
            files=dict(files or {}),
            collaborators=dict(collaborators or {}),
        )
        for label in labels:
            if isinstance(label, str):
                self._create_label(repo, label)
            else:
                self._create_label(
                    repo, label["name"], label.get("color", "ededed"), label.get("description")
                )
        self.repos[full_name.lower()] = repo
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

    def expire_tokens(self) -> None:
        """Make every minted installation token expired (GitHub's are valid for one hour)."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for tok in self.tokens.values():
            tok.expires_at = past

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
        return {
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
        self._rate_limit_headers(response, credential)
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
        if fault is not None:
            return fault

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
            self._violation(rec, f"{op.operation_id}: body invalid at {where}: {error.message}")
            raise GitHubError(422, f"Invalid request.\n\nFor '{where}', {error.message}.")

    def _take_fault(self, method: str, raw_path: str) -> web.Response | None:
        for fault in self.faults:
            if fault.method not in (None, method.upper()):
                continue
            if not fault.path_regex.search(raw_path):
                continue
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            body = fault.body
            if body is None:
                body = _error_body(fault.status, _default_fault_message(fault.status))
            response = _json(body, fault.status)
            response.headers.update(fault.headers)
            return response
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
    # Only the default branch is modelled; GitHub's answer for an unknown ref is this 404.
    if ref is not None and ref not in (repo.default_branch, f"refs/heads/{repo.default_branch}"):
        raise GitHubError(404, f"No commit found for the ref {ref}")
    path = ctx.params["path"].strip("/")
    api = f"{fake.url}/repos/{repo.full_name}/contents"

    def entry(p: str, kind: str, data: bytes | None) -> dict[str, Any]:
        sha = _git_blob_sha(data) if data is not None else hashlib.sha1(p.encode()).hexdigest()
        return {
            "type": kind,
            "name": p.rsplit("/", 1)[-1],
            "path": p,
            "sha": sha,
            "size": len(data) if data is not None else 0,
            "url": f"{api}/{p}?ref={repo.default_branch}",
            "html_url": f"{HTML_BASE}/{repo.full_name}/blob/{repo.default_branch}/{p}",
            "git_url": f"{fake.url}/repos/{repo.full_name}/git/blobs/{sha}",
            "download_url": (
                f"https://raw.githubusercontent.com/{repo.full_name}/{repo.default_branch}/{p}"
                if kind == "file"
                else None
            ),
        }

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
