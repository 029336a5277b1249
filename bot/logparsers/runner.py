"""The runner and the machine: job/step timeouts, cancellation, a lost or shut-down runner, a
full disk, memory exhaustion (``Killed``, exit code 137), network trouble (DNS, resets, HTTP
503/502) and git failing in checkout. Kind "infrastructure": one more finding, reported beside
whatever the tools printed (the diagnosis never lets it hide them).

Examples: ``##[error]The job running on runner X has exceeded the maximum execution time of
360 minutes.``, ``##[error]The operation was canceled.``, ``OSError: [Errno 28] No space left on
device``, ``/home/runner/work/_temp/x.sh: line 1:  2113 Killed  ./train``, ``fatal: unable to
access 'https://github.com/o/r/': Could not resolve host: github.com``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.logparsers.base import Failure, body, clip

#: (needle, pattern, tool, code)
RULES: tuple[tuple[str, re.Pattern[str], str, str], ...] = (
    (
        "maximum execution time",
        re.compile(r"The job running on runner .* has exceeded the maximum execution time"),
        "timeout",
        "job-timeout",
    ),
    (
        "timed out after",
        re.compile(r"The action '.*' has timed out after \d+ minutes"),
        "timeout",
        "step-timeout",
    ),
    ("was canceled", re.compile(r"The (?:operation|job|run) was canceled"), "timeout", "canceled"),
    (
        "was cancelled",
        re.compile(r"The (?:operation|job|run) was cancelled"),
        "timeout",
        "canceled",
    ),
    (
        "shutdown signal",
        re.compile(r"The runner has received a shutdown signal"),
        "runner",
        "shutdown",
    ),
    (
        "lost communication",
        re.compile(r"lost communication with the server"),
        "runner",
        "lost-communication",
    ),
    ("No space left", re.compile(r"No space left on device"), "runner", "disk-full"),
    ("ENOSPC", re.compile(r"\bENOSPC\b"), "runner", "disk-full"),
    ("running out of disk space", re.compile(r"running out of disk space"), "runner", "disk-full"),
    ("not enough free space", re.compile(r"not enough free space"), "runner", "disk-full"),
    # A short write (tar, dd, cp): what a full disk looks like to the tool that hit it.
    ("Wrote only", re.compile(r"Wrote only \d+ of \d+ bytes"), "runner", "disk-full"),
    (
        "Killed",
        re.compile(r"^Killed\b|\d+ Killed\s|\bOOMKilled\b|Killed process \d+"),
        "runner",
        "oom",
    ),
    ("exit code 137", re.compile(r"exit code 137\b"), "runner", "oom"),
    (
        "out of memory",
        re.compile(r"heap out of memory|runtime: out of memory|Out of memory"),
        "runner",
        "oom",
    ),
    ("Out of memory", re.compile(r"Out of memory"), "runner", "oom"),
    ("Cannot allocate memory", re.compile(r"Cannot allocate memory"), "runner", "oom"),
    ("Could not resolve host", re.compile(r"Could not resolve host"), "runner", "network"),
    ("Name or service not known", re.compile(r"Name or service not known"), "runner", "network"),
    ("NameResolutionError", re.compile(r"NameResolutionError"), "runner", "network"),
    ("Network is unreachable", re.compile(r"Network is unreachable"), "runner", "network"),
    (
        "Failed to establish a new connection",
        re.compile(r"Failed to establish a new connection"),
        "runner",
        "network",
    ),
    (
        "Temporary failure in name resolution",
        re.compile(r"Temporary failure in name resolution"),
        "runner",
        "network",
    ),
    ("Connection reset", re.compile(r"Connection reset by peer|ECONNRESET"), "runner", "network"),
    ("ECONNRESET", re.compile(r"\bECONNRESET\b"), "runner", "network"),
    ("ETIMEDOUT", re.compile(r"\bETIMEDOUT\b"), "runner", "network"),
    ("EAI_AGAIN", re.compile(r"\bEAI_AGAIN\b"), "runner", "network"),
    ("ENOTFOUND", re.compile(r"getaddrinfo ENOTFOUND"), "runner", "network"),
    ("TLS handshake timeout", re.compile(r"TLS handshake timeout"), "runner", "network"),
    ("Connection timed out", re.compile(r"Connection timed out"), "runner", "network"),
    (
        "503",
        re.compile(r"503 Service Unavailable|returned error: 503|HTTP Error 503|\bHTTP 503\b"),
        "runner",
        "http-503",
    ),
    ("502 Bad Gateway", re.compile(r"502 Bad Gateway"), "runner", "http-502"),
    (
        "failed with exit code",
        re.compile(r"The process '[^']*git(?:\.exe)?' failed with exit code"),
        "runner",
        "git",
    ),
)

_STEP = "##[group]Run "


class Runner:
    name = "runner"
    ecosystem = "infra"
    needles = (*dict.fromkeys(n for n, _, _, _ in RULES), _STEP)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        last: dict[tuple[int, int], Failure] = {}
        step = -1
        for i in hits:
            s = lines[i]
            if s.startswith(_STEP):
                step += 1
                continue
            s = body(s)
            for rule, (needle, pattern, tool, code) in enumerate(RULES):
                if needle in s and pattern.search(s):
                    # Repeated (retries): the last one is where the tool gave up.
                    last[(rule, step)] = Failure(
                        "infrastructure", tool, clip(s), code=code, log_line=i
                    )
                    break
        out = sorted(last.values(), key=lambda f: f.log_line)
        # One finding per kind of trouble and step: a bare "exit code 137" only when nothing
        # said more (a "Killed" line).
        said = {f.code for f in out if "exit code 137" not in f.message}
        out = [f for f in out if "exit code 137" not in f.message or f.code not in said]
        # A cancellation following a timeout, a shutdown or a lost runner is its consequence.
        if any(f.code != "canceled" for f in out):
            out = [f for f in out if f.code != "canceled"]
        return out


PARSER = Runner()
