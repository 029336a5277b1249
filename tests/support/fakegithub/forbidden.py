"""What the bot must never do — merge a PR, approve one, mark one ready for review — is recorded
here, never performed: each attempt lands in `fake.forbidden_actions` (tests assert that list
stays empty) and is answered with a refusal.  Where GitHub itself would refuse (the bot's own
draft PR), the refusal is GitHub's, in GitHub's words; otherwise it says that the fake records
and does not act.  Nothing is merged, no review is stored, no PR leaves draft.

- `pulls/merge`: recorded; GitHub's 405/409 for a closed, draft or moved PR, else a 405.
- `pulls/create-review` with `event: APPROVE` (`approve`): recorded; GitHub's 422 on one's own
  PR, else a 422.  Reviews that only comment or request changes are not forbidden: they live
  in routes/pulls.py.
- `pulls/update` with `draft: false` (`record_ready`): recorded and ignored, which is what
  GitHub's REST does with it.
- GraphQL (`record_graphql`): not modelled; ready/merge/auto-merge/approve mutations are
  recorded, and every call is a violation.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from aiohttp import web

from tests.support.fakegithub.auth import _parse_auth
from tests.support.fakegithub.registry import _error_body, _json, _require_pull, operation
from tests.support.fakegithub.state import Ctx, FakePull, FakeRepo, GitHubError, RecordedRequest

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
    raise GitHubError(405, "FakeGitHub records merges and never performs them")


def approve(fake: FakeGitHub, repo: FakeRepo, pull: FakePull, login: str) -> NoReturn:
    """A review with `event: APPROVE`: recorded, refused, not stored."""
    fake.forbidden_actions.append(f"approve {repo.full_name}#{pull.number}")
    if login == pull.user_login:
        # GitHub's wording; `errors` is a list of strings here, unlike the usual objects.
        raise GitHubError(
            422, "Unprocessable Entity", errors=["Can not approve your own pull request"]
        )
    raise GitHubError(
        422,
        "Unprocessable Entity",
        errors=["FakeGitHub records approvals and never submits them"],
    )


def record_ready(fake: FakeGitHub, repo: FakeRepo, pull: FakePull) -> None:
    """`draft: false` on `pulls/update`: REST has no way to mark a draft ready; GitHub accepts
    the key and silently ignores it, and so does the fake.  The attempt is still recorded."""
    fake.forbidden_actions.append(f"ready {repo.full_name}#{pull.number} (pulls/update)")


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
