"""What every loop shares: its context, typed exits, step records, and the common preamble
(authorise the trigger, acknowledge, load the repository's config) that runs before a loop."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.forge import WRITE_PERMISSIONS, Issue
from bot.model import ModelClient, Usage
from bot.repo_config import CONFIG_PATH, ConfigError, RepoConfig, parse_config
from bot.settings import Settings
from bot.store import Job, StepRecord, Store

log = logging.getLogger("loopwright.engine")


class ExitReason(enum.StrEnum):
    DONE = "done"
    DISABLED = "disabled"
    UNAUTHORIZED = "unauthorized"
    CONFIG_ERROR = "config_error"
    MODEL_ERROR = "model_error"
    # Shared with the code-changing loops built on this engine.
    FIXED = "fixed"
    NOT_REPRODUCED = "not_reproduced"
    BUDGET_EXHAUSTED = "budget_exhausted"
    NO_PROGRESS = "no_progress"
    SANDBOX_ERROR = "sandbox_error"
    PROTECTED_PATH = "protected_path"
    CANCELLED = "cancelled"

    @property
    def succeeded(self) -> bool:
        return self in (ExitReason.DONE, ExitReason.FIXED)


@dataclass
class Outcome:
    exit: ExitReason
    detail: str = ""
    posted: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)


class Forge(Protocol):
    repo: str

    async def get_issue(self, number: int) -> Issue: ...
    async def list_labels(self) -> list[str]: ...
    async def read_file(self, path: str) -> str | None: ...
    async def permission(self, user: str) -> str: ...
    async def add_reaction(self, number: int, content: str) -> None: ...
    async def add_labels(self, number: int, labels: list[str]) -> None: ...
    async def upsert_sticky(self, number: int, section: str, content: str) -> str: ...


@dataclass
class LoopContext:
    settings: Settings
    store: Store
    forge: Forge
    model: ModelClient
    run_id: int
    config: RepoConfig = field(default_factory=RepoConfig)
    dry_run: bool = False

    async def record(self, step: StepRecord) -> None:
        await self.store.record_step(self.run_id, step)

    async def deterministic(
        self, name: str, fn: Callable[[], Awaitable[Any]], *, describe_input: str = ""
    ) -> Any:
        """Run and record a deterministic step; the output is stored as its repr, capped."""
        started = time.perf_counter()
        try:
            result = await fn()
        except Exception as exc:
            await self.record(
                StepRecord(
                    name=name,
                    kind="deterministic",
                    verdict=f"error: {type(exc).__name__}",
                    input=describe_input,
                    output=str(exc)[:2000],
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            )
            raise
        await self.record(
            StepRecord(
                name=name,
                kind="deterministic",
                verdict="ok",
                input=describe_input,
                output=repr(result)[:4000],
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return result


LoopFn = Callable[[Job, LoopContext], Awaitable[Outcome]]


def format_footer(ctx: LoopContext, usage: Usage, models: list[str]) -> str:
    model = ", ".join(dict.fromkeys(models)) or "none"
    return (
        f"<sub>loopwright · model `{model}` · {usage.prompt_tokens} prompt + "
        f"{usage.completion_tokens} completion tokens · ${usage.cost:.4f} · run #{ctx.run_id}</sub>"
    )


async def execute(loop: str, fn: LoopFn, job: Job, ctx: LoopContext) -> Outcome:
    """The preamble every loop gets, then the loop itself.

    Authorisation happens here, in the worker, not at intake: intake must answer GitHub before
    making any API call, and the permission check is one.
    """
    number = job.number
    requester = job.payload.get("requires_write_from")
    if requester:
        perm = await ctx.forge.permission(str(requester))
        await ctx.record(
            StepRecord(
                name="authorize",
                kind="deterministic",
                verdict="allowed" if perm in WRITE_PERMISSIONS else "denied",
                input=str(requester),
                output=perm,
            )
        )
        if perm not in WRITE_PERMISSIONS:
            log.info("ignoring /loopwright %s from %s (permission %s)", loop, requester, perm)
            return Outcome(ExitReason.UNAUTHORIZED, f"{requester} has {perm} permission")
    if number is not None:
        await ctx.forge.add_reaction(number, "eyes")
    text = await ctx.forge.read_file(CONFIG_PATH)
    try:
        ctx.config = parse_config(text)
    except ConfigError as exc:
        await ctx.record(
            StepRecord(
                name="config",
                kind="deterministic",
                verdict="invalid",
                input=CONFIG_PATH,
                output="\n".join(exc.problems),
            )
        )
        if number is not None:
            problems = "\n".join(f"- {p}" for p in exc.problems)
            # The complaint lives in the loop's own section, so the next good run replaces it.
            await ctx.forge.upsert_sticky(
                number,
                loop,
                (
                    f"**loopwright could not run `{loop}`: `{CONFIG_PATH}` is invalid.**\n\n"
                    f"{problems}\n\nFix the file on the default branch; `loopwright config-schema` "
                    f"prints the full schema.\n\n<sub>run #{ctx.run_id}</sub>"
                ),
            )
        return Outcome(ExitReason.CONFIG_ERROR, "; ".join(exc.problems))
    if not getattr(ctx.config.loops, loop, True):
        return Outcome(ExitReason.DISABLED, f"loops.{loop} is off in {CONFIG_PATH}")
    return await fn(job, ctx)
