"""Page-side helpers of the Train page: widget defaults, the run's settings, who owns which run,
the time estimate, and the run to show.

A run trains in its own process (`core.jobs`) and reports through its files (`core.runs`); this
module turns widget values into a `TrainConfig`, remembers which run this visitor started, and
formats what the files say for people. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core import jobs, models, registry, runs, speed, status, training
from core.training import TrainConfig
from studio import visitor

EVALUATE_PAGE = "pages/3_📊_Evaluate.py"
BATCH_SIZES = [16, 32, 64, 86, 128, 256, 512]
JOB_KEY = "train_job_name"  # name of the run this session started
# How often a watched run is read again: its figures, and its charts (dearer to draw, in the
# visitor's browser and in this server, while the job wants every core).
STATUS_EVERY_S = 2.0
CHARTS_EVERY_S = 5.0

# Widget key -> TrainConfig field, for the settings that follow the architecture's defaults.
DEFAULT_KEYS = {
    "train_epochs": "epochs",
    "train_batch_size": "batch_size",
    "train_lr": "learning_rate",
    "train_optimizer": "optimizer",
    "train_schedule": "schedule",
    "train_augment": "augment",
    "train_augment_strength": "augment_strength",
    "train_checkpoint": "checkpoint",
    "train_n_estimators": "n_estimators",
}
FALLBACKS = {  # for a setting an architecture has no default for (the forest has no epochs)
    "epochs": 10, "batch_size": 128, "learning_rate": 1e-3, "optimizer": "adam",
    "schedule": "constant", "augment": False, "augment_strength": 1.0, "n_estimators": 200,
    "checkpoint": "best",
}


# --------------------------------------------------------------------------- who is who


def remember_started(name: str) -> None:
    """This session started run `name`: show it first, and keep ownership across a reload."""
    st.session_state[JOB_KEY] = name
    visitor.keep_in_address()


# --------------------------------------------------------------------------- settings


def arch_defaults(arch: str) -> dict[str, Any]:
    """Widget key -> value for the settings that suit `arch` (its defaults, else sensible ones)."""
    defaults = models.get_architecture(arch).defaults
    return {key: defaults.get(field, FALLBACKS[field]) for key, field in DEFAULT_KEYS.items()}


def apply_defaults(arch: str) -> None:
    """Set the hyper-parameter widgets to `arch`'s defaults (when the architecture changes)."""
    for key, value in arch_defaults(arch).items():
        st.session_state[key] = value


NO_TEACHER = "none"


def teachers(views: list[runs.RunView]) -> list[str]:
    """Saved Keras models and ensembles that can teach a new run, the most accurate first."""
    usable = [v for v in views
              if v.has_model and not v.active and registry.kind_of(v.meta) != registry.SKLEARN]
    return [v.name for v in sorted(usable, key=lambda v: -(v.kept_val_accuracy or 0.0))]


def teacher_changed() -> None:
    """A student sees each digit 1 + copies times an epoch: its own number of epochs (and back)."""
    from core import distill

    chosen = st.session_state.get("train_teacher", NO_TEACHER) != NO_TEACHER
    st.session_state["train_epochs"] = (distill.EPOCHS if chosen
                                        else arch_defaults(st.session_state["train_arch"])["train_epochs"])


def build_config(values: Mapping[str, Any]) -> TrainConfig:
    """A `TrainConfig` from the page's widget values (keys as the widgets': `train_*`).

    Raises ValueError with a message for people when the model name is not acceptable.
    """
    arch = models.get_architecture(values["train_arch"])
    name = (values.get("train_name") or "").strip() or None
    if name is not None:
        registry.validate_name(name)
    common = dict(arch=arch.name, val_fraction=float(values["train_val_fraction"]),
                  seed=int(values["train_seed"]), name=name)
    if arch.kind == models.SKLEARN:
        return TrainConfig(**common, n_estimators=int(values["train_n_estimators"]))
    return TrainConfig(
        **common,
        epochs=int(values["train_epochs"]),
        batch_size=int(values["train_batch_size"]),
        learning_rate=float(values["train_lr"]),
        optimizer=str(values["train_optimizer"]),
        schedule=str(values["train_schedule"]),
        augment=bool(values["train_augment"]),
        augment_strength=float(values["train_augment_strength"]),
        patience=int(values.get("train_patience") or 0) or None,
        checkpoint=str(values.get("train_checkpoint") or "best"),
        **_teacher(values),
    ).validate()


def _teacher(values: Mapping[str, Any]) -> dict[str, Any]:
    teacher = values.get("train_teacher") or NO_TEACHER
    if teacher == NO_TEACHER:
        return {}
    return {"teacher": str(teacher), "distill_copies": int(values.get("train_distill_copies", 12))}


# --------------------------------------------------------------------------- the estimate


@st.cache_resource
def _probes() -> tuple[threading.Lock, dict[str, subprocess.Popen]]:
    """Probe processes this server started, by settings (one at a time per settings)."""
    return threading.Lock(), {}


@dataclass(frozen=True)
class Estimate:
    """How long a run will take, or why that is not known yet."""

    seconds: float | None = None
    probe: dict | None = None
    measuring: bool = False
    failed: bool = False


def estimate(settings: dict, n_rows: int, *, busy: bool) -> Estimate:
    """The run's expected duration from the probe measured for its settings. Without one, a probe
    starts in the background, unless a job is running (`busy`), which would both slow it and be
    slowed by it."""
    measured = speed.cached_probe(settings)
    if measured is not None:
        n_val = math.ceil(float(settings["val_fraction"]) * n_rows)
        views = 1 + int(settings.get("distill_copies") or 0) if settings.get("teacher") else 1
        return Estimate(speed.estimate_seconds(settings, (n_rows - n_val) * views, n_val, measured), measured)
    lock, running = _probes()
    key = speed.probe_key(settings)
    with lock:
        proc = running.get(key)
        if proc is not None and proc.poll() is None:
            return Estimate(measuring=True)
        if proc is not None and proc.returncode != 0:
            return Estimate(failed=True)
        if busy:
            return Estimate()
        running[key] = speed.start_probe(settings)
    return Estimate(measuring=True)


def estimate_caption(found: Estimate, settings: dict) -> str:
    """The estimate in a line: how long, from what speed, and whether the probe ran on a busy machine."""
    probe = found.probe or {}
    busy = (f" It ran while the machine was busy (load {probe['load']:.1f}): this is pessimistic."
            if speed.measured_busy(probe) else "")
    return (f"⏱️ About **{format_duration(found.seconds)}** on this machine: {settings['epochs']} epochs at "
            f"{probe.get('images_per_s', 0):,.0f} images/s, measured by a short probe of these settings here."
            f"{busy}")


# --------------------------------------------------------------------------- the run to show


def run_to_show(views: list[runs.RunView]) -> runs.RunView | None:
    """The run this session started, else the one holding the job slot (training, or its process
    still starting: a finished run shown instead would not be polled, so the visitor would never see
    the job), else this visitor's newest (after a reload, by their key), else the newest of all that
    ever started (someone else's stopped run is not what a newcomer wants to see), else the newest."""
    mine = st.session_state.get(JOB_KEY)
    by_name = {v.name: v for v in views}
    if mine in by_name:
        return by_name[mine]
    running = [v for v in views if jobs.occupying(v)]
    owned = [v for v in views if jobs.owns(v.meta, visitor.token())]  # views are newest first
    started = [v for v in views if v.has_model or v.meta.get("started_at")]
    return next(iter(running + owned + started + views), None)


def page_is_stale(status_drawn: str, view: runs.RunView) -> bool:
    """Whether the live section must redraw the whole page: the run's status is not the one the page
    was drawn with (queued -> running, or it ended). Only the Progress section polls; without this
    the runs table below would go on saying "queued" for a run that is training."""
    return view.status != status_drawn


def steps_per_epoch(view: runs.RunView) -> int | None:
    """Batches per epoch of a Keras run, from its live view (None before the first report)."""
    steps, epochs = view.progress.get("steps"), view.progress.get("epochs")
    return int(steps // epochs) if steps and epochs else None


def size_metric(view: runs.RunView) -> tuple[str, str]:
    """("Epoch", "3 / 30") for a training run; ("Members", "3") for an ensemble."""
    job = view.meta.get("job") or {}
    if registry.kind_of(view.meta) == registry.ENSEMBLE or job.get("kind") == jobs.ENSEMBLE:
        return "Members", str(len(view.meta.get("members") or job.get("members") or []))
    epochs = view.progress.get("epochs") or (view.meta.get("params") or {}).get("epochs", "?")
    return "Epoch", f"{len(view.history)} / {epochs}"


def progress_share(view: runs.RunView) -> float:
    if view.status == status.DONE:
        return 1.0
    return min(1.0, max(0.0, float(view.progress.get("progress") or 0.0)))


def format_duration(seconds: float | None) -> str:
    """`75` -> "1 min 15 s"; `3725` -> "1 h 02 min"; None -> "—"."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_text(view: runs.RunView) -> str:
    """The line over the progress bar: what is happening, how far, for how long."""
    message = view.progress.get("message") or status.LABELS.get(view.status, view.status)
    elapsed = view.meta.get("training_time_s")
    return f"{message} · {progress_share(view):.0%} · elapsed {format_duration(elapsed)}"


def stop_label(meta: dict) -> str:
    """The stop button says what a stop keeps: the run's best epoch, or (keeping the last) the weights
    as they are when it stops (Keras validates the cut-short epoch and the run keeps it)."""
    return ("⏹ Stop (keeps the weights as they are)" if training.kept_rule(meta) == "last"
            else "⏹ Stop (keeps the best epoch)")


def result_line(view: runs.RunView) -> str:
    """What the page says of a run that saved a model."""
    acc = (view.meta.get("metrics") or {}).get("val_accuracy")
    acc_text = f"{acc:.2%}" if acc is not None else "—"
    best, done = view.meta.get("best_epoch"), view.meta.get("epochs_done")
    epochs = f" ({training.kept_rule(view.meta)} epoch {best} of {done})" if best and done else ""
    return f"Saved model **{view.name}** — validation accuracy **{acc_text}**{epochs}."


# --------------------------------------------------------------------------- slow things, cached


@st.cache_data(show_spinner="Training a RandomForest on scikit-learn's 8x8 digits…")
def sklearn_digits_demo(seed: int = 0) -> dict:
    """The classic demo's result (deterministic for a seed, so computed once per process)."""
    return training.train_sklearn_digits(seed=seed)


def mnist_results(limit: int = 6) -> list[dict]:
    """The best saved model of each architecture: label, validation accuracy, dataset (for the demo)."""
    best: dict[str, dict] = {}
    for info in registry.list_models():  # best first, so the first of each architecture wins
        arch = info.meta.get("arch", "?")
        if info.val_accuracy is None or arch in best:
            continue
        best[arch] = {"label": f"{info.name} ({arch})", "accuracy": float(info.val_accuracy),
                      "dataset": f"MNIST 28x28 ({info.data_source})"}
    return list(best.values())[:limit]


def link_to_evaluate(model_name: str) -> None:
    """A link to the Evaluate page (plain text where this app has no such page, e.g. in a test)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(EVALUATE_PAGE, label=f"Evaluate {model_name}", icon="📊",
                     query_params={"model": model_name})
    except StreamlitAPIException:
        st.caption("Open **Evaluate** in the sidebar to see where the model errs.")
