"""Benchmark: how fast and how well does bot.cilogs diagnose failing GitHub Actions job logs?

(1) Throughput on a synthetic job log of --size-mb (default 50 MB) built from real captured tool
    output (tests/support/cilog_fixtures.py: committed pytest output of a small project): setup-step
    chatter, then one long `python -m pytest -v` step made of the passing run's real `PASSED`
    lines repeated, with the failing run's real `FAILED` lines at 25/50/75 % and its failure
    sections, short summary and `##[error]` at the end; every line carries an Actions timestamp.
    One block in ten repeats the setup chatter with per-block shas, temp paths and durations
    (lines that differ between runs). Variants: the same built from `pytest --color=yes` output
    (ANSI escapes on every test line), and a passing log of the same shape (fixed project, other
    run) for new_lines. Baselines on the same bytes in the same run:
    `data.decode().splitlines()` and one `re.findall(rb"FAILED[^\n]*", data)` pass (a
    literal-prefixed regex, the regex engine's fast path). Each measurement runs --reps times;
    median MB/s and p90 (the throughput of the 90th-percentile, i.e. slow, run) are reported.

(2) Accuracy on the fixture logs tests/test_cilogs.py uses (pytest, ruff, mypy, pip, imports,
    timeouts, runner trouble; each a failing job): for each expected failure (test id,
    path:line or error message), whether a diagnosed failure matches it; the category.

(3) Hit rate on the captured corpus (tests.support.cilog_corpus.cases(): every ecosystem's real tool
    output with the error lines a maintainer would mark), per ecosystem and overall, for each
    log style (the Actions download, `gh run view --log`'s prefixed lines), the failing log
    alone and with the passing log (cases that have one):
    - top 3 / top 10: share of builds with a marked line among the first 3 / 10 key lines;
    - precision: marked key lines shown / key lines shown (all builds pooled);
    - recall: marked texts with a line among the key lines shown / marked texts (pooled);
    - category: share of builds whose category is the case's.
    Three diagnoses side by side: the current `bot.cilogs.diagnose`, the one of commit 08ab0d1
    (`git show 08ab0d1:bot/cilogs.py`, loaded as a module) and a naive
    `grep -iE 'error|fail|exception' | tail -10` (its 10 lines are the key lines; it has no
    category). A key line is marked when it is (stripped of timestamp / prefix, ANSI and
    whitespace; or, clipped with "…", the start of) a line a marked text identifies: the lines
    equal to it, else the lines holding it. Then every build the current diagnosis misses in
    its top 3.

(4) The same corpus with each case's own ecosystem's parsers (and its tool's) left out: the
    closest this corpus comes to logs of a tool no parser knows (the corpus was written beside
    the parsers, so (3) is an upper bound).

Usage: .venv/bin/python bench/ci_logs.py [--size-mb 50] [--reps 5] [--skip-accuracy]
       [--corpus-only] [--no-corpus]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import cilogs  # noqa: E402
from tests.support import cilog_corpus as corpus  # noqa: E402
from tests.support import cilog_fixtures as fx  # noqa: E402

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


# --- the corpus hit rate ---------------------------------------------------------------------

BASELINE_COMMIT = "08ab0d1"
GOAL_TOP3 = 0.95
GOAL_PRECISION = 0.75
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_NAIVE = re.compile(r"error|fail|exception", re.IGNORECASE)


def _plain_texts(line: str) -> set[str]:
    """A key line as shown, and without what precedes its timestamp (a raw or `gh run view`
    line: "<job>\t<step>\t<timestamp> text", tabs maybe shown as spaces), ANSI removed."""
    text = _ANSI.sub("", line)
    out = {text.strip()}
    stamp = _STAMP.search(text, 0, 250)
    if stamp:
        out.add(text[stamp.end() :].strip())
    return out


def marked_texts(case: corpus.Case) -> list[set[str]]:
    """For each marked text of `case`, the (stripped) failing-output lines it identifies: the
    lines equal to it if any, else the lines holding it."""
    lines = [_ANSI.sub("", s).strip() for st in case.steps for s in st.output.splitlines()]
    out = []
    for m in case.marked:
        m = _ANSI.sub("", m).strip()
        exact = {s for s in lines if s == m}
        out.append(exact or {s for s in lines if m in s})
    return out


def is_marked(key_line: str, targets: set[str]) -> bool:
    for text in _plain_texts(key_line):
        if text in targets:
            return True
        if text.endswith("…") and len(text) > 20:
            if any(t.startswith(text[:-1].rstrip()) for t in targets):
                return True
    return False


def naive_key_lines(log: str) -> list[str]:
    """`grep -iE 'error|fail|exception' | tail -10` on the raw log."""
    return [s for s in log.splitlines() if _NAIVE.search(s)][-10:]


def load_baseline(commit: str = BASELINE_COMMIT) -> types.ModuleType | None:
    """bot/cilogs.py as of `commit`, imported as a module of its own (it imports nothing of
    bot/); None when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{commit}:bot/cilogs.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    name = f"cilogs_{commit}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{commit}:bot/cilogs.py", "exec"), module.__dict__)
    return module


@dataclass
class Score:
    builds: int = 0
    top3: int = 0
    top10: int = 0
    shown: int = 0
    shown_marked: int = 0
    marked: int = 0
    marked_found: int = 0
    categorised: int = 0
    correct: int = 0
    errors: int = 0
    misses: list[str] = field(default_factory=list)

    def add(
        self, case: corpus.Case, key_lines: Sequence[str], category: str | None, error: bool
    ) -> None:
        targets = marked_texts(case)
        every = set().union(*targets) if targets else set()
        hits = [is_marked(k, every) for k in key_lines]
        self.builds += 1
        self.errors += error
        self.top3 += any(hits[:3])
        self.top10 += any(hits[:10])
        if not any(hits[:3]):
            self.misses.append(case.id)
        self.shown += len(key_lines)
        self.shown_marked += sum(hits)
        self.marked += len(targets)
        self.marked_found += sum(any(is_marked(k, t) for k in key_lines) for t in targets)
        if category is not None:
            self.categorised += 1
            self.correct += category == case.category

    def cells(self) -> tuple[float, float, float, float, float | None]:
        n = max(self.builds, 1)
        return (
            self.top3 / n,
            self.top10 / n,
            self.shown_marked / self.shown if self.shown else 0.0,
            self.marked_found / self.marked if self.marked else 0.0,
            self.correct / self.categorised if self.categorised else None,
        )


Diagnose = Callable[[str, str | None], tuple[list[str], str | None]]


def _diagnoser(module: Any) -> Diagnose:
    def run(failing: str, passing: str | None) -> tuple[list[str], str | None]:
        d = module.diagnose(failing, passing)
        return list(d.key_lines), str(d.category)

    return run


def _naive(failing: str, passing: str | None) -> tuple[list[str], str | None]:
    return naive_key_lines(failing), None


def load_cases() -> tuple[list[corpus.Case], list[str]]:
    """`corpus.cases()`; when a case does not load (a corpus mid-change), every case that does,
    and the others' ids with the reason."""
    try:
        return list(corpus.cases()), []
    except Exception:
        pass
    cases, broken = [], []
    for path in sorted(corpus.CORPUS.glob("*/*.json")):
        try:
            cases.append(corpus.load(path))
        except Exception as exc:
            broken.append(f"{path.parent.name}/{path.stem} ({type(exc).__name__})")
    return cases, broken


def corpus_scores(
    methods: dict[str, Diagnose], cases: Sequence[corpus.Case]
) -> dict[tuple[str, bool], dict[str, dict[str, Score]]]:
    """(style, with passing) -> method -> ecosystem ("all" too) -> Score."""
    out: dict[tuple[str, bool], dict[str, dict[str, Score]]] = {}
    for style in ("actions", "prefixed"):
        for with_passing in (False, True):
            table: dict[str, dict[str, Score]] = {m: {} for m in methods}
            for case in cases:
                if with_passing and case.passing is None:
                    continue
                failing = corpus.job_log(case, style)
                passing = corpus.job_log(case, style, passing=True) if with_passing else None
                for method, fn in methods.items():
                    error = False
                    try:
                        key_lines, category = fn(failing, passing)
                    except Exception:  # a diagnosis mid-change must not stop the bench
                        key_lines, category, error = [], "unknown", True
                    for eco in (case.ecosystem, "all"):
                        table[method].setdefault(eco, Score()).add(case, key_lines, category, error)
            out[(style, with_passing)] = table
    return out


def _fmt(values: Sequence[float | None]) -> str:
    return " / ".join("—" if v is None else f"{v:.2f}" for v in values)


def corpus_tables() -> None:
    methods: dict[str, Diagnose] = {"current": _diagnoser(cilogs)}
    baseline = load_baseline()
    if baseline is not None:
        methods[BASELINE_COMMIT] = _diagnoser(baseline)
    methods["grep|tail"] = _naive
    t0 = time.perf_counter()
    cases, broken = load_cases()
    scores = corpus_scores(methods, cases)
    took = time.perf_counter() - t0
    names = " / ".join(methods)
    ecos = sorted({c.ecosystem for c in cases})
    print(
        f"## (3) Hit rate on the captured corpus: {len(cases)} cases "
        f"({sum(c.passing is not None for c in cases)} with a passing run), "
        f"{len(ecos)} ecosystems ({took:.1f}s)\n"
    )
    if broken:
        print(f"Not loaded (left out): {', '.join(broken)}.\n")
    print(f"Cells: {names}.\n")
    print("### Overall\n")
    print("| style | log | builds | top 3 | top 10 | precision | recall | category |")
    print("|---|---|---:|---|---|---|---|---|")
    for (style, with_passing), table in scores.items():
        cells = [table[m]["all"].cells() for m in methods]
        n = table[next(iter(methods))]["all"].builds
        log = "with passing" if with_passing else "failing alone"
        cols = [_fmt([c[i] for c in cells]) for i in range(5)]
        print(f"| {style} | {log} | {n} | " + " | ".join(cols) + " |")
    for (style, with_passing), table in scores.items():
        log = "with the passing log" if with_passing else "failing log alone"
        print(f"\n### Per ecosystem: {style}, {log}\n")
        print("| ecosystem | builds | top 3 | top 10 | precision | recall | category |")
        print("|---|---:|---|---|---|---|---|")
        for eco in [*ecos, "all"]:
            if eco not in table["current"]:
                continue
            cells = [table[m][eco].cells() for m in methods]
            cols = [_fmt([c[i] for c in cells]) for i in range(5)]
            label = "**all**" if eco == "all" else eco
            print(f"| {label} | {table['current'][eco].builds} | " + " | ".join(cols) + " |")
    current = {k: v["current"]["all"] for k, v in scores.items()}
    errors = sum(s.errors for s in current.values())
    worst_top3 = min(s.cells()[0] for s in current.values())
    worst_precision = min(s.cells()[2] for s in current.values())
    print(
        f"\nGoal: top 3 ≥ {GOAL_TOP3} (worst of the four: {worst_top3:.2f}) and precision ≥ "
        f"{GOAL_PRECISION} (worst: {worst_precision:.2f}): "
        f"{'met' if worst_top3 >= GOAL_TOP3 and worst_precision >= GOAL_PRECISION else 'NOT met'}"
        f".{f' The current diagnosis raised on {errors} builds.' if errors else ''}"
    )
    misses = current[("actions", False)].misses
    print(
        f"\nCurrent diagnosis, no marked line in the top 3 (actions, failing alone): "
        f"{len(misses)}: {', '.join(misses) or '—'}"
    )


def _without_own(case: corpus.Case) -> Diagnose:
    """The diagnosis with `case`'s ecosystem's parsers (and its tool's) left out."""
    from bot.logparsers import parsers

    kept = [p for p in parsers() if p.ecosystem != case.ecosystem and p.name != case.tool]

    def run(failing: str, passing: str | None) -> tuple[list[str], str | None]:
        d = cilogs.diagnose(failing, passing, registry=kept)
        return list(d.key_lines), str(d.category)

    return run


def unseen_table() -> None:
    """The closest the corpus comes to logs of a tool no parser knows: every case diagnosed
    with its own ecosystem's parsers removed (what is left: the other parsers, annotations,
    new-vs-passing lines and the generic error-word ranking). Category is not scored (without
    the tool's parser it is `unknown` by design)."""
    cases, _ = load_cases()
    print("\n## (4) Own parsers left out (a proxy for unseen ecosystems), actions style\n")
    print(
        "| ecosystem | builds | top 3 alone | top 3 with passing | precision alone "
        "| precision with passing |"
    )
    print("|---|---:|---|---|---|---|")
    rows: dict[str, list[Score]] = {}
    for case in cases:
        fn = _without_own(case)
        failing = corpus.job_log(case, "actions")
        for eco in (case.ecosystem, "all"):
            rows.setdefault(eco, [Score(), Score()])
        key, cat = fn(failing, None)
        for eco in (case.ecosystem, "all"):
            rows[eco][0].add(case, key, cat, False)
        if case.passing is not None:
            key, cat = fn(failing, corpus.job_log(case, "actions", passing=True))
            for eco in (case.ecosystem, "all"):
                rows[eco][1].add(case, key, cat, False)
    for eco in [*sorted(e for e in rows if e != "all"), "all"]:
        alone, with_passing = rows[eco]
        a = alone.cells()
        w = with_passing.cells() if with_passing.builds else (None,) * 5
        label = "**all**" if eco == "all" else eco
        cells = [_fmt([a[0]]), _fmt([w[0]]), _fmt([a[2]]), _fmt([w[2]])]
        print(f"| {label} | {alone.builds} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=50.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip-accuracy", action="store_true", help="skip (2)")
    parser.add_argument("--corpus-only", action="store_true", help="only (3): no throughput")
    parser.add_argument("--no-corpus", action="store_true", help="skip (3)")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.corpus_only:
        throughput_table(args.size_mb, args.reps)
        if not args.skip_accuracy:
            accuracy_tables()
    if not args.no_corpus:
        print()
        corpus_tables()
        unseen_table()
    print(f"\n(bench ran {time.perf_counter() - start:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
