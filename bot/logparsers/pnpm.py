"""pnpm: the `` ERR_PNPM_…`` and `` ELIFECYCLE `` errors pnpm prints when a command fails (the
label is set off by spaces, thin spaces U+2009 in pnpm 9).

Recognises

- `` ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" because pnpm-lock.yaml
  is not up to date with <ROOT>/package.json``, ``ERR_PNPM_FETCH_404``,
  ``ERR_PNPM_NO_MATCHING_VERSION``, ``ERR_PNPM_PEER_DEP_ISSUES``, the lockfile and tarball
  errors: kind "dependency";
- ``ERR_PNPM_META_FETCH_FAIL``, ``ERR_PNPM_FETCH_5xx``, network error codes, ``ENOSPC``:
  kind "infrastructure";
- ``ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL  demo@1.0.0 test: `jest```,
  `` ELIFECYCLE  Test failed. See above for more details.``, `` ELIFECYCLE  Command failed with
  exit code 1.``: a package.json script failed; the kind follows the script (see
  `bot.logparsers.npm.script_kind`), code ``ELIFECYCLE`` / the ERR_PNPM code;
- ``ERR_PNPM_NO_SCRIPT  Missing script: lint``: kind "unknown".

code the printed code; message the text after it. Warnings (`` WARN  …``) are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip
from bot.logparsers.npm import script_kind

_ERROR = re.compile(r"^(?:\S+:\s+)?(?P<code>ERR_PNPM_[A-Z0-9_]+|ELIFECYCLE)\s+(?P<msg>\S.*?)\s*$")
_SCRIPT = re.compile(r"^(?P<pkg>\S+@\S+) (?P<script>[\w:.-]+): `(?P<cmd>.*)`")
_HEADER = re.compile(r"^> (?P<pkg>\S+@\S+) (?P<script>[\w:.-]+) ")
_DEPENDENCY = (
    "ERR_PNPM_OUTDATED_LOCKFILE",
    "ERR_PNPM_FETCH_4",
    "ERR_PNPM_NO_MATCHING_VERSION",
    "ERR_PNPM_NO_MATURE_MATCHING_VERSION",
    "ERR_PNPM_PEER_DEP_ISSUES",
    "ERR_PNPM_LOCKFILE",
    "ERR_PNPM_TARBALL",
    "ERR_PNPM_BAD_TARBALL",
    "ERR_PNPM_UNSUPPORTED_ENGINE",
    "ERR_PNPM_NO_OFFLINE",
    "ERR_PNPM_FROZEN_LOCKFILE",
    "ERR_PNPM_BROKEN_LOCKFILE",
    "ERR_PNPM_NO_VERSIONS",
    "ERR_PNPM_INVALID_PACKAGE_NAME",
    "ERR_PNPM_SPEC_NOT_SUPPORTED",
    "ERR_PNPM_UNSUPPORTED_PLATFORM",
    "ERR_PNPM_NO_MATCHING",
)
_INFRASTRUCTURE = (
    "ERR_PNPM_META_FETCH_FAIL",
    "ERR_PNPM_FETCH_5",
    "ERR_PNPM_ECONN",
    "ERR_PNPM_ETIMEDOUT",
    "ERR_PNPM_ENOSPC",
    "ERR_PNPM_EAI_AGAIN",
    "ERR_PNPM_ENOTFOUND",
    "ERR_PNPM_SOCKET",
)
_RUN_FAILED = (
    "ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL",
    "ERR_PNPM_RECURSIVE_EXEC_FIRST_FAIL",
    "ERR_PNPM_RECURSIVE_FAIL",
)


class PnpmParser:
    name = "pnpm"
    ecosystem = "js"
    needles = ("ERR_PNPM_", "ELIFECYCLE")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            m = _ERROR.match(lines[i].strip())
            if not m:
                continue
            code, msg = m.group("code"), m.group("msg")
            kind: Category = "unknown"
            if code.startswith(_DEPENDENCY):
                kind = "dependency"
            elif code.startswith(_INFRASTRUCTURE):
                kind = "infrastructure"
            elif code in _RUN_FAILED or code == "ELIFECYCLE":
                kind = _run_kind(lines, i, msg)
            elif code == "ERR_PNPM_NO_SCRIPT":
                kind = "unknown"
            yield Failure(
                kind=kind, tool=self.name, message=clip(f"{code}: {msg}"), code=code, log_line=i
            )


def _run_kind(lines: Sequence[str], i: int, msg: str) -> Category:
    s = _SCRIPT.match(msg)
    if s:
        return script_kind(s.group("script"), s.group("cmd"))
    if msg.startswith("Test failed"):
        return "test"
    for j in range(i - 1, max(-1, i - MAX_CONTEXT - 1), -1):
        h = _HEADER.match(lines[j])
        if h:
            command = lines[j + 1][2:] if lines[j + 1].startswith("> ") else ""
            return script_kind(h.group("script"), command)
    return "unknown"


PARSER = PnpmParser()
