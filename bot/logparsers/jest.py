"""jest: failing tests and test files that failed to run (the default reporter).

Recognises, below the ``FAIL src/cart.test.js`` line of a test file:

- ``  ● cart › total › applies the discount before tax``: a failing test. kind "test", test_id
  the describe/test names joined by `` › ``, path the test file, line from the first stack
  frame in that file (``      at Object.toBe (src/cart.test.js:24:61)`` or
  ``at Object.<anonymous> (…)``), the message from the block's first lines
  (``expect(received).toBe(expected) // Object.is equality`` with ``Expected: 10.8`` /
  ``Received: 21``), code the matcher (``toBe``) or ``test-failed``; a test that ran out of
  time (``thrown: "Exceeded timeout of 5000 ms for a test.``) is kind "timeout", code
  ``test-timeout``;
- ``  ● Test suite failed to run``: the file could not be loaded (a syntax error, a missing
  module): kind "test", code ``suite-failed``, the error's first line as message.

The ``● Console`` blocks (console.log output) and ``● Validation Warning`` / ``● Deprecation
Warning`` notes are not failures. "Summary of all failing tests" repeats the blocks; a test is
reported once (at its first block).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_HEADER = re.compile(r"^ {2}● (?P<title>\S.*?)\s*$")
_FILE = re.compile(r"^FAIL (?:\s*\S+\s{2,})?(?P<path>\S+?)(?: \([\d.]+ m?s\))?\s*$")
_FRAME = re.compile(r"^\s+at (?:.*? \()?(?P<path>[^\s()]+?):(?P<line>\d+):\d+\)?\s*$")
_MATCHER = re.compile(r"expect\((?:received|value)\)(?:\.\w+)*\.(?P<m>\w+)\(")
_NOT_FAILURES = ("Console", "Validation Warning", "Deprecation Warning", "Validation Error")
_SUITE = "Test suite failed to run"


class JestParser:
    name = "jest"
    ecosystem = "js"
    needles = ("  ● ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        seen: set[tuple[str | None, str]] = set()
        for i in hits:
            m = _HEADER.match(lines[i])
            if not m:
                continue
            title = m.group("title")
            if title.startswith(_NOT_FAILURES) or title.endswith(":"):
                continue
            path = _test_file(lines, i)
            key = (path, title)
            if key in seen:
                continue
            seen.add(key)
            message, code, line = _block(lines, i, path)
            if title == _SUITE:
                yield Failure(
                    kind="test",
                    tool=self.name,
                    message=clip(f"{path or 'test file'} failed to run: {message}"),
                    test_id=path,
                    path=path,
                    line=line,
                    code="suite-failed",
                    log_line=i,
                )
                continue
            timeout = "Exceeded timeout of" in message
            yield Failure(
                kind="timeout" if timeout else "test",
                tool=self.name,
                message=clip(f"{title}: {message}" if message else title),
                test_id=title,
                path=path,
                line=line,
                code="test-timeout" if timeout else code,
                log_line=i,
            )


def _test_file(lines: Sequence[str], i: int) -> str | None:
    """The file of the nearest ``FAIL <file>`` line above a ``●`` header."""
    for j in range(i - 1, max(-1, i - MAX_CONTEXT - 1), -1):
        text = lines[j]
        if text.startswith("FAIL "):
            m = _FILE.match(text)
            return rel_path(m.group("path")) if m else None
        if text.startswith("PASS "):
            return None
    return None


def _block(lines: Sequence[str], i: int, path: str | None) -> tuple[str, str, int | None]:
    """(message, code, line) of the block under the header at `i`."""
    parts: list[str] = []
    code = "test-failed"
    line: int | None = None
    first_frame: int | None = None
    for j in range(i + 1, min(len(lines), i + 1 + MAX_CONTEXT)):
        text = lines[j]
        stripped = text.strip()
        if _HEADER.match(text) or text.startswith(("FAIL ", "PASS ", "Test Suites:")):
            break
        frame = _FRAME.match(text)
        if frame:
            where = rel_path(frame.group("path"))
            if first_frame is None and "node_modules/" not in where and "node:" not in where:
                first_frame = int(frame.group("line"))
            if path and where == path:
                line = int(frame.group("line"))
                break
            continue
        if not stripped or stripped.startswith((">", "|")) or stripped[:1].isdigit():
            continue  # blank lines and the code frame (`> 24 | expect(…)`, ` 25 | })`)
        if len(parts) < 4 and len(" ".join(parts)) < 250:
            m = _MATCHER.search(stripped)
            if m and code == "test-failed":
                code = m.group("m")
            if stripped.startswith(("Expected", "Received", "- Expected", "+ Received")) or (
                not parts
            ):
                parts.append(stripped)
    return "; ".join(parts), code, line if line is not None else first_frame


PARSER = JestParser()
