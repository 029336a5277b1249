"""vitest: failing tests and test files that failed to load (the default reporter).

Recognises the detail blocks below ``⎯⎯⎯ Failed Tests 1 ⎯⎯⎯`` (colours gone in cleaned lines):

- `` FAIL  src/stats.test.ts > stats > median > of an even count is the mean …``: a failing
  test. kind "test", test_id the names after the file joined by `` > ``, path the file, line
  from the first `` ❯ src/stats.test.ts:26:36`` frame in that file, message the error line
  (``AssertionError: expected 3.5 to be 2.5 // Object.is equality``), code the error's name;
  ``Error: Test timed out in 5000ms.`` (or ``Hook timed out``) is kind "timeout", code
  ``test-timeout``;
- `` FAIL  src/broken.test.ts [ src/broken.test.ts ]`` (under "Failed Suites"): the file did
  not load. kind "test", code ``suite-failed``.

The per-file list above it (`` ❯ src/stats.test.ts (10 tests | 1 failed)``, ``   × …``) only
repeats the blocks and is not read; the ``::error`` annotations vitest adds on GitHub Actions
are the annotation parser's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_HEADER = re.compile(r"^ FAIL {2}(?P<path>\S+)(?: > (?P<names>.*?))?(?: \[ (?P<suite>\S+) \])?\s*$")
_FRAME = re.compile(r"^\s*❯ (?:\S+ )?\(?(?P<path>[^\s()]+?):(?P<line>\d+):\d+\)?\s*$")
_ERROR = re.compile(r"^(?P<name>[A-Z]\w*(?:Error|Exception)|Error)\b")


class VitestParser:
    name = "vitest"
    ecosystem = "js"
    needles = (" FAIL  ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        seen: set[tuple[str, str | None]] = set()
        for i in hits:
            m = _HEADER.match(lines[i])
            if not m:
                continue
            path = rel_path(m.group("path"))
            names = m.group("names")
            if (path, names) in seen:
                continue
            seen.add((path, names))
            message, code, line = _block(lines, i, path)
            if names is None:
                yield Failure(
                    kind="test",
                    tool=self.name,
                    message=clip(f"{path} failed to load: {message}"),
                    test_id=path,
                    path=path,
                    line=line,
                    code="suite-failed",
                    log_line=i,
                )
                continue
            timeout = " timed out in " in message
            yield Failure(
                kind="timeout" if timeout else "test",
                tool=self.name,
                message=clip(f"{names}: {message}" if message else names),
                test_id=names,
                path=path,
                line=line,
                code="test-timeout" if timeout else code,
                log_line=i,
            )


def _block(lines: Sequence[str], i: int, path: str) -> tuple[str, str, int | None]:
    message = ""
    code = "test-failed"
    line: int | None = None
    for j in range(i + 1, min(len(lines), i + 1 + MAX_CONTEXT)):
        text = lines[j]
        if text.startswith(" FAIL  ") or "⎯⎯⎯" in text:
            break
        stripped = text.strip()
        if not message and stripped:
            message = stripped
            e = _ERROR.match(stripped)
            if e:
                code = e.group("name")
            continue
        f = _FRAME.match(text)
        if f:
            where = rel_path(f.group("path"))
            if line is None or where == path:
                line = int(f.group("line"))
            if where == path:
                break
    return message, code, line


PARSER = VitestParser()
