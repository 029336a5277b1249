"""poetry: the resolver giving up (kind "dependency"): ``So, because calc depends on urllib3
(<1.21), version solving failed.`` (Poetry 2; older ones raise ``SolverProblemError``), and
``pyproject.toml changed significantly since poetry.lock was last generated``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body

_CODES = (
    ("version solving failed", "version-solving-failed"),
    ("SolverProblemError", "SolverProblemError"),
    ("changed significantly since poetry.lock", "lock-outdated"),
)


class Poetry:
    name = "poetry"
    ecosystem = "python"
    needles = tuple(n for n, _ in _CODES)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        codes: set[str] = set()
        for i in hits:
            s = body(lines[i])
            code = next(c for n, c in _CODES if n in s) if any(n in s for n, _ in _CODES) else ""
            if code == "SolverProblemError" and "version-solving-failed" in codes:
                continue
            if code and code not in codes:
                codes.add(code)
                out.append(Failure("dependency", "poetry", py.clip_line(s), code=code, log_line=i))
        return out


PARSER = Poetry()
