"""Real CI tool output, wrapped as GitHub Actions job logs (for tests/test_cilogs.py and the bench).

The tool output is real: small fixture projects are written to a temporary directory and pytest,
ruff, mypy, pip and python from this virtualenv run on them in subprocesses. What cannot be
produced locally is hand-written in the exact wording of the real thing and marked HAND-WRITTEN:
the runner's own messages (job timeout, cancellation, shutdown, checkout failures), the setup
steps' chatter (checkout, setup-python), pytest-timeout (not installed here) and flake8 (not
installed here).

`actions_log` wraps (command, output, exit code) steps the way the Actions log download shows
them: a timestamp on every line, `##[group]Run <cmd>` … `##[endgroup]`, then the output, then
`##[error]Process completed with exit code N.` for a failing step. Everything expensive is cached
per process (functools.cache); the temporary directory is removed at exit.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEFAULT_START = datetime(2026, 11, 24, 4, 19, 48, 123456, tzinfo=UTC)
PYTEST_FLAGS = ("-p", "no:cacheprovider", "-p", "no:asyncio")

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


# --- running real tools -------------------------------------------------------------------------

_ENV_DROP = (
    # pytest prints the short summary untruncated when it sees a CI (CI, BUILD_NUMBER): the
    # captured output must not depend on where the tests run.
    "CI",
    "BUILD_NUMBER",
    "FORCE_COLOR",
    "NO_COLOR",
    "PY_COLORS",
    "MYPY_FORCE_COLOR",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "RUFF_OUTPUT_FORMAT",
    "PIP_FIND_LINKS",
    "PYTHONPATH",
)


def run_tool(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[str, int]:
    """Run a tool, stdout and stderr interleaved as in a CI log; return (output, exit code).

    The environment is this one minus colour/config overrides, with COLUMNS=80 (the width a
    tool sees on a runner, where output is not a terminal) plus `env`.
    """
    full = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    full.update(
        {
            "COLUMNS": "80",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    full.update(env or {})
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    return proc.stdout.decode("utf-8", "replace"), proc.returncode


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="cilog-fixtures-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing needle (expected values are found, not typed)."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return n
    raise ValueError(f"{needle!r} not in {path}")


# --- the pytest project -------------------------------------------------------------------------

CORE_BUGGY = '''"""A tiny calculator with three planted bugs."""


def add(a: int, b: int) -> int:
    if a == 2:
        return a + b + 1  # planted bug
    return a + b


def div(a: float, b: float) -> float:
    return a / b


def half(x: int) -> float:
    return x // 2  # planted bug
'''

CORE_FIXED = '''"""A tiny calculator."""


def add(a: int, b: int) -> int:
    return a + b


def div(a: float, b: float) -> float:
    if b == 0:
        return 0.0
    return a / b


def half(x: int) -> float:
    return x / 2
'''

TEST_CALC = """import pytest

from calc.core import add, div, half


@pytest.mark.parametrize("a,b", [(1, 1), (2, 3), (5, 8)])
def test_add(a, b):
    assert add(a, b) == a + b


def test_div_by_zero_is_zero():
    assert div(1, 0) == 0


def test_div():
    assert div(6, 3) == 2


class TestHalf:
    def test_even(self):
        assert half(4) == 2

    def test_odd(self):
        assert half(3) == 1.5
"""

TEST_MANY = """import pytest


@pytest.mark.parametrize("n", range(60))
def test_square_is_positive(n):
    assert n * n >= 0
"""

TEST_IMPORTS = """import yaml_but_not_installed


def test_config():
    assert yaml_but_not_installed
"""


def _pytest_project(name: str, core: str, extra: dict[str, str] | None = None) -> Path:
    root = workdir() / name
    if not root.exists():
        _write(
            root,
            {
                "calc/__init__.py": "",
                "calc/core.py": core,
                "tests/__init__.py": "",
                "tests/test_calc.py": TEST_CALC,
                "tests/test_many.py": TEST_MANY,
                **(extra or {}),
            },
        )
    return root


@functools.cache
def pytest_project(fixed: bool = False) -> Path:
    return _pytest_project("calc_fixed" if fixed else "calc", CORE_FIXED if fixed else CORE_BUGGY)


@functools.cache
def pytest_output(*args: str, fixed: bool = False, collect: bool = False) -> tuple[str, int]:
    """Real pytest output on the calc project: (output, exit code)."""
    if collect:
        root = _pytest_project("calc_collect", CORE_BUGGY, {"tests/test_imports.py": TEST_IMPORTS})
    else:
        root = pytest_project(fixed)
    return run_tool([sys.executable, "-m", "pytest", *PYTEST_FLAGS, *args], root)


TEST_LONG = """import pytest

LONG = "a parameter value long enough to push the node id past the terminal width"


@pytest.mark.parametrize("text", ["a - b", LONG])
def test_parameters_with_dashes_and_long_values(text):
    assert text == "expected"
"""


@functools.cache
def pytest_long_ids_output(*args: str) -> tuple[str, int]:
    """Real pytest output for ids holding " - " and wider than the terminal."""
    root = _write(
        workdir() / "long_ids", {"tests/__init__.py": "", "tests/test_long.py": TEST_LONG}
    )
    return run_tool([sys.executable, "-m", "pytest", *PYTEST_FLAGS, *args], root)


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


# --- ruff ---------------------------------------------------------------------------------------

LINT_FILES = {
    "ruff.toml": 'line-length = 88\n[lint]\nselect = ["E", "F", "I"]\n',
    "calc/__init__.py": "",
    "calc/core.py": "import os\n\n\ndef add(a: int, b: int) -> int:\n    return a + b\n",
    "calc/more.py": (
        "import sys\n\n\ndef check(x):\n    unused = 1\n    if x == None:\n"
        "        return sys.maxsize\n    return x\n"
    ),
    "calc/ugly.py": "x = {  'a':1 }\ndef f( y ):\n    return y\n",
}


@functools.cache
def lint_project() -> Path:
    return _write(workdir() / "lint", LINT_FILES)


def lint_expected() -> dict[str, str]:
    """path:line -> rule code of the ruff diagnostics the lint project has."""
    root = lint_project()
    core, more = root / "calc" / "core.py", root / "calc" / "more.py"
    return {
        f"calc/core.py:{line_of(core, 'import os')}": "F401",
        f"calc/more.py:{line_of(more, 'unused = 1')}": "F841",
        f"calc/more.py:{line_of(more, 'x == None')}": "E711",
    }


@functools.cache
def ruff_output(*args: str, color: bool = False) -> tuple[str, int]:
    env = {"FORCE_COLOR": "1"} if color else None
    return run_tool([sys.executable, "-m", "ruff", *args, "--no-cache"], lint_project(), env)


def ruff_log(fmt: str = "full", *, color: bool = False) -> str:
    """`ruff check .` in the full (default) or concise format, optionally FORCE_COLOR=1."""
    args = ("check", "calc") if fmt == "full" else ("check", f"--output-format={fmt}", "calc")
    out, code = ruff_output(*args, color=color)
    return actions_log([*setup_steps(3), ("ruff " + " ".join(args), out, code)])


def ruff_format_log() -> str:
    out, code = ruff_output("format", "--check", "calc")
    return actions_log([*setup_steps(3), ("ruff format --check calc", out, code)])


# flake8 is not installed in this virtualenv: HAND-WRITTEN in flake8's default format.
FLAKE8_OUTPUT = """calc/core.py:1:1: F401 'os' imported but unused
calc/more.py:6:10: E711 comparison to None should be 'if cond is None:'
calc/ugly.py:1:101: E501 line too long (104 > 100 characters)
"""


def flake8_log() -> str:
    return actions_log([*setup_steps(3), ("flake8 calc", FLAKE8_OUTPUT, 1)])


# --- mypy ---------------------------------------------------------------------------------------

TYPED = """def f(x: int) -> int:
    return x


def g() -> None:
    f("s")
    reveal_type(f)
    y: str = f(1)
    print(y)
"""


@functools.cache
def types_project() -> Path:
    return _write(workdir() / "types", {"calc/__init__.py": "", "calc/typed.py": TYPED})


def types_expected() -> dict[str, str]:
    typed = types_project() / "calc" / "typed.py"
    call = line_of(typed, 'f("s")')
    return {
        f"calc/typed.py:{call}": "arg-type",
        f"calc/typed.py:{line_of(typed, 'y: str')}": "assignment",
    }


@functools.cache
def mypy_output(*args: str, color: bool = False) -> tuple[str, int]:
    env = {"MYPY_FORCE_COLOR": "1"} if color else None
    cmd = [sys.executable, "-m", "mypy", "--no-incremental", f"--cache-dir={os.devnull}", *args]
    return run_tool(cmd, types_project(), env)


def mypy_log(*, color: bool = False, pretty: bool = False) -> str:
    args = ("--pretty", "calc") if pretty else ("calc",)
    out, code = mypy_output(*args, color=color)
    return actions_log([*setup_steps(4), ("mypy " + " ".join(args), out, code)])


# --- pip and imports ----------------------------------------------------------------------------


def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A minimal valid wheel (pip reads its METADATA while resolving; nothing is installed)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: cilog-fixtures\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)


@functools.cache
def wheelhouse() -> Path:
    folder = workdir() / "wheels"
    folder.mkdir(exist_ok=True)
    _wheel(folder, "alpha", "1.0", ("beta==1.0",))
    _wheel(folder, "gamma", "1.0", ("beta==2.0",))
    _wheel(folder, "beta", "1.0")
    _wheel(folder, "beta", "2.0")
    return folder


@functools.cache
def pip_output(*requirements: str) -> tuple[str, int]:
    """Real pip resolving against a local wheel folder only (--no-index: no network)."""
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links"]
    return run_tool([*cmd, str(wheelhouse()), *requirements], workdir())


def pip_missing_log() -> str:
    out, code = pip_output("calc-plugins==9.9")
    return actions_log(
        [*setup_steps(5)[:2], ("python -m pip install calc-plugins==9.9", out, code)]
    )


def pip_conflict_log() -> str:
    out, code = pip_output("alpha", "gamma")
    return actions_log([*setup_steps(5)[:2], ("python -m pip install alpha gamma", out, code)])


@functools.cache
def import_error_output() -> tuple[str, int]:
    root = _write(
        workdir() / "smoke", {"scripts/smoke.py": "import calc_plugins_missing\n\nprint('ok')\n"}
    )
    return run_tool([sys.executable, "scripts/smoke.py"], root)


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
