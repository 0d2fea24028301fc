"""Which digits a saved model may be scored on: only digits it never trained on.

On the data it was trained on (same fingerprint) that is the validation split it recorded,
rebuilt and checked against the recorded fingerprint; on other data, the rows that are not among
its training digits (`registry.load_train_hashes`). Several models are compared on the rows none
of them trained on. Raises ValueError, saying why, whenever that cannot be established.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core import data as data_mod

KIND_VALIDATION = "validation"  # the model's recorded validation split of its own training data
KIND_UNSEEN = "unseen"  # other data: the rows that are not among the model's training digits


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
    fingerprint = (meta.get("data") or {}).get("fingerprint")
    if not fingerprint:
        raise ValueError(f"model {meta.get('name', '?')!r} records no fingerprint of its training data: "
                         "cannot tell which digits it saw, so it cannot be evaluated fairly")
    if fingerprint == ds.fingerprint:
        return _validation_rows(meta, ds)
    return _rows_not_trained_on(meta, ds, train_hashes=train_hashes, data_hashes=data_hashes)


def _validation_rows(meta: dict, ds: data_mod.Dataset) -> EvalRows:
    """The model's own training data: its recorded validation split, rebuilt and checked."""
    name = meta.get("name", "?")
    split = (meta.get("data") or {}).get("split") or {}
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


def _rows_not_trained_on(
    meta: dict, ds: data_mod.Dataset, *, train_hashes: np.ndarray | None, data_hashes: np.ndarray | None
) -> EvalRows:
    """Other data: the rows whose digit is not among the model's training digits."""
    name = meta.get("name", "?")
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
    if not n_seen:
        note = f"all {ds.n:,} digits of {ds.name}, none of which {name!r} trained on"
        return EvalRows(indices, KIND_UNSEEN, note, ds.n)
    refusal = (
        f"{n_seen:,} of the {ds.n:,} digits in {ds.name} are among the digits model {name!r} trained "
        f"on ({_describe_training_data(meta)}): its scores on them would be inflated. Load the data it "
        "was trained on (its validation split is then used) or data it never saw"
    )
    note = f"the {len(indices):,} of {ds.n:,} digits in {ds.name} that {name!r} did not train on"
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


# --------------------------------------------------------------------------- several models


def common_rows(rows: Mapping[str, EvalRows]) -> np.ndarray:
    """Rows none of the models trained on: the intersection of each one's unseen rows (sorted)."""
    if not rows:
        raise ValueError("no models to compare")
    return functools.reduce(np.intersect1d, (r.indices for r in rows.values())).astype(np.int64)


def on_common_rows(
    rows: Mapping[str, EvalRows], probas: Mapping[str, np.ndarray], common: np.ndarray
) -> dict[str, np.ndarray]:
    """Each model's probabilities on the `common` rows only, aligned: `probas[name]` holds one row
    per `rows[name].indices` (its own unseen rows, in order); in the result, row i of every model is
    digit `common[i]` (`common` sorted, within each model's rows, as `common_rows` gives it).

    >>> a = EvalRows(np.array([1, 3, 5]), KIND_UNSEEN, "", 6)
    >>> b = EvalRows(np.array([3, 4, 5]), KIND_UNSEEN, "", 6)
    >>> aligned = on_common_rows({"a": a, "b": b}, {"a": np.array([[10], [30], [50]]),
    ...                                              "b": np.array([[31], [41], [51]])}, np.array([3, 5]))
    >>> aligned["a"].ravel().tolist(), aligned["b"].ravel().tolist()
    ([30, 50], [31, 51])
    """
    common = np.asarray(common, dtype=np.int64)
    aligned = {}
    for name, proba in probas.items():
        indices = rows[name].indices
        at = np.searchsorted(indices, common)
        if len(common) and (at.max() >= len(indices) or np.any(indices[at] != common)):
            raise ValueError(f"model {name!r}: some of the common rows are not among its unseen rows")
        aligned[name] = np.asarray(proba)[at]
    return aligned


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
