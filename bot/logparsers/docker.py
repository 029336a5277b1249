"""docker build: the failing build step (BuildKit / buildx and the classic builder).

Recognises, one failure per failed build step:

- BuildKit's step error, ``#10 ERROR: process "/bin/sh -c make" did not complete successfully:
  exit code: 2`` (buildx / BuildKit 0.11+), ``#10 ERROR: executor failed running [/bin/sh -c
  make]: exit code: 127`` (docker 20.10), ``#9 ERROR: "/config/app.conf" not found: not found``
  (COPY), and the TTY progress form `` => ERROR [build 3/5] RUN make   0.3s``;
- without those, the summary ``ERROR: failed to solve: …`` (buildx),
  ``failed to solve with frontend dockerfile.v0: …`` / ``executor failed running […]: exit
  code: N`` / ``failed to compute cache key: …`` (docker 20.10);
- the classic builder's ``The command '/bin/sh -c make' returned a non-zero code: 2``,
  ``COPY failed: …``, ``Error response from daemon: …`` on a pull, and a pull's network error
  right under its ``Step 1/10 : FROM alpine:3.20`` line (``Get "https://…": dial tcp: …``).

The message names the step (`` > [build 4/5] RUN make:`` / ``Step 7/10 : RUN …``) and the last
output line the step printed before failing (the tool's own error). path/line are
``Dockerfile``/7 where buildx prints the ``Dockerfile:7`` context. Kind: "infrastructure" when
the registry could not be reached (``dial tcp``, ``i/o timeout``, ``TLS handshake timeout``,
``no such host``), "dependency" when a base image or its tag does not exist or a RUN command
is not in the image (exit code 127, the shell's "command not found"), else "compile"
(the image does not build); code ``run-failed``, ``copy-failed`` or ``pull-failed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bot.logparsers.base import MAX_CONTEXT, Category, Failure, clip, rel_path
from bot.logparsers.shell import cause_line

_STEP_ERROR = re.compile(r"^#(\d+) ERROR: (.+)$")
_TTY_ERROR = re.compile(r"^\s*=> ERROR (\[[^\]]+\] .+?)(?:\s+\d+\.\d+s)?\s*$")
_SUMMARY = (
    "ERROR: failed to solve: ",
    "failed to solve with frontend ",
    "failed to solve: ",
    "executor failed running [",
    "failed to compute cache key: ",
)
_CLASSIC = re.compile(r"^The command '(.+)' returned a non-zero code: (\d+)")
_CLASSIC_OTHER = ("COPY failed: ", "Error response from daemon: ")
_CLASSIC_FROM = re.compile(r"^Step \d+/\d+ : FROM ")
_CONTEXT = re.compile(r"^(\S*Dockerfile\S*):(\d+)$")
_VERTEX = re.compile(r"^#(\d+) (\[.+)$")
_STAMP = re.compile(r"^\d+\.\d+ ")
_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")
_NETWORK = (
    "dial tcp",
    "i/o timeout",
    "TLS handshake timeout",
    "no such host",
    "connection refused",
)
_MISSING_IMAGE = ("manifest unknown", "pull access denied", "repository does not exist")


def _classify(text: str) -> tuple[Category, str]:
    if any(s in text for s in _NETWORK):
        return "infrastructure", "pull-failed"
    if any(s in text for s in _MISSING_IMAGE):
        return "dependency", "pull-failed"
    if "not found" in text and ("COPY" in text or "cache key" in text or '"/' in text):
        return "compile", "copy-failed"
    if text.startswith("COPY failed") or "failed to compute cache key" in text:
        return "compile", "copy-failed"
    if text.endswith(("exit code: 127", "non-zero code: 127")):
        return "dependency", "run-failed"  # the shell's "command not found"
    return "compile", "run-failed"


def _dockerfile_context(lines: Sequence[str], start: int) -> tuple[str | None, int | None]:
    """``Dockerfile:7`` printed by buildx after the failure summary (bounded)."""
    for j in range(start, min(len(lines), start + 60)):
        m = _CONTEXT.match(lines[j])
        if m:
            return rel_path(m.group(1)), int(m.group(2))
        if lines[j].startswith(("ERROR: failed to solve", "##[")):
            break
    return None, None


def _summary_output(lines: Sequence[str], i: int, step: str) -> list[str]:
    """The output lines under `` > [build 4/5] RUN make:`` after line `i` (the step's log as
    BuildKit repeats it after a failure), without their timestamps."""
    header = f" > {step}:"
    end = min(len(lines), i + MAX_CONTEXT)
    for j in range(i + 1, end):
        if lines[j].rstrip() == header:
            out: list[str] = []
            for k in range(j + 1, end):
                text = lines[k]
                if text.startswith("-----"):
                    break
                out.append(_STAMP.sub("", text, count=1).strip())
            return [t for t in out if t]
    return []


class DockerParser:
    name = "docker"
    ecosystem = "infra"
    # "ERROR" covers "#10 ERROR: …", " => ERROR [", "ERROR: failed to solve: …"; docker 20.10's
    # own summary lines ("executor failed running […]", "failed to compute cache key: …") come
    # after a "#N ERROR" line, so only "failed to solve" of them is a needle.
    needles = (
        "ERROR",
        "failed to solve",
        "returned a non-zero code: ",
        "COPY failed: ",
        "Error response from daemon: ",
        "dial tcp",
    )

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> Iterable[Failure]:
        steps: list[Failure] = []
        summaries: list[Failure] = []
        for i in hits:
            text = lines[i]
            m = _STEP_ERROR.match(text)
            if m:
                steps.append(self._step(lines, i, m.group(1), m.group(2)))
                continue
            t = _TTY_ERROR.match(text)
            if t:
                output = _summary_output(lines, i, t.group(1))
                steps.append(
                    self._failure(
                        lines, i, t.group(1), text, cause=cause_line(output), error="failed"
                    )
                )
                continue
            c = _CLASSIC.match(text)
            if c:
                steps.append(self._classic(lines, i, text))
                continue
            if text.startswith(_SUMMARY) or text.startswith(_CLASSIC_OTHER):
                summaries.append(self._failure(lines, i, None, text))
            elif i > 0 and _CLASSIC_FROM.match(lines[i - 1]):
                # the classic builder's pull error, right under "Step 1/10 : FROM alpine:3.20"
                steps.append(self._failure(lines, i, lines[i - 1].split(" : ", 1)[1], text))
        if steps:
            if summaries and steps[0].path is None and summaries[0].path is not None:
                first = steps[0]
                steps[0] = Failure(
                    kind=first.kind,
                    tool=first.tool,
                    message=first.message,
                    path=summaries[0].path,
                    line=summaries[0].line,
                    code=first.code,
                    log_line=first.log_line,
                )
            return steps
        return summaries[:1]

    def _step(self, lines: Sequence[str], i: int, vertex: str, error: str) -> Failure:
        name: str | None = None
        output: list[str] = []
        for j in range(i - 1, max(-1, i - MAX_CONTEXT), -1):
            text = lines[j]
            if not text.startswith(f"#{vertex} "):
                continue
            out = _OUTPUT.match(text)
            if out and out.group(2).strip():
                output.append(out.group(2).strip())
            header = _VERTEX.match(text)
            if header:
                name = header.group(2)
                break
        output.reverse()
        return self._failure(lines, i, name, lines[i], cause=cause_line(output), error=error)

    def _classic(self, lines: Sequence[str], i: int, text: str) -> Failure:
        name: str | None = None
        output: list[str] = []
        for j in range(i - 1, max(-1, i - MAX_CONTEXT), -1):
            prev = lines[j]
            if prev.startswith("Step ") and " : " in prev:
                name = prev.split(" : ", 1)[1]
                break
            if prev.strip() and not prev.startswith(" ---> "):
                output.append(prev.strip())
        output.reverse()
        return self._failure(lines, i, name, text, cause=cause_line(output))

    def _failure(
        self,
        lines: Sequence[str],
        i: int,
        step: str | None,
        text: str,
        *,
        cause: str | None = None,
        error: str | None = None,
    ) -> Failure:
        kind, code = _classify((error or text).strip())
        path, line = _dockerfile_context(lines, i + 1)
        parts = [f"{step}: " if step else "", (error or text).strip()]
        if cause:
            parts.append(f" after: {cause}")
        return Failure(
            kind=kind,
            tool=self.name,
            message=clip("".join(parts)),
            path=path,
            line=line,
            code=code,
            log_line=i,
        )


PARSER = DockerParser()
