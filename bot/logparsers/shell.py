"""Shell steps (``bash -e``, ``set -euo pipefail``) and make: the error a failing command printed.

Recognises:

- the shell's own errors, ``./scripts/lint.sh: line 4: protoc: command not found``,
  ``/home/runner/work/_temp/….sh: line 1: ./deploy.sh: Permission denied``,
  ``bash: line 1: ./x: No such file or directory``, dash's ``sh: 1: protoc: not found`` and
  busybox's ``/bin/sh: make: not found`` (also inside a BuildKit ``#9 0.53 `` output prefix):
  path/line = the script and line, unless it is the runner's step script under ``_temp``;
- a command's ``No such file or directory`` / ``Permission denied``:
  ``cp: cannot stat 'config/ci.env': No such file or directory``, ``cat: VERSION: No such file
  or directory``;
- make's ``make: *** [Makefile:3: test] Error 1`` and ``make[1]: *** [Makefile:2: check] Error 1``
  (path = the Makefile, below the directory of the ``make[N]: Entering directory`` line); an
  outer make's line right after an inner one is left out, it only repeats the failure. The
  message adds the output line above the innermost make error;
- ``make: *** No rule to make target 'tset'.  Stop.``: code ``make-no-rule``, kind "unknown".

Kinds: ``command not found`` is "dependency" (a tool the job needs is not installed, code
``command-not-found``); a missing file or a permission error is "unknown" (``no-such-file``,
``permission-denied``); a make target named like a test/lint/build target gets "test", "lint"
or "compile", any other "unknown" (code ``make-error``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip, rel_path

_BUILDKIT_PREFIX = re.compile(r"^#\d+ \d+\.\d+ ")
_SHELL_TEXT = (
    r"^(\S+?): (?:line (\d+): |(\d+): )?(.+?): "
    r"(command not found|not found|No such file or directory|Permission denied)"
)
_SHELL = re.compile(_SHELL_TEXT + r"\s*$")
# BuildKit prints a step's stdout and stderr chunks as they come, so another line's text can
# follow the error on the same line (``cc: not foundbundling src/main.sh``).
_SHELL_BUILDKIT = re.compile(_SHELL_TEXT)
_MAKE = re.compile(r"^(g?make)(?:\[(\d+)\])?: \*\*\* \[(.+?):(\d+): ([^\]]+)\] Error (\d+)")
_NO_RULE = re.compile(r"^g?make(?:\[\d+\])?: \*\*\* No rule to make target '(.+?)'")
_ENTERING = re.compile(r"^g?make\[(\d+)\]: Entering directory '(.+)'$")
_ERRORISH = re.compile(
    r"error|fail|fatal|not ok|panic|denied|not found|no such|cannot|can't|undefined|exception",
    re.IGNORECASE,
)
_TALLY = re.compile(r"\b\d+ (?:passed|failed|tests?)\b|^1\.\.\d+$|^test result:", re.IGNORECASE)
_SHELLS = ("sh", "bash", "dash", "ash", "zsh", "ksh")
_TARGETS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("test", ("test", "tests", "check", "unit", "integration", "e2e", "coverage")),
    ("lint", ("lint", "vet", "style", "shellcheck")),
    ("format", ("fmt-check", "format-check", "check-format")),
    ("compile", ("build", "all", "compile")),
)
_CODES = {
    "command not found": "command-not-found",
    "not found": "command-not-found",
    "No such file or directory": "no-such-file",
    "Permission denied": "permission-denied",
}


def _target_kind(target: str) -> Category:
    name = target.rsplit("/", 1)[-1].lower()
    for kind, names in _TARGETS:
        if name in names:
            return kind
    return "unknown"


class ShellParser:
    name = "shell"
    ecosystem = "infra"
    needles = ("not found", "No such file or directory", "Permission denied", "*** ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        last_make: tuple[int, int] | None = None  # (line, level) of the last make error
        for i in hits:
            text = lines[i]
            buildkit = False
            if text.startswith("#"):
                text, n = _BUILDKIT_PREFIX.subn("", text, count=1)
                buildkit = n > 0
            m = _MAKE.match(text)
            if m:
                level = int(m.group(2) or 0)
                inner = last_make
                last_make = (i, level)
                if inner is not None and inner[1] > level and i - inner[0] <= 20:
                    continue  # the outer make repeating an inner failure
                out.append(self._make(lines, i, m, level))
                continue
            if "No rule to make target" in text and _NO_RULE.match(text):
                out.append(
                    Failure(
                        kind="unknown",
                        tool=self.name,
                        message=clip(text),
                        code="make-no-rule",
                        log_line=i,
                    )
                )
                continue
            failure = self._shell(text, i, buildkit=buildkit)
            if failure is not None:
                out.append(failure)
        return out

    def _shell(self, text: str, i: int, *, buildkit: bool = False) -> Failure | None:
        m = (_SHELL_BUILDKIT if buildkit else _SHELL).match(text)
        if m is None:
            return None
        source, line_no, dash_line, what, error = m.groups()
        shell_name = source.rsplit("/", 1)[-1]
        is_shell = shell_name in _SHELLS or shell_name.endswith(".sh")
        if error == "not found" and not is_shell:
            return None  # "x: not found" from some tool, not the shell
        if (line_no or dash_line) and not is_shell and "/" not in source:
            return None
        kind: Category = "dependency" if _CODES[error] == "command-not-found" else "unknown"
        path: str | None = None
        line: int | None = None
        if line_no and "/_temp/" not in source and shell_name not in _SHELLS:
            path = rel_path(source)
            line = int(line_no)
        return Failure(
            kind=kind,
            tool=self.name,
            message=clip(f"{what}: {error}"),
            path=path,
            line=line,
            code=_CODES[error],
            log_line=i,
        )

    def _make(self, lines: Sequence[str], i: int, m: re.Match[str], level: int) -> Failure:
        makefile, line_no, target = m.group(3), int(m.group(4)), m.group(5)
        path = rel_path(makefile)
        if level and not path.startswith("/"):
            directory = _entered(lines, i, level)
            if directory:
                prefix = rel_path(directory + "/")
                if prefix and not prefix.startswith("/"):
                    path = prefix.rstrip("/") + "/" + path
        output = [
            lines[j].strip()
            for j in range(max(0, i - 20), i)
            if lines[j].strip() and not _ENTERING.match(lines[j]) and not lines[j].startswith("##[")
        ]
        before = cause_line(output) or ""
        message = f"{lines[i].strip()} after: {before}" if before else lines[i]
        return Failure(
            kind=_target_kind(target),
            tool=self.name,
            message=clip(message),
            path=path,
            line=line_no,
            code="make-error",
            log_line=i,
        )


def cause_line(output: Sequence[str]) -> str | None:
    """The line of a command's `output` most likely to say why it failed: the last one with an
    error word that is not a tally (``3 passed, 1 failed``, ``1..3``) nor make's own ``*** [``
    line (the command make ran said why), else make's line, else the last line."""
    for text in reversed(output):
        if _ERRORISH.search(text) and not _TALLY.search(text) and "*** [" not in text:
            return text
    for text in reversed(output):
        if "*** [" in text:
            return text  # only make's own line says what failed
    return output[-1] if output else None


def _entered(lines: Sequence[str], i: int, level: int) -> str | None:
    """The directory of the nearest ``make[level]: Entering directory '…'`` above line `i`."""
    for j in range(i - 1, max(-1, i - MAX_CONTEXT), -1):
        m = _ENTERING.match(lines[j])
        if m and int(m.group(1)) == level:
            return m.group(2)
    return None


PARSER = ShellParser()
