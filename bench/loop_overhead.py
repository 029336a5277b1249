"""Benchmark: the fix loop's own cost per iteration, beyond model and test time, and its memory
per concurrent loop.

    python bench/loop_overhead.py [--iterations 15] [--rounds 2] [--concurrency 1,4,8] [--dir DIR]

Goals (from the issue): engine overhead < 20 ms per iteration; memory < 50 MB per concurrent
loop. The script only measures and prints Markdown tables; it asserts no timing.

Setup. The fixture project of tests/support/fixrepo.py (a `last_word("")` IndexError) is run
through the real `fix` pipeline in-process (`Runtime.open` + `run_local`, as `loopwright run fix`
does), with the scripted model of tests/support/fakemodel.py on loopback and the real sandbox
(bubblewrap; as root, commands run as the unprivileged test user). The test command is trivial:
a `check.py` added to the fixture calls the test functions of `tests/test_*.py` directly (no
pytest) and writes JUnit XML (xunit1, pytest's node ids) to the path pytest would get from
PYTEST_ADDOPTS, so the loop scores it exactly as it scores pytest.

Table 1, iterations. A run whose patch step makes the "break another test" edit of
`fixrepo.WRONG_PATCHES` on every attempt (two model turns: edit, finish); each attempt is
committed, scored (the reproduction passes, another test breaks) and reverted, so the N
iterations are identical. `fix.patience` and `budgets.max_iterations` are raised so that exactly
N run; `--rounds` such runs, each followed by its bare replay (below), so that a drift of the
machine does not favour either side. From each run's step records:

- model  = sum of the attempt's model steps (`duration_ms` of each HTTP round trip through the
  openai client to the scripted server, which runs in this process);
- test   = the `score` step: the sandboxed suite run plus what the engine does around it (write
  and remove the held-out test, grant the tree to the sandbox user, scan for untracked files);
  the suite process alone (as the step reports it) is a sub-row;
- iteration = from the `attempt N-1` record to the `attempt N` record (`created_at`, wall clock),
  so it also covers what the engine does between attempts (cancel check, budget, records);
  attempt 1 is left out of these figures because what precedes it is the reproduction phase.
  The engine's own `attempt N` duration (propose + commit + score + keep/revert) is shown too;
- engine overhead = iteration - model - test.

The same-process baseline ("bare") replays the same N iterations without the engine: the very same
requests (messages, schema, max_tokens, taken from the scripted server's log) through a plain
`openai.AsyncOpenAI` client, then `bot.testresults.run_tests` on a directory in the state the
engine scored (the patched module plus both reproduction tests), in the same cached environment
and sandbox. "Where the overhead goes" splits the overhead by the step timestamps (tool steps
record no duration of their own); every step record is one SQLite transaction, so the split is
approximate at the sub-millisecond level. Two reference rows: the ruff check the Toolbox runs on
each accepted .py edit, timed alone, and the part of the test time that is not the suite.

Table 2, memory. For each K, a fresh child process (this script with --memory-child K) opens one
Runtime and scripted model, runs one warm-up pipeline (imports and lazy initialisation are not
a loop's cost), then K complete fix pipelines concurrently (asyncio.gather), each on its own
clone of the fixture under its own name (`local/calc-i`, so each builds its own environment and
baseline) with `fixrepo.RIGHT_FIX` (exit "fixed"). A thread samples VmRSS of the process every
~20 ms; the table gives peak - RSS before, and that divided by K. Sandboxed child processes
(bubblewrap, the venv setup, the project's tests) are not counted: they are the project's, not
the engine's. The scripted server lives in the same process and keeps a log of every request;
that is counted, and is small (a few kB per model call). RSS counts memory the allocator keeps
after the warm-up, so the figure is the marginal cost in a process that has already run a loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from bot.app import LocalResult, Runtime, run_local  # noqa: E402
from bot.forge import DryRunForge, Issue  # noqa: E402
from bot.model import STEP_HEADER  # noqa: E402
from bot.repo_config import parse_config  # noqa: E402
from bot.sandbox import grant_workspace, prepare_environment  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.testresults import run_tests  # noqa: E402
from loops.tools import fatal_lint, find_ruff  # noqa: E402
from tests.support import fixrepo  # noqa: E402
from tests.support.fakemodel import FakeModel, running_model  # noqa: E402
from tests.support.sandbox_user import bwrap_works, ensure_sandbox_user  # noqa: E402

TEST_COMMAND = "python check.py"
SAMPLE_SECONDS = 0.02
WRONG = fixrepo.WRONG_PATCHES["break another test"]
BROKEN_TEST = "tests/test_words.py::test_last_word"
ISSUE = Issue(number=1, title=fixrepo.ISSUE_TITLE, body=fixrepo.ISSUE_BODY, author="bench")

#: The trivial test command: the fixture's test functions called directly, results as JUnit XML.
CHECK_PY = '''"""Run tests/test_*.py without pytest; JUnit XML (xunit1) as PYTEST_ADDOPTS says."""

import glob
import importlib.util
import inspect
import os
import shlex
import sys
import time
import traceback
from xml.sax.saxutils import escape, quoteattr


def junit_path():
    for arg in shlex.split(os.environ.get("PYTEST_ADDOPTS", "")):
        if arg.startswith("--junitxml="):
            return arg.split("=", 1)[1]
    return None


def run_file(path):
    module = path[:-3].replace("/", ".")
    try:
        spec = importlib.util.spec_from_file_location(module, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except Exception as exc:
        tb = traceback.format_exc()
        yield module, os.path.basename(path)[:-3], path, 0.0, "error", exc, tb
        return
    for name, fn in list(vars(mod).items()):
        if not (name.startswith("test") and inspect.isfunction(fn)):
            continue
        if fn.__module__ != module:
            continue
        started = time.perf_counter()
        try:
            fn()
        except Exception as exc:
            # Like pytest: an exception in the test body is a failure, whatever its type.
            secs = time.perf_counter() - started
            yield module, name, path, secs, "failure", exc, traceback.format_exc()
        else:
            yield module, name, path, time.perf_counter() - started, "passed", None, ""


def main():
    sys.path.insert(0, os.getcwd())
    cases = []
    bad = 0
    for path in sorted(glob.glob("tests/test_*.py")):
        for module, name, file, secs, kind, exc, tb in run_file(path):
            line = '<testcase classname=%s name=%s file=%s time="%.6f"' % (
                quoteattr(module), quoteattr(name), quoteattr(file), secs
            )
            if kind == "passed":
                cases.append(line + " />")
                continue
            bad += 1
            message = "%s: %s" % (type(exc).__name__, exc)
            tag = "failure" if kind == "failure" else "error"
            cases.append(
                "%s><%s message=%s>%s</%s></testcase>"
                % (line, tag, quoteattr(message), escape(tb), tag)
            )
            print("FAILED %s::%s - %s" % (file, name, message))
    print("%d tests, %d failed" % (len(cases), bad))
    target = junit_path()
    if target:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write('<?xml version="1.0" encoding="utf-8"?>\\n<testsuites><testsuite name="check"')
            fh.write(' tests="%d" failures="%d">' % (len(cases), bad))
            fh.write("".join(cases))
            fh.write("</testsuite></testsuites>\\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
'''


# --- fixture ------------------------------------------------------------------------------------


def bench_config(max_iterations: int, **fix: Any) -> str:
    """The fixture's config with the trivial test command and a budget that allows the run."""
    text = fixrepo.loopwright_config(**fix)
    pytest_line = '  test: "python -m pytest -q"\n'
    if pytest_line not in text:
        raise SystemExit("tests/support/fixrepo.py changed its config: update bench_config")
    text = text.replace(pytest_line, f'  test: "{TEST_COMMAND}"\n')
    return text + f"budgets:\n  max_iterations: {max_iterations}\n  max_tokens: 10000000\n"


def write_repo(path: Path, config: str) -> Path:
    """The fixture as a git repository, with check.py committed on top."""
    fixrepo.write_local_repo(path, config)
    (path / "check.py").write_text(CHECK_PY)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "check.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "check.py"], check=True)
    return path


def scripted_turns(actions: list[str]) -> Callable[[dict[str, Any]], str]:
    """A responder answering turn k of an attempt with actions[k] (k = assistant messages so far
    in the request), so concurrent loops and the bare replay each get the right action."""

    def answer(body: dict[str, Any]) -> str:
        turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        return actions[min(turn, len(actions) - 1)]

    return answer


def settings_for(data_dir: Path, fake: FakeModel, run_as: str | None) -> Settings:
    return load_settings(
        data_dir=data_dir, model_base_url=fake.url, model_api_key="sk-bench", sandbox_user=run_as
    )


async def fix_once(rt: Runtime, repo: Path) -> LocalResult:
    forge = DryRunForge(f"local/{repo.name}", issue=ISSUE, repo_path=repo)
    return await run_local(rt, "fix", forge.repo, forge, ISSUE.number, repo_path=repo)


# --- statistics and tables ----------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def p90(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return xs[0] if xs else float("nan")
    return statistics.quantiles(xs, n=10, method="inclusive")[8]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_last: bool = False) -> str:
    align = ["---"] + ["---:"] * (len(headers) - 1)
    if text_last:
        align[-1] = "---"
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(x: float) -> str:
    return f"{x:.1f}"


# --- table 1: iterations ------------------------------------------------------------------------


@dataclass
class Iteration:
    attempt: int
    attempt_ms: float  # the engine's own `attempt N` duration
    model_ms: float
    test_ms: float
    suite_ms: float  # the suite process alone, as the score step reports it
    model_calls: int
    records: int  # step records (SQLite transactions) of this iteration
    cycle_ms: float | None = None  # attempt N-1 record -> attempt N record
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_ms(self) -> float:
        assert self.cycle_ms is not None
        return self.cycle_ms - self.model_ms - self.test_ms

    @property
    def in_attempt_overhead_ms(self) -> float:
        return self.attempt_ms - self.model_ms - self.test_ms


@dataclass
class BareIteration:
    wall_ms: float
    model_ms: float
    test_ms: float
    suite_ms: float


PHASES = (
    ("between attempts", "cancel check, budget check, previous attempt's record"),
    ("propose: tools", "model reply → tool record: parse, edit (+ ruff lint), model record"),
    ("propose: rest", "prompt and conversation, tool records, before each model call"),
    ("commit", "git commit of the attempt (and the last tool record)"),
    ("keep/revert", "score record, git reset to the last kept commit"),
)


def iterations_from_steps(steps: list[dict[str, Any]]) -> list[Iteration]:
    """Split the patch phase's step records at each `attempt N` record."""
    out: list[Iteration] = []
    group: list[dict[str, Any]] = []
    started = False
    prev: dict[str, Any] | None = None
    for row in steps:
        if row["name"] == "patch" and row["kind"] == "model":
            started = True
        if not started:
            continue
        group.append(row)
        if not (row["kind"] == "deterministic" and row["name"].startswith("attempt ")):
            continue
        models = [r for r in group if r["kind"] == "model"]
        scores = [r for r in group if r["name"] == "score"]
        it = Iteration(
            attempt=int(row["name"].split()[1]),
            attempt_ms=row["duration_ms"],
            model_ms=sum(r["duration_ms"] for r in models),
            test_ms=sum(r["duration_ms"] for r in scores),
            suite_ms=sum(_suite_ms(r["output"]) for r in scores),
            model_calls=len(models),
            records=len(group),
        )
        if prev is not None and models and scores:
            start = row["created_at"] - row["duration_ms"] / 1000
            last_tool = [r for r in group if r["name"].startswith("tool:")][-1]
            score = scores[-1]
            score_start = score["created_at"] - score["duration_ms"] / 1000
            it.cycle_ms = (row["created_at"] - prev["created_at"]) * 1000
            tools = sum(
                (r["created_at"] - before["created_at"]) * 1000
                for before, r in itertools.pairwise(group)
                if before["kind"] == "model" and r["name"].startswith("tool:")
            )
            propose = (last_tool["created_at"] - start) * 1000 - it.model_ms
            it.phases = {
                "between attempts": it.cycle_ms - it.attempt_ms,
                "propose: tools": tools,
                "propose: rest": propose - tools,
                "commit": (score_start - last_tool["created_at"]) * 1000,
                "keep/revert": (row["created_at"] - score["created_at"]) * 1000,
            }
        out.append(it)
        prev, group = row, []
    return out


def _suite_ms(score_output: str) -> float:
    found = re.search(r"suite ran (\d+) ms in the sandbox", score_output or "")
    return float(found.group(1)) if found else float("nan")


def bare_tree(path: Path, config: str) -> Path:
    """A plain directory in the state the engine scores: the edit applied, both tests present."""
    if path.exists():
        shutil.rmtree(path)
    for name, text in {**fixrepo.files(config), "check.py": CHECK_PY}.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    edit = json.loads(WRONG[0])
    module = path / edit["path"]
    module.write_text(module.read_text().replace(edit["search"], edit["replace"], 1))
    n = ISSUE.number
    (path / f"tests/test_loopwright_issue_{n}.py").write_text(fixrepo.REPRO_TEST)
    (path / f"tests/test_loopwright_holdout_{n}.py").write_text(fixrepo.HOLDOUT_TEST)
    return path


async def bare_iterations(
    fake: FakeModel,
    settings: Settings,
    config: str,
    workdir: Path,
    repo_name: str,
    calls_per_iteration: list[int],
    first_call: int = 0,
) -> tuple[list[BareIteration], bool]:
    """The same model requests and the same sandboxed suite run, with no engine around them."""
    commands = parse_config(config).commands
    env = await prepare_environment(
        workdir,
        repo=repo_name,
        cache_root=settings.data_dir / "envs",
        setup_cmds=commands.setup_argv(),
        timeout=commands.setup_timeout_seconds,
        mode=settings.sandbox,
        run_as=settings.sandbox_user,
    )
    grant_workspace(workdir, settings.sandbox_user)
    requests = [c for c in fake.calls[first_call:] if c.step == "patch"]
    client = openai.AsyncOpenAI(
        base_url=fake.url,
        api_key="sk-bench",
        timeout=settings.model_timeout_seconds,
        max_retries=2,
    )
    out: list[BareIteration] = []
    try:
        for count in calls_per_iteration:
            batch, requests = requests[:count], requests[count:]
            started = time.perf_counter()
            model_s = 0.0
            for call in batch:
                request: dict[str, Any] = {
                    "model": call.model,
                    "messages": call.messages,
                    "temperature": 0,
                    "max_tokens": 1200,  # what loops/patch.py asks for
                    "response_format": call.response_format,
                    "extra_headers": {STEP_HEADER: "patch"},
                }
                t = time.perf_counter()
                resp = await client.chat.completions.create(**request)
                json.loads(resp.choices[0].message.content or "")
                model_s += time.perf_counter() - t
            t = time.perf_counter()
            run = await run_tests(
                workdir,
                test_cmd=commands.test_argv(),
                env=env,
                timeout=commands.test_timeout_seconds,
                mode=settings.sandbox,
                run_as=settings.sandbox_user,
            )
            test_s = time.perf_counter() - t
            if run.failing != {BROKEN_TEST} or not run.junit_found:
                raise SystemExit(f"bare run did not score like the engine's: {run.output[-800:]}")
            wall = time.perf_counter() - started
            out.append(
                BareIteration(wall * 1000, model_s * 1000, test_s * 1000, run.duration_s * 1000)
            )
    finally:
        await client.close()
    return out, env.cache_hit


async def lint_reference(n: int) -> list[float]:
    """What the Toolbox's lint check of one edit costs alone: ruff on the edited module."""
    ruff = find_ruff()
    if ruff is None:
        return []
    edit = json.loads(WRONG[0])
    after = fixrepo.WORDS_PY.replace(edit["search"], edit["replace"], 1)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await fatal_lint(ruff, edit["path"], after)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def iteration_bench(base: Path, n: int, rounds: int, run_as: str | None) -> str:
    config = bench_config(n + 1, patience=n)
    repo = write_repo(base / "calc-iter", config)
    tree = bare_tree(base / "bare-iter", config)
    full: list[Iteration] = []
    bare_full: list[BareIteration] = []
    run_s: list[float] = []
    env_hit = True
    async with running_model() as fake:
        fake.script("write_test", fixrepo.repro_answer())
        fake.script("patch", scripted_turns(WRONG))
        settings = settings_for(base / "data-iter", fake, run_as)
        async with Runtime.open(settings, model=True) as rt:
            # Engine and bare alternate, so a drift of the machine does not favour either.
            for _ in range(rounds):
                first_call = len(fake.calls)
                started = time.perf_counter()
                result = await fix_once(rt, repo)
                run_s.append(time.perf_counter() - started)
                data = result.as_dict()
                verdicts = [a["verdict"] for a in data.get("attempts", [])]
                if verdicts != ["reverted"] * n:
                    raise SystemExit(
                        f"expected {n} reverted attempts, got {verdicts} "
                        f"(exit {data['exit']}: {data['detail']})"
                    )
                its = iterations_from_steps(await rt.store.steps_for(result.run_id))
                bare, hit = await bare_iterations(
                    fake,
                    settings,
                    config,
                    tree,
                    f"local/{repo.name}",
                    [it.model_calls for it in its],
                    first_call,
                )
                env_hit = env_hit and hit
                full += [it for it in its if it.cycle_ms is not None]
                bare_full += bare[1:]  # the same iterations (attempt 1 is left out of both)
    lint = await lint_reference(n)

    def row(
        label: str, engine: list[float], bare_vals: list[float] | None, ratio: bool = True
    ) -> list[str]:
        cells = [label, ms(median(engine)), ms(p90(engine))]
        if bare_vals is None:
            return [*cells, "-", "-", "-"]
        cells += [ms(median(bare_vals)), ms(p90(bare_vals))]
        if not ratio or not median(bare_vals):
            return [*cells, "-"]
        return [*cells, f"{median(engine) / median(bare_vals):.2f}x"]

    overhead = [it.overhead_ms for it in full]
    share = [100 * it.overhead_ms / (it.cycle_ms or 1.0) for it in full]
    rows = [
        row("iteration wall", [it.cycle_ms or 0.0 for it in full], [b.wall_ms for b in bare_full]),
        row(
            "model (HTTP round trips)",
            [it.model_ms for it in full],
            [b.model_ms for b in bare_full],
        ),
        row(
            "test (`score` step / `run_tests`)",
            [it.test_ms for it in full],
            [b.test_ms for b in bare_full],
        ),
        row(
            "… of which the suite process",
            [it.suite_ms for it in full],
            [b.suite_ms for b in bare_full],
        ),
        row(
            "**engine overhead** (wall - model - test)",
            overhead,
            [b.wall_ms - b.model_ms - b.test_ms for b in bare_full],
            ratio=False,
        ),
        ["engine overhead, % of iteration", f"{median(share):.1f} %", f"{p90(share):.1f} %"]
        + ["-"] * 3,
        row("engine's own `attempt N` duration", [it.attempt_ms for it in full], None),
        row("overhead inside `attempt N`", [it.in_attempt_overhead_ms for it in full], None),
    ]
    headers = ["per iteration (ms)", "engine median", "engine p90", "bare median", "bare p90"]
    wrapping = [it.test_ms - it.suite_ms for it in full]
    phase_rows = [
        [
            name,
            ms(median([it.phases[name] for it in full])),
            ms(p90([it.phases[name] for it in full])),
            what,
        ]
        for name, what in PHASES
    ]
    phase_rows.append(["**total**", ms(median(overhead)), ms(p90(overhead)), ""])
    if lint:
        phase_rows.append(
            [
                "(reference) ruff check of the edit, alone",
                ms(median(lint)),
                ms(p90(lint)),
                "the Toolbox lints every accepted .py edit in a subprocess: part of propose",
            ]
        )
    phase_rows.append(
        [
            "(not counted) score step beyond the suite process",
            ms(median(wrapping)),
            ms(p90(wrapping)),
            "holdout write/remove, grant, untracked scans, JUnit parse: inside test time",
        ]
    )
    return "\n".join(
        [
            f"### 1. Engine overhead per iteration ({len(full)} iterations: attempts 2..{n} of "
            f'{rounds} run(s), each "break another test" → scored → reverted)',
            "",
            f"Run exit: `{data['exit']}` ({data['detail']}); whole run "
            f"{', '.join(f'{s:.1f}' for s in run_s)} s; "
            f"{full[0].model_calls} model calls and {full[0].records} step records per "
            f"iteration; test command `{TEST_COMMAND}`; bare test environment "
            f"{'reused from the engine run' if env_hit else 'rebuilt'}.",
            "",
            table([*headers, "engine / bare"], rows),
            "",
            "Bare = the same requests through a plain openai client and the same `run_tests` "
            "call, no engine (its overhead row is the benchmark's own loop glue).",
            "",
            "Where the engine overhead goes (ms per iteration, from step timestamps):",
            "",
            table(["phase", "median", "p90", "what"], phase_rows, text_last=True),
        ]
    )


# --- table 2: memory ----------------------------------------------------------------------------


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class RssSampler:
    """Samples this process's RSS from a thread, so a busy event loop does not skew it."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.peak = rss_kb()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_kb())
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb())


async def memory_child(k: int, base: Path, run_as: str | None) -> dict[str, Any]:
    config = bench_config(6)
    warm = write_repo(base / "calc-warm", config)
    repos = [write_repo(base / f"calc-{i}", config) for i in range(k)]
    async with running_model() as fake:
        fake.script("write_test", fixrepo.repro_answer())
        fake.script("patch", scripted_turns(fixrepo.RIGHT_FIX))
        async with Runtime.open(settings_for(base / "data", fake, run_as), model=True) as rt:
            warm_exit = (await fix_once(rt, warm)).outcome.exit.value
            gc.collect()
            before = rss_kb()
            started = time.perf_counter()
            with RssSampler() as sampler:
                results = await asyncio.gather(*(fix_once(rt, r) for r in repos))
            wall = time.perf_counter() - started
    return {
        "k": k,
        "before_kb": before,
        "peak_kb": sampler.peak,
        "samples": sampler.samples,
        "wall_s": wall,
        "warm_exit": warm_exit,
        "exits": [r.outcome.exit.value for r in results],
    }


def memory_bench(base: Path, ks: list[int]) -> str:
    results: list[dict[str, Any]] = []
    for k in ks:
        child = base / f"mem-{k}"
        child.mkdir()
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(k), "--dir", str(child)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"memory child K={k} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    per_loop_1 = None
    rows = []
    for r in results:
        delta = (r["peak_kb"] - r["before_kb"]) / 1024
        per_loop = delta / r["k"]
        if r["k"] == 1:
            per_loop_1 = per_loop
        exits = ", ".join(f"{n}× {e}" for e, n in sorted(_count(r["exits"]).items()))
        rows.append(
            [
                str(r["k"]),
                f"{r['before_kb'] / 1024:.1f}",
                f"{r['peak_kb'] / 1024:.1f}",
                f"{delta:.1f}",
                f"**{per_loop:.1f}**",
                f"{per_loop / per_loop_1:.2f}x" if per_loop_1 else "-",
                f"{r['wall_s']:.1f}",
                str(r["samples"]),
                exits,
            ]
        )
    return "\n".join(
        [
            "### 2. Memory per concurrent loop (full fix pipelines, `RIGHT_FIX`, a process per K)",
            "",
            table(
                [
                    "K",
                    "RSS before (MB)",
                    "peak RSS (MB)",
                    "peak - before (MB)",
                    "per loop (MB)",
                    "per loop vs K=1",
                    "wall (s)",
                    "RSS samples",
                    "exits",
                ],
                rows,
            ),
            "",
            "RSS of the engine process only (after one warm-up pipeline); sandboxed children "
            "(bubblewrap, venv setup, the project's tests) are not counted.",
        ]
    )


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


# --- main ---------------------------------------------------------------------------------------


def machine_info(run_as: str | None) -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?"
            )
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: {os.cpu_count()} cores ({usable} usable), {model}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"sandbox bwrap as {run_as or 'this user'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=15, help="patch attempts (2..49)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="engine runs, each followed by its bare replay"
    )
    parser.add_argument("--concurrency", default="1,4,8", help="comma-separated K values")
    parser.add_argument("--dir", default=None, help="where temporary data goes (kept)")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    why = bwrap_works()
    if why:
        raise SystemExit(f"cannot benchmark the sandboxed loop: {why}")
    run_as = ensure_sandbox_user()
    if args.memory_child is not None:
        result = asyncio.run(memory_child(args.memory_child, Path(args.dir), run_as))
        print(json.dumps(result))
        return
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    if not 2 <= args.iterations <= 49:
        raise SystemExit("--iterations must be between 2 and 49 (budgets.max_iterations <= 50)")
    ks = [int(part) for part in args.concurrency.split(",") if part.strip()]
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="lw-loop-bench-", dir=args.dir))
    else:
        base = Path(tempfile.mkdtemp(prefix="lw-loop-bench-"))
    try:
        print(f"# Loop overhead — {time.strftime('%Y-%m-%d %H:%M')}")
        print()
        print(machine_info(run_as))
        print()
        print(asyncio.run(iteration_bench(base, args.iterations, args.rounds, run_as)), flush=True)
        print()
        if ks:
            print(memory_bench(base, ks))
            print()
        print("Goals: engine overhead < 20 ms per iteration; < 50 MB per concurrent loop.")
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
