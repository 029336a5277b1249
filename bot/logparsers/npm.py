"""npm: the error block npm prints when a command fails, with the new (``npm error``, npm 10.8+)
and the old (``npm ERR!``) prefix.

Recognises

- ``npm error code ERESOLVE`` … ``npm error Could not resolve dependency:`` / ``npm error peer
  react@"17.0.2" from react-dom@17.0.2``: a peer-dependency conflict. kind "dependency", code
  ``ERESOLVE``, the conflict in the message;
- ``npm error code E404`` / ``npm error 404  The requested resource 'nope@^1.0.0' could not be
  found …`` (npm 11; ``… is not in this registry.`` before),
  ``npm error code ETARGET`` / ``npm error notarget No matching version found for
  left-pad@^2.0.0.``, EINTEGRITY, E401/E403, EBADENGINE …: kind "dependency";
- ``npm error code EUSAGE`` with ``npm error `npm ci` can only install packages when your
  package.json and package-lock.json … are in sync`` (``Missing: dayjs@1.11.23 from lock
  file``): the lockfile is out of date. kind "dependency", code ``EUSAGE``;
- network and disk codes (ECONNRESET, ETIMEDOUT, EAI_AGAIN, ENOTFOUND, ENOSPC, …): kind
  "infrastructure";
- ``npm error Lifecycle script `test` failed with error:`` (npm 7+, workspaces) and, with the
  old prefix, ``npm ERR! code ELIFECYCLE`` … ``npm ERR! Failed at the demo@1.0.0 lint script.``
  and ``npm ERR! Test failed.  See above for more details.`` (code ``test-script-failed``): a
  package.json script failed. The kind follows the script (``test`` → "test", ``lint``/eslint
  → "lint", ``typecheck``/tsc --noEmit → "types", ``build`` → "compile", ``format``/prettier →
  "format", else "unknown");
  code ``lifecycle`` (``ELIFECYCLE`` where printed). The tool's own output above it is what
  explains it; this finding says which script it was;
- ``npm error code 1`` / ``npm error path …/node_modules/bcrypt`` / ``npm error command sh -c
  node-gyp rebuild``: a dependency's install script failed. kind "dependency", code
  ``install-script-failed``;
- ``npm error Missing script: "lint"``: kind "unknown", code ``missing-script``.

The key line (`log_line`) of a ``code X`` block is the line that says the cause (``Could not
resolve dependency:``, the 404 line, ``notarget No matching version …``, ``network request to …
failed``), else the code line. ``npm warn`` lines (``npm warn ERESOLVE overriding peer
dependency``, ``npm warn deprecated``) and the trailer (``A complete log of this run can be
found in: …``) are not failures. `WRAPPER_CODES` are the codes of the findings that only name
the failed script.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip

PREFIXES = ("npm error", "npm ERR!")
_CODE = re.compile(r"^code (?P<code>\S+)$")
_LIFECYCLE = re.compile(r"^Lifecycle script `(?P<script>[^`]+)` failed")
_OLD_FAILED_AT = re.compile(r"^Failed at the (?P<pkg>\S+) (?P<script>\S+) script\.?")
_OLD_SCRIPT = re.compile(r"^(?P<pkg>\S+@\S+) (?P<script>[\w:.-]+): `(?P<cmd>.*)`$")
_MISSING_SCRIPT = re.compile(r'^[Mm]issing script: "?(?P<script>[^"\s]+)"?')

INFRASTRUCTURE_CODES = frozenset(
    {
        "ECONNRESET",
        "ECONNREFUSED",
        "ETIMEDOUT",
        "ESOCKETTIMEDOUT",
        "ERR_SOCKET_TIMEOUT",
        "EAI_AGAIN",
        "ENOTFOUND",
        "ENETUNREACH",
        "EHOSTUNREACH",
        "EPIPE",
        "ENOSPC",
        "ENOMEM",
        "EMFILE",
        "E500",
        "E502",
        "E503",
        "E504",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
        "SELF_SIGNED_CERT_IN_CHAIN",
        "CERT_HAS_EXPIRED",
    }
)
DEPENDENCY_CODES = frozenset(
    {
        "ERESOLVE",
        "E404",
        "ETARGET",
        "ENOVERSIONS",
        "EINTEGRITY",
        "E401",
        "E403",
        "E400",
        "E409",
        "E422",
        "EBADENGINE",
        "ENOTSUP",
        "EBADPLATFORM",
        "EOVERRIDE",
        "ENOLOCK",
        "EJSONPARSE",
        "ELOCKVERIFY",
    }
)
#: Codes of the findings that only say which script or command failed (npm, yarn, pnpm); the
#: test runner's, linter's or compiler's findings above them explain why, and rank first.
WRAPPER_CODES = frozenset(
    {
        "lifecycle",
        "ELIFECYCLE",
        "test-script-failed",
        "command-failed",
        "ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL",
        "ERR_PNPM_RECURSIVE_EXEC_FIRST_FAIL",
        "ERR_PNPM_RECURSIVE_FAIL",
    }
)
_SKIP = ("errno ", "syscall ", "A complete log of this run", "For a full report see")


def script_kind(script: str, command: str = "") -> Category:
    """What a failing package.json script (``test``, ``lint``, …) or its command checks."""
    s = script.lower()
    c = f" {command.lower()} "
    if s.startswith(("test", "e2e", "coverage", "spec")) or s.endswith((":test", "-test")):
        return "test"
    if s.startswith("lint") or s.endswith(":lint"):
        return "lint"
    if s.startswith(("format", "prettier", "fmt")) or "prettier" in s:
        return "format"
    if s.startswith(("typecheck", "type-check", "types", "tsc", "check-types")):
        return "types"
    if s.startswith(("build", "compile")):
        return "compile"
    tools: tuple[tuple[str, Category], ...] = (
        (" jest", "test"),
        (" vitest", "test"),
        (" mocha", "test"),
        (" ava", "test"),
        ("node --test", "test"),
        (" playwright test", "test"),
        (" cypress run", "test"),
        (" eslint", "lint"),
        (" prettier", "format"),
        ("tsc --noemit", "types"),
        (" tsc", "compile"),
        (" webpack", "compile"),
        (" vite build", "compile"),
        (" rollup", "compile"),
        (" esbuild", "compile"),
        (" next build", "compile"),
    )
    for needle, kind in tools:
        if needle in c:
            return kind
    return "unknown"


class NpmParser:
    name = "npm"
    ecosystem = "js"
    #: every line of an error block holds one; the passing runs' lines do not (npm warn …)
    needles = ("npm error ", "npm ERR! ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        covered = -1
        for i in hits:
            if i <= covered:
                continue
            prefix = next((p for p in PREFIXES if lines[i].startswith(p)), None)
            if prefix is None:
                continue
            block = _block(lines, i, prefix)
            covered = i + len(block) - 1
            k = _key(block)
            if k is not None:
                failure = self._failure(block[k:], i + k)
                if failure is not None:
                    yield failure

    def _failure(self, block: list[str], i: int) -> Failure | None:
        first = block[0]
        lifecycle = _LIFECYCLE.match(first)
        if lifecycle:
            script = lifecycle.group("script")
            command = _field(block, "command ", last=True) or ""
            where = _field(block, "workspace ") or _field(block, "path ") or ""
            return Failure(
                kind=script_kind(script, command),
                tool=self.name,
                message=clip(
                    f"npm script `{script}` failed"
                    + (f" in {where}" if where else "")
                    + (f": {command}" if command else "")
                ),
                code="lifecycle",
                log_line=i,
            )
        if first.startswith("Test failed."):
            return Failure(
                kind="test",
                tool=self.name,
                message="npm test failed (see the test output above)",
                code="test-script-failed",
                log_line=i,
            )
        missing = _MISSING_SCRIPT.match(first)
        if missing:
            return Failure(
                kind="unknown",
                tool=self.name,
                message=clip(f"npm: missing script {missing.group('script')!r}"),
                code="missing-script",
                log_line=i,
            )
        m = _CODE.match(first)
        if not m:
            return None
        code = m.group("code")
        if code.isdigit():
            return _exit_code(block, i)
        if code == "ELIFECYCLE":
            return _old_lifecycle(block, i)
        kind: Category = "unknown"
        if code in DEPENDENCY_CODES:
            kind = "dependency"
        elif code in INFRASTRUCTURE_CODES:
            kind = "infrastructure"
        message, at = _message(code, block)
        if code == "EUSAGE" and "in sync" in message:
            kind = "dependency"
        return Failure(kind=kind, tool=self.name, message=clip(message), code=code, log_line=i + at)


def _key(block: list[str]) -> int | None:
    """The offset of the line a block is about: ``Lifecycle script … failed``, else ``code X``
    (npm 6 prints ``path …`` before it for ENOENT), else ``Test failed.`` or ``Missing
    script``; None for a block without one (the "A complete log of this run" trailer)."""
    code: int | None = None
    other: int | None = None
    for k, t in enumerate(block):
        if _LIFECYCLE.match(t):
            return k
        if code is None and _CODE.match(t):
            code = k
        elif other is None and (t.startswith("Test failed.") or _MISSING_SCRIPT.match(t)):
            other = k
    return code if code is not None else other


def _block(lines: Sequence[str], i: int, prefix: str) -> list[str]:
    """The text of the consecutive `prefix` lines from `i` on (the prefix removed)."""
    out: list[str] = []
    for j in range(i, min(len(lines), i + MAX_CONTEXT)):
        if not lines[j].startswith(prefix):
            break
        out.append(lines[j][len(prefix) :].strip())
    return out


def _field(block: list[str], key: str, *, last: bool = False) -> str | None:
    found = [t[len(key) :].strip() for t in block if t.startswith(key)]
    if not found:
        return None
    return found[-1] if last else found[0]


def _message(code: str, block: list[str]) -> tuple[str, int]:
    """The message of a ``code X`` block and the offset in `block` of the line that says it
    (the key line: ``Could not resolve dependency:``, ``404  '…' could not be found``,
    ``notarget No matching version …``, ``network request to … failed``)."""
    texts = [(k, t) for k, t in enumerate(block) if k and t and not t.startswith(_SKIP)]
    if code == "ERESOLVE":
        head = texts[0][1] if texts else "ERESOLVE could not resolve"
        found = _field(block, "Found: ")
        conflict = ""
        at = 0
        for k, t in enumerate(block):
            if t.startswith("Could not resolve dependency:") and k + 1 < len(block):
                conflict, at = block[k + 1], k
                break
            if t.startswith("Conflicting peer dependency:"):
                conflict, at = t, k
                break
        message = f"{head}: could not resolve {conflict}" if conflict else head
        return message + (f" (found {found})" if found else ""), at
    if code == "E404":
        for k, t in texts:
            if "is not in this registry" in t or "could not be found" in t:
                return t.removeprefix("404").strip(), k
        return next(((t, k) for k, t in texts if t.startswith("404 ")), ("E404 not found", 0))
    if code == "EUSAGE":
        sync = next((k for k, t in texts if "can only install packages when" in t), None)
        if sync is not None:
            missing = [t for _, t in texts if t.startswith(("Missing:", "Invalid:"))]
            return "npm ci: package.json and the lock file are not in sync" + (
                f": {'; '.join(missing[:3])}" if missing else ""
            ), sync
    for k, t in texts:
        word = t.split(" ", 1)
        if len(word) == 2 and word[0].lower() == code.lower():
            return f"{code}: {word[1]}", k
    return (f"{code}: {texts[0][1]}", texts[0][0]) if texts else (code, 0)


def _exit_code(block: list[str], i: int) -> Failure:
    """``npm error code 1`` with a path and the command: an install script (in
    node_modules) or one of the project's scripts (npm 7+ prints no script name here)."""
    path = _field(block, "path ") or ""
    command = _field(block, "command ", last=True) or ""
    if "node_modules/" in path:
        package = path.split("node_modules/")[-1]
        return Failure(
            kind="dependency",
            tool="npm",
            message=clip(f"the install script of {package} failed: {command}"),
            code="install-script-failed",
            log_line=i,
        )
    return Failure(
        kind=script_kind("", command),
        tool="npm",
        message=clip(f"npm: command failed: {command}" if command else "npm: command failed"),
        code="lifecycle",
        log_line=i,
    )


def _old_lifecycle(block: list[str], i: int) -> Failure:
    script = ""
    command = ""
    package = ""
    for t in block:
        s = _OLD_SCRIPT.match(t)
        if s:
            package, script, command = s.group("pkg"), s.group("script"), s.group("cmd")
            break
        f = _OLD_FAILED_AT.match(t)
        if f:
            package, script = f.group("pkg"), f.group("script")
    if script in ("install", "postinstall", "preinstall"):
        return Failure(
            kind="dependency",
            tool="npm",
            message=clip(f"the {script} script of {package} failed: {command}"),
            code="ELIFECYCLE",
            log_line=i,
        )
    return Failure(
        kind=script_kind(script, command),
        tool="npm",
        message=clip(
            f"npm script `{script or '?'}` of {package or 'the package'} failed"
            + (f": {command}" if command else "")
        ),
        code="ELIFECYCLE",
        log_line=i,
    )


PARSER = NpmParser()
