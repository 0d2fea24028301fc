"""The ensemble bound: the exhaustive search finds the best ensemble, searching only the digits
some model misreads changes nothing, and copies of a model count once."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_ensemble_bound as bound  # noqa: E402


def _models(rng: np.random.Generator, m: int, n: int, sharp: float) -> tuple[np.ndarray, np.ndarray]:
    """`m` models' probabilities for `n` digits that mostly favour the true label, and the labels."""
    labels = rng.integers(0, 10, n)
    logits = rng.normal(size=(m, n, 10))
    logits[:, np.arange(n), labels] += sharp
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    return probs.astype(np.float32), labels


def _brute(probs: np.ndarray, labels: np.ndarray, k: int) -> int:
    return min(int((probs[list(c)].sum(axis=0).argmax(axis=1) != labels).sum())
               for c in itertools.combinations(range(len(probs)), k))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_the_search_finds_the_fewest_errors_any_ensemble_makes(k):
    probs, labels = _models(np.random.default_rng(k), 7, 60, sharp=1.5)
    members, errors = bound.best_ensemble(probs, labels, k)
    assert len(set(members)) == k
    assert errors == _brute(probs, labels, k)
    assert errors == int((probs[list(members)].sum(axis=0).argmax(axis=1) != labels).sum())


def test_digits_every_model_reads_right_never_change_the_answer():
    probs, labels = _models(np.random.default_rng(9), 6, 400, sharp=3.0)
    rows = bound.contested(probs, labels)
    assert 0 < len(rows) < 400  # most digits are read right by all six
    for k in (2, 3):
        assert bound.best_ensemble(probs[:, rows], labels[rows], k)[1] == _brute(probs, labels, k)


def test_a_known_best_pair_and_a_refused_size():
    labels = np.array([0, 1, 2])
    eye = np.eye(10, dtype=np.float32)
    probs = np.stack([
        0.6 * eye[[0, 1, 5]] + 0.4 * eye[[5, 5, 2]],  # right on 0 and 1, wrong on 2
        0.9 * eye[[5, 5, 2]] + 0.1 * eye[[0, 1, 5]],  # right on 2 only, sure of its mistakes
        0.6 * eye[[0, 7, 7]] + 0.4 * eye[[7, 1, 2]],  # right on 0 only; its runner-up fixes 1 and 2
    ])
    assert bound.best_ensemble(probs, labels, 1) == ((0,), 1)
    assert bound.best_ensemble(probs, labels, 2) == ((0, 2), 0)
    with pytest.raises(ValueError, match="needs at least that many models"):
        bound.best_ensemble(probs, labels, 4)


def test_copies_of_one_model_count_once():
    p = np.random.default_rng(0).random((5, 10)).astype(np.float32)
    kept = bound.distinct({"a": p, "copy-of-a": p.copy(), "b": p + 1e-3})
    assert list(kept) == ["a", "b"]
