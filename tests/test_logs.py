"""Structured logs in a real subprocess: `bot.logs.configure` with LOOPWRIGHT_LOG_FORMAT=json,
then a triage run through the real stack (intake, worker, loop, FakeGitHub, scripted model).
Every stderr line must parse as JSON; the lines logged inside the job name its run, job, repo
and (for the model call) step; a token-like string never reaches the output."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: A token-like string the script logs inside the job's context: it must come out redacted.
LEAKED = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

SCRIPT = """
import asyncio, contextlib, logging, sys
from pathlib import Path

from bot import logs
from tests.support.webhooks import payload
from tests.support.e2e import make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import running_model, triage_answer

REPO = "Codertocat/Hello-World"


async def main(tmp: str, fmt: str, leaked: str) -> None:
    async with running_model() as model, contextlib.AsyncExitStack() as es:
        gh = await es.enter_async_context(running_fake())
        gh.add_repo(REPO, installation_id=1, labels=["bug"], collaborators={"Codertocat": "admin"})
        gh.add_issue(REPO, number=1, title="Crash", body="It crashes.", user="Codertocat")
        settings = make_settings(gh, model, Path(tmp), log_format=fmt)
        logs.configure(settings, "DEBUG")
        stack = await serve(es, gh, model, settings, REPO, workers=1)
        model.script("triage", triage_answer("bug"))
        data = payload("issues/opened.15", installation={"id": 1})
        data["issue"]["title"], data["issue"]["body"] = "Crash", "It crashes."
        status, _ = await stack.deliver("issues", data)
        assert status == 202, status
        await stack.settle()
        with logs.context(job_id=99, repo=REPO, step="post"):
            logging.getLogger("loopwright.test").warning("pushing with %s", leaked)
        logging.getLogger("loopwright.test").info("multi\\nline message")


asyncio.run(main(*sys.argv[1:]))
"""


async def run_script(tmp: Path, fmt: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env["LOOPWRIGHT_LOG_FORMAT"] = fmt  # the setting, as an operator sets it
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        str(tmp),
        fmt,
        LEAKED,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_json_logs_carry_the_run_context_and_are_redacted(tmp_path: Path) -> None:
    code, err = await run_script(tmp_path, "json")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) > 5
    records = []
    for line in lines:
        doc = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= doc.keys(), line
        records.append(doc)

    # Inside the job: the worker's lines name the job and repo, the run's its run id too.
    leased = [r for r in records if r["message"].startswith("job ") and "leased" in r["message"]]
    assert leased and leased[0]["repo"] == "Codertocat/Hello-World"
    assert leased[0]["job_id"] == 1 and leased[0]["loop"] == "triage"
    [done] = [r for r in records if re.match(r"run \d+ \(triage", r["message"])]
    assert done["run_id"] == 1 and done["job_id"] == 1 and done["repo"] == "Codertocat/Hello-World"
    # The model call's line names its step (and everything else about the job).
    [model] = [r for r in records if r["logger"] == "loopwright.model"]
    assert model["step"] == "triage" and model["run_id"] == 1 and model["level"] == "DEBUG"
    # Outside any job: no context fields at all.
    intake = [r for r in records if r["logger"] == "loopwright.test" and "multi" in r["message"]]
    assert intake and not {"run_id", "job_id", "repo", "step"} & intake[0].keys()
    assert intake[0]["message"] == "multi\nline message"

    # Redacted like every other channel.
    assert LEAKED not in err
    [warned] = [r for r in records if r["message"].startswith("pushing with")]
    assert "[REDACTED" in warned["message"] and warned["step"] == "post"
    # The configured secrets (the model key) never appear either.
    assert "sk-test-" not in err


async def test_text_logs_keep_their_format(tmp_path: Path) -> None:
    code, err = await run_script(tmp_path, "text")
    assert code == 0, err
    line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")
    starts = [ln for ln in err.splitlines() if line.match(ln)]
    assert starts and all(not ln.startswith("{") for ln in err.splitlines())
    assert any("loopwright.worker: job 1 (triage" in ln for ln in starts)
    assert LEAKED not in err and "pushing with [REDACTED" in err
