"""Test results as data: run the suite in the sandbox, parse JUnit XML, compare runs per test.

The JUnit file is written by code from the repository under test, so it is untrusted: it is size
capped, refused when it carries a DOCTYPE (pytest never writes one; entity tricks need one), and
parsed with the stdlib parser, which does not fetch external entities.
"""

from __future__ import annotations

import asyncio
import configparser
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from bot.sandbox import (
    DEFAULT_OUTPUT_CAP,
    Bind,
    EnvInfo,
    Limits,
    SandboxMode,
    repo_slug,
    resolve_user,
    run_sandboxed,
    sandbox_path,
)

Outcome = Literal["passed", "failed", "error", "skipped"]
FAILING: frozenset[str] = frozenset({"failed", "error"})
#: Worst first: when one test id appears twice (e.g. a call failure plus a teardown error),
#: the worse outcome wins.
_SEVERITY: dict[str, int] = {"error": 3, "failed": 2, "skipped": 1, "passed": 0}

MAX_JUNIT_BYTES = 32 * 1024 * 1024
MAX_MESSAGE_CHARS = 4000
MAX_OUTPUT_CHARS = 3000
DEFAULT_TEST_COMMAND = ("python", "-m", "pytest")
#: Where the JUnit file's directory appears inside the jail (wrapper commands only).
SANDBOX_RESULTS_DIR = "/loopwright-results"
#: loopwright's own pytest reporter (`-p loopwright_report`), mounted read-only in the jail.
REPORT_PLUGIN = "loopwright_report"
REPORT_PLUGIN_DIR = Path(__file__).resolve().parent / "pytest_report"
SANDBOX_PLUGIN_DIR = "/opt/loopwright-report"
#: Names the plugin's descriptor; the plugin removes it before the project's code runs.
REPORT_ENV = "LWR_REPORT_CHANNEL"
REPORT_NONCE_BYTES = 32
#: Bumped whenever outcomes are gathered differently, so cached baselines are not mixed in.
BASELINE_FORMAT = 2


class JUnitError(ValueError):
    """The JUnit XML is missing, too large, or not acceptable."""


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest test class

    test_id: str
    outcome: Outcome
    message: str = ""
    duration_s: float = 0.0
    #: What a failing test printed or logged (its captured output, the tail): a server-side
    #: exception logged during the test shows up here, not in the assertion's message.
    output: str = ""


@dataclass
class TestRun:
    __test__ = False

    outcomes: dict[str, TestOutcome]
    exit_code: int
    duration_s: float
    output: str
    timed_out: bool = False
    #: False when the run produced no (usable) JUnit file: outcomes are then unknown, not empty.
    junit_found: bool = True
    junit_error: str = ""
    command: list[str] = field(default_factory=list)
    #: How the outcomes came back: "plugin" (loopwright's own channel) or "junit" (a wrapper
    #: command's JUnit file, which the code under test could find).
    report_channel: str = "plugin"

    def void(self, reason: str) -> None:
        """The run's results cannot be trusted (the tree was tampered with, the report was
        forged): no outcomes, and why."""
        self.outcomes = {}
        self.junit_found = False
        self.junit_error = reason

    @property
    def failing(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o.outcome in FAILING}

    @property
    def passing(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o.outcome == "passed"}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = [asdict(o) for o in self.outcomes.values()]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRun:
        outcomes = {o["test_id"]: TestOutcome(**o) for o in data.get("outcomes", [])}
        return cls(
            outcomes=outcomes,
            exit_code=int(data["exit_code"]),
            duration_s=float(data["duration_s"]),
            output=str(data.get("output", "")),
            timed_out=bool(data.get("timed_out", False)),
            junit_found=bool(data.get("junit_found", True)),
            junit_error=str(data.get("junit_error", "")),
            command=list(data.get("command", [])),
            report_channel=str(data.get("report_channel", "junit")),
        )


# --- parsing -----------------------------------------------------------------------------


def parse_junit_xml(data: bytes) -> dict[str, TestOutcome]:
    """Per-test outcomes from a JUnit XML document (pytest's, xunit1 or xunit2 family)."""
    if len(data) > MAX_JUNIT_BYTES:
        raise JUnitError(f"JUnit XML is {len(data)} bytes, over the {MAX_JUNIT_BYTES} cap")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise JUnitError("JUnit XML with a DOCTYPE or ENTITY declaration is refused")
    try:
        root = ET.fromstring(data)  # noqa: S314 - capped, no DOCTYPE; expat fetches nothing
    except ET.ParseError as exc:
        raise JUnitError(f"JUnit XML does not parse: {exc}") from None
    outcomes: dict[str, TestOutcome] = {}
    for case in root.iter("testcase"):
        parsed = _parse_case(case)
        known = outcomes.get(parsed.test_id)
        if known is None or _SEVERITY[parsed.outcome] > _SEVERITY[known.outcome]:
            outcomes[parsed.test_id] = parsed
    return outcomes


def _parse_case(case: ET.Element) -> TestOutcome:
    outcome: Outcome = "passed"
    message = ""
    captured: list[str] = []
    for child in case:
        if child.tag in ("system-out", "system-err"):
            captured.append((child.text or "").strip())
        kind = child.tag
        if kind in ("failure", "error", "skipped"):
            candidate = cast(Outcome, "failed" if kind == "failure" else kind)
            if _SEVERITY[candidate] >= _SEVERITY[outcome]:
                outcome = candidate
                text = child.get("message") or ""
                body = (child.text or "").strip()
                message = f"{text}\n{body}".strip() if body and body != text else text
    try:
        duration = float(case.get("time") or 0.0)
    except ValueError:
        duration = 0.0
    output = "\n".join(c for c in captured if c)[-MAX_OUTPUT_CHARS:]
    return TestOutcome(_test_id(case), outcome, clip_message(message), duration, output)


def clip_message(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The head (what failed) and the tail (where it was raised: the innermost frame and the
    exception line) of a long failure message."""
    if len(message) <= limit:
        return message
    head = limit // 4
    return f"{message[:head]}\n[…]\n{message[-(limit - head - 5) :]}"


def _test_id(case: ET.Element) -> str:
    """A pytest node id when the file is known (xunit1), else `classname::name`."""
    name = case.get("name") or "?"
    classname = case.get("classname") or ""
    file = case.get("file") or ""
    if file.endswith(".py"):
        module = file[:-3].replace("/", ".")
        if classname == module or classname.startswith(module + "."):
            rest = [p for p in classname[len(module) :].split(".") if p]
            return "::".join([file, *rest, name])
    return f"{classname}::{name}" if classname else name


# --- running -----------------------------------------------------------------------------


def uses_pytest(workdir: Path) -> bool:
    if (workdir / "pytest.ini").is_file() or (workdir / "conftest.py").is_file():
        return True
    pyproject = workdir / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        if "pytest" in data.get("tool", {}):
            return True
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        path = workdir / name
        if path.is_file():
            parser = configparser.ConfigParser()
            try:
                parser.read_string(path.read_text(encoding="utf-8"))
            except (configparser.Error, UnicodeDecodeError):
                continue
            if parser.has_section(section):
                return True
    # pytest also runs unittest-style suites, so a conventional tests directory is enough.
    return any(
        (workdir / d).is_dir() and any((workdir / d).rglob("test_*.py")) for d in ("tests", "test")
    )


def default_test_command(workdir: Path) -> list[str] | None:
    """`python -m pytest` when the repository uses pytest, else None (configure `test`)."""
    return list(DEFAULT_TEST_COMMAND) if uses_pytest(workdir) else None


def _as_argv(cmd: str | Sequence[str]) -> list[str]:
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


async def run_tests(
    workdir: Path,
    *,
    test_cmd: str | Sequence[str] | None = None,
    env: EnvInfo | None = None,
    timeout: float = 1800.0,  # noqa: ASYNC109 - the sandbox's wall clock
    limits: Limits | None = None,
    mode: SandboxMode = "bwrap",
    run_as: str | int | None = None,
    bwrap_path: str | os.PathLike[str] | None = None,
    output_cap: int = DEFAULT_OUTPUT_CAP,
) -> TestRun:
    """Run the suite once, without network, and return per-test outcomes.

    A command that runs pytest itself reports through loopwright's own plugin over a socket
    the code under test cannot find or forge (`bot/pytest_report`, `read_report`): no JUnit
    file exists to be rewritten. A wrapper (`make test`, `tox`) may not pass descriptors or
    PYTHONPATH on, so it reports through JUnit, whose path goes in through PYTEST_ADDOPTS;
    that channel is weaker (the path is visible to the code), which `report_channel` says.
    """
    cmd = _as_argv(test_cmd) if test_cmd is not None else default_test_command(workdir)
    if not cmd:
        raise ValueError("no test command configured and the repository does not use pytest")
    at = pytest_position(cmd)
    results_dir = Path(tempfile.mkdtemp(prefix="loopwright-junit-"))
    ours: socket.socket | None = None
    theirs = -1
    try:
        user = resolve_user(run_as)
        if user is not None:
            os.chown(results_dir, user.uid, user.gid)
        env_extra = dict(env.env) if env else {}
        binds = list(env.binds) if env else []
        argv = list(cmd)
        pass_fds: list[int] = []
        nonce = ""
        if at is not None:
            ours, child = socket.socketpair()
            theirs = _high_fd(child.detach())
            pass_fds.append(theirs)
            nonce = secrets.token_hex(REPORT_NONCE_BYTES // 2)
            ours.sendall(nonce.encode("ascii"))
            ours.shutdown(socket.SHUT_WR)
            plugin = Bind(REPORT_PLUGIN_DIR, SANDBOX_PLUGIN_DIR)
            binds.append(plugin)
            inside = sandbox_path(plugin, mode)
            env_extra["PYTHONPATH"] = ":".join(
                p for p in (inside, env_extra.get("PYTHONPATH", "")) if p
            )
            # A command that sets PYTHONPATH itself (`env PYTHONPATH=docs/src python -m pytest`)
            # keeps its value, with the plugin's directory added.
            argv = [
                f"{a}:{inside}" if i < at and a.startswith("PYTHONPATH=") else a
                for i, a in enumerate(argv)
            ]
            env_extra[REPORT_ENV] = str(theirs)
            env_extra["PYTEST_ADDOPTS"] = "-p no:cacheprovider"
            argv[at:at] = ["-p", REPORT_PLUGIN]
        else:
            bind = Bind(results_dir, SANDBOX_RESULTS_DIR, writable=True)
            binds.insert(0, bind)
            junit_inside = f"{sandbox_path(bind, mode)}/junit.xml"
            env_extra["PYTEST_ADDOPTS"] = (
                f"--junitxml={junit_inside} -o junit_family=xunit1 -p no:cacheprovider "
                # Captured output and logs of failing tests only (the passing ones would bloat).
                "-o junit_logging=all -o junit_log_passing_tests=false"
            )
        reading = asyncio.create_task(_receive(ours)) if ours is not None else None
        try:
            result = await run_sandboxed(
                argv,
                workdir=workdir,
                timeout=timeout,
                network=False,
                limits=limits,
                output_cap=output_cap,
                binds=binds,
                env_extra=env_extra,
                path_prepend=env.path_prepend if env else (),
                mode=mode,
                run_as=run_as,
                bwrap_path=bwrap_path,
                pass_fds=pass_fds,
            )
        finally:
            theirs = -1  # handed over (closed by run_sandboxed)
        if reading is not None:
            outcomes, junit_error = read_report(
                await _finish(reading), nonce, result.exit_code, timed_out=result.timed_out
            )
            channel = "plugin"
        else:
            outcomes, junit_error = _read_junit(results_dir / "junit.xml")
            channel = "junit"
        return TestRun(
            outcomes=outcomes,
            exit_code=result.exit_code,
            duration_s=result.duration_s,
            output=result.output,
            timed_out=result.timed_out,
            junit_found=not junit_error,
            junit_error=junit_error,
            command=cmd,
            report_channel=channel,
        )
    finally:
        if theirs >= 0:
            os.close(theirs)
        if ours is not None:
            ours.close()
        shutil.rmtree(results_dir, ignore_errors=True)


def _high_fd(fd: int) -> int:
    """`fd` moved to a random high number: nothing in the child finds it by counting up."""
    for _ in range(20):
        target = 200 + secrets.randbelow(800)
        try:
            os.fstat(target)
        except OSError:
            os.dup2(fd, target, inheritable=True)
            os.close(fd)
            return target
    os.set_inheritable(fd, True)
    return fd


async def _receive(sock: socket.socket) -> bytes:
    """Everything the plugin writes on the channel, up to the cap, until it is closed."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            data = await loop.sock_recv(sock, 1 << 16)
        except OSError:
            # ECONNRESET: the other end went away without reading the nonce (the plugin never
            # loaded, or the process died first): no report.
            return b"".join(chunks)
        if not data:
            return b"".join(chunks)
        size += len(data)
        if size > MAX_JUNIT_BYTES:
            return b"".join(chunks) + b"\n{too large}"
        chunks.append(data)


async def _finish(reading: asyncio.Task[bytes]) -> bytes:
    # Once the jail is gone nothing holds the other end; a stray process outside a pid
    # namespace (sandbox mode "none") might, and gets a few seconds.
    try:
        return await asyncio.wait_for(reading, 5)
    except TimeoutError:
        return b""


def read_report(
    data: bytes, nonce: str, exit_code: int, *, timed_out: bool = False
) -> tuple[dict[str, TestOutcome], str]:
    """Outcomes from the plugin's record, and "" — or no outcomes and why the run is void.

    Exactly one record, carrying this run's nonce, whose pytest exit status is the process's
    own and agrees with the outcomes it lists: anything else is a run whose results cannot be
    trusted (the code under test exited before pytest finished, wrote to the channel, or ran
    something after pytest that changed the exit status)."""
    if timed_out:
        return {}, "the run timed out"
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    if not lines:
        return {}, (
            "the run left no report of its own: the process ended before pytest finished "
            "(an exit or crash during the run), or the report channel was closed"
        )
    if len(lines) > 1:
        return {}, "more than one test report reached loopwright's channel: a forged report"
    try:
        record = json.loads(lines[0])
        if not isinstance(record, dict) or record.get("nonce") != nonce:
            raise ValueError("wrong nonce")
        status = int(record["exitstatus"])
        outcomes = {
            str(o["test_id"]): TestOutcome(
                str(o["test_id"]),
                cast(Outcome, o["outcome"]) if o["outcome"] in _SEVERITY else "error",
                clip_message(str(o.get("message", ""))),
                float(o.get("duration_s", 0.0)),
                str(o.get("output", ""))[-MAX_OUTPUT_CHARS:],
            )
            for o in record["outcomes"]
        }
    except (ValueError, KeyError, TypeError):
        return {}, "the test report on loopwright's channel is not its own: a forged report"
    if status != exit_code:
        return {}, (
            f"pytest finished with exit status {status} but the process exited {exit_code}: "
            "something ran after pytest and changed the result"
        )
    failing = any(o.outcome in FAILING for o in outcomes.values())
    if (status == 0 and failing) or (status == 1 and not failing):
        return {}, f"the report's outcomes disagree with pytest's exit status {status}"
    return outcomes, ""


def _read_junit(junit: Path) -> tuple[dict[str, TestOutcome], str]:
    try:
        # The sandbox user owns this directory: refuse a planted symlink (O_NOFOLLOW) or
        # FIFO (O_NONBLOCK, then a regular-file check) instead of following or blocking.
        fd = os.open(junit, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise JUnitError("the JUnit path is not a regular file")
            data = fh.read(MAX_JUNIT_BYTES + 1)
        return parse_junit_xml(data), ""
    except FileNotFoundError:
        return {}, "no JUnit XML was written"
    except (OSError, JUnitError) as exc:
        return {}, str(exc)


# --- shaping a pytest command ------------------------------------------------------------

#: pytest options whose value is the next argument (`-k expr`), so it is not a test path.
_VALUE_OPTIONS = frozenset(
    "-k -m -p -o -c -W -n --rootdir --confcutdir --ignore --ignore-glob --deselect --basetemp "
    "--junitxml --junit-xml --log-level --tb --maxfail --durations --import-mode --dist "
    "--cov --cov-report --cov-config --timeout --reruns --capture --override-ini "
    "--config-file --log-file --log-format --result-log".split()
)


def pytest_position(cmd: Sequence[str]) -> int | None:
    """Index of the first argument pytest itself reads, or None if `cmd` does not run pytest
    directly (`python -m pytest`, `pytest`, `py.test`, after an `env VAR=...` prefix)."""
    for i, part in enumerate(cmd):
        if part.rsplit("/", 1)[-1] in ("pytest", "py.test"):
            return i + 1
    return None


def pytest_paths(cmd: Sequence[str], workdir: Path) -> list[int]:
    """Indexes of the test paths given on a pytest command line (files, directories, node ids
    that exist in `workdir`)."""
    start = pytest_position(cmd)
    if start is None:
        return []
    found = []
    for i in range(start, len(cmd)):
        arg = cmd[i]
        if arg.startswith("-") or cmd[i - 1] in _VALUE_OPTIONS:
            continue
        if (workdir / arg.split("::")[0]).exists():
            found.append(i)
    return found


def shape_pytest_command(
    cmd: Sequence[str], workdir: Path, *, selection: Sequence[str] = (), extra: Sequence[str] = ()
) -> list[str]:
    """The project's pytest command narrowed to `selection` (its own test paths replaced), or
    the whole command with `extra` files added (the loop's own tests) when it names test paths
    of its own (`pytest tornado/test/web_test.py` would never collect them). A command that
    names no paths is left to pytest's discovery (`testpaths`, `python_files`), which collects
    them where the loop places them; naming them would narrow the run to them alone. Commands
    that do not run pytest directly are returned unchanged."""
    argv = list(cmd)
    if pytest_position(argv) is None:
        return argv
    paths = pytest_paths(argv, workdir)
    if selection:
        drop = set(paths)
        return [a for i, a in enumerate(argv) if i not in drop] + list(selection)
    if not paths:
        return argv
    return argv + [e for e in extra if e not in argv]


# --- comparing ---------------------------------------------------------------------------


def regressions(base: TestRun, head: TestRun, *, ignore: Iterable[str] = ()) -> list[str]:
    """THE definition of a regression, shared by every loop: a test that passed on base and
    does not pass on head — failed, error, skipped, deselected or missing. A test that passed
    and is now skipped is a regression: code can make other tests skip themselves."""
    skip = set(ignore)
    return sorted(
        t
        for t, o in base.outcomes.items()
        if o.outcome == "passed"
        and t not in skip
        and (t not in head.outcomes or head.outcomes[t].outcome != "passed")
    )


@dataclass
class Comparison:
    #: Passed on base, anything else on head (see `regressions`).
    regressions: list[str]
    #: Failing on base, passed on head.
    newly_passing: list[str]
    still_failing: list[str]
    #: Only in head, with their outcome (e.g. a new reproduction test).
    added: dict[str, Outcome]
    #: Only in base (deleted, renamed, or no longer collected).
    removed: list[str]

    @property
    def has_regressions(self) -> bool:
        return bool(self.regressions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(base: TestRun, head: TestRun) -> Comparison:
    b, h = base.outcomes, head.outcomes
    common = b.keys() & h.keys()
    return Comparison(
        regressions=regressions(base, head),
        newly_passing=sorted(
            t for t in common if b[t].outcome in FAILING and h[t].outcome == "passed"
        ),
        still_failing=sorted(
            t for t in common if b[t].outcome in FAILING and h[t].outcome in FAILING
        ),
        added={t: h[t].outcome for t in sorted(h.keys() - b.keys())},
        removed=sorted(b.keys() - h.keys()),
    )


# --- where a failure comes from --------------------------------------------------------------

#: pytest's long/short tracebacks (`path.py:12: in test_x`, `path.py:12: KeyError`) and the
#: native/stdlib form (`File "path.py", line 12, in test_x`).
_FRAME = re.compile(r'^\s*(?:File "([^"]+\.py)", line \d+|([^\s:]+\.py):\d+:)', re.MULTILINE)
#: How pytest reports a test module that cannot even be imported or parsed.
_COLLECTION = re.compile(
    r"(?:collection failure|ImportError while importing test module|"
    r"error(?:s)? during collection|ERROR collecting|SyntaxError|IndentationError)"
)


def frames(message: str) -> list[str]:
    """The file of every traceback frame in a failure message, outermost first."""
    return [m.group(1) or m.group(2) for m in _FRAME.finditer(message)]


def origin(message: str) -> str | None:
    """The file the failure was raised in (the innermost frame), if the message shows one."""
    found = frames(message)
    return found[-1] if found else None


def is_collection_error(outcome: TestOutcome) -> bool:
    """An `error` entry that stands for a module that did not import or parse."""
    return outcome.outcome == "error" and bool(_COLLECTION.search(outcome.message))


def collection_errors(run: TestRun) -> list[TestOutcome]:
    return [o for o in run.outcomes.values() if is_collection_error(o)]


def failed_to_collect(run: TestRun) -> bool:
    """The suite did not collect at all: nothing ran but errors (or pytest's "interrupted" /
    "usage error" exits with no test passing). Such a run is not a baseline."""
    if run.passing:
        return False
    if run.outcomes and all(is_collection_error(o) for o in run.outcomes.values()):
        return True
    return run.exit_code in (2, 3, 4) and not any(
        o.outcome == "failed" for o in run.outcomes.values()
    )


# --- baseline cache ----------------------------------------------------------------------

_SHA = re.compile(r"[0-9a-f]{7,64}")


def baseline_cache_path(
    cache_dir: Path, repo: str, commit: str, test_cmd: str | Sequence[str] | None = None
) -> Path:
    """Where the baseline run of `repo` at `commit` (with this test command) is cached."""
    if not _SHA.fullmatch(commit):
        raise ValueError(f"not a commit id: {commit!r}")
    # The report format is part of the key: a baseline read another way is another baseline.
    key = json.dumps([BASELINE_FORMAT, _as_argv(test_cmd or "")])
    cmd_hash = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir) / "baselines" / repo_slug(repo) / f"{commit}-{cmd_hash}.json"


def load_baseline(path: Path) -> TestRun | None:
    try:
        return TestRun.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_baseline(path: Path, run: TestRun) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(run.to_json(), encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


async def baseline_run(
    workdir: Path,
    *,
    cache_dir: Path,
    repo: str,
    commit: str,
    test_cmd: str | Sequence[str] | None = None,
    env: EnvInfo | None = None,
    timeout: float = 1800.0,  # noqa: ASYNC109 - the sandbox's wall clock
    limits: Limits | None = None,
    mode: SandboxMode = "bwrap",
    run_as: str | int | None = None,
    bwrap_path: str | os.PathLike[str] | None = None,
) -> tuple[TestRun, bool]:
    """The suite's result on the base commit, from cache when present; returns (run, hit).

    Only runs that produced results and did not time out are cached, so a flaky infrastructure
    failure is retried next time instead of becoming the baseline.
    """
    path = baseline_cache_path(cache_dir, repo, commit, test_cmd)
    cached = load_baseline(path)
    if cached is not None:
        return cached, True
    run = await run_tests(
        workdir,
        test_cmd=test_cmd,
        env=env,
        timeout=timeout,
        limits=limits,
        mode=mode,
        run_as=run_as,
        bwrap_path=bwrap_path,
    )
    if run.junit_found and not run.timed_out:
        save_baseline(path, run)
    return run, False
