"""Benchmark: how fast does `loopwright serve` durably acknowledge webhook deliveries?

Sends N signed, real `issues.opened` deliveries (tests/fixtures/webhooks/issues/opened.15.json
with an installation id added, a unique X-GitHub-Delivery each) at concurrency C to:

- `loopwright serve --workers 0` (intake only) on a fresh SQLite file, started as a subprocess;
- a bare aiohttp handler that reads the body and answers 202, also a subprocess (this file run
  with `--bare-server PORT`): the ceiling for an aiohttp intake on this machine.

The load generator is one aiohttp ClientSession (keep-alive, a TCPConnector with limit=C) in this
process: a warm-up phase, then N requests, every answer checked to be a 202. After loopwright is
stopped, the SQLite file must hold exactly N + warm-up deliveries and as many jobs (durability).
Each target runs --reps times, alternating, each on a fresh server; medians are reported.

Usage: python bench/ingest.py [--requests N] [--concurrency C] [--warmup W] [--reps R]
                              [--profile FILE]   (cProfile the loopwright server's event loop)
       python bench/ingest.py --store-only       (Store.record_delivery without HTTP)
Only loopback is used; temporary directories are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "webhooks" / "issues" / "opened.15.json"
SECRET = "bench-webhook-secret-0123456789"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

GOAL_P99_MS = 25.0
GOAL_THROUGHPUT = 1000.0
GOAL_RATIO = 0.5


# --- the bare handler (runs in its own process) ---------------------------------------------------


def run_bare_server(port: int) -> None:
    async def webhook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    db_path: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


def start_bare() -> Server:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return Server("bare aiohttp (202 only)", proc, port, None)


def start_loopwright(
    data_dir: Path, profile: Path | None = None, command: list[str] | None = None
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "LOOPWRIGHT_WEBHOOK_SECRET": SECRET,
        "LOOPWRIGHT_DATA_DIR": str(data_dir),
        "LOOPWRIGHT_DATABASE_URL": "",
    }
    serve = ["serve", "--workers", "0", "--host", "127.0.0.1", "--port", str(port)]
    if command:
        cmd = [*command, *serve]
    elif profile is None:
        cmd = [sys.executable, "-m", "bot.cli", *serve]
    else:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "bot.cli", *serve]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return Server("loopwright serve", proc, port, data_dir / "loopwright.db")


async def wait_ready(session: aiohttp.ClientSession, server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            err = server.proc.stderr.read().decode() if server.proc.stderr else ""
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{err}")
        try:
            async with session.get(server.health_url) as resp:
                if resp.status == 200:
                    await resp.read()
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT:.0f}s")


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    if server.proc.stderr:
        server.proc.stderr.close()


# --- the load generator ---------------------------------------------------------------------------


def delivery_body() -> bytes:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    data["installation"] = {"id": 1}
    return json.dumps(data).encode()


@dataclass
class Result:
    target: str
    requests: int
    concurrency: int
    seconds: float
    latencies: list[float]  # seconds, one per measured request
    bad: dict[str, int]  # unexpected status or error -> count
    jobs_acked: int
    db_deliveries: int | None = None
    db_jobs: int | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000


async def send(
    session: aiohttp.ClientSession, url: str, body: bytes, count: int, concurrency: int
) -> tuple[float, list[float], dict[str, int], int]:
    """`count` deliveries over `concurrency` closed-loop senders; wall time, latencies, errors."""
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    base = {
        "X-GitHub-Event": "issues",
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
    }
    latencies: list[float] = []
    bad: dict[str, int] = {}
    jobs = 0
    remaining = count

    async def sender() -> None:
        nonlocal remaining, jobs
        while remaining > 0:
            remaining -= 1
            headers = {**base, "X-GitHub-Delivery": str(uuid.uuid4())}
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    answer = await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                bad[type(exc).__name__] = bad.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            if status != 202:
                bad[f"HTTP {status}"] = bad.get(f"HTTP {status}", 0) + 1
            elif answer:
                jobs += int(json.loads(answer).get("jobs", 0))

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, bad, jobs


async def bench_one(server: Server, requests: int, concurrency: int, warmup: int) -> Result:
    body = delivery_body()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await wait_ready(session, server)
        _, _, wbad, wjobs = await send(session, server.url, body, warmup, concurrency)
        seconds, latencies, bad, jobs = await send(session, server.url, body, requests, concurrency)
    for k, v in wbad.items():
        bad[f"warm-up {k}"] = v
    return Result(server.name, requests, concurrency, seconds, latencies, bad, jobs + wjobs)


def count_rows(db_path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        deliveries = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    finally:
        conn.close()
    return int(deliveries), int(jobs)


def run_target(
    kind: str,
    requests: int,
    concurrency: int,
    warmup: int,
    profile: Path | None = None,
    command: list[str] | None = None,
) -> Result:
    with tempfile.TemporaryDirectory(prefix="loopwright-bench-") as tmp:
        if kind == "bare":
            server = start_bare()
        else:
            server = start_loopwright(Path(tmp), profile, command)
        try:
            result = asyncio.run(bench_one(server, requests, concurrency, warmup))
        finally:
            stop(server)
        if server.db_path is not None:
            result.db_deliveries, result.db_jobs = count_rows(server.db_path)
    return result


# --- report ---------------------------------------------------------------------------------------


def median_of(results: list[Result], attr: str) -> float:
    if attr == "throughput":
        return statistics.median(r.throughput for r in results)
    q = {"p50": 0.50, "p99": 0.99}[attr]
    return statistics.median(r.pct(q) for r in results)


def durable_ok(r: Result, warmup: int) -> bool:
    expected = r.requests + warmup
    return not r.bad and r.db_deliveries == expected and r.db_jobs == expected == r.jobs_acked


def report(lw: list[Result], bare: list[Result], warmup: int, load: str = "") -> str:
    lw_tp, bare_tp = median_of(lw, "throughput"), median_of(bare, "throughput")
    ratio = lw_tp / bare_tp
    n, c, reps = lw[0].requests, lw[0].concurrency, len(lw)
    lines = [
        f"Medians of {reps} runs each; {warmup} warm-up requests per run not counted. {load}",
        "",
        "| target | requests | concurrency | throughput (req/s) | p50 ack (ms) | p99 ack (ms) "
        "| vs bare |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rs, rel in (("loopwright serve --workers 0", lw, ratio), (bare[0].target, bare, 1.0)):
        lines.append(
            f"| {name} | {n} | {c} | {median_of(rs, 'throughput'):,.0f} "
            f"| {median_of(rs, 'p50'):.2f} | {median_of(rs, 'p99'):.2f} | {rel:.0%} |"
        )
    lines += ["", "Per run (throughput req/s, p50 ms, p99 ms):", ""]
    for rs in (lw, bare):
        runs = ", ".join(f"{r.throughput:,.0f} / {r.pct(0.5):.1f} / {r.pct(0.99):.1f}" for r in rs)
        lines.append(f"- {rs[0].target}: {runs}")
    all_ok = all(durable_ok(r, warmup) for r in lw)
    expected = n + warmup
    durability = "; ".join(
        f"{r.db_deliveries} deliveries, {r.db_jobs} jobs, {r.jobs_acked} acked"
        + (f", errors {r.bad}" if r.bad else "")
        for r in lw
    )
    bare_errors = {k: v for r in bare for k, v in r.bad.items()}
    p99 = median_of(lw, "p99")

    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    lines += [
        "",
        "| goal | target | measured | result |",
        "|---|---|---|---|",
        f"| p99 ack latency | < {GOAL_P99_MS:.0f} ms | {p99:.2f} ms | {mark(p99 < GOAL_P99_MS)} |",
        f"| durable deliveries/s | >= {GOAL_THROUGHPUT:,.0f} | {lw_tp:,.0f} "
        f"| {mark(lw_tp >= GOAL_THROUGHPUT and all_ok)} |",
        f"| share of bare throughput | >= {GOAL_RATIO:.0%} | {ratio:.0%} "
        f"| {mark(ratio >= GOAL_RATIO)} |",
        f"| every answer 202, SQLite holds {expected} deliveries + {expected} jobs "
        f"| all runs | {durability} | {mark(all_ok)} |",
    ]
    if bare_errors:
        lines.append(f"\nbare handler errors: {bare_errors}")
    return "\n".join(lines)


# --- store only (no HTTP): what one durable delivery costs ------------------------------------


async def store_only(requests: int, concurrency: int) -> None:
    from bot import db as dbmod
    from bot.store import JobSpec, Store

    spec = JobSpec("triage", "Codertocat/Hello-World", 1, 1, {"trigger": "issues.opened"})
    with tempfile.TemporaryDirectory(prefix="loopwright-bench-") as tmp:
        database = await dbmod.connect(f"sqlite:///{Path(tmp) / 'store.db'}")
        store = Store(database)
        await store.init()
        latencies: list[float] = []
        remaining = requests

        async def writer() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                await store.record_delivery(
                    str(uuid.uuid4()), "issues", "opened", spec.repo, [spec], max_attempts=3
                )
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
        await database.close()
    latencies.sort()
    print(
        f"Store.record_delivery alone: {requests} at concurrency {concurrency}: "
        f"{requests / seconds:,.0f}/s, {seconds / requests * 1e6:.0f} us each serialised, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.2f} ms, "
        f"p99 {latencies[int(0.99 * len(latencies))] * 1000:.2f} ms"
    )


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--requests", "-n", type=int, default=5000)
    p.add_argument("--concurrency", "-c", type=int, default=32)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--profile", type=Path, help="one cProfiled loopwright run; write stats here")
    p.add_argument("--store-only", action="store_true", help="time Store.record_delivery alone")
    p.add_argument(
        "--loopwright-cmd",
        help="run this instead of `python -m bot.cli` (serve arguments are appended), e.g. to\n"
        "compare a patched intake against the same bare baseline",
    )
    p.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.bare_server is not None:
        run_bare_server(args.bare_server)
        return 0
    if args.requests < 1 or args.concurrency < 1 or args.reps < 1 or args.warmup < 0:
        p.error("--requests, --concurrency and --reps must be positive, --warmup >= 0")
    if args.store_only:
        asyncio.run(store_only(args.requests, args.concurrency))
        return 0
    if args.profile:
        r = run_target("loopwright", args.requests, args.concurrency, args.warmup, args.profile)
        print(f"profiled run: {r.throughput:,.0f} req/s, p99 {r.pct(0.99):.2f} ms")
        import pstats

        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(25)
        return 0
    command = shlex.split(args.loopwright_cmd) if args.loopwright_cmd else None
    load_before = os.getloadavg()[0]
    lw: list[Result] = []
    bare: list[Result] = []
    for i in range(args.reps):
        for kind, results in (("loopwright", lw), ("bare", bare)):
            r = run_target(kind, args.requests, args.concurrency, args.warmup, None, command)
            results.append(r)
            print(
                f"run {i + 1}/{args.reps} {r.target}: {r.throughput:,.0f} req/s, "
                f"p50 {r.pct(0.5):.2f} ms, p99 {r.pct(0.99):.2f} ms"
                + (f", errors {r.bad}" if r.bad else ""),
                file=sys.stderr,
            )
    load = (
        f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"({os.cpu_count()} CPUs; the load generator shares them)."
    )
    print(report(lw, bare, args.warmup, load))
    ok = all(durable_ok(r, args.warmup) for r in lw) and not any(r.bad for r in bare)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
