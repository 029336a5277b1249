"""GitHub Actions error annotations, as a fallback finding (``generic``: a specific parser
claiming the same line wins): ``##[error]Missing changelog entry for #123`` (the runner's
rendering of a tool's ``::error::…``) and a raw ``::error file=app/x.py,line=3::message`` line
(a log saved without the runner's rendering). The runner's own trailer ``##[error]Process
completed with exit code 1.`` says nothing and is not one. Kind "unknown": an annotation says
that something failed, not what kind of thing."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers.base import Failure, clip, rel_path

#: Trailers that only repeat an exit status.
GENERIC = re.compile(
    r"^(?:Error: )?(?:Process completed|.{0,60}\bexited) with (?:exit )?(?:code|status) -?\d+\.?$"
)
_RAW = re.compile(r"^::error(?: (?P<props>[^:]*))?::(?P<msg>.*)$")


class Annotations:
    name = "annotations"
    ecosystem = "infra"
    needles = ("##[error]", "::error")
    generic = True

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        out: list[Failure] = []
        for i in hits:
            s = lines[i]
            path: str | None = None
            line: int | None = None
            if s.startswith("##[error]"):
                msg = s[9:]
            elif m := _RAW.match(s.lstrip()):
                msg = m["msg"].replace("%0A", " ")
                props = dict(p.split("=", 1) for p in (m["props"] or "").split(",") if "=" in p)
                if props.get("file"):
                    path = rel_path(props["file"])
                if (props.get("line") or "").isdigit():
                    line = int(props["line"])
            else:
                continue
            if not msg.strip() or GENERIC.match(msg.strip()):
                continue
            out.append(
                Failure("unknown", "annotation", clip(msg), path=path, line=line, log_line=i)
            )
        return out


PARSER = Annotations()
