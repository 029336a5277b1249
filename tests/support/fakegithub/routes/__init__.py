"""FakeGitHub's handlers, one module per area of the REST API; importing this package registers
them (`@operation`) in the table every FakeGitHub copies."""

from __future__ import annotations

from tests.support.fakegithub.routes import actions, apps, checks, issues, pulls, repos, users

__all__ = ["actions", "apps", "checks", "issues", "pulls", "repos", "users"]
