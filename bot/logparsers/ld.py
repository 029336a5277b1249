"""The linker (GNU ld / gold / lld, as gcc, g++ or clang run it): link errors of C and C++.

Recognises:

- ``/home/runner/work/p/p/src/main.c:23: undefined reference to `calc_pow'`` (with ``-g``;
  without it ``main.c:(.text+0x1e): undefined reference to …``, the object's source name and
  no line), under ``/usr/bin/ld: build/main.o: in function `main':`` (added to the message):
  kind "compile", code ``undefined-reference``;
- lld's ``ld.lld: error: undefined symbol: calc_pow`` (path/line from its ``>>> referenced by
  main.c:23`` line): code ``undefined-reference``;
- ``multiple definition of `x'``: code ``multiple-definition``;
- ``/usr/bin/ld: cannot find -lsodium: No such file or directory`` (lld: ``ld.lld: error: unable
  to find library -lsodium``, also as rustc relays it, ``= note: rust-lld: error: …``): a
  library the runner does not have, code ``missing-library``; kind "compile" like every link
  error (as cargo's ``linking with `cc` failed`` for a missing native library; a package
  manager's resolution failure is "dependency");
- ``collect2: error: ld returned 1 exit status`` / clang's ``linker command failed with exit
  code 1`` only when the log shows none of the above (they are trailers: the linker said why
  above them): code ``link``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip, rel_path

_LD_PREFIX = re.compile(
    r"^(?:= note: )?(?:\S*/)?(?:ld(?:\.\w+)?|ld64\.lld|[\w-]*lld|mold)(?:-\d+)?: (?:error: )?"
)
_UNDEFINED = re.compile(
    r"^(?:[^\s:]+\.o:)?(?:(?P<loc>[^\s:][^:]*?)(?::(?P<line>\d+)|:\([^)]*\))?: )?"
    r"undefined reference to "
    r"[`'‘](?P<symbol>[^'’]+)['’]"
)
_IN_FUNCTION = re.compile(r": in function [`'‘]([^'’]+)['’]:$")
_LLD_UNDEFINED = re.compile(r"^undefined symbol: (?P<symbol>.+)$")
_REFERENCED = re.compile(r"^>>> referenced by (?P<path>[^:\s]+):(?P<line>\d+)")
_MULTIPLE = re.compile(r"multiple definition of [`'‘](?P<symbol>[^'’]+)['’]")
_MISSING_LIB = re.compile(
    r"(?:cannot|unable to) find (?:library )?(?P<lib>-l\S+?|\S+\.(?:so|a))(?::|$)"
)
_TRAILERS = ("collect2: error: ld returned", "linker command failed with exit code")


def _object(loc: str | None) -> bool:
    return loc is None or loc.endswith((".o", ".obj", ")")) or ".a(" in loc


class LdParser:
    name = "ld"
    ecosystem = "c"
    needles = (
        "undefined reference to ",
        "undefined symbol: ",
        "multiple definition of ",
        "cannot find -l",
        "unable to find library -l",
        "collect2: error: ",
        "linker command failed",
    )

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        trailers: list[int] = []
        for i in hits:
            text = lines[i].strip()
            if text.startswith(_TRAILERS) or "linker command failed" in text:
                trailers.append(i)
                continue
            body = _LD_PREFIX.sub("", text, count=1)
            found = self._finding(lines, i, body)
            if found is not None:
                out.append(found)
        if not out:
            for i in trailers:
                out.append(
                    Failure(
                        kind="compile",
                        tool=self.name,
                        message=clip(lines[i]),
                        code="link",
                        log_line=i,
                    )
                )
        return out

    def _finding(self, lines: Sequence[str], i: int, body: str) -> Failure | None:
        m = _UNDEFINED.match(body)
        if m:
            loc = m.group("loc")
            message = f"undefined reference to `{m.group('symbol')}'"
            if i > 0 and (f := _IN_FUNCTION.search(lines[i - 1].strip())):
                message += f" (in function `{f.group(1)}')"
            line = m.group("line")
            return Failure(
                kind="compile",
                tool=self.name,
                message=clip(message),
                path=None if _object(loc) else rel_path(loc or ""),
                line=int(line) if line and not _object(loc) else None,
                code="undefined-reference",
                log_line=i,
            )
        u = _LLD_UNDEFINED.match(body)
        if u:
            path: str | None = None
            line_no: int | None = None
            for j in range(i + 1, min(len(lines), i + 4)):
                r = _REFERENCED.match(lines[j].strip())
                if r:
                    path, line_no = rel_path(r.group("path")), int(r.group("line"))
                    break
            return Failure(
                kind="compile",
                tool=self.name,
                message=clip(f"undefined symbol: {u.group('symbol')}"),
                path=path,
                line=line_no,
                code="undefined-reference",
                log_line=i,
            )
        d = _MULTIPLE.search(body)
        if d:
            return Failure(
                kind="compile",
                tool=self.name,
                message=clip(body),
                code="multiple-definition",
                log_line=i,
            )
        lib = _MISSING_LIB.search(body)
        if lib:
            return Failure(
                kind="compile",
                tool=self.name,
                message=clip(f"cannot find {lib.group('lib')}"),
                code="missing-library",
                log_line=i,
            )
        return None


PARSER = LdParser()
