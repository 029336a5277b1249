"""Issues: get, create, update, list; labels; comments; reactions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.fakegithub.registry import (
    _check_body_length,
    _json,
    _label_names,
    _require_repo,
    operation,
)
from tests.support.fakegithub.state import Ctx, FakeIssue, GitHubError, _now_iso

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


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
