"""Deterministic diagnosis of a failing CI job log, for every ecosystem the parsers know.

`diagnose(log_bytes, passing_log_bytes)` cleans the log (timestamps, the ``gh run view --log``
job/step prefix, ANSI colour, CRLF, BOM, invalid UTF-8, size cap), runs every per-tool parser of
`bot.logparsers` (pytest, ruff, mypy, pip, Maven, Gradle, go test, jest, tsc, cargo, Docker,
Terraform, the runner's own trouble, …), classifies the job and ranks the log lines by how likely
each is the cause, so that a model is asked only when the parsers leave it ambiguous
(`confident=False`). Everything here is a pure function of its input: no I/O, no model, no GitHub.

Speed. A job log can be tens of MB, almost all of it passing noise, and ~30 parsers bring ~150
literal needles: one scan per needle would be far too slow. `find_lines` finds every needle in
one pass with NumPy: each needle is looked up by its rarest two-byte gram (rarity measured on a
sample of the log), the log's bytes are read as two arrays of 16-bit grams (even and odd
offsets) and one table look-up per gram gives the candidate offsets, which are verified needle by
needle, vectorised. The parsers then get only the lines holding their needles (echoed `run:`
scripts excluded). The search runs on the downloaded bytes themselves when cleaning cannot change
what a needle sees (no ANSI escape, no CR, not cut), else on the cleaned text.

Classification (`classify`):

1. Findings come in three sorts: the tools' (test, lint, format, types, compile, dependency,
   timeout), the runner's (infrastructure) and bare annotations (unknown).
2. The failed steps (those holding an ``##[error]`` line; the whole log without step markers)
   decide: their tool findings give the category — in the first failed step that has any, a
   dependency failure wins (it explains the rest), else the kind of its first finding.
3. Infrastructure is one more finding, never a mask: beside tool findings it is reported and the
   run is not confident; it decides only when it is all there is.
4. Findings only in steps that passed (an earlier step that printed the cause but exited 0) are
   key lines, but the category is "unknown" and not confident.
5. Not confident either when kinds are mixed without step markers, or when a tool's own count
   ("3 failed", "Found 4 errors") is higher than the failures parsed for it.

Key lines (`rank_lines`), best first: tool findings (in a failed step first, then the category's
own, then lines new against the passing run), then the runner's findings, then error annotations
other than the generic "Process completed with exit code N.", then lines new against the passing
run, then lines with a generic error word (error, fail, fatal, exception, panic) that are not
passing noise (``ok pkg 0.02s``, ``go: downloading``, ``[INFO] Downloading``), then lines with
a weaker failure word ("cannot", "could not", "not found", "No such file", "is not set",
"would be reformatted", a failed-test glyph ``✕``) or a diagnostic's shape
(``path:line:col: message``, ``E711 …``) near the end of a failed step. A guess's shape moves
it: an error word or glyph first or a location up; a summary or heading ("2 failing", " 2 fail",
"What went wrong:", TAP's "# fail 1", a status word and a path alone: ``FAIL src/a.test.js``,
``x.tftest.hcl... fail``), a stack frame (``[ERROR] at java.base/…``, ``at ./src/lib.rs:6:5``),
echoed code or a compiler's source excerpt (``  5 | #include "x.h"``, a caret line), a warning
or note, a trailer or aftermath ("make: *** …", "see above for more details", "ld returned 1
exit status", "Configuring incomplete, errors occurred!", "There are test failures.") down; a line
only new against the passing run, with no failure word or diagnostic's shape, down too. Few lines
are shown: when tools explain the failure, only their lines (and the runner's); otherwise up to
three close to the best guess, one per message (a message repeated in another line's, as an
exception's and the summary line naming its test, is shown once, by the copy with a location),
after the first none without a failure word or a diagnostic's shape, and never the runner's
bare "Process completed with exit code N." beside another line.
"""

from __future__ import annotations

import bisect
import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.logparsers import LogParser, parsers
from bot.logparsers.base import CATEGORIES, MAX_MESSAGE_CHARS, Category, Failure, line_index

__all__ = [
    "CATEGORIES",
    "MAX_MESSAGE_CHARS",
    "Category",
    "Diagnosis",
    "Failure",
    "Haystack",
    "LogText",
    "classify",
    "clean_log",
    "diagnose",
    "find_lines",
    "new_lines",
    "parse_failures",
]

_log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024
#: Bytes kept from the start of an over-long log; the rest of max_bytes is kept from its end.
HEAD_BYTES = 1024 * 1024
#: Key lines shown at most (tools' findings); fewer when nothing was recognised.
MAX_KEY_LINES = 10
#: Key lines when no tool explains the failure (annotations, new lines, error words): a reader
#: looks at the first few, and every wrong one costs precision.
MAX_GUESS_LINES = 3
#: Guesses scoring this much below the best one are not shown.
GUESS_BAND = 10.0
#: How much lower a line new against the passing run ranks when it has no failure word and no
#: diagnostic's shape (a changed count, a command echo, a build step): below the error lines.
NEW_ONLY_PENALTY = 10.0
#: Key lines longer than this are shortened (a minified JSON line does not belong in a comment).
MAX_KEY_LINE_CHARS = 1000
#: Lines before a step's `##[error]` line searched for the tools' own failure counts.
COUNT_WINDOW = 80
#: Generic error-word lines examined per step (the last ones).
MAX_WORD_LINES_PER_STEP = 200

#: Runner findings that make a dependency failure in the same step its consequence.
_NETWORK_CODES = frozenset({"network", "http-503", "http-502"})
#: Kinds that, printed by a step that passed, still explain a later failed step.
_SWALLOWED_KINDS = frozenset({"compile", "dependency", "test"})
CODE_KINDS: frozenset[str] = frozenset(
    {"test", "lint", "format", "types", "compile", "dependency", "timeout"}
)


@dataclass(frozen=True)
class Haystack:
    """Bytes to search, their newline offsets, each line's start and the length of its runner
    prefix (timestamp, `gh run view --log` columns) that cleaning removes."""

    data: bytes
    newlines: np.ndarray
    starts: np.ndarray
    prefix: np.ndarray

    @classmethod
    def of(cls, data: bytes, *, timestamps: bool = False, columns: bool = False) -> Haystack:
        a = np.frombuffer(data, np.uint8)
        n = len(a)
        newlines = np.flatnonzero(a == 10)
        starts = np.concatenate((np.zeros(1, np.int64), newlines + 1))
        ends = np.concatenate((newlines, np.full(1, n, np.int64)))
        off = starts
        if columns and n:
            tabs = np.flatnonzero(a == 9)
            if len(tabs) >= 2:
                k = np.searchsorted(tabs, starts)
                t1 = tabs[np.minimum(k, len(tabs) - 1)]
                t2 = tabs[np.minimum(k + 1, len(tabs) - 1)]
                ok = (k + 1 < len(tabs)) & (t1 >= starts) & (t2 < ends) & (t2 > t1)
                off = np.where(ok, t2 + 1, starts)
        prefix = off - starts
        if timestamps and n:

            def at(d: int) -> np.ndarray:
                return a[np.minimum(off + d, n - 1)]

            ts = (off + 28 <= ends) & (at(4) == 45) & (at(10) == 84) & (at(27) == 90)
            bare = off + 28 == ends
            ts &= bare | (at(28) == 32)
            prefix = prefix + np.where(ts, np.where(bare, 28, 29), 0)
        return cls(data, newlines, starts, prefix)

    def lines_of(self, offsets: np.ndarray) -> np.ndarray:
        """Sorted distinct line indices of byte `offsets`, those inside a prefix left out."""
        if not len(offsets):
            return np.zeros(0, np.int64)
        line = np.searchsorted(self.newlines, offsets, side="left")
        keep = offsets - self.starts[line] >= self.prefix[line]
        return np.unique(line[keep])


@dataclass
class LogText:
    lines: list[str]
    truncated: bool
    bytes_read: int
    #: The steps' names ("Run pytest -v", or the `gh run view --log` step column).
    steps: list[str]
    error_lines: list[int]
    #: Line index where each of `steps` starts.
    step_starts: list[int] = field(default_factory=list)
    #: (first, end) line ranges of the echoed `run:` scripts (never tool output).
    echo: list[tuple[int, int]] = field(default_factory=list)
    #: The bytes whose "\n"-separated lines are `lines` before cleaning, for the needle search
    #: (with where each line's runner prefix ends, so a needle never matches a timestamp).
    search: Haystack | None = field(default=None, repr=False, compare=False)


@dataclass
class Diagnosis:
    category: Category
    failures: list[Failure]
    confident: bool
    #: The lines most likely to show the cause, best first.
    key_lines: list[str]
    failed_step: str | None
    #: The failed step's command as the log shows it ("Run X" → "X").
    command: str | None
    new_lines: list[int] | None
    truncated: bool
    #: A narrow command reproducing the failure (`go test ./pkg -run '^TestX$'`), when the
    #: failed step's command says how; else the step's command; None without one.
    reproduce: str | None = None

    def summary(self) -> str:
        """One line for a comment or a log, e.g. "2 failing tests (pytest): tests/test_a.py::…"."""
        main = [f for f in self.failures if f.kind == self.category]
        others = [f for f in self.failures if f.kind != self.category and f.kind != "unknown"]
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


_NOUNS = {
    "test": ("failing test", "failing tests"),
    "lint": ("lint error", "lint errors"),
    "format": ("unformatted file", "unformatted files"),
    "types": ("type error", "type errors"),
    "compile": ("compile error", "compile errors"),
    "dependency": ("dependency failure", "dependency failures"),
    "infrastructure": ("infrastructure failure", "infrastructure failures"),
    "timeout": ("timeout", "timeouts"),
}


def _count_label(kind: str, n: int) -> str:
    one, many = _NOUNS.get(kind, ("failure", "failures"))
    return f"{n} {one if n == 1 else many}"


def _short(f: Failure) -> str:
    if f.test_id:
        return f.test_id
    if f.kind in ("lint", "types", "compile", "format") and f.path:
        loc = f"{f.path}:{f.line}" if f.line is not None else f.path
        return f"{loc} {f.code}" if f.code else loc
    return f.message


def _key_text(line: str) -> str:
    """A key line as printed (indentation kept), shortened past MAX_KEY_LINE_CHARS."""
    line = line.rstrip()
    return line if len(line) <= MAX_KEY_LINE_CHARS else line[: MAX_KEY_LINE_CHARS - 1] + "…"


# --- cleaning -------------------------------------------------------------------------------------

_TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z(?: |$)")
_TS_WIDTH = 29  # "2026-11-24T04:19:48.1234567Z "
#: `gh run view --log`: "<job>\t<step>\t<timestamp> <line>".
_PREFIX_RE = re.compile(r"[^\t\n]*\t[^\t\n]*\t(?=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
# CSI (colours, cursor), OSC (titles, hyperlinks), charset selection (mypy's "ESC ( B"), others.
# … and APC strings (Buildkite's per-line "ESC _bk;t=1705314680123 BEL" timestamps).
_ANSI_RE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]_][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[()*+][0-9A-Za-z]"
    r"|[@-_=>78])"
)
#: Other CI systems' per-line prefixes, stripped when most of a log's first lines carry one:
#: Jenkins' Timestamper ("[2024-01-15T10:31:20.101Z] ", "[10:31:20] ", "10:31:20  "), GitLab's
#: ("2024-01-15T10:31:20.123456Z 01O "), and a bare ISO date-time.
_OTHER_PREFIXES = tuple(
    (re.compile(p), share)
    for p, share in (
        (r"\[\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\] ?", 0.3),
        (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? ", 0.3),
        (r"\[\d\d:\d\d:\d\d(?:[.,]\d+)?\] ?", 0.6),
        (r"\d\d:\d\d:\d\d(?:[.,]\d+)? ", 0.6),
    )
)
#: GitLab's stream marker after its timestamp ("01O ", "00E+ ").
_GITLAB_STREAM = re.compile(r"\d\d[OE]\+? ?")
_CUT_MARK = re.compile(r"^\[… \d+ bytes cut …\]$")
_RUNNER_NEEDLE = re.compile(re.escape("##["))
_STEP = "##[group]Run "
#: Lines of a step's echoed script at most (its `##[endgroup]` normally comes first).
MAX_ECHO_LINES = 1000


def clean_log(data: bytes | str, *, max_bytes: int = MAX_BYTES) -> LogText:
    """Decode and clean a job log: one entry per line, without timestamps and ANSI escapes.

    Accepts the Actions download (every line prefixed with an ISO timestamp), what
    ``gh run view --log`` prints (``<job>\\t<step>\\t<timestamp> <line>``: the prefix is removed
    and, without ``##[group]Run`` markers, the steps are taken from its step column) and plain
    tool output. Invalid UTF-8 is replaced, a BOM dropped, CRLF and bare CR (progress bars: the
    text after the last CR wins) handled. Over `max_bytes`, the first min(1 MiB, max_bytes/2) and
    the last rest of `max_bytes` are kept, both shortened to whole lines (a line cut in half at an
    edge is dropped, so it cannot parse as a bogus failure), with "[… N bytes cut …]" between.
    `bytes_read` is the size of the input in bytes, before any cut.
    """
    if max_bytes < 2:
        raise ValueError("max_bytes must be at least 2")
    truncated = False
    haystack: bytes | None = None
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
            if b"\x1b" not in data and b"\r" not in data:
                haystack = data  # cleaning keeps its lines and what the needles see in them
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    bare_cr = False
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        bare_cr = "\r" in text
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    runner_lines = line_index(text, [m.start() for m in _RUNNER_NEEDLE.finditer(text)])
    if haystack is None:
        haystack = text.encode("utf-8", "surrogatepass")
    lines = text.split("\n")
    del text
    if lines and lines[-1] == "":
        lines.pop()
    if bare_cr:
        for i, line in enumerate(lines):
            if "\r" in line:
                line = line.rstrip("\r")
                lines[i] = line[line.rfind("\r") + 1 :]
    step_column: list[str] | None = None
    columns = _has_prefix(lines)
    if columns:
        lines, step_column = _strip_prefix(lines)
    timestamps = _has_timestamps(lines)
    found = Haystack.of(haystack, timestamps=timestamps, columns=columns)
    search: Haystack | None = found
    del haystack
    if timestamps:
        n = len(lines)
        prefix = found.prefix[:n]
        if not columns and not bare_cr and int(np.count_nonzero(prefix)) == n:
            lines = [s[_TS_WIDTH:] for s in lines]  # every line has the 29-character stamp
        else:
            strip = _strip_timestamp
            lines = [
                s[_TS_WIDTH:] if s[27:29] == "Z " and s[10:11] == "T" else strip(s) for s in lines
            ]
    other = _other_prefix(lines, _GITLAB_STREAM if timestamps else None)
    if other is not None and not columns:
        match = other.match
        lines = [s[m.end() :] if (m := match(s)) else s for s in lines]
        search = None  # searched in the cleaned lines: the prefixes would hit the needles
    steps: list[str] = []
    starts: list[int] = []
    error_lines: list[int] = []
    echo: list[tuple[int, int]] = []
    open_echo: int | None = None
    for i in runner_lines:
        if i >= len(lines):
            break
        line = lines[i]
        if line.startswith(_STEP):
            if open_echo is not None:
                echo.append((open_echo, min(i, open_echo + MAX_ECHO_LINES)))
            steps.append(line[9:])
            starts.append(i)
            open_echo = i + 1
        elif line.startswith("##[endgroup]"):
            if open_echo is not None:
                echo.append((open_echo, min(i, open_echo + MAX_ECHO_LINES)))
                open_echo = None
        elif line.startswith("##[error]"):
            error_lines.append(i)
    if open_echo is not None:
        echo.append((open_echo, min(len(lines), open_echo + MAX_ECHO_LINES)))
    if not steps and step_column:
        steps, starts = _steps_from_column(step_column)
    return LogText(lines, truncated, size, steps, error_lines, starts, echo, search)


def _has_prefix(lines: Sequence[str]) -> bool:
    """True when the first non-empty lines carry the `gh run view --log` prefix."""
    seen = 0
    for line in lines[:50]:
        if not line:
            continue
        if _PREFIX_RE.match(line):
            return True
        seen += 1
        if seen >= 3:
            return False
    return False


def _strip_prefix(lines: list[str]) -> tuple[list[str], list[str]]:
    """The lines without their "<job>\\t<step>\\t" prefix, and each line's step column."""
    out: list[str] = []
    column: list[str] = []
    step = ""
    for s in lines:
        a = s.find("\t")
        b = s.find("\t", a + 1) if a >= 0 else -1
        if b > 0 and s[b + 1 : b + 2].isdigit():
            step = s[a + 1 : b]
            s = s[b + 1 :]
        out.append(s)
        column.append(step)
    return out, column


def _steps_from_column(column: list[str]) -> tuple[list[str], list[int]]:
    steps: list[str] = []
    starts: list[int] = []
    prev: str | None = None
    for i, name in enumerate(column):
        if name != prev:
            prev = name
            if name and name not in ("Set up job", "Complete job") and not name.startswith("Post "):
                steps.append(name)
                starts.append(i)
    return steps, starts


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


def _other_prefix(
    lines: Sequence[str], only: re.Pattern[str] | None = None
) -> re.Pattern[str] | None:
    """The other CI system's line prefix that enough of the first non-empty lines carry (a
    third for a date-time, which a tool rarely starts its lines with; most for a bare clock,
    and for `only`, the one pattern to try)."""
    sample = [s for s in lines[:400] if s][:60]
    if len(sample) < 3:
        return None
    for pattern, share in ((only, 0.6),) if only else _OTHER_PREFIXES:
        if sum(1 for s in sample if pattern.match(s)) >= share * len(sample):
            return pattern
    return None


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


# --- finding the needles ------------------------------------------------------------------------

#: Bytes of the log sampled to measure how rare each two-byte gram is.
_SAMPLE_BLOCK = 1 << 15
_SAMPLE_BLOCKS = 32


def find_lines(
    haystack: bytes | Haystack,
    needles: Sequence[str],
    patterns: Sequence[re.Pattern[str]] = (),
) -> dict[str, np.ndarray]:
    """For each needle (and pattern, keyed by its source), the sorted distinct indices of the
    "\n"-separated lines of `haystack` holding it (a needle starting with newlines marks the
    line after them; a match inside a line's runner prefix does not count). One vectorised pass
    finds all needles (see the module docstring)."""
    hay = haystack if isinstance(haystack, Haystack) else Haystack.of(haystack)
    data = hay.data
    a = np.frombuffer(data, np.uint8)
    out: dict[str, np.ndarray] = {}
    encoded = {s: s.encode("utf-8", "surrogatepass") for s in dict.fromkeys(needles) if s}
    long = {s: b for s, b in encoded.items() if len(b) >= 2}
    for s, b in encoded.items():
        if len(b) < 2:
            offsets = [m.start() for m in re.finditer(re.escape(b), data)]
            out[s] = hay.lines_of(np.asarray(offsets, np.int64))
    found = _gram_search(data, a, long) if long and len(a) >= 2 else {}
    for s in long:
        starts = found.get(s, np.zeros(0, np.int64))
        lead = len(encoded[s]) - len(encoded[s].lstrip(b"\n"))
        out[s] = hay.lines_of(starts + lead)
    for p in dict.fromkeys(patterns):
        try:
            bp = re.compile(p.pattern.encode("ascii"), p.flags & ~re.UNICODE)
            offsets = [m.start() for m in bp.finditer(data)]
        except (UnicodeEncodeError, re.error, ValueError):
            text = data.decode("utf-8", "replace")
            starts_s = [m.start() for m in p.finditer(text)]
            offsets = [len(text[:o].encode("utf-8", "surrogatepass")) for o in starts_s]
        out[p.pattern] = hay.lines_of(np.asarray(offsets, np.int64))
    return out


def _gram_search(
    haystack: bytes, a: np.ndarray, needles: dict[str, bytes]
) -> dict[str, np.ndarray]:
    """Start offsets of every occurrence of each needle (2+ bytes) in `a`."""
    n = len(a)
    step = max(_SAMPLE_BLOCK, n // _SAMPLE_BLOCKS)
    sample = np.concatenate([a[i : i + _SAMPLE_BLOCK] for i in range(0, n, step)])
    if len(sample) >= 2:
        freq = np.bincount(
            sample[:-1].astype(np.uint16) | (sample[1:].astype(np.uint16) << 8), minlength=65536
        )
    else:
        freq = np.zeros(65536, np.int64)
    table = np.zeros(65536, bool)
    chosen: dict[str, tuple[int, int]] = {}
    for s, b in needles.items():
        gram, off = min(
            ((b[i] | (b[i + 1] << 8), i) for i in range(len(b) - 1)), key=lambda g: freq[g[0]]
        )
        chosen[s] = (gram, off)
        table[gram] = True
    parts = []
    even = np.frombuffer(haystack, "<u2", count=n // 2)
    parts.append(np.flatnonzero(table[even]) * 2)
    if n >= 3:
        odd = np.frombuffer(haystack, "<u2", count=(n - 1) // 2, offset=1)
        parts.append(np.flatnonzero(table[odd]) * 2 + 1)
    cand = np.concatenate(parts)
    keys = a[cand].astype(np.uint16) | (a[cand + 1].astype(np.uint16) << 8)
    order = np.argsort(keys, kind="stable")
    cand, keys = cand[order], keys[order]
    out: dict[str, np.ndarray] = {}
    for s, (gram, off) in chosen.items():
        b = needles[s]
        lo, hi = np.searchsorted(keys, [gram, gram + 1])
        starts = cand[lo:hi] - off
        starts = starts[(starts >= 0) & (starts + len(b) <= n)]
        if len(starts):
            ok = np.ones(len(starts), bool)
            for j, byte in enumerate(b):
                if j != off and j != off + 1:
                    ok &= a[starts + j] == byte
            starts = np.sort(starts[ok])
        out[s] = starts
    return out


# --- parsing --------------------------------------------------------------------------------------

#: Generic error words (the last tier of key lines), searched with the parsers' needles.
_WORD_NEEDLES = (
    "error",
    "Error",
    "ERROR",
    "fail",
    "Fail",
    "FAIL",
    "fatal",
    "Fatal",
    "FATAL",
    "xception",
    "panic",
    "Panic",
    "PANIC",
    "not ok ",
    "ERR_",
)
#: Failure words that are not "error": "cannot stat", "Could not find", "No such file", "not
#: found". Weaker than the error words (a guess scores lower for them).
_WEAK_NEEDLES = (
    "annot ",
    "ould not",
    "ouldn't",
    "nable to",
    "o such ",
    "not found",
    "Not found",
    "NOT FOUND",
    "denied",
    "issing",
    "nvalid",
    "ndefined",
    "nresolved",
    "refused",
    "imed out",
    "xceeded",
    "would reformat",
    "would be ",
    "would have been ",
    "not set",
    "diff --git ",
    "●",
    "✕",
    "✗",
    "✘",
    "❌",
)


@dataclass
class _Scan:
    """What one search over a log found: the parsers' findings, the generic parsers' (bare
    annotations: ranked as key lines, not failures) and the error-word lines."""

    failures: list[Failure]
    notes: list[Failure]
    word_lines: np.ndarray


def _haystack(log: LogText) -> Haystack:
    hay = log.search
    if hay is not None and len(hay.newlines) in (len(log.lines), len(log.lines) - 1):
        return hay
    return Haystack.of("\n".join(log.lines).encode("utf-8", "surrogatepass"))


def _echo_mask(log: LogText, hits: np.ndarray) -> np.ndarray:
    if not log.echo or not len(hits):
        return np.ones(len(hits), bool)
    first = np.asarray([a for a, _ in log.echo], np.int64)
    end = np.asarray([b for _, b in log.echo], np.int64)
    k = np.searchsorted(first, hits, side="right") - 1
    inside = (k >= 0) & (hits < end[np.maximum(k, 0)])
    return ~inside


def _scan(log: LogText, registry: Sequence[LogParser] | None = None) -> _Scan:
    registry = parsers() if registry is None else registry
    needles: list[str] = [*_WORD_NEEDLES, *_WEAK_NEEDLES]
    patterns: list[re.Pattern[str]] = []
    for p in registry:
        needles.extend(p.needles)
        patterns.extend(getattr(p, "patterns", ()))
    found = find_lines(_haystack(log), needles, patterns)
    n = len(log.lines)
    keep_cache: dict[str, np.ndarray] = {}

    def lines_of(key: str) -> np.ndarray:
        if key not in keep_cache:
            hits = found.get(key, np.zeros(0, np.int64))
            hits = hits[hits < n]
            keep_cache[key] = hits[_echo_mask(log, hits)]
        return keep_cache[key]

    failures: list[tuple[Failure, bool]] = []
    for p in registry:
        keys = [*p.needles, *(q.pattern for q in getattr(p, "patterns", ()))]
        arrays = [lines_of(k) for k in dict.fromkeys(keys)]
        hits = np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.int64)
        if not len(hits):
            continue
        try:
            got = list(p.parse(log.lines, hits.tolist()))
        except Exception:  # one broken parser must not stop the diagnosis
            _log.exception("log parser %s failed", p.name)
            continue
        generic = bool(getattr(p, "generic", False))
        failures.extend((f, generic) for f in got if 0 <= f.log_line < n)
    words = np.unique(np.concatenate([lines_of(k) for k in (*_WORD_NEEDLES, *_WEAK_NEEDLES)]))
    resolved = _resolve(failures)
    notes = [f for f in resolved if f.kind == "unknown"]
    return _Scan([f for f in resolved if f.kind != "unknown"], notes, words)


def _resolve(found: list[tuple[Failure, bool]]) -> list[Failure]:
    """One line, one cause: where a tool's finding and the runner's or a bare annotation's
    share a line (a Maven resolution error mentioning a 503), the tool's is kept; identical
    findings from two parsers are kept once."""
    by_line: dict[int, list[tuple[Failure, bool]]] = {}
    for item in found:
        by_line.setdefault(item[0].log_line, []).append(item)
    out: list[Failure] = []
    for items in by_line.values():
        specific = [f for f, generic in items if not generic and f.kind in CODE_KINDS]
        infra = [f for f, generic in items if not generic and f.kind not in CODE_KINDS]
        rest = [f for f, generic in items if generic]
        keep = specific or infra or rest
        seen: set[tuple[object, ...]] = set()
        for f in keep:
            key = (f.kind, f.test_id, f.path, f.line, f.code, f.message)
            if key not in seen:
                seen.add(key)
                out.append(f)
    out.sort(key=lambda f: f.log_line)
    return out


def parse_failures(log: LogText) -> list[Failure]:
    """Every failure the registry's parsers recognise, in log order.

    The log is searched once for every parser's needles; each parser gets the lines holding its
    own (the echoed script of a `##[group]Run …` block excluded) and may read around them."""
    return _scan(log).failures


# --- classification -------------------------------------------------------------------------------

_PYTEST_FINAL = re.compile(r"^=*\s*(?P<body>\d+ [a-z]+(?:, \d+ [a-z]+)*) in \d+(?:\.\d+)?s\b")
_PYTEST_COUNT = re.compile(r"(\d+) (failed|errors?)\b")
_MYPY_FOUND = re.compile(r"^Found (\d+) errors? in \d+ files?\b")
_RUFF_FOUND = re.compile(r"^Found (\d+) errors?(?: \(\d+ fixed, (\d+) remaining\))?\.$")
_REFORMAT_COUNT = re.compile(r"^(?:Oh no! .*)?(\d+) files? would be reformatted")


class _Steps:
    """Which step each line is in, and which steps failed."""

    def __init__(self, log: LogText) -> None:
        self.starts = log.step_starts
        self.failed = {self.of(e) for e in log.error_lines} if self.starts else set()

    def of(self, i: int) -> int:
        return bisect.bisect_right(self.starts, i) - 1

    def in_failed(self, i: int) -> bool:
        """Whether line `i` is in a failed step (every line is, without step markers)."""
        return not self.starts or not self.failed or self.of(i) in self.failed


def classify(failures: list[Failure], log: LogText) -> Diagnosis:
    """Classify parsed failures and rank the key lines; the rules are in the module docstring.

    `failures` in the result are the ones that explain the failure (those inside failed steps,
    or all when none is), in log order. `failed_step` is the step holding the first of them
    (else the first `##[error]` line); None without step markers, or when that step's header
    fell in the cut middle of a truncated log.
    """
    return _classify(failures, log, None, None, [])


def _classify(
    failures: list[Failure],
    log: LogText,
    new: list[int] | None,
    words: np.ndarray | None,
    notes: list[Failure],
) -> Diagnosis:
    steps = _Steps(log)
    ordered = sorted(failures, key=lambda f: f.log_line)
    relevant = [f for f in ordered if steps.in_failed(f.log_line)]
    outside = bool(ordered) and not relevant
    if outside:
        relevant = list(ordered)
    code = [f for f in relevant if f.kind in CODE_KINDS]
    infra = [f for f in relevant if f.kind == "infrastructure"]
    confident = True
    category: Category
    net_steps: dict[int, int] = {}  # step → its first network trouble line
    for f in infra:
        if f.code in _NETWORK_CODES:
            net_steps.setdefault(steps.of(f.log_line), f.log_line)
    swallowed = [
        f for f in ordered if f.kind in _SWALLOWED_KINDS and not steps.in_failed(f.log_line)
    ]
    if outside and swallowed:
        # Only steps that passed printed failures: a build or install whose failure was
        # swallowed (`| tee`, `|| true`) explains the later failed step; lint warnings do not.
        category = swallowed[0].kind
        confident = False
        code = []
    elif outside or not (code or infra):
        category = "unknown"
        confident = False
    elif code and all(
        f.kind == "dependency" and net_steps.get(steps.of(f.log_line), 1 << 62) < f.log_line
        for f in code
    ):
        # The tool retried over a failing network, then gave up resolving: the network is the
        # cause. (A resolution error that names the network trouble itself — Maven's "503",
        # cargo's "Caused by: Could not resolve host" after it — stays a dependency failure.)
        category = "infrastructure"
    elif code:
        first = steps.of(code[0].log_line)
        in_step = [f for f in code if steps.of(f.log_line) == first]
        earlier = [f for f in swallowed if f.kind == "dependency" and f.log_line < code[0].log_line]
        if any(f.kind == "dependency" for f in in_step):
            category = "dependency"
        elif earlier:
            category = "dependency"  # an install that failed earlier explains what follows
            confident = False
        else:
            category = in_step[0].kind
        if infra:
            confident = False  # both may be real: reported side by side
        if not steps.starts and len({f.kind for f in code}) > 1:
            confident = False
    else:
        category = "infrastructure"
    if confident and _counts_exceed(log, relevant, steps):
        confident = False
    explaining = [] if outside else relevant
    failed_step_index: int | None = None
    if steps.starts:
        anchor_failure: Failure | None = None
        if code and not outside:
            anchor_failure = code[0]
        elif explaining:
            anchor_failure = explaining[0]
        if anchor_failure is not None:
            failed_step_index = steps.of(anchor_failure.log_line)
        elif log.error_lines:
            failed_step_index = steps.of(log.error_lines[0])
        if failed_step_index is not None and failed_step_index < 0:
            failed_step_index = None
        anchor = anchor_failure.log_line if anchor_failure else (log.error_lines or [0])[0]
        cut = _cut_line(log)
        if failed_step_index is not None and cut is not None:
            if steps.starts[failed_step_index] < cut < anchor:
                failed_step_index = None  # the step's header was in the cut middle
    failed_step = log.steps[failed_step_index] if failed_step_index is not None else None
    command = None
    if failed_step and failed_step.startswith("Run "):
        command = failed_step[4:].strip() or None
    key = rank_lines(log, [*ordered, *notes], category, steps, new, words)
    return Diagnosis(
        category=category,
        failures=relevant,
        confident=confident,
        key_lines=[_key_text(log.lines[i]) for i in key],
        failed_step=failed_step,
        command=command,
        new_lines=new,
        truncated=log.truncated,
        reproduce=reproduction(command, [f for f in relevant if f.kind == category]),
    )


def _cut_line(log: LogText) -> int | None:
    """Index of the "[… N bytes cut …]" line of a truncated log (it follows the ≤1 MiB head)."""
    if not log.truncated:
        return None
    for i in range(min(len(log.lines), HEAD_BYTES + 1)):
        if log.lines[i].startswith("[… ") and _CUT_MARK.match(log.lines[i]):
            return i
    return None


def _counts_exceed(log: LogText, failures: list[Failure], steps: _Steps) -> bool:
    """True when a tool's own count near a step's end exceeds the failures parsed for it."""
    lines = log.lines
    starts = steps.starts
    if starts and log.error_lines:
        windows: list[tuple[int, int, int]] = []
        done: set[int] = set()
        for e in log.error_lines:
            step = steps.of(e)
            if step in done:
                continue
            done.add(step)
            lo = starts[step] if step >= 0 else 0
            windows.append((step, max(lo, e - COUNT_WINDOW), e))
    else:
        windows = [(-2, max(0, len(lines) - COUNT_WINDOW), len(lines))]
    for step, lo, hi in windows:
        mine = [f for f in failures if step == -2 or steps.of(f.log_line) == step]
        tests = sum(1 for f in mine if f.test_id and f.tool in ("pytest", "timeout"))
        mypy = sum(1 for f in mine if f.tool == "mypy")
        lint = sum(1 for f in mine if f.kind == "lint" and f.tool == "ruff")
        fmt = sum(1 for f in mine if f.code == "format")
        tools = {f.tool for f in mine}
        has_pytest = bool(tools & {"pytest", "timeout"})
        for s in lines[lo:hi]:
            if not s[:1].isalnum() and not s.startswith("="):
                continue
            if (
                has_pytest
                and (m := _PYTEST_FINAL.match(s))
                and sum(int(n) for n, _ in _PYTEST_COUNT.findall(m["body"])) > tests
            ):
                return True
            if mypy and (m := _MYPY_FOUND.match(s)) and int(m[1]) > mypy:
                return True
            if lint and (m := _RUFF_FOUND.match(s)) and int(m[2] or m[1]) > lint:
                return True
            if fmt and (m := _REFORMAT_COUNT.match(s)) and int(m[1]) > fmt:
                return True
    return False


# --- ranking the key lines ----------------------------------------------------------------------

_WORD_RE = re.compile(
    r"(?i:\b(?:errors?|fail(?:s|ed|ure|ures|ing)?|fatal|panic(?:ked)?|exceptions?)\b)"
    r"|[a-z](?:Error|Exception)\b|\bERR!|^\s*not ok \d|\bERR_[A-Z]"
)
#: Lines of passing runs that hold an error word without reporting one.
_NOISE_RE = re.compile(
    r"^\s*(?:ok\s|PASS\b|PASSED|✓|√|\[INFO\]|INFO\b|go: downloading|Downloading|Downloaded|"
    r"Compiling |Installing |Collecting |Requirement already|Successfully|Fetching )"
    r"|\b0 (?:errors?|failures?|failed)\b|\b(?:errors?|failures?|failed)[:=]\s*0\b"
    r"|Failures: 0, Errors: 0|-Werror(?!=)|fail-fast|continue-on-error|--fail\b|error_?reporting"
    r"|if: failure|\bno errors?\b|without errors?|ignore-errors|on-error|error-?prone"
    r"|PASSED|\bpassed\b(?!.*\b(?:failed|errors?)\b)"
)
#: Trailers that only say that something failed.
_TRAILER_RE = re.compile(
    r"make(?:\[\d+\])?: \*\*\*|exit status:? \d|exited with (?:exit )?(?:code|status)"
    r"|Process completed with exit code|returned non-zero exit status|with exit code \d"
    r"|npm (?:ERR!|error) (?:A complete log|code (?:ELIFECYCLE|\d)|errno|Lifecycle|Failed at"
    r"|This is probably"
    r"|path |command )|ELIFECYCLE|ERROR: Job failed|BUILD FAIL|FAILURE: Build failed"
    r"|Command failed|\[ERROR\] -> \[Help|Re-run Maven|full stack trace|about the errors"
    r"|^\s*\[ERROR\]\s*$|Recipe for target|error: Recipe|^\s*(?:Error|error|ERROR):?\s*$"
    r"|script returned exit code|^Finished: FAILURE|^\s*Build FAILED\.?$|^\s*FAILURES!+$"
    r"|_logs/\S*-debug|^npm (?:ERR!|error)\s*$|Failed with errors in \d|^\s*FAIL\s*$|^FAIL\t"
    r"|[Ss]ee above for more|^\s*For more (?:information|details)\b|This error happened while"
    r"|^\s*\[ERROR\] \[Help \d+\]|due to \d+ previous errors?|to rerun pass\b|\[build failed\]\s*$"
    # aftermath: that errors happened, where, or that the run stopped because of them
    r"|returned \d+ exit status|\b(?:errors?|problems?) (?:occurred|were encountered)\b"
    r"|^\s*Errors? while running\b"
    r"|warnings being treated as errors|\b[Bb]uild failed\b|Execution failed for task"
    r"|\bencountered an error\b|There (?:are|were) test failures|The operation was cancell?ed"
    r"|\b(?:the|see) above\b|\babove (?:errors?|output|log|messages?)\b"
    r"|\bsee the [\w ]{0,30}(?:output|log)\b|^\s*compilation terminated\.?\s*$"
    r"|\b[Pp]lease refer to\b|\brefer to \S+ for\b|\bcheck (?:the )?output in\b"
)
#: Headings and counts: they say that (and how much) failed, not what.
_SUMMARY_RE = re.compile(
    r"^\s*(?:\[\w+\]\s*|[*>#-]\s*)?[\w ]{0,30}:\s*$"
    r"|:\s*[|>]-?\s*$"
    r"|\b\d+ (?:(?:examples?|tests?|specs?|failures?|failed|failing|errors?|problems?|targets?"
    r"|files?)\b"
    r"|Error\(s\))"
    r"|^\s*(?:Tests|Test Suites|Failures|Errors):\s+\d|\bTests run: \d+, Failures: \d"
    r"|^\s*\d+ (?:fail|error|pass|skip)\w*\s*$"  # a count alone (" 2 fail", "3 errors")
    r"|^\s*#\s*(?:fail|pass|skip|todo|tests|suites|cancelled)\w*\s+\d+\s*$"  # TAP's "# fail 1"
    r"|^\s*([=*~#_⎯─━═-])\1{2,} ?[\w ./:\[\]-]{1,80}? ?\1{3,}\s*$"  # a banner ("== FAILURES ==")
)
#: An exception line: "ValueError: bad", "java.lang.IllegalStateException: x".
_EXCEPTION_LINE = re.compile(r"^\s*(?:\[\w+\]\s*)?(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception)\b:?")
_STARTS_WITH_WORD = re.compile(
    r"^\s*(?:\[\w+\]\s*|> )?(?:\S+: )?"
    r"(?:Could not|Cannot|error|Error|ERROR|fatal|Fatal|FATAL|FAIL|Fail|panic|Exception|E |not ok "
    r"|[●✕×✗✘❌] )"
)
#: Source code echoed in a traceback ("    raise RuntimeError(…)"), not the error itself.
_CODE_ECHO = re.compile(
    r"^\s+(?:raise|throw|assert|panic!?\(|fail\()\b"
    r"|^\s*\d*\s+[|│](?:\s|$)"  # a compiler's source excerpt ("  5 | x = 1", "    |  ^^^")
    r"|^\s*[\^~]+\s*$"  # a caret line under an excerpt
)
_HAS_LOCATION = re.compile(r"[\w./-]+\.\w+[:(]\d+")
_GENERIC_EXIT = re.compile(r"^##\[error\]Process completed with exit code -?\d+\.?$")


def rank_lines(
    log: LogText,
    failures: Sequence[Failure],
    category: str,
    steps: _Steps,
    new: list[int] | None,
    words: np.ndarray | None,
) -> list[int]:
    """The key lines' indices, best first (the order is described in the module docstring)."""
    lines = log.lines
    newset = set(new) if new is not None else None
    score: dict[int, float] = {}

    def put(i: int, value: float) -> None:
        if 0 <= i < len(lines) and lines[i].strip() and value > score.get(i, -1e9):
            score[i] = value

    def passing_noise(i: int) -> bool:
        return newset is not None and i not in newset

    explained = False
    found: set[int] = set()
    for f in failures:
        i = f.log_line
        found.add(i)
        failed = steps.in_failed(i)
        own = 15 if f.kind == category else 0
        if _TRAILER_RE.search(lines[i]):
            # A tool's own "it failed" line (ELIFECYCLE, BUILD FAILURE): it sets the category,
            # but the cause is elsewhere.
            value = 20.0 + (10 if failed else 0)
            put(i, value - (40 if passing_noise(i) else 0))
            continue
        if f.kind in CODE_KINDS:
            value = 100.0 + (20 if failed else 0) + own
        elif f.kind == "infrastructure":
            value = 90.0 + (20 if failed else 0) + own
        else:
            value = 60.0 + (20 if failed else 0)
        if passing_noise(i):
            value -= 40
        elif f.kind != "unknown" and (failed or f.kind == category):
            explained = True
        put(i, value)
    if not explained:
        _guesses(log, steps, newset, words, put)
    ranked = sorted(score, key=lambda i: (-score[i], i))
    limit = MAX_KEY_LINES if explained else MAX_GUESS_LINES
    chosen: list[int] = []
    texts: set[str] = set()
    #: Each chosen guess's message (without `_MESSAGE_HEAD`), to find a message said twice.
    messages: dict[int, str] = {}
    best = score[ranked[0]] if ranked else 0.0
    # Guesses are measured against the best guess: a finding that explains nothing (a missing
    # command, exit 127) does not hide the guesses at the cause printed before it.
    best_guess = next((score[i] for i in ranked if i not in found), best)
    for i in ranked:
        if explained and score[i] < 90:
            break  # the findings explain it: no guesses below their lines
        top = best if i in found else best_guess
        if not explained and chosen and score[i] < top - GUESS_BAND:
            continue  # a much weaker line only costs precision
        if not explained and chosen and i not in found and _context_only(lines[i]):
            continue  # no failure word, no diagnostic's shape: context, after the first line
        same = _SAME_TEXT.sub(" ", lines[i]).strip()
        if same in texts:
            continue  # the same message again (a summary repeating it, another prefix)
        texts.add(same)
        if not explained:
            message = messages[i] = _MESSAGE_HEAD.sub("", same)
            twin = _repeated(message, {j: messages[j] for j in chosen})
            if twin is not None:
                # The same message said twice ("java.lang.AssertionError: expected:<1> …" and
                # "[ERROR] FooTest.bar:12 expected:<1> …"): one line, the copy that says where.
                if _HAS_LOCATION.search(lines[i]) and not _HAS_LOCATION.search(lines[twin]):
                    chosen[chosen.index(twin)] = i
                continue
        chosen.append(i)
        if len(chosen) >= limit:
            break
    if len(chosen) > 1:
        # "Process completed with exit code 1." says nothing the other lines do not.
        chosen = [i for i in chosen if not _GENERIC_EXIT.match(lines[i])] or chosen[:1]
    if not chosen:
        chosen = _generic_tail(log, steps, newset)
    return chosen


#: What a message's copies put before it: a level, an exception's class, an "error:" word.
_MESSAGE_HEAD = re.compile(
    r"^(?:\[\w+\]\s*)*(?:(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception)|error|Error|ERROR|fatal|FATAL)"
    r"(?:\[\w+\])?:\s*"
)
#: Shortest message that counts as the same as another line's when the other holds it.
_MIN_REPEAT_CHARS = 20


def _context_only(s: str) -> bool:
    return not (_WORD_RE.search(s) or _WEAK_RE.search(s) or _DIAGNOSTIC.match(s))


def _repeated(message: str, chosen: dict[int, str]) -> int | None:
    """The chosen line (index → its message) whose message `message` repeats (one holds the
    other's), or None."""
    for j, other in chosen.items():
        short, long = sorted((message, other), key=len)
        if len(short) >= _MIN_REPEAT_CHARS and short in long:
            return j
    return None


def _guesses(
    log: LogText,
    steps: _Steps,
    newset: set[int] | None,
    words: np.ndarray | None,
    put: object,
) -> None:
    """Score the lines no parser claimed: new lines, then lines with a generic error word, a
    weaker failure word ("cannot", "not found") or a diagnostic's shape (`path:line: message`,
    `E501 …`) near the end of a failed step."""
    assert callable(put)
    lines = log.lines
    echo = log.echo

    def output_line(i: int) -> bool:
        s = lines[i]
        if s.startswith("##["):
            return s.startswith("##[error]") and not _GENERIC_EXIT.match(s)
        k = bisect.bisect_right(echo, (i, 1 << 62)) - 1
        return not (k >= 0 and echo[k][0] <= i < echo[k][1])

    if newset is not None:
        for i in newset:
            if not output_line(i):
                continue
            s = lines[i]
            if _NOISE_RE.search(s):
                continue
            value = 50.0 + (10 if steps.in_failed(i) else 0) + _shape(s)
            if _WORD_RE.search(s):
                value += 10
            elif _WEAK_RE.search(s) or _DIAGNOSTIC.match(s):
                value += 6
            else:
                value -= NEW_ONLY_PENALTY  # new and nothing more: context, seldom the cause
            put(i, value)
    candidates: list[int] = []
    if words is not None and len(words):
        if steps.starts:
            bounds = [*steps.starts, len(lines)]
            first = words[words < bounds[0]].tolist()[-MAX_WORD_LINES_PER_STEP:]
            candidates.extend(first)
            for k in range(len(steps.starts)):
                lo, hi = np.searchsorted(words, [bounds[k], bounds[k + 1]])
                candidates.extend(words[max(lo, hi - MAX_WORD_LINES_PER_STEP) : hi].tolist())
        else:
            candidates = words[-MAX_WORD_LINES_PER_STEP * 4 :].tolist()
    candidates.extend(_failed_tails(log, steps))
    for i in dict.fromkeys(candidates):
        s = lines[i]
        if newset is not None and i not in newset:
            continue  # in the passing run too: noise
        if not output_line(i) or _NOISE_RE.search(s):
            continue
        if _WORD_RE.search(s):
            value = 30.0
        elif _WEAK_RE.search(s) or _DIAGNOSTIC.match(s):
            value = 25.0
        else:
            continue
        put(i, value + (15 if steps.in_failed(i) else 0) + _shape(s))


#: Failure words weaker than "error" (the regex of `_WEAK_NEEDLES`).
_WEAK_RE = re.compile(
    r"(?i:\b(?:cannot|could(?: not|n't)|unable to|no such|not found|(?:permission |access )?denied"
    r"|missing|invalid|undefined|unresolved|refused|timed out|exceeded|(?:is )?not set)\b)"
    r"|would reformat|\bwould (?:have been|be) (?:re)?(?:formatted|modified|changed)\b"
    r"|^diff --git "
    r"|^\s*[●✕×✗✘❌] \S"  # a test runner's failed-test glyph
    r"|^\s*\d{1,3}\) [A-Za-z]"  # "1) test adds numbers": a numbered failure (mocha, rspec, …)
)
#: A compiler's or linter's diagnostic: "pkg/a.go:6:13: undefined: y", "a.c(12,5): …",
#: "src/x.py:1:0: C0114 …", or a rule code first ("E711 Comparison to None…").
_DIAGNOSTIC = re.compile(
    r"^\s*(?:\[\w+\]\s*)?(?:[A-Za-z]:)?[\w./\\@+~-]*\w\.[A-Za-z]\w{0,5}"
    r"(?::\d+(?::\d+)?:|\(\d+(?:,\d+)?\):?)\s+[^\s(]"
    r"|^\s*[A-Z]{1,4}\d{2,5}\b(?: \[\*\])? [A-Za-z`'\"]"
)
_NUMBERED = re.compile(r"^\s*\d{1,3}\) [A-Za-z]")
#: A stack frame: where an error passed, not what it was.
_FRAME = re.compile(
    r"^\s*(?:\[\w+\]\s*)?(?:at (?:[\w$./<>\[\] -]+ ?\(|\.{0,2}/)|File \"[^\"]+\", line \d+"
    r"|#\d+\s+0x[0-9a-f]+"
    r"|\d+: 0x[0-9a-f]+|\d+: [\w<>]+(?:::[\w<>{}#]+)+\s*$|[\w./-]+\.go:\d+ \+0x)"
    r"|^\s*[\w./*()$-]+\((?:\{?0x|\.\.\.|\)$)"
)
#: What two lines printing the same message may differ in: a step number, a time, box drawing,
#: indentation ("#10 0.301 main.c:7: error: x" and "main.c:7: error: x").
_SAME_TEXT = re.compile(r"^[\s#\d.:➤│┃|>*-]+|\s+")
#: A warning or a note: printed beside the error, seldom the cause of a red build.
_WARNING = re.compile(
    r"^\s*(?:\[WARN(?:ING)?\]|\[warn\]|warning:|WARNING:)|: (?:warning|note):|Warning: "
)
#: A location and one word ("tests/test_a.py:11: AssertionError"): it points at the error
#: printed above it.
_POINTER = re.compile(r"^\s*\S+:\d+: (?:\w+|\(.*\))$")
#: A status word and where, nothing of what ("FAIL src/cart.test.js", "FAIL\tpkg/calc\t0.01s",
#: "ERROR tests/test_a.py", "FAILED" alone): a heading over the failures printed beside it.
_BARE_STATUS = re.compile(
    r"^\s*(?:FAIL(?:ED)?|ERROR|Error|error)(?:[:\s]\s*[\w./\\@:-]+(?:\s+\(?[\d.]+m?s\)?)?)?\s*$"
    r"|^\s*\S.{0,200}?\s?\.{3,}\s*(?:fail(?:ed)?|FAIL(?:ED)?|Failed|error|ERROR)\s*$"
)
#: How many output lines at the end of each failed step are read for diagnostics' shapes.
TAIL_LINES = 60


def _failed_tails(log: LogText, steps: _Steps) -> list[int]:
    """The last `TAIL_LINES` lines of each failed step (of the log without step markers) that
    are shaped like a diagnostic: a tool no parser knows lists its findings there."""
    lines = log.lines
    if steps.starts and steps.failed:
        bounds = [*steps.starts, len(lines)]
        spans = [(bounds[k], bounds[k + 1]) for k in sorted(steps.failed) if k >= 0]
    else:
        spans = [(0, len(lines))]
    out: list[int] = []
    for lo, hi in spans:
        for i in range(max(lo, hi - TAIL_LINES), hi):
            if _DIAGNOSTIC.match(lines[i]) or _NUMBERED.match(lines[i]):
                out.append(i)
    return out


def _shape(s: str) -> float:
    """How much a guessed line's shape says it is a cause (an error line with a location)
    rather than a summary, a heading, echoed code, a stack frame or a trailer."""
    value = 0.0
    if _STARTS_WITH_WORD.match(s) or _EXCEPTION_LINE.match(s):
        value += 5
    if _HAS_LOCATION.search(s):
        value += 5
    if _SUMMARY_RE.search(s):
        value -= 15
    if _CODE_ECHO.match(s):
        value -= 10
    if _WARNING.search(s):
        value -= 10
    if _FRAME.match(s):
        value -= 15
    elif _POINTER.match(s):
        value -= 5
    elif _BARE_STATUS.match(s):
        value -= 20  # its failure word says nothing: below any line with a message
    if _TRAILER_RE.search(s):
        value -= 25
    return value


def _generic_tail(log: LogText, steps: _Steps, newset: set[int] | None) -> list[int]:
    """When nothing else stands out: the failed step's last output lines before its error
    (never the echoed script; with a passing log, the new ones when there are any), then the
    error line itself."""
    lines = log.lines
    errors = log.error_lines[:1]
    end = errors[0] if errors else len(lines)
    lo = 0
    if steps.starts and errors:
        k = steps.of(end)
        lo = steps.starts[k] if k >= 0 else 0
    before: list[int] = []
    for i in range(end - 1, max(lo, end - 200) - 1, -1):
        if lines[i].startswith("##["):
            if lines[i].startswith(("##[endgroup]", "##[group]Run ")):
                break
            continue
        if lines[i].strip():
            before.append(i)
        if len(before) >= 20:
            break
    if newset is not None and any(i in newset for i in before):
        before = [i for i in before if i in newset]
    if before:
        errors = [i for i in errors if not _GENERIC_EXIT.match(lines[i])]
    return before[:2] + errors


# --- reproduction ---------------------------------------------------------------------------------


def _q(text: str) -> str:
    return shlex.quote(text)


def reproduction(command: str | None, failures: Sequence[Failure]) -> str | None:
    """A narrow command for the failing tests when the step's command says which tool runs
    them (`python -m pytest <ids>`, `go test ./pkg -run '^TestX$'`, `mvn -Dtest=C#m test`,
    `./gradlew test --tests C.m`, `npx jest <file> -t <name>`, `cargo test <name>`); else the
    step's command itself; None without one."""
    if not command:
        return None
    cmd = command.strip()
    tests = [f for f in failures if f.kind == "test" and f.test_id][:5]
    if not tests or "\n" in cmd:
        return cmd
    ids = [f.test_id for f in tests if f.test_id]
    words = cmd.split()
    if "pytest" in words or "pytest" in cmd.split("&&")[-1]:
        prefix = "python -m pytest" if "-m pytest" in cmd else "pytest"
        return " ".join([prefix, *(_q(t) for t in ids)])
    if re.search(r"(?:^|[\s;&|(])go test\b", cmd):
        names = sorted({t.split("/")[0] for t in ids})
        dirs = sorted(
            {(f.path.rsplit("/", 1)[0] if f.path and "/" in f.path else ".") for f in tests}
        )
        pkgs = (
            " ".join("./" + d if d != "." else "." for d in dirs)
            if all(f.path for f in tests)
            else "./..."
        )
        return f"go test {pkgs} -run {_q('^(' + '|'.join(names) + ')$')}"
    if "mvn" in words or "./mvnw" in words or "mvnw" in cmd:
        tool = "./mvnw" if "mvnw" in cmd else "mvn"
        spec = ",".join(_maven_test(t) for t in ids)
        return f"{tool} -Dtest={_q(spec)} test"
    if "gradle" in cmd:
        tool = "./gradlew" if "gradlew" in cmd else "gradle"
        return " ".join([tool, "test", *(f"--tests {_q(_dotted(t))}" for t in ids)])
    if "jest" in cmd or "vitest" in cmd:
        runner = "npx vitest run" if "vitest" in cmd else "npx jest"
        paths = sorted({f.path for f in tests if f.path})
        name = _js_name(ids[0])
        return " ".join([runner, *(_q(p) for p in paths), "-t", _q(name)])
    if "cargo" in words:
        return f"cargo test {_q(ids[0].split('::')[-1] if len(ids) == 1 else ids[0])}"
    return cmd


def _maven_test(test_id: str) -> str:
    """ "com.acme.FooTest.testBar" / "testBar(com.acme.FooTest)" → "FooTest#testBar"."""
    m = re.match(r"^(?P<method>[\w$\[\] ,.-]+?)\((?P<cls>[\w.$]+)\)$", test_id)
    if m:
        return f"{m['cls'].rsplit('.', 1)[-1]}#{m['method']}"
    if "#" in test_id:
        cls, _, method = test_id.partition("#")
        return f"{cls.rsplit('.', 1)[-1]}#{method}"
    parts = test_id.split(".")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}#{parts[-1]}"
    return parts[-1]


def _dotted(test_id: str) -> str:
    m = re.match(r"^(?P<method>[\w$]+)\((?P<cls>[\w.$]+)\)$", test_id)
    if m:
        return f"{m['cls']}.{m['method']}"
    return test_id.replace("#", ".").replace(" > ", ".")


def _js_name(test_id: str) -> str:
    for sep in (" › ", " > ", "::"):
        if sep in test_id:
            return test_id.split(sep)[-1].strip()
    return test_id


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
    data: bytes | str,
    passing: bytes | str | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    registry: Sequence[LogParser] | None = None,
) -> Diagnosis:
    """clean_log + the parsers + classify; with a passing log of the same workflow, also the
    lines new in the failing one (they rank above the lines both runs share). `registry`
    replaces the discovered parsers (the bench leaves an ecosystem's own out)."""
    log = clean_log(data, max_bytes=max_bytes)
    scan = _scan(log, registry)
    new = None
    if passing is not None:
        new = new_lines(log, clean_log(passing, max_bytes=max_bytes))
    return _classify(scan.failures, log, new, scan.word_lines, scan.notes)
