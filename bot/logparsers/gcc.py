"""gcc / g++ (and clang, which prints the same shape): C and C++ compile errors.

Recognises, at the start of a line:

- ``src/calc.c:17:16: error: ‘divisor’ undeclared (first use in this function)`` (also
  ``path:line: error:`` without a column): kind "compile", path/line from the line;
- ``src/main.c:5:10: fatal error: version.h: No such file or directory`` (clang: ``fatal error:
  'version.h' file not found``): code ``missing-header``;
- a warning made an error by ``-Werror``: ``src/calc.c:10:9: error: unused variable ‘scale’
  [-Werror=unused-variable]``: code ``-Werror=unused-variable`` (the bracketed option of any
  error is its code);
- the driver's own errors, ``gcc: error: unrecognized command-line option ‘-fno-foo’``,
  ``cc1plus: error: …``: code ``driver``.

Only paths with a C/C++ source or header suffix (``.c``, ``.cpp``, ``.h``, ``.hpp``, …) or an
extension-less header under an ``include/`` directory (``/usr/include/c++/12/vector``) are
read, so a Python type checker's ``app.py:3: error:`` is never taken. An error inside a system
header (a template instantiated from the project, ``std::sort`` on a ``std::list``) gets the
project's location from the ``src/report.cpp:18:14:   required from here`` line above it.

The ``note:`` lines (candidates, ``declared here``), warnings, ``cc1: all warnings being treated
as errors``, ``compilation terminated.`` and make's ``*** [...] Error 1`` are not failures.
Other codes are a short slug of the message (``undeclared``, ``syntax``,
``no-matching-function``, ``no-match-operator``, ``wrong-argument-count``, ``type-mismatch``,
``implicit-declaration``, ``redefinition``, ``no-member``, ``incomplete-type``, else
``error``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_SUFFIXES = (
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".cxx",
    ".c++",
    ".cp",
    ".hh",
    ".hpp",
    ".hxx",
    ".h++",
    ".ipp",
    ".tcc",
    ".inl",
    ".inc",
    ".m",
    ".mm",
    ".cu",
    ".C",
    ".H",
)
_DIAGNOSTIC = re.compile(
    r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)? "
    r"(?P<severity>error|fatal error): (?P<msg>.+)$"
)
_DRIVER = re.compile(
    r"^(?:[\w./-]*/)?(?:gcc|g\+\+|cc|c\+\+|cc1|cc1plus|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?: "
    r"(?:fatal )?error: (?P<msg>.+)$"
)
_OPTION = re.compile(r" \[(-W[^\]\s]+)\]$")
_REQUIRED_HERE = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?   required from here$")
#: A diagnostic line above an error ends its instantiation context.
_OTHER_DIAGNOSTIC = (": error: ", ": fatal error: ", ": warning: ")
_SLUGS: tuple[tuple[str, str], ...] = (
    ("No such file or directory", "missing-header"),
    ("file not found", "missing-header"),
    ("undeclared", "undeclared"),
    ("was not declared in this scope", "undeclared"),
    ("use of undeclared identifier", "undeclared"),
    ("no matching function for call", "no-matching-function"),
    ("no matching member function", "no-matching-function"),
    ("no match for ", "no-match-operator"),
    ("invalid operands to binary", "no-match-operator"),
    ("too few arguments", "wrong-argument-count"),
    ("too many arguments", "wrong-argument-count"),
    ("expected ", "syntax"),
    ("implicit declaration of function", "implicit-declaration"),
    ("redefinition of", "redefinition"),
    ("conflicting types for", "redefinition"),
    ("has no member named", "no-member"),
    ("is not a member of", "no-member"),
    ("has incomplete type", "incomplete-type"),
    ("invalid use of incomplete type", "incomplete-type"),
    ("incompatible type", "type-mismatch"),
    ("cannot convert", "type-mismatch"),
    ("invalid conversion from", "type-mismatch"),
)


def c_path(path: str) -> bool:
    """Whether `path` names a C/C++ source or header (an extension-less one under include/)."""
    if path.endswith(_SUFFIXES):
        return True
    name = path.rsplit("/", 1)[-1]
    return "." not in name and "/include/" in path


def error_code(message: str) -> str:
    """The bracketed option of an error (``-Werror=unused-variable``), else a message slug."""
    m = _OPTION.search(message)
    if m:
        return m.group(1)
    for needle, slug in _SLUGS:
        if needle in message:
            return slug
    return "error"


def _project_location(lines: Sequence[str], i: int, path: str, line: int) -> tuple[str, int]:
    """For an error in a system header, the ``required from here`` line of the project above it
    (within the same diagnostic's context lines)."""
    if not path.startswith("/"):
        return path, line
    for j in range(i - 1, max(-1, i - MAX_CONTEXT), -1):
        text = lines[j]
        m = _REQUIRED_HERE.match(text)
        if m:
            found = rel_path(m.group("path"))
            if not found.startswith("/"):
                return found, int(m.group("line"))
            continue
        if not text.strip() or any(
            s in text for s in (": error: ", ": fatal error: ", ": warning: ")
        ):
            break
    return path, line


class GccParser:
    name = "gcc"
    ecosystem = "c"
    needles = (": error: ", ": fatal error: ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i]
            m = _DIAGNOSTIC.match(text)
            if m is not None:
                if not c_path(m.group("path")):
                    continue
                message = m.group("msg")
                path, line = _project_location(
                    lines, i, rel_path(m.group("path")), int(m.group("line"))
                )
                code = error_code(message)
                yield Failure(
                    kind="compile",
                    tool=self.name,
                    message=clip(message),
                    path=path,
                    line=line,
                    code=code,
                    log_line=i,
                )
                continue
            d = _DRIVER.match(text)
            if d is not None:
                yield Failure(
                    kind="compile",
                    tool=self.name,
                    message=clip(d.group("msg")),
                    code="driver",
                    log_line=i,
                )


PARSER = GccParser()
