"""The job process: runs one recorded run (`python -m core train`), reporting through its files.

`run(name)` marks the run running, loads its data, trains it (Keras with the callbacks of
`core.callbacks`, or the forest), keeps its best (or last) epoch, exports the serving copy, and
records how it ended: done, stopped or failed with the error text. A killed process leaves its last
kept epoch on disk and is shown as interrupted (`core.status`). When it ends it starts the next queued
run, if any.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core import data as data_mod
from core import jobs, models, registry, runs, serving, status, training

Echo = Callable[[str], None]


def _load_data(ref: dict) -> tuple[data_mod.Dataset, data_mod.Dataset | None]:
    """The file the run was started on, checked to be the same digits, and the taught digits."""
    path = Path(ref["path"])
    if path.suffix.lower() == ".zip":
        train = data_mod.load_zip(path)[0]
    else:
        train = data_mod.load_csv(path, expect_labels=True,
                                  source_kind=ref.get("source", data_mod.SOURCE_KAGGLE))
    if ref.get("fingerprint") and train.fingerprint != ref["fingerprint"]:
        raise ValueError(f"{path.name} changed since the run was started (other digits): start it again")
    extra = None
    wanted = int(ref.get("user_digits") or 0)
    if wanted:
        taught = data_mod.load_user_digits()
        if taught is None or taught.n < wanted:
            raise ValueError(f"the {wanted} taught digits the run was started with are gone")
        extra = data_mod.Dataset(taught.images[:wanted], taught.labels[:wanted], taught.name,
                                 taught.source, data_mod.fingerprint(taught.images[:wanted]))
    return train, extra


class Run:
    """The files of one run, as its job process writes them."""

    def __init__(self, name: str, echo: Echo | None = None):
        self.name, self.echo = name, echo or (lambda line: None)
        self.meta = registry.read_meta(name)
        self.t0 = time.monotonic()
        self.message = "starting"
        self.last_view: dict = {}

    def datasets(self) -> tuple[data_mod.Dataset, data_mod.Dataset | None]:
        """The run's training file and taught digits (see `_load_data`)."""
        return _load_data(self.meta["data"])

    def save_meta(self, **changes) -> None:
        self.meta.update(changes, training_time_s=round(time.monotonic() - self.t0, 2))
        registry.write_meta(self.name, self.meta)

    def progress(self, view: dict | None = None, *, message: str | None = None) -> None:
        """Rewrite the live view (the last one, with a new message, when `view` is None)."""
        if message is not None:
            self.message = message
        if view is not None:
            self.last_view = view
        runs.write_progress(self.name, {**self.last_view, "message": self.message})

    def epochs_done(self, rows: list[dict], best: Callable[[], int],
                    val_best: Callable[[], int] | None = None) -> None:
        """After each epoch (its checkpoint saved): the kept epoch's metrics in meta (`best_epoch`:
        the epoch kept, by the run's checkpoint rule; `val_best_epoch`: the one validation scored
        highest), then the history, so a history row on disk always has its meta and checkpoint before it."""
        row = rows[best() - 1] if best() else {}
        self.save_meta(metrics={"val_accuracy": row.get("val_accuracy"), "val_loss": row.get("val_loss")},
                       best_epoch=best(), val_best_epoch=(val_best or best)(), epochs_done=len(rows))
        registry.write_history(self.name, rows)
        self.echo(_epoch_line(rows[-1], int(self.meta["params"]["epochs"])))

    def finish(self, outcome: str, **changes) -> None:
        self.save_meta(status=outcome, ended_at=registry.timestamp(), **changes)
        self.progress(message={status.DONE: "done", status.STOPPED: "stopped",
                               status.FAILED: "failed"}.get(outcome, outcome))


def _epoch_line(row: dict, epochs: int) -> str:
    """One plain line for a finished epoch (logs, CI, a pipe)."""
    parts = [f"{key} {row[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
             if row.get(key) is not None]
    return f"epoch {int(row['epoch'])}/{epochs}: {', '.join(parts)} ({row['time_s']:.1f} s)"


def _fit_and_keep_best(run: Run, model, data: training.Arrays, *, epochs: int, done: int = 0,
                       history: list[dict] | None = None) -> bool:
    """Fit with the job's callbacks (checkpoint, record, report, stop); keep the best epoch with its
    serving copy. False when no epoch of this fit beat the best so far (nothing new to save)."""
    from core import callbacks

    settings = {**run.meta["params"], "epochs": epochs}
    batch = int(settings["batch_size"])
    steps = training.steps_per_epoch(len(data.x_train), batch)
    earlier = (run.meta.get("metrics") or {}).get("val_accuracy") if done else None
    best = callbacks.BestCheckpoint(lambda m, epoch: registry.save_keras_model(run.name, m),
                                    best_value=earlier,
                                    best_epoch=int(run.meta.get("best_epoch") or 0) if done else 0,
                                    keep=str(settings.get("checkpoint") or "best"),
                                    val_best=_val_best(history or []) if done else None)
    log = callbacks.EpochLog(lambda rows: run.epochs_done(rows, lambda: best.best_epoch,
                                                          lambda: best.val_best_epoch),
                             n_train=len(data.x_train), rows=history)
    live = callbacks.LiveProgress(run.progress, steps_per_epoch=steps, epochs=done + epochs, batch_size=batch)
    stop = callbacks.StopOnRequest(lambda: runs.stop_requested(run.name))
    run.progress(message="training")
    training.fit(model, data, settings, callbacks=[best, log, live, stop], initial_epoch=done)
    if not best.restore_best():
        return False
    run.progress(message="saving the kept epoch")
    registry.save_keras_model(run.name, model)
    _export(run, model)
    return True


def _val_best(rows: list[dict]) -> tuple[float | None, int] | None:
    """(validation accuracy, epoch) of the best of a run's epochs so far (a tie: the later); None
    when none was validated."""
    scored = [(float(r["val_accuracy"]), int(r["epoch"])) for r in rows if r.get("val_accuracy") is not None]
    return max(scored) if scored else None


def _export(run: Run, model) -> None:
    run.progress(message="making the serving copy")
    try:
        serving.export(model, registry.model_dir(run.name))
    except Exception as exc:  # noqa: BLE001 - the model is saved; the copy is made again on first use
        run.save_meta(export_error=f"{type(exc).__name__}: {exc}")


def _taught(run: Run, data: training.Arrays) -> training.Arrays:
    """A student's training digits: each one and its warped copies, labelled by its teacher
    (`core.distill`); other runs' digits as they are."""
    from core import distill, prediction

    settings = run.meta["params"]
    if not settings.get("teacher"):
        return data
    teacher = prediction.load(settings["teacher"])
    n = len(data.x_train) * (1 + int(settings["distill_copies"]))
    run.progress({"progress": 0.0, "epoch": 0, "epochs": int(settings["epochs"])},
                 message=f"the teacher {teacher.name} labels {n:,} digits")
    x, y = distill.teach(teacher, data.x_train, data.y_train, settings)
    return dataclasses.replace(data, x_train=x, y_train=y[:, 10].astype(data.y_train.dtype), train_targets=y)


def _train_keras(run: Run, data: training.Arrays) -> bool:
    """A new model of the run's architecture, fitted for its epochs (on its teacher's targets, if any)."""
    settings = run.meta["params"]
    data = _taught(run, data)
    steps = training.steps_per_epoch(len(data.x_train), int(settings["batch_size"]))
    model = training.compiled_model(settings, steps_per_epoch=steps)
    run.save_meta(param_count=int(model.count_params()))
    return _fit_and_keep_best(run, model, data, epochs=int(settings["epochs"]))


def _continue(run: Run) -> bool:
    """More epochs for an ended Keras run, from its saved best epoch: its history goes on."""
    extra, params = int(run.meta["job"]["epochs"]), run.meta["params"]
    history = registry.read_history(run.name)
    done = len(history)
    data = _taught(run, _arrays(run))
    model = registry.load_keras(run.name)
    training.compile_to_continue(model, params, steps_per_epoch=training.steps_per_epoch(
        len(data.x_train), int(params["batch_size"])), epochs=extra)
    run.save_meta(params={**params, "epochs": done + extra},
                  continued=[*run.meta.get("continued", []), {"from_epoch": done, "epochs": extra,
                                                              "at": registry.timestamp()}])
    _fit_and_keep_best(run, model, data, epochs=extra, done=done, history=history)
    return True  # the best model is on disk either way (from before, or better now)


def _ensemble(run: Run) -> bool:
    """Combine the ended member runs into one model (their probabilities averaged)."""
    from core import ensembles

    names = list(run.meta["job"]["members"])
    metas = ensembles.check_members(names)
    run.progress({"progress": 0.2, "epoch": 0, "epochs": 0}, message=f"combining {len(names)} models")
    model = ensembles.combine([registry.load_keras(n) for n in names], name="ensemble")
    train, _ = run.datasets()
    accuracy = ensembles.validation_accuracy(model, metas, train)
    registry.save_keras_model(run.name, model)
    _export(run, model)
    registry.save_train_hashes(run.name, ensembles.union_hashes(names))
    run.save_meta(**ensembles.meta_for(run.name, metas, val_accuracy=accuracy,
                                       param_count=int(model.count_params())))
    return True


def _train_forest(run: Run, data: training.Arrays) -> bool:
    def on_trees(grown: int, total: int) -> None:
        run.progress({"progress": 0.95 * grown / total, "epoch": 1, "epochs": 1},
                     message=f"{grown}/{total} trees")

    forest, metrics = training.fit_forest(data, run.meta["params"], on_trees=on_trees,
                                          stop=lambda: runs.stop_requested(run.name))
    if forest is None:
        return False
    registry.save_sklearn_model(run.name, forest)
    run.save_meta(metrics=metrics, param_count=None, n_estimators=len(forest.estimators_),
                  node_count=int(sum(t.tree_.node_count for t in forest.estimators_)),
                  best_epoch=1, epochs_done=1)
    registry.write_history(run.name, [{"epoch": 1, **metrics}])
    return True


def _arrays(run: Run) -> training.Arrays:
    """The run's training and validation digits; the whole file is let go (fit needs the memory)."""
    train, extra = run.datasets()
    return training.arrays(train, run.meta["params"], extra)


def _train(run: Run) -> bool:
    data = _arrays(run)
    run.meta["data"].update(n_train=len(data.x_train), split=data.split)
    fitted = models.get_architecture(run.meta["arch"]).kind == models.SKLEARN
    saved = (_train_forest if fitted else _train_keras)(run, data)
    if saved:
        hashes = data_mod.row_hashes(data.x_train)
        teacher = run.meta["params"].get("teacher")
        if teacher:  # what the teacher learned from, the student learned from too (the leakage check)
            from core import ensembles

            hashes = np.unique(np.concatenate([hashes, ensembles.union_hashes([teacher])]))
        registry.save_train_hashes(run.name, hashes)
    return saved


def _claim(name: str, echo: Echo | None) -> Run:
    """Mark the queued run as this process's (under the queue lock, so its launcher has finished
    writing); ValueError if it is not queued."""
    with jobs.queue_lock():
        current = Run(name, echo)
        if current.meta.get("status") != status.QUEUED:
            raise ValueError(f"run {name!r} is not queued (it is {status.status_of(current.meta)})")
        current.save_meta(status=status.RUNNING, started_at=registry.timestamp())
    return current


def _finetune(run: Run) -> bool:
    from core import finetune

    return finetune.run_job(run)


KINDS: dict[str, Callable[[Run], bool]] = {jobs.TRAIN: _train, jobs.FINETUNE: _finetune,
                                            jobs.CONTINUE: _continue, jobs.ENSEMBLE: _ensemble}


def run(name: str, *, echo: Echo | None = None, tracebacks: bool = False) -> dict | None:
    """Run queued run `name` in this process; its final metrics, or None if nothing was saved. A
    failure is recorded in its meta (and, with `tracebacks`, its whole traceback echoed to the log)."""
    current = _claim(name, echo)
    saved = False
    try:
        kind = current.meta.get("job", {}).get("kind", jobs.TRAIN)
        if kind not in KINDS:
            raise ValueError(f"unknown kind of job {kind!r}; expected one of: {', '.join(KINDS)}")
        saved = not runs.stop_requested(name) and KINDS[kind](current)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded for the page, never lost
        current.finish(status.FAILED, error=f"{type(exc).__name__}: {exc}")
        if tracebacks:
            current.echo(traceback.format_exc())
    else:
        if saved:
            current.finish(status.STOPPED if runs.stop_requested(name) else status.DONE)
        else:
            current.finish(status.STOPPED, note="stopped before the first epoch ended: nothing was saved")
    finally:
        jobs.start_next()
    if not saved:
        return None
    meta = current.meta
    return {"name": name, **(meta.get("metrics") or {}), "best_epoch": meta.get("best_epoch"),
            "checkpoint": (meta.get("params") or {}).get("checkpoint"),
            "val_best_epoch": meta.get("val_best_epoch"),
            "epochs_run": meta.get("epochs_done"), "training_time_s": meta["training_time_s"],
            "status": meta["status"]}
