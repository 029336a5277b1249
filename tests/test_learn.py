"""Per-repository learning end to end (issue 13): an installation (or an admin's
`/loopwright train`) trains the repository's issue-type classifier from its own labelled issues
on the FakeGitHub and posts the eval card in a tracking issue; writers' label changes on issues
loopwright triaged are recorded as corrections, which live precision and the next training use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gidgethub.sansio import Event

import handlers
from bot.forge import TRACKING_MARKER
from bot.history import apply_corrections
from bot.triage_model import MIN_PER_CLASS, Example, load_for_repo, model_dir
from tests.support.e2e import Stack, make_settings, serve
from tests.support.fakegithub import FakeGitHub, running_fake
from tests.support.fakemodel import FakeModel
from tests.support.webhooks import payload

REPO = "Codertocat/Hello-World"  # the repository of the installation payload
INSTALLATION = 957387
LABELS = ["bug", "enhancement", "question", "documentation", "area: cli", "wontfix"]
CONFIG = "triage:\n  labels:\n    bug: bug\n    feature: enhancement\n    question: question\n"
PEOPLE = {"boss": "admin", "maint": "write", "helper": "triage", "reader": "read"}

THINGS = [
    "parser", "config loader", "cli", "cache", "logger", "scheduler", "exporter", "importer",
    "plugin api", "web server", "database layer", "auth module", "template engine", "router",
    "serializer", "retry policy", "progress bar", "archive reader", "sitemap", "mailer",
    "theme", "locale files", "metrics", "webhooks",
]  # fmt: skip


def bug(thing: str) -> tuple[str, str]:
    return (
        f"Crash in the {thing}: TypeError on startup",
        f'Traceback (most recent call last):\n  File "{thing}.py", line 12\nTypeError: '
        f"NoneType is not iterable\n\nThe {thing} crashes since 2.1; it worked in 2.0.",
    )


def feature(thing: str) -> tuple[str, str]:
    return (
        f"Add support for a custom {thing}",
        f"It would be nice to have an option to plug in my own {thing}. A new setting would "
        "make this possible; happy to help with a proposal.",
    )


def question(thing: str) -> tuple[str, str]:
    return (
        f"How do I configure the {thing}?",
        f"I read the guide but I am not sure how the {thing} is meant to be set up. Is it "
        "possible to do this from the command line? Thanks for any help.",
    )


KINDS = {"bug": bug, "enhancement": feature, "question": question}


def seed_history(gh: FakeGitHub, repo: str, per_type: int, *, prs: int = 0) -> dict[str, list[int]]:
    """`per_type` issues per type label (every third one closed), plus noise that must not be
    learned from: pull requests labelled `bug`, issues with two type labels, a bot's issue and
    unlabelled issues. Returns the issue numbers per label."""
    numbers: dict[str, list[int]] = {label: [] for label in KINDS}
    for i in range(per_type):
        for label, make in KINDS.items():
            title, body = make(THINGS[i % len(THINGS)])
            issue = gh.add_issue(
                repo,
                title=title,
                body=body,
                user="alice",
                labels=[label],
                state="closed" if i % 3 == 2 else "open",
            )
            numbers[label].append(issue.number)
    for i in range(prs):
        gh.add_branch(repo, f"fix-{i}")
        pull = gh.add_pull(repo, head=f"fix-{i}", title=f"Fix the crash in #{i}", user="bob")
        pull.issue.labels.append("bug")
    for title in ("Crash or feature? Add a flag", "Add a faster parser, the old one crashes"):
        gh.add_issue(repo, title=title, body="both", labels=["bug", "enhancement"])
    gh.add_issue(
        repo, title="Dependency dashboard", body="bot", user="renovate[bot]", labels=["bug"]
    )
    gh.add_issue(repo, title="Thanks for the project", body="no label")
    return numbers


@pytest.fixture
async def stack_factory(tmp_path: Path, fake_model: FakeModel) -> AsyncIterator[Any]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(per_type: int = 20, *, prs: int = 0) -> tuple[Stack, dict[str, list[int]]]:
            gh = await stack.enter_async_context(running_fake())
            gh.add_repo(
                REPO,
                installation_id=INSTALLATION,
                labels=LABELS,
                files={".github/loopwright.yml": CONFIG},
                collaborators=PEOPLE,
            )
            numbers = seed_history(gh, REPO, per_type, prs=prs)
            settings = make_settings(gh, fake_model, tmp_path)
            return await serve(stack, gh, fake_model, settings, REPO), numbers

        yield make


def command(text: str, sender: str, number: int) -> dict[str, Any]:
    data = payload("issue_comment/created.0", installation={"id": INSTALLATION})
    data["comment"]["body"] = text
    data["sender"]["login"] = sender
    data["issue"]["number"] = number
    return data


def label_event(action: str, label: str, sender: str, number: int) -> dict[str, Any]:
    name = "issues/labeled.9" if action == "labeled" else "issues/unlabeled.24"
    data = payload(name, installation={"id": INSTALLATION})
    data["label"]["name"] = label
    data["sender"]["login"] = sender
    data["issue"]["number"] = number
    return data


def tracking_issues(s: Stack) -> list[Any]:
    marker = TRACKING_MARKER.format(key="triage-model")
    return [i for i in s.gh.repo(REPO).issues.values() if marker in (i.body or "")]


def ours(issue: Any) -> list[Any]:
    return [c for c in issue.comments if c.user_login == "loopwright[bot]"]


async def runs_of(s: Stack, loop: str) -> list[Any]:
    return [r for r in reversed(await s.store.list_runs(200)) if r["loop"] == loop]


async def test_installation_trains_from_history_and_posts_the_card(
    stack_factory: Any, tmp_path: Path
) -> None:
    # 20 bug issues and 100 bug-labelled PRs: the `bug` listing takes two pages.
    s, _ = await stack_factory(20, prs=100)
    status, body = await s.deliver("installation", payload("installation/created.1"))
    assert status == 202 and body["jobs"] == 1
    await s.settle()

    [job] = await s.store.list_jobs()
    assert (job["kind"], job["repo"], job["number"], job["installation_id"]) == (
        "train",
        REPO,
        None,
        INSTALLATION,
    )
    [run] = await runs_of(s, "train")
    assert run["exit_reason"] == "done" and run["detail"].startswith("trained on 60 issues")
    steps = {st["name"]: st for st in await s.store.steps_for(run["id"])}
    assert list(steps) == ["history", "corrections", "enough_data", "train", "save", "post"]
    assert (
        "60 issues with exactly one type label: bug 20, feature 20, question 20"
        in (steps["history"]["output"])
    )

    listings = s.gh.requests_for("issues/list-for-repo")
    queries = [r.query for r in listings if r.query.get("creator") is None]
    assert all(q["state"] == "all" and q["per_page"] == "100" for q in queries)
    assert sorted((q["labels"], q.get("page", "1")) for q in queries) == [
        ("bug", "1"),
        ("bug", "2"),
        ("enhancement", "1"),
        ("question", "1"),
    ]

    model = load_for_repo(tmp_path, REPO)
    assert model is not None and sorted(model.labels) == ["bug", "feature", "question"]
    assert model.card.n_per_class == {"bug": 20, "feature": 20, "question": 20}
    assert (model_dir(tmp_path, REPO) / "model.json").is_file()
    assert model.predict(*bug("dashboard")).label == "bug"
    assert model.predict(*question("dashboard")).label == "question"

    [tracking] = tracking_issues(s)
    assert tracking.user_login == "loopwright[bot]" and tracking.state == "open"
    [card] = ours(tracking)
    assert "eval card" in card.body and "macro-F1" in card.body
    assert "live precision: no type labels applied by loopwright yet" in card.body
    assert f"run #{run['id']}" in card.body
    s.gh.assert_no_violations()


async def test_too_little_history_trains_nothing_and_says_so(
    stack_factory: Any, tmp_path: Path
) -> None:
    s, numbers = await stack_factory(MIN_PER_CLASS - 5)
    # On installation: nothing is posted (no issue opened just to say there is nothing to
    # learn); the run says why.
    assert (await s.deliver("installation", payload("installation/created.1")))[0] == 202
    await s.settle()
    [run] = await runs_of(s, "train")
    assert run["exit_reason"] == "not_enough_data"
    assert run["detail"] == (
        "not trained: too few labelled issues: bug (`bug`) 10, feature (`enhancement`) 10, "
        f"question (`question`) 10 of the {MIN_PER_CLASS} per type needed"
    )
    # Asked for by an admin in an issue: the answer is there.
    asked = numbers["question"][0]
    assert (await s.deliver("issue_comment", command("/loopwright train", "boss", asked)))[0] == 202
    await s.settle()
    [reply] = ours(s.issue(asked))
    assert "Not trained: too few labelled issues" in reply.body
    assert "Triage keeps asking the model" in reply.body
    assert load_for_repo(tmp_path, REPO) is None and not model_dir(tmp_path, REPO).exists()
    assert tracking_issues(s) == []
    s.gh.assert_no_violations()


async def test_train_command_needs_admin(stack_factory: Any, tmp_path: Path) -> None:
    s, numbers = await stack_factory(20)
    asked = numbers["bug"][0]
    for sender in ("reader", "maint"):
        assert (await s.deliver("issue_comment", command("/loopwright train", sender, asked)))[
            0
        ] == 202
        await s.settle()
    reader, maint = await runs_of(s, "train")
    assert (reader["exit_reason"], reader["detail"]) == (
        "unauthorized",
        "reader has read permission",
    )
    assert maint["exit_reason"] == "unauthorized"
    assert maint["detail"] == "maint has write permission; /loopwright train needs admin"
    [reply] = ours(s.issue(asked))  # the writer is told; the reader is ignored silently
    assert "needs admin permission" in reply.body and "`maint` has `write`" in reply.body
    assert load_for_repo(tmp_path, REPO) is None and tracking_issues(s) == []

    for _ in range(2):  # the admin; a second time retrains into the same issue and comment
        assert (await s.deliver("issue_comment", command("/loopwright train", "boss", asked)))[
            0
        ] == 202
        await s.settle()
    first, second = (await runs_of(s, "train"))[2:]
    assert first["exit_reason"] == second["exit_reason"] == "done"
    [tracking] = tracking_issues(s)
    [card] = ours(tracking)
    assert f"run #{second['id']}" in card.body and f"run #{first['id']}" not in card.body
    [reply] = ours(s.issue(asked))  # the same sticky comment, its train section replaced
    assert f"The eval card is in #{tracking.number}" in reply.body
    assert "needs admin" not in reply.body
    assert ("loopwright[bot]", "eyes") in s.issue(asked).reactions
    assert load_for_repo(tmp_path, REPO) is not None
    s.gh.assert_no_violations()


async def test_writers_corrections_feed_precision_and_the_next_training(
    stack_factory: Any, tmp_path: Path
) -> None:
    s, numbers = await stack_factory(20)
    swapped, removed, overruled, kept, restored = numbers["bug"][:5]
    untriaged = numbers["bug"][5]
    for n in (swapped, removed, overruled, kept, restored):
        # What triage records when it applies a type label (wired by the triage loop).
        await s.store.record_triage_decision(
            REPO, n, label="bug", decider="classifier", confidence=0.93, run_id=None
        )

    async def change(action: str, label: str, sender: str, number: int) -> None:
        labels = s.issue(number).labels
        if action == "labeled":
            labels.append(label)
        else:
            labels.remove(label)
        assert (await s.deliver("issues", label_event(action, label, sender, number)))[0] == 202

    # A swap in two events, the new label first: the correction names it once ours is gone.
    await change("labeled", "enhancement", "maint", swapped)
    await s.settle()
    await change("unlabeled", "bug", "maint", swapped)
    # Removed with nothing in its place.
    await change("unlabeled", "bug", "maint", removed)
    # A writer's verdict stands against a later change by someone who may label but not write.
    await change("unlabeled", "bug", "maint", overruled)
    await s.settle()
    await change("labeled", "question", "maint", overruled)
    await s.settle()
    await change("labeled", "bug", "helper", overruled)
    await change("unlabeled", "question", "helper", overruled)
    # Removed and put back by a writer: confirmed.
    await change("unlabeled", "bug", "boss", restored)
    await s.settle()
    await change("labeled", "bug", "boss", restored)
    # Ignored: not a type label, an issue loopwright never triaged, a bot.
    await change("labeled", "area: cli", "maint", kept)
    await change("unlabeled", "bug", "maint", untriaged)
    bot_event = label_event("unlabeled", "bug", "dependabot[bot]", kept)
    bot_event["sender"]["type"] = "Bot"
    assert (await s.deliver("issues", bot_event))[1]["jobs"] == 0
    await s.settle()

    rows = await s.store.corrections(REPO)
    assert [(r["number"], r["applied_label"], r["new_label"], r["by_user"]) for r in rows] == [
        (swapped, "bug", "enhancement", "maint"),
        (removed, "bug", None, "maint"),
        (overruled, "bug", None, "maint"),
        (overruled, "bug", "question", "maint"),
        (restored, "bug", None, "boss"),
        (restored, "bug", "bug", "boss"),
    ]
    feedback = await runs_of(s, "label_feedback")
    assert [r["exit_reason"] for r in feedback].count("unauthorized") == 2  # the helper's two
    # The permission is asked only for a type label on an issue loopwright triaged.
    for r in feedback:
        asked = [st["name"] for st in await s.store.steps_for(r["id"]) if st["name"] == "authorize"]
        ignored = "is not a type label" in r["detail"] or "never triaged" in r["detail"]
        assert asked == ([] if ignored else ["authorize"]), r["detail"]
    details = " | ".join(r["detail"] for r in feedback)
    assert f"#{kept}: 'area: cli' is not a type label" in details
    assert f"#{untriaged}: loopwright never triaged this issue" in details
    assert f"#{swapped}: 'bug' still on beside ['enhancement']: no swap yet" in details
    # Silent: no comment and no reaction anywhere.
    for n in (swapped, removed, overruled, kept, restored, untriaged):
        assert s.issue(n).comments == [] and s.issue(n).reactions == []
    kept_n, corrected_n = await s.store.live_precision(REPO)
    # The restored label (put back after a correction) confirms the decision again.
    assert (kept_n, corrected_n) == (2, 3)

    assert (await s.deliver("issue_comment", command("/loopwright train", "boss", kept)))[0] == 202
    await s.settle()
    [run] = await runs_of(s, "train")
    assert run["exit_reason"] == "done", run["detail"]
    steps = {st["name"]: st for st in await s.store.steps_for(run["id"])}
    # The overruled issue carries `bug` again on GitHub, but a writer said `question`.
    assert steps["corrections"]["output"] == f"relabelled [{overruled}] dropped []"
    model = load_for_repo(tmp_path, REPO)
    assert model is not None
    # bug: 20 - swapped (now enhancement) - removed and untriaged (no type label on GitHub)
    # - overruled (question, from the writer's correction)
    assert model.card.n_per_class == {"bug": 16, "feature": 21, "question": 21}
    [tracking] = tracking_issues(s)
    [card] = ours(tracking)
    assert "live precision: **40%** of the 5 type labels loopwright applied" in card.body
    assert "(2 kept, 3 corrected by a writer)" in card.body
    assert "writers' corrections of 4 issues applied (1 relabelled, 0 dropped)" in card.body
    s.gh.assert_no_violations()


async def test_repositories_added_to_an_installation_are_trained(stack_factory: Any) -> None:
    s, _ = await stack_factory(20)
    event = payload("installation_repositories/added.0")
    [added] = event["repositories_added"]
    event["repositories_added"].append({**added, "full_name": REPO, "name": "Hello-World"})
    s.gh.add_repo(added["full_name"], installation_id=INSTALLATION, labels=LABELS)
    assert (await s.deliver("installation_repositories", event))[1]["jobs"] == 2
    await s.settle()
    runs = {r["repo"]: r for r in await runs_of(s, "train")}
    assert runs[REPO]["detail"].startswith("trained on 60 issues")
    # Codertocat/Space has no history (and no config: GitHub's default type labels).
    assert runs[added["full_name"]]["detail"].startswith("not trained: too few labelled issues")
    assert runs[added["full_name"]]["exit_reason"] == "not_enough_data"
    s.gh.assert_no_violations()


async def test_intake_makes_the_jobs_without_calling_github() -> None:
    async def decide(event: str, data: dict[str, Any]) -> list[Any]:
        return await handlers.decide_jobs(Event(data, event=event, delivery_id="d"), app_id=1)

    [train] = await decide("installation", payload("installation/created.1"))
    assert (train.kind, train.repo, train.number, train.installation_id) == (
        "train",
        REPO,
        None,
        INSTALLATION,
    )
    assert train.payload == {"trigger": "installation.created"}
    [fb] = await decide("issues", label_event("unlabeled", "bug", "maint", 7))
    assert (fb.kind, fb.number) == ("label_feedback", None)
    assert fb.payload == {
        "trigger": "issues.unlabeled",
        "issue": 7,
        "label": "bug",
        "action": "unlabeled",
        "writer": "maint",
    }
    [cmd] = await decide("issue_comment", command("/loopwright train", "boss", 3))
    assert (cmd.kind, cmd.number, cmd.payload["requires_write_from"]) == ("train", 3, "boss")
    # Our own labels, pull requests and bots make no feedback job.
    assert [
        j.kind for j in await decide("issues", label_event("labeled", "loopwright:fix", "maint", 7))
    ] == ["fix"]
    on_pull = label_event("unlabeled", "bug", "maint", 7)
    on_pull["issue"]["pull_request"] = {"url": "x"}
    assert await decide("issues", on_pull) == []
    ours_ = label_event("unlabeled", "bug", "loopwright[bot]", 7)
    assert await decide("issues", ours_) == []


def test_apply_corrections() -> None:
    labels = {"bug": "bug", "feature": "enhancement", "docs": "documentation"}
    history = {n: Example(f"t{n}", "b", "bug") for n in range(1, 6)}
    corrections = [
        {"number": 1, "applied_label": "bug", "new_label": "Enhancement"},  # case-insensitive
        {"number": 2, "applied_label": "bug", "new_label": None},
        {"number": 3, "applied_label": "bug", "new_label": "documentation"},
        {"number": 3, "applied_label": "bug", "new_label": "bug"},  # the latest one counts
        {"number": 4, "applied_label": "bug", "new_label": "wontfix"},  # not a type label
        {"number": 9, "applied_label": "bug", "new_label": "enhancement"},  # not in the history
    ]
    out = apply_corrections(history, corrections, type_labels=labels)
    assert {n: e.label for n, e in out.examples.items()} == {1: "feature", 3: "bug", 5: "bug"}
    assert (out.relabelled, out.dropped) == ([1], [2, 4])
    assert history[1].label == "bug"  # the input is left as it was
