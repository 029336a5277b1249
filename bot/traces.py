"""`loopwright traces export`: recorded model steps as fine-tuning JSONL, each with its outcome.

One JSON object per line: ``{"messages": [...the request..., {"role": "assistant", "content":
reply}], "metadata": {...}}`` — the chat format fine-tuning APIs take — where the metadata says
what became of the reply, not only whether it parsed:

- any step: ``invalid`` when the reply failed its schema (the step's verdict says why);
- ``triage``: ``corrected`` / ``kept`` — the type label this run applied, and whether a writer
  changed or removed it since (`Store.record_correction`); ``not_applied`` when the run applied
  no type label (a dry run, a decision the classifier made);
- ``write_test``: ``accepted`` / ``refused`` — the ``judge_repro`` step that judged the test
  of this reply, with its reason;
- ``patch``: ``kept`` / ``reverted`` / ``no_change`` / ``error`` — the ``attempt N`` step that
  ended the attempt this turn belongs to, with its score;
- any other step: ``valid`` (schema-valid; nothing later judges a summary).

Everything was redacted when it was recorded; it is redacted again on the way out (rows
recorded before a secret was configured). Steps recorded before the messages were stored as JSON
(schema version 4) are rebuilt from their rendered text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.db import Row
from bot.store import Store
from bot.text import Redactor

OUTCOMES = (
    "invalid",
    "corrected",
    "kept",
    "not_applied",
    "accepted",
    "refused",
    "reverted",
    "no_change",
    "error",
    "valid",
)

_ROLE_HEADER = re.compile(r"(?:^|\n\n)\[(system|user|assistant)\]\n")


def parse_rendered(text: str) -> list[dict[str, str]]:
    """The messages of a step recorded as ``[role]\\ncontent`` blocks (before schema 4)."""
    marks = list(_ROLE_HEADER.finditer(text))
    out: list[dict[str, str]] = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append({"role": m[1], "content": text[m.end() : end]})
    return out


@dataclass(frozen=True)
class Outcome:
    outcome: str
    why: str = ""


def _after(steps: Sequence[Row], step_id: int, wanted: Any) -> Row | None:
    for s in steps:
        if int(s["id"]) > step_id and wanted(str(s["name"])):
            return s
    return None


async def outcome_of(store: Store, step: Row, run_steps: Sequence[Row]) -> Outcome:
    """What became of one model step's reply (see the module's table)."""
    verdict = str(step["verdict"])
    if verdict != "valid":
        return Outcome("invalid", verdict)
    name = str(step["name"])
    sid = int(step["id"])
    if name == "triage":
        decision = (
            await store.triage_decision(str(step["repo"]), int(step["number"]))
            if step["number"] is not None
            else None
        )
        if decision is None or decision["run_id"] != step["run_id"]:
            return Outcome("not_applied", "this run applied no type label")
        corrections = [
            c
            for c in await store.corrections(str(step["repo"]))
            if c["number"] == step["number"] and c["created_at"] >= decision["created_at"]
        ]
        label = str(decision["label"])
        if corrections and corrections[-1]["new_label"] != label:
            new = corrections[-1]["new_label"]
            by = corrections[-1]["by_user"]
            to = f"changed to {new}" if new else "removed"
            return Outcome("corrected", f"applied {label}; {by} {to}")
        return Outcome("kept", f"applied {label} ({decision['decider']}); not corrected")
    if name == "write_test":
        judge = _after(run_steps, sid, lambda n: n == "judge_repro")
        if judge is None:
            return Outcome("valid", "never judged (the run ended first)")
        ok = judge["verdict"] == "reproduced"
        return Outcome("accepted" if ok else "refused", str(judge["output"] or ""))
    if name == "patch":
        attempt = _after(run_steps, sid, lambda n: n.startswith("attempt "))
        if attempt is None:
            return Outcome("valid", "the attempt never ended (the run ended first)")
        verdict = str(attempt["verdict"])
        return Outcome(verdict if verdict in OUTCOMES else "valid", str(attempt["output"] or ""))
    return Outcome("valid")


async def export(
    store: Store,
    redact: Redactor,
    *,
    since: float | None = None,
    repo: str | None = None,
    step: str | None = None,
    outcomes: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Every recorded model step matching the filters, as a fine-tuning record."""
    wanted = set(outcomes)
    rows = await store.model_steps(since=since, repo=repo, step=step)
    cache: dict[int, list[Row]] = {}
    out: list[dict[str, Any]] = []
    for row in rows:
        run_id = int(row["run_id"])
        if run_id not in cache:
            cache[run_id] = await store.steps_for(run_id)
        result = await outcome_of(store, row, cache[run_id])
        if wanted and result.outcome not in wanted:
            continue
        raw = row.get("messages")
        messages = json.loads(raw) if raw else parse_rendered(str(row["input"] or ""))
        record = {
            "messages": [*messages, {"role": "assistant", "content": str(row["output"] or "")}],
            "metadata": {
                "step": row["name"],
                "model": row["model"],
                "outcome": result.outcome,
                "why": result.why,
                "repo": row["repo"],
                "number": row["number"],
                "loop": row["loop"],
                "run_id": run_id,
                "step_id": row["id"],
                "recorded_at": row["created_at"],
                "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"],
            },
        }
        out.append(redact.data(record))
    return out
