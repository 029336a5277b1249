"""rustfmt / ``cargo fmt --check``: files that would be reformatted.

Recognises the header of each diff hunk, ``Diff in /home/runner/work/demo/demo/src/lib.rs:6:``
(rustfmt 1.6 and later) and ``Diff in /path/src/lib.rs at line 3:`` (older): kind "format",
code ``rustfmt``, path made repository-relative, line = the hunk's first line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip, rel_path

_DIFF = re.compile(r"^Diff in (.+?)(?: at line (\d+)|:(\d+)):\s*$")


class RustfmtParser:
    name = "rustfmt"
    ecosystem = "rust"
    needles = ("Diff in ",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        for i in hits:
            m = _DIFF.match(lines[i])
            if m is None:
                continue
            path = rel_path(m.group(1))
            line = int(m.group(2) or m.group(3))
            out.append(
                Failure(
                    kind="format",
                    tool=self.name,
                    message=clip(f"rustfmt would reformat {path} at line {line}"),
                    path=path,
                    line=line,
                    code="rustfmt",
                    log_line=i,
                )
            )
        return out


PARSER = RustfmtParser()
