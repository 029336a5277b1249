"""The webhook intake: verify, parse, route, store durably, answer. Nothing slower than a local
commit happens before the answer; the workers do the rest."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from gidgethub.sansio import Event

from bot.settings import Settings
from bot.store import JobSpec, Store

log = logging.getLogger("loopwright.server")

#: GitHub caps webhook payloads at 25 MB; anything bigger is not from GitHub.
WEBHOOK_MAX_BYTES = 25 * 1024 * 1024

Decide = Callable[[Event], Awaitable[list[JobSpec]]]
Lifecycle = Callable[[web.Application], AsyncIterator[None]]

STORE = web.AppKey("store", Store)
NOTIFY: web.AppKey[Callable[[], None]] = web.AppKey("notify")
DECIDE: web.AppKey[Decide] = web.AppKey("decide")
SETTINGS = web.AppKey("settings", Settings)


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :])


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_capped(request: web.Request) -> bytes | None:
    """The body, or None once it passes the cap, without ever holding more than the cap."""
    if request.content_length is not None and request.content_length > WEBHOOK_MAX_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > WEBHOOK_MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def webhook(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    body = await _read_capped(request)
    if body is None:
        # Answer, then close rather than drain: reading the rest of a huge body is the attack.
        resp = _error(413, f"payload larger than {WEBHOOK_MAX_BYTES} bytes")
        resp.force_close()
        return resp
    assert settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value().encode()
    if not signature_ok(secret, body, request.headers.get("X-Hub-Signature-256")):
        return _error(401, "missing or invalid X-Hub-Signature-256")
    event_name = request.headers.get("X-GitHub-Event")
    delivery = request.headers.get("X-GitHub-Delivery")
    if not event_name or not delivery:
        return _error(400, "not a GitHub delivery: X-GitHub-Event and X-GitHub-Delivery needed")
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return _error(400, "set the webhook content type to application/json")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return _error(400, "body is not a JSON object")
    event = Event(data, event=event_name, delivery_id=delivery)
    try:
        jobs = await request.app[DECIDE](event)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("delivery %s (%s): malformed payload: %r", delivery, event_name, exc)
        return _error(400, f"malformed {event_name} payload: {type(exc).__name__} {exc}")
    repo = (data.get("repository") or {}).get("full_name")
    stored = await request.app[STORE].record_delivery(
        delivery,
        event_name,
        data.get("action"),
        repo,
        jobs,
        max_attempts=settings.job_max_attempts,
    )
    if not stored:
        return web.json_response({"delivery": delivery, "duplicate": True, "jobs": 0})
    if jobs:
        request.app[NOTIFY]()
    return web.json_response({"delivery": delivery, "jobs": len(jobs)}, status=202)


async def healthz(request: web.Request) -> web.Response:
    counts = await request.app[STORE].job_counts()
    return web.json_response({"status": "ok", "jobs": counts})


def create_app(settings: Settings, *, decide: Decide, lifecycle: Lifecycle) -> web.Application:
    """Build the intake app. `lifecycle` opens the store (sets `app[STORE]`, `app[NOTIFY]`),
    starts whatever else the process runs (workers, the embedded model) and closes it all."""
    settings.require("webhook_secret")
    app = web.Application()
    app[SETTINGS] = settings
    app[DECIDE] = decide
    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    return app
