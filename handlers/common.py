"""Shared intake helpers: what every handler needs to turn an event into jobs, without I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gidgethub.sansio import Event

from bot.jobs import LoopName
from bot.store import JobSpec

#: `/loopwright <command> [args]` at the start of a line of a comment.
COMMAND = re.compile(r"^\s*/loopwright[ \t]+([a-z][a-z-]*)\b[ \t]*(.*)$", re.MULTILINE)

#: Commands a comment can give, and the loop each one starts.
COMMANDS = {
    "triage": LoopName.TRIAGE,
    "fix": LoopName.FIX,
    "reproduce": LoopName.REPRODUCE,
    "retest": LoopName.RETEST,
    "stop": LoopName.STOP,
    "diagnose": LoopName.CI_REPAIR,
    # Retrains the repository's issue-type classifier; the loop also requires admin.
    "train": LoopName.TRAIN,
}

#: Commands that only make sense on an issue (not in a pull request's conversation).
ISSUE_ONLY_COMMANDS = frozenset({"fix", "reproduce"})

#: In a pull request's conversation some commands mean the PR loops: `retest` re-runs the
#: dependency verdict, `diagnose` the CI-failure loop. `diagnose` means nothing on an issue.
PR_COMMANDS = {"retest": LoopName.DEPS, "diagnose": LoopName.CI_REPAIR}
PR_ONLY_COMMANDS = frozenset({"diagnose"})

#: Bots whose pull requests are dependency updates (the one kind of bot event that starts a
#: loop; a repository narrows the list with `deps.authors`).
DEPENDENCY_BOTS = frozenset({"dependabot[bot]", "renovate[bot]"})

#: The label that asks for the fix loop (reproduce → patch → re-test → draft PR).
FIX_LABEL = "loopwright:fix"

#: loopwright's own labels (`loopwright:fix`, `loopwright:draft-pr`, …): never type labels.
OWN_LABEL_PREFIX = "loopwright:"


@dataclass
class IntakeDeps:
    """What handlers get at intake: a list to append jobs to, and nothing that does I/O."""

    jobs: list[JobSpec] = field(default_factory=list)
    dependency_bots: frozenset[str] = DEPENDENCY_BOTS


class NoIOAtIntake:
    """Passed as `gh` to handlers at intake.

    Intake must answer GitHub within its 10 s delivery timeout and before any side effect, so a
    handler that reaches for the API is a bug; this makes it fail loudly in tests.
    """

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"handlers may not call GitHub at intake (tried gh.{name})")


def repo_of(event: Event) -> str:
    return str(event.data["repository"]["full_name"])


def installation_of(event: Event) -> int | None:
    inst = event.data.get("installation") or {}
    return int(inst["id"]) if "id" in inst else None


def is_automated(
    event: Event, app_id: int | None, *, dependency_bots: frozenset[str] = frozenset()
) -> bool:
    """Bots (including ourselves) never trigger loops: that is how bot-to-bot storms start.

    The one exception is a dependency bot's own pull request (opened, updated, reopened): that
    event is what the dependency loop is for.
    """
    sender = event.data.get("sender") or {}
    login = str(sender.get("login", ""))
    if sender.get("type") == "Bot" or login.endswith("[bot]"):
        pr = event.data.get("pull_request") or {}
        author = str((pr.get("user") or {}).get("login", ""))
        if not (event.event == "pull_request" and login in dependency_bots and author == login):
            return True
    if app_id is not None:
        for key in ("comment", "issue", "pull_request"):
            via = (event.data.get(key) or {}).get("performed_via_github_app") or {}
            if via.get("id") == app_id:
                return True
    return False


def parse_command(body: str) -> tuple[str, str] | None:
    m = COMMAND.search(body or "")
    if not m:
        return None
    return m.group(1), m.group(2).strip()
