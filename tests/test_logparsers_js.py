"""The npm, yarn, yarn-berry, pnpm, jest, vitest, mocha, tsc, eslint and prettier log parsers on
the captured corpus (tests/fixtures/cilogs/js: real output of node 20.20, npm 11.19 / 8.19 /
6.14, yarn 1.22 / 4.18, pnpm 9.15, jest 29.7, vitest 3.2, mocha 11.7, typescript 5.9, eslint 9.39
and prettier 3.6; see each case's "captured"). Every case runs as a terminal log, as an Actions
log download and as `gh run view --log` prints it, each through `clean_log` (the tools colour
their output on a runner: CI and GITHUB_ACTIONS are set).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import pytest

from bot.cilogs import clean_log
from bot.logparsers.base import Failure, LogParser, hits_for, scan
from bot.logparsers.npm import WRAPPER_CODES, script_kind
from tests.support.cilog_corpus import CORPUS, Case, Style, cases, job_log, matches

MODULES = ("npm", "yarn", "pnpm", "jest", "vitest", "mocha", "tsc", "eslint", "prettier")
PARSERS: dict[str, LogParser] = {}
for _module in MODULES:
    _mod = importlib.import_module(f"bot.logparsers.{_module}")
    for _parser in getattr(_mod, "PARSERS", ()) or (_mod.PARSER,):
        PARSERS[_parser.name] = _parser
CASES: tuple[Case, ...] = cases("js")
PASSING = tuple(c for c in CASES if c.passing is not None)
STYLES: tuple[Style, ...] = ("plain", "actions", "prefixed")


def log_lines(case: Case, style: Style, *, passing: bool = False) -> list[str]:
    return clean_log(job_log(case, style, passing=passing)).lines


def marked_lines(case: Case, lines: Sequence[str]) -> set[int]:
    return {i for i, line in enumerate(lines) if any(m in line for m in case.marked)}


def one(case_id: str, tool: str | None = None, style: Style = "plain") -> list[Failure]:
    case = next(c for c in CASES if c.id == case_id)
    return scan(PARSERS[tool or case.tool], log_lines(case, style))


def lines_of(text: str) -> list[str]:
    return clean_log(text).lines


def test_the_corpus_covers_every_parser() -> None:
    assert {c.tool for c in CASES} == set(PARSERS)
    assert len(CASES) >= 20
    assert not [c.id for c in CASES if c.captured.startswith("HAND-WRITTEN:")]
    assert len(PASSING) >= 12


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
        assert f.tool == case.tool
        if f.code in WRAPPER_CODES:
            continue  # "which script failed": checked in the wrapper tests below
        assert f.log_line in marked, (f, lines[f.log_line])
    assert case.category in {f.kind for f in found}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", PASSING, ids=lambda c: c.id)
def test_the_passing_runs_yield_nothing(case: Case, style: Style) -> None:
    lines = log_lines(case, style, passing=True)
    for parser in PARSERS.values():
        assert scan(parser, lines) == [], (parser.name, case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_other_parsers_only_name_the_failed_script(case: Case) -> None:
    """Besides the case's tool, only npm/yarn/pnpm speak, and only to say which script failed."""
    lines = log_lines(case, "actions")
    for name, parser in PARSERS.items():
        if name == case.tool:
            continue
        for f in scan(parser, lines):
            assert f.code in WRAPPER_CODES, (name, case.id, f)


def _other_cases() -> list[Case]:
    """The other ecosystems' cases (an ecosystem whose corpus does not load yet is left out)."""
    out: list[Case] = []
    for directory in sorted(p for p in CORPUS.iterdir() if p.is_dir() and p.name != "js"):
        try:
            out.extend(cases(directory.name))
        except (ValueError, KeyError, OSError):
            continue
    return out


def test_the_other_ecosystems_runs_are_quiet() -> None:
    """Nothing on the other ecosystems' passing runs; on their failing runs (an npm network
    error is an infra case) only the lines their annotators marked."""
    others = _other_cases()
    assert others
    for case in others:
        lines = log_lines(case, "actions")
        marked = marked_lines(case, lines)
        for name, parser in PARSERS.items():
            for f in scan(parser, lines):
                assert f.log_line in marked, (name, case.id, f)
        if case.passing is not None:
            lines = log_lines(case, "actions", passing=True)
            for name, parser in PARSERS.items():
                assert scan(parser, lines) == [], (name, case.id)


def test_needles_are_rare_on_passing_logs() -> None:
    for case in PASSING:
        lines = log_lines(case, "plain", passing=True)
        for parser in PARSERS.values():
            assert len(hits_for(parser, lines)) <= 2, (parser.name, case.id)


# --- what each parser extracts --------------------------------------------------------------


def test_jest_reads_the_assertion_and_the_test_file_line() -> None:
    # jest runs the files in parallel: their order differs from run to run
    cart, rng = sorted(one("js/jest-fail"), key=lambda f: f.test_id or "")
    assert cart.message == (
        "cart › total › applies the discount before tax: expect(received).toBe(expected)"
        " // Object.is equality; Expected: 10.8; Received: 21"
    )
    assert (rng.code, rng.path, rng.line) == ("toEqual", "src/range.test.js", 5)
    # the coverage table after the failures changes nothing
    assert sorted((f.test_id or "", f.line) for f in one("js/jest-coverage")) == [
        (cart.test_id, 24),
        (rng.test_id, 5),
    ]


def test_jest_skips_console_blocks_and_reads_suite_failures() -> None:
    log = lines_of(
        "PASS src/a.test.js\n"
        "  ● Console\n\n    console.log\n      hello\n\n"
        "FAIL src/b.test.js\n"
        "  ● Test suite failed to run\n\n"
        "    Cannot find module './missing' from 'src/b.test.js'\n\n"
        "      at Resolver._throwModNotFoundError"
        " (node_modules/jest-resolve/build/resolver.js:427:11)\n"
        "      at Object.<anonymous> (src/b.test.js:1:1)\n"
    )
    (suite,) = scan(PARSERS["jest"], log)
    assert (suite.code, suite.path, suite.line) == ("suite-failed", "src/b.test.js", 1)
    assert "Cannot find module './missing'" in suite.message


def test_vitest_and_mocha_name_the_test() -> None:
    (median,) = one("js/vitest")
    assert median.message.endswith("AssertionError: expected 3.5 to be 2.5 // Object.is equality")
    assert [(f.test_id, f.code) for f in one("js/mocha")] == [
        ("parseQuery decodes plus as space", "AssertionError"),
        ("router match does not match a longer path", "AssertionError"),
    ]
    suite = lines_of(
        " FAIL  src/broken.test.ts [ src/broken.test.ts ]\nError: Cannot find module 'x'\n"
    )
    (broken,) = scan(PARSERS["vitest"], suite)
    assert (broken.code, broken.path) == ("suite-failed", "src/broken.test.ts")


def test_tsc_plain_and_pretty_agree() -> None:
    plain = [(f.path, f.line, f.code, f.message) for f in one("js/tsc")]
    pretty = [(f.path, f.line, f.code, f.message) for f in one("js/tsc-pretty")]
    assert plain == pretty
    assert (
        plain[1][3]
        == "src/user.ts:15: error TS2322: Type 'string' is not assignable to type 'number'."
    )
    syntax = scan(
        PARSERS["tsc"],
        [
            "src/a.ts(3,7): error TS1005: ';' expected.",
            "error TS5058: The specified path does not exist: 'tsconfig.json'.",
            "src/b.ts:9:1 - warning TS6133: 'x' is declared but its value is never read.",
        ],
    )
    assert [(f.kind, f.code, f.path) for f in syntax] == [
        ("compile", "TS1005", "src/a.ts"),
        ("compile", "TS5058", None),
    ]


def test_eslint_reads_the_file_header_and_the_unix_format() -> None:
    npm6 = [(f.path, f.line, f.code) for f in one("js/npm6-lint")]
    assert npm6 == [(f.path, f.line, f.code) for f in one("js/eslint")]
    found = scan(
        PARSERS["eslint"],
        [
            "/home/runner/work/demo/demo/src/a.js",
            "  1:10  error    Parsing error: Unexpected token )",
            "  4:1   warning  Unexpected console statement  no-console",
            "",
            "src/b.js:2:5: 'y' is not defined. [Error/no-undef]",
            "src/b.js:3:5: Unexpected console statement. [Warning/no-console]",
        ],
    )
    assert [(f.path, f.line, f.code) for f in found] == [
        ("src/a.js", 1, "parsing-error"),
        ("src/b.js", 2, "no-undef"),
    ]
    too_many = ["src/a.js", "  4:1  warning  Unexpected console statement  no-console", "",
                "ESLint found too many warnings (maximum: 0)."]  # fmt: skip
    assert [f.code for f in scan(PARSERS["eslint"], too_many)] == ["no-console"]


def test_prettier_lists_each_file() -> None:
    (slug,) = one("js/prettier")
    assert slug.path == "src/slug.js"
    two = scan(
        PARSERS["prettier"],
        [
            "Checking formatting...",
            "[warn] src/a.js",
            "[warn] src/b.ts",
            "[warn] Code style issues found in 2 files. Run Prettier with --write to fix.",
            "[error] src/c.js: SyntaxError: Unexpected token (3:5)",
        ],
    )
    assert [(f.path, f.line, f.code) for f in two] == [
        ("src/a.js", None, "unformatted"),
        ("src/b.ts", None, "unformatted"),
        ("src/c.js", 3, "syntax-error"),
    ]


def test_npm_messages_name_the_cause() -> None:
    (eresolve,) = one("js/npm-eresolve")
    assert eresolve.message == (
        "ERESOLVE unable to resolve dependency tree: could not resolve peer "
        'react@"17.0.2" from react-dom@17.0.2 (found react@18.3.1)'
    )
    (old,) = one("js/npm8-eresolve")
    assert old.message == eresolve.message
    (e404,) = one("js/npm-e404")
    assert "'loopwright-demo-no-such-package@^1.0.0'" in e404.message
    (etarget,) = one("js/npm-etarget")
    assert "No matching version found for left-pad@^2.0.0" in etarget.message
    (sync,) = one("js/npm-ci-out-of-sync")
    assert sync.message.startswith("npm ci: package.json and the lock file are not in sync")
    assert "Missing: dayjs@" in sync.message


def test_npm_names_the_failed_script() -> None:
    (workspace,) = one("js/npm-workspaces", "npm")
    assert (workspace.kind, workspace.code) == ("test", "lifecycle")
    assert workspace.message == "npm script `test` failed in demo-api@2.1.0: sh -c mocha"
    (lint,) = one("js/npm6-lint", "npm")
    assert (lint.kind, lint.code) == ("lint", "ELIFECYCLE")
    assert lint.message == "npm script `lint` of demo-web@1.0.0 failed: eslint ."
    (test,) = one("js/npm6-jest", "npm")
    assert (test.kind, test.code) == ("test", "test-script-failed")


def test_npm_codes_are_classified() -> None:
    def kinds(text: str) -> list[tuple[str, str | None]]:
        return [(f.kind, f.code) for f in scan(PARSERS["npm"], text.splitlines())]

    assert kinds(
        "npm error code ECONNRESET\nnpm error network aborted\n"
        "npm warn ERESOLVE overriding peer dependency\n"
    ) == [("infrastructure", "ECONNRESET")]
    assert kinds(
        "npm error code 1\nnpm error path /home/runner/work/demo/demo/node_modules/bcrypt\n"
        "npm error command failed\nnpm error command sh -c node-pre-gyp install\n"
    ) == [("dependency", "install-script-failed")]
    assert kinds('npm error Missing script: "lint"\nnpm error\n') == [("unknown", "missing-script")]
    assert kinds("npm error code EUSAGE\nnpm error Unknown option: --nope\n") == [
        ("unknown", "EUSAGE")
    ]
    npm6_enoent = (
        "npm ERR! path /home/runner/work/demo/demo/package.json\nnpm ERR! code ENOENT\n"
        "npm ERR! errno -2\nnpm ERR! syscall open\nnpm ERR! enoent ENOENT: no such file or"
        " directory, open '/home/runner/work/demo/demo/package.json'\n\n"
        "npm ERR! A complete log of this run can be found in:\n"
    )
    (enoent,) = scan(PARSERS["npm"], npm6_enoent.splitlines())
    assert (enoent.code, enoent.log_line) == ("ENOENT", 4)
    assert enoent.message.startswith("ENOENT: ENOENT: no such file or directory")


def test_script_kind() -> None:
    assert script_kind("test") == "test"
    assert script_kind("lint:js") == "lint"
    assert script_kind("typecheck") == "types"
    assert script_kind("build", "vite build") == "compile"
    assert script_kind("check", "prettier --check .") == "format"
    assert script_kind("ci", "tsc --noEmit") == "types"
    assert script_kind("start", "node server.js") == "unknown"


def test_yarn_and_pnpm() -> None:
    (frozen,) = one("js/yarn1-frozen-lockfile")
    assert frozen.message.startswith("Your lockfile needs to be updated")
    # yarn 4 prints each error in the step's group and again after it: reported once
    (immutable,) = one("js/yarn4-immutable")
    assert immutable.message == (
        "YN0028: The lockfile would have been modified by this install, which is explicitly"
        " forbidden."
    )
    assert [f.code for f in one("js/yarn4-e404")] == ["YN0035"]
    (elifecycle,) = one("js/pnpm-test")
    assert (elifecycle.kind, elifecycle.code) == ("test", "ELIFECYCLE")
    yarn_run = lines_of(
        "yarn run v1.22.22\n$ eslint .\n\nsrc/a.js\n  1:1  error  x  no-undef\n"
        "error Command failed with exit code 1.\n"
    )
    (command,) = scan(PARSERS["yarn"], yarn_run)
    assert (command.kind, command.code) == ("lint", "command-failed")
    network = ['error An unexpected error occurred: "https://registry.yarnpkg.com/x: ETIMEDOUT".']
    assert [f.kind for f in scan(PARSERS["yarn"], network)] == ["infrastructure"]
