"""The App manifest asks for the events loops need and the least permission that serves them."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[1] / "app.yml"


def test_manifest_events_and_minimal_permissions() -> None:
    app = yaml.safe_load(MANIFEST.read_text())
    assert set(app["default_events"]) == {
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review_comment",
        "check_run",
        "check_suite",
        "workflow_run",
    }
    assert app["default_permissions"] == {
        "metadata": "read",
        "contents": "write",
        "issues": "write",
        "pull_requests": "write",
        "checks": "write",
        "actions": "read",
    }
    assert "workflows" not in app["default_permissions"]
    assert app["hook_attributes"]["url"].endswith("/webhook")
