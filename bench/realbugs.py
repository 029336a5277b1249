"""Real bugs through `loopwright run fix`, played by oracle models (tests/support/realbugs.py).

Every bug of the corpus goes through the real CLI (a subprocess, the real sandbox as the
unprivileged user, the oracle over HTTP through the real `openai` client), once with the oracle
(the upstream test and fix) and once with each wrong oracle (special-cases the visible test;
weakens or skips the test). Prints one row per (bug, oracle):

    bug · oracle · setup s · reproduction accepted? · exit · kept diff = upstream fix? ·
    wrong patch kept? · prompt tokens · wall s per phase (baseline, reproduce, patch, re-test)

Goal: the oracle ends `fixed` (`behaviour_change` where the upstream fix changed an existing
test's expectation), no wrong patch is ever kept, and a whole fix stays well inside the default
40k-token budget.

    python bench/realbugs.py [--corpus DIR] [--bugs thefuck-1,tornado-4] [--oracles oracle]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import realbugs  # noqa: E402
from tests.support.fakemodel import FakeModel  # noqa: E402

SHARED = ROOT.parent / "shared" / "realbugs"
#: Where the upstream change also rewrote existing tests, the fix may still leave the old
#: expectations intact (then `fixed` is right) or break them (`behaviour_change`).
EXPECTED = {False: "fixed", True: "fixed|behaviour_change"}


def sandbox_user() -> str:
    if os.geteuid() != 0:
        return ""
    return os.environ.get("LOOPWRIGHT_SANDBOX_USER", "loopwright-sbx")


#: Whose `bot.cli` runs: this tree, or (`--code DIR`) another checkout, e.g. the baseline.
CODE = [ROOT]


async def run_cli(*args: str, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env={**env, "PYTHONPATH": str(CODE[0])},
        cwd=CODE[0],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -9, "", f"timed out after {timeout:.0f}s"
    return proc.returncode or 0, out.decode(), err.decode()


def phases(steps: list[dict[str, Any]]) -> dict[str, float]:
    """Wall seconds per phase, from the recorded steps' timestamps and durations."""
    out = {"setup": 0.0, "baseline": 0.0, "reproduce": 0.0, "patch": 0.0, "retest": 0.0}
    if not steps:
        return out
    marks: dict[str, float] = {}
    for s in steps:
        name = s["name"]
        at = float(s["created_at"])
        if name == "environment":
            out["setup"] = float(s["duration_ms"] or 0) / 1000
            marks["environment"] = at
        elif name == "baseline":
            out["baseline"] = float(s["duration_ms"] or 0) / 1000
            marks["baseline"] = at
        elif name in ("judge_repro", "write_test") or name.startswith("repro"):
            marks["reproduce"] = at
        elif name.startswith(("attempt", "score", "tool:")) or name == "patch":
            marks["patch"] = at
        elif name == "retest":
            marks["retest"] = at
    last = marks.get("baseline", marks.get("environment", float(steps[0]["created_at"])))
    for phase in ("reproduce", "patch", "retest"):
        if phase in marks:
            out[phase] = max(0.0, marks[phase] - last)
            last = marks[phase]
    return out


def kept_equals_upstream(bug: realbugs.Bug, diff: str) -> bool:
    """Does the kept diff change exactly the upstream fix's files to the upstream content?"""
    if not diff:
        return False
    touched = {line[6:].strip() for line in diff.splitlines() if line.startswith("+++ b/")}
    return set(bug.fix_files) <= touched


def carries_wrong_change(kind: str, diff: str) -> bool:
    """Does the kept diff carry what the wrong oracle adds? A wrong oracle cut short (by the
    budget, mid-attempt) may leave only the upstream part of its change, which is a real fix:
    special_case's switch (`_lw_switch`, PYTEST_CURRENT_TEST), weaken's edits to tests that are
    not the loop's own (a skip, a deleted assertion, a conftest)."""
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if kind == "special_case":
        return any("_lw_switch" in ln or "PYTEST_CURRENT_TEST" in ln for ln in added)
    touched = [ln[6:].strip() for ln in diff.splitlines() if ln.startswith("+++ b/")]
    tests = [
        t
        for t in touched
        if "loopwright_" not in t
        and (t.endswith("conftest.py") or "/test" in f"/{t}" or t.startswith("test"))
    ]
    skips = ("pytest.mark.skip", "pytest.skip(", "unittest.skip", "skipTest(")
    return bool(tests) or any(s in ln for ln in added for s in skips)


async def one(
    bug: realbugs.Bug, kind: str, model: FakeModel, data: Path, timeout: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"lw-{bug.name}-") as tmp:
        repo = realbugs.make_repo(bug, Path(tmp) / bug.name)
        issue = Path(tmp) / "issue.md"
        issue.write_text(bug.issue_markdown())
        realbugs.script(model, bug, kind)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
        env.update(
            LOOPWRIGHT_DATA_DIR=str(data),
            LOOPWRIGHT_MODEL_BASE_URL=model.url,
            LOOPWRIGHT_MODEL_API_KEY="sk-bench-" + "o" * 24,
            LOOPWRIGHT_SANDBOX_USER=sandbox_user(),
        )
        started = time.perf_counter()
        code, out, err = await run_cli(
            "run",
            "fix",
            "--repo",
            str(repo),
            "--issue-file",
            str(issue),
            "--json",
            env=env,
            timeout=timeout,
        )
        wall = time.perf_counter() - started
        try:
            result = json.loads(out)
        except json.JSONDecodeError:
            return {
                "bug": bug.name,
                "oracle": kind,
                "exit": f"crash({code})",
                "wall": wall,
                "error": (err or out)[-800:],
            }
        steps: list[dict[str, Any]] = []
        if result.get("run_id"):
            _c, sout, _e = await run_cli(
                "runs", "--steps", str(result["run_id"]), "--json", env=env, timeout=60
            )
            try:
                steps = json.loads(sout)
            except json.JSONDecodeError:
                steps = []
    repro = result.get("reproduction") or {}
    kept = result.get("exit") in ("fixed", "behaviour_change") or any(
        a.get("verdict") == "kept" for a in result.get("attempts", [])
    )
    diff = result.get("diff", "") or ""
    return {
        "bug": bug.name,
        "oracle": kind,
        "repro": bool(repro.get("ok")),
        "exit": result.get("exit"),
        "detail": (result.get("detail") or "")[:160],
        "upstream": kept_equals_upstream(bug, result.get("diff", "")) if kind == "oracle" else None,
        "wrong_kept": (kept and carries_wrong_change(kind, diff)) if kind != "oracle" else None,
        "prompt": result.get("usage", {}).get("prompt_tokens", 0),
        "total": result.get("usage", {}).get("prompt_tokens", 0)
        + result.get("usage", {}).get("completion_tokens", 0),
        "phases": phases(steps),
        "wall": wall,
        "expected": EXPECTED[bug.changes_expectations],
        "repro_attempts": [a.get("verdict", "")[:300] for a in repro.get("attempts", [])],
        "patch_attempts": [
            f"{a.get('verdict')}: {a.get('score', '')[:200]}" for a in result.get("attempts", [])
        ],
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = [
        "bug",
        "oracle",
        "setup s",
        "repro",
        "exit",
        "= upstream",
        "wrong kept",
        "prompt tok",
        "total tok",
        "baseline s",
        "repro s",
        "patch s",
        "retest s",
        "wall s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        p = r.get("phases", {})
        yn = {True: "yes", False: "no", None: "-"}
        lines.append(
            "| "
            + " | ".join(
                [
                    r["bug"],
                    r["oracle"],
                    f"{p.get('setup', 0):.1f}",
                    yn[r.get("repro")],
                    str(r["exit"]),
                    yn[r.get("upstream")],
                    yn[r.get("wrong_kept")],
                    str(r.get("prompt", 0)),
                    str(r.get("total", 0)),
                    f"{p.get('baseline', 0):.1f}",
                    f"{p.get('reproduce', 0):.1f}",
                    f"{p.get('patch', 0):.1f}",
                    f"{p.get('retest', 0):.1f}",
                    f"{r['wall']:.0f}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--corpus", type=Path, default=SHARED if SHARED.is_dir() else realbugs.FIXTURE_CORPUS
    )
    ap.add_argument("--bugs", default="", help="comma list of bug names (default: all)")
    ap.add_argument("--oracles", default=",".join(realbugs.ORACLES))
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep environments and baselines here between runs",
    )
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        help="run this checkout's loopwright (e.g. a worktree of the baseline)",
    )
    args = ap.parse_args()
    CODE[0] = args.code.resolve()
    wanted = {b for b in args.bugs.split(",") if b}
    bugs = [b for b in realbugs.corpus(args.corpus) if not wanted or b.name in wanted]
    kinds = [k for k in args.oracles.split(",") if k]
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="lw-realbugs-data-"))
    model = FakeModel()
    await model.start()
    rows = []
    try:
        for bug in bugs:
            for kind in kinds:
                row = await one(bug, kind, model, data, args.timeout)
                rows.append(row)
                print(
                    f"{bug.name:14} {kind:13} {row['exit']:18} {row['wall']:6.0f}s "
                    f"{row.get('detail') or row.get('error', '')}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        await model.close()
    print(table(rows))
    oracle = [r for r in rows if r["oracle"] == "oracle"]
    ok = sum(r["exit"] in r["expected"].split("|") for r in oracle)
    wrong = sum(bool(r.get("wrong_kept")) for r in rows if r["oracle"] != "oracle")
    print(f"\noracle: {ok}/{len(oracle)} reach the expected exit; wrong patches kept: {wrong}")
    if oracle:
        med = sorted(r["total"] for r in oracle)[len(oracle) // 2]
        print(f"median tokens per oracle fix: {med} (budget 40000)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
