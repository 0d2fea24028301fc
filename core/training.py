"""Training jobs: fit a model in a background thread, report progress, stop on request, save.

A `TrainingJob` never touches Streamlit: pages poll `job.snapshot()`, the CLI prints it. One job
runs at a time in a process (`start_job`); a second request gets a `JobBusy` error saying whose job
is running. Each epoch that improves validation accuracy is saved at once through `core.registry`,
so a crash or a stop loses nothing but the epoch in progress.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import data as data_mod
from core import models, registry

BATCH_EVENT_LIMIT = 20_000  # per-batch points kept for the live chart


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

    def validate(self) -> TrainConfig:
        """Refuse impossible settings before any work starts (a page or the CLI shows the message)."""
        models.get_architecture(self.arch)
        checks = [
            ("epochs", self.epochs, 1, 1000),
            ("batch_size", self.batch_size, 1, 8192),
            ("learning_rate", self.learning_rate, 1e-7, 10.0),
            ("augment_strength", self.augment_strength, 0.0, 3.0),
            ("n_estimators", self.n_estimators, 1, 5000),
            ("label_smoothing", self.label_smoothing, 0.0, 0.5),
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
        return self

    def resolved(self) -> dict:
        """All settings with the architecture's defaults filled in."""
        arch = models.get_architecture(self.arch)
        values = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return {**arch.defaults, **values}


class JobBusy(RuntimeError):
    """Raised when a training job is requested while another one runs."""


@dataclass
class Snapshot:
    """What a page or terminal shows: a consistent copy of the job's progress."""

    status: str
    name: str
    arch: str
    owner: str
    epoch: int
    epochs: int
    progress: float
    eta_s: float | None
    elapsed_s: float
    images_per_s: float | None
    learning_rate: float | None
    batches: dict
    history: list[dict]
    result: dict | None
    error: str | None
    message: str


OPTIMIZERS = ("adamw", "adam", "rmsprop", "sgd")
SCHEDULES = ("one-cycle", "cosine", "plateau", "constant")


def _make_optimizer(name: str, lr: float, schedule: str, total_steps: int):
    import keras

    if schedule == "one-cycle":
        # Warm up from lr/25 over the first 20% of steps, then cosine-anneal to ~0.
        warm = max(1, int(total_steps * 0.2))
        rate = keras.optimizers.schedules.CosineDecay(
            lr / 25, max(1, total_steps - warm), alpha=1e-3, warmup_target=lr, warmup_steps=warm
        )
    elif schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(lr, max(1, total_steps), alpha=1e-3)
    elif schedule in ("plateau", "constant"):
        rate = lr
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=1e-4)
    if name == "adam":
        return keras.optimizers.Adam(rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate, rho=0.9, epsilon=1e-8)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def _current_lr(optimizer) -> float | None:
    try:
        lr = optimizer.learning_rate
        return float(lr.numpy() if hasattr(lr, "numpy") else lr)
    except Exception:  # noqa: BLE001 - a display value only
        return None


class TrainingJob:
    """One training run. `run()` trains in the calling thread; `start()` in a background thread."""

    def __init__(
        self,
        config: TrainConfig,
        train: data_mod.Dataset,
        *,
        owner: str = "cli",
        extra: data_mod.Dataset | None = None,
    ):
        if not train.has_labels:
            raise ValueError(f"{train.name}: training needs a labelled file (label,pixel0..pixel783)")
        self.config = config.validate()
        self.settings = config.resolved()
        self.arch = models.get_architecture(config.arch)
        base = config.name or f"{config.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.name = registry.unique_name(registry.validate_name(base))
        self.train_set = train
        self.extra = extra
        self.owner = owner
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = "pending"
        self.message = "waiting to start"
        self.error: str | None = None
        self.result: dict | None = None
        self.history: list[dict] = []
        self._batches: dict[str, list[float]] = {"step": [], "loss": [], "accuracy": []}
        self.epoch = 0
        self.epochs = int(self.settings.get("epochs", 1)) if self.arch.kind == models.KERAS else 1
        self._progress = 0.0
        self._t0: float | None = None
        self._first: tuple[float, float] | None = None  # (time, progress) at the first batch
        self._images_per_s: float | None = None
        self._lr: float | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> TrainingJob:
        self._thread = threading.Thread(target=self.run, name=f"train-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current batch; the best epoch so far is kept."""
        self._stop.set()
        with self._lock:
            if self.status in ("pending", "running"):
                self.message = "stopping after this batch…"

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.status in ("pending", "running")

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = time.time()
            elapsed = now - self._t0 if self._t0 else 0.0
            eta = None
            if self._first is not None and self._progress < 1:
                # Measured from the first finished batch: start-up (TensorFlow, graph) is not speed.
                t1, p1 = self._first
                if self._progress > p1:
                    eta = (now - t1) * (1 - self._progress) / (self._progress - p1)
            return Snapshot(
                status=self.status,
                name=self.name,
                arch=self.config.arch,
                owner=self.owner,
                epoch=self.epoch,
                epochs=self.epochs,
                progress=self._progress,
                eta_s=eta,
                elapsed_s=elapsed,
                images_per_s=self._images_per_s,
                learning_rate=self._lr,
                batches={k: list(v) for k, v in self._batches.items()},
                history=[dict(h) for h in self.history],
                result=self.result,
                error=self.error,
                message=self.message,
            )

    # ------------------------------------------------------------------ work

    def run(self) -> dict | None:
        """Train, save and return the final metrics (None if stopped before anything was saved)."""
        self._t0 = time.time()
        with self._lock:
            self.status, self.message = "running", "preparing data"
        try:
            result = self._run_sklearn() if self.arch.kind == models.SKLEARN else self._run_keras()
        except Exception as exc:  # noqa: BLE001 - reported to the user, never lost silently
            with self._lock:
                self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
                self.message = "training failed"
            return None
        with self._lock:
            self.result = result
            if result is None:
                self.status, self.message = "stopped", "stopped before the first epoch ended: nothing saved"
            else:
                self.status = "stopped" if self._stop.is_set() else "done"
                self.message = f"saved as {self.name}"
                self._progress = 1.0
        return result

    def _arrays(self):
        """Train/validation arrays from the stable, recorded split (plus user digits in train)."""
        ds = self.train_set
        val_fraction = float(self.settings["val_fraction"])
        seed = int(self.settings["seed"])
        train_idx, val_idx = data_mod.split_indices(ds.labels, val_fraction=val_fraction, seed=seed)
        x_tr, y_tr = ds.images[train_idx], ds.labels[train_idx]
        if self.extra is not None and self.extra.n:
            x_tr = np.concatenate([x_tr, self.extra.images])
            y_tr = np.concatenate([y_tr, self.extra.labels])
        split = data_mod.describe_split(ds.labels, val_idx, val_fraction=val_fraction, seed=seed)
        return x_tr, y_tr, ds.images[val_idx], ds.labels[val_idx], split

    def _base_meta(self, split: dict, n_train: int) -> dict:
        return {
            "name": self.name,
            "arch": self.config.arch,
            "kind": self.arch.kind,
            "description": self.arch.description,
            "params": self.settings,
            "seed": int(self.settings["seed"]),
            "data": {
                "name": self.train_set.name,
                "source": self.train_set.source,
                "fingerprint": self.train_set.fingerprint,
                "n_rows": self.train_set.n,
                "n_train": n_train,
                "user_digits": int(self.extra.n) if self.extra is not None else 0,
                "split": split,
            },
            "owner": self.owner,
            "created_at": registry.timestamp(),
            "input": "28x28 grey values 0..255, ink bright on dark (MNIST)",
        }

    def _run_sklearn(self) -> dict | None:
        from sklearn.metrics import accuracy_score, log_loss

        x_tr, y_tr, x_val, y_val, split = self._arrays()
        total = int(self.settings.get("n_estimators", 200))
        forest = models.build(self.config.arch, n_estimators=0, seed=int(self.settings["seed"]))
        forest.set_params(warm_start=True)
        flat = x_tr.reshape(len(x_tr), -1) / 255.0
        step = max(1, total // 10)
        grown = 0
        while grown < total and not self._stop.is_set():
            grown = min(total, grown + step)
            forest.set_params(n_estimators=grown)
            forest.fit(flat, y_tr)
            with self._lock:
                self._progress = grown / total * 0.95
                self.message = f"{grown}/{total} trees"
                self._images_per_s = len(x_tr) * grown / max(1e-9, time.time() - self._t0)
        if grown == 0:
            return None
        proba = forest.predict_proba(x_val.reshape(len(x_val), -1) / 255.0)
        metrics = {
            "val_accuracy": float(accuracy_score(y_val, proba.argmax(1))),
            "val_loss": float(log_loss(y_val, proba, labels=list(range(10)))),
        }
        meta = self._base_meta(split, len(x_tr))
        meta.update(
            metrics=metrics,
            status="stopped" if self._stop.is_set() else "complete",
            training_time_s=round(time.time() - self._t0, 2),
            param_count=None,
            n_estimators=grown,
            node_count=int(sum(t.tree_.node_count for t in forest.estimators_)),
        )
        registry.save_sklearn_model(self.name, forest)
        registry.save_train_hashes(self.name, data_mod.row_hashes(x_tr))
        registry.write_meta(self.name, meta)
        self.history = [{"epoch": 1, **metrics}]
        registry.write_history(self.name, self.history)
        return {"name": self.name, **metrics, "training_time_s": meta["training_time_s"]}

    def _run_keras(self) -> dict | None:
        import keras

        s = self.settings
        seed = int(s["seed"])
        keras.utils.set_random_seed(seed)
        x_tr, y_tr, x_val, y_val, split = self._arrays()
        x_tr, x_val = x_tr.astype(np.float32), x_val.astype(np.float32)
        model = models.build(
            self.config.arch,
            augment=bool(s.get("augment", False)),
            augment_strength=float(s.get("augment_strength", 1.0)),
        )
        batch_size = int(s["batch_size"])
        steps_per_epoch = int(np.ceil(len(x_tr) / batch_size))
        total_steps = steps_per_epoch * self.epochs
        optimizer = _make_optimizer(s["optimizer"], float(s["learning_rate"]), s["schedule"], total_steps)
        loss = keras.losses.SparseCategoricalCrossentropy()
        if s.get("label_smoothing"):
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=float(s["label_smoothing"]))
            y_tr_fit, y_val_fit = keras.utils.to_categorical(y_tr, 10), keras.utils.to_categorical(y_val, 10)
        else:
            y_tr_fit, y_val_fit = y_tr, y_val
        # No XLA: on this CPU it made training ~8x slower.
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], jit_compile=False)
        meta = self._base_meta(split, len(x_tr))
        meta["param_count"] = int(model.count_params())
        job = self
        best = {"acc": -1.0, "weights": None, "epoch": 0}

        class Progress(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch_t0 = time.time()

            def on_train_batch_end(self, batch, logs=None):
                logs = logs or {}
                with job._lock:
                    step = job.epoch * steps_per_epoch + batch + 1
                    b = job._batches
                    if len(b["step"]) < BATCH_EVENT_LIMIT:
                        b["step"].append(step)
                        b["loss"].append(float(logs.get("loss", np.nan)))
                        b["accuracy"].append(float(logs.get("accuracy", np.nan)))
                    job._progress = step / total_steps
                    if job._first is None:
                        job._first = (time.time(), job._progress)
                    seen = (batch + 1) * batch_size
                    job._images_per_s = seen / max(1e-9, time.time() - self.epoch_t0)
                    job.message = f"epoch {job.epoch + 1}/{job.epochs}, batch {batch + 1}/{steps_per_epoch}"
                if job._stop.is_set():
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})  # After a stop mid-epoch: that partial epoch, validated.
                lr = _current_lr(self.model.optimizer)
                row = {
                    "epoch": epoch + 1,
                    "loss": logs.get("loss"),
                    "accuracy": logs.get("accuracy"),
                    "val_loss": logs.get("val_loss"),
                    "val_accuracy": logs.get("val_accuracy"),
                    "learning_rate": lr,
                    "time_s": round(time.time() - self.epoch_t0, 3),
                    "elapsed_s": round(time.time() - job._t0, 3),
                    "images_per_s": round(len(x_tr) / max(1e-9, time.time() - self.epoch_t0), 1),
                }
                history = [*job.history, row]
                acc = float(row["val_accuracy"] or 0.0)
                # A tie goes to the later epoch: further down the schedule, it has learned more.
                if acc >= best["acc"]:
                    best.update(acc=acc, weights=self.model.get_weights(), epoch=epoch + 1)
                    registry.save_keras_model(job.name, self.model)
                    job._write_meta(meta, best, status="training", history=history)
                registry.write_history(job.name, history)
                with job._lock:  # Published only once its checkpoint and files are on disk.
                    job.history = history
                    job.epoch = epoch + 1
                    job._lr = lr

        callbacks: list = [Progress()]
        if s["schedule"] == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", patience=3, factor=0.5, min_lr=1e-5)
            )
        with self._lock:
            self.message = "training"
        model.fit(
            x_tr,
            y_tr_fit,
            batch_size=batch_size,
            epochs=self.epochs,
            validation_data=(x_val, y_val_fit),
            verbose=0,
            callbacks=callbacks,
            shuffle=True,
        )
        if best["weights"] is None:
            return None
        model.set_weights(best["weights"])
        registry.save_keras_model(self.name, model)
        registry.save_train_hashes(self.name, data_mod.row_hashes(x_tr))
        status = "stopped" if self._stop.is_set() else "complete"
        self._write_meta(meta, best, status=status)
        registry.write_history(self.name, self.history)
        m = self._read_best_metrics(best)
        return {
            "name": self.name,
            **m,
            "best_epoch": best["epoch"],
            "epochs_run": len(self.history),
            "training_time_s": round(time.time() - self._t0, 2),
            "status": status,
        }

    def _read_best_metrics(self, best: dict, history: list[dict] | None = None) -> dict:
        row = (history if history is not None else self.history)[best["epoch"] - 1]
        return {"val_accuracy": float(row["val_accuracy"]), "val_loss": float(row["val_loss"])}

    def _write_meta(self, meta: dict, best: dict, *, status: str, history: list[dict] | None = None) -> None:
        history = history if history is not None else self.history
        meta = dict(meta)
        meta.update(
            status=status,
            metrics=self._read_best_metrics(best, history),
            best_epoch=best["epoch"],
            epochs_done=len(history),
            training_time_s=round(time.time() - self._t0, 2),
        )
        registry.write_meta(self.name, meta)


# --------------------------------------------------------------------------- one job per process

_jobs_lock = threading.Lock()
_current: TrainingJob | None = None


def current_job() -> TrainingJob | None:
    """The job running now, or the last one that ran in this process."""
    return _current


def start_job(
    config: TrainConfig,
    train: data_mod.Dataset,
    *,
    owner: str,
    extra: data_mod.Dataset | None = None,
) -> TrainingJob:
    """Start a background job unless one is running (then `JobBusy` names it and its owner)."""
    global _current
    with _jobs_lock:
        if _current is not None and _current.running:
            raise JobBusy(
                f"a training job is already running: {_current.name} ({_current.config.arch}), "
                f"started by {_current.owner}; wait for it or ask its owner to stop it"
            )
        job = TrainingJob(config, train, owner=owner, extra=extra)
        _current = job
    return job.start()


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
    keys = ("epochs", "batch_size", "learning_rate", "optimizer", "schedule", "augment", "seed")
    return ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)
