"""`loopwright setup` end to end: the real command in a subprocess, a browser's requests made by
hand, GitHub's side played by the FakeGitHub (its manifest form and the conversion operation,
checked against GitHub's published REST description)."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.fakegithub import FakeGitHub, running_fake

APP_YML = Path(__file__).resolve().parent.parent / "app.yml"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    async with running_fake() as fake:
        yield fake
        fake.assert_no_violations()


async def start_setup(
    fake: FakeGitHub, tmp_path: Path, *args: str
) -> tuple[asyncio.subprocess.Process, str]:
    """The command as the CLI runs it (`loopwright setup` once wired); returns its page URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env["LOOPWRIGHT_GITHUB_API_URL"] = fake.url
    env["LOOPWRIGHT_DATA_DIR"] = str(tmp_path / "data")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "setup",
        "--github-url",
        fake.url,
        "--env-file",
        str(tmp_path / ".env"),
        "--timeout",
        "60",
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    match = re.search(r"open (http://\S+/) in a browser", first)
    if match is None:
        out, err = await proc.communicate()
        raise AssertionError(f"no page URL: {first!r} {out!r} {err!r}")
    return proc, match.group(1)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def parse_form(page: str) -> tuple[str, dict[str, Any], str]:
    """The form's action, the manifest it carries, and the state."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    manifest = re.search(r'name="manifest" value="([^"]*)"', page)
    state = re.search(r'name="state" value="([^"]*)"', page)
    assert action and manifest and state, page
    return html.unescape(action.group(1)), json.loads(html.unescape(manifest.group(1))), state[1]


async def test_manifest_flow_writes_owner_only_files_and_prints_install_url(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    proc, page_url = await start_setup(
        fake, tmp_path, "--webhook-url", "https://hooks.example.net/webhook"
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(page_url) as resp:
            assert resp.status == 200
            page = await resp.text()
        action, manifest, state = parse_form(page)
        assert action.startswith(f"{fake.url}/settings/apps/new?state=")
        app_yml = yaml.safe_load(APP_YML.read_text())
        assert manifest["hook_attributes"]["url"] == "https://hooks.example.net/webhook"
        assert manifest["default_permissions"] == app_yml["default_permissions"]
        assert manifest["default_events"] == app_yml["default_events"]
        assert manifest["name"] == app_yml["name"]
        assert manifest["redirect_url"] == f"{page_url}callback"
        # The browser posts the form to GitHub, which redirects back with the code.
        async with session.post(
            action, data={"manifest": json.dumps(manifest), "state": state}, allow_redirects=False
        ) as resp:
            assert resp.status == 302
            location = resp.headers["Location"]
        assert location.startswith(f"{page_url}callback?code=")
        async with session.get(location) as resp:
            assert resp.status == 200, await resp.text()
            assert "installations/new" in await resp.text()
    code, out, err = await finish(proc)
    assert code == 0, out + err
    created = fake.created_apps[0]
    assert f"install the App: {created['html_url']}/installations/new" in out
    env_file = tmp_path / ".env"
    key_file = tmp_path / "loopwright-private-key.pem"
    for path in (env_file, key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert values["LOOPWRIGHT_APP_ID"] == str(created["id"])
    assert values["LOOPWRIGHT_PRIVATE_KEY_FILE"] == str(key_file.resolve())
    assert values["LOOPWRIGHT_WEBHOOK_SECRET"] == created["webhook_secret"]
    assert values["LOOPWRIGHT_GITHUB_CLIENT_ID"] == created["client_id"]
    assert values["LOOPWRIGHT_GITHUB_CLIENT_SECRET"] == created["client_secret"]
    assert values["LOOPWRIGHT_GITHUB_API_URL"] == fake.url
    assert key_file.read_text() == fake.private_key_pem
    for secret in (created["webhook_secret"], created["client_secret"]):
        assert secret not in out + err
    assert fake.private_key_pem.splitlines()[1] not in out + err
    # The conversion was the unauthenticated published operation.
    conv = [r for r in fake.requests if r.operation_id == "apps/create-from-manifest"]
    assert len(conv) == 1 and conv[0].auth_kind is None and conv[0].status == 201

    # What setup wrote is what the doctor (and serve) read: the App's JWT is accepted, and the
    # next step it names is the install URL.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env.update(values, LOOPWRIGHT_DATA_DIR=str(tmp_path / "data"))
    doc_proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "doctor", "--json", env=env, stdout=asyncio.subprocess.PIPE
    )
    doc_out, _ = await asyncio.wait_for(doc_proc.communicate(), 60)
    checks = {c["name"]: c for c in json.loads(doc_out)["checks"]}
    assert checks["github app"]["status"] == "pass", checks["github app"]
    assert checks["webhook secret"]["status"] == "pass"
    assert checks["installations"]["status"] == "fail"
    assert "installations/new" in checks["installations"]["fix"]


async def test_bad_code_is_one_line_and_writes_nothing(fake: FakeGitHub, tmp_path: Path) -> None:
    proc, page_url = await start_setup(fake, tmp_path, "--org", "acme")
    async with aiohttp.ClientSession() as session:
        async with session.get(page_url) as resp:
            action, _, state = parse_form(await resp.text())
        assert action.startswith(f"{fake.url}/organizations/acme/settings/apps/new")
        async with session.get(f"{page_url}callback?code=expired123&state={state}") as resp:
            assert resp.status == 400
    code, out, err = await finish(proc)
    assert code == 1 and "install the App" not in out
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "does not know this manifest code" in err and "loopwright setup" in err
    assert not (tmp_path / ".env").exists()
    assert not (tmp_path / "loopwright-private-key.pem").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


async def test_existing_env_is_refused_without_force(fake: FakeGitHub, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOOPWRIGHT_APP_ID=1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "setup",
        "--env-file",
        str(env_file),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    code, out, err = await finish(proc)
    assert code == 1 and out == ""  # refused before any page is served
    assert (
        err.strip() == f"loopwright setup: {env_file} already exists: pass --force to overwrite it"
    )
    assert env_file.read_text() == "LOOPWRIGHT_APP_ID=1\n"
