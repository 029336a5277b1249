"""Soak: signed webhook deliveries under GitHub faults while worker and intake processes die.

One FakeGitHub (tests/support/fakegithub/: one installation, one repository, REST only) and
the scripted model (tests/support/fakemodel.py, a valid triage answer after a per-issue delay) run
in this process; `loopwright serve --workers 0` and K `loopwright worker --concurrency C` run as
subprocesses of whichever checkout `--code` names (default: this one), on SQLite or on a fresh
PostgreSQL schema per scenario. Then, for N issues:

- issue n is created on the fake and `issues.opened` for it is delivered (signed); 10 % of those
  deliveries are sent twice with the same X-GitHub-Delivery; for 1 in 8 issues a writer's
  `/loopwright triage` comment is delivered at the same instant (two triage jobs racing for one
  sticky comment);
- faults through the FakeGitHub: 502 on comment creates, 503 on issue reads, 429 with
  Retry-After: 1 on labels, a secondary rate limit (403 + Retry-After: 1) on reactions, and where
  the fake supports it a lost response (the write is applied, the answer never arrives) after a
  comment create;
- at random points a worker gets `kill -9` (restarted at once), a worker with a job in flight
  gets SIGTERM (restarted when it has exited), and the intake gets `kill -9` once (restarted;
  the sender retries what failed meanwhile, like a manual redelivery).

When the queue has settled (no queued or running job), the fake's state is counted: issues with
no sticky comment, no label or no reaction by `loopwright[bot]` (lost outputs), issues with more
than one sticky comment, extra bot comments and repeated reactions (duplicated outputs); from the
`jobs` and `runs` tables: how long after the SIGTERM each interrupted job was leased again by
another worker, the attempts it had before and after, dead jobs. The `scale` scenario delivers N
issues to 1, 2 and 4 workers on PostgreSQL without faults or kills and reports jobs/s.

Goal (issue 12): 0 lost and 0 duplicated outputs in every scenario, an interrupted job leased
again at most 5 s after the SIGTERM, no attempt spent by a shutdown.

    python bench/soak.py [--deliveries 300] [--scale-deliveries 200] [--seed 1]
        [--scenarios sqlite,pg,scale] [--workers 4] [--concurrency 2] [--grace 2] [--lease 10]
        [--rate R] [--model-delay 0.05 0.2] [--code DIR] [--compare DIR] [--keep] [--json]

A SIGTERM goes to a worker whose job is in a model call made slow on purpose (grace + 4 s), so
there is a job to interrupt; the grace is passed as LOOPWRIGHT_SHUTDOWN_GRACE_SECONDS (a checkout
without that setting ignores it), and the workers' own redelivery pass is off (the sender here
redelivers).

`--compare DIR` runs every scenario with this checkout and with DIR's (e.g. a worktree of the
baseline: `git worktree add --detach /tmp/wt-base 540e1c4`) and prints them side by side. The
subprocesses' logs go to a temporary directory, kept (and its path printed) when a scenario
misses the goal or breaks, or with --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fakegithub import FakeGitHub, Fault, running_fake  # noqa: E402
from tests.support.fakemodel import FakeModel, triage_answer  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
REPO = "Codertocat/Hello-World"
INSTALLATION = 1
AUTHOR = "Codertocat"
WRITER = "maint"  # a collaborator with write permission: may give /loopwright commands
LABELS = ["bug", "enhancement", "question", "documentation", "area: parser", "area: cli"]
CONFIG = "triage:\n  create_missing_labels: false\n"
SECRET = "soak-webhook-secret-0123456789"
STICKY = "<!-- loopwright:sticky -->"
PG_URL = os.environ.get("LOOPWRIGHT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
GOAL_REQUEUE_S = 5.0
READY_TIMEOUT = 45.0
SEND_DEADLINE = 90.0  # how long the sender keeps redelivering one delivery
SCALE_WORKERS = (1, 2, 4)

#: (name, fail_next arguments). A lost response is added when the FakeGitHub supports it.
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try."
FAULTS: list[tuple[str, dict[str, Any]]] = [
    (
        "502 comment create",
        {"method": "POST", "path_regex": r"/issues/\d+/comments$", "status": 502},
    ),
    ("503 issue read", {"method": "GET", "path_regex": r"/issues/\d+$", "status": 503}),
    (
        "429 labels, Retry-After 1",
        {
            "method": "POST",
            "path_regex": r"/issues/\d+/labels$",
            "status": 429,
            "headers": {"Retry-After": "1"},
            "body": {"message": "API rate limit exceeded"},
        },
    ),
    (
        "403 secondary limit reactions, Retry-After 1",
        {
            "method": "POST",
            "path_regex": r"/issues/\d+/reactions$",
            "status": 403,
            "headers": {"Retry-After": "1"},
            "body": {"message": SECONDARY},
        },
    ),
]
LOST_RESPONSE = "lost response after comment create"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def owner_pid(lease_owner: str | None) -> int | None:
    """Worker ids are `host:pid:nonce:slot`."""
    parts = (lease_owner or "").split(":")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


def git_rev(path: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip() or "?"


# --- options and code trees -----------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    deliveries: int
    scale_deliveries: int
    seed: int
    workers: int
    concurrency: int
    grace: float
    lease: float
    rate: float | None
    model_delay: tuple[float, float]
    settle_timeout: float
    pg_url: str


@dataclass(frozen=True)
class Tree:
    """Whose `bot.cli` the subprocesses run."""

    label: str
    path: Path

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.label).strip("-")


# --- the databases --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(backend: str, work: Path, pg_url: str) -> AsyncIterator[str]:
    """The database URL for one scenario: a fresh SQLite file, or a fresh PostgreSQL schema
    (created here, dropped at the end)."""
    if backend == "sqlite":
        yield f"sqlite:///{work / 'loopwright.db'}"
        return
    import asyncpg

    schema = f"soak_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_url)
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.close()
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        conn = await asyncpg.connect(pg_url)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


class Probe:
    """Reads the scenario's `jobs` and `runs` tables directly (no loopwright code involved)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None

    async def open(self) -> None:
        if self.url.startswith("postgresql"):
            import asyncpg

            base, _, schema = self.url.partition("?options=-csearch_path%3D")
            self._pool = await asyncpg.create_pool(
                base, min_size=1, max_size=2, server_settings={"search_path": schema}
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def _sqlite(self, sql: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.url[len("sqlite:///") :], timeout=10)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        if self._pool is None:
            return await asyncio.to_thread(self._sqlite, sql)
        async with self._pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql)]

    async def counts(self) -> dict[str, int]:
        try:
            rows = await self.rows("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        except Exception:  # the table is not there yet (the intake creates it)
            return {}
        return {str(r["state"]): int(r["n"]) for r in rows}

    async def running(self) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT id, number, lease_owner, attempts FROM jobs WHERE state='running'"
        )


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    """One `loopwright` subprocess in a process group of its own, output appended to `log`."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_offset: int = 0

    def start(self, env: dict[str, str], cwd: Path) -> None:
        with self.log.open("ab") as f:
            self.log_offset = f.tell()
            f.write(f"--- bench: start #{self.starts + 1} at {time.time():.3f}\n".encode())
            f.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else -1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    async def wait_exit(self, timeout: float) -> float | None:
        """Seconds until it exited, or None if it is still running after `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.alive():
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        return None

    def kill(self) -> None:
        if self.popen is None:
            return
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def log_since_start(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def cpu_seconds(self) -> float:
        """User + system CPU of the live process, from /proc (0 where unavailable)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0


class Cluster:
    """`serve --workers 0` on a fixed port and K `worker` processes of one code tree."""

    def __init__(
        self, tree: Tree, work: Path, env: dict[str, str], workers: int, concurrency: int
    ) -> None:
        self.tree = tree
        self.env = env
        self.port = free_port()
        py = [sys.executable, "-m", "bot.cli"]
        self.serve = Proc(
            "serve",
            [*py, "serve", "--workers", "0", "--host", "127.0.0.1", "--port", str(self.port)],
            work / "serve.log",
        )
        self.workers = [
            Proc(
                f"worker-{i}",
                [*py, "worker", "--concurrency", str(concurrency)],
                work / f"worker-{i}.log",
            )
            for i in range(workers)
        ]
        #: Processes the bench took down on purpose and has not restarted yet.
        self.down: set[str] = set()
        self.unexpected: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def procs(self) -> list[Proc]:
        return [self.serve, *self.workers]

    def kill_all(self) -> None:
        for p in self.procs():
            p.kill()

    async def start_serve(self, session: aiohttp.ClientSession) -> None:
        self.serve.start(self.env, self.tree.path)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.serve.alive():
                raise RuntimeError(
                    f"serve exited with {self.serve.popen.returncode if self.serve.popen else '?'}:"
                    f"\n{self.serve.log_since_start()[-3000:]}"
                )
            try:
                async with session.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        await resp.read()
                        self.down.discard("serve")
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"serve not healthy after {READY_TIMEOUT:.0f}s")

    def start_worker(self, i: int) -> None:
        self.workers[i].start(self.env, self.tree.path)
        self.down.discard(self.workers[i].name)

    async def wait_workers_ready(self) -> list[str]:
        """Until every worker logged that its workers run (bounded); the ones that did not."""
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(self.workers)
        while pending and time.monotonic() < deadline:
            for w in list(pending):
                if not w.alive():
                    raise RuntimeError(f"{w.name} exited:\n{w.log_since_start()[-3000:]}")
                if "workers running" in w.log_since_start():
                    pending.remove(w)
            await asyncio.sleep(0.1)
        return [w.name for w in pending]

    async def watchdog(self, session: aiohttp.ClientSession) -> None:
        """Restart a process that died without the bench killing it (and note it)."""
        while True:
            await asyncio.sleep(0.5)
            s = self.serve
            if "serve" not in self.down and s.popen is not None and not s.alive():
                self.unexpected.append(
                    f"serve (pid {s.pid}) exited by itself with {s.popen.returncode}"
                )
                log(f"  ! {self.unexpected[-1]}; restarting it")
                await self.start_serve(session)
            for i, w in enumerate(self.workers):
                if w.name not in self.down and w.popen is not None and not w.alive():
                    rc = w.popen.returncode
                    self.unexpected.append(f"{w.name} (pid {w.pid}) exited by itself with {rc}")
                    log(f"  ! {self.unexpected[-1]}; restarting it")
                    self.start_worker(i)


def child_env(
    tree: Tree, gh: FakeGitHub, model: FakeModel, work: Path, db_url: str, opts: Options
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env.update(
        {
            "PYTHONPATH": str(tree.path),
            "PYTHONUNBUFFERED": "1",
            "LOOPWRIGHT_APP_ID": str(gh.app_id),
            "LOOPWRIGHT_PRIVATE_KEY": gh.private_key_pem,
            "LOOPWRIGHT_WEBHOOK_SECRET": SECRET,
            "LOOPWRIGHT_GITHUB_API_URL": gh.url,
            "LOOPWRIGHT_GIT_BASE_URL": gh.url,
            "LOOPWRIGHT_DATA_DIR": str(work / "data"),
            "LOOPWRIGHT_DATABASE_URL": db_url,
            "LOOPWRIGHT_MODEL_BASE_URL": model.url,
            "LOOPWRIGHT_MODEL_API_KEY": "sk-soak-" + "k" * 24,
            "LOOPWRIGHT_MODEL_TRIAGE": "scripted-small",
            "LOOPWRIGHT_JOB_BACKOFF_SECONDS": "0.2",
            "LOOPWRIGHT_JOB_LEASE_SECONDS": str(opts.lease),
            "LOOPWRIGHT_GITHUB_MAX_WAIT_SECONDS": "5",
            "LOOPWRIGHT_SANDBOX": "none",  # triage runs no code
            # Settings a checkout without them ignores:
            "LOOPWRIGHT_SHUTDOWN_GRACE_SECONDS": str(opts.grace),
            "LOOPWRIGHT_REDELIVER_INTERVAL_SECONDS": "0",  # the bench's sender redelivers
        }
    )
    return env


def check_tree(tree: Tree) -> str:
    """Where `bot` is imported from with this tree's PYTHONPATH (must be inside the tree)."""
    env = {**os.environ, "PYTHONPATH": str(tree.path)}
    out = subprocess.run(
        [sys.executable, "-c", "import bot.cli, sys; print(sys.modules['bot'].__file__)"],
        cwd=tree.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    where = out.stdout.strip()
    if out.returncode != 0 or not where.startswith(str(tree.path)):
        raise SystemExit(
            f"{tree.label}: bot.cli does not import from {tree.path}: {where}{out.stderr}"
        )
    return where


# --- the model and the deliveries -----------------------------------------------------------------


class ModelScript:
    """The triage answer, after a delay that is the same for every call about one issue (so two
    jobs for one issue finish their model call together: the race is as tight as it gets).
    Calls that start while `slow_until` is ahead take `slow_s` (a job to interrupt)."""

    def __init__(self, rng: random.Random, delay: tuple[float, float], slow_s: float) -> None:
        self.rng = rng
        self.delay = delay
        self.slow_s = slow_s
        self.delays: dict[int, float] = {}
        self.slow_until = 0.0
        #: issue number -> (call, when that slow call ends (monotonic))
        self.in_slow: dict[int, tuple[int, float]] = {}
        self.calls = 0

    async def __call__(self, body: dict[str, Any]) -> str:
        text = json.dumps(body.get("messages", []))
        m = re.search(r"Soak issue #(\d+)", text)
        number = int(m.group(1)) if m else 0
        self.calls += 1
        token = self.calls
        # A new call about this issue: an earlier slow one lost its client (the fake model
        # sleeps on after a disconnect), so it no longer counts as a job in flight.
        self.in_slow.pop(number, None)
        now = time.monotonic()
        if now < self.slow_until:
            delay = self.slow_s
            self.in_slow[number] = (token, now + delay)
        else:
            delay = self.delays.setdefault(number, self.rng.uniform(*self.delay))
        try:
            await asyncio.sleep(delay)
        finally:
            if self.in_slow.get(number, (0, 0.0))[0] == token:
                del self.in_slow[number]
        return triage_answer("bug", "medium", "area: parser", [], f"Soak issue {number} crashes")


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


OPENED = _fixture("issues/opened.15")
COMMENTED = _fixture("issue_comment/created.0")


def opened_body(number: int, issue_id: int, title: str, text: str) -> bytes:
    data = json.loads(json.dumps(OPENED))
    data["installation"] = {"id": INSTALLATION}
    data["repository"]["full_name"] = REPO
    data["issue"].update({"number": number, "id": issue_id, "title": title, "body": text})
    data["issue"]["user"]["login"] = AUTHOR
    data["sender"]["login"] = AUTHOR
    return json.dumps(data).encode()


def comment_body(number: int, issue_id: int, title: str, comment_id: int) -> bytes:
    data = json.loads(json.dumps(COMMENTED))
    data["installation"] = {"id": INSTALLATION}
    data["repository"]["full_name"] = REPO
    data["issue"].update({"number": number, "id": issue_id, "title": title})
    data["comment"].update({"id": comment_id, "body": "/loopwright triage"})
    data["comment"]["user"]["login"] = WRITER
    data["sender"]["login"] = WRITER
    data["sender"]["type"] = "User"
    return json.dumps(data).encode()


@dataclass
class SendStats:
    deliveries: int = 0  # distinct sends (a duplicate re-send counts as one more)
    accepted: int = 0  # got a 2xx, possibly after retries
    duplicate_answers: int = 0  # 200 {"duplicate": true}
    retried: int = 0  # needed more than one try (serve down, connection dropped)
    failed: int = 0  # never got a 2xx within SEND_DEADLINE
    rejected: int = 0  # a 4xx
    done: int = 0
    accepted_issues: set[int] = field(default_factory=set)
    #: Issues that also got a `/loopwright triage` comment at the same instant.
    racing_issues: set[int] = field(default_factory=set)


class Sender:
    def __init__(self, session: aiohttp.ClientSession, url: str, stats: SendStats) -> None:
        self.session = session
        self.url = url
        self.stats = stats

    async def post(self, event: str, body: bytes, delivery: str, number: int) -> None:
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(body),
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/soak",
        }
        self.stats.deliveries += 1
        deadline = time.monotonic() + SEND_DEADLINE
        tries = 0
        try:
            while True:
                tries += 1
                try:
                    async with self.session.post(
                        f"{self.url}/webhook",
                        data=body,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=10),
                    ) as resp:
                        answer = await resp.read()
                        if 200 <= resp.status < 300:
                            self.stats.accepted += 1
                            self.stats.accepted_issues.add(number)
                            if b'"duplicate": true' in answer or b'"duplicate":true' in answer:
                                self.stats.duplicate_answers += 1
                            return
                        if resp.status < 500:
                            self.stats.rejected += 1
                            log(f"  ! delivery {delivery} rejected: {resp.status} {answer[:200]!r}")
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self.stats.failed += 1
                    return
                await asyncio.sleep(0.5)
        finally:
            if tries > 1:
                self.stats.retried += 1
            self.stats.done += 1


def seed_repo(gh: FakeGitHub) -> None:
    gh.add_repo(
        REPO,
        installation_id=INSTALLATION,
        labels=LABELS,
        files={".github/loopwright.yml": CONFIG},
        collaborators={AUTHOR: "admin", WRITER: "write"},
    )


def supports_lost_response(gh: FakeGitHub) -> bool:
    """Whether this FakeGitHub can apply a write and then lose its answer (`lose_response`)."""
    return callable(getattr(gh, "lose_response", None))


class Faults:
    def __init__(self, gh: FakeGitHub, rng: random.Random, rate: float) -> None:
        self.gh = gh
        self.rng = rng
        self.rate = rate
        self.kinds = list(FAULTS)
        self.lost_supported = supports_lost_response(gh)
        if self.lost_supported:
            self.kinds += [(f"{LOST_RESPONSE} (dropped)", {"mode": "drop"})]
            self.kinds += [(f"{LOST_RESPONSE} (502)", {"mode": "502"})]
        self.injected: dict[str, list[Fault]] = {name: [] for name, _ in self.kinds}

    def maybe_inject(self) -> None:
        if self.rng.random() >= self.rate:
            return
        name, kwargs = self.rng.choice(self.kinds)
        before = list(self.gh.faults)
        if name.startswith(LOST_RESPONSE):
            lose: Callable[..., None] = self.gh.lose_response
            lose(method="POST", path_regex=r"/issues/\d+/comments$", **kwargs)
        else:
            self.gh.fail_next(**kwargs)
        self.injected[name] += [f for f in self.gh.faults if not any(f is b for b in before)]

    def table(self) -> dict[str, list[int]]:
        """name -> [injected, fired] (a fault fires once; an unfired one is still queued)."""
        return {
            name: [len(fs), sum(not any(f is q for q in self.gh.faults) for f in fs)]
            for name, fs in self.injected.items()
        }


# --- outputs --------------------------------------------------------------------------------------


def count_outputs(
    gh: FakeGitHub, expected: Iterable[int], racing: Iterable[int] = ()
) -> dict[str, Any]:
    repo = gh.repo(REPO)
    bot = gh.bot_login
    lost: Counter[str] = Counter()
    dup: Counter[str] = Counter()
    lost_issues: dict[str, list[int]] = {"sticky": [], "label": [], "reaction": []}
    racing_set = set(racing)
    dup_issues: list[int] = []
    for n in sorted(expected):
        issue = repo.issues[n]
        ours = [c for c in issue.comments if c.user_login == bot]
        sticky = [c for c in ours if STICKY in c.body]
        reactions = [content for user, content in issue.reactions if user == bot]
        if not sticky:
            lost["sticky"] += 1
            lost_issues["sticky"].append(n)
        if not issue.labels:
            lost["label"] += 1
            lost_issues["label"].append(n)
        if not reactions:
            lost["reaction"] += 1
            lost_issues["reaction"].append(n)
        if len(sticky) > 1:
            dup["sticky_issues"] += 1
            dup["sticky_issues_racing"] += n in racing_set
            dup_issues.append(n)
        dup["bot_comments_extra"] += max(0, len(ours) - 1)
        dup["reactions_extra"] += len(reactions) - len(set(reactions))
        for c in issue.comments:  # a reaction on the command comment, if a loop makes one
            theirs = [content for user, content in c.reactions if user == bot]
            dup["reactions_extra"] += len(theirs) - len(set(theirs))
        dup["labels_extra"] += len(issue.labels) - len(set(issue.labels))
    lost_any = sorted(set().union(*map(set, lost_issues.values())))
    return {
        "lost": {**{k: lost[k] for k in ("sticky", "label", "reaction")}, "issues": len(lost_any)},
        "lost_issues": {k: v[:20] for k, v in lost_issues.items()},
        "duplicated": {
            k: dup[k]
            for k in (
                "sticky_issues",
                "sticky_issues_racing",
                "bot_comments_extra",
                "reactions_extra",
                "labels_extra",
            )
        },
        "duplicated_issues": dup_issues[:20],
    }


# --- kills and what they cost ---------------------------------------------------------------------


async def track_requeue(
    probe: Probe, pid: int, t0: float, jobs: dict[int, int], timeout: float
) -> list[dict[str, Any]]:
    """For each job the process `pid` held at `t0` (id -> attempts then): when it was leased
    again by another process and with how many attempts, or that the process finished it
    (drained in the grace), or that it went dead, or that nothing happened within `timeout`.

    Polled every 50 ms: a re-lease is seen as the job running under another process's lease
    (the time is the row's `updated_at`, which the lease sets). A job that was seen leaving the
    process (handed back: queued; or its lease lapsed) and is done before the next poll is
    dated by the first run started after that sighting."""
    out: dict[int, dict[str, Any]] = {}
    pending = dict(jobs)
    left_at: dict[int, float] = {}
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        ids = ",".join(str(i) for i in pending)
        now = time.time()
        rows = await probe.rows(
            "SELECT id, state, lease_owner, lease_expires_at, attempts, updated_at FROM jobs "
            f"WHERE id IN ({ids})"
        )
        for r in rows:
            jid, before, state = int(r["id"]), pending[int(r["id"])], r["state"]
            who = owner_pid(r["lease_owner"])
            res: dict[str, Any] | None = None
            if state == "running" and who is not None and who != pid:
                res = {"how": "re-leased", "delay": float(r["updated_at"]) - t0}
                res["after"] = int(r["attempts"])
            elif state == "running":  # still under the process's lease
                expires = r["lease_expires_at"]
                if expires is not None and float(expires) < now:
                    left_at.setdefault(jid, now)
            elif state in ("done", "dead"):
                if jid in left_at:
                    runs = await probe.rows(
                        f"SELECT MIN(started_at) AS t FROM runs WHERE job_id={jid} "
                        f"AND started_at > {left_at[jid] - 0.01}"
                    )
                    if runs and runs[0]["t"] is not None:
                        res = {"how": "re-leased", "delay": float(runs[0]["t"]) - t0}
                        res["after"] = int(r["attempts"])
                if res is None:
                    res = {"how": "dead" if state == "dead" else "drained"}
            else:  # queued: handed back (or failed); any other state: left the process too
                left_at.setdefault(jid, now)
            if res is not None:
                res.update({"job": jid, "before": before, "state": state})
                out[jid] = res
                del pending[jid]
        await asyncio.sleep(0.05)
    for jid, before in pending.items():
        out[jid] = {"job": jid, "before": before, "how": "not re-leased in time"}
    return list(out.values())


@dataclass
class KillLog:
    sigterm: list[dict[str, Any]] = field(default_factory=list)
    kill9: list[dict[str, Any]] = field(default_factory=list)
    serve: list[dict[str, Any]] = field(default_factory=list)
    trackers: list[asyncio.Task[None]] = field(default_factory=list)


class Killer:
    def __init__(
        self,
        cluster: Cluster,
        probe: Probe,
        script: ModelScript,
        session: aiohttp.ClientSession,
        rng: random.Random,
        opts: Options,
        tag: str,
    ) -> None:
        self.cluster = cluster
        self.probe = probe
        self.script = script
        self.session = session
        self.rng = rng
        self.opts = opts
        self.tag = tag
        self.log = KillLog()

    def _live(self) -> list[int]:
        return [i for i, w in enumerate(self.cluster.workers) if w.alive()]

    async def _busy_worker(self, want_slow: bool, wait: float) -> tuple[int, bool]:
        """A live worker holding a running job (for a SIGTERM: one in a slow model call that
        outlasts the grace, so there is a job to interrupt), and whether it is in one."""
        if want_slow:
            self.script.slow_until = time.monotonic() + wait / 2
        deadline = time.monotonic() + wait
        best: tuple[int, int] | None = None
        try:
            while time.monotonic() < deadline:
                rows = await self.probe.running()
                now = time.monotonic()
                slow = {
                    n
                    for n, (_, end) in self.script.in_slow.items()
                    if end - now > self.opts.grace + 1
                }
                for i in self._live():
                    pid = self.cluster.workers[i].pid
                    held = {
                        int(r["id"]): int(r["attempts"])
                        for r in rows
                        if owner_pid(r["lease_owner"]) == pid
                    }
                    numbers = {
                        int(r["number"] or 0) for r in rows if owner_pid(r["lease_owner"]) == pid
                    }
                    if held and (not want_slow or numbers & slow):
                        return i, bool(numbers & slow)
                    if held and (best is None or len(held) > best[1]):
                        best = (i, len(held))
                await asyncio.sleep(0.05)
        finally:
            self.script.slow_until = 0.0
        if best is not None:
            return best[0], False
        live = self._live()
        return (self.rng.choice(live) if live else 0), False

    async def _held_by(self, pid: int) -> dict[int, int]:
        rows = await self.probe.running()
        return {
            int(r["id"]): int(r["attempts"]) for r in rows if owner_pid(r["lease_owner"]) == pid
        }

    def _track(self, into: dict[str, Any], pid: int, t0: float, jobs: dict[int, int]) -> None:
        timeout = self.opts.lease * 2 + self.opts.grace + 20

        async def run() -> None:
            into["jobs"] = await track_requeue(self.probe, pid, t0, jobs, timeout)

        self.log.trackers.append(asyncio.create_task(run()))

    async def sigterm(self, t_rel: float) -> None:
        i, slow = await self._busy_worker(want_slow=True, wait=4.0)
        w = self.cluster.workers[i]
        pid = w.pid
        held = await self._held_by(pid)
        self.cluster.down.add(w.name)
        t0 = time.time()
        w.signal(signal.SIGTERM)
        rec: dict[str, Any] = {
            "at": round(t_rel, 1),
            "worker": w.name,
            "pid": pid,
            "held": len(held),
            "slow_call": slow,
        }
        self._track(rec, pid, t0, held)
        log(
            f"  [{self.tag}] SIGTERM {w.name} (pid {pid}) holding {len(held)} job(s)"
            + (", one in a slow model call" if slow else "")
        )
        exited = await w.wait_exit(self.opts.grace + 15)
        if exited is None:
            rec["exit_s"] = None
            log(
                f"  ! [{self.tag}] {w.name} still running {self.opts.grace + 15:.0f}s after "
                "SIGTERM: kill -9"
            )
            w.kill()
        else:
            rec["exit_s"] = round(exited, 2)
        self.log.sigterm.append(rec)
        self.cluster.start_worker(i)

    async def kill9(self, t_rel: float) -> None:
        i, _ = await self._busy_worker(want_slow=False, wait=2.0)
        w = self.cluster.workers[i]
        pid = w.pid
        held = await self._held_by(pid)
        self.cluster.down.add(w.name)
        t0 = time.time()
        w.signal(signal.SIGKILL)
        rec: dict[str, Any] = {
            "at": round(t_rel, 1),
            "worker": w.name,
            "pid": pid,
            "held": len(held),
        }
        self._track(rec, pid, t0, held)
        log(f"  [{self.tag}] kill -9 {w.name} (pid {pid}) holding {len(held)} job(s)")
        await w.wait_exit(5)
        self.log.kill9.append(rec)
        await asyncio.sleep(0.5)
        self.cluster.start_worker(i)

    async def kill_serve(self, t_rel: float) -> None:
        s = self.cluster.serve
        self.cluster.down.add("serve")
        t0 = time.monotonic()
        s.signal(signal.SIGKILL)
        await s.wait_exit(5)
        log(f"  [{self.tag}] kill -9 serve (pid {s.pid}); restarting it")
        await asyncio.sleep(self.rng.uniform(1.0, 2.0))
        await self.cluster.start_serve(self.session)
        self.log.serve.append({"at": round(t_rel, 1), "down_s": round(time.monotonic() - t0, 2)})

    async def run(self, schedule: list[tuple[float, str]], started: float) -> None:
        actions: dict[str, Callable[[float], Any]] = {
            "sigterm": self.sigterm,
            "kill9": self.kill9,
            "serve": self.kill_serve,
        }
        for at, kind in schedule:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            await actions[kind](time.monotonic() - started)

    async def finish(self) -> None:
        await asyncio.gather(*self.log.trackers)


def kill_schedule(rng: random.Random, n: int, span: float) -> list[tuple[float, str]]:
    kinds = ["sigterm"] * max(2, n // 75) + ["kill9"] * max(1, n // 150) + ["serve"]
    rng.shuffle(kinds)
    # Spread over the first 85 % of the delivery phase, one slot each.
    slot = 0.8 * span / len(kinds)
    return [
        (0.05 * span + slot * (k + rng.uniform(0.1, 0.6)), kind) for k, kind in enumerate(kinds)
    ]


def summarise_requeue(events: list[dict[str, Any]]) -> dict[str, Any]:
    jobs = [j for e in events for j in e.get("jobs", [])]
    re_leased = [j for j in jobs if j["how"].startswith("re-leased")]
    delays = [j["delay"] for j in re_leased]
    spent = [j["after"] - j["before"] for j in re_leased]
    return {
        "signals": len(events),
        "slow_targets": sum(bool(e.get("slow_call")) for e in events),
        "held": sum(e["held"] for e in events),
        "interrupted": len(re_leased)
        + sum(j["how"] in ("dead", "not re-leased in time") for j in jobs),
        "re_leased": len(re_leased),
        "drained": sum(j["how"] == "drained" for j in jobs),
        "dead": sum(j["how"] == "dead" for j in jobs),
        "never": sum(j["how"] == "not re-leased in time" for j in jobs),
        "delay_median": statistics.median(delays) if delays else None,
        "delay_max": max(delays) if delays else None,
        "attempts_spent": sum(spent),
        "jobs_spending": sum(s > 0 for s in spent),
        "exit_max": max((e["exit_s"] for e in events if e.get("exit_s") is not None), default=None),
        "events": events,
    }


# --- scenarios ------------------------------------------------------------------------------------


async def progress(tag: str, started: float, probe: Probe, stats: SendStats, total: int) -> None:
    while True:
        await asyncio.sleep(5)
        c = await probe.counts()
        log(
            f"  [{tag}] {time.monotonic() - started:5.0f}s sent {stats.done}/{total} "
            f"jobs {' '.join(f'{k} {v}' for k, v in sorted(c.items())) or '-'}"
        )


async def settle(probe: Probe, timeout: float) -> tuple[bool, float]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        c = await probe.counts()
        if c and not c.get("queued") and not c.get("running"):
            return True, time.monotonic() - start
        await asyncio.sleep(0.1)
    return False, time.monotonic() - start


async def dead_jobs(probe: Probe) -> list[dict[str, Any]]:
    rows = await probe.rows(
        "SELECT id, kind, number, attempts, last_error FROM jobs WHERE state='dead' ORDER BY id"
    )
    return [
        {
            **r,
            "last_error": (r["last_error"] or "").splitlines()[0][:200] if r["last_error"] else "",
        }
        for r in rows
    ]


async def run_soak(
    tree: Tree, backend: str, opts: Options, root: Path, session: aiohttp.ClientSession
) -> dict[str, Any]:
    tag = f"{tree.label} {backend}"
    work = root / f"{tree.slug}-{backend}"
    work.mkdir(parents=True)
    rng = random.Random(opts.seed)
    n = opts.deliveries
    schedule_rng = random.Random(opts.seed * 7919 + 1)
    n_events = max(2, n // 75) + max(1, n // 150) + 1
    rate = opts.rate or max(1.0, min(8.0, n / (5.0 * n_events)))
    span = n / rate
    schedule = kill_schedule(schedule_rng, n, span)
    result: dict[str, Any] = {"code": tree.label, "scenario": backend, "log_dir": str(work)}
    started = time.monotonic()
    log(
        f"[{tag}] {n} issues at {rate:.1f}/s, {opts.workers} workers x {opts.concurrency}, "
        f"events {[(round(t, 1), k) for t, k in schedule]}"
    )
    async with contextlib.AsyncExitStack() as stack:
        db_url = await stack.enter_async_context(database(backend, work, opts.pg_url))
        gh = await stack.enter_async_context(running_fake())
        seed_repo(gh)
        script = ModelScript(random.Random(opts.seed + 1), opts.model_delay, opts.grace + 4.0)
        model = FakeModel()
        model.script("triage", script)
        await model.start()
        stack.push_async_callback(model.close)
        cluster = Cluster(
            tree,
            work,
            child_env(tree, gh, model, work, db_url, opts),
            opts.workers,
            opts.concurrency,
        )
        stack.callback(cluster.kill_all)
        probe = Probe(db_url)
        await probe.open()
        stack.push_async_callback(probe.close)
        await cluster.start_serve(session)
        for i in range(opts.workers):
            cluster.start_worker(i)
        slow_start = await cluster.wait_workers_ready()
        if slow_start:
            log(f"  ! [{tag}] no 'workers running' line from {slow_start}; going on")

        faults = Faults(gh, rng, rate=0.4)
        if not faults.lost_supported:
            result["note"] = (
                "the FakeGitHub has no lost-response fault (lose_response): "
                "that fault kind was skipped"
            )
        stats = SendStats()
        sender = Sender(session, cluster.url, stats)
        killer = Killer(cluster, probe, script, session, schedule_rng, opts, tag)
        t_deliver = time.monotonic()
        kills = asyncio.create_task(killer.run(schedule, t_deliver))
        sends: list[asyncio.Task[None]] = []
        helpers = [
            asyncio.create_task(cluster.watchdog(session)),
            asyncio.create_task(progress(tag, started, probe, stats, n)),
        ]
        try:
            for k in range(n):
                await asyncio.sleep(max(0.0, t_deliver + k / rate - time.monotonic()))
                sends.append(asyncio.create_task(deliver_issue(gh, sender, rng, k + 1, faults)))
            await asyncio.gather(*sends)
            await kills
            ok, settle_s = await settle(probe, opts.settle_timeout)
            await killer.finish()
        finally:
            # On the way out after an error too: nothing of this scenario may outlive it.
            background = [*helpers, kills, *sends, *killer.log.trackers]
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        counts = await probe.counts()
        result.update(
            {
                "settled": ok,
                "settle_s": round(settle_s, 1),
                "elapsed_s": round(time.monotonic() - started, 1),
                "deliveries": {
                    "issues": n,
                    "sent": stats.deliveries,
                    "accepted": stats.accepted,
                    "duplicate_answers": stats.duplicate_answers,
                    "retried": stats.retried,
                    "failed": stats.failed,
                    "rejected": stats.rejected,
                    "issues_accepted": len(stats.accepted_issues),
                },
                **count_outputs(gh, stats.accepted_issues, stats.racing_issues),
                "racing_issues": len(stats.racing_issues),
                "faults": faults.table(),
                "sigterm": summarise_requeue(killer.log.sigterm),
                "kill9": summarise_requeue(killer.log.kill9),
                "serve_kills": killer.log.serve,
                "jobs": counts,
                "dead": await dead_jobs(probe),
                "unexpected_exits": cluster.unexpected,
                "model_calls": script.calls,
                "github_requests": len(gh.requests),
                "violations": gh.violations[:10],
            }
        )
    result["goal"] = goal_misses(result)
    verdict = "goal met" if not result["goal"] else "MISSED: " + "; ".join(result["goal"])
    log(f"[{tag}] done in {result['elapsed_s']:.0f}s: {verdict}")
    return result


async def deliver_issue(
    gh: FakeGitHub, sender: Sender, rng: random.Random, number: int, faults: Faults
) -> None:
    title = f"Soak issue #{number}: crash on start"
    issue = gh.add_issue(REPO, number=number, title=title, body="It crashes on start.", user=AUTHOR)
    faults.maybe_inject()
    body = opened_body(number, issue.id, title, "It crashes on start.")
    delivery = str(uuid.UUID(int=rng.getrandbits(128)))
    sends = [sender.post("issues", body, delivery, number)]
    if rng.random() < 1 / 8:
        sender.stats.racing_issues.add(number)
        comment = gh.add_comment(REPO, number, "/loopwright triage", user=WRITER)
        cbody = comment_body(number, issue.id, title, comment.id)
        sends.append(
            sender.post("issue_comment", cbody, str(uuid.UUID(int=rng.getrandbits(128))), number)
        )
    twice = rng.random() < 0.10
    again = rng.uniform(0.0, 1.0)
    await asyncio.gather(*sends)
    if twice:
        await asyncio.sleep(again)
        await sender.post("issues", body, delivery, number)


def goal_misses(r: dict[str, Any]) -> list[str]:
    misses = []
    if not r.get("settled"):
        misses.append(f"queue did not settle: {r.get('jobs')}")
    d = r["deliveries"]
    if d["failed"] or d["rejected"]:
        misses.append(f"{d['failed']} deliveries never accepted, {d['rejected']} rejected")
    if r["lost"]["issues"]:
        misses.append(f"{r['lost']['issues']} issues with lost outputs")
    dup = r["duplicated"]
    if dup["sticky_issues"] or dup["bot_comments_extra"] or dup["reactions_extra"]:
        misses.append(
            f"duplicates: {dup['sticky_issues']} issues with >1 sticky, "
            f"{dup['bot_comments_extra']} extra bot comments, {dup['reactions_extra']} reactions"
        )
    st = r["sigterm"]
    if st["delay_max"] is not None and st["delay_max"] > GOAL_REQUEUE_S:
        misses.append(f"requeue after SIGTERM up to {st['delay_max']:.1f}s")
    if st["never"] or st["dead"]:
        misses.append(f"{st['never']} interrupted jobs never re-leased, {st['dead']} dead")
    if st["attempts_spent"]:
        misses.append(f"{st['attempts_spent']} attempts spent by shutdowns")
    if r["dead"]:
        misses.append(f"{len(r['dead'])} dead jobs")
    if r["unexpected_exits"]:
        misses.append(f"{len(r['unexpected_exits'])} unexpected process exits")
    return misses


async def run_scale(
    tree: Tree, workers: int, opts: Options, root: Path, session: aiohttp.ClientSession
) -> dict[str, Any]:
    tag = f"{tree.label} scale x{workers}"
    work = root / f"{tree.slug}-scale-{workers}"
    work.mkdir(parents=True)
    n = opts.scale_deliveries
    result: dict[str, Any] = {"code": tree.label, "workers": workers, "log_dir": str(work)}
    log(f"[{tag}] {n} issues as one burst, {workers} workers x {opts.concurrency}, PostgreSQL")
    async with contextlib.AsyncExitStack() as stack:
        db_url = await stack.enter_async_context(database("pg", work, opts.pg_url))
        gh = await stack.enter_async_context(running_fake())
        seed_repo(gh)
        script = ModelScript(random.Random(opts.seed + 1), opts.model_delay, 0.0)
        model = FakeModel()
        model.script("triage", script)
        await model.start()
        stack.push_async_callback(model.close)
        cluster = Cluster(
            tree, work, child_env(tree, gh, model, work, db_url, opts), workers, opts.concurrency
        )
        stack.callback(cluster.kill_all)
        probe = Probe(db_url)
        await probe.open()
        stack.push_async_callback(probe.close)
        await cluster.start_serve(session)
        for i in range(workers):
            cluster.start_worker(i)
        await cluster.wait_workers_ready()
        stats = SendStats()
        sender = Sender(session, cluster.url, stats)
        gate = asyncio.Semaphore(16)
        cpu0 = [w.cpu_seconds() for w in cluster.workers]
        bench_cpu0 = time.process_time()

        async def one(number: int) -> None:
            title = f"Soak issue #{number}: crash on start"
            issue = gh.add_issue(REPO, number=number, title=title, body="It crashes.", user=AUTHOR)
            async with gate:
                await sender.post(
                    "issues",
                    opened_body(number, issue.id, title, "It crashes."),
                    str(uuid.uuid4()),
                    number,
                )

        await asyncio.gather(*(one(k + 1) for k in range(n)))
        ok, _ = await settle(probe, opts.settle_timeout)
        cpu = sum(w.cpu_seconds() for w in cluster.workers) - sum(cpu0)
        bench_cpu = time.process_time() - bench_cpu0
        done_at = sorted(
            float(r["updated_at"])
            for r in await probe.rows("SELECT updated_at FROM jobs WHERE state='done'")
        )
        done = len(done_at)
        # Steady state: the jobs finished between the 10th and the 90th percentile of finish
        # times (workers in other processes than the intake find a burst at their next poll,
        # up to 1 s apart; the last few jobs run with idle workers around them).
        lo, hi = done // 10, done - 1 - done // 10
        seconds = done_at[hi] - done_at[lo] if hi > lo else 0.0
        rate = (hi - lo) / seconds if seconds > 0 else None
        outputs = count_outputs(gh, stats.accepted_issues)
        result.update(
            {
                "settled": ok,
                "jobs_done": done,
                "seconds_p10_p90": round(seconds, 2),
                "jobs_per_s": round(rate, 1) if rate else None,
                "worker_cpu_s": round(cpu, 1),
                "bench_cpu_s": round(bench_cpu, 1),
                "github_requests_per_job": round(len(gh.requests) / done, 1) if done else None,
                "lost": outputs["lost"],
                "duplicated": outputs["duplicated"],
            }
        )
    log(f"[{tag}] {result['jobs_per_s']} jobs/s ({hi - lo} jobs in {seconds:.1f}s, p10-p90)")
    return result


# --- tables ---------------------------------------------------------------------------------------


def render(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _s(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def soak_tables(results: list[dict[str, Any]]) -> str:
    header = ["", *(f"{r['scenario']} {r['code']}" for r in results)]

    def rows(spec: list[tuple[str, Callable[[dict[str, Any]], Any]]]) -> list[list[str]]:
        return [[name, *(str(fn(r)) for r in results)] for name, fn in spec]

    out = [
        render(
            "Deliveries",
            header,
            rows(
                [
                    ("issues", lambda r: r["deliveries"]["issues"]),
                    ("deliveries sent (with re-sends)", lambda r: r["deliveries"]["sent"]),
                    ("accepted (2xx)", lambda r: r["deliveries"]["accepted"]),
                    ("  of which 200 duplicate", lambda r: r["deliveries"]["duplicate_answers"]),
                    ("  needed a retry (serve down)", lambda r: r["deliveries"]["retried"]),
                    (
                        "never accepted",
                        lambda r: r["deliveries"]["failed"] + r["deliveries"]["rejected"],
                    ),
                ]
            ),
        ),
        render(
            "Outputs (per issue with an accepted delivery)",
            header,
            rows(
                [
                    ("issues expected", lambda r: r["deliveries"]["issues_accepted"]),
                    ("lost: no sticky comment", lambda r: r["lost"]["sticky"]),
                    ("lost: no label", lambda r: r["lost"]["label"]),
                    ("lost: no reaction", lambda r: r["lost"]["reaction"]),
                    (
                        "dup: issues with >1 sticky comment",
                        lambda r: r["duplicated"]["sticky_issues"],
                    ),
                    (
                        "  of them / issues with a racing command",
                        lambda r: f"{r['duplicated']['sticky_issues_racing']}/{r['racing_issues']}",
                    ),
                    ("dup: extra bot comments", lambda r: r["duplicated"]["bot_comments_extra"]),
                    ("dup: repeated reactions", lambda r: r["duplicated"]["reactions_extra"]),
                ]
            ),
        ),
        render(
            "Shutdowns (requeue delay: signal -> leased again by another process)",
            header,
            rows(
                [
                    ("SIGTERMs", lambda r: r["sigterm"]["signals"]),
                    ("  target in a slow model call", lambda r: r["sigterm"]["slow_targets"]),
                    ("  jobs held at the signal", lambda r: r["sigterm"]["held"]),
                    ("  finished within the grace", lambda r: r["sigterm"]["drained"]),
                    ("  interrupted", lambda r: r["sigterm"]["interrupted"]),
                    ("  requeue delay median s", lambda r: _s(r["sigterm"]["delay_median"])),
                    ("  requeue delay max s", lambda r: _s(r["sigterm"]["delay_max"])),
                    (
                        "  never re-leased / dead",
                        lambda r: f"{r['sigterm']['never']}/{r['sigterm']['dead']}",
                    ),
                    ("  attempts spent by shutdown", lambda r: r["sigterm"]["attempts_spent"]),
                    ("  worker exit after SIGTERM max s", lambda r: _s(r["sigterm"]["exit_max"])),
                    ("kill -9 workers", lambda r: r["kill9"]["signals"]),
                    ("  jobs held", lambda r: r["kill9"]["held"]),
                    ("  requeue delay max s", lambda r: _s(r["kill9"]["delay_max"])),
                    ("  attempts spent (expected)", lambda r: r["kill9"]["attempts_spent"]),
                    (
                        "kill -9 serve: down s",
                        lambda r: ",".join(str(s["down_s"]) for s in r["serve_kills"]) or "-",
                    ),
                ]
            ),
        ),
        render(
            "Queue",
            header,
            rows(
                [
                    ("settled", lambda r: "yes" if r["settled"] else "NO"),
                    ("settle s (after last delivery)", lambda r: r["settle_s"]),
                    (
                        "jobs by state",
                        lambda r: " ".join(f"{k}:{v}" for k, v in sorted(r["jobs"].items())),
                    ),
                    ("dead jobs", lambda r: len(r["dead"])),
                    ("model calls", lambda r: r["model_calls"]),
                    ("GitHub requests", lambda r: r["github_requests"]),
                    ("unexpected process exits", lambda r: len(r["unexpected_exits"])),
                    ("wall s", lambda r: r["elapsed_s"]),
                ]
            ),
        ),
    ]
    kinds = list(dict.fromkeys(k for r in results for k in r["faults"]))
    out.append(
        render(
            "Faults injected/fired",
            header,
            [
                [k, *("/".join(map(str, r["faults"].get(k, ["-", "-"]))) for r in results)]
                for k in kinds
            ],
        )
    )
    out.append(
        render(
            "Goal: 0 lost, 0 duplicated, requeue <= 5 s, no attempt spent by a shutdown",
            header,
            [["met", *("yes" if not r["goal"] else "NO" for r in results)]],
        )
    )
    for r in results:
        if r["goal"]:
            out.append(
                f"{r['scenario']} {r['code']}: "
                + "; ".join(r["goal"])
                + f"\n  logs: {r['log_dir']}"
            )
        for d in r["dead"][:5]:
            out.append(
                f"  dead job {d['id']} #{d['number']} after {d['attempts']}: {d['last_error']}"
            )
        if r["lost"]["issues"]:
            out.append(f"  lost outputs on issues: {r['lost_issues']}")
        if r["duplicated_issues"]:
            out.append(f"  issues with >1 sticky comment: {r['duplicated_issues']}")
        if r.get("violations"):
            out.append(f"  GitHub API violations: {r['violations'][:3]}")
    notes = {r["note"] for r in results if r.get("note")}
    out += [f"note: {n}" for n in sorted(notes)]
    return "\n\n".join(out)


def scale_table(results: list[dict[str, Any]]) -> str:
    codes = list(dict.fromkeys(r["code"] for r in results))
    header = [
        "workers",
        *(f"jobs/s {c}" for c in codes),
        *(f"CPU s w+b {c}" for c in codes),
        *(f"GitHub req/job {c}" for c in codes),
    ]
    rows = []
    for k in sorted({r["workers"] for r in results}):
        cells = [str(k)]
        for c in codes:
            r = next((x for x in results if x["code"] == c and x["workers"] == k), None)
            one = next((x for x in results if x["code"] == c and x["workers"] == 1), None)
            if r is None or r["jobs_per_s"] is None:
                cells.append("-")
                continue
            speedup = (
                f" (x{r['jobs_per_s'] / one['jobs_per_s']:.2f})"
                if one and one["jobs_per_s"]
                else ""
            )
            cells.append(f"{r['jobs_per_s']}{speedup}")
        for c in codes:
            r = next((x for x in results if x["code"] == c and x["workers"] == k), None)
            cells.append(f"{r['worker_cpu_s']}+{r['bench_cpu_s']}" if r else "-")
        for c in codes:
            r = next((x for x in results if x["code"] == c and x["workers"] == k), None)
            cells.append(str(r["github_requests_per_job"]) if r else "-")
        rows.append(cells)
    title = (
        "Throughput on PostgreSQL (no faults, no kills; jobs finished between the 10th and 90th "
        "percentile of finish times; CPU s: workers + this process, which runs the FakeGitHub "
        "and the model)"
    )
    text = render(title, header, rows)
    bad = [
        r
        for r in results
        if not r["settled"] or r["lost"]["issues"] or any(r["duplicated"].values())
    ]
    for r in bad:
        text += (
            f"\n{r['code']} x{r['workers']}: settled={r['settled']} lost={r['lost']} "
            f"dup={r['duplicated']}"
        )
    return text


# --- main -----------------------------------------------------------------------------------------


def _pg_up(url: str) -> bool:
    from urllib.parse import urlparse

    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=0.5):
            return True
    except OSError:
        return False


async def main_async(args: argparse.Namespace) -> int:
    trees = [
        Tree(
            f"HEAD@{git_rev(args.code)}"
            if args.code == ROOT
            else f"{args.code.name}@{git_rev(args.code)}",
            args.code,
        )
    ]
    if args.compare:
        trees.append(Tree(f"base@{git_rev(args.compare)}", args.compare))
    for t in trees:
        log(f"{t.label}: bot from {check_tree(t)}")
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - {"sqlite", "pg", "scale"}
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not _pg_up(args.pg_url) and {"pg", "scale"} & set(scenarios):
        log(f"PostgreSQL is not reachable at {args.pg_url}: skipping pg and scale")
        scenarios = [s for s in scenarios if s == "sqlite"]
    opts = Options(
        deliveries=args.deliveries,
        scale_deliveries=args.scale_deliveries,
        seed=args.seed,
        workers=args.workers,
        concurrency=args.concurrency,
        grace=args.grace,
        lease=args.lease,
        rate=args.rate,
        model_delay=(args.model_delay[0], args.model_delay[1]),
        settle_timeout=args.settle_timeout,
        pg_url=args.pg_url,
    )
    root = Path(tempfile.mkdtemp(prefix="lw-soak-"))
    log(f"logs under {root}")
    soak: list[dict[str, Any]] = []
    scale: list[dict[str, Any]] = []
    failures: list[str] = []
    broken = True  # until every scenario has run (an interrupted run keeps its logs)
    try:
        async with aiohttp.ClientSession() as session:
            for scenario in scenarios:
                for tree in trees:
                    try:
                        if scenario == "scale":
                            for k in SCALE_WORKERS:
                                scale.append(await run_scale(tree, k, opts, root, session))
                        else:
                            soak.append(await run_soak(tree, scenario, opts, root, session))
                    except Exception as exc:
                        failures.append(f"{tree.label} {scenario}")
                        log(f"[{tree.label} {scenario}] broke: {type(exc).__name__}: {exc}")
                        log(f"  logs: {root}")
        broken = bool(failures)
    finally:
        missed = broken or any(r["goal"] for r in soak)
        if missed or args.keep:
            log(f"logs kept under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        document = {"options": asdict(opts), "soak": soak, "scale": scale, "broken": failures}
        print(json.dumps(document, indent=2, default=str))
        return 1 if failures else 0
    header = (
        f"soak: {opts.deliveries} issues, seed {opts.seed}, {opts.workers} workers x "
        f"{opts.concurrency}, lease {opts.lease:g}s, grace {opts.grace:g}s, model delay "
        f"{opts.model_delay[0]:g}-{opts.model_delay[1]:g}s per issue; scale: "
        f"{opts.scale_deliveries} issues"
    )
    print(header)
    if failures:
        print(f"BROKEN (see the log above): {', '.join(failures)}")
    if soak:
        print("\n" + soak_tables(soak))
    if scale:
        print("\n" + scale_table(scale))
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deliveries", type=int, default=300, help="issues (default 300)")
    ap.add_argument(
        "--scale-deliveries", type=int, default=200, help="issues per scale run (default 200)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenarios", default="sqlite,pg,scale", help="comma list of sqlite,pg,scale")
    ap.add_argument("--workers", type=int, default=4, help="worker processes in sqlite/pg (4)")
    ap.add_argument("--concurrency", type=int, default=2, help="--concurrency of each worker (2)")
    ap.add_argument(
        "--grace", type=float, default=2.0, help="LOOPWRIGHT_SHUTDOWN_GRACE_SECONDS (2)"
    )
    ap.add_argument("--lease", type=float, default=10.0, help="LOOPWRIGHT_JOB_LEASE_SECONDS (10)")
    ap.add_argument("--rate", type=float, default=None, help="issues/s (default: up to 8)")
    ap.add_argument(
        "--model-delay",
        type=float,
        nargs=2,
        default=(0.05, 0.2),
        metavar=("MIN", "MAX"),
        help="seconds per model call, drawn once per issue (0.05 0.2)",
    )
    ap.add_argument("--settle-timeout", type=float, default=180.0)
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument(
        "--code", type=Path, default=ROOT, help="run this checkout's loopwright (default: this one)"
    )
    ap.add_argument(
        "--compare", type=Path, default=None, help="also run this checkout's and print side by side"
    )
    ap.add_argument("--keep", action="store_true", help="keep the logs even when all went well")
    ap.add_argument("--json", action="store_true", help="print every result as JSON")
    args = ap.parse_args()
    args.code = args.code.resolve()
    args.compare = args.compare.resolve() if args.compare else None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
