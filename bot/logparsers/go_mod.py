"""The go command's module errors: go.mod/go.sum out of date and dependency resolution.

Recognises (kind "dependency"; `code` in brackets):

- ``go: updates to go.mod needed; to update it:`` (then ``\\tgo mod tidy``) [go-mod-update];
- ``internal/text/text.go:4:8: missing go.sum entry for module providing package
  github.com/acme/strutil (imported by …); to add:`` [missing-go-sum], with the import's
  path and line;
- ``x.go:4:8: no required module provides package github.com/acme/strutil; to add it:``
  [no-required-module];
- ``\\tgithub.com/acme/backoff: cannot find module providing package github.com/acme/backoff:
  module lookup disabled by GOPROXY=off`` (under ``<pkg> imports``) [cannot-find-module];
- ``go: github.com/acme/envconf@v0.3.1: module lookup disabled by GOPROXY=off``
  [module-lookup-disabled];
- ``verifying github.com/x/y@v1.2.3: checksum mismatch`` [checksum-mismatch], ``… reading
  https://proxy.golang.org/…: 404 Not Found`` [proxy-fetch], ``… unknown revision v1.2.4``
  [unknown-revision]; ``go: x@v1.2.3: Get "https://proxy.golang.org/…": dial tcp: lookup
  proxy.golang.org: i/o timeout`` (a network failure: kind "infrastructure")
  [proxy-unreachable]; ``go: inconsistent vendoring`` [inconsistent-vendoring], ``go: errors
  parsing go.mod:`` [go-mod-parse], ``go.mod requires go >= 1.22 (running go 1.21 …)``
  [go-version], ``… found, but does not contain package …`` [no-such-package],
  ``ambiguous import: found package …`` [ambiguous-import];
- a ``go mod tidy`` check's diff, ``diff --git a/go.mod b/go.mod`` (or go.sum)
  [go-mod-not-tidy], path ``go.mod``/``go.sum``.

The ``go: downloading …`` / ``go: finding module for package …`` chatter is not a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.logparsers.base import Failure, clip
from bot.logparsers.go_build import position

#: (needle, code): the first needle a line holds decides its code.
_MESSAGES: tuple[tuple[str, str], ...] = (
    ("go: updates to go.mod needed", "go-mod-update"),
    ("missing go.sum entry", "missing-go-sum"),
    ("cannot find module providing package", "cannot-find-module"),
    ("no required module provides package", "no-required-module"),
    ("module lookup disabled by GOPROXY", "module-lookup-disabled"),
    (": checksum mismatch", "checksum-mismatch"),
    ("unknown revision ", "unknown-revision"),
    (": reading https://", "proxy-fetch"),
    (': Get "https://', "proxy-fetch"),
    ("go: inconsistent vendoring", "inconsistent-vendoring"),
    ("go: errors parsing go.mod", "go-mod-parse"),
    ("requires go >= ", "go-version"),
    ("but does not contain package", "no-such-package"),
    ("ambiguous import: found package", "ambiguous-import"),
    ("is not in GOROOT", "not-in-goroot"),
    ("is not in std", "not-in-std"),
)
#: A download that failed on the network, not on the module: kind "infrastructure".
_NETWORK = (
    "dial tcp",
    "i/o timeout",
    "TLS handshake timeout",
    "connection reset by peer",
    "no such host",
    "502 Bad Gateway",
    "503 Service Unavailable",
    "504 Gateway Timeout",
)
_DIFFS = ("diff --git a/go.mod b/go.mod", "diff --git a/go.sum b/go.sum")


class GoModParser:
    name = "go-mod"
    ecosystem = "go"
    needles: tuple[str, ...] = tuple(n for n, _ in _MESSAGES) + _DIFFS

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        for i in hits:
            text = lines[i]
            if text.startswith(_DIFFS):
                name = text.rsplit("b/", 1)[-1]
                yield Failure(
                    kind="dependency",
                    tool=self.name,
                    message=f"{name} is not tidy: `go mod tidy` changed it",
                    path=name,
                    code="go-mod-not-tidy",
                    log_line=i,
                )
                continue
            code = next((c for n, c in _MESSAGES if n in text), None)
            if code is None:
                continue
            message = text.strip()
            follow = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if code in ("go-mod-update", "go-mod-parse") and follow:
                message = f"{message} {follow}"
            pos = position(text)
            if pos is not None:
                message = pos.message
            network = code == "proxy-fetch" and any(n in text for n in _NETWORK)
            yield Failure(
                kind="infrastructure" if network else "dependency",
                tool=self.name,
                message=clip(message),
                path=pos.path if pos else None,
                line=pos.line if pos else None,
                code="proxy-unreachable" if network else code,
                log_line=i,
            )


PARSER = GoModParser()
