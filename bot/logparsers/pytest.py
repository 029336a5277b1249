"""pytest: failing and erroring tests with their node ids, messages and failing frames.

Recognises, and merges per test and step:

- the short summary: ``FAILED tests/test_calc.py::test_add[2-3] - assert 6 == (2 + 3)``,
  ``ERROR tests/test_imports.py - ModuleNotFoundError: …``;
- ``-v`` lines: ``tests/test_calc.py::test_add[2-3] FAILED  [ 40%]`` (xdist's
  ``[gw0] [ 40%] FAILED …`` too);
- the sections after ``=== FAILURES ===`` / ``=== ERRORS ===``: ``____ test_add[2-3] ____``
  (and the short ``_ name _`` form), their last ``E`` block and the repository frames
  (``calc/core.py:7: ZeroDivisionError``); collection errors (``ERROR collecting …``);
- the final count ``==== 3 failed, 5 passed in 0.12s ====`` (a failure without ids when
  nothing else was printed);
- pytest-timeout: ``Failed: Timeout >1.0s`` and the ``+++ Timeout +++`` banner (kind
  "timeout"), usage errors (``ERROR: file or directory not found: tests/x.py``).

``rootdir: /path`` makes absolute paths repository-relative.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.logparsers import _python as py
from bot.logparsers.base import Failure, body, rel_path

MAX_SECTION_LINES = 20_000
#: Lines of one `=== FAILURES ===` region walked at most.
MAX_REGION_LINES = 200_000

_SUMMARY = re.compile(r"^(?P<outcome>FAILED|ERROR) (?P<id>\S.*?)(?: - (?P<msg>.*))?$")
_VERBOSE = re.compile(
    r"^(?:\[gw\d+\] \[\s*\d+%\] (?P<o1>FAILED|ERROR) (?P<id1>\S+::\S.*?)"
    r"|(?P<id2>\S+::\S.*?) (?P<o2>FAILED|ERROR)(?:\s+\[\s*\d+%\])?)\s*$"
)
_HEADER = re.compile(r"^_+ (?P<name>[^_ ].*?) _+$")
_FAILURES_BANNER = re.compile(r"^=+ (?:FAILURES|ERRORS) =+$")
#: "3 failed, 1 error in 0.12s" — a pytest run's last line.
FINAL = re.compile(r"^=*\s*(?P<body>\d+ [a-z]+(?:, \d+ [a-z]+)*) in \d+(?:\.\d+)?s\b")
_TIMEOUT_MSG = re.compile(r"\bTimeout \(?>\s?\d")
_TIMEOUT_BANNER = re.compile(r"^\+{3,} Timeout \+{3,}$")
_USAGE = re.compile(r"^ERROR: (?:file or directory not found|not found): (?P<what>\S.*)$")


@dataclass
class _Record:
    """One pytest fact before merging: a summary line, a -v line or a failure section."""

    source: Literal["summary", "verbose", "section"]
    outcome: str  # FAILED or ERROR
    test_id: str | None
    suffix: str | None  # section only: "TestX::test_m[1-2]" to match a summary id's tail
    message: str
    code: str | None
    path: str | None
    line: int | None
    log_line: int
    step: int


def _ends_section(s: str) -> bool:
    if s.startswith("_"):
        return _HEADER.match(s) is not None
    return s.startswith(("===", "!!!", "##["))


def _looks_like_node_id(tid: str) -> bool:
    return "::" in tid or tid.rstrip().endswith((".py", ".pyi"))


class _Scan:
    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = lines
        self.steps = py.StepTracker(lines)
        self.records: list[_Record] = []
        self.other: list[tuple[Failure, int]] = []
        self.finals: list[tuple[int, int, int]] = []  # (failed+errors, log line, step)
        self.seen: set[tuple[object, ...]] = set()
        self.rootdir: str | None = None

    @property
    def step(self) -> int:
        return self.steps.index

    def rel(self, path: str) -> str:
        return rel_path(path, self.rootdir)

    def add(self, f: Failure, key: tuple[object, ...]) -> None:
        key = (*key, self.step)
        if key not in self.seen:
            self.seen.add(key)
            self.other.append((f, self.step))

    def run(self, hits: Sequence[int]) -> None:
        skip_until = 0
        for i in hits:
            if i < skip_until:
                continue
            if self.steps.see(i):
                continue
            skip_until = max(skip_until, self.line(i, body(self.lines[i])))

    def line(self, i: int, s: str) -> int:
        """Parse one hit; return the index parsing may resume at."""
        if s.startswith(("FAILED ", "ERROR ")):
            m = _SUMMARY.match(s)
            if m and _looks_like_node_id(m["id"]):
                self.summary_line(i, s, m)
                return i + 1
        if ("FAILED" in s or "ERROR" in s) and "::" in s:
            m = _VERBOSE.match(s)
            if m:
                tid = m["id1"] or m["id2"]
                outcome = m["o1"] or m["o2"]
                self.records.append(
                    _Record("verbose", outcome, tid, None, "", None, None, None, i, self.step)
                )
                return i + 1
        if s.startswith("=") and _FAILURES_BANNER.match(s):
            return self.region(i)
        if s.startswith("rootdir: "):
            self.rootdir = s[9:].split(",")[0].strip().rstrip("/") or None
            return i + 1
        if " in " in s and ("failed" in s or "error" in s):
            m = FINAL.match(s)
            if m:
                self.final_line(i, m["body"])
                return i + 1
        if "Timeout" in s and _TIMEOUT_BANNER.match(s):
            self.timeout_banner(i)
            return i + 1
        if s.startswith("ERROR: ") and (m := _USAGE.match(s)):
            self.add(
                Failure(
                    "test",
                    "pytest",
                    py.clip_line(s[7:]),
                    test_id=m["what"].strip(),
                    code="usage-error",
                    log_line=i,
                ),
                ("usage", m["what"]),
            )
        return i + 1

    def region(self, banner: int) -> int:
        """Walk the failure sections after a FAILURES/ERRORS banner; return where it ends."""
        lines = self.lines
        limit = min(len(lines), banner + MAX_REGION_LINES)
        j = banner + 1
        while j < limit:
            s = lines[j]
            if s.startswith("_"):
                h = _HEADER.match(s)
                if h:
                    j = self.section(j, h["name"])
                    continue
            elif s.startswith(("===", "##[")):
                break
            j += 1
        return j

    def summary_line(self, i: int, s: str, m: re.Match[str]) -> None:
        tid = m["id"].strip()
        msg = (m["msg"] or "").strip()
        if "[" in tid and "]" not in tid:  # a parameter holding " - ": the id ends at "]"
            rest = s[len(m["outcome"]) + 1 :]
            end = rest.find("] - ")
            tid, msg = (rest[: end + 1], rest[end + 4 :]) if end >= 0 else (rest.strip(), "")
        if msg.startswith("assert "):
            msg = "AssertionError: " + msg
        em = py.EXC_LINE.match(msg)
        code = em["exc"] if em and em["rest"] is not None else None
        self.records.append(
            _Record("summary", m["outcome"], tid, None, msg, code, None, None, i, self.step)
        )

    def final_line(self, i: int, text: str) -> None:
        n = 0
        for num, word in re.findall(r"(\d+) ([a-z]+)", text):
            if word in ("failed", "error", "errors"):
                n += int(num)
        if n:
            self.finals.append((n, i, self.step))

    def section(self, h: int, name: str) -> int:
        """Walk a pytest failure section from its header; return the index after it."""
        lines = self.lines
        limit = min(len(lines), h + MAX_SECTION_LINES)
        e_blocks: list[list[tuple[int, str]]] = []
        locs: list[tuple[str, int, str]] = []
        plain_exc: tuple[int, str] | None = None
        in_e = captured = False
        j = h + 1
        while j < limit:
            s = lines[j]
            if s.startswith(("_", "===", "!!!", "##[")) and _ends_section(s):
                break
            if s[:1].isdigit() and FINAL.match(s):
                break
            if captured:
                j += 1
                continue
            if s.startswith("E ") or s == "E":
                text = s[1:].strip()
                if not in_e:
                    e_blocks.append([])
                    in_e = True
                e_blocks[-1].append((j, text))
                fm = py.FILE_LINE.match(text)
                if fm:
                    locs.append((fm["path"], int(fm["line"]), ""))
            else:
                in_e = False
                if s.startswith("--") and " Captured " in s:
                    captured = True
                elif m := py.PY_LOC.match(s):
                    locs.append((m["path"], int(m["line"]), (m["what"] or "").strip()))
                elif fm := py.FILE_LINE.match(s):
                    locs.append((fm["path"], int(fm["line"]), ""))
                elif s[:1].isalpha() and py.EXC_LINE.match(s):
                    plain_exc = (j, s)
            j += 1
        self.section_record(h, name, e_blocks, locs, plain_exc)
        return j

    def section_record(
        self,
        h: int,
        name: str,
        e_blocks: list[list[tuple[int, str]]],
        locs: list[tuple[str, int, str]],
        plain_exc: tuple[int, str] | None,
    ) -> None:
        outcome = "FAILED"
        collect_path: str | None = None
        if name.startswith("ERROR collecting "):
            outcome = "ERROR"
            collect_path = self.rel(name[len("ERROR collecting ") :])
        elif m := re.match(r"ERROR at (?:setup|teardown) of (.+)$", name):
            outcome = "ERROR"
            name = m[1]
        # The exception line: in the last block of E lines, the first that names an exception.
        pick: tuple[int, str] | None = None
        if e_blocks:
            block = e_blocks[-1]
            pick = next(((k, b) for k, b in block if py.EXC_LINE.match(b) and ": " in b), None)
            if pick is None:
                pick = next(((k, b) for k, b in block if b), block[0])
        elif plain_exc:
            pick = plain_exc
        rel_locs = [(self.rel(p), ln, what) for p, ln, what in locs]
        repo = [(p, ln, what) for p, ln, what in rel_locs if not py.external(p)]
        message = ""
        code: str | None = None
        if pick is not None:
            text = pick[1]
            em = py.EXC_LINE.match(text)
            if em and (em["rest"] is not None or not repo):
                code = em["exc"]
                message = text
            else:
                what = next((w for _, _, w in reversed(rel_locs) if py.IDENT.match(w)), None)
                message = f"{what}: {text}" if what else text
                code = what
        path: str | None = None
        line: int | None = None
        if repo:
            path, line = repo[-1][0], repo[-1][1]
        test_path = collect_path or next((p for p, _, _ in repo if py.is_test_file(p)), None)
        suffix: str | None = None
        tid: str | None
        if collect_path:
            tid = collect_path
        elif name.startswith("[doctest]"):
            tid = None
        else:
            base, bracket, param = name.partition("[")
            suffix = base.replace(".", "::") + bracket + param
            tid = f"{test_path}::{suffix}" if test_path else None
        self.records.append(
            _Record(
                "section",
                outcome,
                tid,
                suffix,
                message,
                code,
                path,
                line,
                pick[0] if pick else h,
                self.step,
            )
        )

    def timeout_banner(self, i: int) -> None:
        """pytest-timeout's thread method: a banner, the stacks, then the process exits."""
        test_id: str | None = None
        path: str | None = None
        line: int | None = None
        for j in range(i + 1, min(len(self.lines), i + 300)):
            fm = py.FILE_LINE.match(self.lines[j])
            if fm:
                p = self.rel(fm["path"])
                if not py.external(p) and py.is_test_file(p) and fm["func"]:
                    test_id = f"{p}::{fm['func'].strip()}"
                    path, line = p, int(fm["line"])
            elif self.lines[j].startswith("+++") and j > i + 1:
                break
        self.add(
            Failure(
                "timeout",
                "timeout",
                "pytest-timeout: test timed out",
                test_id=test_id,
                path=path,
                line=line,
                code="pytest-timeout",
                log_line=i,
            ),
            ("pytest-timeout-banner",),
        )

    # -- merging --

    def failures(self) -> list[Failure]:
        out = list(self.other)
        out.extend(self.merge())
        steps_with_pytest = {
            step for f, step in out if f.tool == "pytest" or f.code == "pytest-timeout"
        }
        for n, i, step in self.finals:
            if step not in steps_with_pytest:
                steps_with_pytest.add(step)
                out.append(
                    (
                        Failure(
                            "test",
                            "pytest",
                            py.clip_line(self.lines[i].strip("= ")),
                            code=f"{n} failed",
                            log_line=i,
                        ),
                        step,
                    )
                )
        timeouts = {step for f, step in out if f.code == "pytest-timeout" and f.test_id}
        result = [
            f
            for f, step in out
            if not (f.code == "pytest-timeout" and not f.test_id and step in timeouts)
        ]
        result.sort(key=lambda f: f.log_line)
        return result

    def merge(self) -> list[tuple[Failure, int]]:
        sections = [r for r in self.records if r.source == "section"]
        used: set[int] = set()
        merged: list[tuple[_Record, _Record | None]] = []
        ids: set[tuple[str, str, int]] = set()
        for r in self.records:
            if r.source != "summary" or r.test_id is None:
                continue
            key = (r.test_id, r.outcome, r.step)
            if key in ids:
                continue
            ids.add(key)
            match = None
            for k, sec in enumerate(sections):
                if k in used or sec.step != r.step or sec.outcome != r.outcome:
                    continue
                if sec.test_id == r.test_id or (
                    sec.suffix and r.test_id.endswith("::" + sec.suffix)
                ):
                    match = k
                    break
            if match is not None:
                used.add(match)
                merged.append((r, sections[match]))
            else:
                merged.append((r, None))
        for k, sec in enumerate(sections):
            if k in used:
                continue
            key = (sec.test_id or sec.suffix or str(sec.log_line), sec.outcome, sec.step)
            if key not in ids:
                ids.add(key)
                merged.append((sec, None))
        for r in self.records:
            if r.source == "verbose" and r.test_id:
                key = (r.test_id, r.outcome, r.step)
                other = (r.test_id, "FAILED" if r.outcome == "ERROR" else "ERROR", r.step)
                if key not in ids and other not in ids:
                    ids.add(key)
                    r.message = f"{r.outcome} (no details in the log)"
                    merged.append((r, None))
        out: list[tuple[Failure, int]] = []
        for rec, extra in merged:
            message = (extra.message if extra and extra.message else rec.message) or rec.outcome
            code = extra.code if extra and extra.code else rec.code
            path = extra.path if extra else rec.path
            line = extra.line if extra else rec.line
            test_id = rec.test_id or (extra.test_id if extra else None) or rec.suffix
            timeout = bool(_TIMEOUT_MSG.search(message))
            f = Failure(
                "timeout" if timeout else "test",
                "timeout" if timeout else "pytest",
                py.clip_line(message),
                test_id=test_id,
                path=path,
                line=line,
                code="pytest-timeout" if timeout else code,
                # The exception line of the failure's section (what a maintainer reads first),
                # else the summary or -v line.
                log_line=extra.log_line if extra else rec.log_line,
            )
            out.append((f, rec.step))
        return out


class Pytest:
    name = "pytest"
    ecosystem = "python"
    needles = (
        py.STEP,
        "FAILED",
        "ERROR",
        "FAILURES =",
        "rootdir: ",
        " failed",
        " error",
        "Timeout",
    )

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        scan = _Scan(lines)
        scan.run(hits)
        return scan.failures()


PARSER = Pytest()
