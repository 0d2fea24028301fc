"""How good a saved model is, where it errs, and how far to trust its confidence.

Always measured on digits the model never trained on (`core.eval_rows` says which). The metrics
are a few lines of numpy each, not scikit-learn's: importing scikit-learn costs the web server about
57 MB (a sixth of its memory budget on a small host), and the tests check every metric here against
scikit-learn's own. Pure functions on arrays: labels `(n,) int` 0..9 and probabilities `(n, 10)
float`; nothing here is cached or knows about Streamlit (the Evaluate page caches the results).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import data as data_mod
from core import prediction
from core.checks import check_labels

# Which rows a model may be scored on is `core.eval_rows`. `evaluate_model` needs the first two;
# `unseen_rows` and `validation_set` stay importable from here for benchmarks/ and tests/browser/.
from core.eval_rows import KIND_VALIDATION, unseen_rows
from core.eval_rows import validation_set as validation_set

N_CLASSES = 10
CLASSES = list(range(N_CLASSES))
DEFAULT_BINS = 15  # As in Guo et al. (2017), "On Calibration of Modern Neural Networks".


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


# --------------------------------------------------------------------------- metrics


def predicted(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted digit `(n,) int64` and its probability (the confidence) `(n,) float64`."""
    proba = np.asarray(proba)
    pred = proba.argmax(axis=1).astype(np.int64)
    return pred, proba[np.arange(len(proba)), pred].astype(np.float64)


def accuracy(labels: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of digits read right (higher is better)."""
    labels, pred = _paired(labels, pred)
    return float(np.mean(labels == pred))


def log_loss(labels: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true digit (lower is better; 0 is perfect), with
    probabilities clipped away from 0 as scikit-learn does (machine epsilon)."""
    labels, proba = check_predictions(labels, proba)
    eps = np.finfo(proba.dtype).eps
    true = np.clip(proba[np.arange(len(labels)), labels], eps, 1 - eps)
    return float(-np.mean(np.log(true)))


def confusion(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Counts `(10, 10) int64`: row = true digit, column = predicted digit."""
    labels, pred = _paired(labels, pred)
    return np.bincount(labels * N_CLASSES + pred, minlength=N_CLASSES**2).reshape(N_CLASSES, N_CLASSES)


def per_class(labels: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support per digit: 10 rows, columns
    `digit, precision, recall, f1, support` (a digit never predicted has precision 0)."""
    cm = confusion(labels, pred)
    right = np.diag(cm).astype(np.float64)
    support, predicted_n = cm.sum(axis=1), cm.sum(axis=0)
    p = np.divide(right, predicted_n, out=np.zeros(N_CLASSES), where=predicted_n > 0)
    r = np.divide(right, support, out=np.zeros(N_CLASSES), where=support > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros(N_CLASSES), where=(p + r) > 0)
    return pd.DataFrame(
        {"digit": CLASSES, "precision": p, "recall": r, "f1": f, "support": support.astype(np.int64)}
    )


def _paired(labels: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, pred = check_labels(labels), check_labels(pred)
    if len(labels) != len(pred):
        raise ValueError(f"{len(labels)} labels but {len(pred)} predictions")
    if len(labels) == 0:
        raise ValueError("nothing to evaluate: no digits")
    return labels, pred


def accuracy_interval(correct: int, n: int, *, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of an accuracy of `correct` of `n` digits (95% for z = 1.96; the tests
    check it against scipy.stats, not imported here for the server's memory): what
    the digits measured can tell, e.g. 99.5% on 1,000 digits cannot be told from 99.1%.

    >>> [round(v, 4) for v in accuracy_interval(995, 1000)]
    [0.9883, 0.9979]
    >>> [round(v, 4) for v in accuracy_interval(17910, 18000)]
    [0.9939, 0.9959]
    """
    if n <= 0:
        raise ValueError("an interval needs at least one digit")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and {n}, got {correct}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix as fractions of that true digit (a row of zeros stays 0)."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


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
            "accuracy_95": list(accuracy_interval(self.n - self.n_errors, self.n)),
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


def evaluate_model(
    model: Any, ds: data_mod.Dataset, *, n_bins: int = DEFAULT_BINS, tta: bool = False
) -> dict[str, Any]:
    """Evaluate a `prediction.Predictor` on the digits of `ds` it never trained on -> plain dict.

    On the model's own training data that is its validation split; on other data, the rows
    that are not among its training digits. A `warning` says when rows were left out for that.
    With `tta` each digit is predicted over `prediction.TTA_VIEWS`, as Submit does with its toggle:
    the figure that says whether the toggle is worth its extra passes.
    """
    rows = unseen_rows(model.meta, ds)
    proba = prediction.predict_proba(model, ds.images, rows=rows.indices, tta=tta)
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
        "tta": tta,
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
