"""Benchmark: how many tokens do the CI-failure and dependency loops spend, per step and per run?

bench/tokens.py measures the fix loop; this measures the two loops that start from GitHub
events: `ci_repair` (a red workflow run → diagnosis → reproduction → fixers or the model's
repair → draft PR) and `deps` (a Dependabot PR → suite on base and head → verdict → release-note
summary → on breaks, the migration). They need GitHub, so they run exactly as their end-to-end
tests run them (tests/test_e2e_ci.py, tests/test_e2e_deps.py): `loopwright serve` in-process with
two workers, a FakeGitHub (REST, Actions logs, git smart HTTP), the scripted OpenAI-compatible
model of tests/support/fakemodel.py, a signed webhook delivery, the sandbox (bubblewrap, as the
unprivileged test user when we are root). One fresh FakeGitHub, model server, data directory
and git root per scenario:

1. CI: red PR         — the PR's `mean` divides by the wrong count
                        (tests/support/cirepo.broken_pr_files): the parsers find the failing
                        test, the scripted model repairs it (one edit, one finish), a draft PR
                        is opened;
2. CI: lint on main   — an unused import (cirepo.lint_files): `ruff check --fix` repairs it;
3. CI: ambiguous      — a `make check` job whose log only says that a check failed: the parsers
                        cannot classify it, so the `summarize` model is asked once to explain
                        (scripted `{"category": "unknown", …}`); nothing can be reproduced;
4. CI: flaky test     — cirepo.flaky_files: fails 2 of 3 sandbox runs, labelled, never patched;
5. deps: breaking     — fakelib 1.0.0 → 2.0.0 renames `greet`: release-note summary
                        (cirepo.NOTES_SUMMARY) + migration (cirepo.MIGRATION: view, edit, finish);
6. deps: safe         — fakelib 1.0.0 → 1.0.1: release-note summary only.

It prints three Markdown tables: tokens per model step, tokens per run, wall time per scenario.

How the tokens are counted: as bench/tokens.py counts them (its tokenizer, chat rendering and
request/step pairing are imported from it, not re-implemented): the Gemma 3 tokenizer of the
GGUF the `local` extra ships (vocab only); prompt = the exact messages each request sent, in
Gemma's turn format, plus the generation prompt; completion = the scripted reply text. The
JSON schema of `response_format` is not counted (llama.cpp makes it a grammar, not prompt
text). Each model step recorded in the run's steps is paired with the request the scripted
server received for it (the pairing fails loudly if they disagree).

What is counted and what is not:

- counted: every request the loop sends to the model — the diagnosis' explanation and the
  release-note summary (`summarize`), every turn of the repair/migration (`patch`);
- not counted, because no model is involved: fetching and parsing the logs, the diff against
  the last passing run, the reproduction runs, the deterministic fixers (ruff), the
  verification runs, the test suites on base and head, the verdict, labels, check runs, the
  sticky comment and the PR (all deterministic: 0 tokens);
- not counted: the schema of the structured reply, and anything a real model would add — the
  scripted replies are short and exact, so the completion tokens (and the number of turns) are
  a floor for a model that gets it right the first time;
- the "% of budget" column compares the real total with `budgets.max_tokens` (40k by default).
  The loops charge their budget with the usage the server reports (the scripted server's
  chars/4 estimate, shown as "charged"), and only the repair/migration (`patch_stage`) is
  bounded by it: the one `summarize` call of a run comes on top.

Wall time per scenario: the whole scenario (stack up, fixture logs produced by running the real
ruff/pytest on the host, delivery, the run, teardown) and the run alone (its `started_at` →
`finished_at` in the store).

Usage: .venv/bin/python bench/ci_tokens.py [--model-data-dir DIR] [--keep]
(run as root: the sandboxed commands run as the `lw-sandbox-test` user, created if missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.tokens import (  # noqa: E402
    CallTokens,
    GemmaTokenizer,
    bench_setup,
    markdown,
    n,
    pair_calls,
    run_scenarios,
    step_cells,
)
from bot.repo_config import BudgetConfig  # noqa: E402
from tests.support import cirepo  # noqa: E402
from tests.support.ci_stacks import CI_REPO, DEPS_REPO, WORKFLOW_ID, CiStack, DepsStack  # noqa: E402
from tests.support.cilog_fixtures import actions_log  # noqa: E402
from tests.support.e2e import Stack, serve_repo  # noqa: E402
from tests.support.fakegithub import FakeJob  # noqa: E402
from tests.support.fakemodel import running_model  # noqa: E402

#: The default `budgets.max_tokens` of .github/loopwright.yml.
BUDGET_TOKENS = BudgetConfig().max_tokens
MODEL_STEPS = ("summarize", "patch")
SETTLE_SECONDS = 180

# --- scenarios ------------------------------------------------------------------------------------

#: The fixture's workflow plus a job that runs a Makefile target (not a plain call of a known
#: tool, so the loop cannot reproduce it).
CHECK_WORKFLOW = (
    cirepo.WORKFLOW
    + "  check:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n"
    "      - run: make check\n"
)
#: Neutral output: no test, lint, type, dependency or runner failure the parsers know.
MAKE_CHECK_OUTPUT = """./scripts/check-layout.sh
checking the package layout
checking the changelog entry
2 checks run, 1 did not pass (see above)
make: *** [Makefile:4: check] Error 1
"""
EXPLANATION = json.dumps(
    {
        "category": "unknown",
        "explanation": "The `make check` target ran two project checks (package layout, "
        "changelog entry) and one of them failed; the log does not say which one or why.",
    }
)


async def red_pr(s: CiStack) -> None:
    s.green_main_run()
    _, run = s.open_broken_pr()
    s.script_mean_fix()
    await s.deliver_run(run)
    await s.settle(timeout=SETTLE_SECONDS)


async def lint_on_main(s: CiStack) -> None:
    await s.deliver_run(s.red_lint_on_main())
    await s.settle(timeout=SETTLE_SECONDS)


async def ambiguous(s: CiStack) -> None:
    sha = s.gh.seed_git(
        CI_REPO, {".github/workflows/ci.yml": CHECK_WORKFLOW}, message="add make check"
    )
    steps = [("Set up job", "success"), ("Run actions/checkout@v4", "success")]
    job = FakeJob(
        "check",
        "failure",
        [*steps, ("Run make check", "failure")],
        log=actions_log([("make check", MAKE_CHECK_OUTPUT, 2)]),
    )
    run = s.gh.add_workflow_run(
        CI_REPO,
        workflow_id=WORKFLOW_ID,
        name="ci",
        head_branch="main",
        head_sha=sha,
        event="push",
        conclusion="failure",
        jobs=[job],
    )
    s.model.script("summarize", EXPLANATION)
    await s.deliver_run(run)
    await s.settle(timeout=SETTLE_SECONDS)


async def flaky(s: CiStack) -> None:
    _, run = s.open_flaky_pr()
    await s.deliver_run(run)
    await s.settle(timeout=SETTLE_SECONDS)


async def deps_breaking(s: DepsStack) -> None:
    pr = s.open_bump("2.0.0")
    s.model.script("summarize", cirepo.NOTES_SUMMARY)
    s.model.script("patch", *cirepo.MIGRATION)
    await s.opened(pr)


async def deps_safe(s: DepsStack) -> None:
    pr = s.open_bump("1.0.1")
    s.model.script("summarize", '{"bullets": ["Packaging fixes only."]}')
    await s.opened(pr)


@dataclass(frozen=True)
class Scenario:
    name: str
    loop: str
    run: Callable[[Any], Awaitable[None]]
    expected_exit: str
    expected_calls: int


SCENARIOS = [
    Scenario("CI: red PR (test failure)", "ci_repair", red_pr, "fixed", 2),
    Scenario("CI: lint on main (ruff --fix)", "ci_repair", lint_on_main, "fixed", 0),
    Scenario("CI: ambiguous (make check)", "ci_repair", ambiguous, "not_reproduced", 1),
    Scenario("CI: flaky test", "ci_repair", flaky, "flaky", 0),
    Scenario("deps: 1.0.0 → 2.0.0 breaks", "deps", deps_breaking, "fixed", 4),
    Scenario("deps: 1.0.0 → 1.0.1 safe", "deps", deps_safe, "done", 1),
]


# --- runs -----------------------------------------------------------------------------------------


#: Per loop, what its fixture (`ci_stack`, `deps_stack`) sets up: repository, files,
#: collaborators, stack class.
STACKS: dict[str, tuple[str, Callable[[], dict[str, Any]], dict[str, str], type[Stack]]] = {
    "ci_repair": (CI_REPO, cirepo.ci_files, {"maintainer": "write", "reader": "read"}, CiStack),
    "deps": (DEPS_REPO, cirepo.deps_files, {"maintainer": "write"}, DepsStack),
}


@contextlib.asynccontextmanager
async def open_stack(loop: str, base: Path, run_as: str | None) -> AsyncIterator[Any]:
    """What the `ci_stack` / `deps_stack` fixtures build, without pytest."""
    repo, files, collaborators, cls = STACKS[loop]
    async with contextlib.AsyncExitStack() as stack:
        model = await stack.enter_async_context(running_model())
        plain = await serve_repo(
            stack, base, model, repo, files(), collaborators=collaborators, sandbox_user=run_as
        )
        yield cls(**vars(plain))


@dataclass
class ScenarioResult:
    scenario: Scenario
    exit: str
    detail: str
    charged: int
    seconds: float
    run_seconds: float
    calls: list[CallTokens] = field(default_factory=list)

    def of_step(self, step: str) -> list[CallTokens]:
        return [c for c in self.calls if c.step == step]


async def run_scenario(
    scenario: Scenario, base: Path, run_as: str | None, tok: GemmaTokenizer
) -> ScenarioResult:
    base.mkdir(parents=True)
    started = time.perf_counter()
    async with open_stack(scenario.loop, base, run_as) as s:
        await scenario.run(s)
        jobs = await s.store.list_jobs()
        unfinished = [
            (j["kind"], j["state"], j["last_error"]) for j in jobs if j["state"] != "done"
        ]
        if unfinished:
            raise RuntimeError(f"jobs did not finish: {unfinished}")
        runs = await s.store.list_runs()
        if len(runs) != 1 or runs[0]["loop"] != scenario.loop:
            raise RuntimeError(f"expected one {scenario.loop} run, got {[r['loop'] for r in runs]}")
        (run,) = runs
        rows = await s.store.steps_for(run["id"])
        requests = list(s.model.calls)
    return ScenarioResult(
        scenario,
        str(run["exit_reason"]),
        str(run["detail"] or ""),
        int(run["prompt_tokens"] or 0) + int(run["completion_tokens"] or 0),
        time.perf_counter() - started,
        float(run["finished_at"] or 0) - float(run["started_at"]),
        pair_calls(requests, rows, tok),
    )


# --- tables ---------------------------------------------------------------------------------------


def per_step_table(results: list[ScenarioResult]) -> str:
    header = [
        "scenario",
        "step",
        "calls",
        "prompt tokens",
        "completion tokens",
        "median prompt / call",
    ]
    rows = []
    for r in results:
        steps = [*MODEL_STEPS, *sorted({c.step for c in r.calls} - set(MODEL_STEPS))]
        for step in steps:
            rows.append([r.scenario.name, step, *step_cells(r.of_step(step))])
    return markdown(header, rows, right={2, 3, 4, 5})


def expected(value: str, want: str) -> str:
    return value if value == want else f"{value} (expected {want})"


def per_run_table(results: list[ScenarioResult]) -> str:
    header = [
        "scenario",
        "exit (store)",
        "model calls",
        "prompt",
        "completion",
        "total",
        f"% of the {BUDGET_TOKENS // 1000}k budget",
        "charged (chars/4)",
    ]
    rows = []
    for r in results:
        prompt = sum(c.prompt for c in r.calls)
        completion = sum(c.completion for c in r.calls)
        total = prompt + completion
        rows.append(
            [
                r.scenario.name,
                expected(r.exit, r.scenario.expected_exit),
                expected(str(len(r.calls)), str(r.scenario.expected_calls)),
                n(prompt),
                n(completion),
                n(total),
                f"{100 * total / BUDGET_TOKENS:.1f} %",
                n(r.charged),
            ]
        )
    return markdown(header, rows, right={2, 3, 4, 5, 6, 7})


def wall_table(results: list[ScenarioResult]) -> str:
    header = ["scenario", "scenario wall clock", "of which the run"]
    rows = [[r.scenario.name, f"{r.seconds:.1f} s", f"{r.run_seconds:.1f} s"] for r in results]
    rows.append(["all", f"{sum(r.seconds for r in results):.1f} s", ""])
    return markdown(header, rows, right={1, 2})


# --- main -----------------------------------------------------------------------------------------


async def main() -> int:
    setup = await bench_setup(__doc__ or "", "lw-bench-ci-tokens-")
    if setup is None:
        return 2
    path = setup.gguf
    results = await run_scenarios(setup, SCENARIOS, run_scenario)

    print(f"## Tokens per model step (Gemma 3 tokenizer, `{path.name}`)\n")
    print(per_step_table(results))
    print(
        "\nLog parsing, reproduction, fixers, verification, test suites and verdicts are "
        "deterministic: 0 tokens. Completion tokens are those of the scripted replies.\n"
    )
    print(f"## Tokens per run (budget: `budgets.max_tokens` = {n(BUDGET_TOKENS)})\n")
    print(per_run_table(results))
    print(
        "\nOnly the repair/migration is bounded by the budget (charged with the server's "
        "chars/4 usage); the `summarize` call comes on top.\n"
    )
    print("## Wall time per scenario\n")
    print(wall_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
