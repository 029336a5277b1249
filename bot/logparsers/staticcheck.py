"""staticcheck: one finding per line, ``path.go:line:col: message (CODE)``, e.g.::

    internal/httpx/httpx.go:15:2: self-assignment of d to d (SA4018)
    internal/store/store.go:22:6: func legacyKey is unused (U1000)

Kind "lint", `code` the check (``SA4018``, ``S1003``, ``ST1005``, ``QF1001``, ``U1000``). A
package that does not type-check is reported as ``x.go:3:2: undefined: y (compile)``: kind
"compile", code ``compile``. golangci-lint's ``(staticcheck)`` lines are the golangci-lint
parser's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip
from bot.logparsers.go_build import STATICCHECK_CODE, position


class StaticcheckParser:
    name = "staticcheck"
    ecosystem = "go"
    needles: tuple[str, ...] = (".go:",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            pos = position(lines[i])
            if pos is None or pos.vet_prefix:
                continue
            m = STATICCHECK_CODE.search(pos.message)
            if m is None:
                continue
            code = m.group(1)
            yield Failure(
                kind="compile" if code == "compile" else "lint",
                tool=self.name,
                message=clip(pos.message[: m.start()]),
                path=pos.path,
                line=pos.line,
                code=code,
                log_line=i,
            )


PARSER = StaticcheckParser()
