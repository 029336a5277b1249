"""default_setup_commands: which test dependencies the default setup installs (no sandbox)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.sandbox import default_setup_commands

VENV = ["python3", "-m", "venv", "{venv}"]
PIP = ["{venv}/bin/python", "-m", "pip", "install", "--disable-pip-version-check"]
PROJECT = [*PIP, "-e", ".", "pytest"]


def write(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def project(root: Path, files: Mapping[str, str | bytes]) -> list[list[str]]:
    """Commands for a project (a setup.py marks it, unless a pyproject.toml is given)."""
    base: dict[str, str | bytes] = {} if "pyproject.toml" in files else {"setup.py": ""}
    return default_setup_commands(write(root, {**base, **files}))


def extras(root: Path, files: Mapping[str, str | bytes]) -> list[str]:
    """The extra-requirements command's arguments after `pip install`, [] if there is none."""
    cmds = project(root, files)
    assert cmds[:2] == [VENV, cmds[1]] and cmds[1][: len(PIP) + 1] == [*PIP, "-e"]
    assert len(cmds) <= 3
    if len(cmds) == 2:
        return []
    assert cmds[2][: len(PIP)] == PIP
    return cmds[2][len(PIP) :]


# --- unchanged behaviour -----------------------------------------------------------------------


def test_empty_directory_yields_the_current_commands(tmp_path: Path) -> None:
    assert default_setup_commands(tmp_path) == [VENV, [*PIP, "pytest"]]


def test_plain_project_yields_the_current_commands(tmp_path: Path) -> None:
    assert project(tmp_path, {}) == [VENV, PROJECT]


def test_project_with_only_unrelated_config_yields_the_current_commands(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": '[project]\nname = "x"\n[tool.pytest.ini_options]\naddopts = "-ra -q"\n',
        "tox.ini": "[tox]\nenvlist = py311\n",
        "requirements.txt": "requests\n",  # the project's own, installed by `pip install -e .`
    }
    assert project(tmp_path, files) == [VENV, PROJECT]


def test_test_extra_is_still_chosen(tmp_path: Path) -> None:
    toml = '[project]\nname = "x"\n[project.optional-dependencies]\ndev = ["a"]\ntesting = ["b"]\n'
    assert project(tmp_path, {"pyproject.toml": toml})[1] == [*PIP, "-e", ".[testing]", "pytest"]


# --- requirement files -------------------------------------------------------------------------


def test_requirement_files_in_documented_order(tmp_path: Path) -> None:
    names = [
        "requirements-tests.txt",
        "test_requirements.txt",
        "requirements-dev.txt",
        "dev-requirements.txt",
        "requirements_test.txt",
        "requirements/dev.txt",
        "requirements/test-unit.txt",
        "requirements/docs.txt",  # not a test file
        "requirements/tests.txt",
        "requirements_dev.txt",
        "test-requirements.txt",
        "requirements-test.txt",
    ]
    args = extras(tmp_path, dict.fromkeys(names, "x\n"))
    assert args == [
        *("-r", "requirements-dev.txt"),
        *("-r", "requirements_dev.txt"),
        *("-r", "dev-requirements.txt"),
        *("-r", "test-requirements.txt"),
        *("-r", "test_requirements.txt"),
        *("-r", "requirements-test.txt"),
        *("-r", "requirements_test.txt"),
        *("-r", "requirements-tests.txt"),
        *("-r", "requirements/test-unit.txt"),
        *("-r", "requirements/tests.txt"),
        *("-r", "requirements/dev.txt"),
    ]


def test_requirements_only_repo_gets_one_command(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "requirements.txt": "a\n",
            "requirements-dev.txt": "b\n",
            "dev-requirements.txt": "c\n",
            "requirements/test.txt": "d\n",
            "pytest.ini": "[pytest]\naddopts = --cov=pkg\n",
        },
    )
    assert default_setup_commands(tmp_path) == [
        VENV,
        [
            *PIP,
            *("-r", "requirements-dev.txt"),  # the requirements*.txt glob, as before
            *("-r", "requirements.txt"),
            *("-r", "dev-requirements.txt"),  # not repeated: requirements-dev.txt
            *("-r", "requirements/test.txt"),
            "pytest-cov",
            "pytest",
        ],
    ]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinked_requirement_file_is_ignored(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements-dev.txt").symlink_to(outside)
    assert extras(repo, {}) == []


# --- tox.ini -----------------------------------------------------------------------------------


def test_tox_testenv_deps(tmp_path: Path) -> None:
    tox = """\
[tox]
envlist = py311, lint

[testenv]
deps =
    pytest>=7  # comment
    hypothesis
    -rci/requirements.txt
    -r missing.txt
    -c constraints.txt
    --requirement=ci/requirements.txt
    -r{toxinidir}/requirements-x.txt
    django{32,42}: Django
    py311: tomli
    .
    .[test]
    -e .
    --pre
    mock ; python_version < "3.8"
    hypothesis
commands = pytest {posargs}

[testenv:lint]
deps = ruff
"""
    files = {"tox.ini": tox, "ci/requirements.txt": "x\n", "constraints.txt": "x==1\n"}
    assert extras(tmp_path, files) == [
        *("-r", "ci/requirements.txt"),
        *("-c", "constraints.txt"),
        "pytest>=7",
        "hypothesis",
        'mock ; python_version < "3.8"',
    ]


def test_tox_deps_line_continuation_and_percent(tmp_path: Path) -> None:
    tox = "[testenv]\ndeps = pytest \\\n    >=7\n    pkg%20\n"
    # "pkg%20" is not a valid requirement, but interpolation must not raise on it.
    assert extras(tmp_path, {"tox.ini": tox}) == ["pytest >=7", "pkg%20"]


def test_tox_constraints_alone_add_no_command(tmp_path: Path) -> None:
    files = {"tox.ini": "[testenv]\ndeps = -c c.txt\n", "c.txt": "x==1\n"}
    assert extras(tmp_path, files) == []


def test_tox_requirement_outside_the_workspace_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "shared.txt").write_text("x\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    tox = "[testenv]\ndeps =\n    -r ../shared.txt\n    -r /etc/hostname\n    pytest\n"
    assert extras(repo, {"tox.ini": tox}) == ["pytest"]


# --- PEP 735 dependency groups -----------------------------------------------------------------


def test_dependency_groups_first_test_group_with_includes(tmp_path: Path) -> None:
    toml = """\
[project]
name = "x"

[dependency-groups]
Dev = ["ruff", {include-group = "tests"}]
tests = ["pytest>=8", {include-group = "Coverage_Tools"}, "hypothesis"]
coverage-tools = ["coverage[toml]"]
"""
    assert extras(tmp_path, {"pyproject.toml": toml}) == [
        "pytest>=8",
        "coverage[toml]",
        "hypothesis",
    ]


def test_dependency_groups_cycle_and_junk_are_skipped(tmp_path: Path) -> None:
    toml = """\
[dependency-groups]
test = ["a", {include-group = "other"}, {include-group = 3}, 5, "--index-url=http://x", "a"]
other = ["b", {include-group = "test"}, {include-group = "missing"}]
"""
    assert extras(tmp_path, {"pyproject.toml": toml}) == ["a", "b"]


def test_dependency_groups_non_list_group_is_skipped(tmp_path: Path) -> None:
    toml = '[dependency-groups]\ntest = "pytest"\ndev = ["ruff"]\n'
    assert extras(tmp_path, {"pyproject.toml": toml}) == ["ruff"]


# --- poetry ------------------------------------------------------------------------------------


def test_poetry_groups_and_dev_dependencies(tmp_path: Path) -> None:
    toml = """\
[tool.poetry.dependencies]
python = "^3.11"
requests = "^2.31"

[tool.poetry.group.dev.dependencies]
ruff = "*"
black = "23.1.0"

[tool.poetry.group.test.dependencies]
pytest = "^8.1"
pytest-mock = "~3.12"
freezegun = "~1"
coverage = { version = ">= 7.0, < 8", extras = ["toml"] }
mylib = { path = "../mylib", develop = true }
vcslib = { git = "https://example.com/x.git" }
private = { version = "^1", source = "internal" }
oddly = "^1.0 || ^2.0"
multi = [{ version = "^1", python = "<3.12" }, { version = "^2", python = ">=3.12" }]
broken = 3

[tool.poetry.dev-dependencies]
Python = "^3.11"
mypy = ">=1.5"
ruff = "*"
"""
    assert extras(tmp_path, {"pyproject.toml": toml}) == [
        "pytest>=8.1",
        "pytest-mock~=3.12",
        "freezegun~=1.0",
        "coverage[toml]>=7.0,<8",
        "oddly",
        "multi",
        "ruff",
        "black==23.1.0",
        "mypy>=1.5",
    ]


# --- pytest addopts ----------------------------------------------------------------------------

ALL_PLUGINS = [
    "pytest-cov",
    "pytest-xdist",
    "pytest-timeout",
    "pytest-benchmark",
    "pytest-rerunfailures",
]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("pytest.ini", "[pytest]\naddopts = {}\n"),
        (".pytest.ini", "[pytest]\naddopts = {}\n"),
        ("tox.ini", "[pytest]\naddopts = {}\n"),
        ("setup.cfg", "[tool:pytest]\naddopts = {}\n"),
        ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = '{}'\n"),
    ],
)
def test_addopts_plugins_from_each_config(tmp_path: Path, name: str, content: str) -> None:
    opts = "--reruns 2 --benchmark-skip -n auto --timeout=30 --cov=pkg --cov-report=xml -p no:x"
    assert extras(tmp_path, {name: content.format(opts)}) == ALL_PLUGINS


@pytest.mark.parametrize(
    "opts",
    [
        ["-n4"],
        ["-nlogical"],
        ["--numprocesses=2"],
        ["--dist", "loadscope"],
        ["--dist=load"],
    ],
)
def test_xdist_spellings(tmp_path: Path, opts: list[str]) -> None:
    toml = f"[tool.pytest.ini_options]\naddopts = {opts!r}\n"
    assert extras(tmp_path, {"pyproject.toml": toml}) == ["pytest-xdist"]


def test_addopts_list_multiline_and_unneeded_flags(tmp_path: Path) -> None:
    toml = '[tool.pytest.ini_options]\naddopts = ["-ra", "--no-cov-on-fail --strict-markers", 3]\n'
    assert extras(tmp_path, {"pyproject.toml": toml}) == ["pytest-cov"]
    ini = "[pytest]\naddopts =\n    -p pytest_mock\n    --strict-config\n    --network\n"
    assert extras(tmp_path / "b", {"pytest.ini": ini}) == []


def test_addopts_follow_pytest_config_precedence(tmp_path: Path) -> None:
    # pytest uses pytest.ini even without a [pytest] section, so the others do not count.
    files = {
        "pytest.ini": "# empty\n",
        "tox.ini": "[pytest]\naddopts = --cov\n",
        "setup.cfg": "[tool:pytest]\naddopts = --timeout=5\n",
    }
    assert extras(tmp_path, files) == []
    # pyproject's table wins over tox.ini and setup.cfg.
    files = {
        "pyproject.toml": "[tool.pytest.ini_options]\nminversion = '8'\n",
        "tox.ini": "[pytest]\naddopts = --cov\n",
    }
    assert extras(tmp_path / "b", files) == []
    files = {"tox.ini": "[tox]\n", "setup.cfg": "[tool:pytest]\naddopts = --timeout=5\n"}
    assert extras(tmp_path / "c", files) == ["pytest-timeout"]


def test_plugin_already_required_is_not_repeated(tmp_path: Path) -> None:
    files = {
        "tox.ini": "[testenv]\ndeps = pytest_cov>=4\n[pytest]\naddopts = --cov -n 2\n",
    }
    assert extras(tmp_path, files) == ["pytest_cov>=4", "pytest-xdist"]


# --- combined, dedup, determinism --------------------------------------------------------------


def test_all_sources_in_one_extra_command_deduplicated(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "pyproject.toml": """\
[project]
name = "x"
[project.optional-dependencies]
test = ["pytest"]
[dependency-groups]
test = ["hypothesis", "pytest-cov"]
[tool.poetry.group.test.dependencies]
hypothesis = "*"
[tool.pytest.ini_options]
addopts = "--cov -n auto"
""",
        "tox.ini": "[testenv]\ndeps =\n    hypothesis\n    -r requirements-dev.txt\n",
        "requirements-dev.txt": "ruff\n",
    }
    cmds = project(tmp_path, files)
    assert cmds == [
        VENV,
        [*PIP, "-e", ".[test]", "pytest"],
        [*PIP, "-r", "requirements-dev.txt", "hypothesis", "pytest-cov", "pytest-xdist"],
    ]
    assert default_setup_commands(tmp_path) == cmds


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        {"pyproject.toml": "[project\nname = "},
        {"pyproject.toml": b"\xff\xfe[project]"},
        {"pyproject.toml": "project = 1\n"},
        {"pyproject.toml": "[project]\noptional-dependencies = 1\n"},
        {"pyproject.toml": "dependency-groups = 1\ntool = 2\n"},
        {"pyproject.toml": "[tool]\npoetry = 1\npytest = 2\n"},
        {"pyproject.toml": "[tool.poetry]\ngroup = 1\ndev-dependencies = []\n"},
        {"pyproject.toml": "[tool.poetry.group.test]\ndependencies = 'x'\n"},
        {"pyproject.toml": "[tool.pytest]\nini_options = 1\n"},
        {"pyproject.toml": "[tool.pytest.ini_options]\naddopts = 1\n"},
        {"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '--cov \"unclosed'\n"},
        {"tox.ini": "deps = x\n[testenv"},
        {"tox.ini": "[testenv]\n[testenv]\ndeps\n"},
        {"tox.ini": b"[testenv]\ndeps = \xff\n"},
        {"tox.ini": "[testenv]\ndeps = -r\n"},
        {"pytest.ini": "addopts = --cov\n"},
        {"setup.cfg": "[tool:pytest\n"},
        {"tox.ini": "[pytest]\naddopts = %(missing)s\n"},
    ],
)
def test_malformed_files_are_skipped(tmp_path: Path, files: dict[str, str | bytes]) -> None:
    assert extras(tmp_path, files) == []


def test_oversized_config_is_not_parsed(tmp_path: Path) -> None:
    tox = "[testenv]\ndeps = pytest-foo\n" + "#" * (2 << 20)
    assert extras(tmp_path, {"tox.ini": tox}) == []


def test_directory_named_like_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "tox.ini").mkdir()
    (tmp_path / "requirements-dev.txt").mkdir()
    assert extras(tmp_path, {}) == []
