"""The handler table (operationId -> coroutine) and what every handler shares: JSON
answers in GitHub's error shape, the repository of the request, label names, body limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.fakegithub.state import (
    DOCS_URL,
    MAX_BODY_CHARS,
    Ctx,
    FakePull,
    FakeRepo,
    GitHubError,
)

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


Handler = Callable[["FakeGitHub", Ctx], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class HandlerSpec:
    fn: Handler
    # Installation permission the token needs (read for GET, write otherwise); None = JWT op.
    permission: str | None


_HANDLERS: dict[str, HandlerSpec] = {}


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


def _int_query(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        return default


def _require_repo(ctx: Ctx) -> FakeRepo:
    if ctx.repo is None:
        raise GitHubError(404, "Not Found")
    return ctx.repo


def _require_pull(ctx: Ctx) -> tuple[FakeRepo, FakePull]:
    repo = _require_repo(ctx)
    pull = repo.pulls.get(ctx.int_param("pull_number"))
    if pull is None:
        # An issue number is "Not Found" here too: pulls/* only know pull requests.
        raise GitHubError(404, "Not Found")
    return repo, pull


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
