"""`.github/loopwright.yml` parsing: defaults, and errors that name the key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.repo_config import ConfigError, parse_config


def test_missing_or_empty_config_is_all_defaults() -> None:
    for text in (None, "", "# only a comment\n"):
        cfg = parse_config(text)
        assert cfg.loops.triage and cfg.triage.labels["feature"] == "enhancement"
        assert not cfg.triage.create_missing_labels


def test_valid_config_overrides() -> None:
    cfg = parse_config(
        "loops:\n  triage: false\ntriage:\n  labels:\n    bug: 'type: bug'\n"
        "  severity_labels:\n    critical: P0\n  create_missing_labels: true\n"
    )
    assert not cfg.loops.triage
    assert cfg.commands.setup_argv() is None and cfg.commands.test_argv() is None
    assert cfg.triage.labels == {"bug": "type: bug"}
    assert cfg.triage.severity_labels == {"critical": "P0"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("triage:\n  lables: {}\n", "`triage.lables`: unknown key"),
        ("loops:\n  triage: maybe\n", "`loops.triage`"),
        ("triage:\n  labels:\n    chore: x\n", "`triage.labels.chore"),
        ("budgets:\n  max_iterations: 0\n", "`budgets.max_iterations`"),
        ("triage: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "top level must be a mapping"),
        ('commands:\n  test: "pytest \'unclosed"\n', "`commands.test`"),
        ("commands:\n  setup: ['']\n", "`commands.setup`"),
    ],
)
def test_invalid_config_names_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert expected in str(err.value)


def test_config_schema_command_prints_the_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "config-schema"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    schema = json.loads(out)
    assert set(schema["properties"]) == {
        "loops",
        "triage",
        "budgets",
        "costs",
        "commands",
        "fix",
        "ci",
        "deps",
    }


def test_fix_section_names_a_wrong_key() -> None:
    cfg = parse_config("fix:\n  retest_runs: 7\n  protected_paths: ['migrations/**']\n")
    assert cfg.fix.retest_runs == 7 and cfg.fix.protected_paths == ["migrations/**"]
    with pytest.raises(ConfigError) as err:
        parse_config("fix:\n  retest_run: 5\n  max_turns: 0\n")
    text = "\n".join(err.value.problems)
    assert "fix.retest_run" in text and "fix.max_turns" in text


def test_commands_are_split_without_a_shell() -> None:
    cfg = parse_config(
        "commands:\n  setup:\n    - python -m venv {venv}\n"
        "    - \"{venv}/bin/pip install -e '.[test]'\"\n  test: python -m pytest -x tests\n"
    )
    assert cfg.commands.setup_argv() == [
        ["python", "-m", "venv", "{venv}"],
        ["{venv}/bin/pip", "install", "-e", ".[test]"],
    ]
    assert cfg.commands.test_argv() == ["python", "-m", "pytest", "-x", "tests"]
