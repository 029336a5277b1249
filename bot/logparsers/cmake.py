"""CMake configure (and generate) errors.

Recognises ``CMake Error at CMakeLists.txt:4 (find_package):`` and the indented message under
it (up to the next unindented line, e.g. ``Call Stack (most recent call first):`` or
``-- Configuring incomplete, errors occurred!``, which are not failures), ``CMake Error in
CMakeLists.txt:`` (generate time) and ``CMake Error: …`` (no location).

- path/line: the project's file and line; for an error raised inside one of CMake's own modules
  (``CMake Error at /usr/share/cmake-3.25/Modules/FindPackageHandleStandardArgs.cmake:230
  (message):``), the project's frame of the ``Call Stack`` (``CMakeLists.txt:4
  (find_package)``), and the failure's line is the first message line (``Could NOT find CURL
  (missing: CURL_LIBRARY CURL_INCLUDE_DIR)``), which says more than the module's header;
- code: the command of that frame (``find_package``, ``add_executable``, ``message``, …), else
  ``cmake``;
- kind: "dependency" for a package not found (``find_package``, ``pkg_check_modules``, ``Could
  NOT find``, ``Could not find a package configuration file``, ``A required package was not
  found``); "unknown" for the project's own ``message(FATAL_ERROR …)`` and for errors without a
  location; else "compile" (the build's configuration is broken: a missing source file, an
  unknown target).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Category, Failure, clip, rel_path

#: Message lines read under one error.
BLOCK_LINES = 80

_AT = re.compile(r"^CMake Error (?:at|in) (?P<path>.+?)(?::(?P<line>\d+))?(?: \((?P<cmd>\w+)\))?:$")
_PLAIN = re.compile(r"^CMake Error: (?P<msg>.+)$")
_FRAME = re.compile(r"^\s+(?P<path>\S.*?):(?P<line>\d+) \((?P<cmd>\w+)\)$")
_PACKAGE_COMMANDS = ("find_package", "pkg_check_modules", "pkg_search_module", "find_library")
_PACKAGE_MESSAGES = (
    "Could NOT find ",
    "Could not find a package configuration file",
    "A required package was not found",
    "None of the required ",
    "could not be found",
)


class CMakeParser:
    name = "cmake"
    ecosystem = "c"
    needles = ("CMake Error",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i].rstrip()
            m = _AT.match(text)
            if m is not None:
                yield self._located(lines, i, m)
                continue
            p = _PLAIN.match(text)
            if p is not None:
                yield Failure(
                    kind="unknown",
                    tool=self.name,
                    message=clip(text),
                    code="cmake",
                    log_line=i,
                )

    def _located(self, lines: Sequence[str], i: int, m: re.Match[str]) -> Failure:
        message: list[str] = []
        frames: list[tuple[str, int, str]] = []
        first_message: int | None = None
        in_stack = False
        for j in range(i + 1, min(len(lines), i + 1 + BLOCK_LINES)):
            text = lines[j].rstrip()
            if not text:
                continue
            if text.startswith("Call Stack (most recent call first):"):
                in_stack = True
                continue
            if not text.startswith(" "):
                break
            if in_stack:
                f = _FRAME.match(text)
                if f:
                    frames.append((rel_path(f.group("path")), int(f.group("line")), f.group("cmd")))
                continue
            if first_message is None:
                first_message = j
            message.append(text.strip())
        path = rel_path(m.group("path"))
        line = int(m.group("line")) if m.group("line") else None
        cmd = m.group("cmd")
        log_line = i
        if path.startswith("/"):
            # raised in one of CMake's modules: the project's frame says where, the message what
            project = [fr for fr in frames if not fr[0].startswith("/")]
            if project:
                path, line, cmd = project[-1]
            if first_message is not None:
                log_line = first_message
        body = " ".join(message)
        kind: Category = "compile"
        if (
            cmd in _PACKAGE_COMMANDS
            or any(c in _PACKAGE_COMMANDS for _, _, c in frames)
            or any(s in body for s in _PACKAGE_MESSAGES)
        ):
            kind = "dependency"
        elif cmd == "message":
            kind = "unknown"
        header = lines[i].strip()
        return Failure(
            kind=kind,
            tool=self.name,
            message=clip(f"{header} {body}" if body else header),
            path=path,
            line=line,
            code=cmd or "cmake",
            log_line=log_line,
        )


PARSER = CMakeParser()
