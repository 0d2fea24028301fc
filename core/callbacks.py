"""The Keras callbacks of a training job, each one small job: checkpoint, record, report, stop.

They know nothing of files: each is given the function that does its writing, so they are tested
with plain lists and the job process wires them to the run's files. This module imports Keras:
only job processes load it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

MAX_POINTS = 400  # per-batch points kept for the live chart (merged in pairs when full)


def current_lr(optimizer: Any) -> float | None:
    """The optimizer's learning rate now (a schedule evaluated at the current step)."""
    try:
        lr = optimizer.learning_rate
        return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
    except (AttributeError, TypeError, ValueError):
        return None


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the weights of the epoch the run keeps and hand the model to `save(model, epoch)` each
    time that changes. `keep="best"`: the best epoch so far by `monitor` (higher is better; a tie
    goes to the later epoch, further down the schedule). `keep="last"`: every epoch, for a schedule
    that anneals to its end, where the best validation epoch is often an earlier one by the split's
    noise; the best one is still tracked (`val_best_epoch`). `restore_best()` puts the kept weights
    back at the end."""

    def __init__(self, save: Callable[[Any, int], None], *, monitor: str = "val_accuracy",
                 best_value: float | None = None, best_epoch: int = 0, keep: str = "best",
                 val_best: tuple[float | None, int] | None = None):
        super().__init__()
        if keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
        self.save, self.monitor, self.keep = save, monitor, keep
        self.best_value, self.best_epoch = best_value, best_epoch  # a continued run's kept epoch so far
        # and its best validation epoch so far (the kept one, unless given)
        self.val_best_value, self.val_best_epoch = val_best or (best_value, best_epoch)
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        value = None if value is None else float(value)
        better = value is not None and (self.val_best_value is None or value >= self.val_best_value)
        if better:
            self.val_best_value, self.val_best_epoch = value, epoch + 1
        if not (better or self.keep == "last"):
            return
        self.best_value, self.best_epoch = value, epoch + 1
        self.best_weights = self.model.get_weights()
        self.save(self.model, epoch + 1)

    def restore_best(self) -> bool:
        """Set the model to its kept epoch's weights; False when no epoch (of this fit) was kept."""
        if self.best_weights is None:
            return False
        self.model.set_weights(self.best_weights)
        return True


class ValidateAveraged(keras.callbacks.Callback):
    """With an optimizer that averages the weights (`use_ema`): after an epoch's last batch, put the
    averaged weights in the model, so Keras validates them and the callbacks before this one
    (checkpoint, log) see and save them; then give training its own weights back. Place it last.
    At the end of `fit` Keras leaves the average in the model itself."""

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.raw: list[np.ndarray] | None = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.raw is None and (batch + 1 >= self.steps_per_epoch or self.model.stop_training):
            variables = self.model.trainable_variables
            self.raw = [np.asarray(v) for v in variables]
            averages = self.model.optimizer._model_variables_moving_average
            for variable, average in zip(variables, averages, strict=True):
                variable.assign(average)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.raw is not None:
            for variable, raw in zip(self.model.trainable_variables, self.raw, strict=True):
                variable.assign(raw)
            self.raw = None


class EpochLog(keras.callbacks.Callback):
    """One row per finished epoch (metrics, learning rate, seconds, images/s), all rows handed to
    `write(rows)` after each epoch: listed after `BestCheckpoint`, an epoch is published only once
    its checkpoint is on disk. A continued run passes its earlier `rows`: its history goes on."""

    def __init__(self, write: Callable[[list[dict]], None], *, n_train: int, rows: list[dict] | None = None):
        super().__init__()
        self.write, self.n_train = write, n_train
        self.rows: list[dict] = list(rows or [])
        self._offset = float(self.rows[-1].get("elapsed_s") or 0.0) if self.rows else 0.0
        self._t0 = self._epoch_t0 = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._t0 = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_t0 = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs, now = logs or {}, time.monotonic()
        took = max(1e-9, now - self._epoch_t0)
        self.rows.append({
            "epoch": epoch + 1,  # Keras counts on from `initial_epoch` when a run is continued
            **{k: _float(logs.get(k)) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
            "learning_rate": current_lr(self.model.optimizer),
            "time_s": round(took, 3),
            "elapsed_s": round(self._offset + now - self._t0, 3),
            "images_per_s": round(self.n_train / took, 1),
        })
        self.write(self.rows)


class LiveProgress(keras.callbacks.Callback):
    """The live view of a run: share done, images/s, time left, learning rate and the per-batch
    loss/accuracy (at most `max_points`: pairs merge as it fills), handed to `report(view)` at most
    once every `every_s` seconds and after each epoch. Speed is measured from the first finished
    batch: start-up (graph tracing) is not training speed."""

    def __init__(self, report: Callable[[dict], None], *, steps_per_epoch: int, epochs: int,
                 batch_size: int, every_s: float = 1.0, max_points: int = MAX_POINTS,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.report, self.steps, self.epochs = report, steps_per_epoch, epochs
        self.batch_size, self.every_s, self.max_points, self.clock = batch_size, every_s, max_points, clock
        self.points: dict[str, list[float]] = {"step": [], "loss": [], "accuracy": []}
        self.stride, self._bucket = 1, []
        self.epoch, self.step = 0, 0
        self._first: tuple[float, int] | None = None
        self._last_report = float("-inf")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step = self.epoch * self.steps + batch + 1
        now = self.clock()
        if self._first is None:
            self._first = (now, self.step)
        self._add_point(logs or {})
        if now - self._last_report >= self.every_s:
            self.report(self.view(now))
            self._last_report = now

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.report(self.view(self.clock(), epochs_done=epoch + 1))
        self._last_report = self.clock()

    def _add_point(self, logs: dict) -> None:
        self._bucket.append((_float(logs.get("loss")), _float(logs.get("accuracy"))))
        if len(self._bucket) < self.stride:
            return
        losses, accs = zip(*self._bucket, strict=True)
        self._bucket = []
        for key, value in (("step", self.step), ("loss", _mean(losses)), ("accuracy", _mean(accs))):
            self.points[key].append(value)
        if len(self.points["step"]) > self.max_points:  # merge neighbours: half the points, twice the stride
            self.points = {key: _pairs(values, last=key == "step") for key, values in self.points.items()}
            self.stride *= 2

    def view(self, now: float, *, epochs_done: int | None = None) -> dict:
        """What a page shows now (plain JSON values)."""
        total = self.steps * self.epochs
        done = self.step if epochs_done is None else max(self.step, epochs_done * self.steps)
        ips = eta = None
        if self._first is not None and self.step > self._first[1] and now > self._first[0]:
            rate = (self.step - self._first[1]) / (now - self._first[0])  # steps per second
            ips, eta = rate * self.batch_size, max(0.0, (total - done) / rate)
        return {
            "epoch": self.epoch + 1 if epochs_done is None else epochs_done,
            "epochs": self.epochs,
            "step": self.step,
            "steps": total,
            "progress": min(1.0, done / max(1, total)),
            "images_per_s": ips,
            "eta_s": eta,
            "learning_rate": current_lr(self.model.optimizer) if self.model is not None else None,
            "batches": {key: list(values) for key, values in self.points.items()},
        }


class StopOnRequest(keras.callbacks.Callback):
    """Stop after the current batch once `requested()` says so; Keras then validates the partial
    epoch and ends `fit` normally, so the best epoch is kept."""

    def __init__(self, requested: Callable[[], bool]):
        super().__init__()
        self.requested = requested
        self.stopped = False

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.stopped and self.requested():
            self.stopped = True
            self.model.stop_training = True


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _mean(values: tuple) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _pairs(values: list, *, last: bool) -> list:
    """Merge neighbours: the later step of each pair, or the mean of the pair's values."""
    merged = []
    for i in range(0, len(values) - 1, 2):
        merged.append(values[i + 1] if last else _mean((values[i], values[i + 1])))
    if len(values) % 2:
        merged.append(values[-1])
    return merged
