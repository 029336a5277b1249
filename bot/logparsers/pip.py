"""pip: resolution and build failures (kind "dependency").

- ``ERROR: Could not find a version that satisfies the requirement calc-plugins==9.9`` and
  ``ERROR: No matching distribution found for calc-plugins==9.9`` (one failure per requirement);
- ``ERROR: Cannot install alpha==1.0 and gamma==1.0 because these package versions have
  conflicting dependencies.`` / ``ResolutionImpossible``;
- ``ERROR: Package 'calc' requires a different Python: 3.8.18 not in '>=3.10'``;
- ``ERROR: Failed building wheel for lxml``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body

_REQ = re.compile(
    r"^ERROR: (?:Could not find a version that satisfies the requirement|"
    r"No matching distribution found for) (?P<req>\S+)"
)
_CONFLICT = re.compile(r"^ERROR: Cannot install .+ because these package versions have conflicting")
_PYTHON = re.compile(r"^ERROR: Package '(?P<pkg>[^']+)' requires a different Python")
_WHEEL = re.compile(r"^ERROR: Failed building wheel for (?P<pkg>\S+)")


class Pip:
    name = "pip"
    ecosystem = "python"
    needles = (
        "ERROR: Could not find a version",
        "ERROR: No matching distribution",
        "ERROR: Cannot install ",
        "ResolutionImpossible",
        "requires a different Python",
        "ERROR: Failed building wheel",
    )

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[tuple[str, ...]] = set()

        def add(i: int, code: str, key: tuple[str, ...], s: str) -> None:
            if key not in seen:
                seen.add(key)
                out.append(Failure("dependency", "pip", py.clip_line(s[7:]), code=code, log_line=i))
            elif s.startswith("ERROR: No matching distribution"):
                # pip's conclusion about a requirement: the line to show for it.
                k = next(n for n, f in enumerate(out) if f.code == code and key[1] in f.message)
                out[k] = Failure("dependency", "pip", out[k].message, code=code, log_line=i)

        for i in hits:
            s = body(lines[i])
            if not s.startswith("ERROR: "):
                continue
            if m := _REQ.match(s):
                add(i, "no-matching-distribution", ("req", m["req"]), s)
            elif _CONFLICT.match(s) or "ResolutionImpossible" in s:
                add(i, "ResolutionImpossible", ("conflict",), s)
            elif m := _PYTHON.match(s):
                add(i, "requires-python", ("python", m["pkg"]), s)
            elif m := _WHEEL.match(s):
                add(i, "wheel-build-failed", ("wheel", m["pkg"]), s)
        return out


PARSER = Pip()
