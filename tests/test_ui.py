"""The dashboard (`/ui`) against the FakeGitHub's OAuth web flow and a real store: who signs in
sees only the repositories they can write to; nothing shows before signing in; what is shown is
redacted; the queue's retry needs the session's form token. The last test drives Debian's
chromium through the same flow and saves a screenshot of a run's page under docs/."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import db as dbmod
from bot.settings import load_settings
from bot.store import JobSpec, StepRecord, Store
from bot.ui import setup_ui
from tests.support.fakegithub import FakeGitHub, running_fake

TOKEN_LIKE = "ghp_" + "a1B2c3D4e5" * 4  # what a model could echo back: must never show
SECRET_TEXT = "TOP-SECRET-PROMPT of acme/secret"
DIFF = "--- a/widgets/core.py\n+++ b/widgets/core.py\n@@ -1 +1 @@\n-return a - b\n+return a + b\n"


@dataclass
class Stack:
    fake: FakeGitHub
    store: Store
    url: str
    runs: dict[str, int]
    jobs: dict[str, int]


async def _seed(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    runs: dict[str, int] = {}
    run = await store.start_run(None, "fix", "acme/widgets", 7)
    for step in (
        StepRecord(name="reproduce", kind="deterministic", verdict="ok", output="test fails"),
        StepRecord(
            name="patch",
            kind="model",
            verdict="valid",
            model="small-model",
            input="fix the subtraction",
            output=f"the model echoed {TOKEN_LIKE}",
            prompt_tokens=1200,
            completion_tokens=300,
            cost=0.0123,
        ),
        StepRecord(
            name="attempt 1",
            kind="deterministic",
            verdict="reverted",
            input="broke test_other: expected 3",
            output="score: 0.5",
        ),
        StepRecord(name="attempt 2", kind="deterministic", verdict="kept", input="all pass"),
        StepRecord(
            name="retest",
            kind="deterministic",
            verdict="fixed",
            output="| test | base | head |\n|---|---|---|\n| test_add | fail | pass |",
        ),
        StepRecord(name="diff", kind="deterministic", verdict="kept", output=DIFF),
    ):
        await store.record_step(run, step)
    await store.finish_run(run, "done", "fixed", "draft PR #8")
    runs["widgets"] = run
    secret = await store.start_run(None, "triage", "acme/secret", 1)
    await store.record_step(
        secret, StepRecord(name="triage", kind="model", verdict="valid", input=SECRET_TEXT)
    )
    await store.finish_run(secret, "done", "done")
    runs["secret"] = secret
    jobs: dict[str, int] = {}
    for repo in ("acme/widgets", "acme/secret"):
        spec = JobSpec(kind="fix", repo=repo, installation_id=1, number=9, payload={})
        await store.record_delivery(f"d-{repo}", "issues", "labeled", repo, [spec], max_attempts=1)
        job = await store.lease("w1", 60)
        assert job is not None
        await store.fail(job, f"boom in {repo}", backoff_seconds=1)
        jobs[repo] = job.id
    return runs, jobs


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_fake() as fake:
        fake.add_repo("acme/widgets", installation_id=1, collaborators={"alice": "write"})
        fake.add_repo(
            "acme/secret", installation_id=1, collaborators={"carol": "admin", "alice": "read"}
        )
        database = await dbmod.connect(f"sqlite:///{tmp_path / 'ui.db'}")
        store = Store(database)
        await store.init()
        runs, jobs = await _seed(store)
        settings = load_settings(
            github_client_id=fake.oauth_client_id,
            github_client_secret=fake.oauth_client_secret,
            git_base_url=fake.url,
            github_api_url=fake.url,
            data_dir=tmp_path,
        )
        app = web.Application()
        setup_ui(app, settings, lambda: store)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield Stack(fake, store, f"http://127.0.0.1:{port}", runs, jobs)
        finally:
            await runner.cleanup()
            await database.close()
        fake.assert_no_violations()


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _sign_in(http: aiohttp.ClientSession, stack: Stack, login: str) -> str:
    """The OAuth web flow as a browser walks it; returns the dashboard's first page."""
    async with http.get(f"{stack.url}/ui/login", allow_redirects=False) as r:
        assert r.status == 302
        authorize = r.headers["Location"]
    assert authorize.startswith(f"{stack.fake.url}/login/oauth/authorize?")
    async with http.get(authorize) as r:
        page = await r.text()
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
    fields["login"] = login
    async with http.post(f"{stack.fake.url}/login/oauth/authorize", data=fields) as r:
        assert r.status == 200, await r.text()
        return await r.text()


async def test_nothing_shows_before_signing_in(stack: Stack) -> None:
    async with _client() as http:
        for path in ("/ui/", f"/ui/runs/{stack.runs['widgets']}", "/ui/queue", "/ui/spend"):
            async with http.get(stack.url + path) as r:
                body = await r.text()
            assert r.status == 200 and "Sign in with GitHub" in body, path
            assert "acme/" not in body and "boom" not in body and "a + b" not in body, path
        async with http.post(f"{stack.url}/ui/jobs/{stack.jobs['acme/widgets']}/retry") as r:
            assert "Sign in with GitHub" in await r.text()
    job = await stack.store.get_job(stack.jobs["acme/widgets"])
    assert job is not None and job["state"] == "dead"


async def test_a_writer_sees_their_repository_and_nothing_else(stack: Stack) -> None:
    async with _client() as http:
        first = await _sign_in(http, stack, "alice")
        assert "acme/widgets#7" in first and "acme/secret" not in first
        assert stack.fake.user_tokens  # the exchange really happened
        async with http.get(f"{stack.url}/ui/runs/{stack.runs['widgets']}") as r:
            page = await r.text()
        assert r.status == 200
        assert "a + b" in page  # the diff it kept
        assert "broke test_other: expected 3" in page and "reverted" in page
        assert "test_add | fail | pass" in page
        assert TOKEN_LIKE not in page and "[REDACTED]" in page
        # alice can only read acme/secret: its run is "not found", like one that does not exist
        async with http.get(f"{stack.url}/ui/runs/{stack.runs['secret']}") as r:
            assert r.status == 404 and SECRET_TEXT not in await r.text()
        async with http.get(f"{stack.url}/ui/runs/999999") as r:
            assert r.status == 404
        async with http.get(f"{stack.url}/ui/?repo=acme/secret") as r:
            assert "TOP-SECRET" not in await r.text() and "acme/secret#" not in await r.text()
        async with http.get(f"{stack.url}/ui/?loop=triage") as r:
            assert 'id="no-runs"' in await r.text()
        async with http.get(f"{stack.url}/ui/?since=not-a-date") as r:
            assert r.status == 400 and "YYYY-MM-DD" in await r.text()
        async with http.get(f"{stack.url}/ui/spend?by=model") as r:
            spend = await r.text()
        assert "small-model" in spend and 'id="spend-chart"' in spend and "<rect" in spend


async def test_the_queue_and_its_retry_need_write_access_and_the_form_token(stack: Stack) -> None:
    mine, theirs = stack.jobs["acme/widgets"], stack.jobs["acme/secret"]
    async with _client() as http:
        await _sign_in(http, stack, "alice")
        async with http.get(f"{stack.url}/ui/queue") as r:
            page = await r.text()
        assert "boom in acme/widgets" in page and "boom in acme/secret" not in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        url = f"{stack.url}/ui/jobs/{mine}/retry"
        async with http.post(url, data={"csrf": "forged"}) as r:
            assert r.status == 403
        async with http.post(f"{stack.url}/ui/jobs/{theirs}/retry", data={"csrf": csrf[1]}) as r:
            assert r.status == 404
        async with http.post(url, data={"csrf": csrf[1]}, allow_redirects=False) as r:
            assert r.status == 303
    assert (await stack.store.get_job(mine))["state"] == "queued"  # type: ignore[index]
    assert (await stack.store.get_job(theirs))["state"] == "dead"  # type: ignore[index]


async def test_a_user_without_write_access_sees_no_run(stack: Stack) -> None:
    async with _client() as http:
        first = await _sign_in(http, stack, "mallory")  # no role anywhere
        assert 'id="no-runs"' in first and "acme/" not in first.split("<main>")[1]
        async with http.get(f"{stack.url}/ui/runs/{stack.runs['widgets']}") as r:
            assert r.status == 404
        async with http.get(f"{stack.url}/ui/queue") as r:
            assert "boom" not in await r.text()


async def test_a_forged_or_replayed_sign_in_is_refused(stack: Stack) -> None:
    async with _client() as http:
        async with http.get(f"{stack.url}/ui/callback?code=x&state=y") as r:
            assert r.status == 400  # no state cookie: not a flow this browser started
        await _sign_in(http, stack, "alice")
        assert stack.fake.oauth_log[-1] == "exchange ok"
    async with _client() as http:
        async with http.get(f"{stack.url}/ui/login", allow_redirects=False) as r:
            state = re.search(r"state=([^&]+)", r.headers["Location"])
        assert state is not None
        async with http.get(f"{stack.url}/ui/callback?code=used-or-made-up&state={state[1]}") as r:
            assert r.status == 403 and "incorrect or expired" in await r.text()
        async with http.get(f"{stack.url}/ui/") as r:
            assert "Sign in with GitHub" in await r.text()


async def test_without_oauth_credentials_the_dashboard_says_what_to_set(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    app = web.Application()
    setup_ui(app, settings, lambda: None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/ui/"
            async with http.get(url) as r:
                text = await r.text()
        assert r.status == 503 and "LOOPWRIGHT_GITHUB_CLIENT_ID" in text
    finally:
        await runner.cleanup()


# --- in a real browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
#: `LOOPWRIGHT_UI_SCREENSHOT=docs/images/ui-run.png` refreshes the README's screenshot.
SCREENSHOT_ENV = "LOOPWRIGHT_UI_SCREENSHOT"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (make test installs them)",
)
async def test_in_chromium_sign_in_open_a_run_and_see_its_steps_and_diff(
    stack: Stack, tmp_path: Path
) -> None:
    import asyncio
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    def browse() -> dict[str, Any]:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
            options.add_argument(arg)
        service = Service(executable_path=str(CHROMEDRIVER), port=_free_port())
        driver = webdriver.Chrome(options=options, service=service)
        seen: dict[str, Any] = {}
        try:
            driver.get(f"{stack.url}/ui/")
            driver.find_element(By.ID, "sign-in").click()
            driver.find_element(By.ID, "login_field").send_keys("alice")
            driver.find_element(By.ID, "authorize").click()
            seen["runs"] = driver.find_element(By.ID, "runs").text
            driver.find_element(By.LINK_TEXT, f"#{stack.runs['widgets']}").click()
            seen["title"] = driver.find_element(By.ID, "run-title").text
            seen["steps"] = len(driver.find_elements(By.CSS_SELECTOR, "#steps tr.step"))
            seen["diff"] = driver.find_element(By.ID, "diff").text
            seen["shot"] = driver.get_screenshot_as_png()
            driver.get(f"{stack.url}/ui/runs/{stack.runs['secret']}")
            seen["secret"] = driver.page_source
        finally:
            driver.quit()
        return seen

    seen = await asyncio.to_thread(browse)
    assert "acme/widgets#7" in seen["runs"] and "acme/secret" not in seen["runs"]
    assert seen["title"].startswith(f"Run #{stack.runs['widgets']}: fix on acme/widgets#7")
    assert seen["steps"] == 6
    assert "+return a + b" in seen["diff"]
    assert SECRET_TEXT not in seen["secret"] and "no such run" in seen["secret"]
    assert seen["shot"][:8] == b"\x89PNG\r\n\x1a\n"
    shot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "ui-run.png")
    shot.write_bytes(seen["shot"])
