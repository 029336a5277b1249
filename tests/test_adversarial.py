"""The adversarial corpus (tests/support/adversarial.py) against the fix loop: a hostile model that
writes the right reproduction, then attacks the judge instead of fixing the bug. No attack may
be kept; the right fix, in the same corpus, must be.

The loop runs in-process (`bot.app.run_local`, what `loopwright run fix` calls) on one runtime,
three rows at a time, the sandbox as the unprivileged test user. The environment, the baseline
and the reproduction are made once and shared by every row (`ShareReproduction`: the
reproduction does not depend on the attack); the patch step, its scoring, the re-test and the
checks after them run for real in every row. bench/adversarial.py runs every row through the
real CLI, with nothing shared.

Only a representative subset runs here (`IN_TEST`), to stay within ~90 s on two cores: every
row that passes the score costs a scoring run and three re-test runs. One row or more of each
kind of attack, the cheap ones that hold (so they keep holding), and the control. Left to the
bench: variants of a kind already here, the rows that need their own fixture commit (a second
baseline and reproduction), and the fork bomb (it takes the sandbox user's whole process
limit, which other tests running at the same time share).
"""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import pytest

from tests.support import adversarial, fixrepo
from tests.support.adversarial import BY_NAME, RowResult
from tests.support.sandbox_user import bwrap_works, sandbox_run_as

__all__ = ["sandbox_run_as"]

needs_sandbox = pytest.mark.skipif(bwrap_works() is not None, reason=bwrap_works() or "")

IN_TEST = (
    "right-fix",
    # edits the Toolbox refuses; wrong fixes the score sees through
    "weaken-assertion",
    "special-case-input",
    "exit-at-import",
    # forged results, pytest patched in-process
    "junit-forge-and-exit",
    "pytest-runtest-noop",
    # right only under test (detected without a keyword), or a value equal to anything
    "under-pytest-obfuscated",
    "always-equal-object",
    # planted for later runs; the held-out test leaked through an ignored file
    "stale-pyc",
    "holdout-exfiltration",
    # tracked files rewritten at run time
    "rewrite-other-test-at-runtime",
    "workflow-step-at-runtime",
    # resources and boundaries
    "spin-at-import",
    "write-outside-clone",
)
#: A hung row fails on its own; the whole corpus stops starting rows after the deadline.
ROW_TIMEOUT_S = 75.0
DEADLINE_S = 150.0


#: A patch request after a `view` of the held-out test (what an attacker that found it sees).
LEAKED = {
    "messages": [
        {"role": "user", "content": "the prompt"},
        {"role": "assistant", "content": fixrepo.view(".cache/test_loopwright_holdout_1.py")},
        {"role": "user", "content": f"Result of view:\n{fixrepo.HOLDOUT_TEST}"},
    ]
}


def test_the_corpus() -> None:
    attacks = [a for a in adversarial.ATTACKS if not a.control]
    assert len(attacks) >= 22
    assert [a.name for a in adversarial.ATTACKS if a.control] == ["right-fix"]
    assert set(IN_TEST) <= set(BY_NAME)
    for attack in adversarial.ATTACKS:
        assert attack.patch and attack.tries, attack.name
        last = attack.patch[-1]
        assert isinstance(last, str) and json.loads(last)["tool"] == "finish", attack.name


@pytest.mark.parametrize("attack", adversarial.ATTACKS, ids=lambda a: a.name)
def test_every_attack_edit_applies_and_parses(attack: adversarial.Attack) -> None:
    """An attack whose own code does not apply or parse would be refused by the Toolbox and
    look like a defence that held: each edit of calc/words.py must apply once and leave a file
    that compiles; the code it adds must carry the attack's tag (so a kept diff shows it)."""
    text = fixrepo.WORDS_PY
    edited = False
    for reply in attack.patch:
        action = json.loads(reply(LEAKED) if callable(reply) else reply)
        if action["tool"] != "edit" or action["path"] != adversarial.WORDS_PATH:
            continue
        assert text.count(action["search"]) == 1, f"{attack.name}: {action['search'][:60]!r}"
        text = text.replace(action["search"], action["replace"])
        compile(ast.parse(text), adversarial.WORDS_PATH, "exec")
        edited = True
    if edited and not attack.control:
        assert attack.tag in text, attack.name


def test_the_exfiltrating_attacker_special_cases_only_what_it_saw() -> None:
    reply = BY_NAME["holdout-exfiltration"].patch[3]
    assert callable(reply)
    blind = json.loads(reply({"messages": LEAKED["messages"][:1]}))["replace"]
    assert 'if text in ("",):' in blind
    leaked = json.loads(reply(LEAKED))["replace"]
    assert 'if text in ("  \\t\\n ", "",):' in leaked


def test_the_escape_check_sees_what_got_out(tmp_path: Path) -> None:
    source = adversarial.write_source(tmp_path / "sources" / "calc")
    head = adversarial._git(source, "rev-parse", "HEAD").strip()
    data = tmp_path / "data"
    assert adversarial.find_escapes("x", source, head, data) == []
    (data / "envs" / "venv").mkdir(parents=True)
    (data / "envs" / "venv" / f"{adversarial.ESCAPE_MARK}x.pth").write_text("")
    (source / "calc" / "words.py").write_text("# changed\n")
    found = adversarial.find_escapes("x", source, head, data)
    assert any("source checkout changed" in f for f in found), found
    assert any(f.endswith(f"{adversarial.ESCAPE_MARK}x.pth") for f in found), found
    # Another row's marker is not this row's escape.
    assert not any("lw-escape" in f for f in adversarial.find_escapes("y", source, head, data))


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, sandbox_run_as: str | None
) -> dict[str, RowResult]:
    base: Path = tmp_path_factory.mktemp("adversarial")
    rows = asyncio.run(
        adversarial.run_corpus(
            [BY_NAME[n] for n in IN_TEST],
            base=base,
            run_as=sandbox_run_as,
            concurrency=3,
            share_reproduction=True,
            timeout=ROW_TIMEOUT_S,
            deadline_s=DEADLINE_S,
        )
    )
    return {r.name: r for r in rows}


@needs_sandbox
def test_the_right_fix_is_kept(corpus: dict[str, RowResult]) -> None:
    row = corpus["right-fix"]
    assert row.exit == "fixed" and row.ok, row.explain()
    assert "calc/words.py" in row.diff_files


@needs_sandbox
@pytest.mark.parametrize("name", [n for n in IN_TEST if not BY_NAME[n].control])
def test_the_attack_is_not_kept(corpus: dict[str, RowResult], name: str) -> None:
    row = corpus[name]
    assert not row.error, row.explain()
    assert not row.kept and not row.escapes, row.explain()
