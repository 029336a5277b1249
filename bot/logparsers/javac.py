"""javac compiler errors, as Maven's compiler plugin and as plain javac (Gradle, Ant) print them.

Recognised:

- maven-compiler-plugin: ``[ERROR] /home/runner/work/demo/demo/src/main/java/com/example/
  Inventory.java:[31,21] cannot find symbol`` (the ``symbol:``/``location:`` lines that follow
  are added to the message). Maven prints every error twice (under ``COMPILATION ERROR`` and in
  the ``Failed to execute goal … Compilation failure`` block): one failure per error, at its
  first line;
- plain javac (Gradle's ``compileJava``, ``javac`` itself):
  ``src/main/java/com/example/Inventory.java:31: error: cannot find symbol`` (the source line,
  caret and ``symbol:`` lines follow); Gradle 4's plain console may print the first one right
  after the task's name: ``:compileJava/home/runner/work/demo/demo/src/…/Inventory.java:31: …``.

Warnings (``[WARNING] …java:[3,8] …``, ``…java:12: warning: …``) are not failures, and nor are
maven-checkstyle-plugin's ``[ERROR] …java:[3,8] (imports) UnusedImports: …`` lines (see
`gradle_checkstyle`). `code` is a slug of the message's head: ``cannot-find-symbol``,
``incompatible-types``, ``expected``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip, rel_path

_MAVEN = re.compile(r"^\[ERROR\] (?P<path>\S.*?\.java):\[(?P<line>\d+),(?P<col>\d+)\] (?P<msg>.+)$")
# Gradle 4's plain console prints a task's output right after its name: ":compileJava/home/…"
_PLAIN = re.compile(
    r"^(?:(?::[A-Za-z][\w.-]*)+(?=/|[A-Za-z]:\\))?"
    r"(?P<path>\S.*?\.java):(?P<line>\d+): error: (?P<msg>.+)$"
)
_CHECKSTYLE = re.compile(r"^\([\w.]+\) \w+: ")
_DETAIL = re.compile(r"^(?:\[ERROR\])?\s+(symbol|location)\s*:\s+(.*)$")


def _slug(message: str) -> str:
    head = message.split(":", 1)[0].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", head).strip("-")
    return slug[:40].rstrip("-") or "javac-error"


class JavacParser:
    name = "javac"
    ecosystem = "jvm"
    needles: tuple[str, ...] = (".java:[", ": error: ")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        seen: set[tuple[str, int, str]] = set()
        out: list[Failure] = []
        for i in hits:
            text = lines[i]
            m = _MAVEN.match(text) or _PLAIN.match(text)
            if not m or _CHECKSTYLE.match(m.group("msg")):
                continue
            path = rel_path(m.group("path"))
            line = int(m.group("line"))
            msg = m.group("msg").strip().removeprefix("error: ")  # compiler plugin 3.1
            key = (path, line, msg)
            if key in seen:
                continue
            seen.add(key)
            details = []
            for j in range(i + 1, min(len(lines), i + 6)):
                d = _DETAIL.match(lines[j])
                if d:
                    details.append(f"{d.group(1)}: {d.group(2).strip()}")
                elif details or lines[j].startswith("[") or _PLAIN.match(lines[j]):
                    break
            out.append(
                Failure(
                    kind="compile",
                    tool=self.name,
                    message=clip("; ".join([msg, *details])),
                    path=path,
                    line=line,
                    code=_slug(msg),
                    log_line=i,
                )
            )
        return out


PARSER = JavacParser()
