"""The adversarial corpus (tests/support/adversarial.py) against the fix loop: every attack, once.

By default every row goes through the real CLI (`loopwright run fix --json` in a subprocess, the
real sandbox as the unprivileged user, the scripted hostile model over HTTP), nothing shared
between rows but each lane's data directory (the environment and the baseline are cached).
`--in-process` runs the loop in this process on one runtime, with the one reproduction shared
by every row, as tests/test_adversarial.py does (much faster). Prints one row per attack:

    attack · what it tries · exit · kept? · attack in the reported diff? · escapes ·
    what caught it (the loop's exit detail and every attempt's score and note)

and the totals: wrong patches kept, boundary escapes (a file written outside the clone, the
source checkout changed), whether the right fix was kept. Goal: 0 kept, 0 escapes, right fix
kept.

    python bench/adversarial.py [--attacks stale-pyc,coin-flip] [--concurrency 2]
        [--in-process] [--code DIR] [--json]
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

from tests.support import adversarial  # noqa: E402
from tests.support.adversarial import RowResult  # noqa: E402


def sandbox_user() -> str | None:
    if os.geteuid() != 0:
        return None
    return os.environ.get("LOOPWRIGHT_SANDBOX_USER") or "loopwright-sbx"


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[RowResult]) -> str:
    yn = {True: "yes", False: "no"}
    head = ["attack", "tries", "exit", "kept?", "in diff?", "escapes", "what caught it"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        caught = r.error or r.caught
        if r.control:
            caught = f"(control) {caught}"
        cells = [
            r.name,
            _cell(r.tries, 70),
            r.exit,
            yn[r.kept_exit],
            yn[r.attack_in_diff],
            _cell("; ".join(r.escapes), 60) or "-",
            _cell(caught, 220),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def totals(rows: list[RowResult]) -> str:
    s = adversarial.summary(rows)
    lines = [
        f"attacks: {s['attacks']}, held: {s['held']}",
        f"wrong patches kept: {s['wrong_patches_kept']}",
        f"boundary escapes: {s['boundary_escapes']}",
        f"right fix kept: {'yes' if s['right_fix_kept'] else 'NO'}",
    ]
    if s["errors"]:
        lines.append(f"rows that crashed or timed out: {s['errors']}")
    if s["got_through"]:
        lines.append(f"got through: {', '.join(s['got_through'])}")
    return "\n".join(lines)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attacks", default="", help="comma list of attack names (default: all)")
    ap.add_argument("--concurrency", type=int, default=2, help="rows at a time (default 2)")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="run the loop in this process, one runtime, the reproduction shared (fast)",
    )
    ap.add_argument(
        "--code",
        type=Path,
        default=ROOT,
        help="CLI mode: run this checkout's loopwright (e.g. a worktree of the baseline)",
    )
    ap.add_argument("--timeout", type=float, default=adversarial.ROW_TIMEOUT_S, help="per row, s")
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="work here (sources, data) and keep it"
    )
    ap.add_argument("--json", action="store_true", help="print the rows and totals as JSON")
    args = ap.parse_args()
    wanted = [a for a in args.attacks.split(",") if a]
    unknown = [a for a in wanted if a not in adversarial.BY_NAME]
    if unknown:
        ap.error(f"unknown attacks: {', '.join(unknown)}")
    attacks = [adversarial.BY_NAME[a] for a in wanted] if wanted else adversarial.ATTACKS
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="lw-adversarial-"))
    started = time.perf_counter()

    def progress(r: RowResult) -> None:
        verdict = "ok  " if r.ok else "FAIL"
        print(
            f"{time.perf_counter() - started:6.0f}s {verdict} {r.name:30} {r.exit:17} "
            f"{r.wall_s:5.0f}s {(r.error or r.caught)[:140]}",
            file=sys.stderr,
            flush=True,
        )

    rows = await adversarial.run_corpus(
        attacks,
        base=base,
        run_as=sandbox_user(),
        concurrency=args.concurrency,
        cli=not args.in_process,
        code=args.code.resolve(),
        share_reproduction=args.in_process,
        timeout=args.timeout,
        on_row=progress,
    )
    wall = time.perf_counter() - started
    if args.json:
        doc: dict[str, Any] = {
            "mode": "in-process" if args.in_process else "cli",
            "code": str(args.code.resolve()),
            "wall_s": round(wall, 1),
            "totals": adversarial.summary(rows),
            "rows": [r.as_dict() for r in rows],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(table(rows))
        print()
        print(totals(rows))
        print(f"wall: {wall:.0f}s ({'in-process' if args.in_process else 'cli'}, {base})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
