"""golangci-lint: issues in the default text format, ``path.go:line:col: message (linter)``
followed by the source line and a caret, e.g.::

    internal/store/store.go:14:2: ineffectual assignment to key (ineffassign)
    \tkey := ""
    \t^
    internal/httpx/httpx.go:15:2: SA4018: self-assignment of d to d (staticcheck)

Kind "lint"; `code` is the check's own code when the message starts with one (``SA4018``,
``G104``, ``ST1003``), else the linter's name (``ineffassign``, ``errcheck``). The
``(typecheck)`` linter is a compile error (kind "compile"). Also the run's own failures:
``level=error msg="Timeout exceeded: try increasing it by passing --timeout option"`` / ``Error:
timeout exceeded: …`` (kind "timeout") and other ``level=error msg="Running error: …"`` lines
(kind "lint", code ``running-error``). In a step running a linter (``revive ./...``,
``golangci-lint run --print-linter-name=false``), a bare ``path:line:col: message`` line is
a finding too, its code the linter's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip
from bot.logparsers.go_build import LINTER_NAME, classify, command_linter, position, step_command

_CHECK_CODE = re.compile(r"^([A-Z]{1,3}\d{1,5}): ")
_TIMEOUT = "exceeded: try increasing it by passing --timeout"


class GolangciLintParser:
    name = "golangci-lint"
    ecosystem = "go"
    needles: tuple[str, ...] = (".go:", 'level=error msg="', _TIMEOUT)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i]
            if _TIMEOUT in text:
                yield Failure(
                    kind="timeout",
                    tool=self.name,
                    message=clip(text.split('msg="', 1)[-1].rstrip('"')),
                    code="timeout",
                    log_line=i,
                )
                continue
            if text.startswith('level=error msg="'):
                yield Failure(
                    kind="lint",
                    tool=self.name,
                    message=clip(text[17:].rstrip('"')),
                    code="running-error",
                    log_line=i,
                )
                continue
            pos = position(text)
            if pos is None or classify(lines, i, pos) != "golangci-lint":
                continue
            m = LINTER_NAME.search(pos.message)
            if m is not None:
                linter, message = m.group(1), pos.message[: m.start()]
            else:  # a bare line of a linter's step (see go_build.classify)
                linter = command_linter(step_command(lines, i) or "") or "lint"
                message = pos.message
            own = _CHECK_CODE.match(message)
            yield Failure(
                kind="compile" if linter == "typecheck" else "lint",
                tool=self.name,
                message=clip(message),
                path=pos.path,
                line=pos.line,
                code=own.group(1) if own else linter,
                log_line=i,
            )


PARSER = GolangciLintParser()
