"""The CI and dependency charts' stored stage results (`ci_repair.Diagnosed`,
`ci_repair.CiRepaired`, `deps.Summarized`): through a real store and back, put back on a
fresh run's report, and refused when made for other commits or under another config. The
retries themselves, through the real worker, are in tests/test_e2e_ci.py and
tests/test_e2e_deps.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import TypeAdapter

import bot.cilogs as cilogs
from bot import db as dbmod
from bot.forge import PullInfo
from bot.jobs import CiTrigger
from bot.model import Usage
from bot.settings import load_settings
from bot.store import Job, JobSpec, Store
from loops import ci_repair, deps
from loops.chart import config_key
from loops.engine import (
    AttemptRecord,
    ExitReason,
    KeepRevertResult,
    Ledger,
    LoopContext,
    Score,
)
from loops.patch import PatchOutcome

LOG = b"FAILED tests/test_core.py::test_mean - AssertionError: 2.5 != 2.0\n"
NOTES = "Release notes\n\n<blockquote>\n\n- Packaging fixes.\n\n</blockquote>\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    database = await dbmod.connect(f"sqlite:///{tmp_path / 'resume.db'}")
    s = Store(database)
    await s.init()
    yield s
    await database.close()


async def _job(store: Store) -> Job:
    await store.enqueue(
        JobSpec(kind="ci_repair", repo="octo/stats", installation_id=1, number=1), max_attempts=3
    )
    job = await store.lease("w", 60)
    assert job is not None
    return job


def _ctx(tmp_path: Path, store: Store) -> Any:
    # The restores read the report and the config only: neither the forge nor the model.
    return LoopContext(load_settings(data_dir=tmp_path), store, cast(Any, None), cast(Any, None), 0)


async def _stored(store: Store, job: Job, stage: str, kind: Any, result: Any) -> Any:
    """`result` as the runner stores it and a retry reads it back."""
    await store.save_stage_result(job.id, stage, TypeAdapter(kind).dump_python(result, mode="json"))
    return TypeAdapter(kind).validate_python((await store.stage_results(job.id))[stage])


def _ci_run(ctx: Any, job: Job, sha: str) -> ci_repair.CiRun:
    trigger = CiTrigger(trigger="/loopwright diagnose")
    return ci_repair.CiRun(ctx, job, trigger, ci_repair.CiReport(None, "main", sha), 1)


async def test_a_stored_diagnosis_is_put_back_only_for_its_commit_and_config(
    store: Store, tmp_path: Path
) -> None:
    ctx, job = _ctx(tmp_path, store), await _job(store)
    failed = ci_repair.FailedJob(
        "test", cilogs.diagnose(LOG), log_bytes=len(LOG), commands=[["python", "-m", "pytest"]]
    )
    made = ci_repair.Diagnosed(
        [failed],
        "the mean divides by one too many",
        "",
        "abc123",
        config_key(ctx),
        Usage(1, 120, 30, 0.01),
        ["scripted-small"],
    )
    stored = await _stored(store, job, "diagnose", ci_repair.Diagnosed, made)
    assert stored == made

    s = _ci_run(ctx, job, "abc123")
    assert await ci_repair._restore_diagnosis(s, stored)
    assert s.report.jobs == [failed] and s.report.commands == [["python", "-m", "pytest"]]
    assert s.report.explanation == "the mean divides by one too many"
    assert (s.report.usage.calls, s.report.usage.prompt_tokens) == (1, 120)
    assert s.report.models == ["scripted-small"]

    # Another failing commit, or another config: diagnosed again, the report left alone.
    other_commit = _ci_run(ctx, job, "def456")
    assert not await ci_repair._restore_diagnosis(other_commit, stored)
    other_config = _ci_run(ctx, job, "abc123")
    stale = ci_repair.Diagnosed(**{**vars(stored), "config": "another-config"})
    assert not await ci_repair._restore_diagnosis(other_config, stale)
    for left in (other_commit, other_config):
        assert left.report.jobs == [] and left.report.usage.calls == 0


def _deps_run(ctx: Any, job: Job, head: str, body: str = NOTES) -> deps.DepsRun:
    pull = PullInfo(
        7,
        "Bump fakelib from 1.0.0 to 1.0.1",
        body,
        "dependabot[bot]",
        "dependabot/pip/fakelib-1.0.1",
        head,
        "octo/greeter",
        "main",
        "base1",
    )
    return deps.DepsRun(ctx, job, deps.DepsReport(pull, None))


async def test_a_stored_summary_is_put_back_only_for_the_same_update_and_verdict(
    store: Store, tmp_path: Path
) -> None:
    ctx, job = _ctx(tmp_path, store), await _job(store)
    first = _deps_run(ctx, job, "head1")
    made = deps.Summarized(
        ["Packaging fixes only."],
        *deps._asked(first),
        usage=Usage(1, 169, 9, 0.0),
        models=["scripted-small"],
    )
    stored = await _stored(store, job, "summarize", deps.Summarized, made)
    assert stored == made

    s = _deps_run(ctx, job, "head1")
    assert await deps._restore_summary(s, stored)
    assert s.report.bullets == ["Packaging fixes only."]
    assert s.report.usage.prompt_tokens == 169 and s.report.models == ["scripted-small"]

    # Another head commit, other release notes, another verdict: summarized again.
    moved = _deps_run(ctx, job, "head2")
    edited = _deps_run(ctx, job, "head1", body=NOTES + "\n- Dropped Python 3.8.\n")
    broke = _deps_run(ctx, job, "head1")
    broke.report.broken = ["tests/test_hello.py::test_hello"]
    for other in (moved, edited, broke):
        assert not await deps._restore_summary(other, stored)
        assert other.report.bullets == [] and other.report.usage.calls == 0


async def test_a_stored_repair_comes_back_from_the_store_as_it_was_made(
    store: Store, tmp_path: Path
) -> None:
    ctx, job = _ctx(tmp_path, store), await _job(store)
    ledger = Ledger(
        [AttemptRecord(1, "scripted-small", 900, 40, 0.01, "passes", "kept", 2.5, "c0ffee")]
    )
    best = Score((1.0,), True, "the failing command passes and no test regressed")
    made = ci_repair.CiRepaired(
        True,
        ExitReason.DONE,
        "",
        ["`ruff check --fix .` (exit 0)"],
        PatchOutcome(KeepRevertResult(ExitReason.FIXED, best, ledger), Usage(2, 900, 40, 0.01)),
        "abc123",
        config_key(ctx),
        {"stats/core.py": "def mean(xs):\n    return sum(xs) / len(xs)\n", "stats/old.py": None},
    )
    assert await _stored(store, job, "repair", ci_repair.CiRepaired, made) == made
