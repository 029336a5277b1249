"""`loopwright traces export` and `loopwright eval triage`: real subprocesses, a real store, a
scripted model server through the real `openai` client."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

from bot import db as dbmod
from bot.store import StepRecord, Store
from bot.text import redactor
from bot.traces import export, parse_rendered
from tests.support.cli import ISSUE, ROOT, SAMPLE, base_env, cli
from tests.support.fakemodel import FakeModel, triage_answer

HISTORY = ROOT / "examples" / "triage-history.csv"
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


async def _store(path: Path) -> tuple[dbmod.Database, Store]:
    database = await dbmod.connect(f"sqlite:///{path}")
    store = Store(database)
    await store.init()
    return database, store


def _model_step(name: str, verdict: str = "valid", content: str = "do it") -> StepRecord:
    return StepRecord(
        name=name,
        kind="model",
        verdict=verdict,
        model="small",
        input=f"[user]\n{content}",
        output='{"ok": true}',
        messages=[{"role": "user", "content": content}],
        prompt_tokens=10,
        completion_tokens=5,
    )


def _det(name: str, verdict: str, output: str = "") -> StepRecord:
    return StepRecord(name=name, kind="deterministic", verdict=verdict, output=output)


async def test_triage_step_exported_with_its_messages_then_as_corrected(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    fake_model.script("triage", triage_answer("bug", summary="parse_line drops a field"))
    env = base_env(tmp_path, LOOPWRIGHT_MODEL_BASE_URL=fake_model.url)
    code, _, err = await cli(
        "run", "triage", "--repo", str(SAMPLE), "--issue-file", str(ISSUE), "--json", env=env
    )
    assert code == 0, err
    out_file = tmp_path / "traces.jsonl"
    code, _, err = await cli("traces", "export", "--out", str(out_file), env=env)
    assert code == 0, err
    assert "wrote 1 traces" in err
    [record] = [json.loads(line) for line in out_file.read_text().splitlines()]
    [call] = fake_model.calls
    # The request exactly as sent, then the reply as the assistant turn.
    assert record["messages"][:-1] == call.messages
    assert record["messages"][-1]["role"] == "assistant"
    assert json.loads(record["messages"][-1]["content"])["summary"] == "parse_line drops a field"
    meta = record["metadata"]
    assert (meta["step"], meta["repo"], meta["loop"]) == ("triage", "local/sample-repo", "triage")
    # A dry run applies no label: nothing a maintainer could keep or correct.
    assert meta["outcome"] == "not_applied"

    # Applied, then swapped by a writer: the same step is now exported as corrected.
    database, store = await _store(tmp_path / "loopwright.db")
    try:
        # What a live run records when it applies the type label.
        await store.record_triage_decision(
            "local/sample-repo",
            meta["number"],
            label="bug",
            decider="model",
            confidence=None,
            run_id=meta["run_id"],
        )
        await store.record_correction(
            "local/sample-repo",
            meta["number"],
            applied_label="bug",
            new_label="question",
            by_user="maint",
        )
    finally:
        await database.close()
    code, out, err = await cli("traces", "export", "--outcome", "corrected", env=env)
    assert code == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["metadata"]["outcome"] == "corrected"
    assert record["metadata"]["why"] == "applied bug; maint changed to question"
    # `loopwright runs` reports the live precision of the labels applied.
    code, out, _ = await cli("runs", "--json", env=env)
    assert json.loads(out)["triage_precision"] == [
        {"repo": "local/sample-repo", "kept": 0, "corrected": 1, "precision": 0.0}
    ]
    code, out, _ = await cli("runs", env=env)
    assert "local/sample-repo: 0 kept, 1 corrected (0.0%)" in out
    code, out, _ = await cli("traces", "export", "--outcome", "kept", env=env)
    assert code == 0 and out == ""
    code, _, err = await cli("traces", "export", "--outcome", "great", env=env)
    assert code == 2 and err.startswith("loopwright: --outcome 'great': use one of")
    code, _, err = await cli("traces", "export", "--since", "soon", env=env)
    assert code == 2 and err.startswith("loopwright: --since")


async def test_outcomes_come_from_the_steps_that_judged_each_reply(tmp_path: Path) -> None:
    database, store = await _store(tmp_path / "runs.db")
    try:
        run = await store.start_run(None, "fix", "octo/calc", 7)
        await store.record_step(run, _model_step("write_test", content="write a test"))
        await store.record_step(run, _det("judge_repro", "refused", "passes on base"))
        await store.record_step(run, _model_step("write_test", content="try again"))
        await store.record_step(run, _det("judge_repro", "reproduced", "fails: KeyError"))
        await store.record_step(run, _model_step("patch", content="turn 1"))
        await store.record_step(run, _model_step("patch", content="turn 2"))
        await store.record_step(run, _det("attempt 1", "reverted", "score: 3 failing"))
        await store.record_step(run, _model_step("patch", content="turn 3"))
        await store.record_step(run, _det("attempt 2", "kept", "score: 0 failing"))
        await store.record_step(run, _model_step("patch", "invalid: tool: field required"))
        await store.record_step(run, _model_step("summarize", content=f"token {TOKEN}"))
        other = await store.start_run(None, "triage", "octo/other", 1)
        await store.record_step(other, _model_step("triage"))
        await store.record_step(other, _model_step("patch", content="never ended"))

        records = await export(store, redactor())
        got = [(r["metadata"]["step"], r["metadata"]["outcome"]) for r in records]
        assert got == [
            ("write_test", "refused"),
            ("write_test", "accepted"),
            ("patch", "reverted"),
            ("patch", "reverted"),
            ("patch", "kept"),
            ("patch", "invalid"),
            ("summarize", "valid"),
            ("triage", "not_applied"),
            ("patch", "valid"),
        ]
        assert records[0]["metadata"]["why"] == "passes on base"
        assert records[4]["metadata"]["why"] == "score: 0 failing"
        # Redacted: the token never leaves in any field.
        assert TOKEN not in json.dumps(records)

        only = await export(store, redactor(), repo="octo/calc", step="patch", outcomes=["kept"])
        assert [r["messages"][0]["content"] for r in only] == ["turn 3"]
        assert await export(store, redactor(), since=time.time() + 60) == []
    finally:
        await database.close()


async def test_steps_recorded_before_messages_were_stored_are_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    database, store = await _store(path)
    try:
        run = await store.start_run(None, "triage", "octo/calc", 2)
        step = replace(
            _model_step("summarize"),
            messages=None,
            input="[system]\nBe brief.\n\n[user]\nIssue text\nwith two lines",
        )
        await store.record_step(run, step)
        [record] = await export(store, redactor())
    finally:
        await database.close()
    assert record["messages"][:2] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Issue text\nwith two lines"},
    ]
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT messages FROM steps").fetchone() == (None,)
    assert parse_rendered("no roles") == []


async def test_eval_triage_scores_every_candidate_on_the_same_issues(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    # A "model" that always answers feature: a third of the balanced sample right.
    fake_model.script("triage", triage_answer("feature"))
    env = base_env(tmp_path, LOOPWRIGHT_MODEL_BASE_URL=fake_model.url)
    code, out, err = await cli(
        "eval",
        "triage",
        "--dataset",
        str(HISTORY),
        "--candidates",
        "keywords,classifier,model:tiny",
        "--model-limit",
        "9",
        "--json",
        env=env,
        timeout=300,
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["issues"] == 120 and report["scored_on"] == 9
    rows = {c["name"]: c for c in report["candidates"]}
    assert set(rows) == {"keywords", "classifier", "model:tiny"}
    assert rows["keywords"]["decided"] == rows["classifier"]["decided"] == 120
    assert rows["model:tiny"]["decided"] == 9
    assert rows["model:tiny"]["macro_f1_all_decided"] == rows["model:tiny"]["macro_f1"]
    tiny = rows["model:tiny"]
    assert tiny["per_class_f1"]["bug"] == 0.0 and tiny["accuracy"] == round(3 / 9, 4)
    assert tiny["tokens_per_issue"] > 0 and rows["classifier"]["tokens_per_issue"] == 0
    assert {c.model for c in fake_model.calls} == {"tiny"} and len(fake_model.calls) == 9
    assert "classifier: timing predict()" in err  # the progress on stderr

    code, out, err = await cli(
        "eval", "triage", "--dataset", str(HISTORY), "--candidates", "keywords", env=env
    )
    assert code == 0, err
    assert out.startswith("## triage eval") and "| keywords |" in out

    code, _, err = await cli(
        "eval", "triage", "--dataset", str(HISTORY), "--candidates", "oracle", env=env
    )
    assert code == 2 and err.startswith("loopwright: --candidates: unknown 'oracle'")
    no_endpoint = base_env(tmp_path)
    code, _, err = await cli(
        "eval", "triage", "--dataset", str(HISTORY), "--candidates", "model:x", env=no_endpoint
    )
    assert code == 2 and "LOOPWRIGHT_MODEL_BASE_URL" in err
    code, _, err = await cli("eval", "triage", "--dataset", str(tmp_path / "none.csv"), env=env)
    assert code == 2 and "is not a file" in err
