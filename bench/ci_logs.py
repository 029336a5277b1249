"""Benchmark: how fast and how well does bot.cilogs diagnose failing GitHub Actions job logs?

(1) Throughput on a synthetic job log of --size-mb (default 50 MB) built from real captured tool
    output (tests/cilog_fixtures.py runs pytest on a small project): setup-step chatter, then one
    long `python -m pytest -v` step made of the passing run's real `PASSED` lines repeated, with
    the failing run's real `FAILED` lines at 25/50/75 % and its failure sections, short summary
    and `##[error]` at the end; every line carries an Actions timestamp. One block in ten repeats
    the setup chatter with per-block shas, temp paths and durations (lines that differ between
    runs). Variants: the same built from `pytest --color=yes` output (ANSI escapes on every test
    line), and a passing log of the same shape (fixed project, other run) for new_lines.
    Baselines on the same bytes in the same run: `data.decode().splitlines()` and one
    `re.findall(rb"FAILED[^\\n]*", data)` pass (a literal-prefixed regex, the regex engine's fast
    path). Each measurement runs --reps times; median MB/s and p90 (the throughput of the
    90th-percentile, i.e. slow, run) are reported.

(2) Accuracy on the fixture logs the tests use (pytest, ruff, mypy, pip, imports, timeouts,
    runner trouble; each a failing job): for each expected failure (test id, path:line or error
    message), whether a diagnosed failure matches it; the category and confidence; the share.

Usage: .venv/bin/python bench/ci_logs.py [--size-mb 50] [--reps 5] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import cilogs  # noqa: E402
from tests import cilog_fixtures as fx  # noqa: E402

GOAL_MB_S = 50.0


# --- the synthetic log ------------------------------------------------------------------------


def build_log(size: int, *, color: bool = False, passing: bool = False) -> bytes:
    """A job log of about `size` bytes from real pytest output (see the module docstring)."""
    flags = ("-v", "--color=yes") if color else ("-v",)
    pass_out, _ = fx.pytest_output(*flags, fixed=True)
    pass_lines = [s for s in pass_out.split("\n") if "PASSED" in s]
    run_out, run_code = fx.pytest_output(*flags, fixed=passing)
    run_lines = run_out.split("\n")
    failed_v = [s for s in run_lines if "::" in s and "FAILED" in s and not s.startswith("FAILED")]
    first_result = next(i for i, s in enumerate(run_lines) if "PASSED" in s or "FAILED" in s)
    end_results = max(i for i, s in enumerate(run_lines) if "PASSED" in s or "FAILED" in s)
    run = 2 if passing else 1
    block_bytes = sum(len(s) + 30 for s in pass_lines)
    blocks = max(1, size // block_bytes)
    body: list[str] = run_lines[:first_result]
    marks = {blocks // 4, blocks // 2, 3 * blocks // 4}
    for b in range(blocks):
        body.extend(pass_lines)
        if b % 10 == 5:  # chatter that differs per run: shas, temp paths, durations
            for _, out, _ in fx.setup_steps(run * 100_000 + b):
                body.extend(out.split("\n"))
        if b in marks and not passing:
            body.extend(failed_v)
    body.extend(run_lines[first_result : end_results + 1])
    body.extend(run_lines[end_results + 1 :])
    text = fx.actions_log(
        [*fx.setup_steps(run), ("python -m pytest -v", "\n".join(body), run_code)],
        start=fx.DEFAULT_START + timedelta(days=run),
    )
    return text.encode()


# --- measuring ----------------------------------------------------------------------------------


def measure(fn: Callable[[], object], reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def throughput_table(size_mb: float, reps: int) -> None:
    t0 = time.perf_counter()
    data = build_log(int(size_mb * 1e6))
    colored = build_log(int(size_mb * 1e6), color=True)
    passing = build_log(int(size_mb * 1e6), passing=True)
    built = time.perf_counter() - t0
    failing_log = cilogs.clean_log(data)
    passing_log = cilogs.clean_log(passing)
    failures = cilogs.parse_failures(failing_log)
    check = cilogs.diagnose(data)
    check_color = cilogs.diagnose(colored)
    check_new = cilogs.diagnose(data, passing)
    finditer_pattern = re.compile(rb"FAILED[^\n]*")

    rows: list[tuple[str, int, list[float], str]] = [
        (
            "baseline: data.decode().splitlines()",
            len(data),
            measure(lambda: data.decode().splitlines(), reps),
            "",
        ),
        (
            'baseline: re.findall(rb"FAILED[^\\n]*", data)',
            len(data),
            measure(lambda: finditer_pattern.findall(data), reps),
            "",
        ),
        (
            "diagnose(data)",
            len(data),
            measure(lambda: cilogs.diagnose(data), reps),
            f"{len(check.failures)} failures, {check.category}, confident={check.confident}",
        ),
        (
            "  clean_log",
            len(data),
            measure(lambda: cilogs.clean_log(data), reps),
            f"{len(failing_log.lines):,} lines",
        ),
        (
            "  parse_failures",
            len(data),
            measure(lambda: cilogs.parse_failures(failing_log), reps),
            "",
        ),
        (
            "  classify",
            len(data),
            measure(lambda: cilogs.classify(failures, failing_log), reps),
            "",
        ),
        (
            "diagnose(data), ANSI colour (pytest --color=yes)",
            len(colored),
            measure(lambda: cilogs.diagnose(colored), reps),
            f"{len(check_color.failures)} failures, {check_color.category}",
        ),
        (
            "diagnose(data, passing) (+ clean passing + new_lines)",
            len(data),
            measure(lambda: cilogs.diagnose(data, passing), reps),
            f"{len(check_new.new_lines or [])} new lines of {len(failing_log.lines):,}",
        ),
        (
            "  new_lines(failing, passing), cleaned logs",
            len(data),
            measure(lambda: cilogs.new_lines(failing_log, passing_log), reps),
            "",
        ),
    ]
    base = statistics.median(rows[0][2])
    regex = statistics.median(rows[1][2])
    print(
        f"## (1) Throughput: {len(data) / 1e6:.1f} MB synthetic job log "
        f"({len(failing_log.lines):,} lines), {reps} reps, built in {built:.1f}s\n"
    )
    print(
        "| measurement | MB | median ms | p90 ms | median MB/s | p90 MB/s "
        "| time vs splitlines | time vs re.findall | result |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, nbytes, times, note in rows:
        med, slow = statistics.median(times), p90(times)
        mb = nbytes / 1e6
        print(
            f"| {name} | {mb:.1f} | {med * 1000:.0f} | {slow * 1000:.0f} | {mb / med:.0f} "
            f"| {mb / slow:.0f} | {med / base:.2f}× | {med / regex:.2f}× | {note} |"
        )
    med = statistics.median(rows[2][2])
    verdict = "met" if len(data) / 1e6 / med >= GOAL_MB_S else "NOT met"
    print(f"\nGoal ≥ {GOAL_MB_S:.0f} MB/s for diagnose(): {verdict}.")
    print(f"Passing log for new_lines: {len(passing) / 1e6:.1f} MB.\n")


# --- accuracy ------------------------------------------------------------------------------------


def code_span(text: str) -> str:
    """Markdown code span that survives backticks inside (ruff quotes names in them)."""
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def accuracy_tables() -> None:
    logs = fx.fixture_logs()
    print("## (2) Deterministic accuracy on the fixture logs\n")
    total = hit = 0
    summary: list[str] = []
    for fixture in logs:
        d = cilogs.diagnose(fixture.text)
        print(f"### {fixture.name}\n")
        print("| expected | found | |")
        print("|---|---|---|")
        found_here = 0
        for expect in fixture.expected:
            match = next((f for f in d.failures if fx.matches(f, expect)), None)
            shown = "—"
            if match is not None:
                where = f"{match.path}:{match.line}" if match.path else ""
                shown = " ".join(
                    x for x in (match.test_id or "", where, code_span(match.message[:70])) if x
                )
                found_here += 1
            mark = "✓" if match else "✗"
            print(f"| {expect.kind}: {code_span(expect.key)} | {shown} | {mark} |")
        extra = [f for f in d.failures if not any(fx.matches(f, e) for e in fixture.expected)]
        for f in extra:
            print(f"| (not expected) | {f.kind} {f.tool}: {code_span(f.message[:70])} | + |")
        print()
        total += len(fixture.expected)
        hit += found_here
        summary.append(
            f"| {fixture.name} | {fixture.category} | {d.category} | {d.confident} "
            f"| {found_here}/{len(fixture.expected)} | {len(extra)} |"
        )
    print("### Total\n")
    print("| log | expected category | category | confident | found | unexpected |")
    print("|---|---|---|---|---:|---:|")
    for row in summary:
        print(row)
    print(f"\nFound deterministically: {hit}/{total} = {hit / total:.0%} of expected failures.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    throughput_table(args.size_mb, args.reps)
    if not args.skip_accuracy:
        accuracy_tables()
    print(f"\n(bench ran {time.perf_counter() - start:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
