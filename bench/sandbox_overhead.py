"""Sandbox overhead: `true` run directly vs through run_sandboxed, median of N runs.

    python bench/sandbox_overhead.py [--runs 20] [--user lw-sandbox-test]

As root, pass an unprivileged --user (the sandbox refuses root without one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sandbox import grant_workspace, run_sandboxed


async def direct(workdir: Path) -> None:
    proc = await asyncio.create_subprocess_exec("true", cwd=workdir)
    await proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--user", default="lw-sandbox-test" if os.geteuid() == 0 else None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    base.chmod(0o755)
    grant_workspace(base, args.user)

    async def sandboxed(mode: str) -> None:
        result = await run_sandboxed(
            ["true"],
            workdir=base,
            timeout=30,
            mode=mode,
            run_as=args.user,  # type: ignore[arg-type]
        )
        assert result.exit_code == 0, result.output

    import logging

    logging.disable(logging.WARNING)  # mode none warns on every run, by design
    rows = []
    for label, fn in (
        ("true, plain subprocess", lambda: direct(base)),
        ("true, run_sandboxed mode=none", lambda: sandboxed("none")),
        ("true, run_sandboxed mode=bwrap", lambda: sandboxed("bwrap")),
    ):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            await fn()
            times.append((time.perf_counter() - started) * 1000)
        rows.append((label, statistics.median(times), min(times), max(times)))
    print(f"{'what':34} {'median ms':>10} {'min ms':>8} {'max ms':>8}   (n={args.runs})")
    for label, med, lo, hi in rows:
        print(f"{label:34} {med:10.2f} {lo:8.2f} {hi:8.2f}")
    print(f"bwrap overhead (median): {rows[2][1] - rows[0][1]:.2f} ms")
    os.rmdir(base)


if __name__ == "__main__":
    asyncio.run(main())
