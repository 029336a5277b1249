"""The model's action space over a real workspace (git smart HTTP → mirror → working copy)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.testresults import TestOutcome, TestRun
from bot.workspace import MirrorCache, Workspace, open_workspace
from loops.tools import (
    PATCH_PROTECTED_PATHS,
    ActionParseError,
    PathPolicy,
    Toolbox,
    ToolBudgets,
    action_schema,
    find_ruff,
    parse_action,
    tool_schemas,
)
from tests.support.githttp import commit_files, create_bare_repo, git_server

TOKEN = "ghs_toolsTestToken0123456789abcdef"
REPO = "acme/tools"

WIDGET = (
    "def area(w, h):\n"
    "    return w * h\n"
    "\n"
    "\n"
    "def double(x):\n"
    "    return x + x\n"
    "\n"
    "\n"
    "def halve(x):\n"
    "    return x / 2\n"
)
FILES: dict[str, str | None] = {
    "src/widget.py": WIDGET,
    "src/big.py": "".join(f"VALUE_{i} = {i}  # marker\n" for i in range(1, 251)),
    "src/long.py": "X = '" + "y" * 1000 + "'\n",
    "src/crlf.py": "def f():\r\n    return 1\r\n",
    "src/legacy.py": "def g():\n    return missing_name\n",
    "src/data.json": '{"a": 1}\n',
    "tests/test_widget.py": "from src.widget import area\n",
    "conftest.py": "import pytest\n",
    ".github/workflows/ci.yml": "on: push\n",
}


@pytest.fixture
async def ws(tmp_path: Path) -> AsyncIterator[Workspace]:
    repos = tmp_path / "server"
    bare = create_bare_repo(repos, REPO)
    commit_files(bare, FILES, "initial")
    async with git_server(repos, {TOKEN: True}) as base_url:
        mirrors = MirrorCache(tmp_path / "data", git_base_url=base_url)
        await mirrors.fetch(REPO, TOKEN)
        async with open_workspace(mirrors, REPO, "main", loop="patch", number=4) as w:
            yield w


def raw(ws: Workspace, path: str) -> bytes:
    return (ws.root / path).read_bytes()


# --- view and search ------------------------------------------------------------------------


async def test_view_windows_clamp_and_number_lines(ws: Workspace) -> None:
    tools = Toolbox(ws)
    r = await tools.dispatch("view", {"path": "src/big.py", "start": 10, "end": 12})
    assert r.ok
    assert r.output.startswith("src/big.py lines 10-12 of 250\n")
    assert "\n10| VALUE_10 = 10  # marker\n" in r.output
    assert "VALUE_13" not in r.output and "VALUE_9 " not in r.output

    r = await tools.dispatch("view", {"path": "src/big.py", "start": 1, "end": 1000})
    assert "lines 1-100 of 250 (window capped at 100 lines)" in r.output
    assert "VALUE_100 " in r.output and "VALUE_101 " not in r.output

    r = await tools.dispatch("view", {"path": "src/big.py", "start": 900})
    assert "lines 250-250 of 250" in r.output and "past the end" in r.output

    r = await tools.dispatch("view", {"path": "src/long.py"})
    assert "[… line cut]" in r.output

    small = Toolbox(ws, budgets=ToolBudgets(output_tokens=200))
    r = await small.dispatch("view", {"path": "src/big.py", "start": 1, "end": 100})
    assert r.ok and "output budget reached; continue with start=" in r.output
    assert len(r.output) <= 200 * 3.5

    r = await tools.dispatch("view", {"path": "src/nope.py"})
    assert not r.ok and "not a file" in r.output


async def test_search_caps_hits_and_cuts_lines(ws: Workspace) -> None:
    tools = Toolbox(ws, budgets=ToolBudgets(search_hits=30, output_tokens=4000))
    r = await tools.dispatch("search", {"pattern": r"VALUE_\d+"})
    assert r.ok
    assert r.output.startswith("30 matches in 1 files; more not shown (first 30 only)")
    assert r.output.count("src/big.py:") == 30

    r = await tools.dispatch("search", {"pattern": "yyyy"})
    assert "src/long.py:1: X = 'yyy" in r.output and "[… cut]" in r.output

    # Code pasted as a pattern is searched literally instead of failing.
    r = await tools.dispatch("search", {"pattern": "area("})
    assert r.ok and "searched literally" in r.output and "src/widget.py:1:" in r.output

    r = await tools.dispatch("search", {"pattern": "(a+)+$"})
    assert not r.ok and "nested repetition" in r.output

    r = await tools.dispatch("search", {"pattern": "no_such_thing_anywhere"})
    assert r.ok and r.output == "no matches"


# --- edit -----------------------------------------------------------------------------------


async def test_edit_accepted_and_counted(ws: Workspace) -> None:
    tools = Toolbox(ws)
    r = await tools.dispatch(
        "edit", {"path": "src/widget.py", "search": "return x + x", "replace": "return 2 * x"}
    )
    assert r.ok and r.output == "edited src/widget.py"
    assert "return 2 * x" in (ws.root / "src/widget.py").read_text()
    assert tools.stats.edits_accepted == 1 and tools.stats.edited_paths == {"src/widget.py"}


async def test_edit_that_breaks_syntax_is_rolled_back(ws: Workspace) -> None:
    tools = Toolbox(ws)
    before = raw(ws, "src/widget.py")
    r = await tools.dispatch(
        "edit", {"path": "src/widget.py", "search": "def double(x):", "replace": "def double(x:"}
    )
    assert not r.ok and "no longer parse" in r.output and "SyntaxError" in r.output
    assert raw(ws, "src/widget.py") == before

    # Restored byte for byte, even where the workspace's edit normalizes line endings.
    crlf = raw(ws, "src/crlf.py")
    r = await tools.dispatch("edit", {"path": "src/crlf.py", "search": "return 1", "replace": ")"})
    assert not r.ok and raw(ws, "src/crlf.py") == crlf

    r = await tools.dispatch("edit", {"path": "src/data.json", "search": "1}", "replace": "1,"})
    assert not r.ok and "JSONDecodeError" in r.output
    assert tools.stats.refusals["syntax"] == 3 and tools.stats.edits_accepted == 0
    assert await ws.diff() == ""


@pytest.mark.skipif(find_ruff() is None, reason="ruff is not installed")
async def test_edit_that_adds_a_fatal_lint_error_is_rolled_back(ws: Workspace) -> None:
    tools = Toolbox(ws)
    before = raw(ws, "src/widget.py")
    # `return` at module level parses (ast) but can never run: refused, file restored.
    r = await tools.dispatch(
        "edit",
        {"path": "src/widget.py", "search": "def area(w, h):\n    return", "replace": "return"},
    )
    assert not r.ok and "F706" in r.output
    assert raw(ws, "src/widget.py") == before
    # A suppression comment on the line cannot hide it.
    noqa = "  # no" + "qa: F706"
    r = await tools.dispatch(
        "edit",
        {
            "path": "src/widget.py",
            "search": "def area(w, h):\n    return w * h",
            "replace": "return w * h" + noqa,
        },
    )
    assert not r.ok and tools.stats.refusals["lint"] == 2
    # A file that already had the error is not blamed on an unrelated edit.
    r = await tools.dispatch(
        "edit", {"path": "src/legacy.py", "search": "def g():", "replace": "def g() -> None:"}
    )
    assert r.ok


@pytest.mark.skipif(find_ruff() is None, reason="ruff is not installed")
async def test_a_name_used_before_the_edit_that_defines_it_is_kept_with_a_note(
    ws: Workspace,
) -> None:
    # Real fixes call a new helper first and add it in the next edit: the first edit alone
    # has an undefined name. It is kept (the tests judge the end state), and the model is told.
    tools = Toolbox(ws)
    r = await tools.dispatch(
        "edit",
        {"path": "src/widget.py", "search": "return w * h", "replace": "return _mul(w, h)"},
    )
    assert r.ok and "F821" in r.output and "_mul" in r.output and "later edit" in r.output
    r = await tools.dispatch(
        "edit",
        {
            "path": "src/widget.py",
            "search": "def area(w, h):",
            "replace": "def _mul(a, b):\n    return a * b\n\n\ndef area(w, h):",
        },
    )
    assert r.ok and "note" not in r.output
    assert b"return _mul(w, h)" in raw(ws, "src/widget.py")


async def test_edit_of_protected_paths_refused(ws: Workspace) -> None:
    tools = Toolbox(ws)
    paths = ["tests/test_widget.py", "conftest.py", ".github/workflows/ci.yml", "./conftest.py"]
    for path in paths:
        before = raw(ws, path)
        r = await tools.dispatch("edit", {"path": path, "search": "o", "replace": "0"})
        assert not r.ok and "protected" in r.output, path
        assert raw(ws, path) == before
    assert tools.stats.refusals["protected"] == len(paths) and await ws.diff() == ""


async def test_protection_follows_links_and_is_configurable(ws: Workspace) -> None:
    (ws.root / "src/sneaky.py").symlink_to("../tests/test_widget.py")
    tools = Toolbox(ws)
    r = await tools.dispatch("edit", {"path": "src/sneaky.py", "search": "area", "replace": "x"})
    assert not r.ok and "leads to a protected file (tests/**)" in r.output

    # The reproduce step writes tests: it gets a policy without them.
    repro = Toolbox(ws, protected=[".github/**"])
    r = await repro.dispatch(
        "edit", {"path": "tests/test_widget.py", "search": "area", "replace": "double"}
    )
    assert r.ok


async def test_edit_text_missing_not_unique_and_unsafe_paths(ws: Workspace) -> None:
    tools = Toolbox(ws)
    r = await tools.dispatch("edit", {"path": "src/widget.py", "search": "nope", "replace": "x"})
    assert not r.ok and "does not occur" in r.output
    r = await tools.dispatch("edit", {"path": "src/widget.py", "search": "return", "replace": "x"})
    assert not r.ok and "occurs 3 times" in r.output
    for path in ("../outside.py", "/etc/passwd", ".git/config", "src/../../x.py"):
        r = await tools.dispatch("edit", {"path": path, "search": "a", "replace": "b"})
        assert not r.ok and r.output.startswith("edit refused:"), path
        v = await tools.dispatch("view", {"path": path})
        assert not v.ok, path
    assert tools.stats.refusals["not_found"] == 1
    assert tools.stats.refusals["not_unique"] == 1
    assert tools.stats.refusals["unsafe_path"] == 4
    assert await ws.diff() == ""


# --- dispatch, run_tests, finish ------------------------------------------------------------


async def test_dispatch_never_raises_on_bad_input(ws: Workspace) -> None:
    tools = Toolbox(ws, budgets=ToolBudgets(max_calls=9))
    r = await tools.dispatch("view", '{"path": "src/widget.py", "start": ')
    assert not r.ok and "not valid JSON" in r.output
    r = await tools.dispatch("shell", {"cmd": "rm -rf /"})
    assert not r.ok and "unknown tool 'shell'" in r.output
    r = await tools.dispatch("view", {"path": "src/widget.py", "lines": 3})
    assert not r.ok and "lines: Extra inputs are not permitted" in r.output
    r = await tools.dispatch("view", {"path": "src/widget.py", "start": "ten"})
    assert not r.ok and "start:" in r.output
    r = await tools.dispatch("edit", '["src/widget.py"]')
    assert not r.ok and "must be a JSON object" in r.output
    r = await tools.dispatch("view", '{"path": "src/widget.py", "end": 2}')
    assert r.ok and "lines 1-2 of 10" in r.output
    r = await tools.dispatch("run_tests", "")
    assert not r.ok and "not available" in r.output
    r = await tools.dispatch_text("I think we should view the file")
    assert not r.ok and "not a JSON object" in r.output
    r = await tools.dispatch("finish", {"summary": "done"})
    assert r.ok and r.finished
    r = await tools.dispatch("view", {"path": "src/widget.py"})
    assert not r.ok and "budget exhausted" in r.output
    assert tools.stats.calls["view"] == 5 and tools.stats.errors == 8


def run_of(outcomes: dict[str, tuple[str, str]], exit_code: int = 1) -> TestRun:
    return TestRun(
        outcomes={
            t: TestOutcome(t, o, m)  # type: ignore[arg-type]
            for t, (o, m) in outcomes.items()
        },
        exit_code=exit_code,
        duration_s=1.25,
        output="",
    )


async def test_run_tests_summary_and_selection_guard(ws: Workspace) -> None:
    seen: list[list[str]] = []
    outcomes = {f"tests/test_a.py::test_{i}": ("passed", "") for i in range(5)}
    outcomes["tests/test_a.py::test_bad"] = ("failed", "AssertionError: 3 != 4\n" + "x" * 5000)
    outcomes["tests/test_a.py::test_err"] = ("error", "ImportError: nope")

    async def runner(selection: list[str]) -> TestRun:
        seen.append(selection)
        return run_of(outcomes)

    tools = Toolbox(ws, run_tests=runner)
    r = await tools.dispatch("run_tests", {"selection": ["tests/test_a.py"]})
    assert r.ok and seen == [["tests/test_a.py"]]
    assert r.output.startswith("5 passed, 1 failed, 1 error (exit code 1, 1.2s)")
    assert "- tests/test_a.py::test_bad" in r.output and "AssertionError: 3 != 4" in r.output
    assert "[… cut]" in r.output and len(r.output) < 2000

    r = await tools.dispatch("run_tests", {"selection": ["-p", "evil"]})
    assert not r.ok and "not a test id" in r.output and len(seen) == 1

    async def no_junit(selection: list[str]) -> TestRun:
        run = run_of({}, exit_code=4)
        run.junit_found, run.junit_error, run.output = False, "no JUnit XML was written", "boom"
        return run

    r = await Toolbox(ws, run_tests=no_junit).dispatch("run_tests", {"selection": []})
    assert r.ok and "test results unknown (no JUnit XML was written)" in r.output
    assert "boom" in r.output


# --- JSON-mode replies and schemas (pure) ---------------------------------------------------


def test_parse_action_accepts_flat_nested_and_fenced_replies() -> None:
    a = parse_action('{"tool": "view", "path": "a.py", "start": 3}')
    assert (a.tool, a.arguments) == ("view", {"path": "a.py", "start": 3})
    a = parse_action('{"tool": "search", "arguments": {"pattern": "x"}}')
    assert (a.tool, a.arguments) == ("search", {"pattern": "x"})
    a = parse_action('Let me look.\n```json\n{"tool": "finish", "summary": "ok"}\n```')
    assert (a.tool, a.arguments) == ("finish", {"summary": "ok"})
    a = parse_action('thinking {not json} then {"tool": "run_tests", "selection": []}')
    assert a.tool == "run_tests"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "not a JSON object"),
        ('{"tool": "view", "path": ', "not a JSON object"),
        ('["view"]', "not a JSON object"),
        ('{"tool": "bash", "cmd": "ls"}', "unknown tool 'bash'"),
        ('{"path": "a.py"}', "unknown tool None"),
        ('{"tool": "edit", "path": "a.py", "search": "x"}', "replace: Field required"),
        ('{"tool": "view", "path": "a.py", "extra": 1}', "extra: Extra inputs"),
    ],
)
def test_parse_action_rejects_invalid_replies(reply: str, message: str) -> None:
    with pytest.raises(ActionParseError, match=message):
        parse_action(reply)


def test_schemas_cover_all_tools_and_agree_with_validation() -> None:
    names = [t["function"]["name"] for t in tool_schemas()]
    assert names == ["view", "search", "edit", "run_tests", "finish"]
    for tool in tool_schemas():
        jsonschema.Draft202012Validator.check_schema(tool["function"]["parameters"])
    schema = action_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    good: list[dict[str, Any]] = [
        {"tool": "view", "path": "a.py", "start": 1, "end": 9},
        {"tool": "search", "pattern": "def x"},
        {"tool": "edit", "path": "a.py", "search": "a", "replace": ""},
        {"tool": "run_tests", "selection": ["tests/t.py::x"]},
        {"tool": "finish", "summary": "done"},
    ]
    for action in good:
        jsonschema.validate(action, schema)
        assert parse_action(json.dumps(action)).tool == action["tool"]
    bad: list[dict[str, Any]] = [
        {"tool": "view"},
        {"tool": "rm", "path": "x"},
        {"tool": "finish", "summary": 1},
    ]
    for action in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(action, schema)
    assert [b["properties"]["tool"]["const"] for b in action_schema(["view"])["anyOf"]] == ["view"]


def test_protected_path_globs() -> None:
    policy = PathPolicy(PATCH_PROTECTED_PATHS)
    for path in [
        "tests/test_x.py",
        "pkg/tests/helpers.py",
        "src/pkg/test_thing.py",
        "src/pkg/thing_test.py",
        "src/conftest.py",
        ".github/workflows/ci.yml",
        "requirements-dev.txt",
        "pyproject.toml",
        "tox.ini",
        "./setup.cfg",
    ]:
        assert policy.match(path), path
    for path in ["src/widget.py", "src/testing_utils.py", "docs/index.md", "src/latest.py"]:
        assert policy.match(path) is None, path
