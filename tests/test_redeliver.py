"""Missed webhook deliveries (issue 12): GitHub logs a delivery our intake never took (down,
5xx), `reconcile` finds it in the App's delivery log and has it redelivered, once, to a real
`loopwright serve` whose jobs then run. The FakeGitHub's delivery log is
`tests/support/fakegithub/hooks.py`; the store is the real one (SQLite, and PostgreSQL when it
runs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import db as dbmod
from bot.github import GitHubApp
from bot.redeliver import (
    GITHUB_DELIVERY_RETENTION_SECONDS,
    Redelivered,
    RedeliveryError,
    RedeliveryReport,
    format_report,
    parse_since,
    reconcile,
)
from bot.store import Store
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import FakeGitHub, running_fake
from tests.support.fakegithub import hooks as fakegithub_hooks
from tests.support.fakegithub.hooks import HookAttempt, HookLog, hooks
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.webhooks import WEBHOOK_SECRET, payload, sign

REPO = "Codertocat/Hello-World"
ISSUES = range(1, 9)
TWO_HOURS = 2 * 3600.0
LIST_OP = "apps/list-webhook-deliveries"
REDELIVER_OP = "apps/redeliver-webhook-delivery"


def opened(number: int) -> dict[str, Any]:
    data = payload("issues/opened.15", installation={"id": 1})
    data["issue"]["number"] = number
    data["issue"]["title"] = f"Crash number {number}"
    return data


def closed_port_url() -> str:
    """A loopback URL nothing listens on: what GitHub sees while our server is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhook"


@dataclass
class Env:
    stack: Stack
    log: HookLog
    app: GitHubApp
    up_url: str
    down_url: str
    failing_url: str  # answers every delivery with 500, like an intake whose database is down
    database_url: str
    exits: contextlib.AsyncExitStack

    @property
    def gh(self) -> FakeGitHub:
        return self.stack.gh

    async def send(self, number: int, **kw: Any) -> HookAttempt:
        return await self.log.send("issues", opened(number), **kw)

    async def reconcile(self, **kw: Any) -> RedeliveryReport:
        kw.setdefault("since_seconds", TWO_HOURS)
        return await reconcile(self.app, self.stack.store, **kw)

    async def settle(self) -> None:
        await self.log.drain()
        await self.stack.settle()

    def stickies(self, number: int) -> list[Any]:
        issue = self.gh.repo(REPO).issues[number]
        return [c for c in issue.comments if c.user_login == "loopwright[bot]"]

    async def other_process(self) -> tuple[GitHubApp, Store]:
        """A second worker process: its own database connection and GitHub client."""
        database = await dbmod.connect(self.database_url)
        self.exits.push_async_callback(database.close)
        store = Store(database)
        await store.init()
        session = await self.exits.enter_async_context(aiohttp.ClientSession())
        return _app(session, self.gh), store


def _app(session: aiohttp.ClientSession, gh: FakeGitHub) -> GitHubApp:
    return GitHubApp(session, app_id=gh.app_id, private_key_pem=gh.private_key_pem, base_url=gh.url)


async def _always_500(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"error": "database unavailable"}, status=500)


@pytest.fixture
async def env(tmp_path: Path, fake_model: FakeModel, database_url: str) -> AsyncIterator[Env]:
    async with contextlib.AsyncExitStack() as exits:
        gh = await exits.enter_async_context(running_fake())
        gh.add_repo(REPO, installation_id=1, labels=["bug"], collaborators={"Codertocat": "admin"})
        for n in ISSUES:
            gh.add_issue(REPO, number=n, title=f"Crash number {n}", user="Codertocat")
        settings = make_settings(gh, fake_model, tmp_path / "data", database_url=database_url)
        stack = await serve(exits, gh, fake_model, settings, REPO)
        fake_model.script("triage", triage_answer("bug", summary="Reads as a crash"))

        failing = web.AppRunner(web.Application())
        failing.app.router.add_post("/webhook", _always_500)
        await failing.setup()
        exits.push_async_callback(failing.cleanup)
        site = web.TCPSite(failing, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        session = await exits.enter_async_context(aiohttp.ClientSession())
        up = f"{stack.url}/webhook"
        log = hooks(gh, secret=WEBHOOK_SECRET, webhook_url=up)
        yield Env(
            stack,
            log,
            _app(session, gh),
            up,
            closed_port_url(),
            f"http://127.0.0.1:{port}/webhook",
            database_url,
            exits,
        )
        await log.drain()
        gh.assert_no_violations()


async def test_failed_and_missing_deliveries_are_redelivered_once_and_their_jobs_run(
    env: Env,
) -> None:
    ok = await env.send(1)  # our server is up
    assert ok.status_code == 202 and ok.status == "OK"

    env.log.webhook_url = env.down_url  # our server goes down
    down = [await env.send(n) for n in (2, 3)]
    assert [(a.status_code, a.status) for a in down] == [(502, "failed to connect to host")] * 2
    answered_500 = await env.send(4, url=env.failing_url)
    assert (answered_500.status_code, answered_500.status) == (500, "Invalid HTTP Response: 500")
    healed = await env.send(5)  # failed, then someone redelivered it by hand once we were up
    old = await env.send(6, at=datetime.now(UTC) - timedelta(hours=3))  # outside the window
    # GitHub gave up waiting (timeout) although we did store it.
    late = await env.send(7, status_code=504)
    env.log.webhook_url = env.up_url  # back up
    await env.log.redeliver(healed)
    status, _ = await env.stack.deliver("issues", opened(7), delivery=late.guid)
    assert status == 202
    await env.settle()
    assert [len(env.stickies(n)) for n in ISSUES] == [1, 0, 0, 0, 1, 0, 1, 0]

    report = await env.reconcile()

    newest_first = [answered_500, down[1], down[0]]
    missing = [a.guid for a in newest_first]
    assert [r.guid for r in report.redelivered] == missing
    assert [(r.event, r.action) for r in report.redelivered] == [("issues", "opened")] * 3
    assert [r.delivery_id for r in report.redelivered] == [a.id for a in newest_first]
    assert report.failed_guids == [late.guid, *missing]
    assert report.already_stored == [late.guid]
    assert report.already_requested == [] and report.errors == []
    assert report.listed == 7  # the 3-hour-old attempt is outside the window
    assert sorted(env.log.redelivery_requests) == sorted(a.id for a in (answered_500, *down))

    await env.settle()
    for attempt in (answered_500, *down):
        [again] = env.log.redeliveries_of(attempt.guid)
        assert again.status_code == 202 and again.body == attempt.body
        assert again.request_headers["X-GitHub-Delivery"] == attempt.guid
    assert await env.stack.store.known_deliveries(missing) == set(missing)
    assert [len(env.stickies(n)) for n in ISSUES] == [1, 1, 1, 1, 1, 0, 1, 0]
    assert env.log.redeliveries_of(old.guid) == []

    second = await env.reconcile()
    assert second.redelivered == [] and second.errors == []
    assert second.failed_guids == [late.guid] and second.already_stored == [late.guid]
    assert len(env.gh.requests_for(REDELIVER_OP)) == 3
    # A wider window reaches the old one: still asked for exactly once.
    wider = await env.reconcile(since_seconds=4 * 3600)
    assert [r.guid for r in wider.redelivered] == [old.guid]
    assert len(env.gh.requests_for(REDELIVER_OP)) == 4


async def test_a_guid_already_requested_is_not_requested_again_even_if_it_failed_again(
    env: Env,
) -> None:
    env.log.webhook_url = env.down_url
    lost = await env.send(2)
    first = await env.reconcile()  # GitHub accepts; the redelivery fails too: still down
    assert [r.guid for r in first.redelivered] == [lost.guid]
    await env.log.drain()
    [again] = env.log.redeliveries_of(lost.guid)
    assert again.status_code == 502

    env.log.webhook_url = env.up_url
    second = await env.reconcile()
    assert second.redelivered == [] and second.already_requested == [lost.guid]
    assert len(env.gh.requests_for(REDELIVER_OP)) == 1
    assert "already requested by another pass: 1" in format_report(second)


async def test_two_concurrent_passes_redeliver_each_guid_once(env: Env) -> None:
    env.log.webhook_url = env.down_url
    lost = [await env.send(n) for n in (2, 3, 4, 5)]
    env.log.webhook_url = env.up_url
    app2, store2 = await env.other_process()

    a, b = await asyncio.gather(
        reconcile(env.app, env.stack.store, since_seconds=TWO_HOURS),
        reconcile(app2, store2, since_seconds=TWO_HOURS, per_page=1),
    )

    guids = {x.guid for x in lost}
    won_a, won_b = {r.guid for r in a.redelivered}, {r.guid for r in b.redelivered}
    assert won_a | won_b == guids and not won_a & won_b
    # What one pass did not win, the other had claimed (or had already landed and succeeded).
    assert set(a.already_requested) <= won_b and set(b.already_requested) <= won_a
    assert a.errors == [] and b.errors == []
    assert sorted(env.log.redelivery_requests) == sorted(x.id for x in lost)
    await env.settle()
    assert [len(env.log.redeliveries_of(g)) for g in guids] == [1] * 4
    assert [len(env.stickies(n)) for n in (2, 3, 4, 5)] == [1] * 4


async def test_dry_run_lists_but_posts_nothing_and_claims_nothing(env: Env) -> None:
    env.log.webhook_url = env.down_url
    lost = [await env.send(n) for n in (2, 3)]
    env.log.webhook_url = env.up_url

    dry = await env.reconcile(dry_run=True)
    assert dry.dry_run and dry.redelivered == []
    assert [r.guid for r in dry.would_redeliver] == [a.guid for a in reversed(lost)]
    assert env.gh.requests_for(REDELIVER_OP) == []
    text = format_report(dry)
    assert text.startswith("dry run: 2 delivery attempts since ")
    assert "would redeliver: 2" in text and lost[0].guid in text

    real = await env.reconcile()  # the dry run took no claim
    assert [r.guid for r in real.redelivered] == [a.guid for a in reversed(lost)]
    json.dumps(real.as_dict())


async def test_pagination_follows_the_cursor_and_stops_at_the_window(env: Env) -> None:
    env.log.webhook_url = env.down_url
    lost = [await env.send(n) for n in (2, 3, 4, 5, 6)]
    for n in (7, 8):  # older than the window: on the last pages
        await env.send(n, at=datetime.now(UTC) - timedelta(hours=5 - n % 2))
    env.log.webhook_url = env.up_url

    report = await env.reconcile(per_page=2)

    assert sorted(r.guid for r in report.redelivered) == sorted(a.guid for a in lost)
    assert report.listed == 5
    pages = env.gh.requests_for(LIST_OP)
    # 7 attempts at 2 a page: pages 1-3 hold the 5 in the window; page 3 ends with the first
    # old one, so page 4 is never fetched.
    assert len(pages) == 3
    assert [p.query.get("per_page") for p in pages] == ["2"] * 3
    assert "cursor" not in pages[0].query
    assert all(p.query["cursor"].startswith("v1_") for p in pages[1:])


async def test_a_failed_redelivery_request_releases_the_claim(env: Env) -> None:
    env.log.webhook_url = env.down_url
    lost = await env.send(2)
    env.log.webhook_url = env.up_url
    env.gh.fail_next(method="POST", path_regex=r"/attempts$", status=422)

    first = await env.reconcile()
    assert first.redelivered == [] and first.already_requested == []
    [error] = first.errors
    assert error.guid == lost.guid and error.delivery_id == lost.id and "422" in error.message
    assert f"{lost.guid}: " in format_report(first)

    second = await env.reconcile()
    assert [r.guid for r in second.redelivered] == [lost.guid] and second.errors == []
    await env.settle()
    assert len(env.stickies(2)) == 1


async def test_an_ambiguous_failure_is_left_to_the_next_pass_which_sees_it_landed(
    env: Env,
) -> None:
    env.log.webhook_url = env.down_url
    lost = await env.send(2)
    env.log.webhook_url = env.up_url
    env.log.act_then_fail = 1  # GitHub redelivers, but its answer is a 502

    first = await env.reconcile()
    # Whether our GitHub client retries the POST is its business; either way the guid was
    # not asked for twice blindly by this pass's own logic.
    assert [r.guid for r in first.redelivered] + [e.guid for e in first.errors] == [lost.guid]
    await env.settle()
    assert await env.stack.store.known_deliveries([lost.guid]) == {lost.guid}

    second = await env.reconcile()
    assert second.redelivered == [] and second.errors == []
    assert lost.guid not in second.failed_guids  # the redelivery's 2xx is in the log
    assert len(env.stickies(2)) == 1


async def test_an_ambiguous_failure_releases_the_claim_so_a_later_pass_asks_again(
    env: Env,
) -> None:
    env.log.webhook_url = env.down_url
    lost = await env.send(2)
    env.log.act_then_fail = 1  # GitHub redelivers (to a server still down) and answers 502

    first = await env.reconcile()
    await env.log.drain()
    env.log.webhook_url = env.up_url
    second = await env.reconcile()

    if first.errors:  # the client did not repeat the POST: the claim must have been released
        assert [e.guid for e in first.errors] == [lost.guid] and first.redelivered == []
        assert [r.guid for r in second.redelivered] == [lost.guid]
    else:  # the client repeated it and GitHub accepted: that counts as asked
        assert [r.guid for r in first.redelivered] == [lost.guid]
        assert second.already_requested == [lost.guid]
    await env.settle()
    assert len(env.stickies(2)) == (1 if first.errors else 0)


async def test_a_listing_error_is_reported_not_raised(env: Env) -> None:
    env.gh.fail_next(method="GET", path_regex=r"/app/hook/deliveries$", status=404)
    report = await env.reconcile()
    assert report.listed == 0 and report.redelivered == []
    [error] = report.errors
    assert error.guid is None and error.message.startswith("listing deliveries: ")


async def test_the_fake_log_answers_as_github_documents(env: Env) -> None:
    delivered = await env.send(1)
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {env.app.jwt()}"}
        url = f"{env.gh.url}/app/hook/deliveries/{delivered.id}"
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            full = await resp.json()
        token = env.gh.mint_token(1).token
        async with session.get(url, headers={"Authorization": f"token {token}"}) as resp:
            assert resp.status == 401  # App endpoints take the JWT only
    assert full["guid"] == delivered.guid and full["request"]["payload"] == opened(1)
    sent = full["request"]["headers"]
    assert sent["X-Hub-Signature-256"] == sign(delivered.body, WEBHOOK_SECRET)
    assert sent["X-GitHub-Event"] == "issues" and sent["X-GitHub-Delivery"] == delivered.guid
    datetime.strptime(full["delivered_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert isinstance(full["response"]["payload"], str)
    # Past GitHub's retention the log forgets it.
    env.log.attempts[0].delivered_at -= fakegithub_hooks.RETENTION + timedelta(seconds=1)
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        assert resp.status == 404
    report = await env.reconcile(since_seconds=GITHUB_DELIVERY_RETENTION_SECONDS)
    assert report.listed == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("3d", 259200.0), (" 1.5H ", 5400.0)],
)
def test_parse_since_accepts_a_number_and_a_unit(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a duration"),
        ("2", "is not a duration"),
        ("h", "is not a duration"),
        ("2w", "is not a duration"),
        ("-1h", "is not a duration"),
        ("1h30m", "is not a duration"),
        ("0m", "longer than 0"),
        ("4d", "GitHub keeps webhook deliveries for 3 days"),
        ("73h", "GitHub keeps webhook deliveries for 3 days"),
    ],
)
def test_parse_since_rejects_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_since(text)
    assert "\n" not in str(info.value)


def test_format_report_is_one_line_per_fact() -> None:
    report = RedeliveryReport(
        since=datetime(2026, 12, 3, 8, tzinfo=UTC).timestamp(),
        listed=1,
        failed_guids=["g-stored", "g-asked", "g-new", "g-bad"],
        already_stored=["g-stored"],
        already_requested=["g-asked"],
        redelivered=[Redelivered("g-new", "issue_comment", "created", 17)],
        errors=[
            RedeliveryError("g-bad", "HTTP 422: Validation Failed", 18),
            RedeliveryError(None, "listing deliveries: HTTP 502: Server Error"),
        ],
    )
    assert format_report(report).splitlines() == [
        "1 delivery attempt since 2026-12-03T08:00:00Z; 4 deliveries without a successful attempt",
        "  already stored, nothing to do: 1",
        "  already requested by another pass: 1",
        "    g-asked",
        "  redelivered: 1",
        "    g-new  issue_comment.created  (attempt 17)",
        "  errors: 2",
        "    g-bad: HTTP 422: Validation Failed",
        "    listing deliveries: HTTP 502: Server Error",
    ]


async def test_a_worker_process_redelivers_what_was_missed_on_its_own(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    """`serve` with workers runs the pass itself: shortly after start-up, then every interval."""
    async with contextlib.AsyncExitStack() as exits:
        gh = await exits.enter_async_context(running_fake())
        gh.add_repo(REPO, installation_id=1, labels=["bug"], collaborators={"Codertocat": "admin"})
        for n in (1, 2):
            gh.add_issue(REPO, number=n, title=f"Crash number {n}", user="Codertocat")
        fake_model.script("triage", triage_answer("bug", summary="Reads as a crash"))
        log = hooks(gh, secret=WEBHOOK_SECRET, webhook_url=closed_port_url())
        # While no loopwright runs, two deliveries fail.
        missed = [await log.send("issues", opened(n)) for n in (1, 2)]
        assert {a.status_code for a in missed} == {502}
        settings = make_settings(gh, fake_model, tmp_path / "data", redeliver_interval_seconds=0.3)
        stack = await serve(exits, gh, fake_model, settings, REPO)
        log.webhook_url = f"{stack.url}/webhook"
        for _ in range(400):
            await log.drain()
            if await stack.store.known_deliveries([a.guid for a in missed]) == {
                a.guid for a in missed
            }:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker process never redelivered the missed deliveries")
        await stack.settle()
        for n in (1, 2):
            issue = gh.repo(REPO).issues[n]
            assert len([c for c in issue.comments if c.user_login == "loopwright[bot]"]) == 1
        # Later passes (every 0.3 s) ask for nothing more.
        await asyncio.sleep(1.0)
        assert len(gh.requests_for(REDELIVER_OP)) == 2
        assert len(gh.requests_for(LIST_OP)) >= 2
        gh.assert_no_violations()


async def test_a_claim_whose_process_died_before_posting_is_taken_over_later(env: Env) -> None:
    import time

    env.log.webhook_url = env.down_url
    lost = await env.send(2)
    failed_again = await env.send(3)
    # A pass asked for both while the target was still down: both redeliveries failed too ...
    first = await env.reconcile()
    assert sorted(r.guid for r in first.redelivered) == sorted([lost.guid, failed_again.guid])
    await env.log.drain()
    env.log.webhook_url = env.up_url
    # ... but make #2 look as if its claim's process had died before the POST: drop the
    # redelivery GitHub made of it from the log.
    env.log.attempts[:] = [
        a for a in env.log.attempts if not (a.guid == lost.guid and a.redelivery)
    ]
    soon = await env.reconcile()
    assert soon.redelivered == [], "a fresh claim is left to its owner"
    later = await env.reconcile(now=time.time() + 600)
    assert [r.guid for r in later.redelivered] == [lost.guid]
    assert failed_again.guid in later.already_requested, "a redelivery that failed is kept"
    await env.settle()
    assert len(env.stickies(2)) == 1
    again = await env.reconcile(now=time.time() + 700)
    assert again.redelivered == []
