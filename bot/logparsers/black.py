"""black --check: ``would reformat /home/runner/work/calc/calc/calc/core.py`` (kind "format")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body, rel_path

_WOULD_REFORMAT = re.compile(r"^would reformat (?P<path>\S.*)$")


class Black:
    name = "black"
    ecosystem = "python"
    needles = ("would reformat ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            s = body(lines[i])
            m = _WOULD_REFORMAT.match(s)
            if not m:
                continue
            path = rel_path(m["path"])
            if path not in seen:
                seen.add(path)
                out.append(
                    Failure(
                        "format", "black", py.clip_line(s), path=path, code="format", log_line=i
                    )
                )
        return out


PARSER = Black()
