"""`loopwright run fix` on a local repository: the real CLI in a subprocess, the scripted model
over HTTP, the sandbox as the unprivileged test user; no GitHub."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import fixrepo
from tests.support.cli import base_env, cli
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, sandbox_run_as

__all__ = ["sandbox_run_as"]

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")


def local_env(tmp_path: Path, model: FakeModel, run_as: str | None) -> dict[str, str]:
    return base_env(
        tmp_path / "data",
        LOOPWRIGHT_MODEL_BASE_URL=model.url,
        LOOPWRIGHT_MODEL_API_KEY="sk-local-" + "z" * 24,
        LOOPWRIGHT_SANDBOX_USER=run_as or "",
    )


async def test_run_fix_locally(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    repo = fixrepo.write_local_repo(tmp_path / "calc")
    issue = tmp_path / "issue.md"
    issue.write_text(f"# {fixrepo.ISSUE_TITLE}\n\n{fixrepo.ISSUE_BODY}")
    fake_model.script("write_test", fixrepo.repro_answer())
    fake_model.script("patch", *fixrepo.RIGHT_FIX)
    code, out, err = await cli(
        "run",
        "fix",
        "--repo",
        str(repo),
        "--issue-file",
        str(issue),
        "--json",
        env=local_env(tmp_path, fake_model, sandbox_run_as),
        timeout=300,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["exit"] == "fixed"
    assert "+    return words[-1] if words else" in data["diff"]
    assert "+++ b/tests/test_loopwright_issue_1.py" in data["diff"]
    assert [a["verdict"] for a in data["attempts"]] == ["kept"]
    verdicts = {v["test"].split("::")[-1]: v["verdict"] for v in data["verification"]}
    assert verdicts["test_last_word_of_empty_text"] == "fixed"
    assert verdicts["test_last_word_of_blank_text"] == "fixed"
    assert data["reproduction"]["ok"] and data["usage"]["calls"] == 4
    # The local checkout itself is untouched: the work happened in a clone.
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""
    assert (repo / "calc" / "words.py").read_text() == fixrepo.WORDS_PY


async def test_run_fix_needs_a_git_repository(tmp_path: Path, fake_model: FakeModel) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    issue = tmp_path / "issue.md"
    issue.write_text("# t\n\nbody")
    code, _out, err = await cli(
        "run",
        "fix",
        "--repo",
        str(plain),
        "--issue-file",
        str(issue),
        env=local_env(tmp_path, fake_model, None),
    )
    assert code != 0 and "not the root of a git repository" in err


async def _run_fix(
    tmp_path: Path, repo: Path, model: FakeModel, run_as: str | None
) -> tuple[int, str, str]:
    """`loopwright run fix --json` on `repo` for the fixture's issue."""
    issue = tmp_path / "issue.md"
    issue.write_text(f"# {fixrepo.ISSUE_TITLE}\n\n{fixrepo.ISSUE_BODY}")
    return await cli(
        "run", "fix", "--repo", str(repo), "--issue-file", str(issue), "--json",
        env=local_env(tmp_path, model, run_as),
        timeout=300,
    )  # fmt: skip


def _django_style_repo(path: Path, test_command: str) -> Path:
    """The fixture with Django's discovery: only files named `tests.py` are test modules, so
    the loop's own `test_loopwright_issue_1.py` is not something discovery would find."""
    config = fixrepo.loopwright_config().replace('"python -m pytest -q"', json.dumps(test_command))
    repo = fixrepo.write_local_repo(path, config)
    (repo / "tests" / "test_words.py").rename(repo / "tests" / "tests.py")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "calc"\nversion = "0.1"\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\npython_files = ["tests.py"]\n'
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "django-style discovery"], check=True)
    return repo


async def test_a_reproduction_discovery_would_miss_is_named_on_every_run(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    repo = _django_style_repo(tmp_path / "calc", "python -m pytest -q")
    fake_model.script("write_test", fixrepo.repro_answer())
    fake_model.script("patch", *fixrepo.RIGHT_FIX)
    code, out, err = await _run_fix(tmp_path, repo, fake_model, sandbox_run_as)
    assert code == 0, err
    data = json.loads(out)
    # Scored on whole-suite runs: without the wider `python_files` the reproduction would be
    # missing from them ("reproduction still fails") and nothing would ever be kept.
    assert data["exit"] == "fixed", data["detail"]
    assert [a["verdict"] for a in data["attempts"]] == ["kept"]


async def test_a_wrapper_that_never_collects_the_reproduction_stops_before_the_model(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    repo = _django_style_repo(tmp_path / "calc", "sh -c 'python -m pytest -q tests/tests.py'")
    fake_model.script("write_test", fixrepo.repro_answer())
    code, out, err = await _run_fix(tmp_path, repo, fake_model, sandbox_run_as)
    data = json.loads(out)
    assert data["exit"] == "setup_error", err
    assert "does not collect a test at tests/test_loopwright_issue_1.py" in data["detail"]
    assert "commands.test" in data["detail"]
    assert data["usage"]["calls"] == 0  # no model time was spent
    assert code != 0
