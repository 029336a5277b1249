"""The forge's ports (`loops.ports`): each holds what its loops call, nothing more; the GitHub
forge implements them all, local mode's forge the issue port, all of it; local mode refuses
the other loops before they start.

mypy checks this file too (`files` in pyproject.toml): `_ports_of` is the proof at type level.
A local issue loop run end to end through `DryRunForge` is tests/test_cli.py (`loopwright run
triage`, `replay`) and tests/test_local_fix.py (`loopwright run fix`).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from bot.forge import DryRunForge, GitHubForge, Issue
from loops import ISSUE_LOOPS, LOOPS
from loops.ports import CIPort, Forge, IssuePort, LoopPort, PullPort
from tests.support import FIXTURES
from tests.support.cli import base_env, cli
from tests.support.fakemodel import FakeModel

ROOT = Path(__file__).resolve().parents[1]
ISSUE = Issue(number=7, title="It crashes", body="Traceback ...", author="someone")

#: Which port each module's `ctx.forge.*` calls must fit in.
PORT_OF_MODULE: dict[str, type] = {
    "engine.py": LoopPort,
    "triage.py": IssuePort,
    "fix.py": IssuePort,
    "learn.py": IssuePort,
    "deps.py": PullPort,
    "ci_repair.py": CIPort,
}


def _ports_of(local: DryRunForge, github: GitHubForge) -> tuple[IssuePort, Forge]:
    """Type-checked, never called for its value: mypy fails here if `DryRunForge` misses any
    member of `IssuePort` or `GitHubForge` any member of `Forge`."""
    return local, github


def members(port: type) -> set[str]:
    """The methods and attributes a port declares, its bases' included."""
    names: set[str] = set()
    for cls in port.__mro__:
        if cls.__module__ == "loops.ports":
            names |= {n for n in vars(cls) if not n.startswith("_")}
            names |= set(getattr(cls, "__annotations__", {}))
    return names


def forge_calls(path: Path) -> set[str]:
    """The attributes of `ctx.forge` (or `forge`) a module uses."""
    used = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "forge":
                used.add(node.attr)
    return used


def test_each_module_calls_only_its_port() -> None:
    for name, port in PORT_OF_MODULE.items():
        used = forge_calls(ROOT / "loops" / name)
        # learn's training reads the history through GitHubForge's own client, behind an
        # isinstance check: local mode ends the loop before (`disabled`).
        used -= {"client"} if name == "learn.py" else set()
        assert used <= members(port), (name, used - members(port))


def test_no_port_declares_what_no_loop_calls() -> None:
    used = set().union(*(forge_calls(p) for p in (ROOT / "loops").glob("*.py")))
    assert members(Forge) == used - {"client"}
    # Each port's own methods are called by its loops (the shared ones by several).
    for name, port in PORT_OF_MODULE.items():
        if port is not LoopPort:
            own = members(port) - members(LoopPort)
            mine = {n for n, p in PORT_OF_MODULE.items() if p is port}
            called = set().union(*(forge_calls(ROOT / "loops" / m) for m in mine))
            assert own <= called, (name, own - called)


def test_the_forges_implement_their_ports_without_getattr() -> None:
    for name in members(IssuePort):
        assert hasattr(DryRunForge, name) or name == "repo", name
    for name in members(Forge):
        assert hasattr(GitHubForge, name) or name == "repo", name
    assert not hasattr(DryRunForge, "__getattr__")
    # The methods only PR and CI loops call are not faked locally.
    for name in members(Forge) - members(IssuePort):
        assert not hasattr(DryRunForge, name), name


def test_local_mode_can_run_exactly_the_issue_loops() -> None:
    assert set(ISSUE_LOOPS) == {
        "triage",
        "fix",
        "reproduce",
        "retest",
        "stop",
        "train",
        "label_feedback",
    }
    assert set(LOOPS) - set(ISSUE_LOOPS) == {"ci_repair", "deps"}


async def test_the_local_tracking_issue_is_recorded_once_per_key_and_redacted() -> None:
    forge = DryRunForge("local/x", issue=ISSUE, secrets=["s3cr3t-value"])
    first = await forge.upsert_tracking_issue("train", "Classifier", "token s3cr3t-value")
    again = await forge.upsert_tracking_issue("train", "Classifier", "other body")
    other = await forge.upsert_tracking_issue("workflow-3", "CI is failing", "body")
    assert first == again == ISSUE.number + 1 and other == ISSUE.number + 2
    [kept, _] = forge.posted()["tracking"]
    assert "s3cr3t-value" not in kept["body"]
    assert kept["body"].startswith("<!-- loopwright:tracking:train -->")


async def test_replaying_a_ci_event_locally_names_what_to_configure(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    data = json.loads((FIXTURES / "webhooks" / "workflow_run" / "completed.1.json").read_text())
    data["workflow_run"]["conclusion"] = "failure"
    saved = tmp_path / "failed.json"
    saved.write_text(json.dumps(data))
    env = base_env(tmp_path, LOOPWRIGHT_MODEL_BASE_URL=fake_model.url)
    code, out, err = await cli("replay", str(saved), "--event", "workflow_run", env=env)
    assert code == 2, (out, err)
    assert "local mode cannot run `ci_repair`" in err and "LOOPWRIGHT_APP_ID" in err
    assert "Traceback" not in err and fake_model.calls == []
