"""The interface of a per-tool CI log parser (one module per tool in `bot/logparsers/`).

A parser is an object with

- ``name``: the tool, e.g. ``"go-test"``, ``"maven-surefire"``; it is `Failure.tool`;
- ``ecosystem``: ``"python"``, ``"go"``, ``"jvm"``, ``"js"``, ``"rust"``, ``"infra"``, …;
- ``needles``: literal substrings. Only the lines holding one of them are handed to the parser
  (`hits`), so a 50 MB log is never walked line by line in Python: the caller joins the lines
  once and finds every needle with the regex engine's literal scan. Pick needles that are
  specific ("--- FAIL: ", "[ERROR] ", "error[E") rather than common words;
- ``parse(lines, hits)``: the failures the tool printed, each with ``log_line`` set to the index
  of the line that shows it (that line becomes a key line). It may read any line around a hit
  (the lines after "--- FAIL: TestX" up to the next "--- " line, a Surefire report block, …),
  but should stay bounded (`MAX_CONTEXT` lines per hit).

`lines` are cleaned log lines (no timestamps, ANSI colour or `gh run view --log` prefix). Lines
of the runner's own markers start with ``##[`` (``##[group]Run …``, ``##[endgroup]``,
``##[error]…``); the echoed script of a ``##[group]Run`` block is never in `hits`.

Optional attributes (read with ``getattr``; a parser without them works unchanged):

- ``patterns``: compiled regexes searched like the needles, for a shape no literal captures
  (``path:12:3: F401``); each is one more pass over the log, so keep them rare;
- ``generic``: True for a parser whose findings are a fallback (GitHub annotations): at a line a
  specific parser also claims, the specific finding is kept.

`body(line)` is a line without the runner's ``##[error]``/``##[warning]`` prefix (a tool's own
``::error`` output is shown that way), for parsers that match from the start of a line.

The module exports ``PARSER`` (one parser) or ``PARSERS`` (several); `bot.logparsers.parsers()`
discovers every module of the package, so adding a tool is adding a file. `scan` runs one parser
on a log the way the diagnosis does (for tests and benchmarks).

Everything here is a pure function of the text: no I/O, no model, no GitHub.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

#: What the CI loop acts on (see loops/ci_repair.py).
Category = Literal[
    "test",
    "lint",
    "format",
    "types",
    "compile",
    "dependency",
    "infrastructure",
    "timeout",
    "unknown",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)

MAX_MESSAGE_CHARS = 300
#: Lines a parser may read after (or before) one hit.
MAX_CONTEXT = 200


@dataclass(frozen=True)
class Failure:
    """One failure a tool printed: a failing test, a compiler/lint/type error, a resolution
    failure, a runner problem. `path` is repository-relative where the tool printed a path."""

    kind: Category
    tool: str
    message: str
    test_id: str | None = None
    path: str | None = None
    line: int | None = None
    code: str | None = None
    log_line: int = 0


class LogParser(Protocol):
    name: str
    ecosystem: str
    needles: tuple[str, ...]

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]: ...


_ANNOTATION_PREFIXES = ("##[error]", "##[warning]", "##[notice]")


def body(line: str) -> str:
    """`line` without a leading ``##[error]``/``##[warning]``/``##[notice]`` runner prefix."""
    if line.startswith("##["):
        for prefix in _ANNOTATION_PREFIXES:
            if line.startswith(prefix):
                return line[len(prefix) :]
    return line


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` stripped and shortened to `limit` characters (with an ellipsis)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


_WORKSPACE = re.compile(
    r"^(?:/home/runner/work/[^/]+/[^/]+/|/Users/runner/work/[^/]+/[^/]+/|/__w/[^/]+/[^/]+/"
    r"|/github/workspace/|[A-Za-z]:[\\/]a[\\/][^\\/]+[\\/][^\\/]+[\\/])"
)


def rel_path(path: str, root: str | None = None) -> str:
    """A path as printed by a tool on a runner, made repository-relative when it can be."""
    path = path.strip()
    if root and path.startswith(root.rstrip("/") + "/"):
        path = path[len(root.rstrip("/")) + 1 :]
    path = _WORKSPACE.sub("", path, count=1)
    while path.startswith("./"):
        path = path[2:]
    return path


def line_index(text: str, offsets: Sequence[int]) -> list[int]:
    """Sorted, de-duplicated line numbers of character `offsets` into `text` (newlines counted
    by `str.count`, in C, between consecutive offsets)."""
    out: list[int] = []
    line = 0
    prev = 0
    for off in sorted(offsets):
        line += text.count("\n", prev, off)
        prev = off
        if not out or out[-1] != line:
            out.append(line)
    return out


def echo_lines(lines: Sequence[str]) -> set[int]:
    """Indices of the echoed script of each ``##[group]Run …`` block (up to its endgroup)."""
    out: set[int] = set()
    i = 0
    n = len(lines)
    while i < n:
        if lines[i].startswith("##[group]Run "):
            j = i + 1
            while j < n and j <= i + 1000 and not lines[j].startswith("##[endgroup]"):
                out.add(j)
                j += 1
            i = j
        i += 1
    return out


def hits_for(parser: LogParser, lines: Sequence[str]) -> list[int]:
    """The candidate lines of `parser` in `lines` (needle hits, echoed scripts excluded)."""
    text = "\n".join(lines)
    offsets: list[int] = []
    for needle in parser.needles:
        offsets.extend(m.start() for m in re.finditer(re.escape(needle), text))
    for pattern in getattr(parser, "patterns", ()):
        offsets.extend(m.start() for m in pattern.finditer(text))
    echo = echo_lines(lines) if "##[group]Run " in text else set()
    return [i for i in line_index(text, offsets) if i not in echo]


def scan(parser: LogParser, lines: Sequence[str]) -> list[Failure]:
    """Run one parser over cleaned log lines, as the diagnosis does; failures in log order."""
    found = list(parser.parse(lines, hits_for(parser, lines)))
    return sorted(found, key=lambda f: f.log_line)
