"""go test: failing tests, panics, timeouts and failing packages (plain and ``-json`` output).

Recognises

- ``--- FAIL: TestAdd (0.00s)`` with the test's messages indented under it
  (``    add_test.go:10: got 3, want 4``, continuation lines deeper): kind "test", test_id
  ``TestAdd``, path/line of the first message, the message's text. Subtests
  (``    --- FAIL: TestPair/spaces (0.00s)``) are reported themselves; a parent that only failed
  because a subtest did is not. With ``-v`` the messages are printed after ``=== RUN   TestX``
  (or ``=== CONT``/``=== NAME``) above the result line; they are read from there;
- ``panic: runtime error: index out of range [3] with length 3 [recovered]`` in a test binary:
  kind "test", code ``panic``, the test from ``--- FAIL: TestAt`` above it or from the goroutine
  trace, path/line of the first frame outside the Go installation;
- a test failed by the race detector (``    testing.go:1319: race detected during execution of
  test``): code ``data-race``, path/line of the first frame of the ``WARNING: DATA RACE``
  report above it;
- ``fatal error: concurrent map writes`` (or ``all goroutines are asleep - deadlock!``) in a
  test binary: kind "test", code ``fatal-error``, located like a panic;
- ``panic: test timed out after 10m0s``: kind "timeout", the running test from ``running
  tests:`` (Go 1.20+) or from the goroutine trace;
- ``FAIL\\tgithub.com/acme/demo/internal/calc\\t0.012s`` when nothing above says why the
  package failed (TestMain exit, a crash without a panic): kind "test", code
  ``package-failed``. ``FAIL\\tpkg [build failed]`` is the go build parser's;
- ``go test -json``: ``{"Action":"fail","Test":"TestAdd",…}`` events, with the test's
  ``Output`` events for the message (the ``--- FAIL:`` output line is the key line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_MESSAGE = re.compile(r"^\s+(?P<path>[^\s:]+\.go):(?P<line>\d+): ?(?P<msg>.*)$")
_FRAME = re.compile(r"^\t(?P<path>\S+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")
_TEST_FUNC = re.compile(r"\.(Test\w*|Example\w*|Fuzz\w*)(?:\.func\d+)*\(")
_RESULT = re.compile(r"^(?P<indent> *)--- FAIL: (?P<name>\S+)(?: \([\d.]+s\))?\s*$")
_GOROOT_MARKERS = ("/usr/lib/go", "/usr/local/go/", "/hostedtoolcache/go/", "/src/runtime/")
_JSON_FAIL = '"Action":"fail"'
#: testify's assertion block lines that repeat what the header says (the trace, the test).
_TESTIFY_NOISE = ("Error Trace:", "Test:")
_RACE_FRAME = re.compile(r"^\s+(?P<path>/\S+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")


@dataclass
class _Test:
    name: str
    header: int
    messages: list[tuple[str, int, str]] = field(default_factory=list)
    code: str = "test-failed"
    text: str | None = None  # the panic, for a test that panicked
    path: str | None = None
    line: int | None = None


def _messages(lines: Sequence[str], start: int, indent: int) -> list[tuple[str, int, str]]:
    """The ``file.go:N: text`` messages (with their continuation lines) from `start` on, at
    `indent` or deeper, until a line that is not one."""
    out: list[tuple[str, int, str]] = []
    pad = " " * indent
    for j in range(start, min(len(lines), start + MAX_CONTEXT)):
        text = lines[j]
        if not text.startswith(pad) or text[indent : indent + 1] == "" or not text.strip():
            break
        stripped = text.strip()
        if stripped.startswith(("--- ", "=== ")):
            break
        m = _MESSAGE.match(text)
        if m and len(text) - len(text.lstrip(" ")) == indent:
            out.append((m.group("path"), int(m.group("line")), m.group("msg").strip()))
        elif out:
            if stripped.startswith(_TESTIFY_NOISE):
                continue
            path, line, msg = out[-1]
            out[-1] = (path, line, f"{msg} {' '.join(stripped.split())}".strip())
        else:
            break
    return out


def _verbose_messages(lines: Sequence[str], header: int, name: str) -> list[tuple[str, int, str]]:
    """With -v: the messages after the last ``=== RUN/CONT/NAME  name`` above `header`."""
    for j in range(header - 1, max(-1, header - MAX_CONTEXT - 1), -1):
        text = lines[j]
        if text.startswith("=== ") and text[4:].split(None, 1)[-1].strip() == name:
            found = _messages(lines, j + 1, 4)
            if found:
                return found
    return []


def _is_goroot(path: str) -> bool:
    """A frame of the Go installation or of the generated test main."""
    return path.endswith("_testmain.go") or any(m in path for m in _GOROOT_MARKERS)


def _trace(lines: Sequence[str], start: int) -> tuple[str | None, str | None, int | None]:
    """From a goroutine dump starting at `start`: the test function running in it and the
    first frame outside the Go installation (path, line)."""
    test: str | None = None
    path: str | None = None
    line: int | None = None
    for j in range(start, min(len(lines), start + MAX_CONTEXT)):
        text = lines[j]
        if text.startswith(("FAIL\t", "ok  \t", "--- ")):
            break
        m = _FRAME.match(text)
        if m:
            if path is None and not _is_goroot(m.group("path")) and j > 0:
                caller = lines[j - 1]
                if not caller.startswith(("panic(", "runtime.", "testing.")):
                    path, line = rel_path(m.group("path")), int(m.group("line"))
            continue
        if test is None and not text.startswith(("testing.", "runtime.", "\t")):
            t = _TEST_FUNC.search(text)
            if t:
                test = t.group(1)
    return test, path, line


def _running_test(lines: Sequence[str], start: int) -> str | None:
    """Go 1.20+: the first test under ``running tests:`` after a timeout panic."""
    for j in range(start, min(len(lines), start + 5)):
        if lines[j].strip() == "running tests:" and j + 1 < len(lines):
            return lines[j + 1].strip().split(" (")[0] or None
    return None


_PACKAGE_END = ("ok  \t", "FAIL\t", "?   \t", "--- ", "=== ", "PASS", "##[")
_NOT_A_CAUSE = ("FAIL", "exit status ", "PASS", "testing: warning: no tests to run")


def _package_cause(lines: Sequence[str], fail: int) -> int | None:
    """The last line a failing package printed of its own before its ``FAIL\tpkg`` line
    (a TestMain's log.Fatal, a crash message), if any: at most 20 lines back."""
    for j in range(fail - 1, max(-1, fail - 21), -1):
        text = lines[j].strip()
        if not text or text.startswith(_NOT_A_CAUSE):
            continue
        if lines[j].startswith(_PACKAGE_END) or text.startswith("go: downloading "):
            return None
        return j
    return None


_RACE = "race detected during execution of test"


def _race(lines: Sequence[str], header: int, t: _Test) -> None:
    """A test failed by the race detector: the message and location of the ``WARNING: DATA
    RACE`` report above its result line (its first frame outside the Go installation)."""
    for j in range(header - 1, max(-1, header - MAX_CONTEXT - 1), -1):
        if lines[j].strip() == "WARNING: DATA RACE":
            access = lines[j + 1].strip() if j + 1 < len(lines) else ""
            for k in range(j + 1, min(len(lines), j + 40)):
                m = _RACE_FRAME.match(lines[k])
                if m and not _is_goroot(m.group("path")):
                    t.messages = [(rel_path(m.group("path")), int(m.group("line")), "")]
                    break
            t.code = "data-race"
            t.text = f"WARNING: DATA RACE: {access}".rstrip(": ")
            if t.messages:
                path, line, _ = t.messages[0]
                t.messages = [(path, line, t.text)]
            return


def _drop_parents(tests: list[_Test]) -> list[_Test]:
    """Without the tests that only failed because a subtest of theirs did."""
    parents: set[str] = set()
    for t in tests:
        parts = t.name.split("/")
        parents.update("/".join(parts[:k]) for k in range(1, len(parts)))
    return [t for t in tests if t.messages or t.code != "test-failed" or t.name not in parents]


def _to_failure(tool: str, t: _Test) -> Failure:
    """The failure of one failing test (its first message gives path, line and text)."""
    path, line = t.path, t.line
    message = t.text or f"--- FAIL: {t.name}"
    if t.messages:
        path, line, first = t.messages[0]
        parts = [first, *(m for _, _, m in t.messages[1:])]
        message = " | ".join(p for p in parts if p) or message
    return Failure(
        kind="test",
        tool=tool,
        message=clip(message),
        test_id=t.name or None,
        path=path,
        line=line,
        code=t.code,
        log_line=t.header,
    )


class GoTestParser:
    name = "go-test"
    ecosystem = "go"
    needles: tuple[str, ...] = ("--- FAIL: ", "panic: ", "fatal error: ", "FAIL\t", _JSON_FAIL)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        if any(lines[i].startswith('{"') for i in hits):
            yield from self._parse_json(lines, hits)
        found: list[Failure] = []
        tests: list[_Test] = []
        panics_done: set[int] = set()
        since_package = 0  # failures found since the last package FAIL line
        for i in hits:
            text = lines[i]
            if text.startswith('{"'):
                continue
            m = _RESULT.match(text)
            if m:
                indent = len(m.group("indent"))
                t = _Test(m.group("name"), i)
                t.messages = _messages(lines, i + 1, indent + 4)
                if not t.messages and i + 1 < len(lines) and lines[i + 1].startswith("panic: "):
                    t.code = "panic"
                    t.text = lines[i + 1].removesuffix(" [recovered]")
                    _, t.path, t.line = _trace(lines, i + 2)
                    panics_done.add(i + 1)
                elif not t.messages:
                    t.messages = _verbose_messages(lines, i, t.name)
                if t.messages and t.messages[0][2].startswith(_RACE):
                    _race(lines, i, t)
                tests.append(t)
                since_package += 1
                continue
            if text.startswith(("panic: ", "fatal error: ")) and i not in panics_done:
                failure = self._panic(lines, i)
                if failure is not None:
                    found.append(failure)
                    since_package += 1
                continue
            if text.startswith("FAIL\t"):
                if "[build failed]" in text or "[setup failed]" in text:
                    since_package = 0
                    continue
                if since_package == 0:
                    package = text.split("\t")[1]
                    cause = _package_cause(lines, i)
                    said = lines[cause].strip() if cause is not None else "no test failed"
                    found.append(
                        Failure(
                            kind="test",
                            tool=self.name,
                            message=clip(f"package {package} failed: {said}"),
                            code="package-failed",
                            log_line=i if cause is None else cause,
                        )
                    )
                since_package = 0
        found.extend(_to_failure(self.name, t) for t in _drop_parents(tests))
        yield from sorted(found, key=lambda f: f.log_line)

    def _panic(self, lines: Sequence[str], i: int) -> Failure | None:
        text = lines[i].strip()
        test, path, line = _trace(lines, i + 1)
        if "test timed out after" in text:
            test = _running_test(lines, i + 1) or test
            return Failure(
                kind="timeout",
                tool=self.name,
                message=clip(text),
                test_id=test,
                path=path,
                line=line,
                code="test-timeout",
                log_line=i,
            )
        window = lines[i + 1 : i + MAX_CONTEXT]
        if not any("testing.tRunner" in w or "testing.(*M)" in w for w in window):
            return None
        return Failure(
            kind="test",
            tool=self.name,
            message=clip(text.removesuffix(" [recovered]")),
            test_id=test,
            path=path,
            line=line,
            code="fatal-error" if text.startswith("fatal error: ") else "panic",
            log_line=i,
        )

    def _parse_json(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        tests: list[_Test] = []
        failed_packages: set[str] = set()
        for i in hits:
            text = lines[i]
            if not text.startswith('{"') or _JSON_FAIL not in text:
                continue
            event = _event(text)
            if event is None:
                continue
            package = str(event.get("Package", ""))
            name = event.get("Test")
            if not name:
                if package not in failed_packages:
                    tests.append(_Test("", i, code="package-failed"))
                continue
            failed_packages.add(package)
            t = _Test(str(name), i)
            for j in range(i - 1, max(-1, i - MAX_CONTEXT - 1), -1):
                if '"Output":' not in lines[j]:
                    continue
                e = _event(lines[j])
                if e is None or e.get("Test") != name or e.get("Package") != package:
                    continue
                out = str(e.get("Output", "")).rstrip("\n")
                if out.lstrip().startswith("--- FAIL: "):
                    t.header = j
                elif out.startswith("=== RUN"):
                    break
                else:
                    m = _MESSAGE.match(out)
                    if m:
                        t.messages.insert(
                            0, (m.group("path"), int(m.group("line")), m.group("msg").strip())
                        )
            tests.append(t)
        for t in _drop_parents(tests):
            if t.code == "package-failed":
                yield Failure(
                    kind="test",
                    tool=self.name,
                    message="package failed",
                    code="package-failed",
                    log_line=t.header,
                )
            else:
                yield _to_failure(self.name, t)


def _event(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


PARSER = GoTestParser()
