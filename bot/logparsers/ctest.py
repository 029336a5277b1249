"""ctest: the tests a CTest run reports as failed.

Recognises the status line of a failed test, ``2/4 Test #2: test_sub .....***Failed    0.01
sec``, ``***Exception: SegFault``, ``Subprocess aborted***Exception:``, ``***Timeout``, ``***Not
Run``: kind "test", test_id the test's name, code ``failed`` / ``segfault`` / ``aborted`` /
``exception`` / ``timeout`` / ``not-run``.

With ``--output-on-failure`` the test's own output follows its status line; the line most
likely to say why (a failed assertion, a ``path:line:`` message, an error word) becomes the
failure's line and its message, with path/line when it has one
(``/home/runner/work/p/p/tests/test_sub.c:4: calc_sub(5, 3) = -2, want 2``). A test listed
under ``The following tests FAILED:`` (``\t  2 - test_sub (Failed)``) without a status line in
the log (``ctest -Q``, a cut log) is reported at its entry there. ``Errors while running
CTest`` and the ``75% tests passed`` tally are not failures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip, rel_path

#: Output lines read after one status line.
OUTPUT_LINES = 60

_STATUS = re.compile(
    r"^\s*\d+/\d+ +Test +#(?P<num>\d+): (?P<name>\S.*?) ?\.*\s*"
    r"(?P<status>(?:Subprocess aborted|Child aborted|Exit code 0x[0-9a-fA-F]+ ?)?"
    r"\*\*\*(?:Failed|Exception|Timeout|Not Run)[^\d]*?)\s+[\d.]+ sec\s*$"
)
_SUMMARY = "The following tests FAILED:"
_ENTRY = re.compile(r"^\s*(?P<num>\d+) - (?P<name>.+?) \((?P<status>[^)]+)\)\s*$")
_NEXT = re.compile(r"^\s*(?:Start +\d+: |\d+/\d+ +Test +#)|^\d+% tests passed|^The following tests")
_LOCATION = re.compile(r"^(?:[^\s:]+: )?(?P<path>[^\s:][^:]*\.\w+):(?P<line>\d+):")
_ASSERTION = re.compile(r"Assertion [`'‘].+['’] failed\.|^Assertion failed: ")
_ERRORISH = re.compile(r"(?i)\b(?:error|fail(?:ed|ure)?|fatal|panic|abort(?:ed)?|exception)\b")


def _code(status: str) -> str:
    s = status.lower()
    if "segfault" in s:
        return "segfault"
    if "aborted" in s:
        return "aborted"
    if "timeout" in s:
        return "timeout"
    if "not run" in s:
        return "not-run"
    if "exception" in s:
        return "exception"
    return "failed"


def _telling_line(lines: Sequence[str], i: int) -> int | None:
    """The line of a test's output (after its status line) that says why it failed."""
    output: list[int] = []
    for j in range(i + 1, min(len(lines), i + 1 + OUTPUT_LINES)):
        if _NEXT.search(lines[j]):
            break
        if lines[j].strip() and not lines[j].startswith("##["):
            output.append(j)
    for test in (_ASSERTION.search, _LOCATION.match, _ERRORISH.search):
        for j in output:
            if test(lines[j].strip()):
                return j
    return None


class CTestParser:
    name = "ctest"
    ecosystem = "c"
    needles = ("***Failed", "***Exception", "***Timeout", "***Not Run", _SUMMARY)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            text = lines[i]
            if text.startswith(_SUMMARY):
                out.extend(self._summary(lines, i, seen))
                continue
            m = _STATUS.match(text)
            if m is None:
                continue
            name = m.group("name").strip()
            seen.add(name)
            status = " ".join(m.group("status").replace("*", " ").split())
            message = f"{name}: {status}"
            at = _telling_line(lines, i)
            path: str | None = None
            line: int | None = None
            if at is not None:
                told = lines[at].strip()
                message = f"{message}: {told}"
                loc = _LOCATION.match(told)
                if loc:
                    path, line = rel_path(loc.group("path")), int(loc.group("line"))
            out.append(
                Failure(
                    kind="test",
                    tool=self.name,
                    message=clip(message),
                    test_id=name,
                    path=path,
                    line=line,
                    code=_code(m.group("status")),
                    log_line=at if at is not None else i,
                )
            )
        return out

    def _summary(self, lines: Sequence[str], i: int, seen: set[str]) -> Iterable[Failure]:
        for j in range(i + 1, min(len(lines), i + 1 + OUTPUT_LINES)):
            m = _ENTRY.match(lines[j])
            if m is None:
                break
            name = m.group("name")
            if name in seen:
                continue
            yield Failure(
                kind="test",
                tool=self.name,
                message=clip(lines[j]),
                test_id=name,
                code=_code(m.group("status")),
                log_line=j,
            )


PARSER = CTestParser()
