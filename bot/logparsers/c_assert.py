"""A C/C++ program stopped by a failed ``assert()`` (glibc, musl, MSVC's runtime).

Recognises ``test_div: /home/runner/work/p/p/tests/test_div.c:8: main: Assertion `calc_div(7,
2, &ok) == 3 && ok' failed.`` (glibc; the program's name first), musl's ``Assertion failed: x ==
3 (tests/test_div.c: main: 8)`` and MSVC's ``Assertion failed: x == 3, file tests\\test_div.c,
line 8``: kind "test", code ``assertion``, test_id the program's name when printed, path/line
the assertion's. The shell's ``Aborted (core dumped)`` after it is not a failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip, rel_path

_GLIBC = re.compile(
    r"^(?:(?P<prog>[^\s:]+): )?(?P<path>[^\s:][^:]*):(?P<line>\d+): (?P<func>.+?): "
    r"Assertion [`'‘](?P<expr>.+)['’] failed\.\s*$"
)
_MUSL = re.compile(
    r"^Assertion failed: (?P<expr>.+) \((?P<path>[^:()]+): (?P<func>.+): (?P<line>\d+)\)$"
)
_MSVC = re.compile(r"^Assertion failed: (?P<expr>.+), file (?P<path>.+), line (?P<line>\d+)$")


class CAssertParser:
    name = "c-assert"
    ecosystem = "c"
    needles = ("Assertion `", "Assertion '", "Assertion ‘", "Assertion failed: ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i].strip()
            prog: str | None = None
            m = _GLIBC.match(text)
            if m is not None:
                prog = m.group("prog")
            else:
                m = _MUSL.match(text) or _MSVC.match(text)
                if m is None:
                    continue
            yield Failure(
                kind="test",
                tool=self.name,
                message=clip(f"Assertion `{m.group('expr')}' failed"),
                test_id=prog.rsplit("/", 1)[-1] if prog else None,
                path=rel_path(m.group("path").replace("\\", "/")),
                line=int(m.group("line")),
                code="assertion",
                log_line=i,
            )


PARSER = CAssertParser()
