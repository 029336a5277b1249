"""Hard spend caps (`bot.costs`): per repository and installation, over rolling windows, checked
and reserved before every model call in one store transaction.

Everything is real except the model (the scripted OpenAI-compatible server, through the real
openai client) and GitHub (a local `DryRunForge`, or the FakeGitHub end to end): the Runtime,
the Store on SQLite and PostgreSQL, the loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, run_local
from bot.costs import (
    CostGuard,
    effective_caps,
    format_spend_report,
    spend_report,
)
from bot.db import connect
from bot.forge import DryRunForge, Issue
from bot.jobs import LoopName, TriageTrigger
from bot.model import CostCapReached, Usage
from bot.repo_config import ConfigError, CostsConfig, parse_config
from bot.settings import Settings, load_settings
from bot.store import Job, StepRecord, Store
from bot.workspace import Workspace
from loops.engine import ExitReason, Proposal, keep_or_revert
from tests.support import fixrepo
from tests.support.calc_workspace import budget, correctness, ws
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.sandbox_user import bwrap_works, sandbox_run_as
from tests.support.webhooks import payload

__all__ = ["sandbox_run_as", "ws"]

#: Dollars per million tokens: a triage call of ~600 tokens costs about $0.06.
PRICES = {"priced": {"prompt": 100.0, "completion": 100.0}}
ISSUE = Issue(1, "Crash on start", "It crashes with a KeyError when the config is empty.", "u")


def settings_for(tmp: Path, url: str, model: FakeModel, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp / "data",
        "database_url": url,
        "model_base_url": model.url,
        "model_api_key": "sk-test-" + "k" * 24,
        "model_triage": "priced",
        "prices": PRICES,
    }
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
async def runtime_factory(
    tmp_path: Path, database_url: str, fake_model: FakeModel
) -> AsyncIterator[Any]:
    """Runtimes on one database: each is one worker process's store, model client and guard."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**extra: Any) -> Runtime:
            settings = settings_for(tmp_path, database_url, fake_model, **extra)
            rt: Runtime = await stack.enter_async_context(Runtime.open(settings, model=True))
            return rt

        yield make


def repo_dir(tmp: Path, name: str, config: str | None = None) -> Path:
    path = tmp / name.replace("/", "_")
    (path / ".github").mkdir(parents=True, exist_ok=True)
    if config is not None:
        (path / ".github" / "loopwright.yml").write_text(config)
    return path


async def triage(
    rt: Runtime,
    repo: str,
    *,
    path: Path | None = None,
    installation_id: int | None = None,
    number: int = 1,
) -> tuple[str, str, int]:
    """One triage job of `repo` (an installation's, or local mode's): exit, comment, run id."""
    forge = DryRunForge(repo, issue=ISSUE, repo_path=path)
    job = Job(
        id=0,
        delivery_id=None,
        kind=LoopName.TRIAGE,
        repo=repo,
        installation_id=installation_id,
        number=number,
        payload=TriageTrigger(trigger="issues.opened").payload(),
        attempts=1,
        max_attempts=1,
        lease_owner="test",
    )
    outcome, run_id = await rt.run_loop(job, forge, dry_run=True)
    return outcome.exit.value, forge.comment or "", run_id


async def spent(store: Store, repo: str | None = None) -> float:
    sql = "SELECT COALESCE(SUM(s.cost), 0) AS n FROM steps s JOIN runs r ON r.id = s.run_id"
    row = await store.db.fetchone(
        sql + (" WHERE r.repo = :repo" if repo else ""), {"repo": repo} if repo else {}
    )
    assert row is not None
    return float(row["n"])


async def call_costs(store: Store) -> list[float]:
    rows = await store.db.fetchall("SELECT cost FROM steps WHERE kind = 'model' ORDER BY id")
    return [float(r["cost"]) for r in rows]


# --- the caps in force ---------------------------------------------------------------------------


def test_repository_caps_only_lower_the_operators() -> None:
    s = load_settings(cost_cap_repo_day_usd=2.0, cost_cap_installation_month_usd=50.0)
    lower = effective_caps(s, CostsConfig(day_usd=0.5, month_usd=10), installation_id=3)
    assert [(c.scope, c.window, c.limit, c.clamped_from) for c in lower] == [
        ("repository", "day", 0.5, None),
        ("repository", "month", 10.0, None),  # no operator cap: the repository's own applies
        ("installation", "month", 50.0, None),
    ]
    assert "costs.day_usd" in lower[0].source
    higher = effective_caps(s, CostsConfig(day_usd=5.0), installation_id=None)
    assert [(c.window, c.limit, c.clamped_from) for c in higher] == [("day", 2.0, 5.0)]
    assert higher[0].source == "LOOPWRIGHT_COST_CAP_REPO_DAY_USD"
    assert "clamped" in higher[0].describe()
    # No installation (local mode): the installation caps do not apply; no cap at all: none.
    assert effective_caps(load_settings(), CostsConfig(), installation_id=1) == []
    with pytest.raises(ConfigError, match=r"costs\.day_usd"):
        parse_config("costs:\n  day_usd: 0\n")
    assert parse_config("costs:\n  month_usd: 12.5\n").costs.month_usd == 12.5


# --- a loop stopped by a cap ---------------------------------------------------------------------


async def test_a_cap_reached_mid_run_stops_before_the_next_call(
    runtime_factory: Any, fake_model: FakeModel
) -> None:
    # The first answer is invalid, so triage would retry; the first call already crossed the
    # cap, so the retry is refused: `cost_cap`, not `model_error`.
    rt = await runtime_factory(cost_cap_repo_day_usd=0.01)
    fake_model.script("triage", "not json at all", triage_answer())
    exit_, comment, run_id = await triage(rt, "octo/one")
    assert exit_ == "cost_cap"
    assert len(fake_model.calls) == 1
    [cost] = await call_costs(rt.store)
    assert cost > 0.01 and await spent(rt.store) <= 0.01 + cost
    assert "### loopwright triage" in comment and "`cost_cap`" in comment
    assert "The repository's daily spend cap is reached" in comment
    assert "LOOPWRIGHT_COST_CAP_REPO_DAY_USD" in comment and "$0.0100" in comment
    assert "frees up in about 24 h" in comment
    run = await rt.store.get_run(run_id)
    assert run is not None and run["exit_reason"] == "cost_cap"
    steps = await rt.store.steps_for(run_id)
    [refusal] = [st for st in steps if st["name"] == "cost_cap"]
    assert refusal["verdict"] == "refused" and "triage with priced" in refusal["input"]
    # Nothing is left reserved once the run is over.
    assert await rt.store.db.fetchall("SELECT id FROM spend_reservations") == []


async def test_a_lower_repository_cap_lets_one_call_over_then_refuses(
    runtime_factory: Any, fake_model: FakeModel, tmp_path: Path
) -> None:
    rt = await runtime_factory(cost_cap_repo_day_usd=100.0)
    fake_model.script("triage", triage_answer())
    path = repo_dir(tmp_path, "octo/one")
    assert (await triage(rt, "octo/one", path=path))[0] == "done"
    [one] = await call_costs(rt.store)
    # 1.5 calls: the second call starts under the cap and crosses it, the third is refused.
    (path / ".github" / "loopwright.yml").write_text(f"costs:\n  day_usd: {one * 1.5}\n")
    assert (await triage(rt, "octo/one", path=path))[0] == "done"
    exit_, comment, run_id = await triage(rt, "octo/one", path=path)
    assert exit_ == "cost_cap" and len(fake_model.calls) == 2
    assert "`costs.day_usd` in .github/loopwright.yml" in comment
    assert await spent(rt.store) <= one * 1.5 + max(await call_costs(rt.store))
    [caps] = [st for st in await rt.store.steps_for(run_id) if st["name"] == "cost_caps"]
    assert caps["verdict"] == "ok"
    assert json.loads(caps["output"])["caps"][0]["usd"] == pytest.approx(one * 1.5)


async def test_a_higher_repository_cap_is_clamped_to_the_operators(
    runtime_factory: Any, fake_model: FakeModel, tmp_path: Path
) -> None:
    rt = await runtime_factory(cost_cap_repo_month_usd=0.001)
    fake_model.script("triage", triage_answer())
    path = repo_dir(tmp_path, "octo/one", "costs:\n  month_usd: 500\n")
    assert (await triage(rt, "octo/one", path=path))[0] == "done"
    exit_, comment, run_id = await triage(rt, "octo/one", path=path)
    assert exit_ == "cost_cap" and len(fake_model.calls) == 1
    assert "monthly spend cap is reached" in comment and "the last 30 days" in comment
    assert "$0.0010 (LOOPWRIGHT_COST_CAP_REPO_MONTH_USD" in comment
    assert "`costs.month_usd` of $500.0000 is above the operator's cap" in comment
    [caps] = [st for st in await rt.store.steps_for(run_id) if st["name"] == "cost_caps"]
    assert caps["verdict"] == "clamped"
    assert json.loads(caps["output"])["caps"] == [
        {
            "scope": "repository",
            "window": "month",
            "usd": 0.001,
            "source": "LOOPWRIGHT_COST_CAP_REPO_MONTH_USD",
            "clamped_from": 500.0,
        }
    ]


async def test_an_installation_cap_spans_its_repositories(
    runtime_factory: Any, fake_model: FakeModel
) -> None:
    rt = await runtime_factory(cost_cap_installation_day_usd=0.001)
    fake_model.script("triage", triage_answer())
    assert (await triage(rt, "octo/one", installation_id=7))[0] == "done"
    exit_, comment, _ = await triage(rt, "octo/two", installation_id=7)
    assert exit_ == "cost_cap"
    assert "Installation 7's daily spend cap is reached" in comment
    assert "LOOPWRIGHT_COST_CAP_INSTALLATION_DAY_USD" in comment
    # Another installation, and local mode (no installation), are not held by it.
    assert (await triage(rt, "octo/two", installation_id=8))[0] == "done"
    assert (await triage(rt, "octo/two"))[0] == "done"
    assert len(fake_model.calls) == 3
    rows = await rt.store.db.fetchall("SELECT installation_id FROM runs ORDER BY id")
    assert [r["installation_id"] for r in rows] == [7, 7, 8, None]


async def test_concurrent_jobs_on_two_workers_exceed_a_cap_by_one_call_at_most(
    runtime_factory: Any, fake_model: FakeModel
) -> None:
    # Measure one call, on a repository of the same name length (the same prompt size).
    probe = await runtime_factory()
    fake_model.script("triage", triage_answer())
    await triage(probe, "octo/xxx")
    [one] = await call_costs(probe.store)
    cap = one * 2.5

    async def slow(body: dict[str, Any]) -> str:
        await asyncio.sleep(0.4)  # every admitted call is in flight while the others check
        return triage_answer()

    fake_model.script("triage", slow)
    workers = [await runtime_factory(cost_cap_repo_day_usd=cap) for _ in range(2)]
    jobs = [triage(workers[i % 2], "octo/one", number=i + 1) for i in range(8)]
    exits = [e for e, _, _ in await asyncio.gather(*jobs)]
    costs = await call_costs(workers[0].store)
    total = await spent(workers[0].store, "octo/one")
    # Without reservations all eight would see $0 spent and call.
    assert total <= cap + max(costs), (exits, total, cap)
    assert exits.count("cost_cap") >= 4 and "done" in exits
    assert await workers[1].store.db.fetchall("SELECT id FROM spend_reservations") == []


async def test_a_dead_workers_reservation_expires(database_url: str, tmp_path: Path) -> None:
    db = await connect(database_url)
    now = [1_000_000.0]
    store = Store(db, clock=lambda: now[0])
    await store.init()
    try:
        settings = load_settings(data_dir=tmp_path, cost_cap_repo_day_usd=1.0)
        run_a = await store.start_run(None, "fix", "octo/one", 1, installation_id=1)
        run_b = await store.start_run(None, "fix", "octo/one", 2, installation_id=1)

        def guard(run_id: int) -> CostGuard:
            return CostGuard(
                store,
                settings,
                repo="octo/one",
                installation_id=1,
                run_id=run_id,
                stale_after=240.0,
                clock=lambda: now[0],
            )

        # Worker A reserves a whole dollar and dies mid-call: no after_call, no step record.
        token = await guard(run_a).before_call(step="patch", model="m", estimate=1.0)
        assert isinstance(token, int)
        with pytest.raises(CostCapReached) as refused:
            await guard(run_b).before_call(step="patch", model="m", estimate=0.01)
        assert refused.value.spent == pytest.approx(1.0) and refused.value.cap == 1.0
        assert "reserved by calls in flight" in str(refused.value)
        assert "when the calls in flight finish" in str(refused.value)
        now[0] += 241.0
        later = await guard(run_b).before_call(step="patch", model="m", estimate=0.01)
        rows = await db.fetchall("SELECT id, amount FROM spend_reservations ORDER BY id")
        assert [r["id"] for r in rows] == [later]  # the dead one is gone
        await guard(run_b).after_call(later)
        assert await db.fetchall("SELECT id FROM spend_reservations") == []
        # Recorded spend counts until it leaves the window; free calls are refused only then.
        await store.record_step(run_b, StepRecord("patch", "model", "valid", model="m", cost=1.5))
        with pytest.raises(CostCapReached) as over:
            await guard(run_b).before_call(step="patch", model="free", estimate=0.0)
        assert over.value.frees_at == pytest.approx(now[0] + 86400)
        now[0] += 86401
        assert await guard(run_b).before_call(step="patch", model="free", estimate=0.0) is None
    finally:
        await db.close()


async def test_spend_report_groups_by_repo_loop_model_and_window(
    runtime_factory: Any, fake_model: FakeModel, tmp_path: Path
) -> None:
    rt = await runtime_factory(cost_cap_repo_day_usd=50.0, cost_cap_installation_month_usd=80.0)
    fake_model.script("triage", triage_answer())
    path = repo_dir(tmp_path, "octo/one", "costs:\n  day_usd: 20\n")
    await triage(rt, "octo/one", path=path, installation_id=7)
    await triage(rt, "octo/one", path=path, installation_id=7)
    await triage(rt, "octo/two", installation_id=7)
    # A month-old call counts in the month only.
    old = await rt.store.start_run(None, "fix", "octo/two", 3, installation_id=7)
    await rt.store.record_step(old, StepRecord("patch", "model", "valid", model="big", cost=3.0))
    async with rt.store.db.transaction() as tx:
        await tx.execute(
            "UPDATE steps SET created_at = created_at - 2 * 86400 WHERE run_id = :r", {"r": old}
        )
    rows = await spend_report(rt.store, now=await _now(rt.store))
    day = [(r.repo, r.loop, r.model, r.calls, r.repo_cap) for r in rows if r.window == "day"]
    assert day == [
        ("octo/one", "triage", "priced", 2, 20.0),
        ("octo/two", "triage", "priced", 1, None),
    ]
    month = [(r.repo, r.loop, r.model) for r in rows if r.window == "month"]
    assert ("octo/two", "fix", "big") in month and len(month) == 3
    text = format_spend_report(rows, rt.settings)
    lines = text.splitlines()
    assert lines[0].split() == [
        "window", "repository", "loop", "model", "calls", "tokens", "spent", "cap", "left"
    ]  # fmt: skip
    one_total = next(
        ln for ln in lines if ln.startswith("day") and "octo/one" in ln and "(total)" in ln
    )
    assert "$20.0000" in one_total  # the repository's own, lower than the operator's $50
    two_total = next(
        ln for ln in lines if ln.startswith("day") and "octo/two" in ln and "(total)" in ln
    )
    assert "$50.0000" in two_total
    inst = next(ln for ln in lines if ln.startswith("month") and "installation 7" in ln)
    month_total = sum(r.spent for r in rows if r.window == "month")
    assert f"${month_total:.4f}" in inst and "$80.0000" in inst
    assert f"${80 - month_total:.4f}" in inst  # what is left of the cap


async def _now(store: Store) -> float:
    row = await store.db.fetchone("SELECT MAX(created_at) AS t FROM steps")
    assert row is not None
    return float(row["t"]) + 1


async def test_keep_or_revert_ends_on_a_cap_and_reverts_the_attempt_in_progress(
    ws: Workspace,
) -> None:
    async def propose(n: int, feedback: str) -> Proposal:
        if n == 1:
            await ws.edit("calc.py", "return a - b", "return a + b")  # fixes add: kept
            return Proposal(True, "m", Usage(1, 10, 5, 0.01), "add")
        # Half an attempt, then the next model call is refused.
        await ws.edit("calc.py", "return a + b\n\n\ndef mul", "return 0\n\n\ndef mul")
        raise CostCapReached(
            "the repository's daily spend cap is reached",
            scope="repository",
            subject="acme/calc",
            window="day",
            cap=0.01,
            spent=0.01,
        )

    result = await keep_or_revert(
        ws,
        propose=propose,
        score=lambda: correctness(ws),
        baseline=await correctness(ws),
        budget=budget(),
    )
    assert result.exit is ExitReason.COST_CAP and "daily spend cap" in result.detail
    assert [a.verdict for a in result.ledger.attempts] == ["kept"]
    text = await ws.read_file("calc.py")
    assert "return a + b" in text and "return 0" not in text


# --- a code loop ---------------------------------------------------------------------------------


@pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")
async def test_the_fix_loop_stops_mid_patch_with_its_reproduction_reported(
    tmp_path: Path, fake_model: FakeModel, sandbox_run_as: str | None
) -> None:
    # The test writer's model has no price (free, never refused); the patch model's first
    # action crosses the repository's cap, so its second is refused.
    config = fixrepo.loopwright_config() + "costs:\n  day_usd: 0.000001\n"
    repo = fixrepo.write_local_repo(tmp_path / "calc", config)
    settings = load_settings(
        data_dir=tmp_path / "data",
        model_base_url=fake_model.url,
        model_api_key="sk-test-" + "k" * 24,
        model_write_test="free",
        model_patch="priced",
        prices=PRICES,
        sandbox_user=sandbox_run_as,
    )
    fake_model.script("write_test", fixrepo.repro_answer())
    fake_model.script("patch", *fixrepo.RIGHT_FIX)
    issue = Issue(1, fixrepo.ISSUE_TITLE, fixrepo.ISSUE_BODY, "local")
    async with Runtime.open(settings, model=True) as rt:
        forge = DryRunForge("local/calc", issue=issue, repo_path=repo)
        result = await run_local(rt, "fix", forge.repo, forge, 1, repo_path=repo)
        data = result.as_dict()
        assert data["exit"] == "cost_cap", data["detail"]
        assert [c.step for c in fake_model.calls] == ["write_test", "patch"]
        comment = data["comment"]
        assert "stopped before a model call" in comment and "`cost_cap`" in comment
        assert "`costs.day_usd` in .github/loopwright.yml" in comment
        assert "**Reproduction:**" in comment  # what was done before the cap is reported
        assert "loopwright:needs-human" not in data["labels"] and forge.pull is None
        assert "+    return words[-1] if words else" not in data["diff"]
        assert data["usage"]["calls"] == 2 and data["usage"]["cost"] > 0.000001


# --- end to end ----------------------------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[Stack]:
    async with contextlib.AsyncExitStack() as stack:
        gh = await stack.enter_async_context(running_fake())
        gh.add_repo(
            "Codertocat/Hello-World",
            installation_id=1,
            labels=["bug", "enhancement", "question", "documentation"],
            collaborators={"Codertocat": "admin"},
        )
        gh.add_issue(
            "Codertocat/Hello-World", number=1, title="Crash", body="It crashes.", user="Codertocat"
        )
        settings = make_settings(gh, fake_model, tmp_path, cost_cap_installation_day_usd=0.0000001)
        yield await serve(stack, gh, fake_model, settings, "Codertocat/Hello-World")


async def test_served_triage_says_in_its_sticky_comment_that_the_cap_stopped_it(
    served: Stack,
) -> None:
    s = served
    s.model.script("triage", triage_answer("bug", summary="First reading"))
    opened = payload("issues/opened.15", installation={"id": 1})
    opened["issue"]["title"], opened["issue"]["body"] = "Crash", "It crashes."
    assert (await s.deliver("issues", opened))[0] == 202
    await s.settle()
    comment = payload("issue_comment/created.0", installation={"id": 1})
    comment["comment"]["body"] = "/loopwright triage"
    assert (await s.deliver("issue_comment", comment))[0] == 202
    await s.settle()

    [sticky] = s.issue().comments
    assert "First reading" not in sticky.body  # the triage section was replaced
    assert "stopped before a model call" in sticky.body and "`cost_cap`" in sticky.body
    assert "Installation 1's daily spend cap is reached" in sticky.body
    assert "LOOPWRIGHT_COST_CAP_INSTALLATION_DAY_USD" in sticky.body
    assert "frees up in about" in sticky.body
    assert len(s.model.calls_for("triage")) == 1
    runs = await s.store.list_runs()
    assert [(r["exit_reason"], r["installation_id"]) for r in runs] == [
        ("cost_cap", 1),
        ("done", 1),
    ]
    s.gh.assert_no_violations()
