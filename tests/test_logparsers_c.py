"""The gcc, ld, cmake, ctest and c-assert log parsers on the captured C/C++ corpus
(tests/fixtures/cilogs/c: real output of gcc/g++ 12.2, GNU ld 2.40, GNU Make 4.3 and
cmake/ctest 3.25, see generate.sh). Every case runs as a plain terminal log, as an Actions log
download and as `gh run view --log` prints it. Inputs written here are marked HAND-WRITTEN.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import pytest

from bot.cilogs import clean_log, diagnose
from bot.logparsers import parsers
from bot.logparsers.base import LogParser, scan
from tests.support.cilog_corpus import CORPUS, Case, Style, cases, job_log, matches

MODULES = ("gcc", "ld", "cmake", "ctest", "c_assert")
PARSERS: dict[str, LogParser] = {
    p.name: p for p in (importlib.import_module(f"bot.logparsers.{m}").PARSER for m in MODULES)
}
CASES: tuple[Case, ...] = cases("c")
FOUND = tuple(c for c in CASES if c.failures)
PASSING = tuple(c for c in CASES if c.passing is not None)
STYLES: tuple[Style, ...] = ("plain", "actions", "prefixed")


def log_lines(case: Case, style: Style, *, passing: bool = False) -> list[str]:
    if style == "plain":
        return job_log(case, "plain", passing=passing).splitlines()
    return clean_log(job_log(case, style, passing=passing)).lines


def marked_lines(case: Case, lines: Sequence[str]) -> set[int]:
    return {i for i, line in enumerate(lines) if any(m in line for m in case.marked)}


def captured(name: str) -> list[str]:
    return (CORPUS / "c" / name).read_text(encoding="utf-8").splitlines()


def test_the_parsers_are_registered_and_the_corpus_covers_them() -> None:
    registered = {p.name for p in parsers()}
    assert set(PARSERS) <= registered
    assert {c.tool for c in CASES} == set(PARSERS)
    assert len(CASES) >= 10
    assert not any(c.captured.startswith("HAND-WRITTEN:") for c in CASES)
    assert {c.category for c in CASES} == {"compile", "dependency", "test", "unknown"}
    assert {c.tool for c in CASES if c.category == "unknown"} == {"gcc", "cmake"}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", FOUND, ids=lambda c: c.id)
def test_the_case_failures_are_found_at_marked_lines(case: Case, style: Style) -> None:
    lines = log_lines(case, style)
    found = scan(PARSERS[case.tool], lines)
    assert found, f"{case.tool} found nothing in {case.id}"
    for expected in case.failures:
        assert any(matches(f, expected) for f in found), (expected, found)
    marked = marked_lines(case, lines)
    for f in found:
        assert f.log_line in marked, (f, lines[f.log_line])
        assert f.tool == case.tool
    assert case.category in {f.kind for f in found}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", PASSING, ids=lambda c: c.id)
def test_the_passing_runs_yield_nothing(case: Case, style: Style) -> None:
    lines = log_lines(case, style, passing=True)
    for parser in PARSERS.values():
        assert scan(parser, lines) == [], (parser.name, case.id)


@pytest.mark.parametrize("with_passing", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_diagnosis_shows_a_marked_line_first(case: Case, with_passing: bool) -> None:
    passing = job_log(case, "actions", passing=True) if with_passing else None
    diagnosis = diagnose(job_log(case, "actions"), passing)
    assert any(m in diagnosis.key_lines[0] for m in case.marked), diagnosis.key_lines
    assert diagnosis.category == case.category
    assert diagnosis.confident == (case.category != "unknown")


def test_warnings_notes_and_trailers_are_not_failures() -> None:
    # a build that passed with a warning and its note
    assert all(scan(p, captured("make-warning.out")) == [] for p in PARSERS.values())
    # the candidates' notes of an overload error: one failure, at the error line
    lines = captured("make-cpp-overload.out")
    (found,) = scan(PARSERS["gcc"], lines)
    assert ": error: no matching function" in lines[found.log_line]
    # -Werror's "cc1: all warnings being treated as errors" is not a second failure
    assert len(scan(PARSERS["gcc"], captured("make-werror.out"))) == 1
    # collect2's exit status is a trailer when ld said why
    lines = captured("make-link.out")
    assert [lines[f.log_line] for f in scan(PARSERS["ld"], lines)] == [
        "/home/runner/work/cproj/cproj/src/main.c:23: undefined reference to `calc_pow'"
    ]


def test_lld_names_the_missing_library_also_as_rustc_relays_it() -> None:
    # lld's wording (not captured here: the image has no lld), bare and as rustc's `= note:`
    lines = [
        "error: linking with `cc` failed: exit status: 1",
        "  = note: rust-lld: error: unable to find library -lcalcfast",
        "          collect2: error: ld returned 1 exit status",
        "ld.lld: error: unable to find library -lsodium",
    ]
    found = scan(PARSERS["ld"], lines)
    assert [(f.log_line, f.code, f.message) for f in found] == [
        (1, "missing-library", "cannot find -lcalcfast"),
        (3, "missing-library", "cannot find -lsodium"),
    ]  # and collect2's exit status is a trailer beside them


def test_two_errors_in_one_file() -> None:
    found = scan(PARSERS["gcc"], captured("make-compile.out"))
    assert [(f.path, f.line, f.code) for f in found] == [
        ("src/calc.c", 17, "undeclared"),
        ("src/calc.c", 29, "syntax"),
    ]
    assert found[0].message == "‘divisor’ undeclared (first use in this function)"


def test_a_template_error_in_a_system_header_points_at_the_project() -> None:
    (found,) = scan(PARSERS["gcc"], captured("make-cpp-template.out"))
    assert (found.path, found.line) == ("src/report.cpp", 18)
    assert found.message.startswith("no match for ‘operator-’")


def test_the_linker_message_names_the_function() -> None:
    (found,) = scan(PARSERS["ld"], captured("make-link.out"))
    assert found.message == "undefined reference to `calc_pow' (in function `main')"


def test_cmake_module_errors_take_the_projects_frame() -> None:
    lines = captured("cmake-find-module.out")
    (found,) = scan(PARSERS["cmake"], lines)
    assert (found.path, found.line, found.code, found.kind) == (
        "CMakeLists.txt",
        4,
        "find_package",
        "dependency",
    )
    assert lines[found.log_line].strip().startswith("Could NOT find CURL")
    (config,) = scan(PARSERS["cmake"], captured("cmake-find-package.out"))
    assert 'Could not find a package configuration file provided by "fmt"' in config.message


def test_ctest_reads_the_tests_own_output() -> None:
    (found,) = scan(PARSERS["ctest"], captured("ctest-fail.out"))
    assert found.message == (
        "test_sub: Failed: /home/runner/work/cproj/cproj/tests/test_sub.c:4: "
        "calc_sub(5, 3) = -2, want 2"
    )
    (segv,) = scan(PARSERS["ctest"], captured("ctest-segfault.out"))
    assert (segv.test_id, segv.code, segv.path) == ("test_name", "segfault", None)


def test_ctest_summary_alone_still_names_the_test() -> None:
    # the captured run without its status lines (ctest -Q, or a log cut in the middle)
    lines = [line for line in captured("ctest-fail.out") if " Test #" not in line]
    (found,) = scan(PARSERS["ctest"], lines)
    assert (found.test_id, found.code) == ("test_sub", "failed")
    assert lines[found.log_line].strip() == "2 - test_sub (Failed)"


def test_edge_shapes() -> None:
    # HAND-WRITTEN: a Python type checker's line is not gcc's; the driver's own error is
    gcc = PARSERS["gcc"]
    assert scan(gcc, ["app/main.py:3: error: Name 'x' is not defined  [name-defined]"]) == []
    (driver,) = scan(gcc, ["gcc: error: unrecognized command-line option ‘-fno-such’"])
    assert (driver.code, driver.kind) == ("driver", "compile")
    # HAND-WRITTEN: lld's undefined symbol, and collect2 alone when the linker's shape is unknown
    (lld,) = scan(
        PARSERS["ld"],
        [
            "ld.lld: error: undefined symbol: calc_pow",
            ">>> referenced by main.c:23 (src/main.c:23)",
            "clang: error: linker command failed with exit code 1 (use -v to see invocation)",
        ],
    )
    assert (lld.code, lld.path, lld.line) == ("undefined-reference", "main.c", 23)
    (trailer,) = scan(PARSERS["ld"], ["collect2: error: ld returned 1 exit status"])
    assert trailer.code == "link"
