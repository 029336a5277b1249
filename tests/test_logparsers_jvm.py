"""The JVM log parsers (Maven, Surefire/Failsafe, javac, Gradle, Checkstyle) on the captured
corpus in tests/fixtures/cilogs/jvm (real Maven/Gradle/Checkstyle output; three HAND-WRITTEN
cases, for what cannot run here: Failsafe, Maven 3.9 with Surefire 3 and maven-checkstyle-plugin;
see their "captured" field).

Every case is read as plain tool output and as an Actions log download (through
`bot.cilogs.clean_log`). The case's parser must find every expected failure, with the case's
category, at a line a maintainer marked; no JVM parser may report anything elsewhere, and the
passing runs of the same jobs yield nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bot.cilogs import clean_log
from bot.logparsers import gradle, gradle_checkstyle, javac, maven, surefire
from bot.logparsers.base import Failure, LogParser, hits_for, scan
from tests.support.cilog_corpus import CORPUS, Case, cases, job_log, matches

JVM: tuple[LogParser, ...] = (
    *maven.PARSERS,
    *surefire.PARSERS,
    javac.PARSER,
    *gradle.PARSERS,
    gradle_checkstyle.PARSER,
)
BY_NAME = {p.name: p for p in JVM}
CASES = cases("jvm")
STYLES = ("plain", "actions")
#: An output file holding one of these may show a JVM build (a Docker build of a Maven project).
JAVA_WORDS = (".java", "mvn", "maven", "gradle", "checkstyle")


def _lines(case: Case, style: str, *, passing: bool = False) -> list[str]:
    text = job_log(case, "actions" if style == "actions" else "plain", passing=passing)
    return clean_log(text).lines if style == "actions" else text.splitlines()


def _marked(case: Case, lines: Sequence[str], index: int) -> bool:
    return any(m in lines[index] for m in case.marked)


def _all(lines: Sequence[str]) -> list[Failure]:
    return [f for p in JVM for f in scan(p, lines)]


def test_corpus_is_there() -> None:
    names = {c.name for c in CASES}
    assert len(CASES) >= 18, names
    assert {c.tool for c in CASES} >= {
        "maven-surefire",
        "maven-failsafe",
        "maven-enforcer",
        "maven-dependency",
        "maven",
        "javac",
        "gradle-test",
        "gradle",
        "checkstyle",
    }
    assert len({p.name for p in JVM}) == len(JVM)
    hand = [c.name for c in CASES if c.captured.startswith("HAND-WRITTEN:")]
    assert hand == ["maven-failsafe-fail", "maven39-checkstyle", "maven39-surefire3-junit5"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_parser_finds_the_failures(case: Case, style: str) -> None:
    lines = _lines(case, style)
    found = scan(BY_NAME[case.tool], lines)
    assert found, f"{case.tool} found nothing"
    for expected in case.failures:
        hits = [f for f in found if matches(f, expected)]
        assert hits, f"{expected} not in {found}"
    for f in found:
        assert f.tool == case.tool
        assert f.kind == case.category, f
        assert _marked(case, lines, f.log_line), (f, lines[f.log_line])
        assert f.message
    # one failure per expected fact: Maven's repeated blocks are not reported twice
    assert len(found) == len(case.failures), found


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_jvm_parser_points_elsewhere(case: Case, style: str) -> None:
    """The other JVM parsers stay quiet: no second report of a failure from its trailer
    ("Failed to execute goal …", "* What went wrong:"), no Checkstyle line read as javac's."""
    lines = _lines(case, style)
    for f in _all(lines):
        assert _marked(case, lines, f.log_line), (f, lines[f.log_line])
        assert (f.tool, f.kind) == (case.tool, case.category), f


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", [c for c in CASES if c.passing], ids=lambda c: c.name)
def test_passing_runs_yield_nothing(case: Case, style: str) -> None:
    lines = _lines(case, style, passing=True)
    assert _all(lines) == []


def test_needles_are_specific() -> None:
    """On passing logs, the needles hit few lines (the diagnosis must stay fast)."""
    for case in CASES:
        if not case.passing:
            continue
        lines = _lines(case, "plain", passing=True)
        for p in JVM:
            assert len(hits_for(p, lines)) <= max(5, len(lines) // 20), (case.name, p.name)


def test_paths_are_repository_relative() -> None:
    for case in CASES:
        for f in _all(_lines(case, "actions")):
            if f.path is not None:
                assert not f.path.startswith("/"), f


def test_surefire_details() -> None:
    case = next(c for c in CASES if c.name == "maven-surefire-fail")
    lines = _lines(case, "plain")
    found = {f.test_id: f for f in scan(BY_NAME["maven-surefire"], lines)}
    npe = found["com.example.demo.InventoryTest.unknownItemIsZero"]
    # the whole exception of the per-test block, not the summary's cut "Cannot invoke "java…"
    assert "because the return value of" in npe.message
    assert lines[npe.log_line].startswith("[ERROR]   InventoryTest.unknownItemIsZero:39")
    # Failsafe's parser does not claim Surefire's blocks, and vice versa
    assert scan(BY_NAME["maven-failsafe"], lines) == []
    failsafe = next(c for c in CASES if c.name == "maven-failsafe-fail")
    assert scan(BY_NAME["maven-surefire"], _lines(failsafe, "plain")) == []


def test_surefire_without_summary_uses_the_header() -> None:
    """A log cut before the Results block: the per-test header is the failure's line."""
    case = next(c for c in CASES if c.name == "maven-surefire-fail")
    lines = _lines(case, "plain")
    cut = lines[: next(i for i, line in enumerate(lines) if line == "[INFO] Results:")]
    found = scan(BY_NAME["maven-surefire"], cut)
    assert {f.test_id for f in found} == {
        "com.example.demo.CalculatorTest.percentOfValue",
        "com.example.demo.StringsTest.truncateAddsEllipsis",
        "com.example.demo.InventoryTest.unknownItemIsZero",
    }
    assert all("Time elapsed" in cut[f.log_line] for f in found)
    assert {f.line for f in found} == {48, 27, 39}


def test_javac_message_keeps_the_symbol() -> None:
    case = next(c for c in CASES if c.name == "maven-compile-error")
    found = scan(BY_NAME["javac"], _lines(case, "plain"))
    assert "symbol: method sumValues()" in found[0].message


def test_other_ecosystems_logs_yield_nothing() -> None:
    """Real output of the other ecosystems' tools (Go, Rust, JS, Python, …) is noise here."""
    outs = [
        p
        for p in sorted(CORPUS.glob("*/*.out"))
        if p.parent.name != "jvm"
        and not any(w in p.read_text(encoding="utf-8", errors="replace") for w in JAVA_WORDS)
    ]
    assert len(outs) >= 10
    for path in outs:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        assert _all(lines) == [], path
