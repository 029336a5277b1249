"""Shared pieces of the Python tools' parsers (not a parser: the underscore keeps it out of the
registry): traceback frames, exception lines, which paths are the repository's, the step a hit
belongs to."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers.base import Category, Failure, body, rel_path

#: ``  File "/path/x.py", line 3, in f``
FILE_LINE = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
#: ``tests/test_calc.py:12: in test_add`` / ``calc/core.py:7: ZeroDivisionError``
PY_LOC = re.compile(
    r"^(?P<path>(?:[A-Za-z]:)?[^\s:<][^:]*?\.pyi?):(?P<line>\d+):(?: (?P<what>.*))?$"
)
#: ``ValueError: bad`` / ``pkg.errors.Boom``
EXC_LINE = re.compile(r"^(?P<exc>(?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?:: (?P<rest>.*))?$")
IDENT = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*$")
#: The needles of a concise `path:line:col: CODE` line: a colon and a digit (a regex over the
#: whole log would cost a pass of its own; these ride on the one literal search).
LINT_NEEDLES = tuple(f":{d}" for d in range(10))
LINT = re.compile(
    r"^(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?):(?P<line>\d+):(?P<col>\d+): "
    r"(?P<code>[A-Z]{1,6}\d{1,5}|invalid-syntax|unformatted|syntax-error)(?P<colon>:)? "
    r"(?:\[\*\] )?(?P<msg>.*)$"
)
STEP = "##[group]Run "


def external(path: str) -> bool:
    """A path outside the repository (absolute, <frozen …>, site-packages)."""
    return (
        path.startswith(("/", "<", "\\"))
        or (len(path) > 2 and path[1] == ":" and path[2] in "\\/")
        or "site-packages" in path
        or "dist-packages" in path
    )


def is_test_file(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.startswith("test_") or base.endswith("_test.py") or base == "tests.py"


def clip_line(text: str, limit: int = 300) -> str:
    text = text.strip().replace("\t", " ")
    if "\n" in text:
        text = text.split("\n", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lint_message(code: str, msg: str) -> str:
    """ "F401 `os` imported but unused", or "invalid-syntax: Expected …" for a non-rule code."""
    return f"{code} {msg}" if code[:1].isupper() else f"{code}: {msg}"


def lint_tool(step_cmd: str, line: str, msg: str, pylint_style: bool) -> str:
    """Which of ruff, flake8 and pylint printed a concise `path:line:col: CODE msg` line: the
    step's command says, else pylint's "CODE:" colon, ruff's "[*]"/backticks/capitals."""
    for tool in ("ruff", "flake8", "pylint"):
        if tool in step_cmd:
            return tool
    if pylint_style:
        return "pylint"
    if "[*]" in line or "`" in msg or msg[:1].isupper():
        return "ruff"
    return "flake8"


class StepTracker:
    """The `##[group]Run …` command in force at each hit, for parsers that list `STEP` among
    their needles (hits come in log order)."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines
        self.command = ""
        self.index = -1

    def see(self, i: int) -> bool:
        """True (and the step updated) when line `i` is a step header."""
        s = self.lines[i]
        if s.startswith(STEP):
            self.command = s[len(STEP) :]
            self.index += 1
            return True
        return False


def concise_lint(lines: Sequence[str], hits: Sequence[int], me: str) -> list[Failure]:
    """The concise `path:line:col: CODE msg` lines that `me` (ruff, flake8 or pylint) printed;
    the three parsers share the needle and each keeps the lines `lint_tool` gives it."""
    steps = StepTracker(lines)
    out: list[Failure] = []
    seen: set[tuple[object, ...]] = set()
    for i in hits:
        if steps.see(i):
            continue
        s = body(lines[i])
        m = LINT.match(s)
        if not m:
            continue
        code = m["code"]
        tool = lint_tool(steps.command, s, m["msg"], bool(m["colon"]) and code[:1].isupper())
        if tool != me:
            continue
        key = (steps.index, m["path"], m["line"], m["col"], code)
        if key in seen:
            continue
        seen.add(key)
        kind: Category = "format" if code == "unformatted" else "lint"
        out.append(
            Failure(
                kind,
                tool,
                clip_line(lint_message(code, m["msg"])),
                path=rel_path(m["path"]),
                line=int(m["line"]),
                code="format" if code == "unformatted" else code,
                log_line=i,
            )
        )
    return out
