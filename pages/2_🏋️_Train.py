"""Train: choose a model and its settings, start a job, watch it learn live, stop it, find the result.

Thin by design: widgets, then `core.training` (the job runs in a background thread that never
touches Streamlit) and `core.charts.training`. TensorFlow is imported only when a job starts or a
parameter count is asked for, so this page opens fast.
"""

from __future__ import annotations

import streamlit as st

from core import data, models, training
from core.charts import training as charts
from studio import datasets
from studio import training_ui as ui

st.set_page_config(page_title="Train · Digit Recognizer Studio", page_icon="🏋️", layout="wide")
ui.protect_keras_state()  # before any job exists: Streamlit's per-run Keras reset breaks training threads
st.session_state.setdefault("train_arch", models.DEFAULT_ARCH)
if "train_epochs" not in st.session_state:  # First visit (or back from a page without these widgets).
    ui.apply_defaults(st.session_state["train_arch"])
st.session_state.setdefault("train_val_fraction", 0.1)
st.session_state.setdefault("train_seed", 0)
st.session_state.setdefault("train_name", "")
st.session_state.setdefault("train_user_digits", False)
owner = ui.owner_label()

st.title("🏋️ Train a model")
try:
    train = datasets.train_set()
except ValueError as exc:
    st.error(f"The training data could not be loaded: {exc}")
    st.stop()
try:
    taught = data.load_user_digits()
except ValueError as exc:
    taught = None
    st.warning(f"Your taught digits cannot be used: {exc}")
st.caption(f"Training data: {datasets.describe(train)} · you are **{owner}**")

# ---- settings
arch_col, settings_col = st.columns([1, 2], gap="large")
with arch_col:
    arch_name = st.selectbox(
        "Architecture",
        list(models.ARCHITECTURES),
        key="train_arch",
        on_change=lambda: ui.apply_defaults(st.session_state["train_arch"]),
    )
    arch = models.get_architecture(arch_name)
    st.caption(arch.description)
    if arch.kind == models.KERAS:
        count = ui.known_parameter_count(arch.name)
        if count is None and (ui.keras_loaded() or st.button("Count parameters", key="train_count_params",
                                                                help="Builds the model: starts TensorFlow")):
            count = ui.parameter_count(arch.name)
        if count is not None:
            st.metric("Parameters", f"{count:,}")
    else:
        st.metric("Parameters", "grows with the data", help="A forest's size is set by its trees' nodes")

with settings_col:
    c1, c2, c3, c4 = st.columns(4)
    if arch.kind == models.KERAS:
        c1.number_input("Epochs", min_value=1, max_value=200, step=1, key="train_epochs")
        c2.selectbox("Batch size", ui.BATCH_SIZES, key="train_batch_size")
        c3.number_input("Peak learning rate", min_value=1e-5, max_value=1.0, step=1e-4, format="%.5f",
                        key="train_lr")
        c4.selectbox("Optimizer", training.OPTIMIZERS, key="train_optimizer")
        c1.selectbox("Schedule", training.SCHEDULES, key="train_schedule",
                     help="one-cycle: warm up, then anneal; plateau: halve when validation stalls")
        c2.toggle("Augment", key="train_augment",
                  help="Random rotations, zooms and shifts while training (never when predicting)")
        c3.slider("Augmentation strength", min_value=0.0, max_value=2.0, step=0.1,
                  key="train_augment_strength", disabled=not st.session_state["train_augment"],
                  help="1.0 = ±10° rotation, ±10% zoom and shift")
    else:
        c1.number_input("Trees", min_value=10, max_value=1000, step=10, key="train_n_estimators")
    c4.slider("Validation fraction", min_value=0.02, max_value=0.5, step=0.01, key="train_val_fraction",
              help="Held out, stratified by digit; the same seed gives the same split")
    c1, c2, c3 = st.columns([1, 2, 2], vertical_alignment="bottom")
    c1.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="train_seed")
    c2.text_input("Model name", key="train_name", max_chars=64,
                  placeholder=f"automatic: {arch.name}-<date>-<time>",
                  help="Letters, digits, '_', '.' or '-'; an existing name gets a -2, -3… suffix")
    n_taught = taught.n if taught is not None else 0
    c3.checkbox(f"Add my taught digits ({n_taught})", key="train_user_digits", disabled=n_taught == 0,
                help="Digits you drew and labelled on the Draw page, added to the training set only")

if st.button("▶ Start training", type="primary", key="train_start"):
    try:
        config = ui.build_config(st.session_state)
        extra = taught if st.session_state["train_user_digits"] and n_taught else None
        job = training.start_job(config, train, owner=owner, extra=extra)
    except training.JobBusy as exc:
        st.error(f"Not started: {exc}.", icon="⏳")
    except ValueError as exc:
        st.error(f"Not started: {exc}")
    else:
        st.session_state[ui.JOB_KEY] = job.name

# ---- the job, live
st.subheader("Progress")
_job = training.current_job()
_polling = _job is not None and _job.running


@st.fragment(run_every=1.0 if _polling else None, key="train_live")
def live(polling: bool) -> None:
    """Poll the job once a second while it runs; redraw the whole page once when it ends."""
    job = training.current_job()
    if job is None:
        st.info("No training job has run on this server yet: choose the settings above and start one.")
        return
    snap = job.snapshot()
    if polling and not job.running:
        st.rerun()  # The whole page: stops the polling and shows the final state everywhere.
    mine = ui.owns(snap)
    st.markdown(f"**{snap.name}** · {snap.arch} · started by **{'you' if mine else snap.owner}** · "
                f"status **{snap.status}**")
    st.progress(min(1.0, max(0.0, snap.progress)), text=ui.progress_text(snap))
    m1, m2, m3, m4, m5 = st.columns(5)
    best = ui.best_val_accuracy(snap.history)
    m1.metric("Epoch", f"{snap.epoch} / {snap.epochs}")
    m2.metric("Best validation accuracy", f"{best:.2%}" if best is not None else "—")
    m3.metric("Images / s", f"{snap.images_per_s:,.0f}" if snap.images_per_s else "—")
    m4.metric("Learning rate", f"{snap.learning_rate:.2e}" if snap.learning_rate else "—")
    eta = ui.eta_seconds(snap)
    m5.metric("Time left", ui.format_duration(eta) if eta is not None else "—",
              help="Measured on the last epoch; known once the first one ends")
    if job.running:
        if mine:
            if st.button("⏹ Stop (keeps the best epoch)", key="train_stop"):
                job.stop()
                st.toast("Stopping after this batch…")
        else:
            st.caption(f"Only {snap.owner}, who started this job, can stop it.")

    if snap.batches["step"] or snap.history:
        st.plotly_chart(
            charts.live_curves(snap.batches, snap.history, steps_per_epoch=ui.job_steps_per_epoch(job)),
            key="train_live_curves",
        )
        if len(snap.history) >= 2 and any(h.get("learning_rate") is not None for h in snap.history):
            c1, c2 = st.columns(2)
            c1.plotly_chart(charts.lr_curve(snap.history), key="train_lr_curve")
            c2.plotly_chart(charts.throughput_curve(snap.history), key="train_speed_curve")
    elif job.running:
        st.caption("Waiting for the first batch (TensorFlow starts and builds the model: a few seconds)…")

    if snap.status == "failed":
        st.error(f"Training failed: {snap.error}. Models saved before are untouched.")
    elif snap.result is not None:
        if snap.status == "stopped":
            st.warning("Stopped on request: the best epoch so far was kept.")
        st.success(ui.result_line(snap))
        ui.link_to_evaluate(snap.name)
    elif snap.status == "stopped":
        st.warning(snap.message)


live(_polling)

# ---- the classic demo
st.divider()
st.subheader("Classic demo: RandomForest on scikit-learn's 8x8 digits")
st.caption(
    "scikit-learn's `load_digits` has 1,797 tiny 8x8 digits. A RandomForest reads them well in about a "
    "second; it is shown beside the models trained here on 28x28 MNIST (validation accuracy)."
)
if st.button("Run the classic demo", key="train_demo"):
    st.session_state["train_demo_shown"] = True
if st.session_state.get("train_demo_shown"):
    demo = ui.sklearn_digits_demo(0)
    c1, c2 = st.columns(2)
    with c1:
        st.metric(f"Accuracy on {demo['n_test']} held-out 8x8 digits", f"{demo['accuracy']:.2%}",
                  help=f"Trained on {demo['n_train']} digits in {demo['training_time_s']:.1f} s")
        st.plotly_chart(charts.confusion_heatmap(demo["confusion"], title="8x8 forest: confusion matrix"),
                        key="train_demo_confusion")
    with c2:
        demo_row = dict(label="RandomForest (8x8 demo)", accuracy=demo["accuracy"], dataset=demo["dataset"])
        rows = [demo_row, *ui.mnist_results()]
        st.plotly_chart(charts.accuracy_comparison(rows), key="train_demo_comparison")
        st.caption("The 8x8 set is smaller and cleaner than MNIST: its score is not a like-for-like result.")
