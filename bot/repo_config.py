"""`.github/loopwright.yml`: a repository's own settings for loopwright."""

from __future__ import annotations

import shlex
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONFIG_PATH = ".github/loopwright.yml"

IssueType = Literal["bug", "feature", "question", "docs"]
Severity = Literal["low", "medium", "high", "critical"]

#: Labels GitHub creates in every new repository that describe status, not area.
NON_AREA_LABELS = frozenset(
    {
        "duplicate",
        "good first issue",
        "help wanted",
        "invalid",
        "wontfix",
        "question",
        "bug",
        "enhancement",
        "documentation",
    }
)


class _Strict(BaseModel):
    # Unknown keys are errors: a typo like `lables:` must not silently fall back to defaults.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoopsConfig(_Strict):
    triage: bool = True
    reproduce: bool = True
    patch: bool = True
    retest: bool = True
    ci_repair: bool = True
    deps: bool = True


class TriageConfig(_Strict):
    #: Issue type -> the repository label that means it.
    labels: dict[IssueType, str] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "bug": "bug",
            "feature": "enhancement",
            "question": "question",
            "docs": "documentation",
        }
    )
    #: Severity -> label; severities without an entry get no label.
    severity_labels: dict[Severity, str] = Field(default_factory=dict)
    #: Labels the model may choose the area from; empty = every repo label that is not a
    #: type, severity or GitHub default status label.
    area_labels: list[str] = Field(default_factory=list)
    #: Added when the model lists missing information (only if the label exists).
    needs_info_label: str | None = None
    #: Create mapped labels that do not exist in the repository (off: never invent labels).
    create_missing_labels: bool = False
    #: Token budget for the issue title + body in the prompt.
    max_issue_tokens: int = Field(default=800, ge=100, le=16000)
    #: Who decides the issue type. `auto`: the repository's trained classifier
    #: (`loopwright train triage`, or learned from its history on GitHub) when its eval card's
    #: cross-validated macro-F1 is at least `classifier_min_f1` and its confidence on this
    #: issue clears the card's calibrated cut-off; otherwise the model. `classifier`: the
    #: classifier whenever one is trained (the model when none is). `model`: always the model.
    type_model: Literal["auto", "classifier", "model"] = "auto"
    #: The eval card score `auto` requires before it lets the classifier decide.
    classifier_min_f1: float = Field(default=0.7, ge=0, le=1)
    #: When the classifier decides the type, still ask the model for the area label and a
    #: summary (costs tokens; the summary is checked and falls back to the title). Off: no model
    #: call at all when the classifier decides.
    model_for_area: bool = False
    #: Post a severity only when a model measured on severity decides it; none is by default,
    #: so no severity is posted or labelled unless this is set (after measuring your model).
    severity_measured: bool = False


class BudgetConfig(_Strict):
    max_iterations: int = Field(default=6, ge=1, le=50)
    max_tokens: int = Field(default=40000, ge=1000)
    max_cost_usd: float = Field(default=1.0, ge=0)
    wall_clock_seconds: int = Field(default=1800, ge=10)


class CostsConfig(_Strict):
    """This repository's own hard spend caps in US dollars, over rolling windows (a day is the
    last 24 h, a month the last 30 days), summed from every loop's recorded model calls. They
    can only lower the operator's caps (`LOOPWRIGHT_COST_CAP_REPO_*_USD`): a higher value is
    clamped to the operator's. Unset: the operator's cap alone."""

    day_usd: float | None = Field(default=None, gt=0)
    month_usd: float | None = Field(default=None, gt=0)


class CommandsConfig(_Strict):
    """How the repository under test is prepared and tested inside the sandbox."""

    #: Command lines (split like a shell would, but never run through one) that prepare the
    #: environment, with network and without secrets. `{venv}` is the cached virtualenv.
    #: Empty: create a venv and install the project with its test extras.
    setup: list[str] = Field(default_factory=list)
    #: The test command, run without network. Empty: `python -m pytest` if the repo uses pytest.
    test: str | None = None
    setup_timeout_seconds: int = Field(default=900, ge=10, le=7200)
    test_timeout_seconds: int = Field(default=1800, ge=10, le=7200)

    @field_validator("setup")
    @classmethod
    def _setup_splits(cls, value: list[str]) -> list[str]:
        for line in value:
            _split(line)
        return value

    @field_validator("test")
    @classmethod
    def _test_splits(cls, value: str | None) -> str | None:
        if value is not None:
            _split(value)
        return value

    def setup_argv(self) -> list[list[str]] | None:
        return [_split(line) for line in self.setup] or None

    def test_argv(self) -> list[str] | None:
        return _split(self.test) if self.test else None


def _split(line: str) -> list[str]:
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise ValueError(f"cannot split {line!r}: {exc}") from None
    if not argv:
        raise ValueError("empty command")
    return argv


class PatchSettings(_Strict):
    """The patch step's settings; each loop that runs it (fix, ci, deps) has its own."""

    #: Failed patch attempts with one model before the next model of `model_patch` takes over.
    attempts_per_model: int = Field(default=3, ge=1, le=20)
    #: Patch attempts in a row that may fail to improve before the loop gives up.
    patience: int = Field(default=4, ge=1, le=50)
    #: Actions (view, search, edit, run_tests, finish) the model gets per patch attempt.
    max_turns: int = Field(default=6, ge=1, le=30)
    #: Extra glob patterns the patch step may not edit (added to the built-in list of tests,
    #: conftest.py, CI, packaging and .github/).
    protected_paths: list[str] = Field(default_factory=list)


class FixConfig(PatchSettings):
    """The issue loops: reproduce → patch → re-test."""

    #: Tests the model may write before the issue counts as not reproduced.
    reproduce_attempts: int = Field(default=3, ge=1, le=10)
    #: Runs of the reproduction on base and head by re-test (a fix must pass every one).
    #: With the scored run, 6 agreeing runs: a fix that passes half the time gets through
    #: with probability 1/64 (< 2 %).
    retest_runs: int = Field(default=5, ge=2, le=20)
    #: Existing tests a candidate fix may break, as pinning the old behaviour, and still be
    #: offered as a `behaviour_change` draft PR (more than this: the fix is reverted).
    max_changed_expectations: int = Field(default=3, ge=0, le=50)


class CiConfig(PatchSettings):
    """The CI-failure loop: diagnose a red workflow run, reproduce it, repair it."""

    #: React to failing runs on the default branch (diagnosis goes to a tracking issue).
    default_branch: bool = True
    #: React to failing runs of pull requests from branches of this repository.
    pull_requests: bool = True
    #: Job name -> the command lines that reproduce it in the sandbox. Jobs not listed here are
    #: reproduced with their failed step's `run:` when it is a plain call of a known tool
    #: (pytest, ruff, mypy, flake8).
    jobs: dict[str, list[str]] = Field(default_factory=dict)
    #: Run `ruff check --fix` and `ruff format` on lint failures before asking a model.
    ruff_fixers: bool = True
    #: More deterministic fixers (command lines, run in the sandbox) tried before the model.
    fixers: list[str] = Field(default_factory=list)
    #: Runs of the failing command: it must fail every time to count as reproduced, and the
    #: repair must pass every time. A command that fails only sometimes is flaky.
    reproduce_runs: int = Field(default=3, ge=2, le=20)
    #: Ask the patch model when the deterministic fixers are not enough.
    patch: bool = True
    #: The most of one job's log that is read (the first MiB and the tail are kept).
    max_log_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024, le=512 * 1024 * 1024)
    #: Failed jobs of one run that are diagnosed.
    max_jobs: int = Field(default=3, ge=1, le=20)

    @field_validator("jobs")
    @classmethod
    def _jobs_split(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for lines in value.values():
            for line in lines:
                _split(line)
        return value

    @field_validator("fixers")
    @classmethod
    def _fixers_split(cls, value: list[str]) -> list[str]:
        for line in value:
            _split(line)
        return value

    def job_argv(self, job: str) -> list[list[str]] | None:
        lines = self.jobs.get(job)
        return [_split(line) for line in lines] if lines else None

    def fixer_argv(self) -> list[list[str]]:
        return [_split(line) for line in self.fixers]


class DepsConfig(PatchSettings):
    """The dependency-update loop: verify Dependabot/Renovate PRs, migrate code they break.
    `protected_paths` adds to tests, CI, packaging and the dependency pins."""

    #: PR authors whose PRs are dependency updates.
    authors: list[str] = Field(default_factory=lambda: ["dependabot[bot]", "renovate[bot]"])
    safe_label: str = "deps:safe"
    breaks_label: str = "deps:breaks"
    #: Try a migration (a draft PR into the update's branch) when the update breaks tests.
    migrate: bool = True
    #: Runs of the suite on a migration: it must pass every one.
    verify_runs: int = Field(default=2, ge=1, le=20)


class RepoConfig(_Strict):
    loops: LoopsConfig = Field(default_factory=LoopsConfig)
    triage: TriageConfig = Field(default_factory=TriageConfig)
    budgets: BudgetConfig = Field(default_factory=BudgetConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    fix: FixConfig = Field(default_factory=FixConfig)
    ci: CiConfig = Field(default_factory=CiConfig)
    deps: DepsConfig = Field(default_factory=DepsConfig)


class ConfigError(Exception):
    """The repository's config is invalid; `problems` name each key and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_config(text: str | None) -> RepoConfig:
    """Parse the YAML text of `.github/loopwright.yml` (None or empty → all defaults)."""
    if text is None or not text.strip():
        return RepoConfig()
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"not valid YAML{where}: {problem}"]) from None
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise ConfigError([f"the top level must be a mapping of keys, not {type(data).__name__}"])
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"`{key}`: {msg}")
        raise ConfigError(problems) from None


def config_json_schema() -> dict[str, Any]:
    return RepoConfig.model_json_schema()
