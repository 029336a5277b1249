"""pylint: ``calc/core.py:3:0: C0114: Missing module docstring (missing-module-docstring)``
(the code followed by a colon tells it from ruff/flake8 when the step's command does not)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure


class Pylint:
    name = "pylint"
    ecosystem = "python"
    needles = (py.STEP, *py.LINT_NEEDLES)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        return py.concise_lint(lines, hits, "pylint")


PARSER = Pylint()
