"""`loopwright doctor` against real parts: the FakeGitHub, a scripted model server, a temp
SQLite, the real bubblewrap sandbox as the unprivileged test user. First everything passes, then
each check is broken on its own and must fail with its fix named and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.db import connect
from bot.migrations import SCHEMA_VERSION, migrate
from tests.support.fakegithub import FakeGitHub, running_fake
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, ensure_sandbox_user
from tests.support.webhooks import WEBHOOK_SECRET

BWRAP_PROBLEM = bwrap_works()
needs_bwrap = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=str(BWRAP_PROBLEM))


async def doctor(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """`loopwright doctor` as a subprocess."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "doctor",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@dataclass
class Rig:
    fake: FakeGitHub
    model: FakeModel
    env: dict[str, str]
    tmp: Path


@pytest.fixture
async def rig(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[Rig]:
    run_as = ensure_sandbox_user()
    db_path = tmp_path / "loopwright.db"
    db = await connect(f"sqlite:///{db_path}")
    await migrate(db)
    await db.close()
    fake_model.script("triage", '{"ok": true}')
    async with running_fake() as fake:
        fake.add_installation(7, "octo")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
        env.update(
            LOOPWRIGHT_APP_ID=str(fake.app_id),
            LOOPWRIGHT_PRIVATE_KEY=fake.private_key_pem,
            LOOPWRIGHT_GITHUB_API_URL=fake.url,
            LOOPWRIGHT_WEBHOOK_SECRET=WEBHOOK_SECRET,
            LOOPWRIGHT_DATA_DIR=str(tmp_path),
            LOOPWRIGHT_DATABASE_URL=f"sqlite:///{db_path}",
            LOOPWRIGHT_MODEL_BASE_URL=fake_model.url,
            LOOPWRIGHT_MODEL_DEFAULT="scripted",
        )
        if run_as is not None:
            env["LOOPWRIGHT_SANDBOX_USER"] = run_as
        yield Rig(fake, fake_model, env, tmp_path)
        fake.assert_no_violations()


def lines(out: str) -> dict[str, str]:
    """check name -> its line."""
    found = {}
    for line in out.splitlines():
        if "  " in line and ":" in line:
            found[line.split("  ", 1)[1].split(":", 1)[0]] = line
    return found


async def fails(rig: Rig, check: str, *args: str, **env: str) -> str:
    """Run the doctor with `env` changed; `check` must fail, the rest not crash."""
    full = {**rig.env, **env}
    for key in [k for k, v in env.items() if v == ""]:
        full.pop(key)
    code, out, err = await doctor(*args, env=full)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    line = lines(out)[check]
    assert line.startswith("FAIL"), out
    assert "-- fix: " in line, line
    assert "NOT ready to serve" in out
    assert rig.fake.private_key_pem.strip().splitlines()[1] not in out + err
    assert WEBHOOK_SECRET not in out + err
    return line


@needs_bwrap
async def test_everything_passes_and_json_says_ready(rig: Rig) -> None:
    code, out, err = await doctor(env=rig.env)
    assert code == 0, out + err
    found = lines(out)
    expected = {
        "settings",
        "github app",
        "installations",
        "webhook secret",
        "database",
        "bubblewrap",
        "sandbox",
        "model",
        "disk",
    }
    assert set(found) == expected, out
    assert all(line.startswith("PASS") for line in found.values()), out
    assert "1 installation(s): octo" in found["installations"]
    assert "cannot reach the network" in found["sandbox"]
    assert out.rstrip().endswith("ready to serve")
    # One real schema call reached the model, asking for JSON-schema output.
    call = rig.model.calls_for("triage")[-1]
    assert call.response_format is not None and call.response_format["type"] == "json_schema"

    code, out, _ = await doctor("--json", env=rig.env)
    doc: dict[str, Any] = json.loads(out)
    assert code == 0 and doc["ready"] is True
    assert [c["status"] for c in doc["checks"]] == ["pass"] * len(expected)


async def test_settings_invalid_skips_everything_else(rig: Rig) -> None:
    line = await fails(rig, "settings", LOOPWRIGHT_WORKER_CONCURRENCY="many")
    assert "LOOPWRIGHT_WORKER_CONCURRENCY is invalid" in line
    code, out, _ = await doctor("--json", env={**rig.env, "LOOPWRIGHT_WORKER_CONCURRENCY": "x"})
    doc = json.loads(out)
    assert code == 1 and doc["ready"] is False
    assert {c["status"] for c in doc["checks"][1:]} == {"skip"}
    assert "settings did not pass" in doc["checks"][1]["detail"]


async def test_wrong_private_key_is_refused(rig: Rig) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    line = await fails(rig, "github app", LOOPWRIGHT_PRIVATE_KEY=pem)
    assert "refused the App's JWT" in line and "private key" in line.split("fix:")[1]
    assert pem.splitlines()[1] not in line
    code, out, _ = await doctor(env={**rig.env, "LOOPWRIGHT_PRIVATE_KEY": pem})
    assert code == 1
    assert lines(out)["installations"].startswith("SKIP")


async def test_missing_app_id_names_setup(rig: Rig) -> None:
    line = await fails(rig, "github app", LOOPWRIGHT_APP_ID="")
    assert "LOOPWRIGHT_APP_ID is not set" in line and "loopwright setup" in line


async def test_no_installations(rig: Rig) -> None:
    rig.fake.installations.clear()
    line = await fails(rig, "installations")
    assert "installed nowhere" in line and "installations/new" in line


async def test_no_webhook_secret(rig: Rig) -> None:
    line = await fails(rig, "webhook secret", LOOPWRIGHT_WEBHOOK_SECRET="")
    assert "LOOPWRIGHT_WEBHOOK_SECRET is not set" in line


async def test_database_unreachable(rig: Rig) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = await fails(
        rig, "database", LOOPWRIGHT_DATABASE_URL=f"postgresql://nobody@127.0.0.1:{port}/x"
    )
    assert "cannot open the database" in line and "LOOPWRIGHT_DATABASE_URL" in line


async def test_database_too_new_and_not_migrated(rig: Rig) -> None:
    db = await connect(rig.env["LOOPWRIGHT_DATABASE_URL"])
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (:v, 'future', 0)",
            {"v": SCHEMA_VERSION + 1},
        )
    await db.close()
    line = await fails(rig, "database")
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in line and "upgrade" in line

    empty = rig.tmp / "empty.db"
    line = await fails(rig, "database", LOOPWRIGHT_DATABASE_URL=f"sqlite:///{empty}")
    assert "schema version 0" in line and "migrates on start" in line


async def test_bwrap_absent_from_path(rig: Rig) -> None:
    empty = rig.tmp / "bin"
    empty.mkdir()
    line = await fails(rig, "bubblewrap", PATH=str(empty))
    assert "apt-get install bubblewrap" in line
    code, out, _ = await doctor(env={**rig.env, "PATH": str(empty)})
    assert code == 1
    assert lines(out)["sandbox"].startswith("SKIP")


@needs_bwrap
async def test_sandbox_user_missing(rig: Rig) -> None:
    line = await fails(rig, "sandbox", LOOPWRIGHT_SANDBOX_USER="lw-no-such-user")
    assert "lw-no-such-user" in line and "LOOPWRIGHT_SANDBOX_USER" in line.split("fix:")[1]


async def test_model_garbage_and_down(rig: Rig) -> None:
    rig.model.script("triage", "I'd rather not answer in JSON.")
    line = await fails(rig, "model")
    assert "did not answer a schema call" in line and "LOOPWRIGHT_MODEL_BASE_URL" in line

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = await fails(rig, "model", LOOPWRIGHT_MODEL_BASE_URL=f"http://127.0.0.1:{port}/v1")
    assert "LOOPWRIGHT_MODEL_BASE_URL" in line


async def test_disk_threshold_above_free_space(rig: Rig) -> None:
    line = await fails(rig, "disk", "--min-free-gib", "1000000000")
    assert "MIN_FREE_DISK_BYTES" in line and "LOOPWRIGHT_DATA_DIR" in line
