"""The captured CI log corpus: real tool output, committed as golden files, wrapped as job logs.

Layout: ``tests/fixtures/cilogs/<ecosystem>/<case>.json`` beside the captured output files it
names. Each ecosystem directory has a ``generate.sh`` (or ``generate.py``) that rebuilds the
output files by running the real tools on the small projects kept under its ``src/``; the
tests and `bench/ci_logs.py` only read the committed files, so upgrading a tool never silently
changes a parser's input. Regenerate with ``bash tests/fixtures/cilogs/<ecosystem>/generate.sh``
and review the diff.

A case (``<case>.json``)::

    {
      "about": "go test: one failing test among passing packages",
      "tool": "go-test",                  # the parser expected to recognise it
      "category": "test",                 # what the diagnosis should classify the job as
      "captured": "go 1.19.8, go test",   # which tool/version produced the output
      "steps": [                          # the job's steps in order; "out" is a file beside
        {"run": "go mod download", "out": "mod-download.out", "exit": 0},
        {"run": "go test ./...", "out": "test-fail.out", "exit": 1}
      ],
      "passing": [                        # optional: the last passing run of the same job
        {"run": "go mod download", "out": "mod-download.out", "exit": 0},
        {"run": "go test ./...", "out": "test-pass.out", "exit": 0}
      ],
      "marked": ["--- FAIL: TestAdd", "add_test.go:9: "],
      "failures": [{"test_id": "TestAdd", "path": "add_test.go", "line": 9}]
    }

``marked`` are the error lines a maintainer would mark as the cause: each entry is a substring
that identifies one line of the failing output (it must occur in it, with or without its
ANSI colour; a text equal to a whole line identifies only that line). ``failures`` are the
facts a parser should extract (each key optional; a parsed failure matches when every given key
is equal). A step's ``run`` starting with ``actions/`` is shown as a ``uses:`` step.

`job_log(case, style)` wraps the steps as a job log in one of the `STYLES`:

- ``"actions"``: the log download: a timestamp on every line, ``##[group]Run …`` /
  ``##[endgroup]``, ``##[error]Process completed with exit code N.``;
- ``"prefixed"``: what ``gh run view --log`` prints: ``<job>\\t<step>\\t<timestamp> <line>``;
- ``"plain"``: the steps' output only, as a local terminal shows it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.support import FIXTURES
from tests.support.cilog_fixtures import actions_log

CORPUS = FIXTURES / "cilogs"
#: Colour escapes: a marked text may be given with them or without (as the line reads).
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STYLES: tuple[str, ...] = ("actions", "prefixed", "plain")
Style = Literal["actions", "prefixed", "plain"]


@dataclass(frozen=True)
class Step:
    run: str
    output: str
    exit: int


@dataclass(frozen=True)
class Case:
    ecosystem: str
    name: str
    about: str
    tool: str
    category: str
    steps: tuple[Step, ...]
    passing: tuple[Step, ...] | None
    marked: tuple[str, ...]
    failures: tuple[dict[str, Any], ...] = field(default=())
    captured: str = ""

    @property
    def id(self) -> str:
        return f"{self.ecosystem}/{self.name}"


def _steps(directory: Path, raw: list[dict[str, Any]]) -> tuple[Step, ...]:
    out: list[Step] = []
    for s in raw:
        text = ""
        if s.get("out"):
            text = (directory / s["out"]).read_text(encoding="utf-8")
        out.append(Step(s["run"], text, int(s.get("exit", 0))))
    return tuple(out)


def load(path: Path) -> Case:
    meta = json.loads(path.read_text(encoding="utf-8"))
    d = path.parent
    steps = _steps(d, meta["steps"])
    case = Case(
        ecosystem=d.name,
        name=path.stem,
        about=meta.get("about", ""),
        tool=meta["tool"],
        category=meta["category"],
        steps=steps,
        passing=_steps(d, meta["passing"]) if meta.get("passing") else None,
        marked=tuple(meta["marked"]),
        failures=tuple(meta.get("failures", ())),
        captured=meta.get("captured", ""),
    )
    output = "\n".join(s.output for s in steps)
    plain = _ANSI.sub("", output)
    for m in case.marked:
        if m not in output and m not in plain:
            raise ValueError(f"{path}: marked text {m!r} is not in the failing output")
    return case


@functools.cache
def cases(ecosystem: str | None = None) -> tuple[Case, ...]:
    """Every case of the corpus (or of one ecosystem), ordered by id."""
    pattern = f"{ecosystem}/*.json" if ecosystem else "*/*.json"
    return tuple(load(p) for p in sorted(CORPUS.glob(pattern)))


def _plain(steps: tuple[Step, ...]) -> str:
    return "".join(s.output if s.output.endswith("\n") else s.output + "\n" for s in steps)


def job_log(case: Case, style: Style = "actions", *, passing: bool = False) -> str:
    """The failing (or, with `passing`, the passing) run of `case` as a job log in `style`."""
    steps = case.passing if passing else case.steps
    if steps is None:
        raise ValueError(f"{case.id} has no passing run")
    if style == "plain":
        return _plain(steps)
    log = actions_log([(s.run, s.output, s.exit) for s in steps])
    if style == "actions":
        return log
    return prefixed(log, job="build")


def prefixed(log: str, *, job: str) -> str:
    """An Actions log download as `gh run view --log` prints it: job and step names before the
    timestamp of every line (the "Set up job" preamble included), tab-separated."""
    out: list[str] = []
    step = "Set up job"
    for line in log.splitlines():
        body = line[29:] if len(line) > 28 and line[28] == " " else line
        if body.startswith("##[group]Run "):
            step = body[13:].split("\n")[0][:80]
        elif body.startswith("Post job cleanup."):
            step = "Post job cleanup"
        out.append(f"{job}\t{step}\t{line}")
    return "\n".join(out) + "\n"


def matches(failure: Any, expected: dict[str, Any]) -> bool:
    """Whether a parsed failure (bot.logparsers.Failure) has every expected key's value."""
    return all(getattr(failure, k, None) == v for k, v in expected.items())
