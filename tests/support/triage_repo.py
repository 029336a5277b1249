"""The triage end-to-end repository's labels and config, and the deliveries that start it."""

from __future__ import annotations

from typing import Any

from tests.support.webhooks import payload

LABELS = [
    "bug",
    "enhancement",
    "question",
    "documentation",
    "area: parser",
    "area: cli",
    "needs-info",
    "wontfix",
]
CONFIG = "triage:\n  needs_info_label: needs-info\n"


def opened(body: str = "It crashes.", title: str = "Crash on start") -> dict[str, Any]:
    data = payload("issues/opened.15", installation={"id": 1})
    data["issue"]["title"], data["issue"]["body"] = title, body
    return data


def command(text: str, sender: str = "Codertocat") -> dict[str, Any]:
    data = payload("issue_comment/created.0", installation={"id": 1})
    data["comment"]["body"] = text
    data["sender"]["login"] = sender
    return data
