"""bot.triage_model: training, the exported model's inference, its files, and its eval card.

Trains on a small synthetic issue set written here (three issue templates, shared vocabulary,
some label noise) — never on the NLBSE data. Tests that train skip when scikit-learn is missing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import pickle
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot import triage_model as tm

needs_sklearn = pytest.mark.skipif(
    __import__("importlib").util.find_spec("sklearn") is None,
    reason="scikit-learn is not installed (pip install 'loopwright[learn]')",
)

ROOT = Path(__file__).resolve().parent.parent

# --- a synthetic, template-shaped issue set -------------------------------------------------------

_THINGS = [
    "the parser",
    "the settings page",
    "the CLI",
    "the exporter",
    "the cache",
    "the login form",
    "the plugin loader",
    "the search box",
    "the config file",
    "the API client",
    "the scheduler",
    "the image resizer",
    "the markdown preview",
    "the sync service",
    "the installer",
]
_BUG_TITLES = [
    "{t} crashes when the input is empty",
    "TypeError in {t} after upgrading",
    "{t} returns the wrong result for unicode names",
    "Regression: {t} fails on Windows",
    "{t} throws an exception on startup",
]
_FEATURE_TITLES = [
    "Add an option to {t} for dark mode",
    "Support for custom themes in {t}",
    "Allow {t} to export to CSV",
    "Feature request: make {t} configurable",
    "Proposal: {t} should accept a timeout",
]
_QUESTION_TITLES = [
    "How do I configure {t}?",
    "Is it possible to run {t} offline?",
    "Why does {t} need network access?",
    "What is the recommended way to use {t}?",
    "Question about {t} and proxies",
]
_FILLER = [
    "I am using version 2.3.1 on Ubuntu 22.04.",
    "This happens with the default settings.",
    "Thanks for the great project.",
    "I searched the existing issues first.",
    "It would help our team a lot.",
]


def _bug_body(rng: random.Random, thing: str) -> str:
    return (
        "### Describe the bug\n\n"
        f"{thing.capitalize()} stops working. {rng.choice(_FILLER)}\n\n"
        "### Steps to reproduce\n\n1. Open the app\n2. Run the command\n\n"
        "### Error output\n\n```\nTraceback (most recent call last):\n"
        f'  File "app.py", line {rng.randint(1, 400)}, in main\n'
        "ValueError: invalid literal\n```\n\n- [x] I checked the docs\n"
    )


def _feature_body(rng: random.Random, thing: str) -> str:
    return (
        "**Is your feature request related to a problem?**\n\n"
        f"It would be nice if {thing} could do more. {rng.choice(_FILLER)}\n\n"
        "**Describe the solution you'd like**\n\n"
        f"A new setting in {thing}, off by default.\n\n"
        "**Alternatives considered**\n\nA wrapper script.\n"
    )


def _question_body(rng: random.Random, thing: str) -> str:
    return (
        f"Hi, I am trying to understand {thing}. {rng.choice(_FILLER)} "
        "Can someone explain how this is supposed to work? Is there an example "
        "somewhere in the documentation?\n"
    )


def synthetic_examples(
    n_per_label: int = 30, seed: int = 0, labels: tuple[str, ...] = ("bug", "feature", "question")
) -> list[tm.Example]:
    rng = random.Random(seed)
    makers = {
        "bug": (_BUG_TITLES, _bug_body),
        "feature": (_FEATURE_TITLES, _feature_body),
        "question": (_QUESTION_TITLES, _question_body),
    }
    out: list[tm.Example] = []
    kinds = list(makers)
    for i, label in enumerate(labels):
        kind = kinds[i % len(kinds)]
        for _ in range(n_per_label):
            # 10% of issues are written like another kind (label noise, as in real trackers).
            shape = rng.choice(kinds) if rng.random() < 0.1 else kind
            titles, body = makers[shape]
            thing = rng.choice(_THINGS)
            out.append(tm.Example(rng.choice(titles).format(t=thing), body(rng, thing), label))
    rng.shuffle(out)
    return out


def write_csv(path: Path, examples: list[tm.Example], columns: tuple[str, str, str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["repo", *columns])
        for ex in examples:
            w.writerow(["o/r", ex.title, ex.body, ex.label])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[tm.TypeClassifier, tm.EvalCard]:
    if __import__("importlib").util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed (pip install 'loopwright[learn]')")
    return tm.train(synthetic_examples(), source="synthetic", folds=5, seed=0)


@pytest.fixture(scope="module")
def saved(
    trained: tuple[tm.TypeClassifier, tm.EvalCard], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("model") / "m"
    trained[0].save(directory)
    return directory


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _rehash(directory: Path) -> None:
    """Make model.json's checksum match arrays.npz again (a deliberate, consistent tamper)."""
    meta = json.loads((directory / tm.MODEL_JSON).read_text(encoding="utf-8"))
    meta["arrays_sha256"] = hashlib.sha256((directory / tm.ARRAYS_NPZ).read_bytes()).hexdigest()
    (directory / tm.MODEL_JSON).write_text(json.dumps(meta), encoding="utf-8")


# --- read_csv, model_dir --------------------------------------------------------------------------


def test_read_csv_reads_named_columns_and_skips_unlabelled(tmp_path: Path) -> None:
    examples = synthetic_examples(3)
    path = write_csv(tmp_path / "a.csv", examples, ("Title", "Body", "Type"))
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["o/r", "no label yet", "body", "  "])
    got = tm.read_csv(path, title="Title", body="Body", label="Type")
    assert got == examples


def test_read_csv_names_the_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", synthetic_examples(2), ("title", "body", "kind"))
    with pytest.raises(ValueError, match=r"missing column 'label'.*'kind'"):
        tm.read_csv(path)
    with pytest.raises(ValueError, match=r"missing columns 'headline', 'text'"):
        tm.read_csv(path, title="headline", body="text", label="kind")


def test_read_csv_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(b"title,body,label\n\xff\xfe,x,bug\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        tm.read_csv(path)


@pytest.mark.parametrize(
    "repo", ["octo/cat", "../../etc", "a/b/../../c", "..", "", "we ird/na:me", "x" * 300, "é/ü"]
)
def test_model_dir_stays_inside_the_models_folder(tmp_path: Path, repo: str) -> None:
    base = (tmp_path / "models" / "triage").resolve()
    d = tm.model_dir(tmp_path, repo)
    assert d.parent == tmp_path / "models" / "triage"
    assert d.resolve().parent == base
    assert d.name not in ("", ".", "..") and "/" not in d.name


def test_model_dir_is_readable_and_distinct() -> None:
    assert tm.model_dir(Path("/d"), "octo/cat") == Path("/d/models/triage/octo__cat")
    names = {tm.model_dir(Path("/d"), r).name for r in ["a/b", "a_b", "a__b", "a/b_", "A/b"]}
    assert len(names) == 5


def test_load_for_repo_without_a_model_is_none(tmp_path: Path) -> None:
    assert tm.load_for_repo(tmp_path, "octo/cat") is None


# --- training -------------------------------------------------------------------------------------


@needs_sklearn
def test_training_refuses_too_little_data() -> None:
    one = [tm.Example(f"t{i}", "b", "bug") for i in range(40)]
    with pytest.raises(tm.TrainingError, match=r"at least 2 labels.*'bug'"):
        tm.train(one, source="x")
    few = one + [tm.Example(f"q{i}", "b", "question") for i in range(3)]
    with pytest.raises(tm.TrainingError, match=rf"'question' has 3.*{tm.MIN_PER_CLASS} per label"):
        tm.train(few, source="x")
    with pytest.raises(tm.TrainingError, match="no examples"):
        tm.train([], source="x")
    with pytest.raises(tm.TrainingError, match="folds"):
        tm.train(synthetic_examples(20), source="x", folds=1)


def test_training_without_sklearn_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn` raises ImportError
    with pytest.raises(
        tm.TrainingError, match=r"scikit-learn is not installed.*loopwright\[learn\]"
    ):
        tm.train(synthetic_examples(20), source="x")


@needs_sklearn
def test_train_returns_a_card_that_describes_the_cv(
    trained: tuple[tm.TypeClassifier, tm.EvalCard],
) -> None:
    clf, card = trained
    assert clf.card is card
    assert card.labels == clf.labels == ["bug", "feature", "question"]
    assert card.n_per_class == {"bug": 30, "feature": 30, "question": 30}
    assert card.folds == 5
    assert 0.7 < card.macro_f1 <= 1.0 and card.macro_f1_std >= 0
    assert set(card.per_class_f1) == set(card.labels)
    assert [sum(row) for row in card.confusion] == [30, 30, 30]
    assert card.code_version.startswith("loopwright ") and "format 1" in card.code_version
    assert card.created_at.endswith("+00:00")
    p = clf.predict("The exporter crashes with a TypeError", _bug_body(random.Random(5), "it"))
    assert p.label == "bug" and p.confidence == max(p.scores.values())
    assert math.isclose(sum(p.scores.values()), 1.0)


@needs_sklearn
def test_labels_are_whatever_the_data_has() -> None:
    four = synthetic_examples(20, labels=("defect", "enhancement", "support", "docs"))
    clf, card = tm.train(four, source="x", folds=3)
    assert clf.labels == ["defect", "docs", "enhancement", "support"]
    assert len(card.confusion) == 4 and all(len(r) == 4 for r in card.confusion)
    two = synthetic_examples(20, labels=("bug", "feature"))
    clf2, _ = tm.train(two, source="x", folds=3)
    p = clf2.predict("How do I configure the cache?", "")
    assert set(p.scores) == {"bug", "feature"}


@needs_sklearn
@pytest.mark.parametrize("labels", [("bug", "feature", "question"), ("bug", "feature")])
@pytest.mark.parametrize("classifier", ["lr", "svm", "nbsvm", "svm+nbsvm"])
def test_inference_matches_sklearn(labels: tuple[str, ...], classifier: str) -> None:
    import numpy as np

    examples = synthetic_examples(20, seed=3, labels=labels)
    held_out = synthetic_examples(8, seed=99, labels=labels)
    spec = tm.ModelSpec(tm.DEFAULT.features, classifier=classifier, C=1.0)
    fitted = tm.fit(tm.tokenize_all(examples, spec.features), [e.label for e in examples], spec)
    clf = fitted.export(1.0, _dummy_card(fitted.labels))
    docs = tm.tokenize_all(held_out, spec.features)
    want = fitted.decision(docs)
    got = np.array([clf.decision(e.title, e.body) for e in held_out])
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    preds = fitted.estimator.predict(fitted.transform(docs))
    assert [clf.predict(e.title, e.body).label for e in held_out] == list(preds)
    if classifier == "lr":  # T = 1: our softmax is scikit-learn's predict_proba
        proba = fitted.estimator.predict_proba(fitted.transform(docs))
        ours = np.array(
            [[clf.predict(e.title, e.body).scores[k] for k in clf.labels] for e in held_out]
        )
        np.testing.assert_allclose(ours, proba, atol=1e-6, rtol=0)


def _dummy_card(labels: list[str]) -> tm.EvalCard:
    n = len(labels)
    return tm.EvalCard(
        source="t",
        created_at="2026-01-01T00:00:00+00:00",
        code_version="v",
        n_per_class=dict.fromkeys(labels, 1),
        folds=2,
        macro_f1=0.5,
        macro_f1_std=0.1,
        per_class_f1=dict.fromkeys(labels, 0.5),
        labels=labels,
        confusion=[[0] * n for _ in range(n)],
        threshold=1.01,
        precision_at_threshold=0.0,
        coverage_at_threshold=0.0,
    )


@needs_sklearn
def test_threshold_is_the_lowest_confidence_reaching_the_target_precision(
    trained: tuple[tm.TypeClassifier, tm.EvalCard],
) -> None:
    _, card = trained
    # The same CV train() ran (same examples, folds and seed), recomputed here.
    examples = synthetic_examples()
    docs = tm.tokenize_all(examples, tm.DEFAULT.features)
    y = [e.label for e in examples]
    cv = tm.cross_validate(docs, y, tm.DEFAULT, tm.stratified_splits(y, 5, 0))
    conf = cv.confidence
    correct = [t == p for t, p in zip(cv.y, cv.predicted, strict=True)]

    def precision_at(c: float) -> tuple[float, float]:
        chosen = [ok for k, ok in zip(conf, correct, strict=True) if k >= c]
        return (sum(chosen) / len(chosen) if chosen else 0.0), len(chosen) / len(conf)

    assert card.threshold <= 1.0  # this easy set reaches 90% precision
    precision, coverage = precision_at(card.threshold)
    assert precision >= tm.TARGET_PRECISION
    assert math.isclose(precision, card.precision_at_threshold, abs_tol=1e-6)
    assert math.isclose(coverage, card.coverage_at_threshold, abs_tol=1e-6)
    for lower in {c for c in conf if c < card.threshold}:
        assert precision_at(lower)[0] < tm.TARGET_PRECISION


def test_confidence_threshold_by_hand() -> None:
    conf = [0.99, 0.95, 0.9, 0.8, 0.7, 0.6]
    ok = [True, True, True, False, True, False]
    # ≥0.9: 3/3; ≥0.8: 3/4; ≥0.7: 4/5 = 0.8; ≥0.6: 4/6.
    assert tm.confidence_threshold(conf, ok, 0.8) == (0.7, 0.8, 5 / 6)
    assert tm.confidence_threshold(conf, ok, 0.9) == (0.9, 1.0, 0.5)
    assert tm.confidence_threshold(conf, [False] * 6, 0.9) == (1.01, 0.0, 0.0)
    # Ties are taken together: 0.9 with one right and one wrong is 2/3 at best.
    assert tm.confidence_threshold([0.9, 0.9, 0.95], [True, False, True], 0.9)[0] == 0.95


def test_fit_temperature_recovers_a_known_scale() -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 3)) * 2
    p = np.exp(z * 0.5)
    p /= p.sum(axis=1, keepdims=True)
    y = [int(rng.choice(3, p=row)) for row in p]
    assert abs(tm.fit_temperature(z, y) - 0.5) < 0.05


# --- the card -------------------------------------------------------------------------------------


@needs_sklearn
def test_card_round_trips_through_json(trained: tuple[tm.TypeClassifier, tm.EvalCard]) -> None:
    _, card = trained
    again = tm.EvalCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card
    md = card.to_markdown()
    for part in (
        "synthetic",
        "macro-F1",
        f"{card.macro_f1:.3f} ± {card.macro_f1_std:.3f}",
        "| **bug** |",
        "threshold",
        card.created_at,
        card.code_version,
        "bug 30",
    ):
        assert part in md
    with pytest.raises(ValueError, match="not an eval card"):
        tm.EvalCard.from_dict({"source": "x"})


# --- files ----------------------------------------------------------------------------------------


@needs_sklearn
def test_save_load_round_trip(
    trained: tuple[tm.TypeClassifier, tm.EvalCard], saved: Path, tmp_path: Path
) -> None:
    clf, card = trained
    started = time.perf_counter()
    again = tm.TypeClassifier.load(saved)
    assert time.perf_counter() - started < 0.5
    assert again.labels == clf.labels and again.card == card
    for ex in synthetic_examples(5, seed=7):
        assert again.predict(ex.title, ex.body) == clf.predict(ex.title, ex.body)
        assert again.vector(ex.title, ex.body) == clf.vector(ex.title, ex.body)
    assert (saved / tm.CARD_MD).read_text(encoding="utf-8").startswith("## ")
    assert not list(saved.glob(".*"))  # no temporary files left behind
    # load_for_repo finds it where model_dir says.
    target = tm.model_dir(tmp_path, "octo/cat")
    clf.save(target)
    found = tm.load_for_repo(tmp_path, "octo/cat")
    assert found is not None and found.card == card


@needs_sklearn
def test_vector_is_l2_normalised(trained: tuple[tm.TypeClassifier, tm.EvalCard]) -> None:
    clf, _ = trained
    a = clf.vector("The parser crashes on empty input", "Traceback ... ValueError")
    b = clf.vector("The parser crashes on empty input", "Traceback ... ValueError")
    c = clf.vector("How do I configure the proxy?", "Is there an example?")
    assert math.isclose(sum(v * v for v in a.values()), 1.0)
    assert math.isclose(sum(v * b.get(i, 0.0) for i, v in a.items()), 1.0)
    assert sum(v * c.get(i, 0.0) for i, v in a.items()) < 0.9
    assert all(isinstance(i, int) and 0 <= i < clf.n_features for i in a)
    assert clf.vector("", "") == {} or math.isclose(
        sum(v * v for v in clf.vector("", "").values()), 1.0
    )


@needs_sklearn
def test_load_refuses_missing_and_corrupt_files(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(tm.ModelFileError, match=r"missing model\.json"):
        tm.TypeClassifier.load(tmp_path / "nothing")

    d = _copy(saved, tmp_path / "no-arrays")
    (d / tm.ARRAYS_NPZ).unlink()
    with pytest.raises(tm.ModelFileError, match=r"missing arrays\.npz"):
        tm.TypeClassifier.load(d)

    d = _copy(saved, tmp_path / "bad-json")
    (d / tm.MODEL_JSON).write_text("{not json", encoding="utf-8")
    with pytest.raises(tm.ModelFileError, match="not valid JSON"):
        tm.TypeClassifier.load(d)

    d = _copy(saved, tmp_path / "flipped")
    data = bytearray((d / tm.ARRAYS_NPZ).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / tm.ARRAYS_NPZ).write_bytes(bytes(data))
    with pytest.raises(tm.ModelFileError, match="checksum"):
        tm.TypeClassifier.load(d)

    d = _copy(saved, tmp_path / "version")
    meta = json.loads((d / tm.MODEL_JSON).read_text(encoding="utf-8"))
    meta["format_version"] = 999
    (d / tm.MODEL_JSON).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(tm.ModelFileError, match=r"format 999.*retrain"):
        tm.TypeClassifier.load(d)

    d = _copy(saved, tmp_path / "vocab")
    meta = json.loads((d / tm.MODEL_JSON).read_text(encoding="utf-8"))
    meta["vocab"][0] = meta["vocab"][0][:-1]  # one token fewer than the arrays have
    (d / tm.MODEL_JSON).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(tm.ModelFileError, match="expected float64"):
        tm.TypeClassifier.load(d)

    d = _copy(saved, tmp_path / "fields")
    meta = json.loads((d / tm.MODEL_JSON).read_text(encoding="utf-8"))
    del meta["spec"]["features"]
    (d / tm.MODEL_JSON).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(tm.ModelFileError) as exc:
        tm.TypeClassifier.load(d)
    assert "\n" not in str(exc.value)


class _Boom:
    """Unpickling this runs code: it writes the marker file."""

    marker: Path = Path()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pwned"))


@needs_sklearn
def test_load_never_unpickles(saved: Path, tmp_path: Path) -> None:
    import numpy as np

    marker = tmp_path / "pwned"
    _Boom.marker = marker
    payload = pickle.dumps(_Boom())

    # arrays.npz replaced by a pickle (checksum made to match: only the format stops it).
    d = _copy(saved, tmp_path / "pickle")
    (d / tm.ARRAYS_NPZ).write_bytes(payload)
    _rehash(d)
    with pytest.raises(tm.ModelFileError):
        tm.TypeClassifier.load(d)

    # An .npz whose coefficient array is an object array (pickled inside the archive).
    d = _copy(saved, tmp_path / "object-array")
    with np.load(d / tm.ARRAYS_NPZ) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["coef"] = np.array([_Boom()], dtype=object)
    with (d / tm.ARRAYS_NPZ).open("wb") as fh:
        np.savez(fh, allow_pickle=True, **arrays)
    _rehash(d)
    with pytest.raises(tm.ModelFileError):
        tm.TypeClassifier.load(d)

    # A plain .npy pickle in place of the archive.
    d = _copy(saved, tmp_path / "npy")
    with (d / tm.ARRAYS_NPZ).open("wb") as fh:
        np.save(fh, np.array([_Boom()], dtype=object), allow_pickle=True)
    _rehash(d)
    with pytest.raises(tm.ModelFileError):
        tm.TypeClassifier.load(d)

    assert not marker.exists()


@needs_sklearn
def test_inference_does_not_import_sklearn(saved: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from bot import triage_model as tm; "
        f"c = tm.TypeClassifier.load(Path({str(saved)!r})); c.predict('a crash', 'Traceback'); "
        "c.vector('a', 'b'); print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'scipy', 'pickle', 'joblib')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() in ("[]", "['pickle']")  # numpy itself imports pickle
    assert "sklearn" not in out.stdout and "scipy" not in out.stdout


def test_counting_analyzer_matches_the_training_analyzer() -> None:
    from collections import Counter

    texts = [
        ("Crash: the parser", "word word word  repeated\n\n```\ntrace\n```\n" * 3),
        ("", ""),
        ("a", "x y z x " + "é" * 40 + " https://example.com/a/b?c=d " + "f" * 50),
        *((e.title, e.body) for e in synthetic_examples(3, seed=11)),
    ]
    for title, body in texts:
        want = [Counter(toks) for toks in tm.analyze(title, body, tm.DEFAULT.features)]
        assert tm.analyze_counts(title, body, tm.DEFAULT.features) == want
