"""The end-to-end harness shared by the loop tests: loopwright served over HTTP with its workers,
a FakeGitHub, the scripted model, and a client that delivers signed webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import build_app
from bot.server import STORE
from bot.settings import Settings, load_settings
from bot.store import Store
from tests.support.fakegithub import FakeGitHub, running_fake
from tests.support.fakemodel import FakeModel
from tests.support.webhooks import WEBHOOK_SECRET, delivery_headers


@dataclass
class Stack:
    gh: FakeGitHub
    model: FakeModel
    url: str
    store: Store
    session: aiohttp.ClientSession
    repo: str

    async def deliver(
        self,
        event: str,
        data: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        secret: str = WEBHOOK_SECRET,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        h = delivery_headers(event, body, delivery=delivery, secret=secret)
        h.update(headers or {})
        async with self.session.post(f"{self.url}/webhook", data=body, headers=h) as resp:
            return resp.status, await resp.json()

    async def settle(self, timeout: float = 120) -> None:
        """Wait until no job is queued or running (a retry's backoff counts as queued)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = await self.store.job_counts()
            if not counts.get("queued") and not counts.get("running"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"jobs did not settle: {await self.store.job_counts()}")

    def issue(self, number: int = 1) -> Any:
        return self.gh.repo(self.repo).issues[number]


def make_settings(gh: FakeGitHub, model: FakeModel, tmp: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "app_id": gh.app_id,
        "private_key": gh.private_key_pem,
        "webhook_secret": WEBHOOK_SECRET,
        "github_api_url": gh.url,
        "git_base_url": gh.url,
        "data_dir": tmp,
        "model_base_url": model.url,
        "model_api_key": "sk-test-" + "k" * 24,
        "model_triage": "scripted-small",
        "job_backoff_seconds": 0.1,
        "github_max_wait_seconds": 5,
        "prices": {"scripted-small": {"prompt": 0.5, "completion": 1.5}},
        # The periodic redelivery pass is tested on its own (tests/test_redeliver.py).
        "redeliver_interval_seconds": 0,
    }
    values.update(extra)
    return load_settings(**values)


async def serve(
    stack: contextlib.AsyncExitStack,
    gh: FakeGitHub,
    model: FakeModel,
    settings: Settings,
    repo: str,
    *,
    workers: int = 2,
) -> Stack:
    """`loopwright serve` with `workers`, torn down by `stack` (workers before the FakeGitHub
    when the FakeGitHub was entered first)."""
    runner = web.AppRunner(build_app(settings, workers=workers), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    session = await stack.enter_async_context(aiohttp.ClientSession())
    return Stack(gh, model, f"http://127.0.0.1:{port}", runner.app[STORE], session, repo)


async def serve_repo(
    stack: contextlib.AsyncExitStack,
    base: Path,
    model: FakeModel,
    repo: str,
    files: dict[str, str | bytes | None],
    *,
    collaborators: dict[str, str],
    sandbox_user: str | None,
) -> Stack:
    """A FakeGitHub (git served from `base/git`) with one git-backed repository on
    installation 1, and loopwright serving it with the scripted `patch` and `summarize`
    models: what the CI and dependency loop tests (and their token benchmark) run against."""
    gh = await stack.enter_async_context(running_fake(git_root=base / "git"))
    gh.add_repo(repo, installation_id=1, files=files, collaborators=collaborators, git=True)
    settings = make_settings(
        gh,
        model,
        base / "data",
        model_patch="scripted-small",
        model_summarize="scripted-small",
        github_max_wait_seconds=2,
        sandbox_user=sandbox_user,
    )
    return await serve(stack, gh, model, settings, repo)
