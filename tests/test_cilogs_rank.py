"""The whole diagnosis over the captured corpus (tests/support/cilog_corpus.py), and its ranking
rules.

For every case of every ecosystem, in every log style (Actions download, `gh run view --log`
prefix, plain output), with and without the passing run: the category is the case's, and a line
the case marks as the cause is among the first three key lines. Then unit tests of the ranking
(tool findings first, passing noise never), the prefix cleaning, reading all steps, the runner's
trouble never masking the tools' findings, the one-pass needle search and the reproduction
commands. Inputs written here are marked HAND-WRITTEN; the corpus is real captured output.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Sequence

import pytest

from bot import cilogs
from bot.cilogs import Failure, clean_log, diagnose, find_lines, parse_failures, reproduction
from tests.support import cilog_corpus as cc
from tests.support import cilog_fixtures as fx

#: Cases whose expected category contradicts another ecosystem's parser (strict: the test
#: fails when they start to agree, so the entry is removed then).
DISAGREE: dict[str, str] = {}


def _load() -> tuple[list[cc.Case], dict[str, str]]:
    """Every case; an ecosystem whose cases do not load is reported by its own test."""
    cases: list[cc.Case] = []
    broken: dict[str, str] = {}
    for directory in sorted(p for p in cc.CORPUS.iterdir() if p.is_dir()):
        try:
            cases.extend(cc.cases(directory.name))
        except (ValueError, KeyError, OSError) as exc:
            broken[directory.name] = str(exc)
    return cases, broken


CASES, BROKEN = _load()


@pytest.mark.parametrize("ecosystem", sorted({*BROKEN, "python"}))
def test_the_corpus_loads(ecosystem: str) -> None:
    assert ecosystem not in BROKEN, BROKEN.get(ecosystem)


def _variants() -> list[tuple[cc.Case, str, bool]]:
    out = []
    for case in CASES:
        for style in cc.STYLES:
            out.append((case, style, False))
            if case.passing is not None:
                out.append((case, style, True))
    return out


def _id(v: tuple[cc.Case, str, bool]) -> str:
    case, style, with_passing = v
    return f"{case.id}-{style}{'-passing' if with_passing else ''}"


def _marked(line: str, case: cc.Case) -> bool:
    return any(m in line for m in case.marked)


def test_the_corpus_is_there() -> None:
    ecosystems = {c.ecosystem for c in CASES}
    assert {"python", "infra"} <= ecosystems
    assert len(CASES) >= 20


@pytest.mark.parametrize("variant", _variants(), ids=_id)
def test_corpus_case(variant: tuple[cc.Case, str, bool]) -> None:
    case, style, with_passing = variant
    log = cc.job_log(case, style)  # type: ignore[arg-type]
    passing = cc.job_log(case, style, passing=True) if with_passing else None  # type: ignore[arg-type]
    d = diagnose(log, passing)
    agrees = d.category == case.category and any(_marked(k, case) for k in d.key_lines[:3])
    if case.id in DISAGREE:
        assert not agrees, f"{case.id} agrees now: remove it from DISAGREE"
        pytest.xfail(DISAGREE[case.id])
    assert d.category == case.category, d.summary()
    assert any(_marked(k, case) for k in d.key_lines[:3]), (d.key_lines[:5], case.marked)
    assert len(d.key_lines) <= cilogs.MAX_KEY_LINES


def test_corpus_figures() -> None:
    """The goal figures over the whole corpus: hit@3 ≥ 0.95 with and without the passing run,
    precision of the key lines shown ≥ 0.75."""
    hits = {False: [0, 0], True: [0, 0]}
    precision: list[float] = []
    for case, style, with_passing in _variants():
        log = cc.job_log(case, style)  # type: ignore[arg-type]
        passing = cc.job_log(case, style, passing=True) if with_passing else None  # type: ignore[arg-type]
        d = diagnose(log, passing)
        hits[with_passing][0] += any(_marked(k, case) for k in d.key_lines[:3])
        hits[with_passing][1] += 1
        if d.key_lines:
            precision.append(sum(_marked(k, case) for k in d.key_lines) / len(d.key_lines))
    for with_passing, (hit, n) in hits.items():
        if n:
            assert hit / n >= 0.95, (with_passing, hit, n)
    assert sum(precision) / len(precision) >= 0.75


# --- ranking --------------------------------------------------------------------------------------


def test_tool_findings_rank_above_passing_noise_and_generic_lines() -> None:
    # HAND-WRITTEN in go test's and the runner's wording: noise with error-ish words first.
    noise = [f"go: downloading example.com/m{i} v1.0.{i}" for i in range(12)]
    noise += [f"ok  \texample.com/demo/p{i}\t0.02s" for i in range(12)]
    failing = [
        "--- FAIL: TestAdd (0.00s)",
        "    add_test.go:9: add(2, 3) = 6, want 5",
        "FAIL",
        "FAIL\texample.com/demo/calc\t0.003s",
    ]
    out = "\n".join(noise + failing)
    log = fx.actions_log([("go test ./...", out, 1)])
    d = diagnose(log)
    assert d.key_lines, d
    assert not any(k.startswith(("go: downloading", "ok  ")) for k in d.key_lines)
    assert "##[error]Process completed with exit code 1." not in d.key_lines[:3]


def test_annotation_ranks_above_error_words_when_no_tool_explains() -> None:
    # HAND-WRITTEN: a script's own ::error annotation, as the runner renders it.
    out = "\n".join(
        [
            "error budget: 3 of 5 used",  # an error word, but not the cause
            "##[error]CHANGELOG.md has no entry for 1.4.0",
        ]
    )
    d = diagnose(fx.actions_log([("./scripts/check-changelog.sh", out, 1)]))
    assert d.category == "unknown" and not d.confident
    assert d.key_lines[0] == "##[error]CHANGELOG.md has no entry for 1.4.0"
    assert "##[error]Process completed with exit code 1." not in d.key_lines


def test_new_lines_rank_above_lines_shared_with_the_passing_run() -> None:
    # HAND-WRITTEN: both runs print an error word; only the failing one's new line is shown.
    base = fx.setup_steps(1)
    shared = "warning: error-prone API used\nfatal: could not lock config file (retrying)\n"
    passing = fx.actions_log([*base, ("./deploy.sh", shared + "deployed\n", 0)])
    failing = fx.actions_log([*base, ("./deploy.sh", shared + "token rejected: 401\n", 1)])
    d = diagnose(failing, passing)
    assert d.key_lines[0] == "token rejected: 401"
    assert not any("could not lock" in k for k in d.key_lines)
    alone = diagnose(failing)  # without the passing run, the fatal line is a guess
    assert any("could not lock" in k for k in alone.key_lines)


def test_generic_error_words_skip_passing_noise() -> None:
    # HAND-WRITTEN: lines holding error words that report nothing.
    noise = [
        "tests/test_errors.py::test_error_case PASSED",
        "Tests run: 12, Failures: 0, Errors: 0, Skipped: 0",
        "[INFO] Downloading from central: https://repo/x/error_prone_core-2.1.pom",
        "0 errors, 0 failures",
        "compiling with -Werror",
    ]
    out = "\n".join([*noise, "Segfault handler: fatal signal 11 in worker 3"])
    d = diagnose(fx.actions_log([("./run-suite.sh", out, 1)]))
    assert d.key_lines[0] == "Segfault handler: fatal signal 11 in worker 3"
    assert not any(k in noise for k in d.key_lines)


def test_few_lines_when_the_tools_explain_the_failure() -> None:
    d = diagnose(fx.pytest_failing_log())
    assert d.category == "test"
    assert len(d.key_lines) == 3
    assert all(k.startswith("E       ") for k in d.key_lines)


# --- all steps ------------------------------------------------------------------------------------


def test_cause_printed_by_an_earlier_step_that_exited_zero_is_found() -> None:
    # HAND-WRITTEN in git's wording: the earlier step swallowed the error, the failed step is
    # silent.
    log = fx.actions_log(
        [
            ("actions/checkout@v4", "HEAD is now at 1a2b3c4 fix\n", 0),
            ("git describe --tags || true", "fatal: No tags can describe 'abc1234'.\n", 0),
            ("./scripts/release.sh", "", 1),
        ]
    )
    d = diagnose(log)
    assert d.key_lines[0] == "fatal: No tags can describe 'abc1234'."
    assert d.key_lines != ["##[error]Process completed with exit code 1."]
    assert d.failed_step == "Run ./scripts/release.sh"


def test_a_missing_program_does_not_hide_the_build_error_that_explains_it() -> None:
    # HAND-WRITTEN in dune/OCaml's wording (no parser knows it): the build step swallowed its
    # error, the next step cannot find the program it did not build. The shell's finding is
    # shown, and the guess at the cause beside it, not cut off by the finding's score.
    log = fx.actions_log(
        [
            (
                "dune build || echo 'build failed, continuing'",
                'File "bin/main.ml", line 6, characters 13-14:\n'
                "Error: Unbound value y\n"
                "build failed, continuing\n",
                0,
            ),
            ("./_build/default/bin/main.exe --version", MISSING, 127),
        ]
    )
    d = diagnose(log)
    assert "bash: line 1: ./_build/default/bin/main.exe: No such file or directory" in d.key_lines
    assert "Error: Unbound value y" in d.key_lines[:3], d.key_lines


MISSING = "bash: line 1: ./_build/default/bin/main.exe: No such file or directory\n"


def test_build_error_swallowed_by_tee_decides_the_category() -> None:
    # HAND-WRITTEN in mypy's wording: `mypy | tee` exits 0, the next step fails.
    log = fx.actions_log(
        [
            (
                "pip install -e . 2>&1 | tee pip.log",
                "ERROR: No matching distribution found for x==9\n",
                0,
            ),
            ("./scripts/smoke.sh", "smoke: import failed\n", 1),
        ]
    )
    d = diagnose(log)
    assert d.category == "dependency" and not d.confident
    assert d.key_lines[0] == "ERROR: No matching distribution found for x==9"


# --- infrastructure is one more finding ---------------------------------------------------------


def test_disk_full_beside_failing_tests_does_not_mask_them() -> None:
    out, code = fx.pytest_output("-v")
    log = fx.actions_log([("python -m pytest -v", out, code)])
    # HAND-WRITTEN: the runner's low-disk warning inside the same step.
    log = log.replace(
        "Post job cleanup.",
        "##[error]System.IO.IOException: No space left on device : '/home/runner/runners/2.321.0/"
        "_diag/Worker_20261124.log'",
        1,
    )
    d = diagnose(log)
    assert d.category == "test" and not d.confident
    assert sum(f.kind == "test" for f in d.failures) == 3
    assert any(f.code == "disk-full" for f in d.failures)
    assert any("No space left on device" in k for k in d.key_lines)
    assert sum(k.startswith("E       ") for k in d.key_lines[:4]) == 3
    assert "also 1 infrastructure failure" in d.summary()


def test_infrastructure_alone_decides() -> None:
    log = fx.actions_log([("python -m pip install -r requirements.txt", "Collecting x\n", 0)])
    log = log.replace(
        "Post job cleanup.", "##[error]The operation was canceled.", 1
    )  # HAND-WRITTEN
    d = diagnose(log)
    assert d.category == "infrastructure" and d.confident
    assert d.key_lines == ["##[error]The operation was canceled."]


def test_resolution_error_naming_a_503_is_a_dependency_failure() -> None:
    # HAND-WRITTEN in Maven's wording: the tool's own resolution error carries the status.
    out = (
        "[ERROR] Plugin org.apache.maven.plugins:maven-resources-plugin:2.6 or one of its "
        "dependencies could not be resolved: Could not transfer artifact x from/to central "
        "(https://repo.maven.apache.org/maven2): status: 503 Service Unavailable -> [Help 1]\n"
    )
    failures = parse_failures(clean_log(fx.actions_log([("mvn -B verify", out, 1)])))
    # Without a Maven parser the runner's finding stands; with one, the tool's wins (a line
    # both claim keeps the tool's finding).
    kinds = {f.kind for f in failures}
    assert kinds in ({"infrastructure"}, {"dependency"})
    f = Failure("dependency", "maven", "x", log_line=0)
    g = Failure("infrastructure", "runner", "y", code="http-503", log_line=0)
    assert cilogs._resolve([(g, False), (f, False)]) == [f]


# --- cleaning the gh run view --log form ----------------------------------------------------------


def test_prefixed_log_is_cleaned_and_its_steps_found() -> None:
    plain = fx.pytest_failing_log()
    prefixed = cc.prefixed(plain, job="test (3.12)")
    assert prefixed.split("\n")[0].startswith("test (3.12)\tSet up job\t2026-")  # precondition
    a, b = clean_log(plain), clean_log(prefixed)
    assert a.lines == b.lines
    assert a.steps == b.steps and a.step_starts == b.step_starts
    assert diagnose(prefixed).key_lines == diagnose(plain).key_lines


def test_prefixed_log_without_group_markers_gets_steps_from_its_column() -> None:
    # HAND-WRITTEN: a prefixed log whose step markers were lost (e.g. a copy of the web view).
    rows = [
        ("Set up job", "Current runner version: '2.321.0'"),
        ("Install", "Collecting calc"),
        ("Install", "Successfully installed calc-1.0"),
        ("Test", "collected 3 items"),
        ("Test", "FAILED tests/test_calc.py::test_add - assert 6 == 5"),
        ("Test", "##[error]Process completed with exit code 1."),
        ("Post job cleanup", "Cleaning up orphan processes"),
    ]
    text = "".join(f"build\t{s}\t2026-11-24T04:19:48.1234567Z {line}\n" for s, line in rows)
    log = clean_log(text)
    assert log.lines[0] == "Current runner version: '2.321.0'"
    assert log.steps == ["Install", "Test"]
    assert log.step_starts == [1, 3]
    d = diagnose(text)
    assert d.failed_step == "Test" and d.category == "test"
    assert d.key_lines[0].startswith("FAILED tests/test_calc.py::test_add")


def test_prefix_detection_leaves_tab_separated_output_alone() -> None:
    text = "name\tvalue\tnote\nalpha\t1\tok\n"  # HAND-WRITTEN: a tool printing a table
    assert clean_log(text).lines == ["name\tvalue\tnote", "alpha\t1\tok"]


def _make_out() -> str:
    return next(out for cmd, out, _ in UNSEEN if cmd == "make")


@pytest.mark.parametrize(
    "stamp",
    [
        "[2024-01-15T10:31:20.{i:03d}Z] ",  # Jenkins Timestamper
        "2024-01-15T10:31:20.{i:06d}Z 01O ",  # GitLab
        "\x1b_bk;t=1705314680{i:03d}\x07",  # Buildkite
        "10:31:{i:02d} ",  # a bare clock
    ],
)
def test_other_ci_systems_line_prefixes_are_removed(stamp: str) -> None:
    # HAND-WRITTEN: each system's per-line prefix, in front of gcc and make output.
    out = _make_out()
    text = "".join(stamp.format(i=i) + line + "\n" for i, line in enumerate(out.splitlines()))
    log = clean_log(text)
    assert log.lines == out.splitlines()
    assert diagnose(text).key_lines == [
        "main.c:7:12: error: 'count' undeclared (first use in this function)"
    ]


def test_a_tool_printing_clock_times_keeps_them() -> None:
    # HAND-WRITTEN: only a few lines start with a clock: not a prefix.
    text = "building\n10:31:20 cache warm\nlinking\ndone\nerror: link failed\n"
    assert clean_log(text).lines[1] == "10:31:20 cache warm"


# --- the needle search --------------------------------------------------------------------------


def _naive(text: str, needle: str) -> list[int]:
    out = set()
    lines = text.split("\n")
    joined_offsets = [m.start() for m in re.finditer(f"(?={re.escape(needle)})", text)]
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    lead = len(needle) - len(needle.lstrip("\n"))
    for o in joined_offsets:
        out.add(bisect.bisect_right(starts, o + lead) - 1)
    return sorted(out)


def test_find_lines_equals_a_naive_search() -> None:
    rng = random.Random(14)
    alphabet = "ab:E R\n_-é#["
    text = "".join(rng.choice(alphabet) for _ in range(20_000))
    needles = ["E", "ab", "R E", ":a", "\n_", "é#", "##[", "aaa", "b\nb", "zz", "é"]
    found = find_lines(text.encode(), needles)
    for needle in needles:
        assert found[needle].tolist() == _naive(text, needle), needle


def test_find_lines_on_tiny_inputs() -> None:
    assert find_lines(b"", ["ab"])["ab"].tolist() == []
    assert find_lines(b"a", ["ab", "a"])["a"].tolist() == [0]
    assert find_lines(b"ab", ["ab"])["ab"].tolist() == [0]
    assert find_lines(b"x\nab", ["ab"])["ab"].tolist() == [1]


def test_echoed_script_is_never_a_hit() -> None:
    command = "echo 'FAILED tests/test_x.py::test_y - boom'\n./run.sh"
    d = diagnose(fx.actions_log([(command, "all good\n", 1)]))
    assert d.failures == []
    assert not any("boom" in k for k in d.key_lines)


class _Broken:
    name = "broken"
    ecosystem = "test"
    needles = ("FAILED",)

    def parse(self, lines: Sequence[str], hits: Sequence[int]) -> list[Failure]:
        raise RuntimeError("a parser bug")


def test_a_broken_parser_does_not_stop_the_others() -> None:
    from bot.logparsers import parsers

    log = clean_log(fx.pytest_failing_log())
    scan = cilogs._scan(log, (_Broken(), *parsers()))
    assert sum(f.tool == "pytest" for f in scan.failures) == 3


# --- ecosystems no parser knows -----------------------------------------------------------------

#: HAND-WRITTEN in each tool's real output format (.NET, RSpec, PHPUnit, gcc+make, ExUnit, a
#: Python script, Node): no parser claims them, the generic tiers must rank the cause first.
UNSEEN: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "dotnet build",
        (
            "  Determining projects to restore...\n"
            "  All projects are up-to-date for restore.\n"
            "/home/runner/work/app/app/src/Api/Program.cs(12,17): error CS0103: The name 'builder2' does not exist in the current context [/home/runner/work/app/app/src/Api/Api.csproj]\n"  # noqa: E501
            "\n"
            "Build FAILED.\n"
            "\n"
            "/home/runner/work/app/app/src/Api/Program.cs(12,17): error CS0103: The name 'builder2' does not exist in the current context [/home/runner/work/app/app/src/Api/Api.csproj]\n"  # noqa: E501
            "    0 Warning(s)\n"
            "    1 Error(s)\n"
            "\n"
            "Time Elapsed 00:00:04.12\n"
        ),
        ("error CS0103",),
    ),
    (
        "bundle exec rspec",
        (
            "Randomized with seed 12345\n"
            "..F.\n"
            "\n"
            "Failures:\n"
            "\n"
            "  1) Calculator#add returns the sum\n"
            "     Failure/Error: expect(calc.add(1, 2)).to eq(4)\n"
            "\n"
            "       expected: 4\n"
            "            got: 3\n"
            "\n"
            "       (compared using ==)\n"
            "     # ./spec/calculator_spec.rb:6:in `block (3 levels) in <top (required)>'\n"
            "\n"
            "Finished in 0.01234 seconds (files took 0.1 seconds to load)\n"
            "4 examples, 1 failure\n"
            "\n"
            "Failed examples:\n"
            "\n"
            "rspec ./spec/calculator_spec.rb:5 # Calculator#add returns the sum\n"
        ),
        ("Failure/Error: expect", "rspec ./spec/calculator_spec.rb:5"),
    ),
    (
        "vendor/bin/phpunit",
        (
            "PHPUnit 10.5.0 by Sebastian Bergmann and contributors.\n"
            "\n"
            "Runtime:       PHP 8.3.0\n"
            "\n"
            "..F                                                                 3 / 3 (100%)\n"
            "\n"
            "Time: 00:00.012, Memory: 8.00 MB\n"
            "\n"
            "There was 1 failure:\n"
            "\n"
            "1) Tests\\CalculatorTest::testAdd\n"
            "Failed asserting that 3 matches expected 4.\n"
            "\n"
            "/home/runner/work/app/app/tests/CalculatorTest.php:12\n"
            "\n"
            "FAILURES!\n"
            "Tests: 3, Assertions: 3, Failures: 1.\n"
        ),
        ("1) Tests\\CalculatorTest::testAdd", "Failed asserting that 3"),
    ),
    (
        "make",
        (
            "gcc -Wall -O2 -c -o util.o util.c\n"
            "gcc -Wall -O2 -c -o main.o main.c\n"
            "main.c: In function 'main':\n"
            "main.c:7:12: error: 'count' undeclared (first use in this function)\n"
            "    7 |     return count;\n"
            "      |            ^~~~~\n"
            "main.c:7:12: note: each undeclared identifier is reported only once for each function it appears in\n"  # noqa: E501
            "make: *** [Makefile:3: main.o] Error 1\n"
        ),
        ("main.c:7:12: error: 'count' undeclared",),
    ),
    (
        "mix test",
        (
            "Compiling 2 files (.ex)\n"
            "Generated calc app\n"
            "..\n"
            "\n"
            "  1) test adds numbers (CalcTest)\n"
            "     test/calc_test.exs:5\n"
            "     Assertion with == failed\n"
            "     code:  assert Calc.add(1, 2) == 4\n"
            "     left:  3\n"
            "     right: 4\n"
            "     stacktrace:\n"
            "       test/calc_test.exs:6: (test)\n"
            "\n"
            ".\n"
            "Finished in 0.02 seconds (0.00s async, 0.02s sync)\n"
            "4 tests, 1 failure\n"
            "\n"
            "Randomized with seed 4242\n"
        ),
        ("1) test adds numbers", "Assertion with == failed"),
    ),
    (
        "python scripts/migrate.py",
        (
            "Connecting to staging...\n"
            "Traceback (most recent call last):\n"
            '  File "/home/runner/work/app/app/scripts/migrate.py", line 42, in <module>\n'
            "    main()\n"
            '  File "/home/runner/work/app/app/scripts/migrate.py", line 38, in main\n'
            '    raise RuntimeError("database URL not set")\n'
            "RuntimeError: database URL not set\n"
        ),
        ("RuntimeError: database URL not set",),
    ),
    (
        "npm start",
        (
            "> app@1.0.0 start\n"
            "> node dist/index.js\n"
            "\n"
            "node:internal/modules/cjs/loader:1148\n"
            "  throw err;\n"
            "  ^\n"
            "\n"
            "Error: Cannot find module '/home/runner/work/app/app/dist/index.js'\n"
            "    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)\n"
            "    at Module._load (node:internal/modules/cjs/loader:986:27)\n"
            "    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:142:12)\n"  # noqa: E501
            "    at node:internal/main/run_main_module:28:49 {\n"
            "  code: 'MODULE_NOT_FOUND',\n"
            "  requireStack: []\n"
            "}\n"
            "\n"
            "Node.js v20.11.0\n"
        ),
        ("Error: Cannot find module",),
    ),
    (
        # A linter whose findings hold no error word: their `path:line:col: message` shape
        # at the end of the failed step is what marks them.
        "bundle exec rubocop",
        (
            "Inspecting 3 files\n"
            ".C.\n"
            "\n"
            "Offenses:\n"
            "\n"
            "app/models/user.rb:3:5: C: [Correctable] Style/StringLiterals: Prefer single-quoted strings when you don't need string interpolation or special symbols.\n"  # noqa: E501
            '    name = "x"\n'
            "           ^^^\n"
            "\n"
            "3 files inspected, 1 offense detected, 1 offense autocorrectable\n"
        ),
        ("app/models/user.rb:3:5: C: [Correctable] Style/StringLiterals",),
    ),
    (
        # A weaker failure word ("Cannot find path"), below PowerShell's position lines.
        "pwsh ./build.ps1",
        (
            "Packaging release\n"
            "Copy-Item: /home/runner/work/app/app/build.ps1:4\n"
            "Line |\n"
            "   4 |  Copy-Item ./dist/app.zip ./out/\n"
            "     |  ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n"
            "     | Cannot find path '/home/runner/work/app/app/dist/app.zip' because it does not exist.\n"  # noqa: E501
        ),
        ("Cannot find path",),
    ),
    (
        # A test runner's per-file "FAIL <path>" headings sit above the failed tests (✕): the
        # headings say where, the glyph lines say what.
        "bun test",
        (
            "FAIL src/cart.test.ts\n"
            "  ✕ cart > total > applies the discount before tax (3 ms)\n"
            "FAIL src/range.test.ts\n"
            "  ✕ range > counts up (1 ms)\n"
            "\n"
            " 2 fail\n"
            " 9 pass\n"
        ),
        ("✕ cart > total", "✕ range > counts up"),
    ),
    (
        # A setting the job needs, not set ("not set" is a weaker failure word).
        "./scripts/deploy.sh",
        ("Deploying build 1234\ndeploy: REGISTRY_TOKEN is not set\n"),
        ("REGISTRY_TOKEN is not set",),
    ),
]


@pytest.mark.parametrize(("command", "out", "marked"), UNSEEN, ids=lambda v: str(v)[:12])
@pytest.mark.parametrize("style", ["actions", "plain"])
def test_unseen_ecosystem_shows_the_cause_first(
    command: str, out: str, marked: tuple[str, ...], style: str
) -> None:
    log = fx.actions_log([(command, out, 1)]) if style == "actions" else out
    d = diagnose(log)
    assert d.key_lines and any(m in d.key_lines[0] for m in marked), d.key_lines
    assert all(any(m in k for m in marked) for k in d.key_lines), d.key_lines  # precision


#: Real captured cases diagnosed without their own ecosystem's parsers (how a tool no parser knows
#: is read), each with a line beside the cause that says only that something failed, where to
#: look, what the run printed around it or the cause again: shown, it costs precision.
BESIDE_THE_CAUSE = [
    ("c/cmake-fatal", "-- Configuring incomplete, errors occurred!", False),
    ("c/ctest-fail", "Errors while running CTest", False),
    ("c/link", "collect2: error: ld returned 1 exit status", False),
    ("c/werror", "cc1: all warnings being treated as errors", False),
    ("python/black-check", "1 file would be reformatted, 3 files would be left unchanged.", False),
    ("jvm/maven-parent-pom", "Some problems were encountered while processing the POMs:", False),
    ("jvm/maven-failsafe-fail", "Tests run: 3, Failures: 1, Errors: 0", False),
    # the exception's message, repeated in the [ERROR] summary line that says where
    ("jvm/maven-surefire-fail", "java.lang.AssertionError: expected:<15> but was:<1>", False),
    # new against the passing run, but a source excerpt and a backtrace frame
    ("c/missing-header", '    5 | #include "version.h"', True),
    ("rust/test-many", "             at ./src/lib.rs:6:5", True),
]


@pytest.mark.parametrize(("case_id", "line", "with_passing"), BESIDE_THE_CAUSE)
def test_lines_beside_the_cause_are_not_shown(case_id: str, line: str, with_passing: bool) -> None:
    from bot.logparsers import parsers

    case = next(c for c in CASES if c.id == case_id)
    log = cc.job_log(case, "actions")
    assert line in log
    passing = cc.job_log(case, "actions", passing=True) if with_passing else None
    others = [p for p in parsers() if p.ecosystem != case.ecosystem and p.name != case.tool]
    d = diagnose(log, passing, registry=others)
    assert d.key_lines and _marked(d.key_lines[0], case), d.key_lines
    assert not any(line.strip() in k for k in d.key_lines), d.key_lines


# --- reproduction -------------------------------------------------------------------------------


def _t(test_id: str, path: str | None = None) -> Failure:
    return Failure("test", "x", "m", test_id=test_id, path=path)


@pytest.mark.parametrize(
    ("command", "failures", "expected"),
    [
        (
            "python -m pytest -v",
            [_t("tests/test_calc.py::test_add[2-3]")],
            "python -m pytest 'tests/test_calc.py::test_add[2-3]'",
        ),
        (
            "go test ./...",
            [_t("TestAdd", "calc/add_test.go"), _t("TestSub/neg", "calc/sub_test.go")],
            "go test ./calc -run '^(TestAdd|TestSub)$'",
        ),
        ("mvn -B verify", [_t("com.acme.CalcTest.testAdd")], "mvn -Dtest='CalcTest#testAdd' test"),
        ("mvn -B test", [_t("testAdd(com.acme.CalcTest)")], "mvn -Dtest='CalcTest#testAdd' test"),
        (
            "./gradlew build",
            [_t("com.acme.CalcTest.testAdd")],
            "./gradlew test --tests com.acme.CalcTest.testAdd",
        ),
        (
            "npm test -- --ci",
            [_t("Button › renders", "src/Button.test.tsx")],
            "npm test -- --ci",
        ),
        (
            "npx jest --ci",
            [_t("Button › renders", "src/Button.test.tsx")],
            "npx jest src/Button.test.tsx -t renders",
        ),
        ("cargo test --all", [_t("tests::adds")], "cargo test adds"),
        ("make test", [_t("x")], "make test"),
        ("ruff check .", [], "ruff check ."),
    ],
)
def test_reproduction(command: str, failures: list[Failure], expected: str) -> None:
    assert reproduction(command, failures) == expected


def test_reproduction_from_a_diagnosis() -> None:
    d = diagnose(fx.pytest_failing_log())
    assert d.reproduce is not None
    assert d.reproduce.startswith("python -m pytest ")
    assert "tests/test_calc.py::TestHalf::test_odd" in d.reproduce
    assert reproduction(None, []) is None
