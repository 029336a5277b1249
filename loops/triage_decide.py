"""Who decides an issue's type: the repository's trained classifier or the model, by measurement.

The classifier (`bot.triage_model`) carries an eval card: its cross-validated macro-F1 and a
confidence cut-off calibrated on the cross-validated predictions (the lowest confidence at which
its precision reaches the card's target). `auto` lets it decide an issue only when both hold:
the card clears `triage.classifier_min_f1`, and this issue's confidence clears the cut-off. The
decision says which decider it was and that decider's measured score, for the comment.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.repo_config import TriageConfig

log = logging.getLogger("loopwright.triage")


@dataclass(frozen=True)
class TypeDecision:
    #: The issue type (a key of `triage.labels`) or, for a classifier trained on other names,
    #: the label it predicts.
    type: str
    #: "classifier" or "model".
    decider: str
    #: One line for the comment: who decided, and how well it measured.
    describe: str
    confidence: float | None = None


@dataclass(frozen=True)
class Routing:
    """The classifier's verdict for one issue: a decision, or why the model decides instead."""

    decision: TypeDecision | None
    reason: str


_cache: dict[Path, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def load_classifier(data_dir: Path, repo: str) -> Any | None:
    """The repository's stored classifier (None: none trained), reloaded when its files change.

    A stored model that cannot be read is logged and treated as absent: the model step decides.
    """
    from bot import triage_model

    directory = triage_model.model_dir(data_dir, repo)
    try:
        stamp = max((p.stat().st_mtime for p in directory.iterdir()), default=0.0)
    except OSError:
        return None
    with _cache_lock:
        cached = _cache.get(directory)
        if cached and cached[0] == stamp:
            return cached[1]
    try:
        clf = triage_model.load_for_repo(data_dir, repo)
    except triage_model.ModelFileError as exc:
        log.warning("triage classifier for %s cannot be loaded, using the model: %s", repo, exc)
        return None
    with _cache_lock:
        _cache[directory] = (stamp, clf)
    return clf


def describe_card(card: Any) -> str:
    total = sum(int(v) for v in card.n_per_class.values())
    return (
        f"macro-F1 {card.macro_f1:.2f} ± {card.macro_f1_std:.2f}, cross-validated on "
        f"{total:,} issues"
    )


def route(clf: Any | None, cfg: TriageConfig, title: str, body: str) -> Routing:
    """Whether the classifier decides this issue's type (see the module docstring)."""
    if cfg.type_model == "model":
        return Routing(None, "triage.type_model is `model`")
    if clf is None:
        return Routing(None, "no classifier is trained for this repository")
    card = clf.card
    if cfg.type_model == "auto" and card.macro_f1 < cfg.classifier_min_f1:
        return Routing(
            None,
            f"the classifier's macro-F1 {card.macro_f1:.2f} is below "
            f"triage.classifier_min_f1 {cfg.classifier_min_f1:.2f}",
        )
    prediction = clf.predict(title, body)
    if cfg.type_model == "auto" and prediction.confidence < card.threshold:
        return Routing(
            None,
            f"the classifier's confidence {prediction.confidence:.2f} on this issue is below "
            f"its calibrated cut-off {card.threshold:.2f}",
        )
    describe = (
        f"the repository's classifier ({describe_card(card)}; confidence "
        f"{prediction.confidence:.2f} on this issue)"
    )
    return Routing(
        TypeDecision(prediction.label, "classifier", describe, prediction.confidence),
        f"classifier: {prediction.label} at confidence {prediction.confidence:.2f}",
    )
