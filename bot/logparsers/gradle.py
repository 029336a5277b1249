"""Gradle build failures: failing tests and the ``* What went wrong:`` block.

Two parsers (compiler errors are `javac`'s, Checkstyle violations `gradle_checkstyle`'s):

- ``gradle-test``: a failing test as Gradle's console prints it, with the exception below::

    com.example.demo.StringsTest > truncateAddsEllipsis FAILED
        org.junit.ComparisonFailure at StringsTest.java:27

  (Gradle 5+: ``StringsTest > truncateAddsEllipsis() FAILED``, nested classes as ``A > B > c()``,
  and with ``exceptionFormat = 'full'`` the message and ``at …(StringsTest.java:27)`` frames).
  The line is taken from the ``at File.java:N`` of the short format or the test class's frame;
- ``gradle``: ``* What went wrong:`` followed by ``Execution failed for task ':app:lint'.`` /
  ``> <cause>``: one failure at the most specific cause line (the first ``> `` line), e.g.
  ``> Could not find com.google.guava:guava:33.0.0-jre.`` ("dependency"). Causes that only point
  at output the other parsers read (``There were failing tests``, ``Compilation failed; see the
  compiler error output``, ``Checkstyle rule violations were found``) are skipped: they are the
  trailer of a failure already found. The category comes from the cause (``Could not find
  g:a:v``, ``Could not resolve all files for configuration``, ``Plugin [id: …] was not found``
  are "dependency"), else from the task (``:compileJava`` "compile", ``:spotlessCheck``
  "format", ``:checkstyleMain``/``:lint`` "lint", ``:test`` "test"); a build script error
  (``A problem occurred evaluating root project 'demo'.`` / ``> Could not find method …``) is
  "unknown" with code ``build``, its path and line from the ``* Where:`` block before
  (``Build file '/home/runner/work/demo/demo/build.gradle' line: 16``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip, rel_path

_TEST = re.compile(r"^(?P<cls>[\w$.]+) > (?:.+ > )?(?P<method>.+?) FAILED$")
_SHORT_AT = re.compile(r" at (?P<file>[\w$]+\.(?:java|kt|groovy|scala)):(?P<line>\d+)$")
_FRAME = re.compile(r"^\s+at ([\w$.]+)\.[\w$<>]+\([\w$]+\.\w+:(\d+)\)")


class GradleTestParser:
    name = "gradle-test"
    ecosystem = "jvm"
    needles: tuple[str, ...] = (" FAILED",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        seen: set[str] = set()
        for i in hits:
            m = _TEST.match(lines[i])
            if not m:
                continue
            cls, method = m.group("cls"), m.group("method").strip()
            test_id = f"{cls}.{method.removesuffix('()')}"
            if test_id in seen:
                continue
            seen.add(test_id)
            message = ""
            line: int | None = None
            simple = cls.rsplit(".", 1)[-1]
            for j in range(i + 1, min(len(lines), i + 1 + MAX_CONTEXT)):
                text = lines[j]
                if not text.startswith("    "):
                    break
                if not message:
                    message = text.strip()
                    s = _SHORT_AT.search(text)
                    if s and s.group("file").split(".")[0] == simple:
                        line = int(s.group("line"))
                        break
                    continue
                f = _FRAME.match(text)
                if f and f.group(1).rsplit(".", 1)[-1] == simple:
                    line = int(f.group(2))
                    break
            out.append(
                Failure(
                    kind="test",
                    tool=self.name,
                    message=clip(f"{test_id}: {message}" if message else test_id),
                    test_id=test_id,
                    line=line,
                    code="failure",
                    log_line=i,
                )
            )
        return out


_TASK = re.compile(r"task '(?P<task>[^']+)'")
_WHERE = re.compile(
    r"^(?:Build file|Settings file|Script|Plugin) '(?P<path>[^']+)' line: (?P<line>\d+)"
)
_COVERED = (
    "There were failing tests",
    "Compilation failed; see the compiler error output",
    "Checkstyle rule violations were found",
)
_TASK_KINDS: tuple[tuple[tuple[str, ...], Category], ...] = (
    (("spotless", "ktlintformat", "format", "prettier"), "format"),
    (("checkstyle", "pmd", "spotbugs", "lint", "detekt", "ktlint", "errorprone"), "lint"),
    (("compile",), "compile"),
    (("test", "check"), "test"),
)


_DEPENDENCY = re.compile(
    r"Could not (?:resolve all |resolve [\w.-]+:[\w.-]+|find [\w.-]+:[\w.-]+|download |GET ')"
    r"|was not found in any of the following sources"
)


def _kind(task: str, cause: str) -> Category:
    if _DEPENDENCY.search(cause):
        return "dependency"
    name = task.rsplit(":", 1)[-1].lower()
    for keys, kind in _TASK_KINDS:
        if any(k in name for k in keys):
            return kind
    return "unknown"


class GradleBuildParser:
    name = "gradle"
    ecosystem = "jvm"
    needles: tuple[str, ...] = ("* What went wrong:",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        for i in hits:
            if lines[i].strip() != "* What went wrong:":
                continue
            block: list[int] = []
            for j in range(i + 1, min(len(lines), i + 1 + 40)):
                text = lines[j]
                if not text.strip() or text.startswith("* "):
                    break
                block.append(j)
            if not block:
                continue
            text = " ".join(lines[j].strip() for j in block)
            if any(c in text for c in _COVERED):
                continue
            causes = [j for j in block if lines[j].lstrip().startswith("> ")]
            at = causes[0] if causes else block[0]
            t = _TASK.search(text)
            task = t.group("task") if t else ""
            kind = _kind(task, text)
            code = "dependency-resolution" if kind == "dependency" else (task or "build")
            path: str | None = None
            line: int | None = None
            for j in range(max(0, i - 6), i):  # "* Where:" / "Build file '…/build.gradle' line: 16"
                w = _WHERE.match(lines[j])
                if w:
                    path, line = rel_path(w.group("path")), int(w.group("line"))
            out.append(
                Failure(
                    kind=kind,
                    tool=self.name,
                    message=clip(text),
                    path=path,
                    line=line,
                    code=code,
                    log_line=at,
                )
            )
        return out


PARSERS = (GradleBuildParser(), GradleTestParser())
