"""go vet: analyzer findings, under the ``# package`` header go vet prints, e.g.::

    # github.com/acme/demo/internal/report
    internal/report/report.go:13:2: fmt.Printf format %d has arg name of wrong type string
    internal/cache/cache.go:19:17: Snapshot passes lock by value: …Counter contains sync.Mutex

Kind "lint"; `code` is the analyzer (``printf``, ``copylocks``, ``loopclosure``, …) when the
message is one go vet is known to print, else ``vet``. A ``path:line:col:`` line is go vet's
when its message is an analyzer's (go test runs some analyzers too) or when it is printed by a
``go vet`` step; a type error go vet reports (``vet: x.go:3:2: undefined: y``) is left to the
go build parser. The line shape is shared with go build (see `go_build.classify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip
from bot.logparsers.go_build import classify, continuation, line_position, vet_analyzer


class GoVetParser:
    name = "go-vet"
    ecosystem = "go"
    needles: tuple[str, ...] = (".go:",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            pos = line_position(lines, i)
            if pos is None or classify(lines, i, pos) != "vet":
                continue
            yield Failure(
                kind="lint",
                tool=self.name,
                message=clip(" ".join([pos.message, *continuation(lines, i)])),
                path=pos.path,
                line=pos.line,
                code=vet_analyzer(pos.message) or "vet",
                log_line=i,
            )


PARSER = GoVetParser()
