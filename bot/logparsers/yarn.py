"""yarn: install and script failures of yarn 1 ("classic") and of yarn 2+ ("berry").

yarn 1 (`yarn`), the ``error …`` lines it prints before exiting:

- ``error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.``:
  kind "dependency", code ``frozen-lockfile``;
- ``error An unexpected error occurred: "https://registry.yarnpkg.com/nope: Not found".``:
  kind "dependency", code ``not-found`` (network errors in it, ETIMEDOUT / ECONNRESET /
  ENOTFOUND / socket hang up, are kind "infrastructure", code ``network``);
- ``error Couldn't find any versions for "left-pad" that matches "^2.0.0"`` and
  ``error Couldn't find package "x" required by "y" on the "npm" registry.``: kind
  "dependency", codes ``no-matching-version`` / ``not-found``;
- ``error … The engine "node" is incompatible with this module.`` and integrity failures:
  kind "dependency";
- ``error Command failed with exit code 1.`` after ``$ jest``: a script failed; the kind
  follows the command (jest → "test", eslint → "lint", …), code ``command-failed``.

yarn 2+ (`yarn-berry`), ``➤ YN0028: │ The lockfile would have been modified by this install,
which is explicitly forbidden.`` and the other error codes of its install: YN0028 (lockfile
out of date, ``--immutable``), YN0035 (package not found), YN0082 (no candidates), YN0018
(checksum), YN0009 (a build script failed), YN0071: kind "dependency", code the YN number;
YN0001 (an exception) is "infrastructure" when it names a network error, "dependency" for a
registry 404, else "unknown". Warnings (YN0002, YN0060, …) and YN0000 lines are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip
from bot.logparsers.npm import script_kind

_NETWORK = (
    "ETIMEDOUT",
    "ECONNRESET",
    "ECONNREFUSED",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ESOCKETTIMEDOUT",
    "socket hang up",
    "getaddrinfo",
    "Response code 5",
    "ENOSPC",
)
_CLASSIC: tuple[tuple[str, Category, str], ...] = (
    ("error Your lockfile needs to be updated", "dependency", "frozen-lockfile"),
    ("error Couldn't find any versions for ", "dependency", "no-matching-version"),
    ("error Couldn't find ", "dependency", "not-found"),
    ("is incompatible with this module", "dependency", "engine-incompatible"),
    ("error Incorrect integrity when fetching", "dependency", "integrity"),
    ("error Integrity check failed", "dependency", "integrity"),
)
_UNEXPECTED = "error An unexpected error occurred: "
_COMMAND_FAILED = "error Command failed with exit code "
_BERRY = re.compile(r"^➤ (?P<code>YN\d{4}): (?:[│└┌├] ?)?(?P<msg>.*?)\s*$")
_BERRY_CODES = ("YN0028", "YN0035", "YN0082", "YN0018", "YN0009", "YN0071", "YN0001")


class YarnParser:
    name = "yarn"
    ecosystem = "js"
    needles = (
        "error Your lockfile needs to be updated",
        "error Couldn't find ",
        "is incompatible with this module",
        "error Incorrect integrity when fetching",
        "error Integrity check failed",
        _UNEXPECTED,
        _COMMAND_FAILED,
    )

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i].strip()
            if not text.startswith("error "):
                continue
            if text.startswith(_COMMAND_FAILED):
                command = _command(lines, i)
                yield Failure(
                    kind=script_kind("", command),
                    tool=self.name,
                    message=clip(f"yarn: `{command}` failed: {text[6:]}" if command else text),
                    code="command-failed",
                    log_line=i,
                )
                continue
            if text.startswith(_UNEXPECTED):
                detail = text[len(_UNEXPECTED) :]
                kind: Category = "unknown"
                code = "unexpected-error"
                if any(n in detail for n in _NETWORK):
                    kind, code = "infrastructure", "network"
                elif "Not found" in detail or "404" in detail:
                    kind, code = "dependency", "not-found"
                yield Failure(
                    kind=kind, tool=self.name, message=clip(text[6:]), code=code, log_line=i
                )
                continue
            for needle, kind, code in _CLASSIC:
                if needle in text:
                    yield Failure(
                        kind=kind, tool=self.name, message=clip(text[6:]), code=code, log_line=i
                    )
                    break


def _command(lines: Sequence[str], i: int) -> str:
    """The ``$ <command>`` yarn echoed above a failed script."""
    for j in range(i - 1, max(-1, i - MAX_CONTEXT - 1), -1):
        if lines[j].startswith("$ "):
            return lines[j][2:].strip()
        if lines[j].startswith("yarn run v"):
            break
    return ""


class YarnBerryParser:
    name = "yarn-berry"
    ecosystem = "js"
    needles = tuple(f"{c}: " for c in _BERRY_CODES)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        seen: set[tuple[str, str]] = set()
        for i in hits:
            m = _BERRY.match(lines[i].strip())
            if not m or m.group("code") not in _BERRY_CODES:
                continue
            code, msg = m.group("code"), m.group("msg")
            # detail lines ("│   Response Code: 404"), the lockfile diff ("│ +  version: …")
            # and the summary repeating each error after the step's group are not errors
            if not msg or msg[0] in " +-" or (code, msg) in seen:
                continue
            if code == "YN0028" and "lockfile would have been modified" not in msg:
                continue
            seen.add((code, msg))
            kind: Category = "dependency"
            if code == "YN0001":
                if any(n in msg for n in _NETWORK):
                    kind = "infrastructure"
                elif not ("404" in msg or "Not Found" in msg):
                    kind = "unknown"
            yield Failure(
                kind=kind, tool=self.name, message=clip(f"{code}: {msg}"), code=code, log_line=i
            )


PARSERS = (YarnParser(), YarnBerryParser())
