"""The chart runner (`loops.chart`): stages in order, ends, stop requests, typed exits from
exceptions, and resume from stored stage results — on a real store; and docs/loops.md holds
each loop's chart as declared."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import BaseModel

from bot import db as dbmod
from bot.model import Usage
from bot.settings import load_settings
from bot.store import Job, JobSpec, Store
from loops import ci_repair, deps, fix, triage
from loops.chart import Catch, Chart, End, Stage, run_chart, sync_doc
from loops.engine import ExitReason, LoopContext, Outcome

ROOT = Path(__file__).resolve().parent.parent
CHARTS = [fix.CHART, fix.RETEST_CHART, triage.CHART, ci_repair.CHART, deps.CHART]


class Count(BaseModel):
    n: int


@dataclass
class Toy:
    exit: ExitReason = ExitReason.DONE
    detail: str = ""
    usage: Usage = field(default_factory=Usage)
    models: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    count: int = 0
    #: What `restore` says of a stored result (False: it no longer applies).
    applies: bool = True
    doubled: int = 0
    fail_with: Exception | None = None
    ends_at: int | None = None


async def _first(s: Toy) -> None:
    s.ran.append("first")


async def _model(s: Toy) -> Count:
    s.ran.append("model")
    s.count = 41 + len(s.ran)
    return Count(n=s.count)


async def _restore(s: Toy, stored: Count) -> bool:
    if s.applies:
        s.count = stored.n
    return s.applies


async def _again(s: Toy) -> Count:
    s.ran.append("again")
    return Count(n=s.count * 2)


async def _restore_again(s: Toy, stored: Count) -> bool:
    s.doubled = stored.n
    return True


async def _last(s: Toy) -> None:
    s.ran.append("last")
    if s.fail_with is not None:
        raise s.fail_with


async def _publish(s: Toy) -> Outcome:
    return Outcome(s.exit, s.detail, posted={"ran": s.ran, "count": s.count})


def _ends(s: Toy, got: Count) -> End | None:
    return End(ExitReason.NOT_REPRODUCED, f"ended at {got.n}") if s.ends_at == got.n else None


TOY: Chart[Toy] = Chart(
    name="toy",
    stages=[
        Stage("first", "deterministic", reads=(), produces="nothing", run=_first),
        Stage(
            "model",
            "model",
            reads=("first",),
            produces="`Count`",
            run=_model,
            budget="none",
            end=_ends,
            result=Count,
            restore=_restore,
        ),
        Stage(
            "again",
            "model",
            reads=("`Count`",),
            produces="`Count`",
            run=_again,
            budget="none",
            result=Count,
            restore=_restore_again,
        ),
        Stage(
            "last",
            "deterministic",
            reads=("`Count`",),
            produces="nothing",
            run=_last,
            stop_before="stopped before the last stage",
        ),
    ],
    publish=_publish,
    catches=[Catch(ValueError, ExitReason.SANDBOX_ERROR, detail=lambda e: f"sandbox: {e}")],
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    database = await dbmod.connect(f"sqlite:///{tmp_path / 'chart.db'}")
    s = Store(database)
    await s.init()
    yield s
    await database.close()


_numbers = itertools.count(1)


async def _job(store: Store) -> Job:
    # One issue per job: a job's lock (its issue) would keep the next one from being leased.
    number = next(_numbers)
    await store.enqueue(
        JobSpec(kind="fix", repo="octo/calc", installation_id=1, number=number), max_attempts=3
    )
    job = await store.lease("w", 60)
    assert job is not None
    return job


async def _context(store: Store, tmp_path: Path, job: Job) -> LoopContext:
    run_id = await store.start_run(job.id or None, job.kind, job.repo, job.number)
    # The runner reaches neither the forge nor the model: its stages here do not either.
    return LoopContext(
        load_settings(data_dir=tmp_path), store, cast(Any, None), cast(Any, None), run_id
    )


async def _run(
    store: Store,
    tmp_path: Path,
    job: Job,
    state: Toy,
    cancelled: Callable[[], Awaitable[bool]] | None = None,
) -> tuple[Outcome, list[str]]:
    ctx = await _context(store, tmp_path, job)
    out = await run_chart(TOY, job, ctx, state, cancelled=cancelled)
    return out, [st["name"] for st in await store.steps_for(ctx.run_id)]


async def test_stages_run_in_order_and_a_retry_restores_a_stored_result(
    store: Store, tmp_path: Path
) -> None:
    job = await _job(store)
    out, steps = await _run(store, tmp_path, job, Toy())
    assert out.posted == {"ran": ["first", "model", "again", "last"], "count": 43}
    assert steps == []  # the runner records nothing of its own when nothing is restored
    assert await store.stage_results(job.id) == {"model": {"n": 43}, "again": {"n": 86}}

    retry = dataclasses.replace(job, attempts=2)
    state = Toy()
    out, steps = await _run(store, tmp_path, retry, state)
    assert out.posted == {"ran": ["first", "last"], "count": 43}
    assert state.doubled == 86
    assert steps == ["resume:model", "resume:again"]


async def test_a_stored_result_that_no_longer_parses_or_applies_runs_the_stage_again(
    store: Store, tmp_path: Path
) -> None:
    job = await _job(store)
    retry = dataclasses.replace(job, attempts=2)
    # Stored by another version of the code; the later stage's result, built on the earlier
    # one, is not restored either: a stage that runs again makes the later ones run again.
    await store.save_stage_result(job.id, "model", {"count": "forty-three"})
    await store.save_stage_result(job.id, "again", {"n": 1})
    out, steps = await _run(store, tmp_path, retry, Toy())
    assert out.posted["ran"] == ["first", "model", "again", "last"] and steps == []
    # Now a valid one, refused by its stage (e.g. the base branch moved).
    out, steps = await _run(store, tmp_path, retry, Toy(applies=False))
    assert out.posted["ran"] == ["first", "model", "again", "last"] and steps == []


async def test_a_local_run_stores_nothing(store: Store, tmp_path: Path) -> None:
    job = dataclasses.replace(await _job(store), id=0)
    out, _ = await _run(store, tmp_path, job, Toy())
    assert out.exit is ExitReason.DONE
    rows = await store.db.fetchall("SELECT * FROM stage_results")
    assert rows == []


async def test_an_end_a_stop_and_a_caught_exception_are_typed_exits(
    store: Store, tmp_path: Path
) -> None:
    job = await _job(store)
    out, _ = await _run(store, tmp_path, job, Toy(ends_at=43))
    assert (out.exit, out.detail, out.posted["ran"]) == (
        ExitReason.NOT_REPRODUCED,
        "ended at 43",
        ["first", "model"],
    )

    async def stop() -> bool:
        return True

    out, _ = await _run(store, tmp_path, await _job(store), Toy(), stop)
    assert (out.exit, out.detail) == (ExitReason.CANCELLED, "stopped before the last stage")
    assert out.posted["ran"] == ["first", "model", "again"]

    out, _ = await _run(store, tmp_path, await _job(store), Toy(fail_with=ValueError("no bwrap")))
    assert (out.exit, out.detail) == (ExitReason.SANDBOX_ERROR, "sandbox: no bwrap")
    # Anything the chart does not list is a crash, for the worker to retry.
    with pytest.raises(KeyError):
        await _run(store, tmp_path, await _job(store), Toy(fail_with=KeyError("x")))


def test_docs_loops_md_holds_every_chart_as_declared() -> None:
    text = (ROOT / "docs" / "loops.md").read_text(encoding="utf-8")
    assert sync_doc(text, CHARTS) == text, (
        "docs/loops.md is out of date: run `python bench/loop_charts.py --write`"
    )


def test_every_chart_names_its_stages_once_and_gives_each_model_stage_a_budget() -> None:
    for chart in CHARTS:
        names = [s.name for s in chart.stages]
        assert len(names) == len(set(names)), chart.name
        for s in chart.stages:
            if s.kind == "model":
                assert s.budget, (chart.name, s.name)
