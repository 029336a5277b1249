"""What the bot must never do — merge a PR, approve one, mark one ready through GraphQL — lands
in `fake.forbidden_actions`; tests assert that list stays empty."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.fakegithub.auth import _parse_auth
from tests.support.fakegithub.gitrepos import _made_up_sha
from tests.support.fakegithub.registry import _error_body, _json, operation
from tests.support.fakegithub.routes.pulls import _require_pull
from tests.support.fakegithub.state import Ctx, FakeReview, GitHubError, RecordedRequest, _now_iso

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


# GraphQL mutations that would merge a PR or take it out of draft; the bot must never send them.
_FORBIDDEN_MUTATIONS = (
    "markPullRequestReadyForReview",
    "mergePullRequest",
    "enablePullRequestAutoMerge",
)


@operation("pulls/merge", "contents")
async def _merge_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    # Merging needs contents:write on GitHub, not pull_requests.
    repo, pull = _require_pull(ctx)
    fake.forbidden_actions.append(f"merge {repo.full_name}#{pull.number}")
    body: dict[str, Any] = ctx.body or {}
    if pull.merged or pull.state != "open":
        raise GitHubError(405, "Pull Request is not mergeable")
    if pull.draft:
        raise GitHubError(405, "Pull Request is still a draft")
    current = fake.branch_sha(repo.full_name, pull.head) or pull.head_sha
    if body.get("sha") is not None and body["sha"] != current:
        raise GitHubError(409, "Head branch was modified. Review and try the merge again.")
    pull.head_sha = current
    method = str(body.get("merge_method", "merge"))
    title = body.get("commit_title") or (
        f"Merge pull request #{pull.number} from {repo.owner}/{pull.head}"
        if method == "merge"
        else f"{pull.title} (#{pull.number})"
    )
    message = f"{title}\n\n{body['commit_message']}" if body.get("commit_message") else title
    if repo.git_dir is not None:
        sha = fake._merge_in_git(repo, pull, method, message)
    else:
        sha = _made_up_sha(f"{repo.full_name}#{pull.number}:merge")
        repo.branches[pull.base] = sha
    now = _now_iso()
    login, _ = fake.actor(ctx)
    pull.merged, pull.merged_at, pull.merged_by, pull.merge_commit_sha = True, now, login, sha
    pull.issue.state, pull.issue.closed_at, pull.issue.updated_at = "closed", now, now
    return _json({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


@operation("pulls/create-review", "pull_requests")
async def _create_review(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    body: dict[str, Any] = ctx.body or {}
    event = body.get("event")
    login, user_type = fake.actor(ctx)
    if event == "APPROVE":
        fake.forbidden_actions.append(f"approve {repo.full_name}#{pull.number}")
    if event in ("APPROVE", "REQUEST_CHANGES") and login == pull.user_login:
        # GitHub's wording; `errors` is a list of strings here, unlike the usual objects.
        verb = "approve" if event == "APPROVE" else "request changes on"
        raise GitHubError(
            422, "Unprocessable Entity", errors=[f"Can not {verb} your own pull request"]
        )
    if event in ("REQUEST_CHANGES", "COMMENT") and not body.get("body"):
        # The schema marks body "required" for these two; the wording here is approximate.
        raise GitHubError(
            422,
            "Unprocessable Entity",
            errors=[f"Body is required when the event is {event}"],
        )
    states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
    review = FakeReview(
        id=fake.next_id(),
        user_login=login,
        user_type=user_type,
        # No event = a PENDING review, visible only to its author until submitted.
        state=states.get(str(event), "PENDING"),
        body=str(body.get("body", "")),
        commit_id=str(body.get("commit_id") or pull.head_sha),
        submitted_at=_now_iso() if event else None,
    )
    pull.reviews.append(review)
    return _json(fake.review_json(repo, pull, review))


async def record_graphql(fake: FakeGitHub, request: web.Request) -> web.StreamResponse:
    """GraphQL is not modelled; this only records attempts at what the bot must never do
    (mark ready, merge, approve, auto-merge), then fails the call as a violation."""
    auth_kind, credential = _parse_auth(request.headers.get("Authorization"))
    raw = await request.read()
    rec = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        operation_id="graphql",
        json=None,
        auth_kind=auth_kind,
        token=credential,
    )
    fake.requests.append(rec)
    text = raw.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        rec.json = json.loads(raw)
    for mutation in _FORBIDDEN_MUTATIONS:
        if re.search(rf"\b{mutation}\b", text):
            fake.forbidden_actions.append(f"graphql {mutation}")
    if re.search(r"\b(addPullRequestReview|submitPullRequestReview)\b", text) and (
        "APPROVE" in text
    ):
        fake.forbidden_actions.append("graphql approve")
    fake._violation(rec, "GraphQL is not modelled by FakeGitHub")
    token = fake.tokens.get(credential or "")
    if token is None or token.expires_at <= datetime.now(UTC):
        rec.status = 401
        return _json(_error_body(401, "Bad credentials"), 401)
    rec.status = 200
    # GraphQL reports failures in a 200 body, not with an HTTP status.
    return _json({"data": None, "errors": [{"message": "FakeGitHub does not serve GraphQL"}]})
