"""How good a saved model is, where it errs, and how far to trust its confidence.

Always measured on digits the model never trained on: on the data it was trained on, that is the
validation split it recorded (rebuilt and checked against its fingerprint); on other data, the
rows that are not among its training digits. Metrics come from scikit-learn where it has them;
the expected calibration error (equal-width bins) is computed here. Pure functions on arrays:
labels `(n,) int` 0..9 and probabilities `(n, 10) float`; nothing here is cached or knows about
Streamlit (the Evaluate page caches the results).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import data as data_mod
from core import prediction
from core.checks import check_labels

N_CLASSES = 10
CLASSES = list(range(N_CLASSES))
DEFAULT_BINS = 15  # As in Guo et al. (2017), "On Calibration of Modern Neural Networks".

KIND_VALIDATION = "validation"  # the model's recorded validation split of its own training data
KIND_UNSEEN = "unseen"  # other data: the rows that are not among the model's training digits


# --------------------------------------------------------------------------- checks at the boundary


def check_predictions(labels: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels `(n,) int64` and probabilities `(n, 10) float64` with rows summing to 1.

    Raises ValueError for mismatched shapes, labels outside 0..9, or values that are not
    probabilities; float32 rounding (rows summing to 1 +- 1e-6) is normalised away.
    """
    labels = check_labels(labels)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(labels), N_CLASSES):
        raise ValueError(f"expected probabilities of shape ({len(labels)}, 10), got {proba.shape}")
    if len(labels) == 0:
        raise ValueError("nothing to evaluate: no digits")
    if not np.all(np.isfinite(proba)) or proba.min() < 0:
        raise ValueError("probabilities must be finite and non-negative")
    sums = proba.sum(axis=1, keepdims=True)
    if np.any(np.abs(sums - 1) > 1e-3):
        raise ValueError("each row of probabilities must sum to 1")
    return labels, proba / sums


# --------------------------------------------------------------------------- which digits to use


@dataclass(frozen=True)
class EvalRows:
    """Rows of a dataset a model never trained on, and why those.

    `indices` are sorted row numbers of the dataset; `kind` is `validation` or `unseen`;
    `n_seen` counts rows left out because the model trained on them (other data only);
    `refusal` says why a single-model evaluation must not use this data (None when it may).
    """

    indices: np.ndarray
    kind: str
    note: str
    n_total: int
    n_seen: int = 0
    refusal: str | None = None

    @property
    def n(self) -> int:
        return int(len(self.indices))


def _describe_training_data(meta: dict) -> str:
    d = meta.get("data") or {}
    rows = f", {d['n_rows']:,} digits" if isinstance(d.get("n_rows"), int) else ""
    return f"{d.get('source', 'unknown')} data '{d.get('name', '?')}'{rows}"


def unseen_rows(
    meta: dict,
    ds: data_mod.Dataset,
    *,
    train_hashes: np.ndarray | None = None,
    data_hashes: np.ndarray | None = None,
) -> EvalRows:
    """The rows of `ds` that the model described by `meta` never trained on.

    Same data as the model's (same fingerprint): its validation split, rebuilt with
    `data.split_indices` and checked against the recorded `val_fingerprint`. Other data: every
    row whose digit is not among the model's training digits (`train_hashes`, read from the
    registry when not given; `data_hashes` are `data.row_hashes(ds.images)` if already known).
    Raises ValueError when that cannot be established or nothing unseen is left.
    """
    if not ds.has_labels:
        raise ValueError(f"{ds.name}: evaluation needs labelled digits (label,pixel0..pixel783)")
    name = meta.get("name", "?")
    d = meta.get("data") or {}
    if not d.get("fingerprint"):
        raise ValueError(f"model {name!r} records no fingerprint of its training data: cannot tell "
                         "which digits it saw, so it cannot be evaluated fairly")
    if d["fingerprint"] == ds.fingerprint:
        split = d.get("split") or {}
        if "val_fraction" not in split or "seed" not in split:
            raise ValueError(f"model {name!r} records no validation split: cannot tell which of these "
                             "digits it trained on")
        _, val_idx = data_mod.split_indices(ds.labels, val_fraction=split["val_fraction"], seed=split["seed"])
        rebuilt = data_mod.describe_split(
            ds.labels, val_idx, val_fraction=split["val_fraction"], seed=split["seed"]
        )
        if rebuilt["val_fingerprint"] != split.get("val_fingerprint"):
            raise ValueError(
                f"the validation split rebuilt for model {name!r} differs from the one it recorded "
                f"({rebuilt['val_fingerprint']} vs {split.get('val_fingerprint')}): evaluating on it could "
                "use digits the model trained on, so it is refused"
            )
        note = (
            f"the {len(val_idx):,} digits of {ds.name} held out for validation when {name!r} was trained "
            f"({split['val_fraction']:.0%} split, seed {split['seed']}); it never trained on them"
        )
        return EvalRows(np.asarray(val_idx, dtype=np.int64), KIND_VALIDATION, note, ds.n)
    if train_hashes is None:
        from core import registry

        train_hashes = registry.load_train_hashes(name) if "name" in meta else None
    if train_hashes is None:
        raise ValueError(
            f"model {name!r} was trained on other data ({_describe_training_data(meta)}) and kept no "
            f"record of its training digits, so there is no way to check that {ds.name} is unseen; "
            "load the data it was trained on to evaluate it on its validation split"
        )
    hashes = data_mod.row_hashes(ds.images) if data_hashes is None else np.asarray(data_hashes)
    seen = np.isin(hashes, np.asarray(train_hashes, dtype=np.uint64))
    n_seen = int(seen.sum())
    indices = np.flatnonzero(~seen).astype(np.int64)
    if len(indices) == 0:
        raise ValueError(
            f"every digit in {ds.name} is among the ones model {name!r} trained on "
            f"({_describe_training_data(meta)}): there is nothing unseen to evaluate it on"
        )
    refusal = None
    if n_seen:
        refusal = (
            f"{n_seen:,} of the {ds.n:,} digits in {ds.name} are among the digits model {name!r} trained "
            f"on ({_describe_training_data(meta)}): its scores on them would be inflated. Load the data it "
            "was trained on (its validation split is then used) or data it never saw"
        )
        note = f"the {len(indices):,} of {ds.n:,} digits in {ds.name} that {name!r} did not train on"
    else:
        note = f"all {ds.n:,} digits of {ds.name}, none of which {name!r} trained on"
    return EvalRows(indices, KIND_UNSEEN, note, ds.n, n_seen, refusal)


def validation_set(
    meta: dict, ds: data_mod.Dataset, *, train_hashes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images `(m, 28, 28)` and labels `(m,)` to evaluate a model on: its recorded validation split
    when `ds` is its training data, else all of `ds` provided it trained on none of it.

    Raises ValueError saying why when the split does not match or `ds` overlaps its training digits.
    """
    rows = unseen_rows(meta, ds, train_hashes=train_hashes)
    if rows.refusal:
        raise ValueError(rows.refusal)
    return ds.images[rows.indices], ds.labels[rows.indices]


def common_rows(rows: Mapping[str, EvalRows]) -> np.ndarray:
    """Rows none of the models trained on: the intersection of each one's unseen rows (sorted)."""
    if not rows:
        raise ValueError("no models to compare")
    return functools.reduce(np.intersect1d, (r.indices for r in rows.values())).astype(np.int64)


def explain_common_rows(rows: Mapping[str, EvalRows], common: np.ndarray, dataset_name: str) -> str:
    """One paragraph for people: which digits the comparison uses and why so many (or few)."""
    parts = []
    for name, r in rows.items():
        what = "validation split" if r.kind == KIND_VALIDATION else "unseen digits"
        parts.append(f"{name}: {r.n:,} ({what})")
    kinds = {r.kind for r in rows.values()}
    why = (
        "Every model is scored on the same digits, and only on digits none of them trained on: "
        "the intersection of their validation splits"
        if kinds == {KIND_VALIDATION}
        else "Every model is scored on the same digits, and only on digits none of them trained on: "
        "the intersection of what each left unseen (validation split on its own data, digits "
        "outside its training set otherwise)"
    )
    text = f"{why}. Unseen digits of {dataset_name} per model — {'; '.join(parts)}. "
    text += f"Common to all: {len(common):,}."
    if len(common) < 0.5 * min(r.n for r in rows.values()):
        text += (
            " Few digits are common because the models were trained with different splits (seed or "
            "validation fraction) or on different data; models trained with the same split share their "
            "whole validation set, and a test set with known answers gives every model the same digits."
        )
    return text


# --------------------------------------------------------------------------- metrics


def predicted(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted digit `(n,) int64` and its probability (the confidence) `(n,) float64`."""
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1).astype(np.int64)
    return pred, proba[np.arange(len(proba)), pred].astype(np.float64)


def accuracy(labels: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of digits read right (higher is better)."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(check_labels(labels), check_labels(pred)))


def log_loss(labels: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true digit (lower is better; 0 is perfect)."""
    from sklearn.metrics import log_loss as sk_log_loss

    labels, proba = check_predictions(labels, proba)
    return float(sk_log_loss(labels, proba, labels=CLASSES))


def confusion(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Counts `(10, 10) int64`: row = true digit, column = predicted digit."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(check_labels(labels), check_labels(pred), labels=CLASSES).astype(np.int64)


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix as fractions of that true digit (a row of zeros stays 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def per_class(labels: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support per digit: 10 rows, columns
    `digit, precision, recall, f1, support` (a digit never predicted has precision 0)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        check_labels(labels), check_labels(pred), labels=CLASSES, zero_division=0
    )
    return pd.DataFrame(
        {"digit": CLASSES, "precision": p, "recall": r, "f1": f, "support": s.astype(np.int64)}
    )


@dataclass(frozen=True)
class CalibrationBins:
    """Top-label confidence in `n_bins` equal-width bins over [0, 1]: bin b holds confidences in
    `(edges[b], edges[b + 1]]` (the first bin also holds 0). Empty bins have NaN mean values."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def gaps(self) -> np.ndarray:
        """Accuracy minus confidence per bin (negative: over-confident)."""
        return self.accuracy - self.confidence


def calibration_bins(labels: np.ndarray, proba: np.ndarray, *, n_bins: int = DEFAULT_BINS) -> CalibrationBins:
    """How often the model is right, against how sure it was, in equal-width confidence bins."""
    labels, proba = check_predictions(labels, proba)
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    pred, conf = predicted(proba)
    correct = (pred == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # ceil(conf * n) - 1 puts conf in (b/n, (b+1)/n] into bin b; clip sends 0 to the first bin.
    which = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / counts
        mean_acc = np.bincount(which, weights=correct, minlength=n_bins) / counts
    return CalibrationBins(edges, counts.astype(np.int64), mean_conf, mean_acc)


def expected_calibration_error(labels: np.ndarray, proba: np.ndarray, *, n_bins: int = DEFAULT_BINS) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width bins weighted by
    how many digits fall in each (0 is perfectly calibrated; lower is better).

    Right at 0.9 and wrong at 0.6: (|1 - 0.9| + |0 - 0.6|) / 2 = 0.35.

    >>> round(expected_calibration_error([0, 1], [[0.9] + [0.1 / 9] * 9, [0.6] + [0.4 / 9] * 9]), 6)
    0.35
    """
    return _ece(calibration_bins(labels, proba, n_bins=n_bins))


def _ece(bins: CalibrationBins) -> float:
    used = bins.counts > 0
    return float(np.sum(bins.counts[used] / bins.counts.sum() * np.abs(bins.gaps[used])))


# --------------------------------------------------------------------------- error analysis


def confident_mistakes(labels: np.ndarray, proba: np.ndarray, *, k: int = 30) -> np.ndarray:
    """Positions of the `k` wrong predictions made with the highest confidence, most confident first."""
    labels, proba = check_predictions(labels, proba)
    pred, conf = predicted(proba)
    wrong = np.flatnonzero(pred != labels)
    order = np.argsort(-conf[wrong], kind="stable")
    return wrong[order[:k]].astype(np.int64)


def pair_indices(labels: np.ndarray, proba: np.ndarray, true: int, guess: int) -> np.ndarray:
    """Positions of digits whose true label is `true` and predicted label `guess` (one confusion
    matrix cell), the most confident prediction first."""
    labels, proba = check_predictions(labels, proba)
    if true not in CLASSES or guess not in CLASSES:
        raise ValueError(f"expected two digits 0..9, got true={true!r}, predicted={guess!r}")
    pred, conf = predicted(proba)
    cell = np.flatnonzero((labels == true) & (pred == guess))
    return cell[np.argsort(-conf[cell], kind="stable")].astype(np.int64)


def confusion_pairs(cm: np.ndarray) -> list[tuple[int, int, int]]:
    """Off-diagonal cells with at least one digit as `(true, predicted, count)`, most frequent first
    (for a pair picker)."""
    cm = np.asarray(cm)
    cells = [(int(t), int(p), int(cm[t, p])) for t in range(N_CLASSES) for p in range(N_CLASSES)
             if t != p and cm[t, p] > 0]
    return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))


# --------------------------------------------------------------------------- one model, all numbers


@dataclass(frozen=True)
class Evaluation:
    """Every number the Evaluate page shows for one model on one set of digits."""

    labels: np.ndarray
    proba: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    accuracy: float
    log_loss: float
    ece: float
    confusion: np.ndarray
    per_class: pd.DataFrame
    calibration: CalibrationBins

    @property
    def n(self) -> int:
        return int(len(self.labels))

    @property
    def n_errors(self) -> int:
        return int((self.pred != self.labels).sum())

    def summary(self) -> dict[str, Any]:
        """Plain, JSON-serialisable numbers (what `python -m core evaluate` prints)."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "log_loss": self.log_loss,
            "ece": self.ece,
            "errors": self.n_errors,
            "per_class": {
                str(int(row.digit)): {
                    "precision": float(row.precision),
                    "recall": float(row.recall),
                    "f1": float(row.f1),
                    "support": int(row.support),
                }
                for row in self.per_class.itertuples(index=False)
            },
            "confusion": self.confusion.tolist(),
        }


def evaluate(labels: np.ndarray, proba: np.ndarray, *, n_bins: int = DEFAULT_BINS) -> Evaluation:
    """All metrics of predictions `proba (n, 10)` against `labels (n,)`, computed once."""
    labels, proba = check_predictions(labels, proba)
    pred, conf = predicted(proba)
    bins = calibration_bins(labels, proba, n_bins=n_bins)
    return Evaluation(
        labels=labels,
        proba=proba.astype(np.float32),
        pred=pred,
        confidence=conf,
        accuracy=accuracy(labels, pred),
        log_loss=log_loss(labels, proba),
        ece=_ece(bins),
        confusion=confusion(labels, pred),
        per_class=per_class(labels, pred),
        calibration=bins,
    )


def evaluate_model(model: Any, ds: data_mod.Dataset, *, n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Evaluate a `prediction.Predictor` on the digits of `ds` it never trained on -> plain dict.

    On the model's own training data that is its validation split; on other data, the rows
    that are not among its training digits. A `warning` says when rows were left out for that.
    """
    rows = unseen_rows(model.meta, ds)
    proba = prediction.predict_proba(model, ds.images[rows.indices])
    result = evaluate(ds.labels[rows.indices], proba, n_bins=n_bins)
    warning = None
    if rows.kind == KIND_VALIDATION:
        warning = (
            f"{ds.name} is the data model {model.name!r} was trained on: only its {rows.n:,} validation "
            f"digits (of {ds.n:,}) were evaluated"
        )
    elif rows.n_seen:
        warning = (
            f"{rows.n_seen:,} of the {ds.n:,} digits in {ds.name} were in model {model.name!r}'s training "
            f"data and were left out: evaluated on the other {rows.n:,}"
        )
    return {
        "model": model.name,
        "data": ds.name,
        "data_fingerprint": ds.fingerprint,
        "evaluated_on": rows.kind,
        "n_total": ds.n,
        **result.summary(),
        "warning": warning,
    }


# --------------------------------------------------------------------------- comparing models


def compare(
    labels: np.ndarray, probas: Mapping[str, np.ndarray], metas: Mapping[str, dict]
) -> pd.DataFrame:
    """One row per model on the same digits: accuracy, log-loss, ECE, errors, parameters,
    training time (best accuracy first)."""
    rows = []
    for name, proba in probas.items():
        ev_labels, ev_proba = check_predictions(labels, proba)
        pred, _ = predicted(ev_proba)
        meta = metas.get(name) or {}
        rows.append({
            "model": name,
            "architecture": meta.get("arch"),
            "accuracy": accuracy(ev_labels, pred),
            "log loss": log_loss(ev_labels, ev_proba),
            "ECE": expected_calibration_error(ev_labels, ev_proba),
            "errors": int((pred != ev_labels).sum()),
            "parameters": meta.get("param_count"),
            "training time (s)": meta.get("training_time_s"),
        })
    return pd.DataFrame(rows).sort_values(["accuracy", "model"], ascending=[False, True], ignore_index=True)


def disagreements(preds: Mapping[str, np.ndarray]) -> np.ndarray:
    """Positions where the models do not all predict the same digit (sorted)."""
    stacked = np.stack([np.asarray(p) for p in preds.values()])
    return np.flatnonzero((stacked != stacked[0]).any(axis=0)).astype(np.int64)


def pairwise_disagreement(preds: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """How many digits each pair of models reads differently: a square frame indexed by name."""
    names = list(preds)
    counts = np.array([[int((preds[a] != preds[b]).sum()) for b in names] for a in names], dtype=np.int64)
    return pd.DataFrame(counts, index=names, columns=names)


def history_frame(history: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A model's `history.csv` rows as a frame with an `epoch` column (empty frame if none)."""
    frame = pd.DataFrame(list(history))
    if frame.empty:
        return frame
    if "epoch" not in frame:
        frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame


def with_answers(test: data_mod.Dataset, answers: np.ndarray) -> data_mod.Dataset:
    """A test set with its known labels attached (the committed sample keeps them aside), so it
    can be evaluated like any labelled set; its fingerprint covers the labels too."""
    answers = check_labels(answers)
    if len(answers) != test.n:
        raise ValueError(f"{test.name}: {test.n:,} test digits but {len(answers):,} answers")
    return data_mod.Dataset(
        images=test.images,
        labels=answers,
        name=f"{test.name} (with answers)",
        source=test.source,
        fingerprint=data_mod.fingerprint(test.images, answers),
    )
