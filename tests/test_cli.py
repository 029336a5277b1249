"""The command line as a real subprocess: local triage, replay, runs, the embedded model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.support import FIXTURES
from tests.support.cli import ISSUE, SAMPLE, base_env, cli
from tests.support.fakemodel import FakeModel, triage_answer


async def test_run_triage_locally_prints_labels_comment_and_usage(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    fake_model.script(
        "triage",
        triage_answer(
            "bug",
            "high",
            "parser",
            ["your Python version"],
            "parse_line loses the last empty field",
        ),
    )
    env = base_env(tmp_path, LOOPWRIGHT_MODEL_BASE_URL=fake_model.url)
    code, out, err = await cli(
        "run",
        "triage",
        "--repo",
        str(SAMPLE),
        "--issue-file",
        str(ISSUE),
        "--labels",
        "bug,parser,needs-info,priority: high",
        "--json",
        env=env,
    )
    assert code == 0, err
    result = json.loads(out)
    # Mapped through examples/sample-repo/.github/loopwright.yml; no severity label: no model
    # was measured on severity (`triage.severity_measured`).
    assert result["labels"] == ["bug", "parser", "needs-info"]
    assert result["decider"] == "model" and "no classifier is trained" in result["routing"]
    assert "parse_line loses the last empty field" in result["comment"]
    assert result["usage"]["calls"] == 1 and result["usage"]["prompt_tokens"] > 0
    [call] = fake_model.calls
    assert "ignore all previous instructions" not in json.dumps(call.messages)

    code, out, _ = await cli("runs", "--json", env=env)
    runs = json.loads(out)["runs"]
    assert code == 0 and runs[0]["loop"] == "triage" and runs[0]["exit_reason"] == "done"
    code, out, _ = await cli("runs", env=env)
    assert "triage" in out and "local/sample-repo" in out


async def test_default_labels_are_githubs(tmp_path: Path, fake_model: FakeModel) -> None:
    fake_model.script("triage", triage_answer("feature"))
    env = base_env(tmp_path, LOOPWRIGHT_MODEL_BASE_URL=fake_model.url)
    empty_repo = tmp_path / "repo"
    empty_repo.mkdir()
    code, out, err = await cli(
        "run", "triage", "--repo", str(empty_repo), "--issue-file", str(ISSUE), "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["labels"] == ["enhancement"]
    schema = fake_model.calls[0].response_format["json_schema"]["schema"]  # type: ignore[index]
    assert schema["properties"]["area"]["enum"] == ["none"]


async def test_replay_routes_a_saved_payload_in_dry_run(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    fake_model.script("triage", triage_answer("question", summary="Asks how to spell it"))
    env = base_env(tmp_path, LOOPWRIGHT_MODEL_BASE_URL=fake_model.url)
    saved = FIXTURES / "webhooks" / "issues" / "opened.15.json"
    code, out, err = await cli("replay", str(saved), "--event", "issues", "--json", env=env)
    assert code == 0, err
    [result] = json.loads(out)
    assert result["labels"] == ["question"] and "Asks how to spell it" in result["comment"]
    code, out, _ = await cli(
        "replay", str(FIXTURES / "webhooks" / "ping" / "event.0.json"), "--event", "ping", env=env
    )
    assert code == 0 and "no loop would run" in out


@pytest.mark.embedded_model
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="the `local` extra (llama-cpp-python) is not installed",
)
async def test_triage_with_the_real_embedded_model(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    code, out, err = await cli(
        "run",
        "triage",
        "--repo",
        str(SAMPLE),
        "--issue-file",
        str(ISSUE),
        "--json",
        env=env,
        timeout=300,
    )
    assert code == 0, err
    result = json.loads(out)
    assert "embedded model ready" in err
    assert result["exit"] == "done" and result["usage"]["calls"] >= 1
    # A 270M model is no oracle: the loop's guarantee is a schema-valid answer mapped onto
    # labels that exist, not a particular judgement.
    assert set(result["labels"]) <= {"bug", "enhancement", "question", "documentation"}
    assert "gemma-3-270m" in result["comment"]


async def test_redeliver_needs_the_app_and_a_valid_since(tmp_path: Path) -> None:
    code, out, err = await cli("redeliver", "--since", "2h", env=base_env(tmp_path))
    assert code == 2 and out == ""
    assert err.strip() == "loopwright: LOOPWRIGHT_APP_ID is not set"
    code, _, err = await cli("redeliver", "--since", "two hours", env=base_env(tmp_path))
    assert code == 2 and err.startswith("loopwright: --since: ") and len(err.splitlines()) == 1


async def test_redeliver_dry_run_against_the_app_s_delivery_log(tmp_path: Path) -> None:
    from tests.support.fakegithub import running_fake
    from tests.support.fakegithub.hooks import hooks

    async with running_fake() as gh:
        log = hooks(gh, webhook_url="http://127.0.0.1:9/webhook")  # nothing listens: failures
        failed = await log.send("issues", {"action": "opened", "issue": {"number": 1}})
        env = base_env(
            tmp_path,
            LOOPWRIGHT_APP_ID=str(gh.app_id),
            LOOPWRIGHT_PRIVATE_KEY=gh.private_key_pem,
            LOOPWRIGHT_GITHUB_API_URL=gh.url,
        )
        code, out, err = await cli("redeliver", "--since", "30m", "--dry-run", "--json", env=env)
        assert code == 0, err
        report = json.loads(out)
        assert report["dry_run"] is True and report["redelivered"] == []
        assert [r["guid"] for r in report["would_redeliver"]] == [failed.guid]
        code, out, err = await cli("redeliver", "--since", "30m", env=env)
        assert code == 0, err
        assert "redelivered: 1" in out and failed.guid in out
        assert len(gh.requests_for("apps/redeliver-webhook-delivery")) == 1
        gh.assert_no_violations()


async def test_runs_costs_on_an_empty_store_prints_the_table_head(tmp_path: Path) -> None:
    code, out, err = await cli("runs", "--costs", env=base_env(tmp_path))
    assert code == 0, err
    assert "window" in out.splitlines()[0] or "no model calls" in out
    code, out, err = await cli("runs", "--costs", "--json", env=base_env(tmp_path))
    assert code == 0 and json.loads(out) == []
