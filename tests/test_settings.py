"""Settings: environment prefix, one-line errors, nothing read at import time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.settings import SettingsError, load_settings


def test_env_prefix_and_model_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWRIGHT_MODEL_TRIAGE", "small, big")
    monkeypatch.setenv("LOOPWRIGHT_PRICES", '{"big": {"prompt": 1.5, "completion": 6}}')
    monkeypatch.setenv("LOOPWRIGHT_WEBHOOK_SECRET", "s3cret-value")
    s = load_settings()
    assert s.models_for("triage") == ["small", "big"]
    assert s.models_for("patch") == [s.model_default]
    assert s.price_of("big").completion == 6
    assert "s3cret-value" not in repr(s)


def test_invalid_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWRIGHT_APP_ID", "not-a-number")
    with pytest.raises(SettingsError, match="LOOPWRIGHT_APP_ID is invalid"):
        load_settings()


def test_missing_setting_on_the_command_line_is_one_clear_line(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "loopwright: LOOPWRIGHT_WEBHOOK_SECRET is not set"


def test_private_key_file_is_read_lazily(tmp_path: os.PathLike[str]) -> None:
    s = load_settings(private_key_file=os.path.join(tmp_path, "missing.pem"))
    with pytest.raises(SettingsError, match="cannot be read"):
        s.private_key_pem()


def test_a_missing_local_model_file_is_one_line(tmp_path: os.PathLike[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    env["LOOPWRIGHT_LOCAL_MODEL_PATH"] = os.path.join(tmp_path, "nope.gguf")
    env["LOOPWRIGHT_DATA_DIR"] = str(tmp_path)
    issue = os.path.join(tmp_path, "i.md")
    with open(issue, "w") as f:
        f.write("# Title\nbody\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "triage",
            "--repo",
            str(tmp_path),
            "--issue-file",
            issue,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().endswith("nope.gguf does not exist")
    assert "Traceback" not in proc.stderr
