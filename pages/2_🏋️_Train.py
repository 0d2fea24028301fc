"""Train: choose a model and its settings, start a job, watch it learn live, stop it, find the result.

Thin by design: widgets, then `core.jobs` (each run trains in its own process, never in this
server) and `core.runs` (what its files say), drawn with `core.charts.training`. The live view
polls the run's files once a second and redraws only when they changed.
"""

from __future__ import annotations

import streamlit as st

from core import data, jobs, models, runs, speed, status, training
from core.charts import training as charts
from studio import datasets, guards, runs_ui, visitor
from studio import training_ui as ui

st.set_page_config(page_title="Train · Digit Recognizer Studio", page_icon="🏋️", layout="wide")
st.session_state.setdefault("train_arch", models.DEFAULT_ARCH)
if "train_epochs" not in st.session_state:  # First visit (or back from a page without these widgets).
    ui.apply_defaults(st.session_state["train_arch"])
st.session_state.setdefault("train_val_fraction", 0.1)
st.session_state.setdefault("train_seed", 0)
st.session_state.setdefault("train_name", "")
st.session_state.setdefault("train_user_digits", False)
st.session_state.setdefault("train_patience", 0)
st.session_state.setdefault("train_teacher", ui.NO_TEACHER)
st.session_state.setdefault("train_distill_copies", 12)
owner = visitor.label()

st.title("🏋️ Train a model")
with guards.data_guard():
    train = datasets.train_set()
try:
    taught = data.load_user_digits()
except ValueError as exc:
    taught = None
    st.warning(f"Your taught digits cannot be used: {exc}")
st.caption(f"Training data: {datasets.describe(train)} · you are **{owner}**")
views = runs.list_runs()
busy = any(v.status == status.RUNNING for v in views)

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
    count_slot = st.empty()

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
                  help="1.0 = the architecture's own: ±10° rotation, ±10% zoom and shift (dr-cnn, "
                       "kaggle-cnn); ±15°, ±15% zoom per axis, ±10% shift (dr-v, dr-sep; dr-sep-elastic, "
                       "-deep and -deskew add a ±1 pixel elastic field)")
        c4.number_input("Early stopping", min_value=0, max_value=100, step=1, key="train_patience",
                        help="Stop after this many epochs without a better validation accuracy (0: never)")
        t1, t2, t3 = st.columns([2, 1, 1])
        _teachers = [ui.NO_TEACHER, *ui.teachers(views)]
        if st.session_state["train_teacher"] not in _teachers:  # deleted, or still training, since
            st.session_state["train_teacher"] = ui.NO_TEACHER
        t1.selectbox("Learn from a model (distillation)", _teachers,
                     key="train_teacher", on_change=ui.teacher_changed,
                     help="One model taught by a better, dearer one (an ensemble): each digit and warped "
                          "copies of it are labelled once by the teacher, and this model learns its "
                          "probabilities. It predicts at its own cost, near the teacher's accuracy.")
        t2.number_input("Warped copies", min_value=0, max_value=50, step=1, key="train_distill_copies",
                        disabled=st.session_state["train_teacher"] == ui.NO_TEACHER,
                        help="Copies of each digit the teacher labels: an epoch sees each 1 + this times")
        t3.selectbox("Epoch kept", training.CHECKPOINTS, key="train_checkpoint",
                     format_func=lambda rule: {"best": "best on validation", "last": "the last"}[rule],
                     help="Best: the epoch the validation digits score highest. Last: the schedule's end, "
                          "where one-cycle and cosine anneal the rate to ~0 (the best validation epoch "
                          "often wins by a few digits of noise); the run still records which that was")
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

try:
    config = ui.build_config(st.session_state)
    config, teacher_note = config.with_teacher_split(train.fingerprint, train.name)
except ValueError as exc:
    config, config_error, teacher_note = None, str(exc), None
else:
    config_error = None
if teacher_note:
    settings_col.caption(f"🎓 {teacher_note[0].upper()}{teacher_note[1:]}")


settings = config.resolved() if config is not None and arch.kind == models.KERAS else None
_measuring = settings is not None and ui.estimate(settings, train.n, busy=busy).measuring


@st.fragment(run_every=1.5 if _measuring else None)
def estimate_line(measuring: bool) -> None:
    """How long the run will take here, from a short probe of these settings (measured once)."""
    if settings is None:
        count_slot.metric("Parameters", "grows with the data", help="A forest's size: its trees' nodes")
        return
    found = ui.estimate(settings, train.n, busy=busy)
    if measuring and not found.measuring:
        st.rerun()  # measured: the whole page, so the parameter count shows too
    if found.probe is not None:
        count_slot.metric("Parameters", f"{found.probe['param_count']:,}")
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.caption(ui.estimate_caption(found, settings))
        if c2.button("Measure again", key="train_probe_again", disabled=busy):
            speed.forget(settings)
            st.rerun()
    elif found.measuring:
        st.caption("⏱️ Measuring this machine's speed for these settings (a few seconds, once)…")
    elif found.failed:
        st.caption("⏱️ The speed of these settings could not be measured here: no time estimate.")
    elif busy:
        st.caption("⏱️ The time estimate waits until the running job ends (a probe now would be wrong).")


estimate_line(_measuring)

queue_busy = len(jobs.running()) >= jobs.max_jobs()
b1, b2 = st.columns([1, 3], vertical_alignment="center")
start_label = "➕ Queue training" if queue_busy else "▶ Start training"
if b1.button(start_label, type="primary", key="train_start",
             help="Starts now, or waits in the queue while another job runs"):
    if config_error is not None:
        st.error(f"Not started: {config_error}")
    else:
        try:
            extra_n = n_taught if st.session_state["train_user_digits"] else 0
            name, started = jobs.submit(config, jobs.DataRef.of(train, datasets.train_file()), owner=owner,
                                        token=visitor.token(), user_digits=extra_n)
        except ValueError as exc:
            st.error(f"Not started: {exc}")
        else:
            ui.remember_started(name)
            if not started:
                st.info(f"{name} is queued: it starts by itself when the job before it ends.", icon="⏳")
            views = runs.list_runs()
with b2.expander("🧩 Train an ensemble (several seeds, their probabilities averaged)"):
    st.caption("Queues one run per seed with these settings, on the same validation digits, then saves "
               "their average as one model you can pick anywhere.")
    n_members = st.number_input("Members", min_value=2, max_value=5, value=3, key="train_ensemble_n")
    if st.button(f"🧩 Queue {int(n_members)} runs and their ensemble", key="train_ensemble",
                 disabled=config is None or arch.kind != models.KERAS):
        seeds = [int(st.session_state["train_seed"]) + i for i in range(int(n_members))]
        try:
            names = jobs.submit_ensemble(config, jobs.DataRef.of(train, datasets.train_file()), seeds,
                                         owner=owner, token=visitor.token())
        except ValueError as exc:
            st.error(f"Not queued: {exc}")
        else:
            ui.remember_started(names[0])
            st.success(f"Queued {', '.join(names[:-1])}, then the ensemble {names[-1]}.")
            views = runs.list_runs()
if not busy and any(v.status == status.QUEUED for v in views):
    jobs.start_next()  # nothing runs but runs wait (their job ended without starting them): go on

# ---- the run, live
st.subheader("Progress")
_shown = ui.run_to_show(views)
_polling = _shown is not None and _shown.active


@st.fragment(run_every=ui.STATUS_EVERY_S if _polling else None)
def live_status(name: str, polling: bool, status_drawn: str) -> None:
    """The run's progress and figures, read from its files; the whole page again when its status
    changes (it starts, or it ends: that stops the polling and shows the final state everywhere)."""
    view = runs.read_run(name)
    if polling and ui.page_is_stale(status_drawn, view):
        st.rerun()
    mine = jobs.owns(view.meta, visitor.token())
    who = "you" if mine else view.meta.get("owner", "?")
    st.markdown(f"**{view.name}** · {view.arch} · started by **{who}** · "
                f"status **{status.LABELS.get(view.status, view.status)}**")
    for problem in view.problems:
        st.warning(f"{view.name}: {problem}. The other runs are not affected.")
    st.progress(ui.progress_share(view), text=ui.progress_text(view))
    p = view.progress
    m1, m2, m3, m4, m5 = st.columns(5)
    kept = view.kept_val_accuracy
    m1.metric(*ui.size_metric(view))
    m2.metric("Validation accuracy", f"{kept:.2%}" if kept is not None else "—",
              help="Of the epoch this run keeps (its checkpoint rule: validation's best, or the last)")
    m3.metric("Images / s", f"{p['images_per_s']:,.0f}" if p.get("images_per_s") else "—")
    m4.metric("Learning rate", f"{p['learning_rate']:.2e}" if p.get("learning_rate") else "—")
    m5.metric("Time left", ui.format_duration(p.get("eta_s")) if view.active and p.get("eta_s") else "—",
              help="From the speed measured since the first batch")
    if view.active:
        if mine:
            if st.button(ui.stop_label(view.meta), key="train_stop"):
                jobs.stop(view.name, visitor.token())
                st.toast("Stopping after this batch…")
        else:
            st.caption(f"Only {view.meta.get('owner', 'its owner')}, who started this run, can stop it.")
    if view.status == status.FAILED:
        st.error(f"Training failed: {view.meta.get('error', 'no reason recorded')}. Models saved before are "
                 "untouched.")
    elif view.status == status.INTERRUPTED:
        st.warning("The job process died before the end. " + (
            f"Its kept epoch ({view.meta.get('best_epoch')}) is saved and usable." if view.has_model else
            "No epoch had ended: nothing was saved."))
    elif view.status in (status.DONE, status.STOPPED):
        if view.status == status.STOPPED:
            st.warning("Stopped on request: the epoch it keeps so far is saved." if view.has_model
                       else (view.meta.get("note") or "stopped before the first epoch ended: nothing was "
                             "saved").capitalize() + ".")
        if view.has_model:
            st.success(ui.result_line(view))
            ui.link_to_evaluate(view.name)


@st.fragment(run_every=ui.CHARTS_EVERY_S if _polling else None)
def live_charts(name: str) -> None:
    """The run's curves, redrawn less often than its figures: drawing a chart costs the visitor's
    browser far more than a line of text, and the job needs the CPU."""
    view = runs.read_run(name)
    batches = view.progress.get("batches") or {}
    if batches.get("step") or view.history:
        st.plotly_chart(charts.live_curves(batches, view.history, steps_per_epoch=ui.steps_per_epoch(view)),
                        key="train_live_curves")
        if len(view.history) >= 2 and any(h.get("learning_rate") is not None for h in view.history):
            c1, c2 = st.columns(2)
            c1.plotly_chart(charts.lr_curve(view.history), key="train_lr_curve")
            c2.plotly_chart(charts.throughput_curve(view.history), key="train_speed_curve")
    elif view.active:
        st.caption("Waiting for the first batch (the job process starts TensorFlow and builds the model)…")


if _shown is None:
    st.info("No training job has run here yet: choose the settings above and start one.")
else:
    live_status(_shown.name, _polling, _shown.status)
    live_charts(_shown.name)

# ---- every run: queue, table, curves side by side, looking after one
st.subheader("Runs")
runs_ui.queue(views)
runs_ui.runs_table(views, key="train_runs")
runs_ui.overlay(views, key="train_runs")
with st.expander("Manage a run: rename, note, download, continue, delete, import"):
    runs_ui.manage_run(views, key="train_manage")

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
