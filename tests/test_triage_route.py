"""Routing the issue type by measurement, end to end: a repository with a trained classifier
whose eval card clears the bar gets its type from the classifier with no model call; a weak card,
a low confidence or `type_model: model` send the issue to the model; the comment says which."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import running_fake
from tests.support.fakemodel import FakeModel, triage_answer
from tests.support.webhooks import payload

pytest.importorskip("sklearn", reason="training needs the `learn` extra (scikit-learn)")

from bot import triage_model

REPO = "Codertocat/Hello-World"
LABELS = ["bug", "enhancement", "question", "needs-info"]

_BUG = [
    "crashes with a traceback when I open the file",
    "TypeError raised after upgrading, worked in the last release",
    "segfault on startup since version 2",
    "wrong result returned when the input is empty",
    "exception in the parser on a quoted field",
]
_FEATURE = [
    "please add an option to export the report as JSON",
    "it would be great to support reading from stdin",
    "feature request: a setting to change the separator",
    "could you provide an API for streaming rows",
    "add support for configuration through environment variables",
]
_QUESTION = [
    "how do I read only some of the columns?",
    "what is the recommended way to handle large files?",
    "is it possible to skip the header line?",
    "why does the documentation say the default is a comma?",
    "how can I use this together with pandas?",
]


def _history(
    seed: int = 3, per_class: int = 24, mislabelled: float = 0.0
) -> list[triage_model.Example]:
    """Issues of three kinds; a share `mislabelled` of them carry a random label instead."""
    rng = random.Random(seed)
    kinds = (("bug", _BUG), ("feature", _FEATURE), ("question", _QUESTION))
    out = []
    for label, phrases in kinds:
        for i in range(per_class):
            a, b = rng.sample(phrases, 2)
            given = rng.choice([k for k, _ in kinds]) if rng.random() < mislabelled else label
            out.append(triage_model.Example(f"{a} ({i})", f"{b}. Details, number {i}.", given))
    return out


def _opened(number: int, title: str, body: str) -> dict[str, Any]:
    data = payload("issues/opened.15", installation={"id": 1})
    data["issue"]["number"], data["issue"]["title"], data["issue"]["body"] = number, title, body
    return data


@pytest.fixture
async def stack_for(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(config: str, *, trained: bool = True, mislabelled: float = 0.0) -> Stack:
            gh = await stack.enter_async_context(running_fake())
            gh.add_repo(
                REPO,
                installation_id=1,
                labels=LABELS,
                files={".github/loopwright.yml": config},
                collaborators={"Codertocat": "admin"},
            )
            settings = make_settings(gh, fake_model, tmp_path / "data")
            if trained:
                history = _history(mislabelled=mislabelled)
                clf, _ = triage_model.train(history, source="test", folds=3)
                clf.save(triage_model.model_dir(settings.data_dir, REPO))
            return await serve(stack, gh, fake_model, settings, REPO)

        yield make


async def _triage(s: Stack, number: int, title: str, body: str) -> Any:
    s.gh.add_issue(REPO, number=number, title=title, body=body, user="octo")
    assert (await s.deliver("issues", _opened(number, title, body)))[0] == 202
    await s.settle()
    return s.issue(number)


async def test_a_trained_classifier_decides_with_no_model_call(stack_for: Any) -> None:
    s: Stack = await stack_for("triage:\n  classifier_min_f1: 0.5\n")
    issue = await _triage(
        s, 1, "please add an option to export the report as JSON", "it would be great."
    )
    assert s.model.calls == [], "the classifier decided: no tokens"
    assert issue.labels == ["enhancement"]
    [comment] = issue.comments
    assert "| Type | feature |" in comment.body
    assert "Decided by | the repository's classifier (macro-F1" in comment.body
    # No model was asked: the summary is the title, said to be so; no severity is claimed.
    assert "the issue's title" in comment.body and "Severity" not in comment.body
    [run] = await s.store.list_runs()
    assert run["model_calls"] == 0
    steps = {st["name"]: st for st in await s.store.steps_for(run["id"])}
    assert steps["route_type"]["verdict"] == "classifier"
    decision = await s.store.triage_decision(REPO, 1)
    assert decision is not None and decision["label"] == "enhancement"
    assert decision["decider"] == "classifier"


async def test_a_card_below_the_bar_leaves_the_type_to_the_model(stack_for: Any) -> None:
    # A history where half the labels are noise: its card cannot clear 0.9.
    s: Stack = await stack_for("triage:\n  classifier_min_f1: 0.9\n", mislabelled=0.6)
    s.model.script("triage", triage_answer("question", "low", "none", [], "Asks about export"))
    issue = await _triage(s, 2, "please add an option to export the report as JSON", "thanks")
    assert len(s.model.calls_for("triage")) == 1
    assert issue.labels == ["question"]
    assert "Decided by | the model `scripted-small`" in issue.comments[0].body
    assert "below triage.classifier_min_f1" in issue.comments[0].body


async def test_type_model_model_never_asks_the_classifier(stack_for: Any) -> None:
    s: Stack = await stack_for("triage:\n  type_model: model\n")
    s.model.script("triage", triage_answer("bug", "low", "none", [], "Export crashes"))
    issue = await _triage(s, 3, "please add an option to export the report as JSON", "thanks")
    assert issue.labels[0] == "bug" and len(s.model.calls) == 1
    [run] = await s.store.list_runs()
    steps = {st["name"]: st for st in await s.store.steps_for(run["id"])}
    assert steps["route_type"]["output"] == "triage.type_model is `model`"


async def test_no_classifier_means_the_model_and_the_comment_says_why(stack_for: Any) -> None:
    s: Stack = await stack_for("triage: {}\n", trained=False)
    s.model.script("triage", triage_answer("feature", "low", "none", [], "Wants JSON export"))
    issue = await _triage(s, 4, "please add an option to export the report as JSON", "thanks")
    assert issue.labels == ["enhancement"]
    assert "no classifier is trained for this repository" in issue.comments[0].body
