"""Deterministic diagnosis of a failing GitHub Actions job log.

`diagnose(log_bytes)` cleans the log (timestamps, ANSI colour, CRLF, BOM, invalid UTF-8, size cap),
parses the failures the usual Python CI tools print (pytest, ruff, flake8, pylint, black, mypy,
pyright, pip/uv/poetry, Python import errors, timeouts, runner and network trouble) and classifies
the job, so that a model is asked only when the parsers leave it ambiguous (`confident=False`).
Everything here is a pure function of its input: no I/O, no model, no GitHub.

Speed. A job log can be tens of MB, almost all of it passing noise. Lines are never run through the
parsers' regexes one by one: `parse_failures` joins the cleaned lines once and searches the whole
text for specific literal needles ("FAIL", "ERROR", " error", "##[", "____", "-->", "No module
named", …), each a literal-only compiled pattern (the regex engine's fast literal scan, GB/s),
plus one `:\\d+:\\d+: CODE` pattern for path:line:col linters; only the lines holding a hit (and
the lines of each pytest failure section) are parsed. An alternation of all needles is avoided on
purpose: CPython's `re` cannot use its literal scan for one and is several times slower. Needles
are specific enough that common noise ("test_error_case PASSED", "04:19:48: INFO", "ValueError"
in test names) does not hit them. Timestamps are removed by slicing the fixed 29-char prefix
(regex fallback for other widths); ANSI escapes with one `re.sub` over the text, only when it
holds an ESC byte. `new_lines` normalises only the lines not shared verbatim (see there).

Classification rule (see `classify`):

1. Only failures found in a failed step count (a step that holds an ``##[error]`` line; lint
   warnings printed by a step that passed are noise). Without step markers, every failure counts.
2. Infrastructure wins when present at all (runner lost, job/step timeout, cancellation,
   pytest-timeout, disk full, network): the run says nothing reliable about the code and a re-run
   comes first. It is not confident when test/lint/type failures were also found (both may be
   real); dependency failures in the same step as a network failure are taken as its consequence.
3. Otherwise the first failed step with failures decides (Actions stops at the first failing
   step; later failures come from `if: always()` steps): a dependency failure in that step wins
   (it explains the rest), else the kind of the step's first failure.
4. "unknown" and not confident when nothing was recognised in the failed steps (e.g. only
   "Process completed with exit code 1"); failures recognised in steps that passed are then
   still returned, as context for the model.
5. Not confident either when kinds are mixed and the log has no step markers to order them, or
   when a tool's own count ("3 failed", "Found 4 errors") is higher than the number of failures
   parsed for it (something was missed, e.g. in a truncated middle).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Category = Literal["test", "lint", "types", "dependency", "infrastructure", "unknown"]

MAX_BYTES = 64 * 1024 * 1024
#: Bytes kept from the start of an over-long log; the rest of max_bytes is kept from its end.
HEAD_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 300
MAX_KEY_LINES = 15
#: Key lines longer than this are shortened (a minified JSON line does not belong in a comment).
MAX_KEY_LINE_CHARS = 1000
#: A pytest failure section longer than this is not walked further.
MAX_SECTION_LINES = 20_000
#: Lines before a step's `##[error]` line searched for the tools' own failure counts.
COUNT_WINDOW = 80

_StepOf = Callable[[int], int]


@dataclass(frozen=True)
class Failure:
    kind: Category
    tool: str
    message: str
    test_id: str | None = None
    path: str | None = None
    line: int | None = None
    code: str | None = None
    log_line: int = 0


@dataclass
class LogText:
    lines: list[str]
    truncated: bool
    bytes_read: int
    steps: list[str]
    error_lines: list[int]


@dataclass
class Diagnosis:
    category: Category
    failures: list[Failure]
    confident: bool
    key_lines: list[str]
    failed_step: str | None
    command: str | None
    new_lines: list[int] | None
    truncated: bool

    def summary(self) -> str:
        """One line for a comment or a log, e.g. "2 failing tests (pytest): tests/test_a.py::…"."""
        main = [f for f in self.failures if f.kind == self.category]
        others = [f for f in self.failures if f.kind != self.category]
        if not main:
            where = f" in step '{self.failed_step}'" if self.failed_step else ""
            text = f"unrecognised failure{where}: no known error pattern found"
        else:
            tools = ", ".join(dict.fromkeys(f.tool for f in main))
            items = [_short(f) for f in main]
            shown = ", ".join(items[:3]) + (f", +{len(items) - 3} more" if len(items) > 3 else "")
            text = f"{_count_label(self.category, len(main))} ({tools}): {shown}"
        if others:
            counts: dict[str, int] = {}
            for f in others:
                counts[f.kind] = counts.get(f.kind, 0) + 1
            text += "; also " + ", ".join(_count_label(k, n) for k, n in counts.items())
        if self.truncated:
            text += " [log truncated]"
        if not self.confident:
            text += " (ambiguous)"
        return text


def _count_label(kind: str, n: int) -> str:
    nouns = {
        "test": ("failing test", "failing tests"),
        "lint": ("lint error", "lint errors"),
        "types": ("type error", "type errors"),
        "dependency": ("dependency failure", "dependency failures"),
        "infrastructure": ("infrastructure failure", "infrastructure failures"),
    }
    one, many = nouns.get(kind, ("failure", "failures"))
    return f"{n} {one if n == 1 else many}"


def _short(f: Failure) -> str:
    if f.test_id:
        return f.test_id
    if f.kind in ("lint", "types") and f.path:
        loc = f"{f.path}:{f.line}" if f.line is not None else f.path
        return f"{loc} {f.code}" if f.code else loc
    return f.message


# --- cleaning -------------------------------------------------------------------------------------

_TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z(?: |$)")
_TS_WIDTH = 29  # "2026-11-24T04:19:48.1234567Z "
# CSI (colours, cursor), OSC (titles, hyperlinks), charset selection (mypy's "ESC ( B"), others.
_ANSI_RE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[()*+][0-9A-Za-z]|[@-_=>78])"
)
_CUT_MARK = re.compile(r"^\[… \d+ bytes cut …\]$")


def clean_log(data: bytes | str, *, max_bytes: int = MAX_BYTES) -> LogText:
    """Decode and clean a job log: one entry per line, without timestamps and ANSI escapes.

    Accepts the Actions download (every line prefixed with an ISO timestamp) and plain tool
    output. Invalid UTF-8 is replaced, a BOM dropped, CRLF and bare CR (progress bars: the text
    after the last CR wins) handled. Over `max_bytes`, the first min(1 MiB, max_bytes/2) and the
    last rest of `max_bytes` are kept, both shortened to whole lines (a line cut in half at an
    edge is dropped, so it cannot parse as a bogus failure), with "[… N bytes cut …]" between.
    `bytes_read` is the size of the input in bytes, before any cut.
    """
    if max_bytes < 2:
        raise ValueError("max_bytes must be at least 2")
    truncated = False
    if isinstance(data, str):
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            return clean_log(data.encode("utf-8", "surrogatepass"), max_bytes=max_bytes)
        text = data
    else:
        size = len(data)
        if size > max_bytes:
            text = _cut_middle(data, max_bytes)
            truncated = True
        else:
            text = data.decode("utf-8", "replace")
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    bare_cr = False
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        bare_cr = "\r" in text
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    runner_lines = _line_indices(text, [m.start() for m in _RUNNER_NEEDLE.finditer(text)])
    lines = text.split("\n")
    del text
    if lines and lines[-1] == "":
        lines.pop()
    if bare_cr:
        for i, line in enumerate(lines):
            if "\r" in line:
                line = line.rstrip("\r")
                lines[i] = line[line.rfind("\r") + 1 :]
    if _has_timestamps(lines):
        strip = _strip_timestamp
        lines = [s[_TS_WIDTH:] if s[27:29] == "Z " and s[10:11] == "T" else strip(s) for s in lines]
    steps: list[str] = []
    error_lines: list[int] = []
    for i in runner_lines:
        if i >= len(lines):
            break
        line = lines[i]
        if line.startswith("##[group]Run "):
            steps.append(line[9:])
        elif line.startswith("##[error]"):
            error_lines.append(i)
    return LogText(lines, truncated, size, steps, error_lines)


def _cut_middle(data: bytes, max_bytes: int) -> str:
    head_n = min(HEAD_BYTES, max_bytes // 2)
    tail_n = max_bytes - head_n
    head = data[:head_n]
    tail = data[len(data) - tail_n :]
    nl = head.rfind(b"\n")
    head = head[: nl + 1] if nl >= 0 else b""
    nl = tail.find(b"\n")
    tail = tail[nl + 1 :] if nl >= 0 else b""
    cut = len(data) - len(head) - len(tail)
    return (
        head.decode("utf-8", "replace")
        + f"[… {cut} bytes cut …]\n"
        + tail.decode("utf-8", "replace")
    )


def _has_timestamps(lines: Sequence[str]) -> bool:
    """True when the first non-empty lines carry the Actions timestamp prefix."""
    seen = 0
    for line in lines[:200]:
        if not line:
            continue
        if _TS_RE.match(line):
            return True
        seen += 1
        if seen >= 5:
            return False
    return False


def _strip_timestamp(line: str) -> str:
    m = _TS_RE.match(line)
    return line[m.end() :] if m else line


_RUNNER_NEEDLE = re.compile(re.escape("##["))


def _line_indices(text: str, offsets: Sequence[int]) -> list[int]:
    """Distinct line indices of sorted offsets into `text` (newlines counted in C, not looped)."""
    out: list[int] = []
    line = 0
    prev = 0
    for off in offsets:
        line += text.count("\n", prev, off)
        prev = off
        if not out or out[-1] != line:
            out.append(line)
    return out


# --- parsing --------------------------------------------------------------------------------------

#: Literal needles searched over the whole text; a line holding one is parsed. Each is its own
#: pattern: a pure literal uses the regex engine's fast scan, an alternation of them would not.
#: (pattern, shift): a needle starting with a newline marks the line after it.
_NEEDLES: tuple[tuple[re.Pattern[str], int], ...] = (
    *(
        (re.compile(re.escape(s)), 1 if s.startswith("\n") else 0)
        for s in (
            "##[",  # runner markers: steps, ##[error] (timeouts, cancellation, shutdown)
            "FAIL",  # pytest FAILED / FAILURES
            "ERROR",  # pytest ERROR, pip ERROR:
            "No module named",  # ModuleNotFoundError outside pytest sections
            " error",  # mypy/pyright ": error:", pytest "1 error in", git "returned error"
            " failed",  # pytest "N failed", "failed with exit code"
            "____",  # pytest section headers
            "\n_ ",  # … and the short form pytest uses for names wider than the terminal
            "-->",  # ruff full format location
            "reformat",  # ruff format --check, black
            "Timeout",  # pytest-timeout
            "rootdir: ",  # pytest header: makes absolute paths repo-relative
            "No s",  # No space left on device, uv "No solution found"
            "resol",  # Could not resolve host, Temporary failure in name resolution
            "Connection reset",
            "503 Service",
            "Error 503",  # urllib's "HTTP Error 503: Service Unavailable"
            "SolverProblem",  # poetry
            "lost communication",
        )
    ),
    # path:line:col: CODE (ruff concise, flake8, pylint); not clock times like "04:19:48: INFO".
    (re.compile(r":\d+:\d+: (?:[A-Z]{1,6}\d|[a-z]+-[a-z])"), 0),
)

_SUMMARY = re.compile(r"^(?P<outcome>FAILED|ERROR) (?P<id>\S.*?)(?: - (?P<msg>.*))?$")
_VERBOSE = re.compile(
    r"^(?:\[gw\d+\] \[\s*\d+%\] (?P<o1>FAILED|ERROR) (?P<id1>\S+::\S.*?)"
    r"|(?P<id2>\S+::\S.*?) (?P<o2>FAILED|ERROR)(?:\s+\[\s*\d+%\])?)\s*$"
)
_HEADER = re.compile(r"^_+ (?P<name>[^_ ].*?) _+$")
_FAILURES_BANNER = re.compile(r"^=+ (?:FAILURES|ERRORS) =+$")
_PY_LOC = re.compile(
    r"^(?P<path>(?:[A-Za-z]:)?[^\s:<][^:]*?\.pyi?):(?P<line>\d+):(?: (?P<what>.*))?$"
)
_FILE_LINE = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_EXC_LINE = re.compile(r"^(?P<exc>(?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?:: (?P<rest>.*))?$")
_IDENT = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*$")
_PYTEST_FINAL = re.compile(r"^=*\s*(?P<body>\d+ [a-z]+(?:, \d+ [a-z]+)*) in \d+(?:\.\d+)?s\b")
_PYTEST_TIMEOUT_MSG = re.compile(r"\bTimeout \(?>\s?\d")
_TIMEOUT_BANNER = re.compile(r"^\+{3,} Timeout \+{3,}$")
_PYTEST_USAGE = re.compile(r"^ERROR: (?:file or directory not found|not found): (?P<what>\S.*)$")

_LINT = re.compile(
    r"^(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?):(?P<line>\d+):(?P<col>\d+): "
    r"(?P<code>[A-Z]{1,6}\d{1,5}|invalid-syntax|unformatted|syntax-error)(?P<colon>:)? "
    r"(?:\[\*\] )?(?P<msg>.*)$"
)
_ARROW = re.compile(
    r"^\s*-->\s*(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?):(?P<line>\d+):(?P<col>\d+)\s*$"
)
_RUFF_HEAD = re.compile(
    r"^(?P<code>[A-Z]{1,6}\d{1,5}|invalid-syntax|unformatted|syntax-error):? "
    r"(?:\[\*\] )?(?P<msg>.+)$"
)
_WOULD_REFORMAT = re.compile(r"^(?P<who>Would reformat|would reformat):? (?P<path>\S.*)$")
_MYPY = re.compile(
    r"^(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?\.pyi?):(?P<line>\d+)(?::\d+)*: error: "
    r"(?P<msg>.*?)(?:  \[(?P<code>[a-z0-9][a-z0-9-]*)\])?\s*$"
)
_MYPY_CODE_TAIL = re.compile(r"^(?P<rest>.*?)  \[(?P<code>[a-z0-9][a-z0-9-]*)\]\s*$")
_PYRIGHT = re.compile(
    r"^\s*(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?\.pyi?):(?P<line>\d+):(?P<col>\d+) - error: "
    r"(?P<msg>.*?)(?: \((?P<code>report\w+)\))?\s*$"
)

_PIP_REQ = re.compile(
    r"^ERROR: (?:Could not find a version that satisfies the requirement|"
    r"No matching distribution found for) (?P<req>\S+)"
)
_PIP_CONFLICT = re.compile(
    r"^ERROR: Cannot install .+ because these package versions have conflicting"
)
_PIP_PYTHON = re.compile(r"^ERROR: Package '(?P<pkg>[^']+)' requires a different Python")
_PIP_WHEEL = re.compile(r"^ERROR: Failed building wheel for (?P<pkg>\S+)")
_MODULE_NOT_FOUND = re.compile(
    r"(?:^|[\s>:])(?P<exc>ModuleNotFoundError): No module named '(?P<mod>[^']+)'"
)

#: (substring that must be present, pattern, tool, code) for infrastructure trouble.
_INFRA: tuple[tuple[str, re.Pattern[str], str, str], ...] = (
    (
        "maximum execution time",
        re.compile(r"The job running on runner .* has exceeded the maximum execution time"),
        "timeout",
        "job-timeout",
    ),
    (
        "timed out after",
        re.compile(r"The action '.*' has timed out after \d+ minutes"),
        "timeout",
        "step-timeout",
    ),
    ("was canceled", re.compile(r"The operation was canceled"), "timeout", "canceled"),
    (
        "shutdown signal",
        re.compile(r"The runner has received a shutdown signal"),
        "runner",
        "shutdown",
    ),
    (
        "lost communication",
        re.compile(r"lost communication with the server"),
        "runner",
        "lost-communication",
    ),
    ("No space left", re.compile(r"No space left on device"), "runner", "disk-full"),
    (
        "resol",
        re.compile(r"Could not resolve host|Temporary failure in name resolution"),
        "runner",
        "network",
    ),
    ("Connection reset", re.compile(r"Connection reset by peer"), "runner", "network"),
    (
        "503",
        re.compile(r"503 Service Unavailable|returned error: 503|HTTP Error 503"),
        "runner",
        "http-503",
    ),
    (
        "failed with exit code",
        re.compile(r"The process '[^']*git(?:\.exe)?' failed with exit code"),
        "runner",
        "git",
    ),
)

_WORKSPACE = re.compile(
    r"^(?:/home/runner/work/[^/]+/[^/]+/|/Users/runner/work/[^/]+/[^/]+/|/__w/[^/]+/[^/]+/"
    r"|[A-Za-z]:[\\/]a[\\/][^\\/]+[\\/][^\\/]+[\\/])"
)


@dataclass
class _PyRecord:
    """One pytest fact before merging: a summary line, a -v line or a failure section."""

    source: Literal["summary", "verbose", "section"]
    outcome: str  # FAILED or ERROR
    test_id: str | None
    suffix: str | None  # section only: "TestX::test_m[1-2]" to match a summary id's tail
    message: str
    code: str | None
    path: str | None
    line: int | None
    log_line: int
    step: int


class _Parser:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.found: list[tuple[Failure, int]] = []  # (failure, step ordinal)
        self.pytest: list[_PyRecord] = []
        self.finals: list[tuple[int, int, int]] = []  # (failed+errors, log line, step)
        self.seen: set[tuple[object, ...]] = set()
        self.step = -1
        self.step_cmd = ""
        self.rootdir: str | None = None
        #: After pytest's "= FAILURES =" / "= ERRORS =" banner: section headers are expected.
        self.in_failures = False

    # -- helpers --

    def add(self, f: Failure, key: tuple[object, ...] | None = None) -> None:
        if key is not None:
            key = (*key, self.step)
            if key in self.seen:
                return
            self.seen.add(key)
        self.found.append((f, self.step))

    def rel(self, path: str) -> str:
        path = path.strip()
        root = self.rootdir
        if root and path.startswith(root + "/"):
            path = path[len(root) + 1 :]
        path = _WORKSPACE.sub("", path, count=1)
        while path.startswith("./"):
            path = path[2:]
        return path

    # -- the scan --

    def run(self, candidates: list[int]) -> None:
        lines = self.lines
        skip_until = 0
        echo_until = -1
        for i in candidates:
            if i < skip_until or i >= len(lines):
                continue
            s = lines[i]
            if s.startswith("##["):
                if s.startswith("##[group]"):
                    if s.startswith("##[group]Run "):
                        self.step += 1
                        self.step_cmd = s[13:]
                        self.in_failures = False
                        echo_until = i + 1000  # the echoed script, shell and env, until endgroup
                    continue
                if s.startswith("##[endgroup]"):
                    echo_until = -1
                    continue
                if not s.startswith("##[error]"):
                    continue
                s = s[9:]
            elif i <= echo_until:
                continue
            skip_until = max(skip_until, self.line(i, s))

    def line(self, i: int, s: str) -> int:
        """Parse one candidate line; return the index parsing may resume at."""
        if s.startswith(("FAILED ", "ERROR ")):
            m = _SUMMARY.match(s)
            if m and _looks_like_node_id(m["id"]):
                self.summary_line(i, s, m)
                return i + 1
        if ("FAILED" in s or "ERROR" in s) and "::" in s:
            m = _VERBOSE.match(s)
            if m:
                tid = m["id1"] or m["id2"]
                outcome = m["o1"] or m["o2"]
                self.pytest.append(
                    _PyRecord("verbose", outcome, tid, None, "", None, None, None, i, self.step)
                )
                return i + 1
        if s.startswith("=") and _FAILURES_BANNER.match(s):
            self.in_failures = True
            return i + 1
        if s.startswith("_") and self.in_failures:
            h = _HEADER.match(s)
            if h:
                return self.section(i, h["name"])
        if s.startswith("rootdir: "):
            self.rootdir = s[9:].split(",")[0].strip().rstrip("/") or None
            return i + 1
        if " in " in s and ("failed" in s or "error" in s):
            m = _PYTEST_FINAL.match(s)
            if m:
                self.in_failures = False
                self.final_line(i, m["body"])
                return i + 1
        for needle, pattern, tool, code in _INFRA:
            if needle in s:
                im = pattern.search(s)
                if im:
                    self.add(
                        Failure("infrastructure", tool, _clip(s), code=code, log_line=i),
                        ("infra", code),
                    )
                    return i + 1
        if "Timeout" in s and _TIMEOUT_BANNER.match(s):
            self.timeout_banner(i)
            return i + 1
        if s.startswith("ERROR: ") and self.pip_line(i, s):
            return i + 1
        if ":" in s:
            if self.located_line(i, s):
                return i + 1
        if "reformat" in s and (m := _WOULD_REFORMAT.match(s)):
            tool = "black" if m["who"] == "would reformat" else "ruff"
            path = self.rel(m["path"])
            self.add(
                Failure("lint", tool, _clip(s), path=path, code="format", log_line=i),
                ("format", path),
            )
            return i + 1
        if "ModuleNotFoundError" in s:
            m = _MODULE_NOT_FOUND.search(s)
            if m:
                self.module_not_found(i, s, m["mod"])
                return i + 1
        if "No solution found when resolving dependencies" in s:
            self.add(
                Failure(
                    "dependency",
                    "uv",
                    _clip(s.lstrip("× ").strip()),
                    code="no-solution",
                    log_line=i,
                ),
                ("uv",),
            )
        elif "SolverProblemError" in s:
            self.add(
                Failure("dependency", "poetry", _clip(s), code="SolverProblemError", log_line=i),
                ("poetry",),
            )
        return i + 1

    # -- pytest --

    def summary_line(self, i: int, s: str, m: re.Match[str]) -> None:
        tid = m["id"].strip()
        msg = (m["msg"] or "").strip()
        if "[" in tid and "]" not in tid:  # a parameter holding " - ": the id ends at "]"
            rest = s[len(m["outcome"]) + 1 :]
            end = rest.find("] - ")
            tid, msg = (rest[: end + 1], rest[end + 4 :]) if end >= 0 else (rest.strip(), "")
        if msg.startswith("assert "):
            msg = "AssertionError: " + msg
        em = _EXC_LINE.match(msg)
        code = em["exc"] if em and em["rest"] is not None else None
        self.pytest.append(
            _PyRecord("summary", m["outcome"], tid, None, msg, code, None, None, i, self.step)
        )

    def final_line(self, i: int, body: str) -> None:
        n = 0
        for num, word in re.findall(r"(\d+) ([a-z]+)", body):
            if word in ("failed", "error", "errors"):
                n += int(num)
        if n:
            self.finals.append((n, i, self.step))

    def section(self, h: int, name: str) -> int:
        """Walk a pytest failure section from its header; return the index after it."""
        lines = self.lines
        limit = min(len(lines), h + MAX_SECTION_LINES)
        e_blocks: list[list[tuple[int, str]]] = []
        locs: list[tuple[str, int, str]] = []
        plain_exc: tuple[int, str] | None = None
        in_e = captured = False
        j = h + 1
        while j < limit:
            s = lines[j]
            if s.startswith(("_", "===", "!!!", "##[")) and _ends_section(s):
                break
            if s[:1].isdigit() and _PYTEST_FINAL.match(s):
                break
            if captured:
                j += 1
                continue
            if s.startswith("E ") or s == "E":
                body = s[1:].strip()
                if not in_e:
                    e_blocks.append([])
                    in_e = True
                e_blocks[-1].append((j, body))
                fm = _FILE_LINE.match(body)
                if fm:
                    locs.append((fm["path"], int(fm["line"]), ""))
            else:
                in_e = False
                if s.startswith("--") and " Captured " in s:
                    captured = True
                elif m := _PY_LOC.match(s):
                    locs.append((m["path"], int(m["line"]), (m["what"] or "").strip()))
                elif fm := _FILE_LINE.match(s):
                    locs.append((fm["path"], int(fm["line"]), ""))
                elif s[:1].isalpha() and _EXC_LINE.match(s):
                    plain_exc = (j, s)
            j += 1
        self.section_record(h, name, e_blocks, locs, plain_exc)
        return j

    def section_record(
        self,
        h: int,
        name: str,
        e_blocks: list[list[tuple[int, str]]],
        locs: list[tuple[str, int, str]],
        plain_exc: tuple[int, str] | None,
    ) -> None:
        outcome = "FAILED"
        collect_path: str | None = None
        if name.startswith("ERROR collecting "):
            outcome = "ERROR"
            collect_path = self.rel(name[len("ERROR collecting ") :])
        elif m := re.match(r"ERROR at (?:setup|teardown) of (.+)$", name):
            outcome = "ERROR"
            name = m[1]
        # The exception line: in the last block of E lines, the first that names an exception.
        pick: tuple[int, str] | None = None
        if e_blocks:
            block = e_blocks[-1]
            pick = next(((k, b) for k, b in block if _EXC_LINE.match(b) and ": " in b), None)
            if pick is None:
                pick = next(((k, b) for k, b in block if b), block[0])
        elif plain_exc:
            pick = plain_exc
        rel_locs = [(self.rel(p), ln, what) for p, ln, what in locs]
        repo = [(p, ln, what) for p, ln, what in rel_locs if not _external(p)]
        message = ""
        code: str | None = None
        if pick is not None:
            text = pick[1]
            em = _EXC_LINE.match(text)
            if em and (em["rest"] is not None or not repo):
                code = em["exc"]
                message = text
            else:
                what = next((w for _, _, w in reversed(rel_locs) if _IDENT.match(w)), None)
                message = f"{what}: {text}" if what else text
                code = what
        path: str | None = None
        line: int | None = None
        if repo:
            path, line = repo[-1][0], repo[-1][1]
        test_path = collect_path or next((p for p, _, _ in repo if _is_test_file(p)), None)
        suffix: str | None = None
        tid: str | None
        if collect_path:
            tid = collect_path
        elif name.startswith("[doctest]"):
            tid = None
        else:
            base, bracket, param = name.partition("[")
            suffix = base.replace(".", "::") + bracket + param
            tid = f"{test_path}::{suffix}" if test_path else None
        self.pytest.append(
            _PyRecord(
                "section",
                outcome,
                tid,
                suffix,
                message,
                code,
                path,
                line,
                pick[0] if pick else h,
                self.step,
            )
        )

    def timeout_banner(self, i: int) -> None:
        """pytest-timeout's thread method: a banner, the stacks, then the process exits."""
        test_id: str | None = None
        path: str | None = None
        line: int | None = None
        for j in range(i + 1, min(len(self.lines), i + 300)):
            fm = _FILE_LINE.match(self.lines[j])
            if fm:
                p = self.rel(fm["path"])
                if not _external(p) and _is_test_file(p) and fm["func"]:
                    test_id = f"{p}::{fm['func'].strip()}"
                    path, line = p, int(fm["line"])
            elif self.lines[j].startswith("+++") and j > i + 1:
                break
        self.add(
            Failure(
                "infrastructure",
                "timeout",
                "pytest-timeout: test timed out",
                test_id=test_id,
                path=path,
                line=line,
                code="pytest-timeout",
                log_line=i,
            ),
            ("pytest-timeout-banner",),
        )

    # -- other tools --

    def pip_line(self, i: int, s: str) -> bool:
        if m := _PIP_REQ.match(s):
            self.add(
                Failure(
                    "dependency", "pip", _clip(s[7:]), code="no-matching-distribution", log_line=i
                ),
                ("pip-req", m["req"]),
            )
            return True
        if _PIP_CONFLICT.match(s) or "ResolutionImpossible" in s:
            self.add(
                Failure("dependency", "pip", _clip(s[7:]), code="ResolutionImpossible", log_line=i),
                ("pip-conflict",),
            )
            return True
        if m := _PIP_PYTHON.match(s):
            self.add(
                Failure("dependency", "pip", _clip(s[7:]), code="requires-python", log_line=i),
                ("pip-python", m["pkg"]),
            )
            return True
        if m := _PIP_WHEEL.match(s):
            self.add(
                Failure("dependency", "pip", _clip(s[7:]), code="wheel-build-failed", log_line=i),
                ("pip-wheel", m["pkg"]),
            )
            return True
        if m := _PYTEST_USAGE.match(s):
            self.add(
                Failure(
                    "test",
                    "pytest",
                    _clip(s[7:]),
                    test_id=m["what"].strip(),
                    code="usage-error",
                    log_line=i,
                ),
                ("pytest-usage", m["what"]),
            )
            return True
        return False

    def located_line(self, i: int, s: str) -> bool:
        """path:line[:col]: lines (mypy, ruff/flake8/pylint concise, pyright) and ruff full."""
        if ": error: " in s:
            m = _MYPY.match(s)
            if m:
                msg, code = m["msg"], m["code"]
                if code is None and i + 1 < len(self.lines):  # --pretty wraps the code
                    tail = _MYPY_CODE_TAIL.match(self.lines[i + 1])
                    if tail and not _MYPY.match(self.lines[i + 1]):
                        msg, code = f"{msg} {tail['rest'].strip()}", tail["code"]
                self.add(
                    Failure(
                        "types",
                        "mypy",
                        _clip(msg),
                        path=self.rel(m["path"]),
                        line=int(m["line"]),
                        code=code,
                        log_line=i,
                    ),
                    ("mypy", m["path"], m["line"], msg),
                )
                return True
        if " - error: " in s:
            m = _PYRIGHT.match(s)
            if m:
                self.add(
                    Failure(
                        "types",
                        "pyright",
                        _clip(m["msg"]),
                        path=self.rel(m["path"]),
                        line=int(m["line"]),
                        code=m["code"],
                        log_line=i,
                    ),
                    ("pyright", m["path"], m["line"], m["msg"]),
                )
                return True
        if m := _LINT.match(s):
            code = m["code"]
            tool = self.lint_tool(s, m["msg"], bool(m["colon"]) and code[:1].isupper())
            if code == "unformatted":
                code = "format"
            self.add(
                Failure(
                    "lint",
                    tool,
                    _clip(_lint_message(m["code"], m["msg"])),
                    path=self.rel(m["path"]),
                    line=int(m["line"]),
                    code=code,
                    log_line=i,
                ),
                ("lint", m["path"], m["line"], m["col"], m["code"]),
            )
            return True
        if "-->" in s and (m := _ARROW.match(s)):
            for back in (1, 2):
                if i - back < 0:
                    break
                hm = _RUFF_HEAD.match(self.lines[i - back])
                if hm:
                    code = "format" if hm["code"] == "unformatted" else hm["code"]
                    self.add(
                        Failure(
                            "lint",
                            "ruff",
                            _clip(_lint_message(hm["code"], hm["msg"])),
                            path=self.rel(m["path"]),
                            line=int(m["line"]),
                            code=code,
                            log_line=i - back,
                        ),
                        ("lint", m["path"], m["line"], m["col"], hm["code"]),
                    )
                    return True
        return False

    def lint_tool(self, line: str, msg: str, pylint_style: bool) -> str:
        cmd = self.step_cmd
        for tool in ("ruff", "flake8", "pylint"):
            if tool in cmd:
                return tool
        if pylint_style:
            return "pylint"
        if "[*]" in line or "`" in msg or msg[:1].isupper():
            return "ruff"
        return "flake8"

    def module_not_found(self, i: int, s: str, module: str) -> None:
        path: str | None = None
        line: int | None = None
        for j in range(i - 1, max(-1, i - 40), -1):
            t = self.lines[j]
            m = _FILE_LINE.match(t) or _PY_LOC.match(t)
            if m:
                p = self.rel(m["path"])
                if not _external(p):
                    path, line = p, int(m["line"])
                    break
        text = s[s.index("ModuleNotFoundError") :]
        self.add(
            Failure(
                "dependency",
                "python",
                _clip(text),
                path=path,
                line=line,
                code="ModuleNotFoundError",
                log_line=i,
            ),
            ("module", module),
        )

    # -- merging --

    def failures(self) -> list[Failure]:
        out = list(self.found)
        out.extend(self.merge_pytest())
        steps_with_pytest = {
            step for f, step in out if f.tool == "pytest" or f.code == "pytest-timeout"
        }
        for n, i, step in self.finals:
            if step not in steps_with_pytest:
                steps_with_pytest.add(step)
                out.append(
                    (
                        Failure(
                            "test",
                            "pytest",
                            _clip(self.lines[i].strip("= ")),
                            code=f"{n} failed",
                            log_line=i,
                        ),
                        step,
                    )
                )
        timeouts = {step for f, step in out if f.code == "pytest-timeout" and f.test_id}
        # A cancellation following a timeout, a shutdown or a lost runner is its consequence.
        has_cause = any(f.kind == "infrastructure" and f.code != "canceled" for f, _ in out)
        result = []
        for f, step in out:
            if f.code == "canceled" and has_cause:
                continue
            if f.code == "pytest-timeout" and not f.test_id and step in timeouts:
                continue
            result.append(f)
        result.sort(key=lambda f: f.log_line)
        return result

    def merge_pytest(self) -> list[tuple[Failure, int]]:
        sections = [r for r in self.pytest if r.source == "section"]
        used: set[int] = set()
        merged: list[tuple[_PyRecord, _PyRecord | None]] = []
        ids: set[tuple[str, str, int]] = set()
        for r in self.pytest:
            if r.source != "summary" or r.test_id is None:
                continue
            key = (r.test_id, r.outcome, r.step)
            if key in ids:
                continue
            ids.add(key)
            match = None
            for k, sec in enumerate(sections):
                if k in used or sec.step != r.step or sec.outcome != r.outcome:
                    continue
                if sec.test_id == r.test_id or (
                    sec.suffix and r.test_id.endswith("::" + sec.suffix)
                ):
                    match = k
                    break
            if match is not None:
                used.add(match)
                merged.append((r, sections[match]))
            else:
                merged.append((r, None))
        for k, sec in enumerate(sections):
            if k in used:
                continue
            key = (sec.test_id or sec.suffix or str(sec.log_line), sec.outcome, sec.step)
            if key not in ids:
                ids.add(key)
                merged.append((sec, None))
        for r in self.pytest:
            if r.source == "verbose" and r.test_id:
                key = (r.test_id, r.outcome, r.step)
                if (
                    key not in ids
                    and (r.test_id, "FAILED" if r.outcome == "ERROR" else "ERROR", r.step)
                    not in ids
                ):
                    ids.add(key)
                    r.message = f"{r.outcome} (no details in the log)"
                    merged.append((r, None))
        out: list[tuple[Failure, int]] = []
        for rec, extra in merged:
            message = (extra.message if extra and extra.message else rec.message) or rec.outcome
            code = extra.code if extra and extra.code else rec.code
            path = extra.path if extra else rec.path
            line = extra.line if extra else rec.line
            test_id = rec.test_id or (extra.test_id if extra else None) or rec.suffix
            if _PYTEST_TIMEOUT_MSG.search(message):
                f = Failure(
                    "infrastructure",
                    "timeout",
                    _clip(message),
                    test_id=test_id,
                    path=path,
                    line=line,
                    code="pytest-timeout",
                    log_line=rec.log_line,
                )
            else:
                f = Failure(
                    "test",
                    "pytest",
                    _clip(message),
                    test_id=test_id,
                    path=path,
                    line=line,
                    code=code,
                    log_line=rec.log_line,
                )
            out.append((f, rec.step))
        return out


def _lint_message(code: str, msg: str) -> str:
    """ "F401 `os` imported but unused", or "invalid-syntax: Expected …" for a non-rule code."""
    return f"{code} {msg}" if code[:1].isupper() else f"{code}: {msg}"


def _ends_section(s: str) -> bool:
    if s.startswith("_"):
        return _HEADER.match(s) is not None
    return s.startswith(("===", "!!!", "##["))


def _looks_like_node_id(tid: str) -> bool:
    return "::" in tid or tid.rstrip().endswith((".py", ".pyi"))


def _is_test_file(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.startswith("test_") or base.endswith("_test.py") or base == "tests.py"


def _external(path: str) -> bool:
    return (
        path.startswith(("/", "<", "\\"))
        or (len(path) > 2 and path[1] == ":" and path[2] in "\\/")
        or "site-packages" in path
        or "dist-packages" in path
    )


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = text.strip().replace("\t", " ")
    if "\n" in text:
        text = text.split("\n", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _candidate_lines(text: str) -> list[int]:
    offsets: list[int] = []
    for needle, shift in _NEEDLES:
        offsets.extend(m.start() + shift for m in needle.finditer(text))
    offsets.sort()
    return _line_indices(text, offsets)


def parse_failures(log: LogText) -> list[Failure]:
    """Every failure the parsers recognise, in log order.

    The lines are joined once and searched for literal needles; only lines holding one are parsed,
    plus the lines of each pytest failure section (walked from its `____ name ____` header). The
    echoed script of a `##[group]Run …` block is never parsed as output.
    """
    parser = _Parser(log.lines)
    parser.run(_candidate_lines("\n".join(log.lines)))
    return parser.failures()


# --- classification -------------------------------------------------------------------------------

_PYTEST_COUNT = re.compile(r"(\d+) (failed|errors?)\b")
_MYPY_FOUND = re.compile(r"^Found (\d+) errors? in \d+ files?\b")
_RUFF_FOUND = re.compile(r"^Found (\d+) errors?(?: \(\d+ fixed, (\d+) remaining\))?\.$")
_REFORMAT_COUNT = re.compile(r"^(?:Oh no! .*)?(\d+) files? would be reformatted")


def classify(failures: list[Failure], log: LogText) -> Diagnosis:
    """Classify parsed failures; the rule is in this module's docstring.

    `failures` in the result are the ones that explain the failure (those inside failed steps,
    or all when none is), in log order. `failed_step` is the `##[group]Run …` step holding the
    first of them (else the first `##[error]` line); None without step markers, or when that
    step's header fell in the cut middle of a truncated log.
    """
    return _classify(failures, log, None)


def _step_starts(log: LogText) -> list[int]:
    """Line index of each step's `##[group]Run …` line (list.index: a C loop, not a Python one)."""
    starts: list[int] = []
    pos = 0
    for name in log.steps:
        try:
            pos = log.lines.index("##[group]" + name, pos)
        except ValueError:
            break
        starts.append(pos)
        pos += 1
    return starts


def _classify(failures: list[Failure], log: LogText, new: list[int] | None) -> Diagnosis:
    starts = _step_starts(log)

    def step_of(i: int) -> int:
        return bisect.bisect_right(starts, i) - 1

    failed_steps = {step_of(e) for e in log.error_lines}
    ordered = sorted(failures, key=lambda f: f.log_line)
    if starts and failed_steps:
        relevant = [f for f in ordered if step_of(f.log_line) in failed_steps]
    else:
        relevant = list(ordered)
    outside = bool(ordered) and not relevant
    if outside:
        relevant = list(ordered)
    confident = True
    category: Category
    if not relevant or outside:
        category = "unknown"
        confident = False
    else:
        infra = [f for f in relevant if f.kind == "infrastructure"]
        if infra:
            category = "infrastructure"
            net_steps = {step_of(f.log_line) for f in infra if f.code in ("network", "http-503")}
            code_failures = [
                f
                for f in relevant
                if f.kind != "infrastructure"
                and not (f.kind == "dependency" and step_of(f.log_line) in net_steps)
            ]
            if code_failures:
                confident = False
        else:
            first = step_of(relevant[0].log_line)
            in_step = [f for f in relevant if step_of(f.log_line) == first]
            if any(f.kind == "dependency" for f in in_step):
                category = "dependency"
            else:
                category = in_step[0].kind
            if not starts and len({f.kind for f in relevant}) > 1:
                confident = False
        if _counts_exceed(log, relevant, starts, step_of):
            confident = False
    explaining = [] if outside else relevant
    failed_step_index: int | None = None
    if starts:
        if explaining:
            failed_step_index = step_of(explaining[0].log_line)
        elif log.error_lines:
            failed_step_index = step_of(log.error_lines[0])
        if failed_step_index is not None and failed_step_index < 0:
            failed_step_index = None
        anchor = explaining[0].log_line if explaining else (log.error_lines or [0])[0]
        cut = _cut_line(log)
        if failed_step_index is not None and cut is not None:
            if starts[failed_step_index] < cut < anchor:
                failed_step_index = None  # the step's header was in the cut middle
    failed_step = log.steps[failed_step_index] if failed_step_index is not None else None
    command = None
    if failed_step and failed_step.startswith("Run "):
        command = failed_step[4:].strip() or None
    key = _key_lines(log, explaining, starts, failed_step_index, new)
    return Diagnosis(
        category=category,
        failures=relevant,
        confident=confident,
        key_lines=key,
        failed_step=failed_step,
        command=command,
        new_lines=new,
        truncated=log.truncated,
    )


def _cut_line(log: LogText) -> int | None:
    """Index of the "[… N bytes cut …]" line of a truncated log (it follows the ≤1 MiB head)."""
    if not log.truncated:
        return None
    for i in range(min(len(log.lines), HEAD_BYTES + 1)):
        if log.lines[i].startswith("[… ") and _CUT_MARK.match(log.lines[i]):
            return i
    return None


def _counts_exceed(
    log: LogText, failures: list[Failure], starts: list[int], step_of: _StepOf
) -> bool:
    """True when a tool's own count near a step's end exceeds the failures parsed for it."""
    lines = log.lines
    if starts and log.error_lines:
        windows: list[tuple[int, int, int]] = []
        done: set[int] = set()
        for e in log.error_lines:
            step = step_of(e)
            if step in done:
                continue
            done.add(step)
            lo = starts[step] if step >= 0 else 0
            windows.append((step, max(lo, e - COUNT_WINDOW), e))
    else:
        windows = [(-2, max(0, len(lines) - COUNT_WINDOW), len(lines))]
    for step, lo, hi in windows:
        mine = [f for f in failures if step == -2 or step_of(f.log_line) == step]
        tests = sum(1 for f in mine if f.test_id and f.tool in ("pytest", "timeout"))
        mypy = sum(1 for f in mine if f.tool == "mypy")
        lint = sum(1 for f in mine if f.kind == "lint" and f.code != "format")
        fmt = sum(1 for f in mine if f.code == "format")
        for s in lines[lo:hi]:
            if not s[:1].isalnum() and not s.startswith("="):
                continue
            if (m := _PYTEST_FINAL.match(s)) and sum(
                int(n) for n, _ in _PYTEST_COUNT.findall(m["body"])
            ) > tests:
                return True
            if (m := _MYPY_FOUND.match(s)) and int(m[1]) > mypy:
                return True
            if (m := _RUFF_FOUND.match(s)) and int(m[2] or m[1]) > lint:
                return True
            if (m := _REFORMAT_COUNT.match(s)) and int(m[1]) > fmt:
                return True
    return False


def _key_lines(
    log: LogText,
    relevant: list[Failure],
    starts: list[int],
    step: int | None,
    new: list[int] | None,
) -> list[str]:
    lines = log.lines
    lo = starts[step] if step is not None else 0
    hi = starts[step + 1] if step is not None and step + 1 < len(starts) else len(lines)
    errors = [e for e in log.error_lines if lo <= e < hi][:3] or log.error_lines[:3]
    newset = set(new) if new is not None else None
    pool: list[int]
    if relevant:
        pool = [f.log_line for f in relevant] + errors
        if newset is not None:
            pool.sort(key=lambda i: i not in newset)  # stable: new lines first
    else:
        # Nothing recognised: the step's last output lines before its error (never the echoed
        # script); with a passing log, only the new ones when there are any.
        end = errors[0] if errors else len(lines)
        before: list[int] = []
        for i in range(end - 1, max(lo, end - 200) - 1, -1):
            if lines[i].startswith("##["):
                if lines[i].startswith(("##[endgroup]", "##[group]Run ")):
                    break
                continue
            if lines[i].strip():
                before.append(i)
        if newset is not None and any(i in newset for i in before):
            before = [i for i in before if i in newset]
        pool = errors + before[: MAX_KEY_LINES - len(errors)]
    chosen: list[int] = []
    texts: set[str] = set()
    for i in pool:
        if not 0 <= i < len(lines) or lines[i] in texts:
            continue
        texts.add(lines[i])
        chosen.append(i)
        if len(chosen) >= MAX_KEY_LINES:
            break
    return [_clip(lines[i], MAX_KEY_LINE_CHARS) for i in sorted(chosen)]


# --- new lines (the CiDiff idea) ------------------------------------------------------------------

_NORMALISE = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"  # timestamps
    r"|\b\d{1,2}:\d\d:\d\d(?:[.,]\d+)?\b"  # clock times, eta 0:00:01
    r"|(?:/home/runner/work/_temp|/tmp|/private/var/folders|/var/folders)/[^\s'\":,;)\]]*"
    r"|[A-Za-z]:\\(?:[^\s\\]+\\)*?(?:Temp|_temp)\\[^\s'\":]*"  # temp paths
    r"|\[\s*\d{1,3}%\]"  # pytest [ 45%]
    r"|\b\d+(?:\.\d+)?\s?%"  # progress percentages
    r"|0x[0-9a-fA-F]+"  # addresses
    r"|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"  # uuids
    r"|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{7,}\b"  # shas, hex ids, long numbers (run/job ids)
    r"|(?i:\b(?:run|job|attempt|runner)[ _-]?id\b)[=:# ]*\d+"  # "run_id=123", "Job ID: 4"
    r"|/(?:runs|jobs|job|attempts)/\d+"  # .../actions/runs/123/job/456
    r"|\b\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\b"
)


def _normalise(line: str) -> str:
    """The comparable form of a line: volatile tokens replaced by one placeholder (idempotent)."""
    return _NORMALISE.sub("<*>", line).strip()


def new_lines(failing: LogText, passing: LogText) -> list[int]:
    """Indices of failing-log lines whose normalised form never occurs in the passing log.

    Lines are compared after normalisation (timestamps, durations, hex ids/shas of 7+ characters,
    temp paths, run/job ids, percentages, pytest's `[ 45%]`). Blank lines are never new.

    Speed: most lines of two runs of one workflow are identical verbatim, so a line that occurs
    verbatim in the passing log is shared without being normalised. Only the rest is normalised
    and looked up among the passing lines that do not occur verbatim in the failing log
    (normalised) and the verbatim passing set. This equals comparing every normalised line except
    in one corner: a failing line whose normalised form matches only passing lines that also
    occur verbatim in the failing log is reported as new.
    """
    seen = set(passing.lines)
    lines = failing.lines
    candidates = [i for i, s in enumerate(lines) if s not in seen]
    candidates = [i for i in candidates if lines[i].strip() and not _CUT_MARK.match(lines[i])]
    if not candidates:
        return []
    in_failing = set(lines)
    normal = {_normalise(p) for p in seen if p not in in_failing}
    out: list[int] = []
    for i in candidates:
        n = _normalise(lines[i])
        if n and n not in normal and n not in seen:
            out.append(i)
    return out


def diagnose(
    data: bytes | str, passing: bytes | str | None = None, *, max_bytes: int = MAX_BYTES
) -> Diagnosis:
    """clean_log + parse_failures + classify; with a passing log of the same workflow, also the
    lines new in the failing one (key lines then prefer them)."""
    log = clean_log(data, max_bytes=max_bytes)
    failures = parse_failures(log)
    new = None
    if passing is not None:
        new = new_lines(log, clean_log(passing, max_bytes=max_bytes))
    return _classify(failures, log, new)
