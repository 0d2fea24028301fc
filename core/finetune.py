"""Teach a saved Keras model the digits a user drew (`data/user_digits.csv`), in seconds.

The model is copied (the loaded one is shared and stays as it is), its batch-norm statistics are
frozen, and it trains for a few epochs at a low learning rate on the user's digits mixed with a
replay sample of its own training data, so that it learns the new shapes without forgetting
the old ones. Even so, a few epochs on a small set cost some general accuracy (measured: -1.1
points on held-out digits), so the new weights are then blended with the old ones (weight-space
ensembling, Wortsman et al. 2022, "WiSE-FT"): the least change that reads the taught digits as
well as the fully fine-tuned model does is kept (measured: -0.3 points). The result is saved as
a new model `<base>-taught` through the registry.

When the base model's training file is at hand (same fingerprint), its recorded validation split
is rebuilt: replay digits come from the training part only and the new model's `val_accuracy` is
measured on the same validation digits as the base's, so the two are comparable.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from core import data as data_mod
from core import registry

EPOCHS = 3
LEARNING_RATE = 3e-4  # a tenth of the default peak: nudge the weights, do not retrain
BATCH_SIZE = 64
REPLAY = 1500  # training digits mixed in so the model does not forget them
USER_SHARE = 0.25  # of each epoch's digits are the user's (repeated as needed)
MAX_REPEATS = 60
BLENDS = (0.5, 0.6, 0.75, 0.9, 1.0)  # share of the fine-tuned weights tried, least first


@dataclass(frozen=True)
class FinetuneResult:
    """What fine-tuning made: the new model's name and how it reads the taught digits now."""

    name: str
    base: str
    n_user: int
    n_replay: int
    epochs: int
    blend: float
    user_accuracy_before: float
    user_accuracy_after: float
    val_accuracy_before: float | None
    val_accuracy_after: float | None
    seconds: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def taught_name(base: str) -> str:
    """`<base>-taught` (or `-taught-2`, …) without piling up suffixes on an already taught model."""
    root = re.sub(r"-taught(-\d+)?$", "", base)
    return registry.unique_name(f"{root}-taught"[:64])


def _replay_and_val(
    base: registry.LoadedModel, n_replay: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """Replay digits (+ labels) and the validation digits to score on; whether they match the base's split."""
    train = data_mod.load_train()
    meta_data = base.meta.get("data") or {}
    split = meta_data.get("split") or {}
    same = meta_data.get("fingerprint") == train.fingerprint and bool(split)
    if same:
        tr_idx, val_idx = data_mod.split_indices(
            train.labels, val_fraction=float(split.get("val_fraction", 0.1)), seed=int(split.get("seed", 0))
        )
    else:
        tr_idx, val_idx = np.arange(train.n), None
    pick = rng.choice(tr_idx, size=min(n_replay, len(tr_idx)), replace=False)
    x_val = train.images[val_idx] if val_idx is not None else None
    y_val = train.labels[val_idx] if val_idx is not None else None
    return train.images[pick], train.labels[pick], x_val, y_val, same


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Direct calls in batches: `predict()` on a model shared with other sessions is not thread-safe."""
    hits = 0
    for start in range(0, len(x), 256):
        probs = np.asarray(model(x[start : start + 256].astype(np.float32), training=False))
        hits += int(np.sum(np.argmax(probs, axis=1) == y[start : start + 256]))
    return hits / max(len(x), 1)


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
    base: registry.LoadedModel,
    user: data_mod.Dataset,
    *,
    epochs: int = EPOCHS,
    learning_rate: float = LEARNING_RATE,
    replay: int = REPLAY,
    seed: int = 0,
    name: str | None = None,
) -> FinetuneResult:
    """Fine-tune a copy of Keras model `base` on the user's digits (+ a replay sample); save it.

    `user` holds labelled 28x28 digits (e.g. `data.load_user_digits()`). Raises `ValueError` for a
    scikit-learn model (it cannot be fine-tuned) or when there are no user digits.
    """
    if base.kind != "keras":
        raise ValueError(
            f"{base.name} is a {base.meta.get('arch', base.kind)} model: only Keras models can be "
            "fine-tuned; pick a CNN or the MLP"
        )
    if user is None or user.n == 0 or user.labels is None:
        raise ValueError("no taught digits yet: save a few corrected drawings first")
    import keras

    t0 = time.time()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x_rep, y_rep, x_val, y_val, comparable = _replay_and_val(base, replay, rng)
    x_user, y_user = user.images, user.labels.astype(np.int64)
    repeats = int(np.clip(round(USER_SHARE / (1 - USER_SHARE) * len(x_rep) / user.n), 1, MAX_REPEATS))
    x = np.concatenate([x_rep, np.repeat(x_user, repeats, axis=0)]).astype(np.float32)
    y = np.concatenate([y_rep, np.repeat(y_user, repeats)])

    model = keras.models.clone_model(base.model)
    model.set_weights(base.model.get_weights())
    for layer in model.layers:  # frozen statistics: small mixed batches must not shift them
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
        jit_compile=False,
    )
    user_before = _accuracy(base.model, x_user, y_user)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0)
    blend, user_after = _blend(model, base.model.get_weights(), x_user, y_user)
    val_before = base.meta.get("metrics", {}).get("val_accuracy") if comparable else None
    val_after = _accuracy(model, x_val, y_val) if comparable else None

    new_name = registry.validate_name(name) if name else taught_name(base.name)
    registry.save_keras_model(new_name, model)
    meta = {k: v for k, v in base.meta.items() if k not in ("metrics", "best_epoch", "epochs_done", "status")}
    meta.update(
        name=new_name,
        status="complete",
        owner="draw-page",
        created_at=registry.timestamp(),
        finetuned_from=base.name,
        data={**(base.meta.get("data") or {}), "user_digits": int(user.n)},
        taught={
            "user_digits": int(user.n),
            "user_fingerprint": user.fingerprint,
            "replay_digits": int(len(x_rep)),
            "repeats": repeats,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "blend": blend,
            "user_accuracy_before": user_before,
            "user_accuracy_after": user_after,
        },
        metrics={"val_accuracy": val_after} if val_after is not None else {},
        training_time_s=round(time.time() - t0, 2),
    )
    registry.write_meta(new_name, meta)
    return FinetuneResult(
        name=new_name,
        base=base.name,
        n_user=int(user.n),
        n_replay=int(len(x_rep)),
        epochs=epochs,
        blend=blend,
        user_accuracy_before=user_before,
        user_accuracy_after=user_after,
        val_accuracy_before=val_before,
        val_accuracy_after=val_after,
        seconds=round(time.time() - t0, 2),
    )
