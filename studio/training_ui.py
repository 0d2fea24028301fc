"""Page-side helpers of the Train page: widget defaults, the run's settings, who owns the job.

`core.training` runs the job and knows no Streamlit; this module turns widget values into a
`TrainConfig`, caches what is slow to compute, and formats a `Snapshot` for people. Nothing here
imports TensorFlow: parameter counts build a Keras model, so they are computed only on request.
"""

from __future__ import annotations

import math
import secrets
import sys
from collections.abc import Mapping
from typing import Any

import streamlit as st

from core import models, registry
from core.training import Snapshot, TrainConfig
from studio.keras_guard import protect_keras_state  # noqa: F401 - re-exported for pages

EVALUATE_PAGE = "pages/3_📊_Evaluate.py"
BATCH_SIZES = [16, 32, 64, 86, 128, 256, 512]
OWNER_KEY = "train_owner"  # this visitor's label, shown to others ("visitor 3fa2c1")
JOB_KEY = "train_job_name"  # name of the job this session started: the session owns it

# Widget key -> TrainConfig field, for the settings that follow the architecture's defaults.
DEFAULT_KEYS = {
    "train_epochs": "epochs",
    "train_batch_size": "batch_size",
    "train_lr": "learning_rate",
    "train_optimizer": "optimizer",
    "train_schedule": "schedule",
    "train_augment": "augment",
    "train_augment_strength": "augment_strength",
    "train_n_estimators": "n_estimators",
}
FALLBACKS = {  # for a setting an architecture has no default for (the forest has no epochs)
    "epochs": 10, "batch_size": 128, "learning_rate": 1e-3, "optimizer": "adam",
    "schedule": "constant", "augment": False, "augment_strength": 1.0, "n_estimators": 200,
}


# --------------------------------------------------------------------------- Keras and Streamlit


# --------------------------------------------------------------------------- session


def owner_label() -> str:
    """A short, stable label for this visitor (what other visitors see as the job's owner)."""
    if OWNER_KEY not in st.session_state:
        st.session_state[OWNER_KEY] = f"visitor {secrets.token_hex(3)}"
    return st.session_state[OWNER_KEY]


def owns(snap: Snapshot) -> bool:
    """True when this session started the job shown (only the owner may stop it)."""
    return st.session_state.get(JOB_KEY) == snap.name


def arch_defaults(arch: str) -> dict[str, Any]:
    """Widget key -> value for the settings that suit `arch` (its defaults, else sensible ones)."""
    defaults = models.get_architecture(arch).defaults
    return {key: defaults.get(field, FALLBACKS[field]) for key, field in DEFAULT_KEYS.items()}


def apply_defaults(arch: str) -> None:
    """Set the hyper-parameter widgets to `arch`'s defaults (when the architecture changes)."""
    for key, value in arch_defaults(arch).items():
        st.session_state[key] = value


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
    )


# --------------------------------------------------------------------------- slow things, cached


def keras_loaded() -> bool:
    """Whether TensorFlow is already in this process (then a parameter count costs ~0.3 s)."""
    return "keras" in sys.modules


@st.cache_data(show_spinner="Building the model to count its parameters…")
def parameter_count(arch: str) -> int | None:
    """Parameters of `arch` (None for the forest); builds a Keras model, hence cached."""
    return models.parameter_count(arch)


def known_parameter_count(arch: str) -> int | None:
    """The parameter count a saved model of `arch` recorded (no TensorFlow needed), if any."""
    for info in registry.list_models():
        if info.meta.get("arch") == arch and info.meta.get("param_count"):
            return int(info.meta["param_count"])
    return None


@st.cache_data(show_spinner="Training a RandomForest on scikit-learn's 8x8 digits…")
def sklearn_digits_demo(seed: int = 0) -> dict:
    """The classic demo's result (deterministic for a seed, so computed once per process)."""
    from core import training

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


# --------------------------------------------------------------------------- formatting


def steps_per_epoch(n_rows: int, *, val_fraction: float, batch_size: int, n_extra: int = 0) -> int:
    """Batches in one epoch of a job on `n_rows` labelled digits (plus `n_extra` taught ones).

    Mirrors `core.data.split_indices`: the validation set takes ceil(val_fraction * n) rows.
    """
    n_train = n_rows - math.ceil(val_fraction * n_rows) + n_extra
    return max(1, math.ceil(n_train / max(1, batch_size)))


def job_steps_per_epoch(job) -> int | None:
    """Steps per epoch of a running Keras `TrainingJob` (None for the forest)."""
    if job.arch.kind != models.KERAS:
        return None
    s = job.settings
    return steps_per_epoch(job.train_set.n, val_fraction=float(s["val_fraction"]),
                           batch_size=int(s["batch_size"]), n_extra=job.extra.n if job.extra else 0)


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


def progress_text(snap: Snapshot) -> str:
    """The line over the progress bar: what is happening, how far, for how long."""
    return f"{snap.message} · {snap.progress:.0%} · elapsed {format_duration(snap.elapsed_s)}"


def eta_seconds(snap: Snapshot) -> float | None:
    """Seconds left, from the recent epochs' duration once there is one (None: not known yet).

    The job's own estimate spreads the start-up (TensorFlow import, graph building: seconds to a
    minute) over the whole run and overshoots early on; a finished epoch is a better clock.
    """
    if snap.status not in ("pending", "running"):
        return None
    times = [float(h["time_s"]) for h in snap.history if h.get("time_s")]
    if times:
        recent = times[1:][-3:] or times  # the first epoch includes the start-up; 3 smooth the noise
        return max(0.0, (snap.epochs - snap.progress * snap.epochs) * sum(recent) / len(recent))
    if snap.epochs <= 1 or snap.progress >= 0.1:
        return snap.eta_s
    return None


def best_val_accuracy(history: list[dict]) -> float | None:
    values = [h["val_accuracy"] for h in history if h.get("val_accuracy") is not None]
    return max(values) if values else None


def result_line(snap: Snapshot) -> str:
    """What the owner reads when the job ended with a saved model."""
    r = snap.result or {}
    acc = r.get("val_accuracy")
    acc_text = f"{acc:.2%}" if acc is not None else "—"
    epochs = f" (best epoch {r['best_epoch']} of {r['epochs_run']})" if "best_epoch" in r else ""
    return f"Saved model **{r.get('name', snap.name)}** — validation accuracy **{acc_text}**{epochs}."


def link_to_evaluate(model_name: str) -> None:
    """A link to the Evaluate page (plain text where this app has no such page, e.g. in a test)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(EVALUATE_PAGE, label=f"Evaluate {model_name}", icon="📊",
                     query_params={"model": model_name})
    except StreamlitAPIException:
        st.caption("Open **Evaluate** in the sidebar to see where the model errs.")
