"""Webhook deliveries as GitHub sends them: the real payload fixtures, the signature, headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from tests.support import FIXTURES

WEBHOOK_SECRET = "test-webhook-secret-0123456789"


def payload(name: str, **overrides: Any) -> dict[str, Any]:
    """A real payload from tests/fixtures/webhooks, e.g. `payload("issues/opened.15")`."""
    data: dict[str, Any] = json.loads((FIXTURES / "webhooks" / f"{name}.json").read_text())
    data.update(overrides)
    return data


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(
    event: str, body: bytes, *, delivery: str | None = None, secret: str = WEBHOOK_SECRET
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }
