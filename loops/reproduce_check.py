"""Is a new test a reproduction? It must fail on base, in its own test process, for the reason
the issue reports, and not because the test itself is broken (decided by where the failure was
raised). Pure decisions over test outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.testresults import TestOutcome, TestRun, collection_errors, is_collection_error, origin

_EXC = re.compile(r"\b([A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning|Exit|Interrupt))\b")
#: Errors that mean "this code cannot run as written". Whether that code is the new test (a
#: broken test) or the project (the bug) is decided by where the error was raised.
_CANNOT_RUN = re.compile(
    r"\b(?:SyntaxError|IndentationError|ModuleNotFoundError|ImportError|NameError)\b"
)
_NO_FIXTURE = re.compile(r"fixture '[^']+' not found")


def reported_signals(issue_text: str) -> list[str]:
    """Exception names the issue mentions (`IndexError`, `KeyError`…), most specific first."""
    found = list(dict.fromkeys(_EXC.findall(issue_text)))
    # A bare AssertionError says little; keep it, but after anything more specific.
    return sorted(found, key=lambda name: name == "AssertionError")


@dataclass(frozen=True)
class ReproVerdict:
    ok: bool
    reason: str


#: How a user stops a hang: reported beside the bug, they stand for "it hangs", which a test
#: shows as a timeout.
_STOPPED = frozenset({"KeyboardInterrupt", "CancelledError", "SystemExit", "GeneratorExit"})
_SUFFIX = re.compile(r"(?:Error|Exception|Warning|Exit|Interrupt)$")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*")
_TIMEOUT = re.compile(r"Timeout|TimedOut|timed out", re.IGNORECASE)


def failure_kind(name: str) -> str:
    """The kind word of an exception name: the last word before its Error/Exception suffix
    (`HTTPTimeoutError` and `TimeoutError` are both `timeout`; `KeyError` is `key`)."""
    words = _WORD.findall(_SUFFIX.sub("", name))
    return words[-1].lower() if words else name.lower()


def matches_signal(message: str, signals: Iterable[str]) -> bool:
    """Does a failure show what the issue reports? The same exception, one of the same kind
    (a library's `HTTPTimeoutError` in the report, the test runner's `TimeoutError` in the
    test), or — for a hang the user had to interrupt — any timeout."""
    raised = set(_EXC.findall(message))
    kinds = {failure_kind(e) for e in raised}
    for s in signals:
        if s in message or failure_kind(s) in kinds:
            return True
        if s in _STOPPED and _TIMEOUT.search(message):
            return True
    return False


def _in_files(path: str, files: Iterable[str]) -> bool:
    """Does a traceback frame's path (absolute inside the jail, or relative) name one of the
    repository-relative `files`?"""
    path = path.replace("\\", "/")
    return any(path == f or path.endswith("/" + f) for f in files)


def broken_test(outcome: TestOutcome, test_files: Iterable[str], issue_text: str = "") -> str:
    """Why `outcome` says the new test itself is broken, or "" if it is a real failure.

    Decided by where the failure was raised, not by the exception's name: a `NameError` or
    `ImportError` raised in the project's code is the bug (and may be exactly what the issue
    reports); the same error raised in the new test file means the test is wrong. An error the
    issue quotes word for word is the reported failure wherever it is raised.
    """
    message = outcome.message
    if _NO_FIXTURE.search(message):
        return "it asks for a fixture that does not exist"
    if not _CANNOT_RUN.fullmatch(exception_name(message)):
        return ""
    files = list(test_files)
    where = origin(message)
    error_line = next(
        (
            ln.strip().removeprefix("E").strip()
            for ln in message.splitlines()
            if _CANNOT_RUN.search(ln) and ":" in ln
        ),
        "",
    )
    if error_line and len(error_line) > 12 and error_line in issue_text:
        return ""
    if where is None:
        # No frames to go by (a bare message): the exception's name is all there is.
        return (
            "it cannot run as written"
            if not is_collection_error(outcome)
            else ("the test file does not import or parse")
        )
    if _in_files(where, files):
        return f"the error is raised in the test file itself ({where})"
    return ""


def judge(
    new_tests: Iterable[str],
    run: TestRun,
    signals: list[str],
    *,
    test_files: Iterable[str] = (),
    issue_text: str = "",
) -> ReproVerdict:
    """Decide whether `new_tests`, run on the base code in their own test process (`run`),
    reproduce the issue. Side effects on the rest of the suite are not judged here: a crash
    can leave global state behind that breaks other tests, and those must pass again once the
    bug is fixed (the patch step's regression check sees to that)."""
    ids = list(new_tests)
    files = list(test_files)
    if not ids:
        errors = [
            o
            for o in collection_errors(run)
            if not files
            or _in_files(o.test_id.replace(".", "/") + ".py", files)
            or any(f in o.message for f in files)
        ]
        if errors:
            return ReproVerdict(
                False, "the new test file does not import: " + _first_line(errors[0].message)
            )
        return ReproVerdict(False, "the new test file collected no tests")
    if not run.junit_found:
        return ReproVerdict(False, f"the run produced no test results ({run.junit_error})")
    outcomes: list[TestOutcome] = []
    for tid in ids:
        outcome = run.outcomes.get(tid)
        if outcome is None:
            return ReproVerdict(False, f"{tid} was not collected")
        outcomes.append(outcome)
    failing = [o for o in outcomes if o.outcome in ("failed", "error")]
    if not failing:
        return ReproVerdict(False, "the new test passes on the base commit: nothing reproduced")
    for o in failing:
        why = broken_test(o, files, issue_text)
        if why:
            return ReproVerdict(
                False,
                f"{o.test_id} fails because the test itself is broken ({why}): "
                f"{_first_line(o.message)}",
            )
    if signals and not any(matches_signal(f"{o.message}\n{o.output}", signals) for o in failing):
        return ReproVerdict(
            False, f"fails, but not for the reported reason (expected {', '.join(signals)})"
        )
    why = _first_line(failing[0].message) or failing[0].outcome
    return ReproVerdict(True, f"{failing[0].test_id} fails on base: {why}")


_RAISED = re.compile(r"^(?:E\s+)?([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))\b", re.M)


def exception_name(message: str) -> str:
    """The exception a failure ended with: pytest's message attribute starts with it
    (`NameError: name 'x' …`); a collection error names it on its last `E   ` line."""
    first = message.splitlines()[0] if message else ""
    found = _RAISED.match(first)
    if found:
        return found.group(1).rsplit(".", 1)[-1]
    names = [m.group(1) for m in _RAISED.finditer(message) if m.group(0).startswith("E")]
    return names[-1].rsplit(".", 1)[-1] if names else ""


def _first_line(message: str) -> str:
    """The line that says what went wrong: pytest's `E   ...` line, else the first line."""
    for line in message.splitlines():
        if line.startswith("E ") and line[1:].strip():
            return line[1:].strip()[:200]
    return message.splitlines()[0][:200] if message else ""
