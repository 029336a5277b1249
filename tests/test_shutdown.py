"""Graceful shutdown of real `loopwright worker` and `loopwright serve` processes: SIGTERM hands
the running job back to the queue with its attempt refunded (another worker finishes it long
before the lease would lapse), and `serve` answers the request it is in the middle of."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import db as dbmod
from bot.store import JobSpec, Store
from tests.support.fakegithub import FakeGitHub, running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.webhooks import WEBHOOK_SECRET, delivery_headers, payload

REPO = "Codertocat/Hello-World"
ROOT = Path(__file__).resolve().parents[1]


def _env(gh: FakeGitHub, model: FakeModel, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env.update(
        {
            "LOOPWRIGHT_APP_ID": str(gh.app_id),
            "LOOPWRIGHT_PRIVATE_KEY": gh.private_key_pem,
            "LOOPWRIGHT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LOOPWRIGHT_GITHUB_API_URL": gh.url,
            "LOOPWRIGHT_GIT_BASE_URL": gh.url,
            "LOOPWRIGHT_DATA_DIR": str(tmp / "data"),
            "LOOPWRIGHT_DATABASE_URL": f"sqlite:///{tmp / 'q.db'}",
            "LOOPWRIGHT_MODEL_BASE_URL": model.url,
            "LOOPWRIGHT_MODEL_TRIAGE": "scripted-small",
            "LOOPWRIGHT_SANDBOX": "none",
            # Far longer than the test: a job that resumes did not wait for the lease to lapse.
            "LOOPWRIGHT_JOB_LEASE_SECONDS": "600",
            "LOOPWRIGHT_SHUTDOWN_GRACE_SECONDS": "0.5",
            "LOOPWRIGHT_REDELIVER_INTERVAL_SECONDS": "0",
        }
    )
    env.update(extra)
    return env


async def _spawn(env: dict[str, str], *args: str, log: Path) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", *args, env=env, cwd=ROOT, stdout=out, stderr=out
        )
    finally:
        out.close()


async def _poll(store: Store, sql: str, want: Any, timeout: float = 60) -> Any:
    for _ in range(int(timeout / 0.05)):
        rows = await store.db.fetchall(sql)
        if rows and (want is None or want(rows)):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting: {sql} -> {await store.db.fetchall(sql)}")


@pytest.fixture
async def fake_stack(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[tuple[Any, ...]]:
    async with running_fake() as gh:
        gh.add_repo(REPO, installation_id=1, labels=["bug", "question"], files={})
        gh.add_issue(REPO, number=1, title="Crash on start", body="It crashes.", user="octo")
        database = await dbmod.connect(f"sqlite:///{tmp_path / 'q.db'}")
        store = Store(database)
        await store.init()
        try:
            yield gh, fake_model, store
        finally:
            await database.close()


async def test_sigterm_hands_the_running_job_to_another_worker_without_spending_an_attempt(
    fake_stack: tuple[Any, ...], tmp_path: Path
) -> None:
    gh, model, store = fake_stack
    answer = triage_answer("bug", "low", "none", [], "Crash on start")
    first_call, first_gone = asyncio.Event(), asyncio.Event()

    async def slow_first(request: dict[str, Any]) -> str:
        if not first_call.is_set():
            first_call.set()
            await first_gone.wait()  # the first worker is stopped while it waits for this
        return answer

    model.script("triage", slow_first)
    # The job's only attempt: had the shutdown spent it, the job would be dead.
    await store.enqueue(JobSpec("triage", REPO, 1, 1, {"trigger": "issues.opened"}), max_attempts=1)
    env = _env(gh, model, tmp_path)
    log = tmp_path / "workers.log"
    first = await _spawn(env, "worker", "--concurrency", "1", log=log)
    second: asyncio.subprocess.Process | None = None
    try:
        await asyncio.wait_for(first_call.wait(), 60)
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 30) == 0, log.read_text()
        first_gone.set()
        [job] = await store.list_jobs()
        assert (job["state"], job["attempts"], job["lease_owner"]) == ("queued", 0, None)
        [run] = await store.list_runs()
        assert (run["state"], run["exit_reason"]) == ("interrupted", "shutdown")

        second = await _spawn(env, "worker", "--concurrency", "1", log=log)
        await _poll(store, "SELECT state FROM jobs", lambda r: r[0]["state"] == "done")
        [job] = await store.list_jobs()
        assert job["attempts"] == 1, "the shutdown must not have spent an attempt"
        stickies = [c for c in gh.repo(REPO).issues[1].comments if "loopwright:sticky" in c.body]
        assert len(stickies) == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_answers_the_request_in_flight_before_it_exits(
    fake_stack: tuple[Any, ...], tmp_path: Path
) -> None:
    gh, model, store = fake_stack
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = await _spawn(
        _env(gh, model, tmp_path), "serve", "--workers", "0", "--port", str(port), log=log
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"serve did not start:\n{log.read_text()}")
            data = payload("issues/opened.15", installation={"id": 1})
            body = json.dumps(data).encode()
            headers = delivery_headers("issues", body, delivery="in-flight-1")
            # Hold the database's write lock, so the request is in the middle of its commit
            # (a slow disk, a busy database) when SIGTERM arrives.
            blocker = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                post = asyncio.create_task(
                    session.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers)
                )
                await asyncio.sleep(0.5)
                assert not post.done()
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(1.0)
                assert proc.returncode is None, "serve must wait for the request in flight"
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            resp = await asyncio.wait_for(post, 30)
            assert resp.status == 202, await resp.text()
            resp.release()
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
        assert await store.known_deliveries(["in-flight-1"]) == {"in-flight-1"}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
