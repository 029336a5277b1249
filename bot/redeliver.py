"""Reconciliation of missed webhook deliveries (issue 12).

GitHub does not redeliver a webhook delivery that failed (our intake was down, answered 5xx or
took longer than GitHub's 10 s): it only records the attempt in the App's delivery log. A pass
here reads that log (`GET /app/hook/deliveries`, App JWT, newest first, cursor pagination) back
to `since`, groups the attempts by guid (the `X-GitHub-Delivery` id intake stores as
`deliveries.id`; a redelivery carries the same guid), and for every guid that has no successful
(2xx) attempt and that we never stored, asks GitHub once to redeliver it
(`POST /app/hook/deliveries/{id}/attempts` with the newest failed attempt's id; 202).

"Once" is held in the store, not in memory: a pass claims a guid (insert-if-absent) before it
posts, so neither a later pass nor another worker process asks again; a redelivery that fails
again is then left to a human (it shows under `already_requested` while it is in the window).

A POST that fails releases the claim and is never retried within the pass, so the next pass
decides again from GitHub's log as it then is. That includes an ambiguous failure (the
connection dropped or GitHub answered 5xx after it may have acted): releasing it risks a second
redelivery of the same guid, which intake absorbs (it deduplicates on the delivery id, and
the next pass already sees the first redelivery's 2xx attempt or our stored row, so it does
not ask again); keeping the claim would risk losing the event for good. A duplicate costs
nothing; a lost event costs a triage, a fix or a CI repair, so the claim is released.

The log is read newest first, so a pass that stops early (the listing failed midway) still
acts safely on what it has read: an attempt that succeeded after a failure is newer, and so on
a page already read.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from gidgethub import GitHubException, HTTPException

from bot.github import GitHubApp, GitHubGaveUp
from bot.store import Store

log = logging.getLogger("loopwright.redeliver")

#: How long github.com keeps an App's webhook deliveries (and so how far back a redelivery can
#: reach): "You can redeliver webhook deliveries that occurred in the past 3 days." GitHub
#: Enterprise Server keeps them 7 days; `parse_since` allows the github.com bound only.
GITHUB_DELIVERY_RETENTION_SECONDS = 3 * 86400.0

#: GitHub's page size cap for the delivery log.
MAX_PER_PAGE = 100

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SINCE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", re.IGNORECASE)

#: Exceptions a GitHub call is reported with, per guid or for the listing, rather than raised:
#: gidgethub's typed HTTP errors (4xx, 5xx, rate limits), our client giving up after its
#: retries, and what aiohttp raises when a response is lost.
GITHUB_ERRORS: tuple[type[BaseException], ...] = (
    GitHubException,
    GitHubGaveUp,
    aiohttp.ClientError,
    TimeoutError,
)


def parse_since(text: str) -> float:
    """`90s`, `30m`, `2h`, `3d` -> seconds; at most GitHub's 3 days of retained deliveries."""
    m = _SINCE_RE.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a duration: a number and s, m, h or d (90s, 30m, 2h, 3d)"
        )
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r}: the window must be longer than 0 s")
    if seconds > GITHUB_DELIVERY_RETENTION_SECONDS:
        raise ValueError(
            f"{text!r}: GitHub keeps webhook deliveries for 3 days, so at most 3d (72h)"
        )
    return seconds


@dataclass(frozen=True)
class Redelivered:
    """A guid we asked GitHub to redeliver (or, in a dry run, would have)."""

    guid: str
    event: str
    action: str | None
    #: The attempt whose redelivery was requested: the guid's newest failed one.
    delivery_id: int


@dataclass(frozen=True)
class RedeliveryError:
    #: None when the listing itself failed (or an attempt in it was malformed).
    guid: str | None
    message: str
    delivery_id: int | None = None


@dataclass
class RedeliveryReport:
    #: Epoch seconds: attempts delivered before this were not looked at.
    since: float
    dry_run: bool = False
    #: Attempts read from the delivery log within the window.
    listed: int = 0
    #: Guids with no successful (2xx) attempt in the window, newest first.
    failed_guids: list[str] = field(default_factory=list)
    #: ... of which intake has a row (it stored the delivery, GitHub saw no 2xx in time).
    already_stored: list[str] = field(default_factory=list)
    #: ... of which a previous pass, or another process, has already asked for a redelivery.
    already_requested: list[str] = field(default_factory=list)
    redelivered: list[Redelivered] = field(default_factory=list)
    #: Dry run only: what would be asked for (a claim is never taken in a dry run, so a guid
    #: another pass has already asked for is listed here too).
    would_redeliver: list[Redelivered] = field(default_factory=list)
    errors: list[RedeliveryError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Attempt:
    id: int
    guid: str
    delivered_at: float
    status_code: int
    event: str
    action: str | None
    redelivery: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def parse(cls, item: Mapping[str, Any]) -> _Attempt:
        try:
            when = datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            action = item.get("action")
            return cls(
                id=int(item["id"]),
                guid=str(item["guid"]),
                delivered_at=when.timestamp(),
                status_code=int(item["status_code"]),
                event=str(item["event"]),
                action=None if action is None else str(action),
                redelivery=bool(item.get("redelivery")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed delivery in GitHub's log: {exc!r}") from exc


@dataclass
class _Guid:
    """What the window shows of one guid: its newest failed attempt, and whether any passed."""

    newest_failure: _Attempt | None = None
    succeeded: bool = False
    #: When GitHub last made a redelivery of it (None: never, within the window).
    last_redelivery_at: float | None = None


async def _read_log(
    app: GitHubApp, cutoff: float, per_page: int, report: RedeliveryReport
) -> dict[str, _Guid]:
    """The attempts delivered at or after `cutoff`, by guid, in log order (newest first).

    gidgethub's `getiter` follows the `Link: rel="next"` URL verbatim, cursor included, and
    fetches a page only when the previous one is used up, so breaking at the first attempt
    older than the window stops the paging. One JWT serves the whole walk (valid 9 minutes:
    about a thousand pages).
    """
    guids: dict[str, _Guid] = {}
    pages = app.api.getiter(
        "/app/hook/deliveries{?per_page}",
        {"per_page": str(per_page)},
        jwt=app.jwt(),
    )
    try:
        async for item in pages:
            try:
                attempt = _Attempt.parse(item)
            except ValueError as exc:
                report.errors.append(RedeliveryError(None, str(exc)))
                continue
            if attempt.delivered_at < cutoff:
                break
            report.listed += 1
            seen = guids.setdefault(attempt.guid, _Guid())
            if attempt.redelivery and seen.last_redelivery_at is None:
                seen.last_redelivery_at = attempt.delivered_at
            if attempt.ok:
                seen.succeeded = True
            elif seen.newest_failure is None:
                seen.newest_failure = attempt
    except GITHUB_ERRORS as exc:
        log.warning("redeliver: listing GitHub's delivery log failed: %s", exc)
        report.errors.append(RedeliveryError(None, f"listing deliveries: {_describe(exc)}"))
    finally:
        await pages.aclose()
    return guids


def _describe(exc: BaseException) -> str:
    """One line: the HTTP status for GitHub's answers, else the exception's type."""
    text = " ".join(str(exc).split())
    if isinstance(exc, HTTPException):
        head = f"HTTP {int(exc.status_code)}"
        return f"{head}: {text}" if text and text != str(int(exc.status_code)) else head
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def reconcile(
    app: GitHubApp,
    store: Store,
    *,
    since_seconds: float,
    now: float | None = None,
    dry_run: bool = False,
    per_page: int = MAX_PER_PAGE,
) -> RedeliveryReport:
    """One pass: redeliver, once, each failed delivery of the last `since_seconds` that we
    never stored. Store errors raise; GitHub errors are reported (listing or per guid)."""
    now = time.time() if now is None else now
    report = RedeliveryReport(since=now - since_seconds, dry_run=dry_run)
    per_page = max(1, min(MAX_PER_PAGE, per_page))
    guids = await _read_log(app, report.since, per_page, report)

    failed = {
        guid: seen.newest_failure
        for guid, seen in guids.items()
        if not seen.succeeded and seen.newest_failure is not None
    }
    report.failed_guids = list(failed)
    stored = await store.known_deliveries(report.failed_guids) if failed else set()
    report.already_stored = [g for g in report.failed_guids if g in stored]

    for guid, attempt in failed.items():
        if guid in stored:
            continue
        target = Redelivered(guid, attempt.event, attempt.action, attempt.id)
        if dry_run:
            report.would_redeliver.append(target)
            continue
        if not await store.claim_redelivery(
            guid, delivery_id=attempt.id, event=attempt.event, now=now
        ) and not await _orphaned_claim_taken(store, guid, guids[guid], now):
            report.already_requested.append(guid)
            continue
        try:
            await app.api.post(
                "/app/hook/deliveries/{delivery_id}/attempts",
                url_vars={"delivery_id": str(attempt.id)},
                data=b"",
                jwt=app.jwt(),
            )
        except GITHUB_ERRORS as exc:
            await store.release_redelivery(guid)
            log.warning("redeliver: %s (attempt %d) failed: %s", guid, attempt.id, exc)
            report.errors.append(RedeliveryError(guid, _describe(exc), attempt.id))
            continue
        except BaseException:
            # Cancelled, or something unforeseen: give the claim back, the next pass decides.
            await store.release_redelivery(guid)
            raise
        log.info(
            "redeliver: asked GitHub to redeliver %s (%s%s, attempt %d)",
            guid,
            attempt.event,
            f".{attempt.action}" if attempt.action else "",
            attempt.id,
        )
        report.redelivered.append(target)
    return report


#: A claim this old with no redelivery in GitHub's log after it was never acted on: the process
#: that took it died before its POST (GitHub makes a redelivery within seconds of the 202).
ORPHANED_CLAIM_SECONDS = 300.0
#: Clock difference tolerated between GitHub's `delivered_at` and our claim time.
_CLOCK_SLACK_SECONDS = 60.0


async def _orphaned_claim_taken(store: Store, guid: str, seen: _Guid, now: float) -> bool:
    """Take over a claim whose redelivery never happened (its process died between the claim
    and the POST). A claim followed by a redelivery, even one that failed again, is kept."""
    claimed_at = await store.redelivery_claimed_at(guid)
    if claimed_at is None or now - claimed_at < ORPHANED_CLAIM_SECONDS:
        return False
    if (
        seen.last_redelivery_at is not None
        and seen.last_redelivery_at >= claimed_at - _CLOCK_SLACK_SECONDS
    ):
        return False
    taken = await store.reclaim_redelivery(guid, claimed_at=claimed_at, now=now)
    if taken:
        log.info("redeliver: %s was claimed but never redelivered; asking again", guid)
    return taken


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _what(r: Redelivered) -> str:
    return f"{r.guid}  {r.event}{'.' + r.action if r.action else ''}  (attempt {r.delivery_id})"


def format_report(report: RedeliveryReport) -> str:
    """The text the CLI prints for one pass."""
    lines = [
        f"{'dry run: ' if report.dry_run else ''}{_n(report.listed, 'delivery attempt')} since "
        f"{_stamp(report.since)}; "
        f"{_n(len(report.failed_guids), 'delivery', 'deliveries')} without a successful attempt"
    ]
    if report.already_stored:
        lines.append(f"  already stored, nothing to do: {len(report.already_stored)}")
    if report.already_requested:
        lines.append(f"  already requested by another pass: {len(report.already_requested)}")
        lines += [f"    {g}" for g in report.already_requested]
    if report.dry_run:
        lines.append(f"  would redeliver: {len(report.would_redeliver)}")
        lines += [f"    {_what(r)}" for r in report.would_redeliver]
    else:
        lines.append(f"  redelivered: {len(report.redelivered)}")
        lines += [f"    {_what(r)}" for r in report.redelivered]
    if report.errors:
        lines.append(f"  errors: {len(report.errors)}")
        lines += [f"    {f'{e.guid}: ' if e.guid else ''}{e.message}" for e in report.errors]
    return "\n".join(lines)


async def reconcile_periodically(
    app: GitHubApp,
    store: Store,
    *,
    interval_seconds: float,
    window_seconds: float,
    first_delay: float = 5.0,
) -> None:
    """A worker process's background pass: shortly after start-up (what was missed while the
    process was down), then every `interval_seconds`. Never raises; cancel it to stop."""
    since = min(window_seconds, GITHUB_DELIVERY_RETENTION_SECONDS)
    delay = first_delay
    while True:
        await asyncio.sleep(delay)
        delay = interval_seconds
        try:
            report = await reconcile(app, store, since_seconds=since)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("redeliver: the pass failed; trying again in %.0fs", interval_seconds)
            continue
        if report.errors:
            log.warning("redeliver: %s", format_report(report))
        elif report.redelivered:
            log.info("redeliver: %s", format_report(report))
