"""mypy: ``calc/typed.py:6: error: Argument 1 to "f" has incompatible type "str"; expected
"int"  [arg-type]`` (also with columns, colour, and ``--pretty``'s code on the next line).
Notes (``note: Revealed type``) are not failures."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body, rel_path

_MYPY = re.compile(
    r"^(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?\.pyi?):(?P<line>\d+)(?::\d+)*: error: "
    r"(?P<msg>.*?)(?:  \[(?P<code>[a-z0-9][a-z0-9-]*)\])?\s*$"
)
_CODE_TAIL = re.compile(r"^(?P<rest>.*?)  \[(?P<code>[a-z0-9][a-z0-9-]*)\]\s*$")


class Mypy:
    name = "mypy"
    ecosystem = "python"
    needles = (": error: ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[tuple[str, str, str]] = set()
        for i in hits:
            m = _MYPY.match(body(lines[i]))
            if not m:
                continue
            msg, code = m["msg"], m["code"]
            if code is None and i + 1 < len(lines):  # --pretty wraps the code
                tail = _CODE_TAIL.match(lines[i + 1])
                if tail and not _MYPY.match(lines[i + 1]):
                    msg, code = f"{msg} {tail['rest'].strip()}", tail["code"]
            key = (m["path"], m["line"], msg)
            if key in seen:
                continue
            seen.add(key)
            out.append(
                Failure(
                    "types",
                    "mypy",
                    py.clip_line(msg),
                    path=rel_path(m["path"]),
                    line=int(m["line"]),
                    code=code,
                    log_line=i,
                )
            )
        return out


PARSER = Mypy()
