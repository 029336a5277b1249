"""`loopwright eval triage`: every issue-type decider scored on the same labelled issues.

Candidates (`--candidates`, comma-separated):

- ``keywords``: fixed keyword rules (bug words, then question words, else feature) — the floor;
- ``classifier``: the trained classifier (`bot.triage_model`), scored out-of-fold by stratified
  K-fold cross-validation on the dataset itself, or, with ``--train CSV``, trained on that file
  and scored on the whole dataset; its latency is `TypeClassifier.predict` on the exported model
  (the classification itself, 0 tokens);
- ``embedded``: the triage loop (`loops.triage`, dry-run, no repository classifier) on the
  embedded model;
- ``model:NAME``: the triage loop on the configured OpenAI-compatible endpoint with the triage
  step's model set to NAME (``LOOPWRIGHT_MODEL_BASE_URL`` and the key must be set).

Model candidates cost seconds and tokens per issue, so they run on a stratified sample of
``--model-limit`` issues (by label); every candidate is then scored on the issues all of them
decided, so the rows compare like with like. The table: macro-F1 and per-class F1, accuracy,
tokens per issue, latency p50/p95 (ms per issue) and cost. A model reply outside the dataset's
labels counts as wrong ("invalid" when it gave none).
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.triage_model import Example

_QUESTION = re.compile(r"\?|\bhow\b", re.IGNORECASE)
_BUG = re.compile(r"error|crash|exception|fail|bug", re.IGNORECASE)

Progress = Callable[[str, int, int], None]


def keyword_type(title: str, body: str) -> str:
    """Title first (it is what the author chose to say), then the body."""
    for text in (title, body):
        if _BUG.search(text):
            return "bug"
        if _QUESTION.search(text):
            return "question"
    return "feature"


@dataclass
class Scores:
    n: int
    accuracy: float
    macro_f1: float
    #: label → (precision, recall, F1)
    per_class: dict[str, tuple[float, float, float]]
    confusion: dict[str, Counter[str]]


def score(pairs: Iterable[tuple[str, str]], classes: Sequence[str]) -> Scores:
    """Accuracy, macro-F1 over `classes` and the confusion of (truth, predicted) pairs."""
    confusion: dict[str, Counter[str]] = {c: Counter() for c in classes}
    for truth, pred in pairs:
        confusion.setdefault(truth, Counter())[pred] += 1
    n = sum(sum(c.values()) for c in confusion.values())
    correct = sum(confusion[c][c] for c in confusion)
    per_class: dict[str, tuple[float, float, float]] = {}
    for c in classes:
        tp = confusion[c][c]
        predicted = sum(row[c] for row in confusion.values())
        actual = sum(confusion[c].values())
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        per_class[c] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    macro = statistics.fmean(f for _, _, f in per_class.values()) if per_class else 0.0
    return Scores(n, correct / n if n else 0.0, macro, per_class, confusion)


@dataclass
class Decision:
    predicted: str
    ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


@dataclass
class CandidateResult:
    name: str
    about: str
    #: Dataset index → decision.
    decisions: dict[int, Decision] = field(default_factory=dict)
    note: str = ""


def stratified_sample(labels: Sequence[str], n: int, seed: int) -> list[int]:
    """`n` indices spread as evenly as the labels allow (a short label hands on its share)."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    for idx in by_label.values():
        rng.shuffle(idx)
    quota = dict.fromkeys(by_label, 0)
    remaining = min(n, len(labels))
    while remaining:
        open_labels = [k for k in sorted(by_label) if quota[k] < len(by_label[k])]
        share, extra = divmod(remaining, len(open_labels))
        lucky = set(rng.sample(open_labels, extra))
        for k in open_labels:
            add = min(share + (k in lucky), len(by_label[k]) - quota[k])
            quota[k] += add
            remaining -= add
    return sorted(i for k in by_label for i in by_label[k][: quota[k]])


# --- candidates -----------------------------------------------------------------------------------


def run_keywords(examples: Sequence[Example]) -> CandidateResult:
    out = CandidateResult("keywords", "keyword rules (bug words, question words, else feature)")
    for i, ex in enumerate(examples):
        started = time.perf_counter()
        label = keyword_type(ex.title, ex.body)
        out.decisions[i] = Decision(label, (time.perf_counter() - started) * 1000)
    return out


def run_classifier(
    examples: Sequence[Example],
    *,
    train_examples: Sequence[Example] | None,
    folds: int,
    seed: int,
    progress: Progress | None = None,
) -> CandidateResult:
    """Out-of-fold decisions (or decisions of a model trained on `train_examples`), and the
    exported model's `predict` latency on every issue."""
    from bot import triage_model as tm

    spec = tm.DEFAULT
    if progress:
        progress("classifier: tokenising", 0, len(examples))
    if train_examples is None:
        docs = tm.tokenize_all(examples, spec.features)
        y = [ex.label for ex in examples]
        if progress:
            progress(f"classifier: {folds}-fold cross-validation", 0, len(examples))
        cv = tm.cross_validate(docs, y, spec, tm.stratified_splits(y, folds, seed))
        oof = [cv.labels[int(k)] for k in cv.proba.argmax(axis=1)]
        card = tm.make_card(cv, source="eval", folds=folds, spec=spec)
        model = tm.fit(docs, y, spec).export(cv.temperature, card)
        about = f"trained classifier, {folds}-fold cross-validated on the dataset"
    else:
        if progress:
            progress(f"classifier: training on {len(train_examples)} issues", 0, len(examples))
        model, _card = tm.train(train_examples, source="eval --train", folds=folds, seed=seed)
        oof = []
        about = f"trained classifier, trained on a separate file ({len(train_examples)} issues)"
    out = CandidateResult("classifier", about)
    for i, ex in enumerate(examples):
        started = time.perf_counter()
        prediction = model.predict(ex.title, ex.body)
        ms = (time.perf_counter() - started) * 1000
        out.decisions[i] = Decision(oof[i] if oof else prediction.label, ms)
        if progress and (i % 50 == 0 or i + 1 == len(examples)):
            progress("classifier: timing predict()", i + 1, len(examples))
    return out


async def run_model_candidate(
    name: str,
    examples: Sequence[Example],
    indices: Sequence[int],
    *,
    model: str | None,
    progress: Progress | None = None,
) -> CandidateResult:
    """The triage loop in dry-run on each issue (no repository classifier: the model decides)."""
    from bot.app import Runtime, run_local
    from bot.forge import DryRunForge, Issue
    from bot.jobs import LoopName
    from bot.model import ModelError
    from bot.settings import load_settings
    from loops.engine import ExitReason

    about = "triage loop, embedded model" if model is None else f"triage loop, endpoint {model}"
    out = CandidateResult(name, about)
    errors = 0
    with tempfile.TemporaryDirectory(prefix="loopwright-eval-") as tmp:
        overrides: dict[str, Any] = {
            "data_dir": Path(tmp) / "data",
            "database_url": f"sqlite:///{Path(tmp) / 'runs.db'}",
        }
        if model is None:
            overrides["model_base_url"] = ""
        else:
            overrides["model_triage"] = model
        settings = load_settings(**overrides)
        async with Runtime.open(settings, model=True) as rt:
            for done, i in enumerate(indices, 1):
                ex = examples[i]
                issue = Issue(number=done, title=ex.title, body=ex.body, author="dataset")
                forge = DryRunForge("eval/dataset", issue=issue)
                started = time.perf_counter()
                try:
                    local = await run_local(rt, LoopName.TRIAGE, forge.repo, forge, done)
                except ModelError as exc:
                    errors += 1
                    out.note = f"{errors} unavailable ({exc})"
                    continue
                ms = (time.perf_counter() - started) * 1000
                o = local.outcome
                predicted = "invalid"
                if o.exit is ExitReason.DONE:
                    predicted = str(o.posted.get("result", {}).get("type") or "invalid")
                u = o.usage
                out.decisions[i] = Decision(
                    predicted, ms, u.prompt_tokens, u.completion_tokens, u.cost
                )
                if progress:
                    progress(name, done, len(indices))
    return out


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    about: str
    scores: Scores
    tokens_per_issue: float
    p50_ms: float
    p95_ms: float
    cost: float
    n_decided: int
    note: str
    #: Macro-F1 over every issue this candidate decided (not only the common ones).
    macro_f1_all: float = 0.0


@dataclass
class EvalReport:
    dataset: str
    n_dataset: int
    classes: list[str]
    n_common: int
    rows: list[Row]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "issues": self.n_dataset,
            "scored_on": self.n_common,
            "classes": self.classes,
            "candidates": [
                {
                    "name": r.name,
                    "about": r.about,
                    "macro_f1": round(r.scores.macro_f1, 4),
                    "accuracy": round(r.scores.accuracy, 4),
                    "per_class_f1": {c: round(v[2], 4) for c, v in r.scores.per_class.items()},
                    "tokens_per_issue": round(r.tokens_per_issue, 1),
                    "latency_ms_p50": round(r.p50_ms, 3),
                    "latency_ms_p95": round(r.p95_ms, 3),
                    "cost_usd": round(r.cost, 6),
                    "decided": r.n_decided,
                    "macro_f1_all_decided": round(r.macro_f1_all, 4),
                    "note": r.note,
                }
                for r in self.rows
            ],
        }

    def to_markdown(self) -> str:
        head = ["candidate", "macro-F1", *(f"F1 {c}" for c in self.classes), "accuracy"]
        head += ["tokens/issue", "p50 ms", "p95 ms", "cost $"]
        lines = [
            f"## triage eval — {self.dataset}: {self.n_dataset} issues, all candidates scored "
            f"on the {self.n_common} every one decided",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for r in self.rows:
            cells = [r.name, f"{r.scores.macro_f1:.3f}"]
            cells += [f"{r.scores.per_class[c][2]:.3f}" for c in self.classes]
            cells += [f"{r.scores.accuracy:.3f}", f"{r.tokens_per_issue:.0f}"]
            cells += [f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}", f"{r.cost:.4f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for r in self.rows:
            note = f" — {r.note}" if r.note else ""
            lines.append(
                f"- `{r.name}`: {r.about}; macro-F1 {r.macro_f1_all:.3f} on all "
                f"{r.n_decided} it decided{note}"
            )
        return "\n".join(lines) + "\n"


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_report(
    dataset: str, examples: Sequence[Example], results: Sequence[CandidateResult]
) -> EvalReport:
    classes = sorted({ex.label for ex in examples})
    common = set(range(len(examples)))
    for r in results:
        common &= set(r.decisions)
    rows: list[Row] = []
    for r in results:
        picked = [r.decisions[i] for i in sorted(common)]
        scores = score(((examples[i].label, r.decisions[i].predicted) for i in common), classes)
        ms = [d.ms for d in picked]
        tokens = sum(d.prompt_tokens + d.completion_tokens for d in picked)
        rows.append(
            Row(
                r.name,
                r.about,
                scores,
                tokens / len(picked) if picked else 0.0,
                statistics.median(ms) if ms else 0.0,
                _quantile(ms, 0.95),
                sum(d.cost for d in picked),
                len(r.decisions),
                r.note,
                score(
                    ((examples[i].label, d.predicted) for i, d in r.decisions.items()), classes
                ).macro_f1,
            )
        )
    return EvalReport(dataset, len(examples), classes, len(common), rows)


def evaluate(
    dataset: Path,
    examples: Sequence[Example],
    candidates: Sequence[str],
    *,
    train_examples: Sequence[Example] | None = None,
    folds: int = 5,
    seed: int = 0,
    model_limit: int = 60,
    progress: Progress | None = None,
) -> EvalReport:
    """Run every candidate and score them on the issues all of them decided."""
    labels = [ex.label for ex in examples]
    model_indices = stratified_sample(labels, model_limit, seed)
    results: list[CandidateResult] = []
    for name in candidates:
        if name == "keywords":
            results.append(run_keywords(examples))
        elif name == "classifier":
            results.append(
                run_classifier(
                    examples,
                    train_examples=train_examples,
                    folds=folds,
                    seed=seed,
                    progress=progress,
                )
            )
        elif name == "embedded" or name.startswith("model:"):
            model = None if name == "embedded" else name.split(":", 1)[1]
            results.append(
                asyncio.run(
                    run_model_candidate(
                        name, examples, model_indices, model=model, progress=progress
                    )
                )
            )
        else:
            raise ValueError(
                f"unknown candidate {name!r} (use keywords, classifier, embedded or model:NAME)"
            )
    return build_report(str(dataset), examples, results)
