"""The cargo, cargo-test, clippy, rustfmt, shell, docker and terraform log parsers on the captured
corpus (tests/fixtures/cilogs/{rust,shell,docker,terraform}: real output of cargo 1.95, bash 5.2,
GNU make 4.3, docker 20.10 / 28.2 and Terraform 1.11, one HAND-WRITTEN buildx case; see each
case's "captured"). Every case runs as a plain terminal log and as an Actions log download.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import pytest

from bot.cilogs import clean_log, diagnose
from bot.logparsers.base import Failure, LogParser, scan
from tests.support.cilog_corpus import CORPUS, Case, Style, cases, job_log, load, matches

MODULES = ("cargo", "cargo_test", "clippy", "rustfmt", "shell", "docker", "terraform")
PARSERS: dict[str, LogParser] = {
    p.name: p for p in (importlib.import_module(f"bot.logparsers.{m}").PARSER for m in MODULES)
}
ECOSYSTEMS = ("rust", "shell", "docker", "terraform")
CASES: tuple[Case, ...] = tuple(c for e in ECOSYSTEMS for c in cases(e))
PASSING = tuple(c for c in CASES if c.passing is not None)
STYLES: tuple[Style, ...] = ("plain", "actions", "prefixed")


def log_lines(case: Case, style: Style, *, passing: bool = False) -> list[str]:
    if style == "plain":
        return job_log(case, "plain", passing=passing).splitlines()
    return clean_log(job_log(case, style, passing=passing)).lines


def marked_lines(case: Case, lines: Sequence[str]) -> set[int]:
    return {i for i, line in enumerate(lines) if any(m in line for m in case.marked)}


def test_the_corpus_covers_every_parser() -> None:
    assert {c.tool for c in CASES} == set(PARSERS)
    assert {c.ecosystem for c in CASES} == set(ECOSYSTEMS)
    assert len(CASES) >= 20
    assert sum(c.captured.startswith("HAND-WRITTEN:") for c in CASES) <= 2


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_case_failures_are_found_at_marked_lines(case: Case, style: Style) -> None:
    lines = log_lines(case, style)
    found = scan(PARSERS[case.tool], lines)
    assert found, f"{case.tool} found nothing in {case.id}"
    for expected in case.failures:
        assert any(matches(f, expected) for f in found), (expected, found)
    marked = marked_lines(case, lines)
    assert marked
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
def test_the_diagnosis_shows_a_marked_line_among_the_first_three(
    case: Case, with_passing: bool
) -> None:
    if with_passing and case.passing is None:
        pytest.skip("no passing run")
    passing = job_log(case, "actions", passing=True) if with_passing else None
    diagnosis = diagnose(job_log(case, "actions"), passing)
    top = diagnosis.key_lines[:3]
    assert any(m in line for line in top for m in case.marked), top
    assert diagnosis.category == case.category


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_other_parsers_stay_quiet_on_a_case(case: Case) -> None:
    """Only the case's tool speaks (and the shell parser, where a shell error is printed)."""
    lines = log_lines(case, "actions")
    for name, parser in PARSERS.items():
        if name in (case.tool, "shell"):
            continue
        assert scan(parser, lines) == [], (name, case.id)


def _other_cases() -> list[Case]:
    """The other ecosystems' cases that load (another ecosystem's corpus may be mid-change)."""
    out: list[Case] = []
    for path in sorted(CORPUS.glob("*/*.json")):
        if path.parent.name in ECOSYSTEMS:
            continue
        try:
            out.append(load(path))
        except (ValueError, KeyError, OSError):
            continue
    return out


def test_the_other_ecosystems_passing_runs_are_quiet() -> None:
    others = [c for c in _other_cases() if c.passing is not None]
    for case in others:
        lines = log_lines(case, "actions", passing=True)
        for name in ("cargo", "cargo-test", "clippy", "rustfmt", "docker", "terraform"):
            assert scan(PARSERS[name], lines) == [], (name, case.id)


def one(case_id: str, tool: str | None = None, style: Style = "plain") -> list[Failure]:
    case = next(c for c in CASES if c.id == case_id)
    return scan(PARSERS[tool or case.tool], log_lines(case, style))


def test_cargo_reads_code_location_and_cause() -> None:
    compile_errors = one("rust/compile")
    assert [(f.code, f.path, f.line) for f in compile_errors] == [
        ("E0308", "src/main.rs", 4),
        ("E0308", "src/main.rs", 5),
    ]
    assert compile_errors[0].message == "error[E0308]: mismatched types"
    online = one("rust/dependency-online")
    assert len(online) == 1 and "Could not resolve hostname" in online[0].message
    # the lib's unused-variable warning and "could not compile" are not failures of their own
    assert all(f.code != "could-not-compile" for f in compile_errors)


def test_cargo_test_message_holds_the_assertion() -> None:
    found = one("rust/test-fail")
    assert [f.test_id for f in found] == ["tests::mean_of_three", "mean_matches"]
    assert "left: Some(1.5)" in found[0].message and "right: Some(2.0)" in found[0].message
    panic = one("rust/test-panic")
    assert "called `Result::unwrap()` on an `Err` value" in panic[0].message


def test_clippy_names_the_lint_and_cargo_leaves_it() -> None:
    assert [f.code for f in one("rust/clippy")] == ["clippy::needless_return", "clippy::len_zero"]
    assert one("rust/clippy", "cargo") == []


def test_shell_reads_the_command_and_the_make_cause() -> None:
    make = one("shell/make-test")
    assert len(make) == 1  # the outer "make: *** [Makefile:3: test] Error 2" only repeats it
    assert "FAIL: expected -8, got 8" in make[0].message
    tee = one("rust/compile-tee", "shell")
    assert [f.code for f in tee] == ["no-such-file"]
    inside_docker = one("docker/buildkit-run", "shell")
    assert [(f.code, f.path, f.line) for f in inside_docker] == [
        ("command-not-found", "build.sh", 6)
    ]


def test_docker_names_the_step_and_its_last_output() -> None:
    (run,) = one("docker/buildkit-run")
    assert run.message.startswith("[build 6/7] RUN sh ./build.sh: ")
    assert "cc: not found" in run.message
    (classic,) = one("docker/classic-run")
    assert classic.message.startswith("RUN sh ./test.sh: ")
    assert "not ok 3 - mul: expected 6, got 5" in classic.message
    (buildx,) = one("docker/buildx-run")
    assert "main.c:7:12: error: 'count' undeclared" in buildx.message


def test_terraform_kinds() -> None:
    (test,) = one("terraform/test")
    assert test.code == "test-assertion-failed"
    (init,) = one("terraform/init-provider")
    assert init.kind == "dependency" and init.path is None
