"""cargo clippy (and rustc lints) denied with ``-D warnings`` or ``#[deny(…)]``.

Recognises an ``error: …`` diagnostic whose block says it is a denied lint, e.g.::

    error: unneeded `return` statement
     --> src/lib.rs:6:5
      = note: `-D clippy::needless-return` implied by `-D warnings`
      = help: to override `-D warnings` add `#[allow(clippy::needless_return)]`

and the older ``= note: `#[deny(clippy::eq_op)]` on by default``: kind "lint", code = the
lint's name (``clippy::needless_return``; a rustc lint as ``unused_variables``), path/line from
the `` --> `` line, log_line = the ``error: …`` line. Warnings (``warning: …``, not denied) are
not failures. The lint markers are the needles; the header is found at most
`cargo.BLOCK_LINES` lines above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip
from bot.logparsers.cargo import BLOCK_LINES, diagnostic_at


class ClippyParser:
    name = "clippy"
    ecosystem = "rust"
    needles = ("` implied by `-D ", "deny(", "forbid(")

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        out: list[Failure] = []
        headers: set[int] = set()
        for i in hits:
            for j in range(i, max(-1, i - BLOCK_LINES), -1):
                text = lines[j]
                if text.startswith("warning: "):
                    break
                if not text.startswith("error"):
                    continue
                if j not in headers:
                    headers.add(j)
                    diag = diagnostic_at(lines, j)
                    if diag is not None and diag.lint is not None:
                        out.append(
                            Failure(
                                kind="lint",
                                tool=self.name,
                                message=clip(text),
                                path=diag.path,
                                line=diag.line,
                                code=diag.lint,
                                log_line=j,
                            )
                        )
                break
        return out


PARSER = ClippyParser()
