"""flake8: ``calc/core.py:1:1: F401 'os' imported but unused`` (the concise shape ruff and
pylint share; the step's command, else the lowercase message style, says it is flake8's)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure


class Flake8:
    name = "flake8"
    ecosystem = "python"
    needles = (py.STEP, *py.LINT_NEEDLES)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        return py.concise_lint(lines, hits, "flake8")


PARSER = Flake8()
