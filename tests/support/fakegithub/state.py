"""What the fake holds: repositories, issues, pull requests, workflow runs, check runs,
installations and tokens, what it recorded, the faults it was told to inject; and the request
context and error that handlers see and raise."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from tests.support.fakegithub.operations import Operation

if TYPE_CHECKING:
    from tests.support.fakegithub.server import FakeGitHub


DOCS_URL = "https://docs.github.com/rest"
HTML_BASE = "https://github.com"


# GitHub rejects comment/issue bodies above this many characters with a 422.
MAX_BODY_CHARS = 65536

# How long a signed log URL on the blob host stays valid (GitHub: "expires after 1 minute").
BLOB_URL_TTL_SECONDS = 60

# The app behind every check run that a GitHub Actions job is.
GITHUB_ACTIONS_APP_ID = 15368
GITHUB_ACTIONS_SLUG = "github-actions"

PERMISSION_LEVELS = {"none": 0, "read": 1, "write": 2, "admin": 3}

DEFAULT_INSTALLATION_PERMISSIONS: dict[str, str] = {
    "metadata": "read",
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "checks": "write",
    "actions": "read",
}

AuthKind = Literal["jwt", "token"]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_iso() -> str:
    return _iso(datetime.now(UTC))


@dataclass
class FakeComment:
    id: int
    body: str
    user_login: str
    user_type: str
    performed_via_app: bool
    created_at: str
    updated_at: str
    issue_number: int
    reactions: list[tuple[str, str]] = field(default_factory=list)
    # (user_login, content) -> (reaction id, created_at); GitHub returns the original reaction
    # (status 200) when the same user repeats the same content.
    reaction_meta: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)


@dataclass
class FakeIssue:
    id: int
    number: int
    title: str
    body: str | None
    user_login: str
    user_type: str = "User"
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    reactions: list[tuple[str, str]] = field(default_factory=list)
    reaction_meta: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)
    updated_at: str = field(default_factory=_now_iso)
    closed_at: str | None = None
    performed_via_app: bool = False


@dataclass
class FakeReview:
    id: int
    user_login: str
    user_type: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED or PENDING
    body: str
    commit_id: str
    submitted_at: str | None


@dataclass
class FakePull:
    """A pull request.  Its conversation half (title, body, state, labels, comments) is the
    FakeIssue with the same number, as on GitHub, where every PR is also an issue."""

    id: int
    issue: FakeIssue
    head: str  # branch name in the same repository (forks are not modelled)
    base: str
    draft: bool
    head_sha: str
    base_sha: str
    maintainer_can_modify: bool = False
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    reviews: list[FakeReview] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.issue.number

    @property
    def title(self) -> str:
        return self.issue.title

    @property
    def body(self) -> str | None:
        return self.issue.body

    @property
    def state(self) -> str:
        return self.issue.state

    @property
    def user_login(self) -> str:
        return self.issue.user_login


@dataclass
class FakeJob:
    """A job of a workflow run.  `steps` are (name, conclusion) pairs; `log` is what the job's
    log download serves (empty = no log, which GitHub answers with 404).  `id` comes from
    `fake.next_id()` unless given; the job's check run has the same id, as on GitHub."""

    name: str
    conclusion: str | None = "failure"
    steps: list[tuple[str, str | None]] = field(default_factory=list)
    log: str | bytes | None = ""
    id: int | None = None
    # None = the run's latest attempt; an older attempt's jobs only show with filter=all.
    run_attempt: int | None = None
    labels: list[str] = field(default_factory=lambda: ["ubuntu-latest"])
    # Per-step text for the run's log archive (step name -> text); steps without one are empty.
    step_logs: dict[str, str | bytes] = field(default_factory=dict)
    run_id: int = 0
    started_at: str | None = None
    completed_at: str | None = None

    @property
    def log_bytes(self) -> bytes:
        log = self.log or b""
        return log.encode() if isinstance(log, str) else log


@dataclass
class FakeWorkflowRun:
    id: int
    workflow_id: int
    name: str
    path: str
    head_branch: str
    head_sha: str
    event: str
    status: str
    conclusion: str | None
    pull_requests: list[int]
    actor: str
    jobs: list[FakeJob]
    run_number: int
    run_attempt: int
    created_at: datetime
    updated_at: datetime
    check_suite_id: int
    display_title: str
    head_commit: dict[str, Any]

    def job(self, job_id: int) -> FakeJob | None:
        return next((j for j in self.jobs if j.id == job_id), None)


@dataclass
class FakeCheckRun:
    """A check run created through the Checks API.  `history` holds every request that shaped
    it: ("checks/create" | "checks/update", request body), oldest first."""

    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: str | None
    completed_at: str | None
    check_suite_id: int
    app_slug: str
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    details_url: str | None = None
    external_id: str | None = None
    history: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    installation_id: int | None
    default_branch: str
    private: bool
    owner_type: str
    files: dict[str, str | bytes]
    collaborators: dict[str, str]
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_ids: dict[str, int] = field(default_factory=dict)
    # Issues and pull requests share one number sequence; a PR's number is in both maps.
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    # The bare repository served over smart HTTP, when the repo is git-backed.  Otherwise
    # `branches` (name -> made-up sha) stands in for refs so PR validation still has something
    # to check against.
    git_dir: Path | None = None
    branches: dict[str, str] = field(default_factory=dict)
    # GitHub Actions runs (`add_workflow_run`) and check runs made through the Checks API.
    workflow_runs: dict[int, FakeWorkflowRun] = field(default_factory=dict)
    check_runs: dict[int, FakeCheckRun] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def find_label(self, name: str) -> str | None:
        # Label names are case-insensitive on GitHub; return the stored spelling.
        folded = name.casefold()
        return next((n for n in self.labels if n.casefold() == folded), None)

    def next_issue_number(self) -> int:
        return max(self.issues, default=0) + 1


@dataclass
class FakeInstallation:
    id: int
    account: str
    permissions: dict[str, str]
    account_type: str = "User"


@dataclass
class InstallationToken:
    token: str
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]
    # Lower-cased full names; None means "every repo of the installation" (GitHub's "all").
    repositories: frozenset[str] | None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    operation_id: str | None
    json: Any
    auth_kind: AuthKind | None
    token: str | None
    #: What the handler answered (for a lost response: what GitHub did, not what arrived).
    status: int | None = None
    #: How the response was lost (`lose_response` mode: "drop", "502", "timeout"), else None.
    lost: LoseMode | None = None


@dataclass
class RecordedBlobRequest:
    """A request that reached the blob storage host (`fake.blob_url`), headers as sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None


@dataclass
class BlobGrant:
    """One signed, expiring blob URL: valid for `path` only, until `expires_at`."""

    path: str
    expires_at: datetime
    content_type: str
    data: Callable[[], bytes]


LoseMode = Literal["drop", "502", "timeout"]


@dataclass
class Fault:
    method: str | None
    path_regex: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int
    #: None: answer `status` instead of running the handler (`fail_next`).  Otherwise run the
    #: handler (the write is applied) and lose its response this way (`lose_response`).
    lose: LoseMode | None = None
    #: Called after the handler and before the response is lost (another actor's change).
    meanwhile: Callable[[FakeGitHub], None] | None = None
    #: "timeout": how long the answer is held back.
    delay: float = 0.0


@dataclass
class Ctx:
    """What a handler gets: the parsed, authorised request."""

    request: web.Request
    op: Operation
    params: dict[str, str]
    body: Any
    auth_kind: AuthKind | None
    token: InstallationToken | None
    repo: FakeRepo | None
    rec: RecordedRequest | None = None

    def int_param(self, name: str) -> int:
        return int(self.params[name])

    @property
    def via_app(self) -> bool:
        return self.token is not None


class GitHubError(Exception):
    """Raised by handlers to answer with GitHub's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})


def _pull_field_error(field_name: str) -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"resource": "PullRequest", "field": field_name, "code": "invalid"}],
    )


def _pull_custom_error(message: str) -> GitHubError:
    # No `field` key: gidgethub turns this into ValidationError("Validation Failed: '<msg>'").
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"resource": "PullRequest", "code": "custom", "message": message}],
    )
