"""`issue_comment` events: `/loopwright <command>` from people with write access."""

from __future__ import annotations

from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from bot.store import JobSpec
from handlers.common import (
    COMMANDS,
    ISSUE_ONLY_COMMANDS,
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
    if command[0] in ISSUE_ONLY_COMMANDS and event.data["issue"].get("pull_request"):
        return  # the issue loops work on issues; a PR conversation is not one
    sender = event.data["sender"]["login"]
    deps.jobs.append(
        JobSpec(
            kind=COMMANDS[command[0]],
            repo=repo_of(event),
            installation_id=installation_of(event),
            number=int(event.data["issue"]["number"]),
            # The sender's permission is checked by the worker: intake may not call GitHub.
            payload={
                "trigger": f"/loopwright {command[0]}",
                "requires_write_from": sender,
                "comment_id": event.data["comment"].get("id"),
            },
        )
    )
