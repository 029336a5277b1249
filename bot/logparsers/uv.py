"""uv: ``  × No solution found when resolving dependencies:`` (kind "dependency")."""

from __future__ import annotations

from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure


class Uv:
    name = "uv"
    ecosystem = "python"
    needles = ("No solution found when resolving dependencies",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        for i in hits:
            text = py.clip_line(lines[i].lstrip("× ").strip())
            return [Failure("dependency", "uv", text, code="no-solution", log_line=i)]
        return []


PARSER = Uv()
