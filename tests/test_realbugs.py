"""Real bugs from real projects through `loopwright run fix`: the real CLI in a subprocess, the
real sandbox as the unprivileged user, the project's own setup (pip, with network) and test
command, and oracle models over HTTP through the real `openai` client.

The oracle knows the upstream test and fix: the loop must get the bug through (`fixed`, or
`behaviour_change` where the upstream fix changes what an existing test expects). The wrong
oracles write the same reproduction and then cheat: neither may ever be kept. The rest of the
corpus runs in bench/realbugs.py.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import realbugs
from tests.support.cli import base_env, cli
from tests.support.fakemodel import FakeModel
from tests.support.sandbox_user import bwrap_works, sandbox_run_as

__all__ = ["sandbox_run_as"]

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """One data dir for the module: the environment and baseline caches are shared, as they
    are between jobs on one worker."""
    path = Path(tempfile.mkdtemp(prefix="lw-realbugs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def play(
    name: str, kind: str, tmp_path: Path, data: Path, model: FakeModel, run_as: str | None
) -> tuple[realbugs.Bug, dict[str, Any]]:
    bug = realbugs.load(realbugs.FIXTURE_CORPUS / name)
    repo = realbugs.make_repo(bug, tmp_path / name)
    issue = tmp_path / "issue.md"
    issue.write_text(bug.issue_markdown())
    realbugs.script(model, bug, kind)
    env = base_env(
        data,
        LOOPWRIGHT_MODEL_BASE_URL=model.url,
        LOOPWRIGHT_MODEL_API_KEY="sk-local-" + "q" * 24,
        LOOPWRIGHT_SANDBOX_USER=run_as or "",
    )
    code, out, err = await cli(
        "run", "fix", "--repo", str(repo), "--issue-file", str(issue), "--json",
        env=env, timeout=600,
    )  # fmt: skip
    assert out, err
    result = json.loads(out)
    # Progress went to stderr, phase by phase, and stdout stayed one JSON document.
    assert "baseline" in err and "reproduce: attempt 1" in err
    assert (code == 0) == (result["exit"] == "fixed")
    return bug, result


def fixed_content(diff: str, path: str) -> list[str]:
    """The lines the diff adds to `path`."""
    out, current = [], None
    for line in diff.splitlines():
        if line.startswith("+++ b/"):
            current = line[6:]
        elif current == path and line.startswith("+") and not line.startswith("+++"):
            out.append(line[1:])
    return out


async def test_the_oracle_fixes_a_real_bug_with_the_upstream_change(
    tmp_path: Path, data_dir: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    bug, result = await play(
        "youtube-dl-13", "oracle", tmp_path, data_dir, fake_model, sandbox_run_as
    )
    assert result["exit"] == "fixed", result["detail"]
    repro = result["reproduction"]
    # Placed next to the project's own tests (test/, not tests/) and judged in its own run.
    assert repro["ok"] and repro["test_path"] == "test/test_loopwright_issue_1.py"
    assert repro["test_ids"] == ["test/test_loopwright_issue_1.py::TestUtil::test_urljoin"]
    [(path, (_old, new))] = bug.fix_files.items()
    added = fixed_content(result["diff"], path)
    assert added and all(line in new.splitlines() for line in added)
    assert [a["verdict"] for a in result["attempts"]] == ["kept"]
    assert {v["verdict"] for v in result["verification"]} == {"fixed"}
    # Well inside the default budget of 40k tokens.
    assert result["usage"]["prompt_tokens"] + result["usage"]["completion_tokens"] < 20_000


async def test_a_patch_that_special_cases_the_visible_test_is_never_kept(
    tmp_path: Path,
    data_dir: Path,
    fake_model: FakeModel,
    sandbox_run_as: str | None,
) -> None:
    # (The weakening oracle — skip, delete assertions, conftest — runs in bench/realbugs.py;
    # tests/test_e2e_fix.py covers those attacks on the fixture project.)
    _bug, result = await play(
        "youtube-dl-13", "special_case", tmp_path, data_dir, fake_model, sandbox_run_as
    )
    assert result["reproduction"]["ok"]
    assert result["exit"] not in ("fixed", "behaviour_change"), result["detail"]
    assert all(a["verdict"] != "kept" for a in result["attempts"]), result["attempts"]
    assert "youtube_dl/utils.py" not in result["diff"]
    # It switches on PYTEST_CURRENT_TEST: the diff screen refuses it before any run (were it
    # to slip past, the held-out variant, whose test name differs, would catch it).
    assert any(
        "diff screen" in a["score"] and "PYTEST_CURRENT_TEST" in a["score"]
        for a in result["attempts"]
    ), result["attempts"]


async def test_a_fix_that_changes_an_existing_expectation_is_a_behaviour_change(
    tmp_path: Path, data_dir: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    _bug, result = await play(
        "youtube-dl-16", "oracle", tmp_path, data_dir, fake_model, sandbox_run_as
    )
    assert result["exit"] == "behaviour_change", result["detail"]
    assert result["labels"] == ["loopwright:behaviour-change"]
    comment = result["comment"]
    # The existing test that pins the old (str input) behaviour is named with both outcomes.
    assert "| `test/test_utils.py::TestUtil::test_dfxp2srt` | passed | failed |" in comment
    assert "youtube_dl/utils.py" in result["diff"]
