"""A repository's own labelled issues, as training examples for its issue-type classifier.

The history is what maintainers already decided: every issue (open or closed, never a pull
request, never one a bot opened) that carries exactly one of the repository's type labels
(`triage.labels`: type → label name). The example's label is the TYPE (`bug`, `feature`, …), not
the label's name. The writers' corrections of the type labels loopwright applied
(`Store.corrections`) then override what the labels say (`apply_corrections`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.github import RepoClient
from bot.triage_model import Example

#: The issues listing, open and closed, 100 a page (GitHub's maximum), newest first.
ISSUES_URL = "/repos/{owner}/{repo}/issues{?state,labels,per_page}"

#: A body is cut to this many characters: the classifier reads the first 4 000 (and scans
#: 20 000 for its structure features), and thousands of whole bodies must fit in a worker.
MAX_BODY_CHARS = 20_000


def type_of_label(type_labels: Mapping[str, str]) -> dict[str, str]:
    """label name (case-folded: GitHub's label names are case-insensitive) → type."""
    return {name.casefold(): kind for kind, name in type_labels.items()}


def _by_bot(item: Mapping[str, Any]) -> bool:
    user = item.get("user") or {}
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


async def labelled_issues(
    client: RepoClient, type_labels: Mapping[str, str], *, max_issues: int = 5000
) -> dict[int, Example]:
    """issue number → Example, for the issues that carry exactly one type label.

    One listing per type label (`labels=<name>`, `state=all`), so a repository's unlabelled
    issues and its pull requests cost no pages; each listing is paginated by gidgethub and
    stops after `max_issues // len(type_labels)` issues (newest first), which bounds the
    requests at about `max_issues / 100` and keeps the types' shares of the budget equal. An
    item's `labels` are all its labels, so an issue found under one type label is still seen
    to carry another. (A label name with a comma cannot be a `labels` filter: then one
    unfiltered listing of at most `max_issues` issues is read instead.)
    """
    types = type_of_label(type_labels)
    names = list(dict.fromkeys(type_labels.values()))
    if not names:
        return {}
    if any("," in name for name in names):
        listings: list[tuple[str | None, int]] = [(None, max_issues)]
    else:
        share = max(1, max_issues // len(names))
        listings = [(name, share) for name in names]
    found: dict[int, Example] = {}
    seen: set[int] = set()
    for label, cap in listings:
        url_vars: dict[str, Any] = {"state": "all", "per_page": 100}
        if label is not None:
            url_vars["labels"] = label
        read = 0
        async for item in client.getiter(ISSUES_URL, url_vars):
            if item.get("pull_request"):
                continue  # the issues API lists pull requests too
            read += 1
            number = int(item["number"])
            if number not in seen:
                seen.add(number)
                kinds = {
                    types[n]
                    for n in (str(lb.get("name", "")).casefold() for lb in item.get("labels") or [])
                    if n in types
                }
                if len(kinds) == 1 and not _by_bot(item):
                    found[number] = Example(
                        title=str(item.get("title") or ""),
                        body=str(item.get("body") or "")[:MAX_BODY_CHARS],
                        label=kinds.pop(),
                    )
            if read >= cap:
                break
    return found


@dataclass(frozen=True)
class CorrectedHistory:
    examples: dict[int, Example]
    #: Issues whose type a writer's correction changed, and those it removed from training.
    relabelled: list[int]
    dropped: list[int]


def apply_corrections(
    examples_by_number: Mapping[int, Example],
    corrections: Iterable[Mapping[str, Any]],
    *,
    type_labels: Mapping[str, str],
) -> CorrectedHistory:
    """The history with the writers' corrections applied: the latest correction of an issue
    (corrections come oldest first, as `Store.corrections` returns them) decides its type.

    - `new_label` a type label: the issue takes that type (also when it names the label
      loopwright applied: a writer who put it back confirmed it);
    - `new_label` None (removed, nothing in its place), or no longer a type label in the
      config: the issue is dropped from training;
    - an issue that is not in the history (it carries no type label now, or several) stays
      out: there is no agreed type to train on.
    """
    types = type_of_label(type_labels)
    latest: dict[int, Mapping[str, Any]] = {}
    for row in corrections:
        latest[int(row["number"])] = row
    out = dict(examples_by_number)
    relabelled: list[int] = []
    dropped: list[int] = []
    for number, row in sorted(latest.items()):
        example = out.get(number)
        if example is None:
            continue
        new = row.get("new_label")
        kind = types.get(str(new).casefold()) if new else None
        if kind is None:
            del out[number]
            dropped.append(number)
        elif kind != example.label:
            out[number] = replace(example, label=kind)
            relabelled.append(number)
    return CorrectedHistory(out, relabelled, dropped)
