"""A Python import failing outside pytest (a script, an entry point):
``ModuleNotFoundError: No module named 'calc_plugins'`` (kind "dependency"), with the
repository's frame of the traceback above it. Inside pytest's output (``E   …`` lines, summary
lines) the import error belongs to the test and the pytest parser reports it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body, rel_path

_MODULE_NOT_FOUND = re.compile(
    r"(?:^|[\s>:])(?P<exc>ModuleNotFoundError): No module named '(?P<mod>[^']+)'"
)


class PythonImport:
    name = "python-import"
    ecosystem = "python"
    needles = ("ModuleNotFoundError: No module named",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            s = body(lines[i])
            if s.startswith(("E ", "FAILED ", "ERROR ", ">")):
                continue
            m = _MODULE_NOT_FOUND.search(s)
            if not m or m["mod"] in seen:
                continue
            seen.add(m["mod"])
            path: str | None = None
            line: int | None = None
            for j in range(i - 1, max(-1, i - 40), -1):
                fm = py.FILE_LINE.match(lines[j]) or py.PY_LOC.match(lines[j])
                if fm:
                    p = rel_path(fm["path"])
                    if not py.external(p):
                        path, line = p, int(fm["line"])
                        break
            out.append(
                Failure(
                    "dependency",
                    "python",
                    py.clip_line(s[s.index("ModuleNotFoundError") :]),
                    path=path,
                    line=line,
                    code="ModuleNotFoundError",
                    log_line=i,
                )
            )
        return out


PARSER = PythonImport()
