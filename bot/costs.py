"""Hard spend caps per repository and per installation, over rolling windows.

Spend is what the recorded model calls cost (`steps.cost`, joined to `runs` for the repository
and the installation) over the last 24 hours (`day`) or 30 days (`month`). The operator sets the
caps (`LOOPWRIGHT_COST_CAP_*_USD`, 0 = none); a repository's `.github/loopwright.yml` may lower
its own (`costs.day_usd`, `costs.month_usd`), never raise them.

Before every model call the run's `CostGuard` checks and reserves in one store transaction
(serialised: SQLite's store transactions are BEGIN IMMEDIATE, PostgreSQL takes an advisory lock
per installation and repository): committed spend in the window plus the live reservations of
calls in flight. At or over a cap the call is refused (`CostCapReached`); otherwise a
reservation of the call's estimated cost is inserted, and deleted once the call and its step
record are done. So a cap is exceeded by one call at most, however many workers share it. A
reservation older than `stale_after` (a worker that died mid-call) no longer counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.db import Tx
from bot.model import CostCapReached, Usage
from bot.repo_config import CONFIG_PATH, CostsConfig
from bot.settings import ENV_PREFIX, Settings
from bot.store import StepRecord, Store

Window = Literal["day", "month"]
Scope = Literal["repository", "installation"]

#: Window lengths in seconds: a day is the last 24 h, a month the last 30 days.
WINDOWS: dict[Window, float] = {"day": 86400.0, "month": 30 * 86400.0}
_WINDOW_WORDS: dict[Window, tuple[str, str]] = {
    "day": ("daily", "the last 24 h"),
    "month": ("monthly", "the last 30 days"),
}

#: The step a run records when caps are in force: the effective caps, as JSON.
CAPS_STEP = "cost_caps"


@dataclass(frozen=True)
class Cap:
    """One cap in force for a run."""

    scope: Scope
    window: Window
    limit: float
    #: Where the limit comes from, in words (an environment variable, or the repository key).
    source: str
    #: The repository's own value when it was above the operator's cap and was clamped.
    clamped_from: float | None = None

    @property
    def seconds(self) -> float:
        return WINDOWS[self.window]

    def describe(self) -> str:
        text = f"${self.limit:.4f} ({self.source}"
        if self.clamped_from is not None:
            text += (
                f"; the repository's `costs.{self.window}_usd` of ${self.clamped_from:.4f} is "
                "above the operator's cap and was clamped to it"
            )
        return text + ")"


def _operator_var(scope: Scope, window: Window) -> str:
    part = "REPO" if scope == "repository" else "INSTALLATION"
    return f"{ENV_PREFIX}COST_CAP_{part}_{window.upper()}_USD"


def effective_caps(
    settings: Settings, costs: CostsConfig | None, *, installation_id: int | None
) -> list[Cap]:
    """The caps in force: the operator's, lowered (never raised) by the repository's own.
    Installation caps apply only to a job with an installation (not `loopwright run`)."""
    caps: list[Cap] = []
    for window in WINDOWS:
        operator: float = getattr(settings, f"cost_cap_repo_{window}_usd")
        own: float | None = getattr(costs, f"{window}_usd") if costs is not None else None
        if own is not None and (operator <= 0 or own <= operator):
            caps.append(Cap("repository", window, own, f"`costs.{window}_usd` in {CONFIG_PATH}"))
        elif operator > 0:
            clamped = own if own is not None and own > operator else None
            caps.append(
                Cap("repository", window, operator, _operator_var("repository", window), clamped)
            )
    if installation_id is not None:
        for window in WINDOWS:
            limit: float = getattr(settings, f"cost_cap_installation_{window}_usd")
            if limit > 0:
                caps.append(
                    Cap("installation", window, limit, _operator_var("installation", window))
                )
    return caps


def caps_record(caps: list[Cap], costs: CostsConfig | None) -> str:
    """The `cost_caps` step's output: the effective caps and the repository's own values."""
    return json.dumps(
        {
            "caps": [
                {
                    "scope": c.scope,
                    "window": c.window,
                    "usd": c.limit,
                    "source": c.source,
                    **({"clamped_from": c.clamped_from} if c.clamped_from is not None else {}),
                }
                for c in caps
            ],
            "repo_config": {
                "day_usd": costs.day_usd if costs else None,
                "month_usd": costs.month_usd if costs else None,
            },
        },
        separators=(",", ":"),
    )


def _duration(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def refusal_message(
    cap: Cap, subject: str, spent: float, reserved: float, frees_at: float | None, now: float
) -> str:
    """One line: which cap, spent vs cap, the window, and when it frees up roughly."""
    adjective, span = _WINDOW_WORDS[cap.window]
    who = "the repository's" if cap.scope == "repository" else f"installation {subject}'s"
    text = (
        f"{who} {adjective} spend cap is reached: ${spent + reserved:.4f} spent in {span}"
        + (f" (${reserved:.4f} of it reserved by calls in flight)" if reserved > 0 else "")
        + f" against a cap of {cap.describe()}"
    )
    if frees_at is not None:
        when = datetime.fromtimestamp(frees_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        text += f"; it frees up in about {_duration(frees_at - now)} (around {when})"
    else:
        text += "; it frees up when the calls in flight finish (a few minutes)"
    return text


def _scope_sql(cap_scope: Scope) -> str:
    return "r.repo = :subject" if cap_scope == "repository" else "r.installation_id = :subject"


async def _committed(tx: Tx, scope: Scope, subject: Any, now: float) -> dict[Window, float]:
    """Recorded spend of the repository or installation in each window."""
    row = await tx.fetchone(
        "SELECT COALESCE(SUM(CASE WHEN s.created_at >= :day THEN s.cost ELSE 0 END), 0) AS day, "  # noqa: S608 - fixed fragments only
        "COALESCE(SUM(s.cost), 0) AS month FROM steps s JOIN runs r ON r.id = s.run_id "
        f"WHERE {_scope_sql(scope)} AND s.created_at >= :month AND s.cost > 0",
        {"subject": subject, "day": now - WINDOWS["day"], "month": now - WINDOWS["month"]},
    )
    assert row is not None
    return {"day": float(row["day"] or 0), "month": float(row["month"] or 0)}


async def _reserved(tx: Tx, scope: Scope, subject: Any) -> float:
    column = "repo" if scope == "repository" else "installation_id"
    row = await tx.fetchone(
        f"SELECT COALESCE(SUM(amount), 0) AS n FROM spend_reservations WHERE {column} = :subject",  # noqa: S608 - fixed fragments only
        {"subject": subject},
    )
    return float(row["n"] or 0) if row else 0.0


async def _frees_at(store: Store, cap: Cap, subject: Any, spent: float, now: float) -> float | None:
    """About when the recorded spend in the window drops below the cap again (the oldest
    calls leaving the window first); None if it is below already (only reservations block)."""
    if spent < cap.limit:
        return None
    rows = await store.db.fetchall(
        "SELECT s.created_at, s.cost FROM steps s JOIN runs r ON r.id = s.run_id "  # noqa: S608 - fixed fragments only
        f"WHERE {_scope_sql(cap.scope)} AND s.created_at >= :since AND s.cost > 0 "
        "ORDER BY s.created_at, s.id",
        {"subject": subject, "since": now - cap.seconds},
    )
    remaining = spent
    for row in rows:
        remaining -= float(row["cost"])
        if remaining < cap.limit:
            return float(row["created_at"]) + cap.seconds
    return None


class CostGuard:
    """The spend caps of one run, checked before each of its model calls (`bot.model.CallGuard`).

    `repo_costs` is the repository's `costs:` section; `loops.engine.execute` installs it once
    the repository's config is read (until then only the operator's caps apply).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        repo: str,
        installation_id: int | None,
        run_id: int | None,
        stale_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.repo = repo
        self.installation_id = installation_id
        self.run_id = run_id
        self.stale_after = stale_after
        self.repo_costs: CostsConfig | None = None
        self._clock = clock

    def caps(self) -> list[Cap]:
        return effective_caps(self.settings, self.repo_costs, installation_id=self.installation_id)

    def _subject(self, cap: Cap) -> Any:
        return self.repo if cap.scope == "repository" else self.installation_id

    async def before_call(self, *, step: str, model: str, estimate: float) -> object:
        """Refuse the call (`CostCapReached`) if committed spend plus live reservations is at
        or over a cap; else reserve `estimate` and return the reservation's id (None when
        nothing is capped or the call costs nothing)."""
        caps = self.caps()
        if not caps:
            return None
        now = self._clock()
        hit: tuple[Cap, float, float] | None = None
        reservation: int | None = None
        async with self.store.db.transaction() as tx:
            if self.store.db.dialect == "postgres":
                # One order for every run (installation, then repository): no deadlock.
                keys = [f"repo:{self.repo}"]
                if self.installation_id is not None:
                    keys.insert(0, f"installation:{self.installation_id}")
                for key in keys:
                    await tx.fetchone(
                        "SELECT pg_advisory_xact_lock(hashtext(:key)) AS locked", {"key": key}
                    )
            await tx.execute(
                "DELETE FROM spend_reservations WHERE created_at < :stale",
                {"stale": now - self.stale_after},
            )
            for scope in ("repository", "installation"):
                mine = [c for c in caps if c.scope == scope]
                if not mine:
                    continue
                subject = self._subject(mine[0])
                committed = await _committed(tx, scope, subject, now)
                reserved = await _reserved(tx, scope, subject)
                for cap in mine:
                    if committed[cap.window] + reserved >= cap.limit:
                        hit = (cap, committed[cap.window], reserved)
                        break
                if hit:
                    break
            if hit is None and estimate > 0:
                row = await tx.fetchone(
                    "INSERT INTO spend_reservations (repo, installation_id, run_id, amount, "
                    "created_at) VALUES (:repo, :inst, :run, :amount, :now) RETURNING id",
                    {
                        "repo": self.repo,
                        "inst": self.installation_id,
                        "run": self.run_id,
                        "amount": estimate,
                        "now": now,
                    },
                )
                assert row is not None
                reservation = int(row["id"])
        if hit is None:
            return reservation
        cap, spent, reserved = hit
        subject = self._subject(cap)
        frees_at = await _frees_at(self.store, cap, subject, spent, now)
        message = refusal_message(cap, str(subject), spent, reserved, frees_at, now)
        if self.run_id is not None:
            await self.store.record_step(
                self.run_id,
                StepRecord(
                    name="cost_cap",
                    kind="deterministic",
                    verdict="refused",
                    input=f"{step} with {model}, estimated ${estimate:.6f}",
                    output=message,
                ),
            )
        raise CostCapReached(
            message,
            scope=cap.scope,
            subject=str(subject),
            window=cap.window,
            cap=cap.limit,
            spent=spent + reserved,
            source=cap.source,
            frees_at=frees_at,
        )

    async def after_call(self, token: object) -> None:
        if isinstance(token, int):
            async with self.store.db.transaction() as tx:
                await tx.execute("DELETE FROM spend_reservations WHERE id = :id", {"id": token})


def reservation_ttl(settings: Settings, requests_per_call: int) -> float:
    """How long a reservation counts: twice the longest a call can take (each of its HTTP
    requests may run to the model timeout). Older ones belong to a worker that died."""
    return 2 * settings.model_timeout_seconds * max(1, requests_per_call)


async def run_usage(store: Store, run_id: int) -> tuple[Usage, list[str]]:
    """What one run's recorded model calls used, and their models in order (for a comment
    written after a loop stopped part-way)."""
    rows = await store.db.fetchall(
        "SELECT model, prompt_tokens, completion_tokens, cost FROM steps "
        "WHERE run_id = :id AND kind = 'model' ORDER BY id",
        {"id": run_id},
    )
    usage = Usage()
    models: list[str] = []
    for row in rows:
        usage.add(
            Usage(1, int(row["prompt_tokens"]), int(row["completion_tokens"]), float(row["cost"]))
        )
        if row["model"]:
            models.append(str(row["model"]))
    return usage, models


# --- the report (`loopwright runs --costs`) ------------------------------------------------------


@dataclass(frozen=True)
class SpendRow:
    """The model calls of one repository, loop and model in one window."""

    window: Window
    repo: str
    installation_id: int | None
    loop: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    spent: float
    #: The repository's own cap for this window (`costs.<window>_usd`) as its latest run that
    #: read the config recorded it; None: it sets none (the operator's alone applies).
    repo_cap: float | None = None


async def _recorded_repo_caps(store: Store) -> dict[str, dict[str, float | None]]:
    """Per repository, its `costs:` values as recorded by its latest run that read the config
    (a run that ended `unauthorized` or `config_error` did not get that far)."""
    rows = await store.db.fetchall(
        "SELECT r.repo, s.output FROM runs r JOIN steps s ON s.run_id = r.id "
        "AND s.name = :step WHERE r.id IN (SELECT MAX(id) FROM runs WHERE state = 'done' "
        "AND exit_reason NOT IN ('unauthorized', 'config_error') GROUP BY repo)",
        {"step": CAPS_STEP},
    )
    found: dict[str, dict[str, float | None]] = {}
    for row in rows:
        try:
            data = json.loads(row["output"] or "{}")
            own = data.get("repo_config") or {}
            found[str(row["repo"])] = {
                w: (float(own[f"{w}_usd"]) if own.get(f"{w}_usd") is not None else None)
                for w in WINDOWS
            }
        except (ValueError, TypeError, AttributeError):
            continue
    return found


async def spend_report(store: Store, *, now: float) -> list[SpendRow]:
    """Spend per repository, loop and model in each window (day, then month)."""
    own = await _recorded_repo_caps(store)
    out: list[SpendRow] = []
    for window, seconds in WINDOWS.items():
        rows = await store.db.fetchall(
            "SELECT r.repo, r.installation_id, r.loop, COALESCE(s.model, '') AS model, "
            "COUNT(*) AS calls, COALESCE(SUM(s.prompt_tokens), 0) AS pt, "
            "COALESCE(SUM(s.completion_tokens), 0) AS ct, COALESCE(SUM(s.cost), 0) AS spent "
            "FROM steps s JOIN runs r ON r.id = s.run_id "
            "WHERE s.kind = 'model' AND s.created_at >= :since "
            "GROUP BY r.repo, r.installation_id, r.loop, COALESCE(s.model, '') "
            "ORDER BY r.repo, r.loop, COALESCE(s.model, '')",
            {"since": now - seconds},
        )
        for row in rows:
            repo = str(row["repo"])
            out.append(
                SpendRow(
                    window=window,
                    repo=repo,
                    installation_id=(
                        int(row["installation_id"]) if row["installation_id"] is not None else None
                    ),
                    loop=str(row["loop"]),
                    model=str(row["model"]) or "-",
                    calls=int(row["calls"]),
                    prompt_tokens=int(row["pt"]),
                    completion_tokens=int(row["ct"]),
                    spent=float(row["spent"]),
                    repo_cap=own.get(repo, {}).get(window),
                )
            )
    return out


def _effective(operator: float, own: float | None) -> float | None:
    if own is not None and (operator <= 0 or own <= operator):
        return own
    return operator if operator > 0 else None


def format_spend_report(rows: list[SpendRow], settings: Settings) -> str:
    """An aligned table: per window, each repository's loops and models, the repository's
    total against its cap, then each installation's total against its cap."""
    header = ["window", "repository", "loop", "model", "calls", "tokens", "spent", "cap", "left"]
    table: list[list[str]] = []

    def money(v: float | None) -> str:
        return "-" if v is None else f"${v:.4f}"

    for window in WINDOWS:
        mine = [r for r in rows if r.window == window]
        if not mine:
            continue
        operator_repo: float = getattr(settings, f"cost_cap_repo_{window}_usd")
        operator_inst: float = getattr(settings, f"cost_cap_installation_{window}_usd")
        for repo in sorted({r.repo for r in mine}):
            of_repo = [r for r in mine if r.repo == repo]
            for r in of_repo:
                tokens = r.prompt_tokens + r.completion_tokens
                cells = [window, repo, r.loop, r.model, str(r.calls), f"{tokens:,}"]
                table.append([*cells, money(r.spent), "", ""])
            total = sum(r.spent for r in of_repo)
            cap = _effective(operator_repo, of_repo[0].repo_cap)
            table.append(
                [
                    window,
                    repo,
                    "(total)",
                    "",
                    str(sum(r.calls for r in of_repo)),
                    f"{sum(r.prompt_tokens + r.completion_tokens for r in of_repo):,}",
                    money(total),
                    money(cap),
                    money(None if cap is None else max(0.0, cap - total)),
                ]
            )
        for inst in sorted({r.installation_id for r in mine if r.installation_id is not None}):
            of_inst = [r for r in mine if r.installation_id == inst]
            total = sum(r.spent for r in of_inst)
            cap = operator_inst if operator_inst > 0 else None
            table.append(
                [
                    window,
                    f"installation {inst}",
                    "(total)",
                    "",
                    str(sum(r.calls for r in of_inst)),
                    f"{sum(r.prompt_tokens + r.completion_tokens for r in of_inst):,}",
                    money(total),
                    money(cap),
                    money(None if cap is None else max(0.0, cap - total)),
                ]
            )
    if not table:
        return "no model calls in the last 30 days"
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    numeric = {4, 5, 6, 7, 8}

    def fmt(line: list[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), *(fmt(line) for line in table)])
