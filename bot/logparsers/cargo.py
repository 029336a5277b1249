"""cargo build / cargo check: rustc compile errors and cargo's resolution failures.

Recognises:

- rustc errors with a code, e.g. ``error[E0308]: mismatched types`` followed by
  `` --> src/main.rs:4:18``: kind "compile", code ``E0308``, path/line from the ``-->`` line;
- rustc errors without a code that point at a source location (``error: expected one of …``
  then `` --> src/lib.rs:3:9``): kind "compile", code ``rustc``. An error whose block says it
  is a denied lint (``implied by `-D warnings```, ``#[deny(…)]``) is left to the clippy parser;
- dependency resolution: ``error: no matching package named `serde` found``,
  ``error: failed to select a version for …``, ``error: failed to get `serde` as a dependency
  of package …`` (the last ``Caused by:`` line is added to the message), ``error: failed to
  load source for dependency …``, ``error: failed to download …`` and ``error: the lock file …
  needs to be updated but --locked was passed``: kind "dependency";
- ``error: linking with `cc` failed`` (the message adds the linker's own error from the notes,
  ``rust-lld: error: unable to find library -lcalcfast``) and ``error: failed to run custom
  build command for …`` (adds the build script's panic, path/line = its location, e.g.
  ``build.rs``:7): kind "compile", code ``link`` / ``build-script``;
- ``error: could not compile `demo` (bin "demo") due to 2 previous errors`` only when the log
  shows no diagnostic of its own (a fallback for errors printed in an unknown shape).

The helpers `diagnostic_at`, `lint_code` and `location` are shared with the clippy parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.logparsers.base import Category, Failure, clip, rel_path

#: Lines of one rustc diagnostic block read after its header.
BLOCK_LINES = 60

_CODE_HEADER = re.compile(r"^error\[(E\d{4})\]: (.+)$")
_PLAIN_HEADER = re.compile(r"^error: (.+)$")
_LOCATION = re.compile(r"^\s*--> (.+?):(\d+):(\d+)\s*$")
_LINT_MARKERS = ("` implied by `-D ", "deny(", "forbid(", "the lint level is defined")
_LINT_NAME = re.compile(
    r"#\[(?:deny|forbid|allow)\(((?:clippy::)?[a-z0-9_]+)\)\]|`-D ((?:clippy::)?[a-z0-9-]+)`"
)
_WORKSPACE_CRATE = re.compile(r"^error: could not compile `([^`]+)`")

_DEPENDENCY: tuple[tuple[str, str], ...] = (
    ("error: no matching package named ", "no-matching-package"),
    ("error: failed to select a version for", "failed-to-select-version"),
    ("error: failed to get `", "failed-to-get"),
    ("error: failed to load source for dependency", "failed-to-load-source"),
    ("error: failed to download", "failed-to-download"),
    ("error: the lock file ", "lockfile"),
    ("error: failed to parse lock file", "lockfile"),
    ("error: cyclic package dependency", "cyclic-dependency"),
)
_BUILD: tuple[tuple[str, str], ...] = (
    ("error: linking with `", "link"),
    ("error: failed to run custom build command for", "build-script"),
)


@dataclass(frozen=True)
class Diagnostic:
    """One rustc ``error…`` block: its header line, message, code and first location."""

    header: int
    message: str
    code: str | None
    path: str | None
    line: int | None
    lint: str | None  # the denied lint's name when the block says it is one


def location(lines: Sequence[str], start: int, end: int) -> tuple[str | None, int | None]:
    """The path and line of the first `` --> path:line:col`` in lines[start:end]."""
    for j in range(start, min(end, len(lines))):
        m = _LOCATION.match(lines[j])
        if m:
            return rel_path(m.group(1)), int(m.group(2))
    return None, None


def lint_code(block: Sequence[str]) -> str | None:
    """The denied lint named in a diagnostic block: ``clippy::needless_return``,
    ``unused_variables``; None when the block is not a denied lint."""
    text = "\n".join(block)
    if not any(marker in text for marker in _LINT_MARKERS):
        return None
    names: list[str] = []
    for m in _LINT_NAME.finditer(text):
        name = (m.group(1) or m.group(2) or "").replace("-", "_")
        if name and name not in ("warnings", "unused"):
            names.append(name)
    # `#[allow(clippy::x)]` / `-D clippy::x` name the lint itself; prefer a clippy name.
    for name in names:
        if name.startswith("clippy::"):
            return name
    return names[0] if names else "warnings"


def _block_end(lines: Sequence[str], start: int) -> int:
    end = min(len(lines), start + 1 + BLOCK_LINES)
    for j in range(start + 1, end):
        text = lines[j]
        if not text.strip() or text.startswith(("error", "warning: ")):
            return j
    return end


def diagnostic_at(lines: Sequence[str], i: int) -> Diagnostic | None:
    """The rustc diagnostic whose header is line `i` (``error[E0308]: …`` or ``error: …``
    followed by a `` --> `` location), else None."""
    text = lines[i]
    m = _CODE_HEADER.match(text)
    code: str | None
    if m:
        code, message = m.group(1), m.group(2)
    else:
        p = _PLAIN_HEADER.match(text)
        if p is None or i + 1 >= len(lines) or not _LOCATION.match(lines[i + 1]):
            return None
        code, message = None, p.group(1)
    end = _block_end(lines, i)
    path, line = location(lines, i + 1, end)
    lint = lint_code(lines[i + 1 : end]) if code is None else None
    return Diagnostic(i, message, code, path, line, lint)


class CargoParser:
    name = "cargo"
    ecosystem = "rust"
    needles = ("error[E", "error: ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        seen_diagnostic = False
        fallback: list[int] = []
        for i in hits:
            text = lines[i]
            if not text.startswith("error"):
                continue
            diag = diagnostic_at(lines, i)
            if diag is not None:
                seen_diagnostic = True
                if diag.lint is None:
                    out.append(
                        Failure(
                            kind="compile",
                            tool=self.name,
                            message=clip(text),
                            path=diag.path,
                            line=diag.line,
                            code=diag.code or "rustc",
                            log_line=i,
                        )
                    )
                continue
            found = self._cargo_error(lines, i)
            if found is not None:
                out.append(found)
            elif _WORKSPACE_CRATE.match(text):
                fallback.append(i)
        if not seen_diagnostic and not out:
            for i in fallback:
                out.append(
                    Failure(
                        kind="compile",
                        tool=self.name,
                        message=clip(lines[i]),
                        code="could-not-compile",
                        log_line=i,
                    )
                )
        return out

    def _cargo_error(self, lines: Sequence[str], i: int) -> Failure | None:
        text = lines[i]
        found = _cargo_kind(text)
        if found is None:
            return None
        kind, code = found
        path: str | None = None
        line: int | None = None
        if code == "link":
            cause = _linker_error(lines, i)
        elif code == "build-script":
            cause, path, line = _build_script_panic(lines, i)
        else:
            cause = None
        cause = cause or _last_cause(lines, i)
        message = f"{text} ({cause})" if cause else text
        return Failure(
            kind=kind,
            tool=self.name,
            message=clip(message),
            path=path,
            line=line,
            code=code,
            log_line=i,
        )


def _cargo_kind(text: str) -> tuple[Category, str] | None:
    """The kind and code of one of cargo's own (not rustc's) error lines."""
    for prefix, code in _DEPENDENCY:
        if text.startswith(prefix):
            return "dependency", code
    for prefix, code in _BUILD:
        if text.startswith(prefix):
            return "compile", code
    return None


_PANIC = re.compile(r"^\s*thread '[^']*'(?: \(\d+\))? panicked at (.+?):(\d+):\d+:\s*$")


def _linker_error(lines: Sequence[str], i: int) -> str | None:
    """The linker's own error in the notes under ``error: linking with `cc` failed``."""
    for j in range(i + 1, min(len(lines), i + 1 + BLOCK_LINES)):
        text = lines[j].strip()
        if text.startswith("error"):
            break
        body = text.removeprefix("= note: ").strip()
        if body.startswith('"') or "omitted" in body:
            continue  # the linker command line
        if "error:" in body or "undefined reference" in body or "cannot find -l" in body:
            return body
    return None


def _build_script_panic(lines: Sequence[str], i: int) -> tuple[str | None, str | None, int | None]:
    """The panic of a failing build script (message, path, line) under its ``--- stderr``."""
    for j in range(i + 1, min(len(lines), i + 1 + BLOCK_LINES)):
        text = lines[j]
        if text.startswith("error"):
            break
        m = _PANIC.match(text)
        if m:
            message = lines[j + 1].strip() if j + 1 < len(lines) else ""
            return message or None, rel_path(m.group(1)), int(m.group(2))
    return None, None, None


def _last_cause(lines: Sequence[str], i: int) -> str | None:
    """The last indented line under the ``Caused by:`` sections after cargo's error line."""
    cause: str | None = None
    end = min(len(lines), i + 1 + BLOCK_LINES)
    in_cause = False
    for j in range(i + 1, end):
        text = lines[j]
        if text.startswith("Caused by:"):
            in_cause = True
        elif text.startswith("  ") and in_cause and text.strip():
            cause = text.strip()
        elif text.strip() and not text.startswith((" ", "note: ")):
            break
    return cause


PARSER = CargoParser()
