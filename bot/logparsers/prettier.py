"""prettier --check: the files that are not formatted, and files it could not parse.

Recognises the list of ``[warn] src/slug.js`` lines above
``[warn] Code style issues found in the above file. Run Prettier with --write to fix.``
(prettier 3; "in 2 files", and prettier 2's "Code style issues found in the above file(s).
Forgot to run Prettier?"): one failure per file, kind "format", code ``unformatted``, path the
file. ``[error] src/a.js: SyntaxError: Unexpected token (3:5)`` is a file prettier could not
parse: kind "format", code ``syntax-error``, path and line from the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_SUMMARY = "Code style issues found"
_WARN_FILE = re.compile(r"^\[warn\] (?P<path>\S+)\s*$")
_SYNTAX = re.compile(
    r"^\[error\] (?P<path>[^\s:]+): (?P<msg>SyntaxError: .*?)(?: \((?P<line>\d+):\d+\))?\s*$"
)


class PrettierParser:
    name = "prettier"
    ecosystem = "js"
    needles = (_SUMMARY, ": SyntaxError: ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i]
            if text.startswith("[error] "):
                s = _SYNTAX.match(text)
                if s:
                    line = int(s.group("line")) if s.group("line") else None
                    path = rel_path(s.group("path"))
                    yield Failure(
                        kind="format",
                        tool=self.name,
                        message=clip(f"prettier could not parse {path}: {s.group('msg')}"),
                        path=path,
                        line=line,
                        code="syntax-error",
                        log_line=i,
                    )
                continue
            if not text.startswith("[warn] ") or _SUMMARY not in text:
                continue
            files: list[tuple[int, str]] = []
            for j in range(i - 1, max(-1, i - MAX_CONTEXT - 1), -1):
                m = _WARN_FILE.match(lines[j])
                if not m:
                    break
                files.append((j, rel_path(m.group("path"))))
            for j, path in reversed(files):
                yield Failure(
                    kind="format",
                    tool=self.name,
                    message=clip(f"{path} is not formatted (prettier --check)"),
                    path=path,
                    code="unformatted",
                    log_line=j,
                )


PARSER = PrettierParser()
