"""mocha: the failing tests listed under ``  2 failing`` (spec, dot and list reporters).

Recognises each numbered block after the ``N failing`` line::

      1) parseQuery
           decodes plus as space:

          AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:
          …
          at Context.<anonymous> (test/query.test.js:14:12)

kind "test", test_id the suite and test titles joined by spaces (mocha's full title), path and
line from the first stack frame outside node_modules and node's internals, message the error
line, code the error's name (``AssertionError``; ``hook-failed`` for a ``"before each" hook``).
``Error: Timeout of 2000ms exceeded. … (/home/runner/work/demo/demo/test/server.test.js)`` is
kind "timeout", code ``test-timeout``, the path from the parentheses.
The numbered entries in the progress list (``    1) decodes plus as space``) are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_FAILING = re.compile(r"^\s*(?P<n>\d+) failing\s*$")
_BLOCK = re.compile(r"^ {2}(?P<n>\d+)\) (?P<title>\S.*?)\s*$")
_FRAME = re.compile(r"^\s+at (?:.*? \()?(?P<path>[^\s()]+?):(?P<line>\d+):\d+\)?\s*$")
_ERROR = re.compile(r"^(?P<name>[A-Z]\w*(?:Error|Exception)|Error)\b")
_TIMEOUT = re.compile(r"^Error: Timeout of \d+ms exceeded\..*?(?:\((?P<path>[^()\s]+)\))?$")
#: At most this many blocks are read after one "N failing" line.
MAX_BLOCKS = 100


class MochaParser:
    name = "mocha"
    ecosystem = "js"
    needles = (" failing",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            m = _FAILING.match(lines[i])
            if not m:
                continue
            j = i + 1
            blocks = 0
            limit = min(int(m.group("n")), MAX_BLOCKS)
            while j < len(lines) and blocks < limit and j <= i + MAX_CONTEXT * limit:
                b = _BLOCK.match(lines[j])
                if not b:
                    if lines[j].strip() and blocks == 0 and j > i + 3:
                        break
                    j += 1
                    continue
                blocks += 1
                failure, j = _read_block(lines, j, b.group("title"))
                yield failure


def _read_block(lines: Sequence[str], start: int, first: str) -> tuple[Failure, int]:
    titles = [first]
    j = start + 1
    end = min(len(lines), start + MAX_CONTEXT)
    while not titles[-1].endswith(":") and j < end and len(titles) < 12 and lines[j].strip():
        titles.append(lines[j].strip())
        j += 1
    test_id = " ".join(titles).rstrip(":").strip()
    message = ""
    code = "test-failed"
    path: str | None = None
    line: int | None = None
    while j < end:
        text = lines[j]
        if _BLOCK.match(text):
            break
        stripped = text.strip()
        f = _FRAME.match(text)
        if f:
            where = rel_path(f.group("path"))
            if path is None and "node_modules/" not in where and not where.startswith("node:"):
                path, line = where, int(f.group("line"))
        elif stripped and not message:
            message = stripped
            e = _ERROR.match(stripped)
            if e:
                code = e.group("name")
        j += 1
    if '" hook' in test_id:
        code = "hook-failed"
    timeout = _TIMEOUT.match(message)
    if timeout:
        code = "test-timeout"
        if path is None and timeout.group("path"):
            path = rel_path(timeout.group("path"))
    failure = Failure(
        kind="timeout" if timeout else "test",
        tool="mocha",
        message=clip(f"{test_id}: {message}" if message else test_id),
        test_id=test_id,
        path=path,
        line=line,
        code=code,
        log_line=start,
    )
    return failure, j


PARSER = MochaParser()
