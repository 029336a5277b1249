"""unittest (and runners printing its format, e.g. Django's): a failing or erroring test's
header ``FAIL: test_add (tests.test_calc.TestCalc.test_add)`` / ``ERROR: test_x (tests.t.T)``,
the exception line closing its traceback (``AssertionError: 5 != 6``) and the repository frame
(``File "…/tests/test_calc.py", line 8, in test_add``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers import _python as py
from bot.logparsers.base import MAX_CONTEXT, Failure, body, rel_path

_HEAD = re.compile(r"^(?P<outcome>FAIL|ERROR): (?P<name>[\w.\[\]-]+) \((?P<where>[\w.]+)\)")


class Unittest:
    name = "unittest"
    ecosystem = "python"
    needles = ("FAIL: ", "ERROR: ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            m = _HEAD.match(body(lines[i]))
            if not m:
                continue
            where = m["where"]
            test_id = where if where.endswith("." + m["name"]) else f"{where}.{m['name']}"
            if test_id in seen:
                continue
            seen.add(test_id)
            path: str | None = None
            line: int | None = None
            message = m["outcome"]
            code: str | None = None
            for j in range(i + 1, min(len(lines), i + MAX_CONTEXT)):
                s = lines[j]
                if s.startswith("=====") or (_HEAD.match(s) and j > i):
                    break
                fm = py.FILE_LINE.match(s)
                if fm:
                    p = rel_path(fm["path"])
                    if not py.external(p):
                        path, line = p, int(fm["line"])
                    continue
                em = py.EXC_LINE.match(s)
                if em and (em["rest"] is not None or s.endswith("Error")):
                    message, code = s, em["exc"]
            out.append(
                Failure(
                    "test",
                    "unittest",
                    py.clip_line(message),
                    test_id=test_id,
                    path=path,
                    line=line,
                    code=code,
                    log_line=i,
                )
            )
        return out


PARSER = Unittest()
