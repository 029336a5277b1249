"""Redaction on every outbound channel: the stored steps, runs and job errors, the CLI's
reports (JSON and text), and the logs (arguments, tracebacks, extra fields)."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot import db as dbmod
from bot.settings import Settings, load_settings
from bot.store import JobSpec, StepRecord, Store
from bot.text import REDACTED, Redactor, redact, redact_data
from tests.support import fixrepo
from tests.support.cli import base_env
from tests.support.cli import cli as run_cli
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, sandbox_run_as

__all__ = ["sandbox_run_as"]

GH_TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "f6G7h8"  # 36 characters after the prefix
FINE_GRAINED = "github_pat_" + "11ABCDEFG0" * 4
OPENAI_KEY = "sk-proj-" + "Zy9" * 10
AWS_KEY = "AKIA" + "QWERTYUIOP123456"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0planted0key0body\n"
    "-----END RSA PRIVATE KEY-----\n"
)
#: Configured secrets with no token shape: only the settings can say they are secret.
WEBHOOK_SECRET = "plain-webhook-secret-4711"
MODEL_KEY = "local-model-key-0815-xyz"
CONFIGURED = [WEBHOOK_SECRET, MODEL_KEY]
PLANTED = [GH_TOKEN, FINE_GRAINED, OPENAI_KEY, AWS_KEY, WEBHOOK_SECRET, MODEL_KEY]


def assert_clean(text: str) -> None:
    for secret in PLANTED:
        assert secret not in text, secret
    assert "0planted0key0body" not in text
    assert REDACTED in text


def settings_with_secrets() -> Settings:
    return load_settings(webhook_secret=WEBHOOK_SECRET, model_api_key=MODEL_KEY)


# --- the store ---------------------------------------------------------------------------------


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    database = await dbmod.connect(database_url)
    s = Store(database, secrets=CONFIGURED)
    await s.init()
    yield s
    await database.close()


async def test_steps_runs_and_job_errors_are_stored_redacted(store: Store) -> None:
    run_id = await store.start_run(None, "fix", "octo/hello", 1)
    test_output = (
        f"FAILED tests/test_x.py::test_token - AssertionError: token={GH_TOKEN}\n"
        f"captured stdout: {FINE_GRAINED} {AWS_KEY}\n{PEM}"
    )
    # A prompt as a model step stores it: JSON, so the PEM's newlines are escaped.
    prompt = json.dumps([{"role": "user", "content": f"{test_output} key {MODEL_KEY}"}])
    await store.record_step(
        run_id,
        StepRecord(
            name="patch",
            kind="model",
            verdict=f"error: {WEBHOOK_SECRET}",
            input=prompt,
            output=json.dumps({"tool": "finish", "summary": f"used {OPENAI_KEY} and {GH_TOKEN}"}),
            model="m",
        ),
    )
    await store.record_step(
        run_id, StepRecord(name="reproduce", kind="deterministic", verdict="ok", output=test_output)
    )
    await store.finish_run(run_id, "error", "RuntimeError", f"{OPENAI_KEY} in {test_output}")

    steps = await store.steps_for(run_id)
    assert [s["name"] for s in steps] == ["patch", "reproduce"]
    stored = json.dumps(steps, default=str)
    assert_clean(stored)
    assert "AssertionError: token=[REDACTED]" in steps[1]["output"]
    assert steps[0]["verdict"] == f"error: {REDACTED}"
    assert json.loads(steps[0]["output"])["summary"] == f"used {REDACTED} and {REDACTED}"
    run = await store.get_run(run_id)
    assert run is not None
    assert_clean(run["detail"])
    assert run["detail"].startswith(f"{REDACTED} in FAILED")

    await store.enqueue(JobSpec("fix", "octo/hello", 1, 1), max_attempts=1)
    job = await store.lease("w", lease_seconds=30)
    assert job is not None
    await store.fail(
        job, f"Traceback …\nValueError: {GH_TOKEN} {WEBHOOK_SECRET}", backoff_seconds=1
    )
    [row] = await store.list_jobs("dead")
    assert row["last_error"] == f"Traceback …\nValueError: {REDACTED} {REDACTED}"


# --- the CLI's reports ---------------------------------------------------------------------------


def nested_report() -> dict[str, Any]:
    """The shape of `run fix --json`, a secret in every field that carries text."""
    return {
        "exit": "not_reproduced",
        "detail": f"the test printed {GH_TOKEN}",
        "labels": ["loopwright:needs-human"],
        "usage": {"calls": 2, "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.0},
        "run_id": 3,
        "comment": "",
        "reproduction": {"ok": False, "reason": f"the test failed: {FINE_GRAINED}\n{PEM}"},
        "attempts": [
            {"verdict": "reverted", "note": f"kept {AWS_KEY}", "summary": f"key {MODEL_KEY}"},
            {"verdict": "kept", "note": None, "tests": (f"t::{OPENAI_KEY}", 1)},
        ],
        "verification": [{"test": "tests/t.py::test_x", "verdict": "fixed"}],
        "diff": f"+TOKEN = '{GH_TOKEN}'\n+SECRET = '{WEBHOOK_SECRET}'\n",
        "note": f"{WEBHOOK_SECRET}",
        f"key-{GH_TOKEN}": True,
    }


def test_a_nested_document_is_redacted_everywhere_and_keeps_its_shape() -> None:
    report = nested_report()
    clean = redact_data(report, CONFIGURED)
    assert_clean(json.dumps(clean))
    assert clean["usage"] == report["usage"] and clean["run_id"] == 3
    assert clean["attempts"][1]["note"] is None
    assert clean["attempts"][1]["tests"] == (f"t::{REDACTED}", 1)
    assert clean["reproduction"] == {
        "ok": False,
        "reason": f"the test failed: {REDACTED}\n{REDACTED}\n",
    }
    assert clean[f"key-{REDACTED}"] is True
    assert report["detail"] == f"the test printed {GH_TOKEN}", "the input is left as it was"


class Result:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def as_dict(self) -> dict[str, Any]:
        return self.data


def test_the_cli_report_is_redacted_as_json_and_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_with_secrets()
    report = nested_report()
    report["comment"] = f"posted {MODEL_KEY}"
    cli._print_result(settings, Result(report), True)
    out = capsys.readouterr().out
    assert_clean(out)
    data = json.loads(out)
    assert data["attempts"][0] == {
        "verdict": "reverted",
        "note": f"kept {REDACTED}",
        "summary": f"key {REDACTED}",
    }

    cli._print_result(settings, Result(report), False)
    out = capsys.readouterr().out
    assert_clean(out)
    assert f"note: {REDACTED}" in out and f"+TOKEN = '{REDACTED}'" in out


def test_redaction_is_one_compiled_pass_per_set_of_secrets() -> None:
    r = Redactor(CONFIGURED)
    assert r(f"{MODEL_KEY} {GH_TOKEN}") == f"{REDACTED} {REDACTED}"
    # A secret containing another is replaced whole, not leaving its tail behind.
    assert Redactor(["abcdefgh", "abcdefgh-longer"])("x abcdefgh-longer y") == f"x {REDACTED} y"
    assert redact("short ghs_short, sk-too-short", ["1234567"]) == "short ghs_short, sk-too-short"
    assert redact("line\n" * 3) == "line\n" * 3


# --- logs ---------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """A structured formatter of the kind a deployment may plug in: it reads the record's
    fields itself, exception info included."""

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        return json.dumps(
            {
                "msg": record.getMessage(),
                "exc": exc,
                "stack": record.stack_info,
                "output": getattr(record, "output", None),
            }
        )


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    plain, structured = io.StringIO(), io.StringIO()
    log = logging.getLogger("loopwright.test_redaction")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    for stream, formatter in ((plain, logging.Formatter()), (structured, JsonFormatter())):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(cli.RedactingFilter(CONFIGURED))
        log.addHandler(handler)
    yield log, plain, structured
    log.handlers.clear()
    log.propagate = True


def fail_with_secrets() -> None:
    secret = MODEL_KEY  # a local in the frame, as in a traceback with locals
    raise RuntimeError(f"model refused key {secret}: {GH_TOKEN}")


def test_log_arguments_tracebacks_and_extra_fields_are_redacted(
    logger: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    log, plain, structured = logger
    log.info("job %d failed: %s (%r)", 7, GH_TOKEN, {"secret": WEBHOOK_SECRET})
    try:
        fail_with_secrets()
    except RuntimeError:
        log.exception("run failed with %s", FINE_GRAINED, extra={"output": f"{AWS_KEY}\n{PEM}"})
    log.warning("stack", stack_info=True, extra={"output": [OPENAI_KEY]})
    text = plain.getvalue()
    assert_clean(text)
    assert "job 7 failed: [REDACTED] ({'secret': '[REDACTED]'})" in text
    assert "Traceback (most recent call last)" in text and "fail_with_secrets" in text
    assert f"RuntimeError: model refused key {REDACTED}: {REDACTED}" in text
    lines = [json.loads(line) for line in structured.getvalue().splitlines()]
    assert_clean(structured.getvalue())
    assert (
        lines[1]["exc"].startswith("Traceback")
        and lines[1]["output"] == f"{REDACTED}\n{REDACTED}\n"
    )
    assert lines[2]["output"] == [REDACTED] and "test_redaction.py" in lines[2]["stack"]


@pytest.fixture
def process_logging() -> Iterator[None]:
    """`cli._setup_logging` configures the process: the root handler and the excepthooks."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    sys.excepthook, threading.excepthook = saved[2], saved[3]


@pytest.mark.usefixtures("process_logging")
def test_the_cli_logging_and_uncaught_exceptions_are_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli._setup_logging(settings_with_secrets(), "INFO")
    logging.getLogger("loopwright.anything").warning("webhook secret %s", WEBHOOK_SECRET)
    try:
        fail_with_secrets()
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert f"webhook secret {REDACTED}" in err
    assert "Traceback (most recent call last)" in err
    assert f"RuntimeError: model refused key {REDACTED}: {REDACTED}" in err
    assert WEBHOOK_SECRET not in err and MODEL_KEY not in err and GH_TOKEN not in err


@pytest.mark.usefixtures("process_logging")
def test_a_token_in_a_cli_error_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOPWRIGHT_DATA_DIR", str(tmp_path))
    bogus = tmp_path / f"{GH_TOKEN}-repo"
    code = cli.main(["run", "triage", "--repo", str(bogus), "--issue-file", str(bogus)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a directory" in err
    assert GH_TOKEN not in err and f"{REDACTED}-repo" in err


# --- the real CLI ------------------------------------------------------------------------------

#: A reproduction test that prints the planted token and the configured webhook secret, then
#: fails with the token in its message (a bare name: NameError), so the refusal quotes it.
LEAKY_TEST = f"""from calc.words import last_word


def test_last_word_of_empty_text():
    print("leaked {GH_TOKEN} and {WEBHOOK_SECRET}")
    expected = {GH_TOKEN}
    assert last_word("") == expected
"""


@pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")
async def test_run_reproduce_json_never_shows_a_token_the_test_printed(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    config = fixrepo.loopwright_config(reproduce_attempts=1)
    repo = fixrepo.write_local_repo(tmp_path / "calc", config)
    issue = tmp_path / "issue.md"
    issue.write_text(f"# {fixrepo.ISSUE_TITLE}\n\n{fixrepo.ISSUE_BODY}")
    fake_model.script("write_test", fixrepo.repro_answer(LEAKY_TEST, LEAKY_TEST))
    env = base_env(
        tmp_path / "data",
        LOOPWRIGHT_MODEL_BASE_URL=fake_model.url,
        LOOPWRIGHT_WEBHOOK_SECRET=WEBHOOK_SECRET,
        LOOPWRIGHT_SANDBOX_USER=sandbox_run_as or "",
    )
    args = ["run", "reproduce", "--repo", str(repo), "--issue-file", str(issue)]
    code, out, err = await run_cli(*args, "--json", env=env, timeout=120)
    data = json.loads(out)
    assert code == 1 and data["exit"] == "not_reproduced", err
    assert f"NameError: name '{REDACTED}' is not defined" in json.dumps(data)
    for channel in (out, err):
        assert GH_TOKEN not in channel and WEBHOOK_SECRET not in channel
    # The stored steps, read back from the database file itself, not through the CLI.
    database = await dbmod.connect(f"sqlite:///{tmp_path / 'data' / 'loopwright.db'}")
    try:
        rows = await database.fetchall("SELECT input, output, verdict FROM steps")
    finally:
        await database.close()
    stored = json.dumps(rows)
    assert REDACTED in stored and GH_TOKEN not in stored
