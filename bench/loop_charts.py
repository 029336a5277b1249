"""The loops' declared charts as docs/loops.md shows them (`loops.chart.chart_markdown`).

    python bench/loop_charts.py           # print each chart's table
    python bench/loop_charts.py --write   # regenerate the chart blocks of docs/loops.md
    python bench/loop_charts.py --check   # exit 1 when docs/loops.md is out of date

tests/test_chart.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loops import ci_repair, deps, fix, triage  # noqa: E402
from loops.chart import chart_markdown, sync_doc  # noqa: E402

CHARTS = [fix.CHART, fix.RETEST_CHART, triage.CHART, ci_repair.CHART, deps.CHART]
DOC = ROOT / "docs" / "loops.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite docs/loops.md's blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if docs/loops.md differs")
    args = parser.parse_args()
    if not (args.write or args.check):
        for chart in CHARTS:
            print(f"## {chart.name}\n\n{chart_markdown(chart)}\n")
        return 0
    text = DOC.read_text(encoding="utf-8")
    synced = sync_doc(text, CHARTS)
    if args.check:
        if synced != text:
            print("docs/loops.md is out of date: run python bench/loop_charts.py --write")
            return 1
        return 0
    DOC.write_text(synced, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
