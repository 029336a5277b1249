"""bot.cilogs on real tool output (tests/support/cilog_fixtures.py runs pytest, ruff, mypy, pip,
python).

Hand-written inputs are marked HAND-WRITTEN where a test adds its own; the fixtures module marks
its own (runner messages, flake8, pytest-timeout).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import cilogs
from bot.cilogs import Failure, clean_log, diagnose, new_lines, parse_failures
from tests.support import cilog_fixtures as fx

MiB = 1024 * 1024


def ids(failures: list[Failure]) -> list[str | None]:
    return [f.test_id for f in failures]


def locs(failures: list[Failure]) -> dict[str, str | None]:
    return {f"{f.path}:{f.line}": f.code for f in failures}


# --- pytest ---------------------------------------------------------------------------------------


def check_pytest_failures(failures: list[Failure]) -> None:
    """The three planted bugs of the calc project, with ids, messages and failing frames."""
    expected = fx.pytest_expected()
    assert sorted(f.test_id or "" for f in failures) == sorted(expected)
    by_id = {f.test_id: f for f in failures}
    for test_id, (path, line) in expected.items():
        f = by_id[test_id]
        assert (f.kind, f.tool) == ("test", "pytest")
        assert (f.path, f.line) == (path, line), test_id
    assert by_id["tests/test_calc.py::test_add[2-3]"].message == (
        "AssertionError: assert 6 == (2 + 3)"
    )
    div = by_id["tests/test_calc.py::test_div_by_zero_is_zero"]
    assert div.message == "ZeroDivisionError: division by zero"
    assert div.code == "ZeroDivisionError"
    assert by_id["tests/test_calc.py::TestHalf::test_odd"].message.startswith(
        "AssertionError: assert 1 == 1.5"
    )


def test_pytest_verbose_log() -> None:
    log = fx.pytest_failing_log()
    d = diagnose(log)
    check_pytest_failures(d.failures)
    assert d.category == "test"
    assert d.confident
    assert d.failed_step == "Run python -m pytest -v"
    assert d.command == "python -m pytest -v"
    assert not d.truncated and d.new_lines is None
    # Each failure's line is the exception line of its section; the step's generic "exit
    # code 1" line says nothing the failures do not, so it is not a key line.
    assert d.key_lines[0] == "E       assert 6 == (2 + 3)"
    assert "##[error]Process completed with exit code 1." not in d.key_lines
    assert len(d.key_lines) <= cilogs.MAX_KEY_LINES
    cleaned = clean_log(log)
    for f in d.failures:
        assert cleaned.lines[f.log_line].startswith("E    ")


def test_pytest_default_output_and_summary_line() -> None:
    d = diagnose(fx.pytest_default_log())
    check_pytest_failures(d.failures)
    assert d.summary().startswith("3 failing tests (pytest): tests/test_calc.py::test_add[2-3]")


def test_pytest_exception_in_source_points_at_the_source_frame() -> None:
    failures = parse_failures(clean_log(fx.pytest_failing_log()))
    div = next(f for f in failures if f.test_id and "div_by_zero" in f.test_id)
    core = fx.pytest_project() / "calc" / "core.py"
    assert (div.path, div.line) == ("calc/core.py", fx.line_of(core, "return a / b"))


def test_pytest_colour_gives_the_same_result() -> None:
    coloured = fx.pytest_failing_log(color=True)
    assert "\x1b[31m" in coloured  # precondition: pytest really coloured it
    d = diagnose(coloured)
    check_pytest_failures(d.failures)
    assert not any("\x1b" in line for line in clean_log(coloured).lines)
    plain = diagnose(fx.pytest_failing_log())
    assert [(f.test_id, f.message, f.path, f.line) for f in d.failures] == [
        (f.test_id, f.message, f.path, f.line) for f in plain.failures
    ]


def test_pytest_without_summary_uses_sections() -> None:
    log = fx.pytest_no_summary_log()
    assert "short test summary" not in log and "FAILED tests/" not in log  # precondition
    d = diagnose(log)
    check_pytest_failures(d.failures)
    assert d.confident


def test_pytest_collection_error_is_a_test_failure_not_a_dependency() -> None:
    log = fx.pytest_collection_log()
    assert "ImportError while importing test module" in log
    d = diagnose(log)
    assert d.category == "test"
    [f] = d.failures
    assert f.test_id == "tests/test_imports.py"
    assert f.code == "ModuleNotFoundError"
    assert f.message == "ModuleNotFoundError: No module named 'yaml_but_not_installed'"
    assert (f.path, f.line) == ("tests/test_imports.py", 1)


def test_plain_pytest_output_without_timestamps() -> None:
    out, code = fx.pytest_output("-v")
    assert code == 1
    log = clean_log(out)
    assert log.steps == [] and log.error_lines == []
    assert log.lines[0].startswith("====")  # nothing stripped from untimestamped lines
    d = diagnose(out)
    check_pytest_failures(d.failures)
    assert d.failed_step is None and d.command is None


@pytest.mark.parametrize("args", [("-q",), ("-q", "-rN")])
def test_pytest_ids_with_dashes_and_wider_than_the_terminal(args: tuple[str, ...]) -> None:
    out, _ = fx.pytest_long_ids_output(*args)
    # Preconditions: pytest's short header form for a long name, and (-q) a summary line
    # without its message because it did not fit.
    assert "\n_ test_parameters_with_dashes_and_long_values[a parameter" in out
    base = "tests/test_long.py::test_parameters_with_dashes_and_long_values"
    if "-rN" not in args:
        assert f"FAILED {base}[a - b]\n" in out
    d = diagnose(fx.actions_log([("python -m pytest " + " ".join(args), out, 1)]))
    assert sorted(f.test_id or "" for f in d.failures) == [
        f"{base}[a - b]",
        f"{base}[a parameter value long enough to push the node id past the terminal width]",
    ]
    assert all(f.message.startswith("AssertionError: assert ") for f in d.failures)
    assert d.confident


def test_underscore_banners_outside_pytest_failures_are_not_tests() -> None:
    # HAND-WRITTEN: a script printing banners that look like pytest section headers.
    out = "________ Release notes ________\nnothing\n_ draft _\n"
    d = diagnose(fx.actions_log([("./scripts/notes.sh", out, 1)]))
    assert d.failures == [] and d.category == "unknown"


def test_pytest_timeout_in_summary_is_a_timeout() -> None:
    # HAND-WRITTEN: pytest-timeout (signal method) fails the test with "Failed: Timeout >1.0s".
    out = (
        "tests/test_slow.py::test_sleep FAILED\n"
        "=========================== short test summary info ============================\n"
        "FAILED tests/test_slow.py::test_sleep - Failed: Timeout >1.0s\n"
        "============================== 1 failed in 1.05s ===============================\n"
    )
    d = diagnose(fx.actions_log([("python -m pytest -v", out, 1)]))
    [f] = d.failures
    assert (f.kind, f.tool, f.test_id) == ("timeout", "timeout", "tests/test_slow.py::test_sleep")
    assert d.category == "timeout" and d.confident


def test_pytest_timeout_banner_finds_the_test_from_the_stack() -> None:
    d = diagnose(fx.pytest_timeout_log())
    assert d.category == "timeout"  # the tool's own timeout, not the runner's
    [f] = d.failures
    assert (f.tool, f.code) == ("timeout", "pytest-timeout")
    assert f.test_id == "tests/test_net.py::test_fetch_all"
    assert (f.path, f.line) == ("tests/test_net.py", 14)  # /home/runner/work/calc/calc/ removed


def test_summary_only_counts_are_not_confident() -> None:
    """pytest says 3 failed but shows nothing else: a test failure without ids, ambiguous."""
    out, _ = fx.pytest_output("-q", "-rN", "--tb=no")
    assert "3 failed" in out
    d = diagnose(fx.actions_log([("python -m pytest -q -rN --tb=no", out, 1)]))
    assert d.category == "test"
    assert not d.confident
    [f] = d.failures
    assert f.test_id is None and "3 failed" in f.message


def test_missing_section_makes_the_count_check_fail() -> None:
    out, _ = fx.pytest_output("-q", "-rN")
    lines = out.split("\n")
    start = next(i for i, s in enumerate(lines) if "TestHalf.test_odd" in s)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("3 failed"))
    out = "\n".join(lines[:start] + lines[end:])  # one section gone, "3 failed" still there
    d = diagnose(fx.actions_log([("python -m pytest -q -rN", out, 1)]))
    assert len(d.failures) == 2
    assert d.category == "test" and not d.confident


# --- ruff, flake8 -----------------------------------------------------------------------------


def check_lint(failures: list[Failure], tool: str = "ruff") -> None:
    assert locs(failures) == fx.lint_expected()
    assert {(f.kind, f.tool) for f in failures} == {("lint", tool)}
    by_code = {f.code: f for f in failures}
    assert by_code["F401"].message == "F401 `os` imported but unused"


@pytest.mark.parametrize("fmt", ["full", "concise"])
def test_ruff_check(fmt: str) -> None:
    log = fx.ruff_log(fmt)
    assert (" --> calc/core.py:1:8" in log) == (fmt == "full")  # precondition: the format
    d = diagnose(log)
    check_lint(d.failures)
    assert d.category == "lint" and d.confident
    assert d.command == (
        "ruff check calc" if fmt == "full" else f"ruff check --output-format={fmt} calc"
    )


def test_ruff_github_annotations_as_the_runner_shows_them() -> None:
    out, code = fx.ruff_output("check", "--output-format=github", "calc")
    assert out.startswith("::error title=ruff (")  # real ruff output
    # The runner turns `::error …::message` into an annotation and logs "##[error]message"
    # (%0A is a newline); this rendering is HAND-WRITTEN after the runner's behaviour.
    rendered = "\n".join(
        "##[error]" + line.split("::", 2)[2].replace("%0A", "\n") if line.startswith("::") else line
        for line in out.split("\n")
    )
    d = diagnose(fx.actions_log([("ruff check --output-format=github calc", rendered, code)]))
    check_lint(d.failures)


def test_ruff_check_force_color() -> None:
    log = fx.ruff_log(color=True)
    assert "\x1b[" in log
    check_lint(diagnose(log).failures)


def test_ruff_format_check() -> None:
    d = diagnose(fx.ruff_format_log())
    [f] = d.failures
    assert (f.kind, f.tool, f.code, f.path) == ("format", "ruff", "format", "calc/ugly.py")
    assert d.category == "format" and d.confident


def test_older_formatter_outputs() -> None:
    # HAND-WRITTEN: older ruff ("Would reformat: path") and black ("would reformat path").
    out = "Would reformat: calc/core.py\n1 file would be reformatted, 3 files already formatted\n"
    [f] = diagnose(fx.actions_log([("ruff format --check .", out, 1)])).failures
    assert (f.tool, f.code, f.path) == ("ruff", "format", "calc/core.py")
    out = (
        "would reformat /home/runner/work/calc/calc/calc/core.py\n\nOh no! 💥 💔 💥\n"
        "1 file would be reformatted, 3 files would be left unchanged.\n"
    )
    d = diagnose(fx.actions_log([("black --check .", out, 1)]))
    [f] = d.failures
    assert (f.tool, f.code, f.path) == ("black", "format", "calc/core.py")
    assert d.confident


def test_flake8() -> None:
    d = diagnose(fx.flake8_log())  # HAND-WRITTEN output (flake8 is not installed here)
    assert {(f.tool, f.code, f.path, f.line) for f in d.failures} == {
        ("flake8", "F401", "calc/core.py", 1),
        ("flake8", "E711", "calc/more.py", 6),
        ("flake8", "E501", "calc/ugly.py", 1),
    }
    assert d.category == "lint"


def test_flake8_style_without_steps_is_told_apart_from_ruff() -> None:
    # Without a step command, lowercase messages without backticks are flake8's.
    [f] = parse_failures(clean_log("calc/core.py:1:1: F401 'os' imported but unused\n"))
    assert f.tool == "flake8"
    [f] = parse_failures(clean_log("calc/core.py:1:8: F401 [*] `os` imported but unused\n"))
    assert f.tool == "ruff"


# --- mypy ---------------------------------------------------------------------------------------


def check_types(failures: list[Failure]) -> None:
    assert locs(failures) == fx.types_expected()
    assert {(f.kind, f.tool) for f in failures} == {("types", "mypy")}
    assert not any("Revealed type" in f.message for f in failures)  # note: is not a failure


def test_mypy() -> None:
    log = fx.mypy_log()
    assert "note: Revealed type" in log and "Found 2 errors" in log
    d = diagnose(log)
    check_types(d.failures)
    arg = next(f for f in d.failures if f.code == "arg-type")
    assert arg.message == 'Argument 1 to "f" has incompatible type "str"; expected "int"'
    assert d.category == "types" and d.confident


def test_mypy_colour_and_pretty() -> None:
    coloured = fx.mypy_log(color=True)
    assert "\x1b[" in coloured and "\x1b(B" in coloured
    check_types(diagnose(coloured).failures)
    pretty = fx.mypy_log(pretty=True)
    assert "expected\n" in "\n".join(s[29:] for s in pretty.split("\n"))  # precondition: wrapped
    check_types(diagnose(pretty).failures)


# --- dependencies ---------------------------------------------------------------------------------


def test_pip_no_matching_version() -> None:
    log = fx.pip_missing_log()
    assert "No matching distribution found for calc-plugins==9.9" in log
    d = diagnose(log)
    [f] = d.failures  # "Could not find a version" and "No matching distribution": one failure
    assert (f.kind, f.tool, f.code) == ("dependency", "pip", "no-matching-distribution")
    assert "calc-plugins==9.9" in f.message
    assert d.category == "dependency" and d.confident


def test_pip_resolution_impossible() -> None:
    d = diagnose(fx.pip_conflict_log())
    [f] = d.failures
    assert f.code == "ResolutionImpossible"
    assert f.message.startswith("Cannot install alpha==1.0 and gamma==1.0")
    assert d.category == "dependency"


def test_module_not_found_outside_pytest_is_a_dependency() -> None:
    d = diagnose(fx.import_error_log())
    [f] = d.failures
    assert (f.kind, f.tool, f.code) == ("dependency", "python", "ModuleNotFoundError")
    assert f.message == "ModuleNotFoundError: No module named 'calc_plugins_missing'"
    assert d.command == "python scripts/smoke.py"


def test_module_not_found_gets_the_repo_frame() -> None:
    # HAND-WRITTEN traceback as it looks on a runner (absolute workspace paths).
    out = (
        "Traceback (most recent call last):\n"
        '  File "/home/runner/work/calc/calc/scripts/smoke.py", line 3, in <module>\n'
        "    import calc_plugins\n"
        "ModuleNotFoundError: No module named 'calc_plugins'\n"
    )
    [f] = diagnose(fx.actions_log([("python scripts/smoke.py", out, 1)])).failures
    assert (f.path, f.line) == ("scripts/smoke.py", 3)


# --- timeouts and infrastructure ----------------------------------------------------------------


def test_job_timeout() -> None:
    d = diagnose(fx.job_timeout_log())
    [f] = d.failures  # "The operation was canceled." is the timeout's consequence
    assert (f.kind, f.tool, f.code) == ("infrastructure", "timeout", "job-timeout")
    assert d.category == "infrastructure" and d.confident


def test_canceled_alone_is_a_timeout_failure() -> None:
    log = fx.actions_log([("python -m pytest", "collected 4 items\n", 0)])
    log = log.replace("Post job cleanup.", "##[error]The operation was canceled.", 1)
    [f] = diagnose(log).failures
    assert (f.tool, f.code) == ("timeout", "canceled")


def test_runner_shutdown() -> None:
    d = diagnose(fx.runner_shutdown_log())
    assert [(f.tool, f.code) for f in d.failures] == [("runner", "shutdown")]
    assert d.category == "infrastructure" and d.confident


def test_checkout_network_failure() -> None:
    d = diagnose(fx.checkout_failure_log())
    assert {f.code for f in d.failures} == {"network", "git"}
    assert d.category == "infrastructure" and d.confident
    assert d.failed_step == "Run actions/checkout@v4"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        # HAND-WRITTEN in the runner's / tools' wording.
        (
            "##[error]The hosted runner: GitHub Actions 7 lost communication with the server. "
            "Anything in your workflow that terminates the runner process can cause this.",
            "lost-communication",
        ),
        (
            "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on "
            "device",
            "disk-full",
        ),
        ("fatal: unable to access 'https://github.com/o/r/': Connection reset by peer", "network"),
        ("error: RPC failed; HTTP 503 curl 22 The requested URL returned error: 503", "http-503"),
        ("Error: The process '/usr/bin/git' failed with exit code 128", "git"),
        ("##[error]The action 'Run tests' has timed out after 10 minutes.", "step-timeout"),
    ],
)
def test_infrastructure_lines(line: str, code: str) -> None:
    d = diagnose(fx.actions_log([("actions/checkout@v4", line, 1)]))
    assert d.category == "infrastructure"
    assert [f.code for f in d.failures] == [code]


def test_network_trouble_explains_a_dependency_failure_after_it() -> None:
    # HAND-WRITTEN: pip's retry warnings, then it gives up.
    out = (
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
        "after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
        "HTTPSConnection object at 0x7f3a>: Failed to establish a new connection: [Errno -3] "
        "Temporary failure in name resolution')': /simple/requests/\n"
        "ERROR: Could not find a version that satisfies the requirement requests "
        "(from versions: none)\n"
        "ERROR: No matching distribution found for requests\n"
    )
    d = diagnose(fx.actions_log([("python -m pip install requests", out, 1)]))
    assert {f.kind for f in d.failures} == {"infrastructure", "dependency"}
    # pip retried over a failing network, then gave up: the network is the cause; the
    # dependency failure is still reported beside it.
    assert d.category == "infrastructure" and d.confident
    assert "also 1 dependency failure" in d.summary()
    assert d.key_lines[0].startswith("WARNING: Retrying")
    # A resolution error whose own cause chain names the network (after it) is the tool's.
    out = (
        "ERROR: No matching distribution found for requests\n"
        "Caused by: Temporary failure in name resolution\n"
    )
    d = diagnose(fx.actions_log([("python -m pip install requests", out, 1)]))
    assert d.category == "dependency" and not d.confident


# --- classification ---------------------------------------------------------------------------


def test_bare_exit_code_is_unknown_and_not_confident() -> None:
    d = diagnose(fx.bare_exit_log())
    assert d.failures == []
    assert d.category == "unknown" and not d.confident
    assert d.failed_step == "Run ./scripts/release.sh"
    # The step's last output lines, not the runner's "exit code 1" that says nothing more.
    assert "##[error]Process completed with exit code 1." not in d.key_lines
    assert "checking tag v1.2" in d.key_lines
    assert "unrecognised failure" in d.summary() and "(ambiguous)" in d.summary()


def test_first_failed_step_decides() -> None:
    """ruff fails, then an `if: always()` pytest step fails too: lint is what broke the job."""
    ruff_out, ruff_code = fx.ruff_output("check", "calc")
    test_out, test_code = fx.pytest_output("-v")
    d = diagnose(
        fx.actions_log(
            [("ruff check calc", ruff_out, ruff_code), ("pytest -v", test_out, test_code)]
        )
    )
    assert d.category == "lint" and d.confident
    assert {f.kind for f in d.failures} == {"lint", "test"}
    assert d.failed_step == "Run ruff check calc"
    assert "also 3 failing tests" in d.summary()


def test_dependency_in_the_first_failed_step_wins() -> None:
    pip_out, _ = fx.pip_output("calc-plugins==9.9")
    test_out, _ = fx.pytest_output("-v")
    d = diagnose(
        fx.actions_log([("pip install calc-plugins==9.9 && pytest -v", pip_out + test_out, 1)])
    )
    assert d.category == "dependency" and d.confident


def test_infrastructure_beside_code_failures_is_reported_but_does_not_decide() -> None:
    test_out, _ = fx.pytest_output("-v")
    log = fx.actions_log([("python -m pytest -v", test_out, 1)])
    log = log.replace("Post job cleanup.", "##[error]The runner has received a shutdown signal.", 1)
    d = diagnose(log)
    assert d.category == "test"
    assert not d.confident
    check_pytest_failures([f for f in d.failures if f.kind == "test"])
    assert "##[error]The runner has received a shutdown signal." in d.key_lines


def test_failures_in_passing_steps_do_not_count() -> None:
    lint_out, _ = fx.ruff_output("check", "--output-format=concise", "calc")
    log = fx.actions_log(
        [
            ("ruff check --exit-zero --output-format=concise calc", lint_out, 0),
            ("./scripts/release.sh", "checking tag v1.2", 1),
        ]
    )
    d = diagnose(log)
    assert d.category == "unknown" and not d.confident
    assert {f.kind for f in d.failures} == {"lint"}  # returned as context
    assert d.failed_step == "Run ./scripts/release.sh"


def test_mixed_kinds_without_steps_are_ambiguous() -> None:
    lint_out, _ = fx.ruff_output("check", "--output-format=concise", "calc")
    types_out, _ = fx.mypy_output("calc")
    d = diagnose(lint_out + types_out)
    assert {f.kind for f in d.failures} == {"lint", "types"}
    assert not d.confident
    # The same output split into two steps is settled by the first failed step.
    d = diagnose(fx.actions_log([("ruff check calc", lint_out, 1), ("mypy calc", types_out, 1)]))
    assert d.category == "lint" and d.confident


def test_echoed_script_is_not_output() -> None:
    """The `run:` script is echoed inside ##[group]Run … ##[endgroup]; it is not output."""
    command = (
        "cat > known-flaky.txt <<'EOF'\n"
        "ERROR tests/test_old.py::test_gone - RuntimeError: flaky\n"
        "calc/core.py:3:1: F401 `os` imported but unused\n"
        "EOF\n"
        "./scripts/release.sh"
    )
    log = fx.actions_log([(command, "ok", 1)])
    assert parse_failures(clean_log(log.replace("##[group]Run ", "Run ")))  # would parse
    d = diagnose(log)
    assert d.failures == []
    assert d.command == "cat > known-flaky.txt <<'EOF'"


def test_message_is_one_short_line() -> None:
    out = "FAILED tests/test_x.py::test_long - ValueError: " + "x" * 2000 + "\n"
    [f] = parse_failures(clean_log(out))
    assert len(f.message) <= cilogs.MAX_MESSAGE_CHARS and f.message.startswith("ValueError: x")


# --- cleaning ---------------------------------------------------------------------------------


def test_clean_log_steps_and_error_lines() -> None:
    log = clean_log(fx.pytest_failing_log())
    assert log.steps == [
        "Run actions/checkout@v4",
        "Run actions/setup-python@v5",
        "Run python -m pip install -e . pytest",
        "Run python -m pytest -v",
    ]
    assert [log.lines[i] for i in log.error_lines] == [
        "##[error]Process completed with exit code 1."
    ]
    assert log.lines[0] == "Current runner version: '2.321.0'"
    assert not any(line[:4].isdigit() and "T" in line[:12] for line in log.lines)


def test_crlf_bom_and_invalid_utf8() -> None:
    text = fx.ruff_log("concise")
    data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    data = data.replace(b"Syncing repository", b"Syncing \xff\xfe repository", 1)
    log = clean_log(data)
    assert log.lines[0] == "Current runner version: '2.321.0'"  # BOM and timestamp gone
    assert not any("\r" in line for line in log.lines)
    assert any("\ufffd" in line for line in log.lines)
    assert log.bytes_read == len(data)
    check_lint(diagnose(data).failures)


def test_bare_carriage_returns_keep_the_last_frame() -> None:
    log = clean_log("Downloading 10%\rDownloading 50%\rDownloading 100%\nnext\n")
    assert log.lines == ["Downloading 100%", "next"]


def test_truncated_log_keeps_a_tail_failure_and_drops_half_lines() -> None:
    """Over max_bytes: head 1 MiB + tail 1 MiB; the lines cut in half at both edges would parse
    as (bogus) mypy and flake8 failures if they were kept."""
    max_bytes = 2 * MiB
    stamp = fx.timestamp(fx.DEFAULT_START)
    noise = f"{stamp} tests/test_many.py::test_square_is_positive[7] PASSED       [ 12%]\n"

    def exactly(size: int, first: str, last: str) -> str:
        """first + noise + a filler line + last, `size` characters (all ASCII) in total."""
        n = (size - len(first) - len(last)) // len(noise) - 1
        pad = size - len(first) - len(last) - n * len(noise)
        return first + noise * n + "#" * (pad - 1) + "\n" + last

    # The head ends inside "calc/head.py:7: error: Name …" (a real mypy line, cut).
    head_cut = f"{stamp} calc/head.py:7: error: Name"
    head = exactly(MiB, "", head_cut) + ' "x" is not defined  [name-defined]\n'
    # The tail starts inside a line that is harmless whole, at "calc/zzz.py:3:1: E999 …".
    tail_first = "calc/zzz.py:3:1: E999 SyntaxError: bogus\n"
    real = fx.actions_log(
        [("mypy calc", "calc/typed.py:6: error: Real failure  [arg-type]\n", 1)], job_setup=False
    )
    tail = f"{stamp} logged: see " + exactly(MiB, tail_first, real)
    data = (head + noise * 20_000 + tail).encode()
    assert data[:MiB].endswith(head_cut.encode())  # preconditions: where the cuts fall
    assert data[-MiB:].startswith(tail_first.encode())
    log = clean_log(data, max_bytes=max_bytes)
    assert log.truncated and log.bytes_read == len(data)
    cut = len(data) - (MiB - len(head_cut)) - (MiB - len(tail_first))
    assert [line for line in log.lines if line.startswith("[… ")] == [f"[… {cut} bytes cut …]"]
    d = diagnose(data, max_bytes=max_bytes)
    assert [(f.path, f.line) for f in d.failures] == [("calc/typed.py", 6)]
    assert d.truncated and d.category == "types"
    assert d.failed_step == "Run mypy calc"  # its header is in the kept tail
    # The guard matters: without the cut at line ends, both halves would parse as failures.
    halves = clean_log("calc/head.py:7: error: Name\ncalc/zzz.py:3:1: E999 x\n")
    assert len(parse_failures(halves)) == 2


def test_truncated_log_does_not_name_a_step_whose_header_was_cut() -> None:
    out, code = fx.pytest_output("-v")
    noise = "tests/test_many.py::test_square_is_positive[7] PASSED       [ 12%]\n" * 40_000
    log = fx.actions_log([("python -m pytest -v", noise + out, code)])
    d = diagnose(log, max_bytes=2 * MiB)
    assert d.truncated
    check_pytest_failures(d.failures)
    assert d.failed_step is None and d.command is None
    assert diagnose(log).failed_step == "Run python -m pytest -v"  # untruncated: known


def test_big_log_finds_the_failure() -> None:
    """~20 MB of passing noise with a real failing pytest run at the end (no timing asserted)."""
    passing, _ = fx.pytest_output("-v", fixed=True)
    noise_lines = [s for s in passing.split("\n") if " PASSED " in s]
    assert noise_lines
    repeats = 20 * MiB // len("\n".join(noise_lines))
    failing, code = fx.pytest_output("-v")
    steps = [*fx.setup_steps(), ("python -m pytest -v", "\n".join(noise_lines * repeats), 0)]
    data = fx.actions_log([*steps, ("python -m pytest -v -k calc", failing, code)]).encode()
    assert len(data) > 20 * MiB
    d = diagnose(data)
    check_pytest_failures(d.failures)
    assert d.failed_step == "Run python -m pytest -v -k calc"
    assert d.confident and not d.truncated


# --- new lines ----------------------------------------------------------------------------------


def test_new_lines_failing_vs_passing_run() -> None:
    failing = clean_log(fx.pytest_failing_log())
    passing = clean_log(fx.pytest_passing_log())
    new = new_lines(failing, passing)
    new_text = [failing.lines[i] for i in new]
    # The failures are new…
    for test_id in fx.pytest_expected():
        assert f"{test_id} FAILED" in "\n".join(new_text)
        assert any(s.startswith(f"FAILED {test_id}") for s in new_text)
    assert "E       ZeroDivisionError: division by zero" in new_text
    # …the shared setup is not, although its shas, temp paths and durations differ per run.
    pytest_step = failing.lines.index("##[group]Run python -m pytest -v")
    setup_text = failing.lines[:pytest_step]
    assert any(s.startswith("HEAD is now at ") for s in setup_text)
    assert setup_text != passing.lines[:pytest_step]  # precondition: the runs do differ
    assert all(i > pytest_step for i in new)
    # Passing tests' lines are shared too; blank lines never count.
    assert not any(" PASSED " in s for s in new_text)
    assert all(s.strip() for s in new_text)


def test_new_lines_normalisation() -> None:
    passing = clean_log(
        "took 0.12s\nHEAD is now at 1a2b3c4d fix\n[ 45%] tests ok\n"
        "wrote /tmp/pytest-of-runner/pytest-3/x.txt\nrun id=1234\n\n"
    )
    failing = clean_log(
        "took 3.5 s\nHEAD is now at 9f8e7d6c fix\n[ 12%] tests ok\n"
        "wrote /tmp/pytest-of-runner/pytest-9/x.txt\nrun id=98765\n\n\nreally new\n"
    )
    assert [failing.lines[i] for i in new_lines(failing, passing)] == ["really new"]


def test_diagnose_with_passing_log_prefers_new_lines() -> None:
    d = diagnose(fx.pytest_failing_log(), fx.pytest_passing_log())
    assert d.new_lines
    check_pytest_failures(d.failures)
    log = clean_log(fx.pytest_failing_log())
    new_text = {log.lines[i] for i in d.new_lines}
    assert all(k in new_text or k.startswith("##[error]") for k in d.key_lines)


def test_diagnose_without_failures_shows_new_lines() -> None:
    base = fx.setup_steps(1)
    passing = fx.actions_log([*base, ("./scripts/release.sh", "Building release…\nok", 0)])
    failing = fx.actions_log(
        [*base, ("./scripts/release.sh", "Building release…\nsigning key expired\nexit", 1)],
        start=fx.DEFAULT_START + timedelta(hours=1),
    )
    d = diagnose(failing, passing)
    assert not d.confident and d.category == "unknown"
    assert "signing key expired" in d.key_lines
    assert "Building release…" not in d.key_lines  # shared with the passing run
    assert "./scripts/release.sh" not in d.key_lines  # the echoed script is not output
