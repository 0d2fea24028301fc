"""Ensembles: several trained Keras models whose probabilities are averaged, saved as one model.

The members are copied into one Keras graph (`combine`): the input goes to every member, their
probabilities are averaged. So an ensemble is saved, exported for serving and predicted like any
model (one `model.keras`, one `model.tflite`), and it keeps its own copy of each member: deleting
or retraining a member later does not change it. Its `meta.json` (kind "ensemble") lists the
members and how they are combined; its training rows are the union of theirs (for the leakage
check), and its validation digits are theirs when they share one split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core import data as data_mod
from core import registry, status

COMBINE = "mean of the members' probabilities"
USABLE = (status.DONE, status.STOPPED, status.INTERRUPTED)  # ended with a saved best epoch


def check_members(names: list[str]) -> list[dict]:
    """The members' metas, refusing what cannot be averaged: fewer than two, a repeated name, a
    member without a saved Keras model, a forest, or one that is still training or failed."""
    if len(names) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("an ensemble's members must be different models")
    metas = []
    for name in names:
        meta = registry.read_meta(name)
        state = status.status_of(meta)
        if registry.kind_of(meta) == registry.SKLEARN:
            raise ValueError(f"member {name!r} is a random forest: ensembles average Keras models only")
        if state not in USABLE or not (registry.model_dir(name) / registry.KERAS_FILE).is_file():
            raise ValueError(f"member {name!r} has no saved model to add (it is {state})")
        metas.append(meta)
    return metas


def combine(members: list[Any], name: str = "ensemble") -> Any:
    """One Keras model averaging `members`' probabilities (each member is used as it is, in
    inference mode: augmentation and dropout off)."""
    import keras

    inputs = keras.Input(members[0].inputs[0].shape[1:], name="pixels")
    # Each member under a name of its own (two runs of one architecture share their model's name).
    named = [keras.Model(m.input, m.output, name=f"member_{i}") for i, m in enumerate(members, start=1)]
    outputs = [member(inputs, training=False) for member in named]
    return keras.Model(inputs, keras.layers.Average(name="mean")(outputs), name=name)


def shared_split(metas: list[dict]) -> dict | None:
    """The members' common training file and validation split, if they all share them (else None:
    no digits are unseen by every member, so the ensemble has no validation score of its own)."""
    first = metas[0].get("data") or {}
    keys = ("fingerprint", "split")
    if all({k: (m.get("data") or {}).get(k) for k in keys} == {k: first.get(k) for k in keys} for m in metas):
        return first
    return None


def meta_for(name: str, metas: list[dict], *, val_accuracy: float | None, param_count: int) -> dict:
    """The ensemble's `meta.json` fields: what it is made of and how it was scored."""
    data = shared_split(metas)
    if data is None:  # other splits: no digit of their file is unseen by all; other files go by hashes
        first = metas[0].get("data") or {}
        same_file = all((m.get("data") or {}).get("fingerprint") == first.get("fingerprint") for m in metas)
        data = {k: v for k, v in first.items() if k not in ("split", "n_train")} if same_file else {
            "source": first.get("source")}
        data["note"] = "members trained on different validation splits: no shared validation score"
    return {
        "arch": "ensemble",
        "kind": registry.ENSEMBLE,
        "description": f"Ensemble of {len(metas)} models ({COMBINE})",
        "members": [{"name": m.get("name"), "arch": m.get("arch"), "seed": m.get("seed"),
                     "val_accuracy": (m.get("metrics") or {}).get("val_accuracy")} for m in metas],
        "combine": COMBINE,
        "params": {"members": len(metas)},
        "data": data,
        "metrics": {"val_accuracy": val_accuracy} if val_accuracy is not None else {},
        "param_count": param_count,
    }


def union_hashes(names: list[str]) -> np.ndarray:
    """Every training row any member saw (for the leakage check)."""
    found = [h for h in (registry.load_train_hashes(n) for n in names) if h is not None]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)


def validation_accuracy(model: Any, metas: list[dict], train: data_mod.Dataset) -> float | None:
    """The ensemble's accuracy on its members' shared validation digits, when `train` is their file."""
    from core import prediction, training

    data = shared_split(metas)
    if data is None or data.get("fingerprint") != train.fingerprint or not data.get("split"):
        return None
    split = data["split"]
    _, val_idx = data_mod.split_indices(train.labels, val_fraction=float(split["val_fraction"]),
                                        seed=int(split["seed"]))
    probs = prediction.predict_proba(training.KerasRuntime(model), train.images[val_idx], chunk=512)
    return float(np.mean(probs.argmax(1) == train.labels[val_idx]))
