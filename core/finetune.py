"""Teach a saved Keras model the digits a user drew (`data/user_digits.csv`), in seconds.

The model is copied (the loaded one is shared and stays as it is), its batch-norm statistics are
frozen, and it trains for a few epochs at a low learning rate on the user's digits mixed with a
replay sample of its own training data, so that it learns the new shapes without forgetting
the old ones. Even so, a few epochs on a small set cost some general accuracy on held-out digits,
so the new weights are then blended with the old ones (weight-space ensembling, Wortsman et al.
2022, "WiSE-FT"): the least change that reads the taught digits as well as the fully fine-tuned
model does is kept, which gives back most of that loss. The result is saved as a new model
`<base>-taught` through the registry.

When the base model's training file is at hand (same fingerprint), its recorded validation split
is rebuilt: replay digits come from the training part only and the new model's `val_accuracy` is
measured on the same validation digits as the base's, so the two are comparable.
"""

from __future__ import annotations

import re

import numpy as np

from core import data as data_mod
from core import prediction, registry, serving, training

EPOCHS = 3
LEARNING_RATE = 3e-4  # a tenth of the default peak: nudge the weights, do not retrain
BATCH_SIZE = 64
REPLAY = 1500  # training digits mixed in so the model does not forget them
USER_SHARE = 0.25  # of each epoch's digits are the user's (repeated as needed)
MAX_REPEATS = 60
BLENDS = (0.5, 0.6, 0.75, 0.9, 1.0)  # share of the fine-tuned weights tried, least first


def taught_name(base: str) -> str:
    """`<base>-taught` (before the job reserves it: `-2`, `-3`… if taken), without piling up
    suffixes on an already taught model."""
    root = re.sub(r"-taught(-\d+)?$", "", base)
    return f"{root[:57]}-taught"


def _replay_and_val(
    base_meta: dict, train: data_mod.Dataset, n_replay: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Replay digits (+ labels) and, when `train` is the base's own training file, its validation
    digits (the same split, so the two models' validation accuracies compare)."""
    meta_data = base_meta.get("data") or {}
    split = meta_data.get("split") or {}
    if meta_data.get("fingerprint") == train.fingerprint and split:
        tr_idx, val_idx = data_mod.split_indices(
            train.labels, val_fraction=float(split.get("val_fraction", 0.1)), seed=int(split.get("seed", 0))
        )
    else:
        tr_idx, val_idx = np.arange(train.n), None
    pick = rng.choice(tr_idx, size=min(n_replay, len(tr_idx)), replace=False)
    if val_idx is None:
        return train.images[pick], train.labels[pick], None, None
    return train.images[pick], train.labels[pick], train.images[val_idx], train.labels[val_idx]


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(prediction.predict_proba(training.KerasRuntime(model), x, chunk=256).argmax(1) == y))


def _blend(model, old: list[np.ndarray], x_user: np.ndarray, y_user: np.ndarray) -> tuple[float, float]:
    """Set `model` to the least blend of old and new weights that reads the user's digits as well as
    the new weights do; return (blend, user accuracy)."""
    new = model.get_weights()

    def mix(a: float) -> list[np.ndarray]:
        pairs = zip(old, new, strict=True)
        return [(1 - a) * w0 + a * w1 if w0.dtype.kind == "f" else w1 for w0, w1 in pairs]

    scores = {}
    for a in BLENDS:
        model.set_weights(mix(a))
        scores[a] = _accuracy(model, x_user, y_user)
    chosen = min(a for a, acc in scores.items() if acc >= max(scores.values()))
    model.set_weights(mix(chosen))
    return chosen, scores[chosen]


def finetune(
    base, base_meta: dict, user: data_mod.Dataset, train: data_mod.Dataset,
    *, epochs: int = EPOCHS, learning_rate: float = LEARNING_RATE, replay: int = REPLAY, seed: int = 0,
):
    """A fine-tuned copy of Keras model `base` (untouched) on the user's digits mixed with a replay
    sample of `train`; returns (model, what it learned: the meta's "taught" record).

    Raises `ValueError` when there are no user digits.
    """
    if user is None or user.n == 0 or user.labels is None:
        raise ValueError("no taught digits yet: save a few corrected drawings first")
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x_rep, y_rep, x_val, y_val = _replay_and_val(base_meta, train, replay, rng)
    x_user, y_user = user.images, user.labels.astype(np.int64)
    repeats = int(np.clip(round(USER_SHARE / (1 - USER_SHARE) * len(x_rep) / user.n), 1, MAX_REPEATS))
    x = np.concatenate([x_rep, np.repeat(x_user, repeats, axis=0)])
    y = np.concatenate([y_rep, np.repeat(y_user, repeats)])

    model = keras.models.clone_model(base)
    model.set_weights(base.get_weights())
    for layer in model.layers:  # frozen statistics: small mixed batches must not shift them
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"], jit_compile=False)
    user_before = _accuracy(base, x_user, y_user)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0)
    blend, user_after = _blend(model, base.get_weights(), x_user, y_user)
    taught = {
        "user_digits": int(user.n), "user_fingerprint": user.fingerprint, "replay_digits": int(len(x_rep)),
        "repeats": repeats, "epochs": epochs, "learning_rate": learning_rate, "blend": blend,
        "user_accuracy_before": user_before, "user_accuracy_after": user_after,
        "val_accuracy_before": None if x_val is None else (base_meta.get("metrics") or {}).get(
            "val_accuracy"),
        "val_accuracy_after": _accuracy(model, x_val, y_val) if x_val is not None else None,
    }
    return model, taught


def run_job(run) -> bool:
    """The fine-tune job (`core.job_process`): teach the run's base model, save it as this run."""
    base_name = run.meta["job"]["base"]
    base_meta = registry.read_meta(base_name)
    if registry.kind_of(base_meta) == registry.SKLEARN:
        raise ValueError(f"{base_name} is a {base_meta.get('arch', 'forest')} model: only Keras models "
                         "can be fine-tuned; pick a CNN or the MLP")
    train, user = run.datasets()
    run.progress({"progress": 0.1, "epoch": 0, "epochs": EPOCHS}, message=f"teaching {base_name}")
    model, taught = finetune(registry.load_keras(base_name), base_meta, user, train)
    registry.save_keras_model(run.name, model)
    serving.export(model, registry.model_dir(run.name))
    kept = {k: v for k, v in base_meta.items() if k in ("arch", "kind", "description", "params", "seed",
                                                         "param_count", "input")}
    run.save_meta(**kept, finetuned_from=base_name, taught=taught,
                  data={**(base_meta.get("data") or {}), "user_digits": int(user.n)},
                  metrics={"val_accuracy": taught["val_accuracy_after"]} if taught["val_accuracy_after"]
                  is not None else {}, best_epoch=None, epochs_done=EPOCHS)
    registry.save_train_hashes(run.name, _hashes(base_name, user))
    return True


def _hashes(base_name: str, user: data_mod.Dataset) -> np.ndarray:
    """The base's training rows and the taught digits: what the new model has seen."""
    base = registry.load_train_hashes(base_name)
    taught = data_mod.row_hashes(user.images)
    return taught if base is None else np.union1d(base, taught)
