"""tsc: TypeScript compiler diagnostics, in the plain and the ``--pretty`` form.

Recognises

- ``src/user.ts(12,28): error TS2367: This comparison appears to be unintentional …`` (the
  default when stdout is not a terminal, as on a runner);
- ``src/user.ts:12:28 - error TS2367: This comparison …`` (``--pretty``, or a terminal; the
  colours are gone in cleaned lines);
- ``error TS5058: The specified path does not exist: 'tsconfig.json'.`` (no file).

kind "types" for the type checker's errors, "compile" for syntax errors (TS1xxx) and for the
configuration/option errors (TS5xxx, TS6xxx); code the ``TS…`` number, path and line from the
diagnostic. ``Found 2 errors in the same file`` and the ``--pretty`` related-information lines
(``  src/user.ts:2:3``) are not failures. Warnings (``warning TS…``) are not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Category, Failure, clip, rel_path

_PLAIN = re.compile(
    r"^(?P<path>[^\s(][^()]*?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<msg>.*)$"
)
_PRETTY = re.compile(
    r"^(?P<path>\S[^:]*?):(?P<line>\d+):(?P<col>\d+) - error (?P<code>TS\d+): (?P<msg>.*)$"
)
_GLOBAL = re.compile(r"^error (?P<code>TS\d+): (?P<msg>.*)$")


def _kind(code: str) -> Category:
    number = int(code[2:])
    if number < 2000 or 5000 <= number < 7000:
        return "compile"
    return "types"


class TscParser:
    name = "tsc"
    ecosystem = "js"
    needles = ("error TS",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i].strip()
            m = _PLAIN.match(text) or _PRETTY.match(text)
            path: str | None = None
            line: int | None = None
            if m:
                path, line = rel_path(m.group("path")), int(m.group("line"))
            else:
                m = _GLOBAL.match(text)
                if not m:
                    continue
            code = m.group("code")
            where = f"{path}:{line}: " if path else ""
            yield Failure(
                kind=_kind(code),
                tool=self.name,
                message=clip(f"{where}error {code}: {m.group('msg')}"),
                path=path,
                line=line,
                code=code,
                log_line=i,
            )


PARSER = TscParser()
