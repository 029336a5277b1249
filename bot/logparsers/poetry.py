"""poetry: ``SolverProblemError`` (its resolver giving up; kind "dependency"), and
``pyproject.toml changed significantly since poetry.lock was last generated``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure


class Poetry:
    name = "poetry"
    ecosystem = "python"
    needles = ("SolverProblemError", "changed significantly since poetry.lock")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        codes: set[str] = set()
        for i in hits:
            s = lines[i]
            code = "SolverProblemError" if "SolverProblemError" in s else "lock-outdated"
            if code not in codes:
                codes.add(code)
                out.append(Failure("dependency", "poetry", py.clip_line(s), code=code, log_line=i))
        return out


PARSER = Poetry()
