"""`issue_comment` events: `/loopwright <command>` from people with write access."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.jobs import TRIGGERS, Requested
from bot.store import JobSpec
from handlers.common import (
    COMMANDS,
    ISSUE_ONLY_COMMANDS,
    PR_COMMANDS,
    PR_ONLY_COMMANDS,
    IntakeDeps,
    installation_of,
    parse_command,
    repo_of,
)

router = Router()


@router.register("issue_comment", action="created")
async def on_issue_comment_created(event: Event, gh: Any, *, deps: IntakeDeps) -> None:
    command = parse_command(event.data["comment"].get("body") or "")
    if command is None or command[0] not in COMMANDS:
        return
    name = command[0]
    on_pull = bool(event.data["issue"].get("pull_request"))
    if on_pull and name in ISSUE_ONLY_COMMANDS:
        return  # the issue loops work on issues; a PR conversation is not one
    if not on_pull and name in PR_ONLY_COMMANDS:
        return
    kind = PR_COMMANDS.get(name, COMMANDS[name]) if on_pull else COMMANDS[name]
    sender = event.data["sender"]["login"]
    model = TRIGGERS[kind]
    assert issubclass(model, Requested), f"a command cannot start {kind}"
    deps.jobs.append(
        JobSpec(
            kind=kind,
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(event.data["issue"]["number"]),
            # The sender's permission is checked by the worker: intake may not call GitHub.
            payload=model(
                trigger=f"/loopwright {name}",
                requires_write_from=sender,
                comment_id=event.data["comment"].get("id"),
            ).payload(),
        )
    )
