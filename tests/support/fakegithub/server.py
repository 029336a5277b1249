"""The fake itself: two aiohttp apps on loopback (the API and the blob host), the request
pipeline (match -> auth -> body -> fault -> handler -> lost response), injected faults,
rate-limit headers, pagination."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yarl
from aiohttp import hdrs, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.fakegithub.auth import Auth, _parse_auth
from tests.support.fakegithub.forbidden import record_graphql
from tests.support.fakegithub.gitrepos import GitRepos
from tests.support.fakegithub.oauth import OAuth
from tests.support.fakegithub.operations import OPERATIONS_FILE, load_operations
from tests.support.fakegithub.payloads import Payloads
from tests.support.fakegithub.registry import (
    _HANDLERS,
    Handler,
    HandlerSpec,
    _error_body,
    _int_query,
    _json,
    _require_repo,
)
from tests.support.fakegithub.seeding import Seeding
from tests.support.fakegithub.shapes import Shapes
from tests.support.fakegithub.state import (
    BLOB_URL_TTL_SECONDS,
    AuthKind,
    BlobGrant,
    Ctx,
    FakeInstallation,
    FakeIssue,
    FakeRepo,
    Fault,
    GitHubError,
    InstallationToken,
    LoseMode,
    RecordedBlobRequest,
    RecordedRequest,
    _iso,
)
from tests.support.fakegithub.validation import Validation
from tests.support.githttp import add_git_routes

#: Where `_handle` leaves a `lose_response` fault for `_dispatch` (an aiohttp request key).
_LOSS_KEY = web.RequestKey("fakegithub.lose_response", Fault)


async def _serve_on_loopback(runner: web.AppRunner) -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    return f"http://127.0.0.1:{port}"


class FakeGitHub(Seeding, GitRepos, Shapes, Payloads, Auth, Validation, OAuth):
    """GitHub's REST API on loopback, as a GitHub App sees it (see the package docstring)."""

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
        # Things the bot must never do (merge, approve, mark ready): recorded and refused by
        # forbidden.py, never performed; tests assert this list stays empty.
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
        # The OAuth web flow's client, codes and user-to-server tokens (oauth.py).
        self.init_oauth()

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
        # so it gets a route of its own that records such attempts; see forbidden.record_graphql.
        app.router.add_post("/graphql", self._graphql)
        # GitHub's web form of the App manifest flow (not REST): see `_manifest_form`.
        app.router.add_post("/settings/apps/new", self._manifest_form)
        app.router.add_post("/organizations/{org}/settings/apps/new", self._manifest_form)
        # GitHub's OAuth web flow (not REST either): see oauth.py.
        self.add_oauth_routes(app)
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

    # ----------------------------------------------------------------------------- faults

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

    # ----------------------------------------------------------------------------- requests

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

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        return await record_graphql(self, request)


@contextlib.asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


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
