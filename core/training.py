"""Training, as the Keras examples read: settings, data, a model from its factory, `fit`, history.

`TrainConfig` holds a run's settings (None: the architecture's default) and refuses impossible
ones before any work starts. `fit` is the one place a Keras model is fitted; the job process
(`core.job_process`) gives it the callbacks that checkpoint, record, report and stop. Nothing here
writes files or imports Streamlit; Keras is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import data as data_mod
from core import models, registry

OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")
SCHEDULES = ("one-cycle", "cosine", "plateau", "constant")
CHECKPOINTS = ("best", "last")  # the epoch a run keeps: best on validation, or the schedule's last


def kept_rule(meta: dict) -> str:
    """Which epoch a recorded run keeps ("best" or "last"); runs recorded before the setting kept the best."""
    return "last" if (meta.get("params") or {}).get("checkpoint") == "last" else "best"


@dataclass
class TrainConfig:
    """Settings of one training run; None means "the architecture's default"."""

    arch: str = models.DEFAULT_ARCH
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    augment: bool | None = None
    augment_strength: float | None = None
    val_fraction: float = 0.1
    seed: int = 0
    name: str | None = None
    n_estimators: int | None = None
    label_smoothing: float = 0.0
    ema: float | None = None  # weight averaging: the momentum a step of the weights' moving average
    patience: int | None = None  # early stopping: epochs without a better validation accuracy
    checkpoint: str | None = None  # the epoch kept: "best" on validation or "last" (`CHECKPOINTS`)
    split_seed: int | None = None  # the validation split's seed when it differs from `seed` (ensembles)
    teacher: str | None = None  # a saved model whose probabilities teach this one (`core.distill`)
    distill_copies: int | None = None
    distill_alpha: float | None = None
    distill_temperature: float | None = None

    def validate(self) -> TrainConfig:
        """Refuse impossible settings before any work starts (a page or the CLI shows the message)."""
        arch = models.get_architecture(self.arch)
        if self.name is not None:
            registry.validate_name(self.name)
        if self.teacher is not None:
            registry.validate_name(self.teacher)
            if arch.kind != models.KERAS:
                raise ValueError(f"{self.arch} is not a Keras model: only those can learn from a teacher")
        elif any(v is not None for v in (self.distill_copies, self.distill_alpha, self.distill_temperature)):
            raise ValueError("the distillation settings need a teacher (--teacher NAME)")
        checks = [
            ("epochs", self.epochs, 1, 1000),
            ("batch_size", self.batch_size, 1, 8192),
            ("learning_rate", self.learning_rate, 1e-7, 10.0),
            ("augment_strength", self.augment_strength, 0.0, 3.0),
            ("n_estimators", self.n_estimators, 1, 5000),
            ("label_smoothing", self.label_smoothing, 0.0, 0.5),
            ("ema", self.ema, 0.5, 0.99999),
            ("patience", self.patience, 1, 1000),
            ("distill_copies", self.distill_copies, 0, 50),
            ("distill_alpha", self.distill_alpha, 0.0, 1.0),
            ("distill_temperature", self.distill_temperature, 1.0, 20.0),
        ]
        for field_name, value, lo, hi in checks:
            if value is not None and not lo <= value <= hi:
                raise ValueError(f"{field_name} must be between {lo:g} and {hi:g}, got {value}")
        if not 0.0 < self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be between 0 and 0.9 (exclusive), got {self.val_fraction}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.schedule is not None and self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if self.checkpoint is not None and self.checkpoint not in CHECKPOINTS:
            raise ValueError(f"unknown checkpoint rule {self.checkpoint!r}; "
                             f"choose one of: {', '.join(CHECKPOINTS)}")
        return self

    def resolved(self) -> dict:
        """All settings with the architecture's defaults filled in."""
        arch = models.get_architecture(self.arch)
        values = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        taught = {}
        if self.teacher is not None:  # a student sees each digit 1 + copies times an epoch: fewer epochs
            from core import distill

            taught = {"epochs": distill.EPOCHS, "distill_copies": distill.COPIES,
                      "distill_alpha": distill.ALPHA, "distill_temperature": distill.TEMPERATURE}
        settings = {**arch.defaults, **taught, **values}
        if self.teacher is not None:  # its digits are warped before training, never inside the model
            settings["augment"] = False
        return settings

    def with_teacher_split(self, fingerprint: str, file_name: str) -> tuple[TrainConfig, str | None]:
        """A student keeps its teacher's validation split when both learn from the file with this
        `fingerprint`, so its checkpoint is chosen on digits neither of them saw; otherwise the
        config as it is. With a note for people saying which (None without a teacher). ValueError
        when the teacher does not exist."""
        from core import distill

        if self.teacher is None:
            return self, None
        split = distill.teacher_split(registry.read_meta(self.teacher), fingerprint)
        if split is None:
            return self, (f"{self.teacher} was not trained on {file_name} with a recorded split: the "
                          "student's validation digits may be ones its teacher learned")
        return dataclasses.replace(self, val_fraction=split[0], split_seed=split[1]), (
            f"validation digits: {self.teacher}'s ({split[0]:.0%} of {file_name}, split seed {split[1]}), "
            "which the teacher never learned")

    @classmethod
    def from_settings(cls, settings: dict) -> TrainConfig:
        """The config a run recorded (`meta.json` "params"), unknown keys left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in known})


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Arrays:
    """A run's training and validation digits: images uint8 `(n, 28, 28)`, labels int64 `(n,)`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    split: dict  # how the validation digits were chosen (`data.describe_split`)
    train_targets: np.ndarray | None = None  # a teacher's targets for x_train (`core.distill`), else labels


def arrays(train: data_mod.Dataset, settings: dict, extra: data_mod.Dataset | None = None) -> Arrays:
    """The recorded, stable split of `train` (taught digits `extra` join the training part only).
    Images stay uint8: the model rescales them, and a quarter of the memory is held."""
    if not train.has_labels:
        raise ValueError(f"{train.name}: training needs a labelled file (label,pixel0..pixel783)")
    val_fraction = float(settings["val_fraction"])
    seed = int(settings["split_seed"] if settings.get("split_seed") is not None else settings["seed"])
    train_idx, val_idx = data_mod.split_indices(train.labels, val_fraction=val_fraction, seed=seed)
    x_tr, y_tr = train.images[train_idx], train.labels[train_idx]
    if extra is not None and extra.n:
        x_tr, y_tr = np.concatenate([x_tr, extra.images]), np.concatenate([y_tr, extra.labels])
    split = data_mod.describe_split(train.labels, val_idx, val_fraction=val_fraction, seed=seed)
    return Arrays(x_tr, y_tr, train.images[val_idx], train.labels[val_idx], split)


# --------------------------------------------------------------------------- Keras


def learning_rate(lr: float, schedule: str, total_steps: int):
    """The learning rate of a schedule over `total_steps` batches (a number, or a Keras schedule)."""
    import keras

    if schedule == "one-cycle":
        # Warm up from lr/25 over the first 20% of steps, then cosine-anneal to ~0.
        warm = max(1, int(total_steps * 0.2))
        return keras.optimizers.schedules.CosineDecay(
            lr / 25, max(1, total_steps - warm), alpha=1e-3, warmup_target=lr, warmup_steps=warm
        )
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps), alpha=1e-3)
    if schedule in ("plateau", "constant"):
        return lr
    raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")


def optimizer(name: str, rate, *, ema: float | None = None):
    """A Keras optimizer by name, at `rate` (a number or a schedule). With `ema` (a momentum a
    step) it also keeps a moving average of the weights (Polyak averaging, Keras' own `use_ema`):
    `fit` validates each epoch on the average and the run ends on it."""
    import keras

    averaging = dict(use_ema=True, ema_momentum=float(ema)) if ema else {}
    optimizers = {
        "adamw": lambda: keras.optimizers.AdamW(rate, weight_decay=1e-4, **averaging),
        "adam": lambda: keras.optimizers.Adam(rate, **averaging),
        "rmsprop": lambda: keras.optimizers.RMSprop(rate, rho=0.9, epsilon=1e-8, **averaging),
        "sgd": lambda: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, **averaging),
    }
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    return optimizers[name]()


def make_optimizer(name: str, lr: float, schedule: str, total_steps: int, *, ema: float | None = None):
    """A Keras optimizer with its learning-rate schedule over `total_steps` batches (and weight
    averaging with `ema`, see `optimizer`)."""
    return optimizer(name, learning_rate(lr, schedule, total_steps), ema=ema)


def _loss(settings: dict):
    """Sparse labels keep memory low; label smoothing needs one-hot targets (see `targets`); a
    student learns from its teacher's probabilities (`core.distill`)."""
    import keras

    if settings.get("teacher"):
        from core import distill

        return distill.loss(float(settings["distill_alpha"]), float(settings["distill_temperature"]))
    smoothing = float(settings.get("label_smoothing") or 0.0)
    if smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def _metrics(settings: dict) -> list:
    if settings.get("teacher"):
        from core import distill

        return [distill.accuracy]
    return ["accuracy"]


def compiled_model(settings: dict, *, steps_per_epoch: int):
    """A fresh model of the run's architecture, compiled with its optimizer, schedule and loss."""
    import keras

    keras.utils.set_random_seed(int(settings["seed"]))
    # A student's digits are warped once before training (`core.distill`): no warp inside the model
    # (its settings say augment False; a run recorded before they did is treated the same).
    augment = bool(settings.get("augment", False)) and not settings.get("teacher")
    model = models.build(settings["arch"], augment=augment,
                         augment_strength=float(settings.get("augment_strength", 1.0)))
    total_steps = steps_per_epoch * int(settings["epochs"])
    chosen = make_optimizer(settings["optimizer"], float(settings["learning_rate"]), settings["schedule"],
                            total_steps, ema=settings.get("ema"))
    # No XLA: on a CPU it made training several times slower.
    model.compile(optimizer=chosen, loss=_loss(settings), metrics=_metrics(settings), jit_compile=False)
    return model


def targets(labels: np.ndarray, settings: dict) -> np.ndarray:
    """Labels as the loss wants them: digits, one-hot rows when smoothing, or a student's rows."""
    if settings.get("teacher"):
        from core import distill

        return distill.label_targets(labels)
    if settings.get("label_smoothing"):
        return np.eye(10, dtype=np.float32)[labels]
    return labels


def settings_callbacks(settings: dict) -> list:
    """Keras callbacks the settings ask for: halving the rate when validation stalls (the plateau
    schedule), and early stopping after `patience` epochs without a better validation accuracy."""
    import keras

    found = []
    if settings["schedule"] == "plateau":
        found.append(keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=3, factor=0.5,
                                                       min_lr=1e-5))
    if settings.get("patience"):
        found.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                   patience=int(settings["patience"])))
    return found


def compile_to_continue(model, settings: dict, *, steps_per_epoch: int, epochs: int) -> None:
    """Compile a trained model for `epochs` more: its optimizer anew, the rate annealed from a tenth
    of its peak (the first schedule ended near zero; starting again at the peak would undo it)."""
    rate = learning_rate(float(settings["learning_rate"]) / 10, "cosine", steps_per_epoch * epochs)
    chosen = optimizer(settings["optimizer"], rate, ema=settings.get("ema"))
    model.compile(optimizer=chosen, loss=_loss(settings),
                  metrics=_metrics(settings), jit_compile=False)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, int(np.ceil(n_train / batch_size)))


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle_seed: int | None = None) -> Any:
    """A `tf.data` feed of `(x, y)` batches, reshuffled every epoch when `shuffle_seed` is given.

    Not Keras' own feed of numpy arrays: its autotuned parallel gather put whole epochs at ~920
    images/s on 2 cores whatever the model (one core idle), about half the epochs of a 42k
    job; this one (shuffled indices, one sequential gather a batch, autotuning off, two batches
    prefetched) never did (sample jobs: 0 of 39 epochs, against 11 of 52)."""
    import tensorflow as tf

    n = len(x)
    x_t, y_t = tf.constant(x), tf.constant(y)
    order = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        order = order.shuffle(n, seed=int(shuffle_seed), reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return (order.batch(batch_size)
            .map(lambda idx: (tf.gather(x_t, idx), tf.gather(y_t, idx)))
            .prefetch(2)
            .with_options(options))


def fit(model, data: Arrays, settings: dict, *, callbacks: list, initial_epoch: int = 0) -> dict:
    """Fit `model` on the run's digits for its epochs (after `initial_epoch` ones already done);
    the per-epoch history (Keras' own). With weight averaging each epoch is validated, checkpointed
    and logged on the averaged weights (the last callback swaps them in and out)."""
    batch = int(settings["batch_size"])
    if settings.get("ema"):
        from core.callbacks import ValidateAveraged

        callbacks = [*callbacks, ValidateAveraged(steps_per_epoch(len(data.x_train), batch))]
    y_train = data.train_targets if data.train_targets is not None else targets(data.y_train, settings)
    history = model.fit(
        batches(data.x_train, y_train, batch, shuffle_seed=int(settings["seed"]) + initial_epoch),
        epochs=initial_epoch + int(settings["epochs"]),
        initial_epoch=initial_epoch,
        validation_data=batches(data.x_val, targets(data.y_val, settings), batch),
        callbacks=[*settings_callbacks(settings), *callbacks],
        shuffle=False,  # the feed shuffles (Keras would only warn that it cannot)
        verbose=0,
    )
    return history.history


# --------------------------------------------------------------------------- scikit-learn


def fit_forest(data: Arrays, settings: dict, *, on_trees=None, stop=None):
    """Grow the run's forest a tenth at a time (so it can report and stop between steps); the
    forest and its validation metrics, or (None, {}) if stopped before the first step."""
    from sklearn.metrics import accuracy_score, log_loss

    total = int(settings.get("n_estimators", 200))
    forest = models.build(settings["arch"], n_estimators=0, seed=int(settings["seed"]))
    forest.set_params(warm_start=True)
    flat = data.x_train.reshape(len(data.x_train), -1) / 255.0
    grown, step = 0, max(1, total // 10)
    while grown < total and not (stop is not None and stop()):
        grown = min(total, grown + step)
        forest.set_params(n_estimators=grown).fit(flat, data.y_train)
        if on_trees is not None:
            on_trees(grown, total)
    if grown == 0:
        return None, {}
    proba = forest.predict_proba(data.x_val.reshape(len(data.x_val), -1) / 255.0)
    return forest, {
        "val_accuracy": float(accuracy_score(data.y_val, proba.argmax(1))),
        "val_loss": float(log_loss(data.y_val, proba, labels=list(range(10)))),
    }


def train_sklearn_digits(*, seed: int = 0, n_estimators: int = 200, test_size: float = 0.2) -> dict:
    """The classic demo: RandomForest on scikit-learn's own 8x8 `load_digits` (1,797 images).

    Shown beside our 28x28 models for comparison only; it cannot read MNIST-sized images, so it
    is not saved as a model.
    """
    from sklearn.datasets import load_digits
    from sklearn.metrics import accuracy_score, confusion_matrix
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        digits.data, digits.target, test_size=test_size, random_state=seed, stratify=digits.target
    )
    t0 = time.time()
    forest = models.build_random_forest(n_estimators=n_estimators, seed=seed).fit(x_tr, y_tr)
    pred = forest.predict(x_te)
    return {
        "dataset": "sklearn load_digits (8x8)",
        "n_train": len(x_tr),
        "n_test": len(x_te),
        "accuracy": float(accuracy_score(y_te, pred)),
        "confusion": confusion_matrix(y_te, pred, labels=list(range(10))).tolist(),
        "training_time_s": round(time.time() - t0, 3),
    }


def describe_settings(settings: dict[str, Any]) -> str:
    """One line summarising a run's settings, for logs and leaderboards."""
    keys = ("epochs", "batch_size", "learning_rate", "optimizer", "schedule", "augment", "ema", "seed",
            "teacher")
    return ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)


class KerasRuntime:
    """A Keras model called directly, for `prediction.predict_proba` (job processes only)."""

    def __init__(self, model):
        self.model = model

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(images.astype(np.float32), training=False))
