"""Checkstyle violations, as Gradle's checkstyle plugin, the Checkstyle CLI and
maven-checkstyle-plugin print them.

Recognised (severity ``error`` only: ``[WARN]`` violations do not fail the build):

- Gradle: ``[ant:checkstyle] [ERROR] /home/runner/work/demo/demo/src/main/java/com/example/demo/
  Inventory.java:4:8: Unused import - java.util.List. [UnusedImports]`` (Gradle 4's plain
  console may print the first one right after the task's name: ``:checkstyleMain[ant:…``);
- the CLI, between ``Starting audit...`` and ``Audit done.``:
  ``[ERROR] /home/runner/…/Inventory.java:11:9: 'if' construct must use '{}'s. [NeedBraces]``;
- maven-checkstyle-plugin 3.x: ``[ERROR] src/main/java/com/example/Inventory.java:[4,8]
  (imports) UnusedImports: Unused import - java.util.List.``.

`code` is the check (``UnusedImports``); category "lint".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Failure, clip, rel_path

_PLAIN = re.compile(
    r"^(?:(?::[A-Za-z][\w.-]*)*\[ant:checkstyle\] )?\[ERROR\] "
    r"(?P<path>\S.*?):(?P<line>\d+)(?::(?P<col>\d+))?: "
    r"(?P<msg>.*?) \[(?P<rule>\w+)\]$"
)
_MAVEN = re.compile(
    r"^\[ERROR\] (?P<path>\S.*?):\[(?P<line>\d+)(?:,(?P<col>\d+))?\] "
    r"\([\w.]+\) (?P<rule>\w+): (?P<msg>.*)$"
)
_AUDIT = "Starting audit..."


class CheckstyleParser:
    name = "checkstyle"
    ecosystem = "jvm"
    needles: tuple[str, ...] = ("[ant:checkstyle] [ERROR] ", _AUDIT, ".java:[")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        seen: set[tuple[str, int, str]] = set()
        candidates: list[int] = []
        for i in hits:
            if lines[i].startswith(_AUDIT):
                end = min(len(lines), i + 1 + MAX_CONTEXT)
                for j in range(i + 1, end):
                    if lines[j].startswith("Audit done."):
                        break
                    candidates.append(j)
            else:
                candidates.append(i)
        for i in candidates:
            text = lines[i]
            m = _PLAIN.match(text) or _MAVEN.match(text)
            if not m:
                continue
            path = rel_path(m.group("path"))
            line = int(m.group("line"))
            rule = m.group("rule")
            if (path, line, rule) in seen:
                continue
            seen.add((path, line, rule))
            out.append(
                Failure(
                    kind="lint",
                    tool=self.name,
                    message=clip(f"{m.group('msg')} [{rule}]"),
                    path=path,
                    line=line,
                    code=rule,
                    log_line=i,
                )
            )
        return out


PARSER = CheckstyleParser()
