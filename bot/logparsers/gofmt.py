"""gofmt / goimports / gofumpt in check mode: the files that are not formatted.

Recognises

- the ``gofmt -l`` listing: a line that is only a Go file's path (``internal/slug/slug.go``),
  with the bare paths right after it, in a step whose command (when the log shows it) runs
  gofmt, goimports or gofumpt;
- the ``gofmt -d`` diff: ``diff internal/slug/slug.go.orig internal/slug/slug.go`` /
  ``--- internal/slug/slug.go.orig``.

Kind "format", code ``gofmt``, one failure per file (at the first line naming it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, rel_path
from bot.logparsers.go_build import step_command

_BARE = re.compile(r"^(?:[A-Za-z]:)?[\w./\\-]+\.go$")
_DIFF = re.compile(r"^(?:diff(?: -u)? |--- )(?:a/)?(\S+\.go)\.orig(?:\s|$)")
_FORMATTERS = ("gofmt", "goimports", "gofumpt", "go fmt")


class GofmtParser:
    name = "gofmt"
    ecosystem = "go"
    needles: tuple[str, ...] = (".go\n", ".go.orig")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        seen: set[str] = set()
        done = -1
        for i in hits:
            if i <= done:
                continue
            m = _DIFF.match(lines[i])
            if m:
                path = rel_path(m.group(1))
                if path not in seen:
                    seen.add(path)
                    yield self._failure(path, i)
                continue
            if not _BARE.match(lines[i]):
                continue
            command = step_command(lines, i)
            if command is not None and not any(f in command for f in _FORMATTERS):
                continue
            j = i
            while j < len(lines) and j < i + MAX_CONTEXT and _BARE.match(lines[j]):
                path = rel_path(lines[j])
                if path not in seen:
                    seen.add(path)
                    yield self._failure(path, j)
                j += 1
            done = j - 1

    def _failure(self, path: str, i: int) -> Failure:
        return Failure(
            kind="format",
            tool=self.name,
            message=f"{path} is not formatted (gofmt)",
            path=path,
            code="gofmt",
            log_line=i,
        )


PARSER = GofmtParser()
