"""Benchmark: how many tokens does one fix spend, per step and per whole fix?

The goal: a whole fix (reproduce + patch + re-test) in at most 40k tokens, about a tenth of
what a general coding agent spends on such a task. This runs the real `fix` loop in-process
(`Runtime.open` + `run_local`, dry run, no GitHub) on the fixture project of
tests/support/fixrepo.py, one fresh repository and data directory per scenario, with the sandbox
(bubblewrap, as the unprivileged test user when we are root) and the scripted OpenAI-compatible
model of tests/support/fakemodel.py:

1. right fix     — the reproduction is accepted, the first patch attempt is the right fix;
2. wrong first   — every patch of tests/support/fixrepo.WRONG_PATCHES (refused or reverted),
                   then the right fix (patience and budgets raised so that the loop gets there);
3. not reproduced — the "reproduction" passes on base, twice: the loop gives up before patching;
4. flaky fix     — a patch that passes only on some runs: the re-test refuses it.

and prints two Markdown tables: tokens per model step, and tokens per whole fix.

How the tokens are counted (real tokens, not the scripted server's chars/4 estimate):

- with the tokenizer of the embedded model, Gemma 3 (the GGUF the `local` extra ships, loaded
  with llama-cpp-python in vocab-only mode; found like bot/local_model.model_path does);
- prompt tokens: the exact messages each request sent (recorded by the scripted server),
  rendered in Gemma's turn format and tokenized as one text: `<bos>`, then per message
  `<start_of_turn>{user|model}\\n{content}<end_of_turn>\\n` (5 tokens of overhead per message),
  then the generation prompt `<start_of_turn>model\\n` (3 tokens). The JSON schema of
  `response_format` is not counted: llama.cpp turns it into a grammar, not prompt text (an
  OpenAI-style endpoint may add it to the prompt; that would come on top);
- completion tokens: the reply text, without an end-of-turn token.

What the numbers mean: the prompt tokens are the real prompts the loop builds (the issue,
the localization, the example test, the reproduction test and its failure, tool results and
the conversation so far). The scripted replies are short and exact — a real model would write
about as much code but may add prose, take more turns and make invalid replies that cost a
retry — so the completion tokens are those of the scripted replies and the totals are a floor
for a model that gets it right in as many turns. The re-test step spends no tokens: it is
deterministic (the reproduction and the held-out variant run N times on base and head), as are
the checkout, baseline, localization and scoring steps. The "chars/4" columns are what the
scripted server reported, which is also what the loop's budget was charged.

The "vs a general agent" column assumes ~400k tokens per fix for a general agent (ten times the
goal, as the issue puts it); it is an assumption, not a measurement.

Usage: python bench/tokens.py [--model-data-dir DIR] [--keep]
(run as root: the sandboxed commands run as the `lw-sandbox-test` user, created if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import Runtime, run_local  # noqa: E402
from bot.forge import DryRunForge, Issue  # noqa: E402
from bot.local_model import model_path  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.support import fixrepo  # noqa: E402
from tests.support.fakemodel import ModelCall, running_model  # noqa: E402
from tests.support.sandbox_user import bwrap_works, ensure_sandbox_user  # noqa: E402

GOAL_TOKENS = 40_000
#: Assumption (from the issue: the goal is "about a tenth of what general agents spend").
GENERAL_AGENT_TOKENS = 400_000
#: Where the GGUF is assembled once (shared with bench/triage_eval.py).
DEFAULT_MODEL_DATA_DIR = Path.home() / ".cache" / "loopwright-bench"
MODEL_STEPS = ("write_test", "patch")
#: Gemma's turn names. The loop sends no system message; one would be counted as a user turn
#: (Gemma's template folds it into the first user turn: a few tokens fewer).
GEMMA_ROLES = {"user": "user", "system": "user", "assistant": "model"}
BIG_BUDGETS = "budgets:\n  max_iterations: 12\n  max_tokens: 1000000\n"


# --- scenarios ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    config: str
    scripts: dict[str, list[str]]
    expected_exit: str


S = TypeVar("S")
R = TypeVar("R")


def scenarios() -> list[Scenario]:
    wrong = [action for attempt in fixrepo.WRONG_PATCHES.values() for action in attempt]
    return [
        Scenario(
            "right fix at the first attempt",
            fixrepo.loopwright_config(),
            {"write_test": [fixrepo.repro_answer()], "patch": list(fixrepo.RIGHT_FIX)},
            "fixed",
        ),
        Scenario(
            f"{len(fixrepo.WRONG_PATCHES)} wrong patches, then the right one",
            fixrepo.loopwright_config(patience=len(fixrepo.WRONG_PATCHES) + 1, max_turns=3)
            + BIG_BUDGETS,
            {"write_test": [fixrepo.repro_answer()], "patch": [*wrong, *fixrepo.RIGHT_FIX]},
            "fixed",
        ),
        Scenario(
            "not reproducible (2 tries)",
            fixrepo.loopwright_config(reproduce_attempts=2),
            {"write_test": [fixrepo.repro_answer(test=fixrepo.PASSING_TEST)]},
            "not_reproduced",
        ),
        Scenario(
            "flaky fix",
            fixrepo.loopwright_config(),
            {"write_test": [fixrepo.repro_answer(holdout="")], "patch": list(fixrepo.FLAKY_FIX)},
            "flaky",
        ),
    ]


# --- tokens ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """llama.cpp logs to file descriptor 2 even with verbose=False while a model loads."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class GemmaTokenizer:
    """The embedded model's tokenizer (vocab only: no weights are loaded)."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        with quiet_stderr():
            self.llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def prompt(self, messages: list[dict[str, Any]]) -> int:
        """The request's messages as Gemma's chat template renders them, plus the generation
        prompt: what the model reads before its first output token."""
        turns = "".join(
            f"<start_of_turn>{GEMMA_ROLES.get(str(m.get('role')), 'user')}\n"
            f"{m.get('content') or ''}<end_of_turn>\n"
            for m in messages
        )
        return self.count(f"<bos>{turns}<start_of_turn>model\n")


def gguf_path(data_dir: Path) -> Path:
    """The GGUF the `local` extra ships (or LOOPWRIGHT_LOCAL_MODEL_PATH), assembled once."""
    return model_path(load_settings(data_dir=data_dir))


# --- runs -----------------------------------------------------------------------------------------


@dataclass
class CallTokens:
    step: str
    prompt: int
    completion: int
    est_prompt: int
    est_completion: int


@dataclass
class ScenarioResult:
    scenario: Scenario
    exit: str
    detail: str
    seconds: float
    calls: list[CallTokens] = field(default_factory=list)

    def of_step(self, step: str) -> list[CallTokens]:
        return [c for c in self.calls if c.step == step]


def pair_calls(
    requests: list[ModelCall], rows: list[dict[str, Any]], tok: GemmaTokenizer
) -> list[CallTokens]:
    """Each recorded model step with the request the scripted server received for it."""
    model_rows = [r for r in rows if r["kind"] == "model"]
    if len(model_rows) != len(requests) or any(
        r["name"] != c.step for r, c in zip(model_rows, requests, strict=False)
    ):
        raise RuntimeError(
            f"model steps {[r['name'] for r in model_rows]} do not match the requests "
            f"{[c.step for c in requests]}"
        )
    out = []
    for row, request in zip(model_rows, requests, strict=True):
        answered = row["verdict"] != "unavailable"
        out.append(
            CallTokens(
                step=request.step,
                prompt=tok.prompt(request.messages),
                completion=tok.count(row["output"] or "") if answered else 0,
                est_prompt=int(row["prompt_tokens"] or 0),
                est_completion=int(row["completion_tokens"] or 0),
            )
        )
    return out


async def run_scenario(
    scenario: Scenario, base: Path, run_as: str | None, tok: GemmaTokenizer
) -> ScenarioResult:
    base.mkdir(parents=True)
    repo = fixrepo.write_local_repo(base / "calc", scenario.config)
    started = time.perf_counter()
    async with running_model() as fake:
        for step, answers in scenario.scripts.items():
            fake.script(step, *answers)
        settings = load_settings(
            data_dir=base / "data",
            model_base_url=fake.url,
            model_api_key="sk-bench",
            sandbox_user=run_as,
        )
        issue = Issue(number=1, title=fixrepo.ISSUE_TITLE, body=fixrepo.ISSUE_BODY, author="bench")
        forge = DryRunForge(f"local/{repo.name}", issue=issue, repo_path=repo)
        async with Runtime.open(settings, model=True) as rt:
            result = await run_local(rt, "fix", forge.repo, forge, 1, repo_path=repo)
            rows = await rt.store.steps_for(result.run_id)
        requests = list(fake.calls)
    return ScenarioResult(
        scenario,
        result.outcome.exit.value,
        result.outcome.detail,
        time.perf_counter() - started,
        pair_calls(requests, rows, tok),
    )


# --- tables ---------------------------------------------------------------------------------------


def markdown(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def n(value: float) -> str:
    return f"{value:,.0f}"


def step_cells(calls: list[CallTokens]) -> list[str]:
    """calls, prompt tokens, completion tokens, median prompt per call: one step's cells."""
    prompts = [c.prompt for c in calls]
    return [
        str(len(calls)),
        n(sum(prompts)),
        n(sum(c.completion for c in calls)),
        n(statistics.median(prompts)) if prompts else "–",
    ]


def per_step_table(results: list[ScenarioResult]) -> str:
    header = [
        "scenario",
        "step",
        "calls",
        "prompt tokens",
        "completion tokens",
        "median prompt / call",
        "max prompt / call",
        "prompt + completion (chars/4)",
    ]
    rows = []
    for r in results:
        for step in MODEL_STEPS:
            calls = r.of_step(step)
            prompts = [c.prompt for c in calls]
            rows.append(
                [
                    r.scenario.name,
                    step,
                    *step_cells(calls),
                    n(max(prompts)) if prompts else "–",
                    f"{n(sum(c.est_prompt for c in calls))} + "
                    f"{n(sum(c.est_completion for c in calls))}",
                ]
            )
    return markdown(header, rows, right={2, 3, 4, 5, 6, 7})


def per_fix_table(results: list[ScenarioResult]) -> str:
    header = [
        "scenario",
        "exit",
        "model calls",
        "prompt",
        "completion",
        "total",
        f"% of the {GOAL_TOKENS // 1000}k goal",
        f"vs a general agent (~{GENERAL_AGENT_TOKENS // 1000}k, assumed)",
        "total (chars/4)",
        "wall clock",
    ]
    rows = []
    for r in results:
        prompt = sum(c.prompt for c in r.calls)
        completion = sum(c.completion for c in r.calls)
        total = prompt + completion
        estimate = sum(c.est_prompt + c.est_completion for c in r.calls)
        exit_ = (
            r.exit
            if r.exit == r.scenario.expected_exit
            else (f"{r.exit} (expected {r.scenario.expected_exit})")
        )
        rows.append(
            [
                r.scenario.name,
                exit_,
                str(len(r.calls)),
                n(prompt),
                n(completion),
                n(total),
                f"{100 * total / GOAL_TOKENS:.1f} %",
                f"{total / GENERAL_AGENT_TOKENS:.3f}× (1/{GENERAL_AGENT_TOKENS / total:.0f})"
                if total
                else "0×",
                n(estimate),
                f"{r.seconds:.1f} s",
            ]
        )
    return markdown(header, rows, right={2, 3, 4, 5, 6, 7, 8, 9})


# --- main -----------------------------------------------------------------------------------------


@dataclass
class BenchSetup:
    """What every token benchmark starts from: arguments, sandbox user, tokenizer, work dir."""

    args: argparse.Namespace
    run_as: str | None
    tok: GemmaTokenizer
    gguf: Path
    work: Path


async def bench_setup(doc: str, prefix: str) -> BenchSetup | None:
    """Parse the common arguments, check the sandbox, load the tokenizer (None: cannot run)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--model-data-dir",
        type=Path,
        default=DEFAULT_MODEL_DATA_DIR,
        help="where the embedded GGUF is assembled once (its models/ folder)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scenario directories")
    args = parser.parse_args()
    problem = bwrap_works()
    if problem:
        print(f"cannot run the sandbox: {problem}", file=sys.stderr)
        return None
    run_as = ensure_sandbox_user()
    path = await asyncio.to_thread(gguf_path, args.model_data_dir)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    return BenchSetup(args, run_as, GemmaTokenizer(path), path, work)


async def run_scenarios(
    setup: BenchSetup,
    scenarios: list[S],
    run_one: Callable[[S, Path, str | None, GemmaTokenizer], Awaitable[R]],
) -> list[R]:
    """Run each scenario in its own directory under the work dir, reporting on stderr."""
    results = []
    try:
        for i, scenario in enumerate(scenarios, 1):
            print(f"[{i}] {getattr(scenario, 'name', i)} …", file=sys.stderr, flush=True)
            result = await run_one(scenario, setup.work / f"s{i}", setup.run_as, setup.tok)
            exit_, detail = getattr(result, "exit", ""), getattr(result, "detail", "")
            print(f"    {exit_}: {detail}", file=sys.stderr, flush=True)
            results.append(result)
    finally:
        if setup.args.keep:
            print(f"kept {setup.work}", file=sys.stderr)
        else:
            shutil.rmtree(setup.work, ignore_errors=True)
    return results


async def main() -> int:
    setup = await bench_setup(__doc__ or "", "lw-bench-tokens-")
    if setup is None:
        return 2
    path = setup.gguf
    results = await run_scenarios(setup, scenarios(), run_scenario)

    print(f"## Tokens per model step (Gemma 3 tokenizer, `{path.name}`)\n")
    print(per_step_table(results))
    print(
        "\nRe-test, baseline, localization and scoring are deterministic: 0 tokens. Completion "
        "tokens are those of the scripted replies.\n"
    )
    print(f"## Tokens per whole fix (reproduce + patch + re-test; goal ≤ {n(GOAL_TOKENS)})\n")
    print(per_fix_table(results))
    print(
        f"\nThe general-agent figure (~{n(GENERAL_AGENT_TOKENS)} tokens per fix) is an "
        'assumption taken from the goal ("about a tenth of what general agents spend"), not a '
        "measurement."
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
