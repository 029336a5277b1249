"""go build (and the compile step of go test / go vet): Go compiler and type-checker errors.

Recognises lines ``path.go:LINE:COL: message`` at the start of a line, as the go command
prints them under a ``# package`` header, e.g.::

    # github.com/acme/demo/internal/calc
    internal/calc/calc.go:6:13: undefined: y
    ./main.go:3:2: "os" imported and not used

and the same with the ``vet: `` prefix go vet prints when a package does not type-check, or as
the ``Output`` of a ``go test -json`` ``"Action":"build-output"`` event (Go 1.24+).
Kind "compile"; `code` is a short slug of the message (``undefined``, ``unused-variable``,
``unused-import``, ``type-mismatch``, ``wrong-argument-count``, ``syntax``, …, else
``compile``); the indented lines after it (``\\thave (string, number)`` / ``\\twant (string,
int)``) are added to the message.

The same ``path:line:col:`` shape is printed by other tools, and this module's `classify`
tells them apart for every Go parser: a trailing staticcheck code ``(SA4006)`` (staticcheck),
a trailing linter name ``(errcheck)`` (golangci-lint), a module resolution message (``missing
go.sum entry``, ``no required module provides package``: go mod) and a go vet analyzer's
message (``fmt.Printf format %d has arg …``: go vet, also when the job step is ``go vet``);
a bare finding printed by a linter's step (``revive``, ``golint``, ``golangci-lint`` with
``--print-linter-name=false``) is golangci-lint's.
Test output (``    add_test.go:10: got 3, want 4``) is indented and has no column, so never
matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

#: ``path.go:12:3: message`` (the go command, vet, staticcheck, golangci-lint).
POSITION = re.compile(
    r"^(?:vet: )?(?P<path>(?:[A-Za-z]:)?[^\s:]+\.go):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$"
)
STATICCHECK_CODE = re.compile(r" \(((?:SA|S|ST|QF|U)\d{4}|compile)\)$")
LINTER_NAME = re.compile(r" \(([a-z][a-z0-9]*(?:[-_][a-z0-9]+)*)\)$")

#: Messages of module resolution printed at an import's position (the go mod parser's).
MODULE_MESSAGES = (
    "missing go.sum entry",
    "no required module provides package",
    "cannot find module providing package",
    "module lookup disabled by GOPROXY",
    "is not in GOROOT",
    "is not in std",
    "but does not contain package",
    "ambiguous import: found package",
)

#: go vet analyzers, by a literal part of their messages (Go 1.19 - 1.23).
VET_MESSAGES: tuple[tuple[str, str], ...] = (
    (" format %", "printf"),
    ("possible formatting directive", "printf"),
    ("call has arguments but no formatting directives", "printf"),
    ("call needs ", "printf"),
    (" reads arg #", "printf"),
    ("arg list ends with redundant newline", "printf"),
    ("non-constant format string in call to", "printf"),
    ("lock by value", "copylocks"),
    ("copies lock value", "copylocks"),
    ("self-assignment of ", "assign"),
    ("direct assignment to atomic value", "atomic"),
    ("redundant or: ", "bools"),
    ("redundant and: ", "bools"),
    ("suspect or: ", "bools"),
    ("suspect and: ", "bools"),
    ("composite literal uses unkeyed fields", "composites"),
    ("second argument to errors.As", "errorsas"),
    ("using resp before checking for errors", "httpresponse"),
    ("impossible type assertion", "ifaceassert"),
    (" captured by func literal", "loopclosure"),
    ("the cancel function", "lostcancel"),
    (" == nil is always ", "nilfunc"),
    (" != nil is always ", "nilfunc"),
    (" too small for shift of ", "shift"),
    ("misuse of unbuffered os.Signal channel", "sigchanyzer"),
    (" should have signature ", "stdmethods"),
    ("yields a string of one rune", "stringintconv"),
    ("struct field tag ", "structtag"),
    (" repeats json tag ", "structtag"),
    (" repeats xml tag ", "structtag"),
    ("from a non-test goroutine", "testinggoroutine"),
    ("malformed example suffix", "tests"),
    (" has malformed name", "tests"),
    (" refers to unknown ", "tests"),
    (" passes non-pointer", "unmarshal"),
    ("unreachable code", "unreachable"),
    ("possible misuse of unsafe.Pointer", "unsafeptr"),
    (" call not used", "unusedresult"),
    ("possibly passing Go type with embedded pointer to C", "cgocall"),
    ("+build line", "buildtag"),
    ("//go:build line", "buildtag"),
    ("2006-02-01", "timeformat"),
    ("misplaced compiler directive", "directive"),
    ("append with no values", "appends"),
)

_COMPILE_SLUGS: tuple[tuple[str, str], ...] = (
    ("undefined: ", "undefined"),
    ("declared but not used", "unused-variable"),
    ("declared and not used", "unused-variable"),
    ("imported and not used", "unused-import"),
    ("syntax error", "syntax"),
    ("cannot use ", "type-mismatch"),
    ("mismatched types", "type-mismatch"),
    ("too many arguments", "wrong-argument-count"),
    ("not enough arguments", "wrong-argument-count"),
    ("assignment mismatch", "assignment-mismatch"),
    ("missing return", "missing-return"),
    ("redeclared in this block", "redeclared"),
    ("has no field or method", "no-field-or-method"),
    ("import cycle not allowed", "import-cycle"),
    ("does not implement", "does-not-implement"),
)

Owner = Literal["compile", "vet", "module", "staticcheck", "golangci-lint"]


@dataclass(frozen=True)
class Position:
    """One ``path:line:col: message`` line."""

    path: str
    line: int
    column: int
    message: str
    vet_prefix: bool


def position(text: str) -> Position | None:
    """The parsed ``path.go:line:col: message`` line, or None."""
    m = POSITION.match(text)
    if m is None:
        return None
    return Position(
        rel_path(m.group("path")),
        int(m.group("line")),
        int(m.group("col")),
        m.group("msg"),
        text.startswith("vet: "),
    )


def vet_analyzer(message: str) -> str | None:
    """The go vet analyzer whose message `message` looks like, or None."""
    for needle, analyzer in VET_MESSAGES:
        if needle in message:
            return analyzer
    return None


def step_command(lines: Sequence[str], index: int) -> str | None:
    """The ``##[group]Run …`` command of the step holding line `index` (bounded look-back)."""
    for j in range(index - 1, max(-1, index - MAX_CONTEXT - 1), -1):
        if lines[j].startswith("##[group]Run "):
            return lines[j][13:]
    return None


def classify(lines: Sequence[str], index: int, pos: Position) -> Owner:
    """Which Go parser owns the position line at `index`."""
    msg = pos.message
    if STATICCHECK_CODE.search(msg):
        return "staticcheck"
    if LINTER_NAME.search(msg):
        return "golangci-lint"
    if any(m in msg for m in MODULE_MESSAGES):
        return "module"
    if pos.vet_prefix:
        return "compile"
    if vet_analyzer(msg) is not None:
        return "vet"
    command = step_command(lines, index)
    if command is not None and "go vet" in command:
        return "vet"
    if command is not None and command_linter(command) is not None:
        return "golangci-lint"
    return "compile"


#: Linters that print bare ``path:line:col: message`` lines when run as the step's command.
BARE_LINTERS = ("golangci-lint", "revive", "golint", "errcheck", "ineffassign", "gosec", "gocritic")


def command_linter(command: str) -> str | None:
    """The linter a step's command runs, of `BARE_LINTERS`, or None."""
    return next((name for name in BARE_LINTERS if name in command), None)


def line_position(lines: Sequence[str], index: int) -> Position | None:
    """The ``path:line:col:`` finding of line `index`: a plain line, or the ``Output`` of a
    ``go test -json`` ``"Action":"build-output"`` event (Go 1.24+)."""
    text = lines[index]
    if text.startswith('{"'):
        if '"build-output"' not in text:
            return None
        try:
            event = json.loads(text)
        except ValueError:
            return None
        output = event.get("Output") if isinstance(event, dict) else None
        return position(output.rstrip("\n")) if isinstance(output, str) else None
    return position(text)


def continuation(lines: Sequence[str], index: int, limit: int = 6) -> list[str]:
    """The tab-indented lines right after `index` (``\\thave (…)``), at most `limit`."""
    out: list[str] = []
    for j in range(index + 1, min(len(lines), index + 1 + limit)):
        if not lines[j].startswith("\t"):
            break
        out.append(lines[j].strip())
    return out


def compile_slug(message: str) -> str:
    for needle, slug in _COMPILE_SLUGS:
        if needle in message:
            return slug
    return "compile"


class GoBuildParser:
    name = "go-build"
    ecosystem = "go"
    needles: tuple[str, ...] = (".go:",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            pos = line_position(lines, i)
            if pos is None or classify(lines, i, pos) != "compile":
                continue
            message = " ".join([pos.message, *continuation(lines, i)])
            yield Failure(
                kind="compile",
                tool=self.name,
                message=clip(message),
                path=pos.path,
                line=pos.line,
                code=compile_slug(pos.message),
                log_line=i,
            )


PARSER = GoBuildParser()
