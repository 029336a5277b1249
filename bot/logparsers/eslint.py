"""eslint: lint errors in the default ``stylish`` format and in ``--format unix``.

Recognises

- stylish: a file header line (``/home/runner/work/demo/demo/src/queue.js``) followed by
  indented messages ``   8:11  error  'size' is assigned a value but never used  no-unused-vars``
  (the rule is missing for parse errors: ``  1:7  error  Parsing error: Unexpected token``);
- unix: ``src/queue.js:8:11: 'size' is assigned a value but never used [Error/no-unused-vars]``.

kind "lint", code the rule (``no-unused-vars``; ``parsing-error`` for parse errors), path from
the file header made repository-relative, line from the message. Warnings are reported only when
eslint says they failed the run (``ESLint found too many warnings (maximum: 0).``). The summary
(``✖ 2 problems (2 errors, 0 warnings)``) is not a failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_STYLISH = re.compile(
    r"^\s+(?P<line>\d+):(?P<col>\d+)\s+(?P<sev>error|warning)\s{2,}(?P<rest>\S.*?)\s*$"
)
_RULE = re.compile(r"^(?P<msg>.*\S)\s{2,}(?P<rule>@?[\w-]+(?:/[\w-]+)*)$")
_UNIX = re.compile(
    r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<msg>.*) "
    r"\[(?P<sev>Error|Warning)(?:/(?P<rule>[^\]]+))?\]\s*$"
)
_TOO_MANY = "ESLint found too many warnings"


class EslintParser:
    name = "eslint"
    ecosystem = "js"
    #: warnings are read only above "too many warnings" (a passing run may print many)
    needles = ("  error  ", " [Error/", _TOO_MANY)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        candidates = set(hits)
        warnings_fail = False
        for i in hits:
            if _TOO_MANY in lines[i]:
                warnings_fail = True
                candidates.update(
                    j
                    for j in range(max(0, i - MAX_CONTEXT), i)
                    if "  warning  " in lines[j] or " [Warning/" in lines[j]
                )
        for i in sorted(candidates):
            text = lines[i]
            m = _STYLISH.match(text)
            if m:
                if m.group("sev") == "warning" and not warnings_fail:
                    continue
                path = _file_header(lines, i)
                if path is None:
                    continue
                rest = m.group("rest")
                r = _RULE.match(rest)
                message, rule = (r.group("msg"), r.group("rule")) if r else (rest, None)
                if rule is None:
                    if not message.startswith("Parsing error"):
                        continue
                    rule = "parsing-error"
                yield self._failure(path, int(m.group("line")), message, rule, i)
                continue
            u = _UNIX.match(text)
            if u:
                if u.group("sev") == "Warning" and not warnings_fail:
                    continue
                msg = u.group("msg")
                rule = u.group("rule") or ("parsing-error" if "Parsing error" in msg else None)
                yield self._failure(rel_path(u.group("path")), int(u.group("line")), msg, rule, i)

    def _failure(self, path: str, line: int, msg: str, rule: str | None, i: int) -> Failure:
        return Failure(
            kind="lint",
            tool=self.name,
            message=clip(f"{path}:{line}: {msg}" + (f" ({rule})" if rule else "")),
            path=path,
            line=line,
            code=rule,
            log_line=i,
        )


def _file_header(lines: Sequence[str], i: int) -> str | None:
    """The stylish file header above the message at `i`: the first unindented line going up
    over the other messages of the file."""
    for j in range(i - 1, max(-1, i - MAX_CONTEXT - 1), -1):
        text = lines[j]
        if not text.strip():
            return None
        if text[0] not in " \t":
            path = text.strip()
            if " " in path or not ("/" in path or "." in path):
                return None
            return rel_path(path)
        if not _STYLISH.match(text):
            return None
    return None


PARSER = EslintParser()
