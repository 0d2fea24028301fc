"""Distillation: one cheap model taught by a saved model (often an ensemble) instead of by labels alone.

An ensemble of five CNNs reads digits better than any one of them but costs five times the
arithmetic at every prediction. A student trained on the teacher's probabilities recovers most of
that gap at a single model's cost (Hinton et al., 2015). The recipe here is offline: each training
digit and `copies` warped copies of it (the same affine warp as the models' own augmentation,
drawn once) are labelled once by the teacher; the student then trains on that fixed set without
augmentation, its loss `alpha * KL(teacher || student)` at temperature `temperature` (times T^2,
so its gradients keep their scale) plus `(1 - alpha)` of the usual cross-entropy on the true label.

Targets are `(n, 11)` float32 rows: the teacher's tempered probabilities, then the true label. The
job process (`core.job_process`) builds them; `training` compiles and fits with them. Keras and
TensorFlow are imported inside the functions that need them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COPIES = 12  # warped copies of each training digit, besides the digit itself
ALPHA = 0.9  # the teacher's share of the loss
TEMPERATURE = 2.0
EPOCHS = 8  # each epoch sees every digit 1 + COPIES times
CHUNK = 2048  # images warped at once: bounded memory on a Kaggle-sized file


def warped_copies(images: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """`images` (n, 28, 28) uint8 followed by `copies` randomly warped copies of them:
    `(n * (1 + copies), 28, 28)` uint8, the same order of digits in every block."""
    from keras import ops

    from core.augment import RandomAffine

    warp = RandomAffine(15, 0.15, 0.1, zoom_aspect=True, seed=seed)  # as dr-v's and dr-sep's warp
    out = np.empty((len(images) * (1 + copies), *images.shape[1:]), dtype=np.uint8)
    out[: len(images)] = images
    for k in range(1, copies + 1):
        block = out[k * len(images): (k + 1) * len(images)]
        for i in range(0, len(images), CHUNK):
            batch = images[i: i + CHUNK, :, :, None].astype(np.float32)
            warped = ops.convert_to_numpy(warp(batch, training=True))[..., 0]
            block[i: i + CHUNK] = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return out


def tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities `(n, 10)` softened at `temperature` (1: unchanged): p^(1/T), renormalised."""
    logp = np.log(np.clip(probs.astype(np.float64), 1e-8, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    soft = np.exp(logp)
    return (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)


def targets(soft: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`(n, 11)` rows: the teacher's tempered probabilities, then the true label."""
    if len(soft) != len(labels):
        raise ValueError(f"{len(soft)} teacher rows for {len(labels)} labels")
    return np.concatenate([soft.astype(np.float32), labels.astype(np.float32)[:, None]], axis=1)


def label_targets(labels: np.ndarray) -> np.ndarray:
    """Targets for digits the teacher does not label (the validation split): the true label as
    the "teacher" too, so the validation loss is the student's own."""
    return targets(np.eye(10, dtype=np.float32)[labels], labels)


def loss(alpha: float, temperature: float):
    """The student's loss on `(n, 11)` targets and its probabilities `(n, 10)`."""
    import keras
    from keras import ops

    def distillation_loss(y_true, y_pred):
        soft, hard = y_true[:, :10], ops.cast(y_true[:, 10], "int32")
        ce = keras.losses.sparse_categorical_crossentropy(hard, y_pred)
        log_q = ops.log(ops.clip(y_pred, 1e-8, 1.0)) / temperature
        log_q = log_q - ops.logsumexp(log_q, axis=1, keepdims=True)
        kl = ops.sum(soft * (ops.log(ops.clip(soft, 1e-8, 1.0)) - log_q), axis=1) * temperature ** 2
        return alpha * kl + (1.0 - alpha) * ce

    return distillation_loss


def accuracy(y_true, y_pred):
    """Accuracy against the true label (column 10), named as Keras' own so history keys match."""
    import keras

    return keras.metrics.sparse_categorical_accuracy(y_true[:, 10], y_pred)


accuracy.__name__ = "accuracy"


def teach(teacher: Any, images: np.ndarray, labels: np.ndarray,
          settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """The student's training set from a loaded `teacher` (anything with `predict_proba`): the
    digits and their warped copies `(n * (1 + copies), 28, 28)` uint8, and their `(m, 11)` targets."""
    from core import prediction

    copies = int(settings.get("distill_copies", COPIES))
    x = warped_copies(images, copies, int(settings["seed"]))
    probs = prediction.predict_proba(teacher, x, chunk=4096)
    y = np.tile(labels, 1 + copies)
    return x, targets(tempered(probs, float(settings.get("distill_temperature", TEMPERATURE))), y)


def teacher_split(teacher_meta: dict, fingerprint: str) -> tuple[float, int] | None:
    """The teacher's validation split (fraction, seed) when it was trained on the file with this
    `fingerprint`: the student keeps it, so its validation digits are unseen by the teacher too
    (else the student's checkpoint would be chosen on digits its teacher learned). None otherwise."""
    data = teacher_meta.get("data") or {}
    split = data.get("split")
    if data.get("fingerprint") != fingerprint or not split:
        return None
    return float(split["val_fraction"]), int(split["seed"])
