"""Pull requests: create, list, get, update, reviews, and the pull requests of a commit.  What
the bot must never do here (merge, approve, mark ready) is recorded by forbidden.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from tests.support.fakegithub import forbidden
from tests.support.fakegithub.gitrepos import _git_run
from tests.support.fakegithub.registry import (
    _check_body_length,
    _json,
    _require_pull,
    _require_repo,
    operation,
)
from tests.support.fakegithub.state import (
    Ctx,
    FakePull,
    FakeRepo,
    FakeReview,
    GitHubError,
    _now_iso,
    _pull_custom_error,
    _pull_field_error,
)

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


@operation("pulls/create", "pull_requests")
async def _create_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    body: dict[str, Any] = ctx.body
    if body.get("issue") is not None:
        raise GitHubError(501, "FakeGitHub does not model turning an issue into a pull request")
    if not body.get("title"):
        raise GitHubError(
            422,
            "Validation Failed",
            errors=[{"resource": "PullRequest", "code": "missing_field", "field": "title"}],
        )
    _check_body_length(body.get("body"), "PullRequest")
    login, user_type = fake.actor(ctx)
    pull = fake._open_pull(
        repo,
        head=str(body["head"]),
        base=str(body["base"]),
        title=str(body["title"]),
        body=body.get("body"),
        draft=bool(body.get("draft", False)),
        user=login,
        user_type=user_type,
        via_app=ctx.via_app,
        maintainer_can_modify=bool(body.get("maintainer_can_modify", False)),
    )
    data = fake.pull_json(repo, pull)
    response = _json(data, 201)
    response.headers["Location"] = data["url"]
    return response


@operation("pulls/list", "pull_requests")
async def _list_pulls(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo = _require_repo(ctx)
    query = ctx.request.query
    state = query.get("state", "open")
    pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
    head = query.get("head")
    if head:
        owner, sep, branch = head.partition(":")
        if not sep:
            # GitHub silently ignores a head filter without the "owner:" prefix and returns
            # every PR: a classic way to "find" someone else's PR and edit it.  Behave the
            # same, but flag it.
            if ctx.rec is not None:
                fake._violation(ctx.rec, f"pulls/list: head={head!r} lacks 'owner:' and is ignored")
        else:
            pulls = [
                p for p in pulls if owner.casefold() == repo.owner.casefold() and p.head == branch
            ]
    base = query.get("base")
    if base:
        pulls = [p for p in pulls if p.base == base]
    sort = query.get("sort", "created")
    if sort == "updated":
        pulls.sort(key=lambda p: (p.issue.updated_at, p.number))
    elif sort == "popularity":
        pulls.sort(key=lambda p: (len(p.issue.comments), p.number))
    else:  # created, long-running (approximated by age)
        pulls.sort(key=lambda p: p.number)
    # Default direction is desc for created (or no sort), asc for anything else.
    default_direction = "desc" if sort == "created" else "asc"
    if query.get("direction", default_direction) == "desc":
        pulls.reverse()
    return fake.paginate(ctx.request, [fake.pull_json(repo, p, full=False) for p in pulls])


@operation("pulls/create-review", "pull_requests")
async def _create_review(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    body: dict[str, Any] = ctx.body or {}
    event = body.get("event")
    login, user_type = fake.actor(ctx)
    if event == "APPROVE":
        forbidden.approve(fake, repo, pull, login)
    if event == "REQUEST_CHANGES" and login == pull.user_login:
        # GitHub's wording; `errors` is a list of strings here, unlike the usual objects.
        raise GitHubError(
            422, "Unprocessable Entity", errors=["Can not request changes on your own pull request"]
        )
    if event in ("REQUEST_CHANGES", "COMMENT") and not body.get("body"):
        # The schema marks body "required" for these two; the wording here is approximate.
        raise GitHubError(
            422,
            "Unprocessable Entity",
            errors=[f"Body is required when the event is {event}"],
        )
    states = {"REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
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


@operation("pulls/get", "pull_requests")
async def _get_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    return _json(fake.pull_json(repo, pull))


@operation("pulls/update", "pull_requests")
async def _update_pull(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    repo, pull = _require_pull(ctx)
    body: dict[str, Any] = ctx.body or {}
    if body.get("draft") is False and pull.draft:
        forbidden.record_ready(fake, repo, pull)
    if "base" in body:
        base = str(body["base"])
        if fake.branch_sha(repo.full_name, base) is None:
            raise _pull_field_error("base")
        pull.base = base
    if body.get("state") == "open" and pull.state == "closed":
        if pull.merged:
            # A merged PR cannot be reopened on GitHub; the wording here is approximate.
            raise _pull_custom_error("state cannot be changed. The pull request has been merged.")
        for other in repo.pulls.values():
            if other.state == "open" and (other.head, other.base) == (pull.head, pull.base):
                raise _pull_custom_error(
                    f"A pull request already exists for {repo.owner}:{pull.head}."
                )
    if "title" in body and body["title"] is not None:
        pull.issue.title = str(body["title"])
    if "body" in body:
        _check_body_length(body["body"], "PullRequest")
        pull.issue.body = body["body"]
    if body.get("state") in ("open", "closed") and body["state"] != pull.state:
        pull.issue.state = body["state"]
        pull.issue.closed_at = _now_iso() if body["state"] == "closed" else None
    if "maintainer_can_modify" in body:
        pull.maintainer_can_modify = bool(body["maintainer_can_modify"])
    pull.issue.updated_at = _now_iso()
    return _json(fake.pull_json(repo, pull))


def _is_ancestor(repo: FakeRepo, commit: str, of: str) -> bool:
    proc = _git_run(
        cast(Path, repo.git_dir), "merge-base", "--is-ancestor", commit, of, check=False
    )
    return proc.returncode == 0


@operation("repos/list-pull-requests-associated-with-commit", "pull_requests")
async def _pulls_for_commit(fake: FakeGitHub, ctx: Ctx) -> web.StreamResponse:
    """A commit on the default branch: the merged PR that brought it in.  Elsewhere: open and
    merged PRs whose head is (or, git-backed, contains) it.  A branch name lists that branch's
    open or merged PRs, as GitHub allows."""
    repo = _require_repo(ctx)
    wanted = ctx.params["commit_sha"]
    pulls = sorted(repo.pulls.values(), key=lambda p: p.number, reverse=True)
    is_sha = re.fullmatch(r"[0-9a-f]{7,40}", wanted) is not None
    if not is_sha and fake.branch_sha(repo.full_name, wanted) is not None:
        found = [p for p in pulls if p.head == wanted and (p.state == "open" or p.merged)]
        return fake.paginate(ctx.request, [fake.pull_json(repo, p, full=False) for p in found])
    sha = wanted
    if repo.git_dir is not None:
        resolved = fake._resolve_commit(repo, wanted)
        if resolved is None:
            raise GitHubError(422, f"No commit found for SHA: {wanted}")
        sha = resolved
    default_tip = fake.branch_sha(repo.full_name, repo.default_branch)
    on_default = (
        repo.git_dir is not None
        and default_tip is not None
        and _is_ancestor(repo, sha, default_tip)
    )

    def contains(pull: FakePull) -> bool:
        head = fake._pull_head_sha(repo, pull)
        if head == sha:
            return True
        if repo.git_dir is None:
            return False
        base = pull.base_sha if pull.merged else fake.branch_sha(repo.full_name, pull.base)
        return _is_ancestor(repo, sha, head) and not (base and _is_ancestor(repo, sha, base))

    found = []
    for pull in pulls:
        if pull.merge_commit_sha == sha:
            found.append(pull)
        elif on_default:
            if pull.merged and contains(pull):
                found.append(pull)
        elif (pull.state == "open" or pull.merged) and contains(pull):
            found.append(pull)
    return fake.paginate(ctx.request, [fake.pull_json(repo, p, full=False) for p in found])
