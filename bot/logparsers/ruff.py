"""ruff: `ruff check` findings (full and concise formats, and the GitHub format as the runner
shows it) and `ruff format --check`.

- full: ``F401 [*] `os` imported but unused`` then `` --> calc/core.py:1:8``;
- concise: ``calc/core.py:1:8: F401 [*] `os` imported but unused`` (shared with flake8/pylint,
  told apart by the step's command and the message's style);
- format: ``Would reformat: calc/ugly.py`` (kind "format").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body, rel_path

_ARROW = re.compile(
    r"^\s*-->\s*(?P<path>(?:[A-Za-z]:)?[^\s:][^:]*?):(?P<line>\d+):(?P<col>\d+)\s*$"
)
_HEAD = re.compile(
    r"^(?P<code>[A-Z]{1,6}\d{1,5}|invalid-syntax|unformatted|syntax-error):? "
    r"(?:\[\*\] )?(?P<msg>.+)$"
)
_WOULD_REFORMAT = re.compile(r"^Would reformat:? (?P<path>\S.*)$")


class Ruff:
    name = "ruff"
    ecosystem = "python"
    needles = ("-->", py.STEP, *py.LINT_NEEDLES)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out = py.concise_lint(lines, hits, "ruff")
        seen = {(f.path, f.line, f.code) for f in out}
        for i in hits:
            s = lines[i]
            if "-->" not in s or not (m := _ARROW.match(body(s))):
                continue
            for back in (1, 2):
                if i - back < 0:
                    break
                hm = _HEAD.match(body(lines[i - back]))
                if hm:
                    code = "format" if hm["code"] == "unformatted" else hm["code"]
                    path = rel_path(m["path"])
                    if (path, int(m["line"]), code) in seen:
                        break
                    seen.add((path, int(m["line"]), code))
                    out.append(
                        Failure(
                            "format" if code == "format" else "lint",
                            "ruff",
                            py.clip_line(py.lint_message(hm["code"], hm["msg"])),
                            path=path,
                            line=int(m["line"]),
                            code=code,
                            log_line=i - back,
                        )
                    )
                    break
        return out


class RuffFormat:
    """``Would reformat: calc/ugly.py`` (ruff format --check / --diff)."""

    name = "ruff-format"
    ecosystem = "python"
    needles = ("Would reformat",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            s = body(lines[i])
            m = _WOULD_REFORMAT.match(s)
            if not m:
                continue
            path = rel_path(m["path"])
            if path in seen:
                continue
            seen.add(path)
            out.append(
                Failure("format", "ruff", py.clip_line(s), path=path, code="format", log_line=i)
            )
        return out


PARSERS = (Ruff(), RuffFormat())
