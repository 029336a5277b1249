"""Real CI tool output, wrapped as GitHub Actions job logs (for tests/test_cilogs.py and the bench).

The tool output is real and committed: tests/fixtures/cilogs/python/generate.py runs pytest,
ruff, mypy, pip and python on the small projects under tests/fixtures/cilogs/python/src/ and
writes what they printed to tests/fixtures/cilogs/python/golden/ (with the exit codes and tool
versions in golden/index.json). Nothing runs a tool at test time, so upgrading one never
silently changes a parser's input: regenerate and review the diff. What cannot be produced
locally is hand-written in the exact wording of the real thing and marked HAND-WRITTEN: the
runner's own messages (job timeout, cancellation, shutdown, checkout failures), the setup
steps' chatter (checkout, setup-python), pytest-timeout (not installed here) and one flake8
output.

`actions_log` wraps (command, output, exit code) steps the way the Actions log download shows
them: a timestamp on every line, `##[group]Run <cmd>` … `##[endgroup]`, then the output, then
`##[error]Process completed with exit code N.` for a failing step.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support import FIXTURES

DEFAULT_START = datetime(2026, 11, 24, 4, 19, 48, 123456, tzinfo=UTC)

Step = tuple[str, str, int]


# --- the Actions log format ---------------------------------------------------------------------


def timestamp(t: datetime) -> str:
    """`2026-11-24T04:19:48.1234560Z`: seven fractional digits, as in the Actions download."""
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}0Z"


def actions_log(steps: list[Step], *, start: datetime | None = None, job_setup: bool = True) -> str:
    """Wrap steps (command, output, exit code) as an Actions job log, timestamps included.

    A command with several lines is shown like a multi-line `run:` block. A command starting
    with "actions/" is shown like a `uses:` step. Steps after a failing one are still written:
    the caller decides which steps ran.
    """
    t = start or DEFAULT_START
    out: list[str] = []

    def emit(line: str) -> None:
        nonlocal t
        out.append(f"{timestamp(t)} {line}")
        t += timedelta(microseconds=1873)

    if job_setup:  # HAND-WRITTEN: the runner's "Set up job" preamble
        for line in (
            "Current runner version: '2.321.0'",
            "##[group]Operating System",
            "Ubuntu",
            "24.04.1",
            "LTS",
            "##[endgroup]",
            "##[group]Runner Image",
            "Image: ubuntu-24.04",
            "Version: 20261117.1.0",
            "##[endgroup]",
            "##[group]GITHUB_TOKEN Permissions",
            "Contents: read",
            "Metadata: read",
            "##[endgroup]",
            "Secret source: Actions",
            "Prepare workflow directory",
            "Prepare all required actions",
            "Complete job name: test",
        ):
            emit(line)
    for command, output, code in steps:
        first, *rest = command.split("\n")
        emit(f"##[group]Run {first}")
        if first.startswith("actions/"):
            emit("with:")
            for line in rest:
                emit(f"  {line}")
        else:
            for line in (first, *rest):
                emit(line)
            emit("shell: /usr/bin/bash -e {0}")
            emit("env:")
            emit("  pythonLocation: /opt/hostedtoolcache/Python/3.12.7/x64")
        emit("##[endgroup]")
        body = output[:-1] if output.endswith("\n") else output
        if body:
            for line in body.split("\n"):
                emit(line)
        if code:
            emit(f"##[error]Process completed with exit code {code}.")
    emit("Post job cleanup.")
    emit("Cleaning up orphan processes")
    return "\n".join(out) + "\n"


def setup_steps(run: int = 1) -> list[Step]:
    """HAND-WRITTEN checkout / setup-python / install chatter; shas, ids, temp paths and
    durations differ per `run`, like two runs of one workflow."""
    sha = hashlib.sha1(f"run-{run}".encode()).hexdigest()
    tmp = hashlib.md5(f"tmp-{run}".encode()).hexdigest()[:8]
    secs = 1.5 + run * 0.37
    checkout = "\n".join(
        [
            "Syncing repository: octo/calc",
            "##[group]Getting Git version info",
            "Working directory is '/home/runner/work/calc/calc'",
            "[command]/usr/bin/git version",
            "git version 2.47.1",
            "##[endgroup]",
            f"Temporarily overriding HOME='/home/runner/work/_temp/{tmp}-0c1d' before making "
            "global git config changes",
            "[command]/usr/bin/git init /home/runner/work/calc/calc",
            "[command]/usr/bin/git remote add origin https://github.com/octo/calc",
            "##[group]Fetching the repository",
            f"[command]/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --no-recurse"
            f"-submodules --depth=1 origin +{sha}:refs/remotes/origin/main",
            f" * [new ref]         {sha} -> origin/main",
            "##[endgroup]",
            f"HEAD is now at {sha[:7]} Make the calculator faster",
            "[command]/usr/bin/git log -1 --format=%H",
            sha,
        ]
    )
    python = "\n".join(
        [
            "Installed versions",
            "Successfully set up CPython (3.12.7)",
            f"Took {secs:.2f}s to resolve the toolcache",
        ]
    )
    install = "\n".join(
        [
            "Requirement already satisfied: pip in /opt/hostedtoolcache/Python/3.12.7/x64/lib/"
            "python3.12/site-packages (24.3.1)",
            "Obtaining file:///home/runner/work/calc/calc",
            "  Installing build dependencies: started",
            "  Installing build dependencies: finished with status 'done'",
            f"  Created wheel for calc: filename=calc-0.1.0-0.editable-py3-none-any.whl size=2741"
            f" sha256={hashlib.sha256(sha.encode()).hexdigest()}",
            f"  Stored in directory: /tmp/pip-ephem-wheel-cache-{tmp}/wheels/3f/9a",
            "Successfully installed calc-0.1.0 iniconfig-2.0.0 pluggy-1.5.0 pytest-8.3.4",
        ]
    )
    return [
        ("actions/checkout@v4\nfetch-depth: 1", checkout, 0),
        ("actions/setup-python@v5\npython-version: 3.12", python, 0),
        ("python -m pip install -e . pytest", install, 0),
    ]


# --- the committed tool output -----------------------------------------------------------------

PYTHON_CORPUS = FIXTURES / "cilogs" / "python"
SRC = PYTHON_CORPUS / "src"
GENERATE = "tests/fixtures/cilogs/python/generate.py"


@functools.cache
def golden_index() -> dict[str, Any]:
    """tests/fixtures/cilogs/python/golden/index.json: run key -> {"out", "exit", "argv"}."""
    data: dict[str, Any] = json.loads((PYTHON_CORPUS / "golden" / "index.json").read_text())
    return data


@functools.cache
def golden(project: str, tool: str, *args: str, color: bool = False) -> tuple[str, int]:
    """The committed output of `tool args…` run on `project` by generate.py: (output, exit code).

    The key is "<project> <tool> <args…>" (+ " [color]" for FORCE_COLOR / MYPY_FORCE_COLOR).
    A run that is not in the index was never captured: add it to generate.py's GOLDEN_RUNS.
    """
    key = " ".join((project, tool, *args)) + (" [color]" if color else "")
    entry = golden_index().get(key)
    if entry is None:
        raise KeyError(f"no captured output for {key!r}: add it to {GENERATE} and run it")
    text = (PYTHON_CORPUS / entry["out"]).read_text(encoding="utf-8")
    return text, int(entry["exit"])


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing needle (expected values are found, not typed)."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return n
    raise ValueError(f"{needle!r} not in {path}")


# --- the pytest project (src/calc: three planted bugs; src/calc-fixed: the fixed core.py) ------


def pytest_project(fixed: bool = False) -> Path:
    """The calc project's sources (`fixed`: the layer generate.py copies over them)."""
    return SRC / ("calc-fixed" if fixed else "calc")


def pytest_output(*args: str, fixed: bool = False, collect: bool = False) -> tuple[str, int]:
    """Real pytest output on the calc project (`collect`: plus a test module whose import
    fails): (output, exit code)."""
    project = "calc-collect" if collect else "calc-fixed" if fixed else "calc"
    return golden(project, "pytest", *args)


def pytest_long_ids_output(*args: str) -> tuple[str, int]:
    """Real pytest output for ids holding " - " and wider than the terminal."""
    return golden("long_ids", "pytest", *args)


def pytest_expected() -> dict[str, tuple[str, int]]:
    """The failing tests of the buggy project: test id -> (path, line) of the failing frame."""
    root = pytest_project()
    test = root / "tests" / "test_calc.py"
    core = root / "calc" / "core.py"
    return {
        "tests/test_calc.py::test_add[2-3]": (
            "tests/test_calc.py",
            line_of(test, "assert add(a, b)"),
        ),
        "tests/test_calc.py::test_div_by_zero_is_zero": ("calc/core.py", line_of(core, "a / b")),
        "tests/test_calc.py::TestHalf::test_odd": (
            "tests/test_calc.py",
            line_of(test, "half(3)"),
        ),
    }


def _pytest_log(args: tuple[str, ...], *, run: int, fixed: bool = False, **kw: bool) -> str:
    out, code = pytest_output(*args, fixed=fixed, **kw)
    command = " ".join(("python -m pytest", *args))
    return actions_log(
        [*setup_steps(run), (command, out, code)],
        start=DEFAULT_START + timedelta(days=run),
    )


def pytest_failing_log(*, color: bool = False) -> str:
    """`python -m pytest -v` on the buggy project (optionally --color=yes), after setup steps."""
    return _pytest_log(("-v", "--color=yes") if color else ("-v",), run=1)


def pytest_passing_log() -> str:
    """The same workflow on the fixed project: a passing run to compare with."""
    return _pytest_log(("-v",), run=2, fixed=True)


def pytest_default_log() -> str:
    return _pytest_log((), run=1)


def pytest_no_summary_log() -> str:
    """`-q -rN`: no short test summary, only the failure sections."""
    return _pytest_log(("-q", "-rN"), run=1)


def pytest_collection_log() -> str:
    return _pytest_log((), run=1, collect=True)


# --- ruff (src/lint) ----------------------------------------------------------------------------


def lint_project() -> Path:
    return SRC / "lint"


def lint_expected() -> dict[str, str]:
    """path:line -> rule code of the ruff diagnostics the lint project has."""
    root = lint_project()
    core, more = root / "calc" / "core.py", root / "calc" / "more.py"
    return {
        f"calc/core.py:{line_of(core, 'import os')}": "F401",
        f"calc/more.py:{line_of(more, 'unused = 1')}": "F841",
        f"calc/more.py:{line_of(more, 'x == None')}": "E711",
    }


def ruff_output(*args: str, color: bool = False) -> tuple[str, int]:
    """Real `ruff <args> --no-cache` output on the lint project (`color`: FORCE_COLOR=1)."""
    return golden("lint", "ruff", *args, color=color)


def ruff_log(fmt: str = "full", *, color: bool = False) -> str:
    """`ruff check .` in the full (default) or concise format, optionally FORCE_COLOR=1."""
    args = ("check", "calc") if fmt == "full" else ("check", f"--output-format={fmt}", "calc")
    out, code = ruff_output(*args, color=color)
    return actions_log([*setup_steps(3), ("ruff " + " ".join(args), out, code)])


def ruff_format_log() -> str:
    out, code = ruff_output("format", "--check", "calc")
    return actions_log([*setup_steps(3), ("ruff format --check calc", out, code)])


# HAND-WRITTEN in flake8's default format (its E501 is not a line of the lint project; the real
# flake8 output on it is the python/flake8 corpus case).
FLAKE8_OUTPUT = """calc/core.py:1:1: F401 'os' imported but unused
calc/more.py:6:10: E711 comparison to None should be 'if cond is None:'
calc/ugly.py:1:101: E501 line too long (104 > 100 characters)
"""


def flake8_log() -> str:
    return actions_log([*setup_steps(3), ("flake8 calc", FLAKE8_OUTPUT, 1)])


# --- mypy (src/types) ---------------------------------------------------------------------------


def types_project() -> Path:
    return SRC / "types"


def types_expected() -> dict[str, str]:
    typed = types_project() / "calc" / "typed.py"
    call = line_of(typed, 'f("s")')
    return {
        f"calc/typed.py:{call}": "arg-type",
        f"calc/typed.py:{line_of(typed, 'y: str')}": "assignment",
    }


def mypy_output(*args: str, color: bool = False) -> tuple[str, int]:
    """Real `mypy --no-incremental <args>` output on the types project."""
    return golden("types", "mypy", *args, color=color)


def mypy_log(*, color: bool = False, pretty: bool = False) -> str:
    args = ("--pretty", "calc") if pretty else ("calc",)
    out, code = mypy_output(*args, color=color)
    return actions_log([*setup_steps(4), ("mypy " + " ".join(args), out, code)])


# --- pip and imports ----------------------------------------------------------------------------


def pip_output(*requirements: str) -> tuple[str, int]:
    """Real `pip install --dry-run --no-index --find-links <local wheels>` (no network): alpha
    needs beta==1.0, gamma beta==2.0; calc-plugins does not exist."""
    return golden("smoke", "pip", *requirements)


def pip_missing_log() -> str:
    out, code = pip_output("calc-plugins==9.9")
    return actions_log(
        [*setup_steps(5)[:2], ("python -m pip install calc-plugins==9.9", out, code)]
    )


def pip_conflict_log() -> str:
    out, code = pip_output("alpha", "gamma")
    return actions_log([*setup_steps(5)[:2], ("python -m pip install alpha gamma", out, code)])


def import_error_output() -> tuple[str, int]:
    """Real `python scripts/smoke.py` whose first line imports a module that is not installed."""
    return golden("smoke", "python", "scripts/smoke.py")


def import_error_log() -> str:
    out, code = import_error_output()
    return actions_log([*setup_steps(6), ("python scripts/smoke.py", out, code)])


# --- timeouts and infrastructure (HAND-WRITTEN: the runner's wording) -----------------------------


def job_timeout_log() -> str:
    out, _ = pytest_output("-v", fixed=True)
    half = "\n".join(out.split("\n")[:20])  # the job was stopped mid-run
    log = actions_log([*setup_steps(7), ("python -m pytest -v", half, 0)])
    lines = log.rstrip("\n").split("\n")
    stamp = timestamp(DEFAULT_START + timedelta(hours=6))
    lines[-2:-2] = [
        f"{stamp} ##[error]The job running on runner GitHub Actions 12 has exceeded the maximum "
        "execution time of 360 minutes.",
        f"{stamp} ##[error]The operation was canceled.",
    ]
    return "\n".join(lines) + "\n"


# pytest-timeout is not installed here: HAND-WRITTEN in its output format (thread method).
PYTEST_TIMEOUT_OUTPUT = """\
============================= test session starts ==============================
platform linux -- Python 3.12.7, pytest-8.3.4, pluggy-1.5.0
rootdir: /home/runner/work/calc/calc
plugins: timeout-2.3.1
timeout: 60.0s
timeout method: thread
timeout func_only: False
collected 12 items

tests/test_net.py::test_fetch_all
+++++++++++++++++++++++++++++++++++ Timeout ++++++++++++++++++++++++++++++++++++
~~~~~~~~~~~~~~~~~~~~~~ Stack of MainThread (140035720734528) ~~~~~~~~~~~~~~~~~~~~~~
  File "/home/runner/work/calc/calc/tests/test_net.py", line 14, in test_fetch_all
    results = fetch_all(URLS)
  File "/home/runner/work/calc/calc/calc/net.py", line 31, in fetch_all
    time.sleep(backoff)
+++++++++++++++++++++++++++++++++++ Timeout ++++++++++++++++++++++++++++++++++++
"""


def pytest_timeout_log() -> str:
    return actions_log([*setup_steps(8), ("python -m pytest -v", PYTEST_TIMEOUT_OUTPUT, 1)])


def runner_shutdown_log() -> str:
    out, _ = pytest_output("-v", fixed=True)
    log = actions_log([*setup_steps(9), ("python -m pytest -v", out, 0)])
    lines = log.rstrip("\n").split("\n")
    stamp = timestamp(DEFAULT_START + timedelta(minutes=20))
    lines[-2:] = [
        f"{stamp} ##[error]The runner has received a shutdown signal. This can happen when the "
        "runner service is stopped, or a manually started runner is canceled.",
        f"{stamp} ##[error]The operation was canceled.",
    ]
    return "\n".join(lines) + "\n"


CHECKOUT_FAILURE = """Syncing repository: octo/calc
[command]/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules \
--depth=1 origin +refs/heads/main*:refs/remotes/origin/main*
fatal: unable to access 'https://github.com/octo/calc/': Could not resolve host: github.com
The process '/usr/bin/git' failed with exit code 128
Waiting 13 seconds before trying again
fatal: unable to access 'https://github.com/octo/calc/': Could not resolve host: github.com
##[error]The process '/usr/bin/git' failed with exit code 128"""


def checkout_failure_log() -> str:
    return actions_log([("actions/checkout@v4\nfetch-depth: 1", CHECKOUT_FAILURE, 0)])


def bare_exit_log() -> str:
    """A step that fails without printing anything a parser knows."""
    return actions_log(
        [*setup_steps(10), ("./scripts/release.sh", "Building release…\nchecking tag v1.2", 1)]
    )


# --- the catalogue (bench and tests) ------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """One failure a log holds: `key` is a test id, "path:line", or a message fragment."""

    kind: str
    key: str


@dataclass(frozen=True)
class FixtureLog:
    name: str
    text: str
    category: str
    expected: tuple[Expect, ...]


def matches(failure: object, expect: Expect) -> bool:
    """Whether a parsed failure (bot.cilogs.Failure) is the expected one."""
    kind = getattr(failure, "kind", None)
    test_id = getattr(failure, "test_id", None)
    path = getattr(failure, "path", None)
    line = getattr(failure, "line", None)
    message = getattr(failure, "message", "") or ""
    if kind != expect.kind:
        return False
    if test_id is not None and test_id == expect.key:
        return True
    if path is not None and f"{path}:{line}" == expect.key:
        return True
    return expect.key in message


def fixture_logs() -> list[FixtureLog]:
    """Every failing fixture log with what a perfect parser finds in it."""
    tests = tuple(Expect("test", tid) for tid in pytest_expected())
    lint = tuple(Expect("lint", loc) for loc in lint_expected())
    types = tuple(Expect("types", loc) for loc in types_expected())
    return [
        FixtureLog("pytest -v", pytest_failing_log(), "test", tests),
        FixtureLog("pytest -v --color=yes", pytest_failing_log(color=True), "test", tests),
        FixtureLog("pytest -q -rN (no summary)", pytest_no_summary_log(), "test", tests),
        FixtureLog(
            "pytest collection error",
            pytest_collection_log(),
            "test",
            (Expect("test", "tests/test_imports.py"),),
        ),
        FixtureLog("ruff check (full)", ruff_log(), "lint", lint),
        FixtureLog("ruff check (concise)", ruff_log("concise"), "lint", lint),
        FixtureLog("ruff check (FORCE_COLOR)", ruff_log(color=True), "lint", lint),
        FixtureLog(
            "ruff format --check", ruff_format_log(), "lint", (Expect("lint", "calc/ugly.py:1"),)
        ),
        FixtureLog("mypy", mypy_log(), "types", types),
        FixtureLog("mypy (colour)", mypy_log(color=True), "types", types),
        FixtureLog(
            "pip: no matching version",
            pip_missing_log(),
            "dependency",
            (Expect("dependency", "calc-plugins==9.9"),),
        ),
        FixtureLog(
            "pip: ResolutionImpossible",
            pip_conflict_log(),
            "dependency",
            (Expect("dependency", "conflicting dependencies"),),
        ),
        FixtureLog(
            "ModuleNotFoundError",
            import_error_log(),
            "dependency",
            (Expect("dependency", "calc_plugins_missing"),),
        ),
        FixtureLog(
            "job timeout",
            job_timeout_log(),
            "infrastructure",
            (Expect("infrastructure", "maximum execution time"),),
        ),
        FixtureLog(
            "pytest-timeout",
            pytest_timeout_log(),
            "infrastructure",
            (Expect("infrastructure", "tests/test_net.py::test_fetch_all"),),
        ),
        FixtureLog(
            "runner shutdown",
            runner_shutdown_log(),
            "infrastructure",
            (Expect("infrastructure", "shutdown signal"),),
        ),
        FixtureLog(
            "checkout: DNS",
            checkout_failure_log(),
            "infrastructure",
            (
                Expect("infrastructure", "Could not resolve host"),
                Expect("infrastructure", "'/usr/bin/git' failed with exit code 128"),
            ),
        ),
    ]
