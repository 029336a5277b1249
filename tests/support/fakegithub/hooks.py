"""The App's webhook delivery log, for FakeGitHub: what GitHub records of every delivery it
makes to the App's webhook URL, and the three REST operations that read it and redeliver.

    from tests.support.fakegithub.hooks import hooks    # registers the operations (or hooks() does)
    log = hooks(gh, webhook_url=f"{stack.url}/webhook")
    await log.send("issues", payload)           # a real signed POST, logged as GitHub would
    log.webhook_url = closed_port_url           # our server is down: "failed to connect"
    ... GET /app/hook/deliveries, POST /app/hook/deliveries/{id}/attempts (App JWT) ...
    await log.drain()                           # the redeliveries GitHub accepted are made

`send` POSTs the body with GitHub's headers (`X-GitHub-Event`, `X-GitHub-Delivery`,
`X-Hub-Signature-256`, ...) to `webhook_url` and records the outcome the way GitHub's log shows
it: `OK` for a 2xx, `Invalid HTTP Response: <code>` otherwise, `failed to connect to host` (502)
when nothing listens, `timed out` after GitHub's 10 s (504 here: the code GitHub logs for a
timeout is not documented). A redelivery (`POST .../attempts`, 202) re-sends the same body and
guid afterwards, as GitHub does, and records a new attempt with `redelivery: true`;
`log.act_then_fail = n` makes the next n accepted ones answer 502 instead (the caller cannot
tell that GitHub acted). Listing is newest first, `per_page` (default 30, at most 100) with an
opaque `cursor` and a `Link: <...>; rel="next"` header; attempts older than GitHub's 3 days are
gone. Every response is validated against GitHub's published response schema
(`hook-delivery-item`, `hook-delivery`, from @octokit/openapi, MIT); a mismatch is a violation
in `fake.violations`, like a bad request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import jsonschema
from aiohttp import web

from tests.support.fakegithub.operations import _openapi30_to_jsonschema
from tests.support.fakegithub.registry import _HANDLERS, operation
from tests.support.fakegithub.state import Ctx, GitHubError
from tests.support.webhooks import WEBHOOK_SECRET

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub

#: github.com keeps (lists, and can redeliver) deliveries of the past 3 days.
RETENTION = timedelta(days=3)
#: GitHub gives up on a webhook target after 10 s (30 s on GitHub Enterprise Server).
DELIVERY_TIMEOUT_SECONDS = 10.0
HOOK_ID = 42
HOOKSHOT_AGENT = "GitHub-Hookshot/fake0a1"

_NULLABLE_INT = {"type": "integer", "nullable": True}
_NULLABLE_STR = {"type": "string", "nullable": True}
_ITEM_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "guid": {"type": "string"},
    "delivered_at": {"type": "string", "format": "date-time"},
    "redelivery": {"type": "boolean"},
    "duration": {"type": "number"},
    "status": {"type": "string"},
    "status_code": {"type": "integer"},
    "event": {"type": "string"},
    "action": _NULLABLE_STR,
    "installation_id": _NULLABLE_INT,
    "repository_id": _NULLABLE_INT,
    "throttled_at": {"type": "string", "format": "date-time", "nullable": True},
}
_ITEM_REQUIRED = [
    "id",
    "guid",
    "delivered_at",
    "redelivery",
    "duration",
    "status",
    "status_code",
    "event",
    "action",
    "installation_id",
    "repository_id",
]
_HEADERS_PAYLOAD = {
    "type": "object",
    "required": ["headers", "payload"],
}
#: `#/components/schemas/hook-delivery-item` (the list) and `hook-delivery` (one delivery).
HOOK_DELIVERY_ITEM: dict[str, Any] = _openapi30_to_jsonschema(
    {"type": "object", "properties": _ITEM_PROPERTIES, "required": _ITEM_REQUIRED}
)
HOOK_DELIVERY: dict[str, Any] = _openapi30_to_jsonschema(
    {
        "type": "object",
        "properties": {
            **_ITEM_PROPERTIES,
            "url": {"type": "string"},
            "request": {
                **_HEADERS_PAYLOAD,
                "properties": {
                    "headers": {"type": "object", "nullable": True},
                    "payload": {"type": "object", "nullable": True},
                },
            },
            "response": {
                **_HEADERS_PAYLOAD,
                "properties": {
                    "headers": {"type": "object", "nullable": True},
                    "payload": {"type": "string", "nullable": True},
                },
            },
        },
        "required": [*_ITEM_REQUIRED, "request", "response"],
    }
)
#: `apps/redeliver-webhook-delivery` answers 202 with `#/components/responses/accepted`.
ACCEPTED: dict[str, Any] = {"type": "object"}
_LIST_SCHEMA = {"type": "array", "items": HOOK_DELIVERY_ITEM}


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(body: bytes, secret: str, digest: str = "sha256") -> str:
    return f"{digest}=" + hmac.new(secret.encode(), body, digest).hexdigest()


@dataclass
class HookAttempt:
    """One attempt in GitHub's delivery log (a delivery or a redelivery of its guid)."""

    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    body: bytes
    request_headers: dict[str, str]
    url: str
    delivered_at: datetime
    redelivery: bool = False
    status_code: int = 0
    status: str = ""
    duration: float = 0.0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_payload: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def item_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": _iso(self.delivered_at),
            "redelivery": self.redelivery,
            "duration": self.duration,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository_id": self.repository_id,
            "throttled_at": None,
        }

    def full_json(self) -> dict[str, Any]:
        return {
            **self.item_json(),
            "url": self.url,
            "request": {"headers": self.request_headers, "payload": json.loads(self.body)},
            "response": {"headers": self.response_headers, "payload": self.response_payload},
        }


class HookLog:
    """GitHub's side of one App's webhook: where it delivers, with which secret, and the log."""

    def __init__(
        self, gh: FakeGitHub, *, secret: str = WEBHOOK_SECRET, webhook_url: str = ""
    ) -> None:
        self.gh = gh
        self.secret = secret
        self.webhook_url = webhook_url
        self.timeout = DELIVERY_TIMEOUT_SECONDS
        #: Oldest first; the API lists them newest first.
        self.attempts: list[HookAttempt] = []
        #: Attempt ids a redelivery was asked for, in order (accepted or not).
        self.redelivery_requests: list[int] = []
        #: The next N accepted redeliveries happen but the API answers 502: the caller cannot
        #: tell whether GitHub acted (an ambiguous failure).
        self.act_then_fail = 0
        self._pending: set[asyncio.Task[HookAttempt]] = set()

    # ------------------------------------------------------------------------------- delivery

    def headers_for(self, guid: str, event: str, body: bytes) -> dict[str, str]:
        return {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": HOOKSHOT_AGENT,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-ID": str(self.gh.app_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature": sign(body, self.secret, "sha1"),
            "X-Hub-Signature-256": sign(body, self.secret),
        }

    async def send(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        guid: str | None = None,
        at: datetime | None = None,
        url: str | None = None,
        status_code: int | None = None,
    ) -> HookAttempt:
        """Deliver `payload` as GitHub would and log the attempt.

        `url` overrides `webhook_url` for this delivery only; `at` backdates the log entry
        (the POST still happens now); `status_code` logs that outcome without contacting the
        target at all (GitHub's view of an answer we cannot otherwise produce)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        action = payload.get("action")
        guid = guid or str(uuid.uuid4())
        attempt = HookAttempt(
            id=self.gh.next_id(),
            guid=guid,
            event=event,
            action=None if action is None else str(action),
            installation_id=installation.get("id"),
            repository_id=repository.get("id"),
            body=body,
            request_headers=self.headers_for(guid, event, body),
            url=url or self.webhook_url,
            delivered_at=at or datetime.now(UTC),
        )
        if status_code is not None:
            self._record(attempt, status_code, {}, None, 0.01)
        else:
            await self._post(attempt)
        self.attempts.append(attempt)
        return attempt

    async def _post(self, attempt: HookAttempt) -> None:
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    attempt.url, data=attempt.body, headers=attempt.request_headers
                ) as resp,
            ):
                text = await resp.text(errors="replace")
                self._record(
                    attempt, resp.status, dict(resp.headers), text, time.monotonic() - started
                )
        except TimeoutError:
            attempt.status_code, attempt.status = 504, "timed out"
            attempt.duration = round(time.monotonic() - started, 2)
        except aiohttp.ClientError:
            attempt.status_code, attempt.status = 502, "failed to connect to host"
            attempt.duration = round(time.monotonic() - started, 2)

    @staticmethod
    def _record(
        attempt: HookAttempt,
        status_code: int,
        headers: dict[str, str],
        payload: str | None,
        duration: float,
    ) -> None:
        attempt.status_code = status_code
        ok = 200 <= status_code < 300
        attempt.status = "OK" if ok else f"Invalid HTTP Response: {status_code}"
        attempt.response_headers = headers
        attempt.response_payload = payload
        attempt.duration = round(duration, 2)

    async def redeliver(self, original: HookAttempt) -> HookAttempt:
        """What GitHub does after accepting a redelivery: the same body, headers and guid,
        again, to the URL configured now; logged as a new attempt."""
        attempt = HookAttempt(
            id=self.gh.next_id(),
            guid=original.guid,
            event=original.event,
            action=original.action,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
            body=original.body,
            request_headers=self.headers_for(original.guid, original.event, original.body),
            url=self.webhook_url,
            delivered_at=datetime.now(UTC),
            redelivery=True,
        )
        await self._post(attempt)
        self.attempts.append(attempt)
        return attempt

    async def drain(self) -> None:
        """Wait for the redeliveries GitHub has accepted to be made (and logged)."""
        while self._pending:
            await asyncio.gather(*list(self._pending))

    # ------------------------------------------------------------------------------- inspection

    def find(self, attempt_id: int) -> HookAttempt | None:
        return next((a for a in self.attempts if a.id == attempt_id), None)

    def for_guid(self, guid: str) -> list[HookAttempt]:
        return [a for a in self.attempts if a.guid == guid]

    def redeliveries_of(self, guid: str) -> list[HookAttempt]:
        return [a for a in self.for_guid(guid) if a.redelivery]

    def listed(self) -> list[HookAttempt]:
        """What the API shows: retained attempts, newest first."""
        horizon = datetime.now(UTC) - RETENTION
        kept = [a for a in self.attempts if a.delivered_at >= horizon]
        return sorted(kept, key=lambda a: (a.delivered_at, a.id), reverse=True)

    def _accept(self, original: HookAttempt) -> None:
        task = asyncio.get_running_loop().create_task(self.redeliver(original))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


_LOGS: weakref.WeakKeyDictionary[FakeGitHub, HookLog] = weakref.WeakKeyDictionary()

_OPERATIONS = (
    "apps/list-webhook-deliveries",
    "apps/get-webhook-delivery",
    "apps/redeliver-webhook-delivery",
)


def hooks(gh: FakeGitHub, *, secret: str | None = None, webhook_url: str | None = None) -> HookLog:
    """The FakeGitHub's delivery log (made on first use); `secret`/`webhook_url` update it.
    Also registers the three operations on `gh`, in case it was built before this module was
    imported."""
    log = _LOGS.get(gh)
    if log is None:
        log = _LOGS[gh] = HookLog(gh)
        for op in _OPERATIONS:
            if op not in gh.handlers:
                gh.handlers[op] = _HANDLERS[op]
    if secret is not None:
        log.secret = secret
    if webhook_url is not None:
        log.webhook_url = webhook_url
    return log


#: jsonschema checks `date-time` only with an optional package; GitHub's is RFC 3339 in UTC.
_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def _checked(fake: FakeGitHub, ctx: Ctx, schema: dict[str, Any], data: Any, status: int) -> Any:
    """`data` as the response body, after checking it against GitHub's response schema."""
    validator = jsonschema.Draft7Validator(schema, format_checker=_FORMATS)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        fake.violations.append(
            f"{ctx.op.method} {ctx.op.path}: fake's response invalid at {where}: {error.message}"
        )
    return web.json_response(data, status=status)


def _cursor(attempt: HookAttempt) -> str:
    return f"v1_{attempt.id}"


@operation("apps/list-webhook-deliveries", None)
async def _list_deliveries(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    log = hooks(fake)
    request = ctx.request
    try:
        per_page = int(request.query.get("per_page", 30))
    except ValueError:
        per_page = 30
    per_page = 30 if per_page < 1 else min(per_page, 100)
    items = log.listed()
    status = request.query.get("status")
    if status == "success":
        items = [a for a in items if a.ok]
    elif status == "failure":
        items = [a for a in items if not a.ok]
    start = 0
    cursor = request.query.get("cursor")
    if cursor is not None:
        at = next((i for i, a in enumerate(items) if _cursor(a) == cursor), None)
        if at is None:
            raise GitHubError(422, "Invalid cursor")
        start = at
    page = items[start : start + per_page]
    response = _checked(fake, ctx, _LIST_SCHEMA, [a.item_json() for a in page], 200)
    if start + per_page < len(items):
        nxt = request.rel_url.update_query(cursor=_cursor(items[start + per_page]))
        response.headers["Link"] = f'<{fake.url}{nxt}>; rel="next"'
    return response


def _retained(fake: FakeGitHub, ctx: Ctx) -> tuple[HookLog, HookAttempt]:
    log = hooks(fake)
    attempt = log.find(ctx.int_param("delivery_id"))
    if attempt is None or attempt.delivered_at < datetime.now(UTC) - RETENTION:
        raise GitHubError(404, "Not Found")
    return log, attempt


@operation("apps/get-webhook-delivery", None)
async def _get_delivery(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    _, attempt = _retained(fake, ctx)
    return _checked(fake, ctx, HOOK_DELIVERY, attempt.full_json(), 200)


@operation("apps/redeliver-webhook-delivery", None)
async def _redeliver(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    log = hooks(fake)
    log.redelivery_requests.append(ctx.int_param("delivery_id"))
    _, attempt = _retained(fake, ctx)
    log._accept(attempt)
    if log.act_then_fail > 0:
        log.act_then_fail -= 1
        return web.json_response(
            {"message": "Server Error", "documentation_url": "https://docs.github.com/rest"},
            status=502,
        )
    return _checked(fake, ctx, ACCEPTED, {}, 202)
