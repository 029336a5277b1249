"""Maven Surefire and Failsafe test failures, as Maven prints them on the console.

Recognised (Surefire/Failsafe 2.22 and 3.x, JUnit 4 and JUnit 5 providers):

- the per-test header after a failing class::

    [ERROR] Tests run: 6, Failures: 1, …, … <<< FAILURE! - in com.example.StringsTest
    [ERROR] truncateAddsEllipsis(com.example.StringsTest)  Time elapsed: 0 s  <<< FAILURE!
    org.junit.ComparisonFailure: expected:<abcd[]…> but was:<abcd[e]…>
        at com.example.StringsTest.truncateAddsEllipsis(StringsTest.java:27)

  (3.x: ``[ERROR] com.example.StringsTest.truncateAddsEllipsis -- Time elapsed: 0 s <<< FAILURE!``;
  JUnit 5 on 2.22: ``[ERROR] truncateAddsEllipsis  Time elapsed: …``, the class from the line
  before);
- the one-line results summary: ``[ERROR]   StringsTest.truncateAddsEllipsis:27 expected:<…>``
  under ``[ERROR] Failures:`` / ``[ERROR] Errors:``;
- a crashed fork: ``The forked VM terminated without properly saying goodbye. VM crash or
  System.exit called?`` (the test id from the ``Crashed tests:`` that follow; code
  ``fork-crash``), ``There was a timeout in the fork`` (category "timeout") and ``There was a
  timeout or other error in the fork`` (``fork-error``).

One failure per failing test: its `log_line` is the summary line when the summary was printed
(it holds the test, the line and the message), else the per-test header. Which plugin ran a
block is read from the mojo header (``--- maven-failsafe-plugin:3.2.5:integration-test`` or
Maven 3.9's ``--- failsafe:3.2.5:integration-test``); blocks before any header are Surefire's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip

_SECTION = re.compile(r"--- (?:maven-)?(surefire|failsafe)(?:-plugin)?:\S+:")
_CLASS_LINE = re.compile(
    r"Tests run: \d+, Failures: \d+, Errors: \d+.*<<< (?:FAILURE|ERROR)!"
    r"(?: -+ in (?P<cls>[\w$.]+))?"
)
_HEADER = re.compile(
    r"^(?:\[ERROR\] )?(?P<name>\S.*?)(?: --)?\s+Time elapsed: [^<]*<<< (?P<kind>FAILURE|ERROR)!"
)
_METHOD_CLASS = re.compile(r"^(?P<m>.+?)\((?P<c>[\w$.]+)\)$")
_SUMMARY_HEAD = re.compile(r"^\[ERROR\] (Failures|Errors): ?$")
_SUMMARY = re.compile(
    r"^\[ERROR\]   (?P<c>[\w$]+(?:\.[\w$]+)*?)\.(?P<m>[^\s.:»]+(?:\[[^\]]*\])?)"
    r"(?::(?P<line>\d+))?(?: (?P<msg>.*))?$"
)
_FRAME = re.compile(r"^\s*(?:\[ERROR\]\s+)?at ([\w$.]+)\.([\w$<>]+)\(([\w$]+\.\w+):(\d+)\)")
_CRASH = "The forked VM terminated without properly saying goodbye"
_TIMEOUT = "There was a timeout"


@dataclass
class _Test:
    cls: str | None
    method: str
    kind: str
    header: int | None = None
    summary: int | None = None
    message: str = ""
    line: int | None = None

    @property
    def test_id(self) -> str:
        return f"{self.cls}.{self.method}" if self.cls else self.method


def _simple(cls: str | None) -> str:
    return (cls or "").rsplit(".", 1)[-1]


def _exception(lines: Sequence[str], start: int, owner: str) -> tuple[str, int | None]:
    """The exception line after a per-test header, and the line of the test class's frame."""
    message = ""
    end = min(len(lines), start + 1 + MAX_CONTEXT)
    for j in range(start + 1, end):
        text = lines[j]
        if not message:
            if text.strip():
                if text.startswith("[") and not text.startswith("[ERROR]   "):
                    return "", None
                message = text.strip()
            continue
        m = _FRAME.match(text)
        if m:
            if owner and (m.group(1) == owner or _simple(m.group(1)) == _simple(owner)):
                return message, int(m.group(4))
            continue
        if text.startswith("[") or not text.strip():
            break
    return message, None


class SurefireParser:
    """Failing tests of one plugin ("surefire" or "failsafe") in a Maven log."""

    ecosystem = "jvm"
    needles: tuple[str, ...] = (
        "<<< FAILURE!",
        "<<< ERROR!",
        "[ERROR] Failures:",
        "[ERROR] Errors:",
        _CRASH,
        _TIMEOUT + " in the fork",
        _TIMEOUT + " or other error in the fork",
        "--- maven-surefire-plugin:",
        "--- maven-failsafe-plugin:",
        "--- surefire:",
        "--- failsafe:",
    )

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.name = f"maven-{plugin}"

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        section = "surefire"
        cls: str | None = None
        tests: dict[tuple[str, str], _Test] = {}
        class_lines: dict[str, int] = {}
        out: list[Failure] = []
        fork_seen = False
        for i in hits:
            text = lines[i]
            sec = _SECTION.search(text)
            if sec:
                section = sec.group(1)
                cls = None
                continue
            if section != self.plugin:
                continue
            if "Tests run:" in text:
                m = _CLASS_LINE.search(text)
                if m:
                    cls = m.group("cls")
                    if cls:
                        class_lines.setdefault(cls, i)
                continue
            h = _HEADER.match(text)
            if h:
                self._header(lines, i, h, cls, tests)
                continue
            if _SUMMARY_HEAD.match(text):
                self._summary(lines, i, text.endswith("Errors:") or "Errors: " in text, tests)
                continue
            if (_CRASH in text or _TIMEOUT in text) and not fork_seen:
                fork_seen = True
                out.append(self._fork(lines, i, text))
        for t in tests.values():
            log_line = t.summary if t.summary is not None else t.header
            assert log_line is not None
            out.append(
                Failure(
                    kind="test",
                    tool=self.name,
                    message=clip(f"{t.test_id}: {t.message}" if t.message else t.test_id),
                    test_id=t.test_id,
                    line=t.line,
                    code="error" if t.kind == "ERROR" else "failure",
                    log_line=log_line,
                )
            )
        reported = {_simple(t.cls) for t in tests.values()} | {t.cls for t in tests.values()}
        for c, i in class_lines.items():
            if c not in reported:  # the class failed but its tests were not printed (cut log)
                out.append(
                    Failure(
                        kind="test",
                        tool=self.name,
                        message=clip(lines[i].removeprefix("[ERROR] ")),
                        test_id=c,
                        code="failure",
                        log_line=i,
                    )
                )
        return out

    def _header(
        self,
        lines: Sequence[str],
        i: int,
        h: re.Match[str],
        cls: str | None,
        tests: dict[tuple[str, str], _Test],
    ) -> None:
        name = h.group("name").strip()
        mc = _METHOD_CLASS.match(name)
        if mc and "." in mc.group("c"):
            method, owner = mc.group("m"), mc.group("c")
        elif cls and name.startswith(cls + "."):
            method, owner = name[len(cls) + 1 :], cls
        elif cls:
            method, owner = name, cls
        elif "." in name.split("(")[0]:
            owner, method = name.split("(")[0].rsplit(".", 1)
            method += name[len(owner) + 1 + len(method) :]
        else:
            method, owner = name, ""
        message, line_no = _exception(lines, i, owner)
        key = (_simple(owner), method)
        t = tests.get(key)
        if t is None:
            t = tests[key] = _Test(owner or None, method, h.group("kind"))
        if t.header is None:
            t.header = i
            t.cls = owner or t.cls
            t.message = t.message or message
            t.line = t.line if t.line is not None else line_no

    def _summary(
        self, lines: Sequence[str], i: int, errors: bool, tests: dict[tuple[str, str], _Test]
    ) -> None:
        end = min(len(lines), i + 1 + MAX_CONTEXT)
        for j in range(i + 1, end):
            text = lines[j]
            if text.startswith("[ERROR]    "):  # "Run 1: …" of a rerun test
                continue
            if not text.startswith("[ERROR]   "):
                break
            m = _SUMMARY.match(text)
            if not m:
                continue
            simple = _simple(m.group("c"))
            key = (simple, m.group("m"))
            t = tests.get(key)
            if t is None:
                t = tests[key] = _Test(m.group("c"), m.group("m"), "ERROR" if errors else "FAILURE")
            if t.summary is None:
                t.summary = j
                msg = (m.group("msg") or "").strip()
                t.message = t.message or msg  # the header's exception line is not cut short
                if m.group("line"):
                    t.line = int(m.group("line"))

    def _fork(self, lines: Sequence[str], i: int, text: str) -> Failure:
        crashed: str | None = None
        end = min(len(lines), i + 1 + 20)
        for j in range(i + 1, end):
            if lines[j].strip().endswith("Crashed tests:") and j + 1 < len(lines):
                crashed = lines[j + 1].removeprefix("[ERROR] ").strip() or None
                break
        body = text.removeprefix("[ERROR] ").strip()
        if _CRASH in text:
            kind: Category = "test"
            code = "fork-crash"
        elif "timeout in the fork" in text:  # forkedProcessTimeoutInSeconds
            kind, code = "timeout", "fork-timeout"
        else:  # "There was a timeout or other error in the fork"
            kind, code = "test", "fork-error"
        return Failure(
            kind=kind, tool=self.name, message=clip(body), test_id=crashed, code=code, log_line=i
        )


PARSERS = (SurefireParser("surefire"), SurefireParser("failsafe"))
