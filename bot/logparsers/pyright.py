"""pyright: ``  /home/runner/work/r/r/calc/core.py:3:12 - error: "x" is not defined
(reportUndefinedVariable)``."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body, rel_path

_PYRIGHT = re.compile(
    r"^\s*(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?\.pyi?):(?P<line>\d+):(?P<col>\d+) - error: "
    r"(?P<msg>.*?)(?: \((?P<code>report\w+)\))?\s*$"
)


class Pyright:
    name = "pyright"
    ecosystem = "python"
    needles = (" - error: ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[tuple[str, str, str]] = set()
        for i in hits:
            m = _PYRIGHT.match(body(lines[i]))
            if not m or (m["path"], m["line"], m["msg"]) in seen:
                continue
            seen.add((m["path"], m["line"], m["msg"]))
            out.append(
                Failure(
                    "types",
                    "pyright",
                    py.clip_line(m["msg"]),
                    path=rel_path(m["path"]),
                    line=int(m["line"]),
                    code=m["code"],
                    log_line=i,
                )
            )
        return out


PARSER = Pyright()
