"""Which command reproduces a failed CI job: pure decisions of loops.ci_repair, and the per-test
comparison of loops.deps."""

from __future__ import annotations

from bot.testresults import TestOutcome, TestRun
from loops.ci_repair import commands_from_workflow, plain_tool_command
from loops.deps import broken_tests, outcome_table
from tests.support.cirepo import WORKFLOW


def test_plain_tool_commands_only() -> None:
    assert plain_tool_command("python -m pytest -q") == ["python", "-m", "pytest", "-q"]
    assert plain_tool_command("ruff check .") == ["ruff", "check", "."]
    assert plain_tool_command("python3.12 -m mypy src") == ["python3.12", "-m", "mypy", "src"]
    assert plain_tool_command("flake8 --max-line-length 100") is not None
    for line in (
        "pytest -q | tee out.txt",  # a pipe
        "pytest $ARGS",  # a variable
        "make test",  # not a known tool
        "curl https://example.com/x.sh",
        "pytest; rm -rf /",
        "python -c 'import os'",
        "",
        "pytest 'unterminated",
    ):
        assert plain_tool_command(line) is None, line


def test_command_from_the_failed_step_of_the_workflow() -> None:
    assert commands_from_workflow(WORKFLOW, "test", ["Run tests"]) == (
        [["python", "-m", "pytest", "-q"]],
        "",
    )
    # An unnamed step is shown as "Run <first line>".
    assert commands_from_workflow(WORKFLOW, "lint", ["Run ruff check ."])[0] == [
        ["ruff", "check", "."]
    ]
    # A matrix job is reported as "name (values)".
    matrix = WORKFLOW.replace("  test:\n", "  test:\n    name: tests\n")
    assert commands_from_workflow(matrix, "tests (3.12)", ["Run tests"])[0] is not None


def test_no_command_when_the_step_is_not_a_plain_tool_call() -> None:
    scripted = WORKFLOW.replace(
        "run: python -m pytest -q", "run: |\n          make deps\n          pytest"
    )
    cmds, why = commands_from_workflow(scripted, "test", ["Run tests"])
    assert cmds is None and "make deps" in why
    cmds, why = commands_from_workflow(WORKFLOW, "deploy", ["Run tests"])
    assert cmds is None and "no job `deploy`" in why
    cmds, why = commands_from_workflow(WORKFLOW, "test", ["Upload coverage"])
    assert cmds is None and "matches the failed step" in why
    assert commands_from_workflow("jobs: [", "test", [])[0] is None


def run(**outcomes: str) -> TestRun:
    return TestRun(
        outcomes={
            k: TestOutcome(k, v, "boom" if v == "failed" else "") for k, v in outcomes.items()
        },
        exit_code=0,
        duration_s=0.1,
        output="",
        junit_found=True,
    )


def test_broken_tests_are_the_ones_that_passed_on_base() -> None:
    base = run(a="passed", b="passed", c="failed", d="passed")
    head = run(a="passed", b="failed", c="failed")  # d is gone, c was already failing
    assert broken_tests(base, head) == ["b", "d"]
    table = outcome_table(base, head)
    assert "| `b` | passed | failed | boom |" in table and "| `d` | passed | missing |" in table
    assert "(2 tests with the same outcome on both)" in table
