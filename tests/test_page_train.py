"""Train page: settings follow the architecture, a tiny job runs to its saved model, one job at a
time with its owner named, Stop works, the classic demo, and no TensorFlow until it is needed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import registry, training
from studio import training_ui as ui

ROOT = Path(__file__).resolve().parents[1]
PAGE = next((ROOT / "pages").glob("2_*_Train.py"))
PAGE_REL = f"pages/{PAGE.name}"


def _page() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=60)


def _in_app() -> AppTest:
    """The page inside the multipage app (so `st.page_link` to Evaluate resolves)."""
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=60)
    at.switch_page(PAGE_REL)
    return at


def _wait_for(at: AppTest, predicate, timeout: float, what: str) -> None:
    """Re-run the page (as the fragment's timer would) until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
        at.run()
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _texts(elements) -> list[str]:
    return [e.value for e in elements]


def _chart_keys(at: AppTest) -> set[str]:
    """User keys of the Plotly charts shown (element ids end with "-<key>")."""
    return {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}


# --------------------------------------------------------------------------- opening the page


def test_page_opens_fast_without_tensorflow(tmp_dirs):
    """In a fresh interpreter: the page renders with the default architecture and imports no TF."""
    code = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(PAGE)!r}, default_timeout=60).run()
print(json.dumps({{
    "exception": [e.value for e in at.exception],
    "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
    "arch": at.selectbox(key="train_arch").value, "epochs": at.number_input(key="train_epochs").value,
    "count_button": len([b for b in at.button if b.key == "train_count_params"]),
    "info": [i.value for i in at.info],
}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["exception"] == []
    assert out["tensorflow"] is False and out["keras"] is False
    assert out["arch"] == "dr-cnn" and out["epochs"] == 30
    assert out["count_button"] == 1  # the parameter count waits for a click (it would start TF)
    assert any("No training job" in i for i in out["info"])


def test_choosing_an_architecture_loads_its_settings(tmp_dirs, no_job):
    at = _page().run()
    assert not at.exception
    assert at.selectbox(key="train_optimizer").value == "adamw"
    assert at.selectbox(key="train_schedule").value == "one-cycle"
    at.selectbox(key="train_arch").set_value("kaggle-cnn").run()
    assert at.number_input(key="train_epochs").value == 20
    assert at.selectbox(key="train_batch_size").value == 86
    assert at.selectbox(key="train_optimizer").value == "rmsprop"
    assert at.selectbox(key="train_schedule").value == "plateau"
    assert at.toggle(key="train_augment").value is True
    assert any("Kaggle notebook" in c.value for c in at.caption)

    at.selectbox(key="train_arch").set_value("random-forest").run()
    assert at.number_input(key="train_n_estimators").value == 200
    assert "train_epochs" not in {n.key for n in at.number_input}  # no epochs for a forest
    assert any(m.value == "grows with the data" for m in at.metric)

    at.selectbox(key="train_arch").set_value("mlp").run()
    assert at.number_input(key="train_epochs").value == 10
    assert at.toggle(key="train_augment").value is False
    assert at.slider(key="train_augment_strength").disabled  # nothing to tune with augmentation off


def test_parameter_count_is_computed_on_request(tmp_dirs, no_job, monkeypatch):
    monkeypatch.setattr(ui, "keras_loaded", lambda: False)  # as on a fresh server
    at = _page()
    at.session_state["train_arch"] = "mlp"
    at.run()
    assert "Parameters" not in {m.label for m in at.metric}
    at.button(key="train_count_params").click().run()
    assert not at.exception
    assert next(m.value for m in at.metric if m.label == "Parameters") == "235,146"


def test_unsafe_model_name_is_refused_before_anything_starts(tmp_dirs, no_job):
    at = _page().run()
    at.selectbox(key="train_arch").set_value("mlp").run()
    at.text_input(key="train_name").set_value("../outside").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("invalid model name '../outside'" in e for e in _texts(at.error))
    assert training.current_job() is None
    assert list(tmp_dirs.models.iterdir()) == []


# --------------------------------------------------------------------------- a whole job


def test_tiny_job_runs_to_its_saved_model(tmp_dirs, no_job):
    at = _in_app().run()
    assert not at.exception
    at.selectbox(key="train_arch").set_value("mlp").run()
    at.number_input(key="train_epochs").set_value(2)
    at.slider(key="train_val_fraction").set_value(0.05)
    at.text_input(key="train_name").set_value("page-mlp")
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    job = training.current_job()
    assert job is not None and job.name == "page-mlp" and job.owner == at.session_state[ui.OWNER_KEY]
    assert at.session_state[ui.JOB_KEY] == "page-mlp"
    assert job.settings["epochs"] == 2 and job.settings["val_fraction"] == 0.05

    _wait_for(at, lambda: not job.running, 180, "the job to finish")
    at.run()
    assert not at.exception
    snap = job.snapshot()
    assert snap.status == "done", snap.error
    meta = registry.read_meta("page-mlp")
    acc, best = meta["metrics"]["val_accuracy"], meta["best_epoch"]
    assert _texts(at.success) == [
        f"Saved model **page-mlp** — validation accuracy **{acc:.2%}** (best epoch {best} of 2)."]
    assert acc > 0.85  # 8,550 sample digits, two epochs (~0.93 measured)
    assert at.get("progress")[0].value == 100
    assert {"train_live_curves", "train_lr_curve", "train_speed_curve"} <= _chart_keys(at)
    links = at.get("page_link")
    assert [link.proto.label for link in links] == ["Evaluate page-mlp"]
    assert "train_stop" not in {b.key for b in at.button}  # nothing left to stop
    # The chart's batch axis agrees with the job: its last step closes the second epoch.
    assert snap.batches["step"][-1] == 2 * ui.job_steps_per_epoch(job) == 2 * 67


def test_other_visitors_see_the_owner_cannot_stop_and_cannot_start(tmp_dirs, no_job, sample_train):
    owner, other = _page(), _page()
    owner.run()
    owner.selectbox(key="train_arch").set_value("mlp").run()
    owner.number_input(key="train_epochs").set_value(200)
    owner.button(key="train_start").click().run()
    job = training.current_job()
    assert job is not None and job.running
    owner_label = owner.session_state[ui.OWNER_KEY]

    other.run()
    assert not other.exception
    assert other.session_state[ui.OWNER_KEY] != owner_label
    assert any(f"started by **{owner_label}**" in m for m in _texts(other.markdown))
    assert "train_stop" not in {b.key for b in other.button}
    assert any(f"Only {owner_label}" in c for c in _texts(other.caption))
    other.button(key="train_start").click().run()
    busy = _texts(other.error)
    assert len(busy) == 1 and "already running" in busy[0] and owner_label in busy[0] and job.name in busy[0]
    assert training.current_job() is job  # the running job was not replaced

    _wait_for(owner, lambda: job.snapshot().batches["step"], 120, "the first batch")
    owner.run()
    assert any("started by **you**" in m for m in _texts(owner.markdown))
    owner.button(key="train_stop").click().run()
    t0 = time.monotonic()
    job.join(10)
    assert not job.running and time.monotonic() - t0 < 2.0
    owner.run()
    assert not owner.exception
    assert job.snapshot().status == "stopped"
    assert any("Stopped on request" in w for w in _texts(owner.warning))
    assert any(job.name in s for s in _texts(owner.success))
    assert registry.read_meta(job.name)["status"] == "stopped"


def test_failed_job_shows_its_error(tmp_dirs, no_job, sample_train, monkeypatch):
    def broken_build(name, **options):
        raise RuntimeError("out of memory while building")

    monkeypatch.setattr(training.models, "build", broken_build)
    config = training.TrainConfig(arch="mlp", name="will-fail")
    job = training.start_job(config, sample_train, owner="someone")
    job.join(120)
    at = _page().run()
    assert not at.exception
    errors = _texts(at.error)
    assert errors == ["Training failed: RuntimeError: out of memory while building. "
                      "Models saved before are untouched."]


# --------------------------------------------------------------------------- the classic demo


def test_classic_demo_shows_accuracy_confusion_and_comparison(tmp_dirs, no_job):
    at = _page().run()
    assert "train_demo_confusion" not in _chart_keys(at)
    at.button(key="train_demo").click().run()
    assert not at.exception
    metric = next(m for m in at.metric if m.label.startswith("Accuracy on 360 held-out 8x8 digits"))
    assert float(metric.value.rstrip("%")) > 90
    assert {"train_demo_confusion", "train_demo_comparison"} <= _chart_keys(at)
    at.run()  # stays shown on the next run
    assert "train_demo_confusion" in _chart_keys(at)


# --------------------------------------------------------------------------- Streamlit vs Keras


def test_page_stops_streamlit_from_resetting_keras_state(tmp_dirs, no_job):
    """Streamlit calls keras clear_session() after every run; with a job building its model in
    another thread that gave 'The name "dense" is used 2 times in the model'."""
    import keras  # noqa: F401 - Streamlit only resets Keras once it is imported
    from keras.src.backend.common import global_state

    _page().run()
    global_state.set_global_attribute("drs_marker", 42)
    _page().run()
    assert global_state.get_global_attribute("drs_marker") == 42


# --------------------------------------------------------------------------- helpers


def test_build_config_from_widget_values():
    values = {"train_arch": "mlp", "train_val_fraction": 0.2, "train_seed": 3, "train_name": " mine ",
              "train_epochs": 4, "train_batch_size": 64, "train_lr": 0.01, "train_optimizer": "sgd",
              "train_schedule": "cosine", "train_augment": True, "train_augment_strength": 0.5,
              "train_n_estimators": 99}
    config = ui.build_config(values)
    assert (config.arch, config.name, config.epochs, config.batch_size) == ("mlp", "mine", 4, 64)
    assert (config.optimizer, config.schedule, config.augment, config.augment_strength, config.seed) == (
        "sgd", "cosine", True, 0.5, 3)
    assert config.learning_rate == 0.01 and config.val_fraction == 0.2 and config.n_estimators is None
    forest = ui.build_config({**values, "train_arch": "random-forest", "train_name": ""})
    assert forest.n_estimators == 99 and forest.epochs is None and forest.name is None
    with pytest.raises(ValueError, match="invalid model name"):
        ui.build_config({**values, "train_name": "a/b"})


def test_arch_defaults_cover_every_setting_widget():
    assert ui.arch_defaults("kaggle-cnn")["train_batch_size"] == 86
    forest = ui.arch_defaults("random-forest")
    assert forest["train_n_estimators"] == 200 and forest["train_epochs"] == 10  # fallback for the widget
    for arch in ("dr-cnn", "kaggle-cnn", "lenet5", "mlp"):
        assert ui.arch_defaults(arch)["train_batch_size"] in ui.BATCH_SIZES


@pytest.mark.parametrize(
    ("n", "val", "batch", "extra", "expected"),
    [(400, 0.1, 32, 0, 12), (9000, 0.05, 128, 0, 67), (9000, 0.1, 128, 0, 64), (10, 0.5, 4, 3, 2)],
)
def test_steps_per_epoch(n, val, batch, extra, expected):
    assert ui.steps_per_epoch(n, val_fraction=val, batch_size=batch, n_extra=extra) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (float("nan"), "—"), (0.4, "0 s"), (59, "59 s"), (75, "1 min 15 s"), (3725, "1 h 02 min")],
)
def test_format_duration(seconds, text):
    assert ui.format_duration(seconds) == text


def _snap(**changes) -> training.Snapshot:
    base = dict(status="running", name="x", arch="mlp", owner="o", epoch=0, epochs=4, progress=0.02,
                eta_s=900.0, elapsed_s=30.0, images_per_s=None, learning_rate=None,
                batches={"step": [], "loss": [], "accuracy": []}, history=[], result=None, error=None,
                message="epoch 1/4, batch 3/10")
    return training.Snapshot(**{**base, **changes})


def test_progress_text():
    assert ui.progress_text(_snap()) == "epoch 1/4, batch 3/10 · 2% · elapsed 30 s"


def test_eta_waits_for_an_epoch_then_uses_its_duration():
    assert ui.eta_seconds(_snap()) is None  # 2% in: the start-up would dominate the job's estimate
    assert ui.eta_seconds(_snap(progress=0.2, eta_s=120.0)) == 120.0
    assert ui.eta_seconds(_snap(epochs=1, eta_s=50.0)) == 50.0
    assert ui.eta_seconds(_snap(epoch=1, progress=0.3, history=[{"epoch": 1, "time_s": 40.0}])) == 112.0
    history = [{"epoch": 1, "time_s": 40.0}, {"epoch": 2, "time_s": 10.0}, {"epoch": 3, "time_s": 14.0}]
    # 3.5 of 4 epochs done, 12 s per epoch after the start-up -> 6 s.
    assert ui.eta_seconds(_snap(epoch=3, progress=0.875, history=history)) == pytest.approx(6.0)
    assert ui.eta_seconds(_snap(status="done", progress=1.0, history=history)) is None


def test_result_line_names_the_model_its_accuracy_and_best_epoch():
    result = {"name": "x", "val_accuracy": 0.98765, "best_epoch": 2, "epochs_run": 3}
    snap = _snap(status="done", result=result)
    assert ui.result_line(snap) == "Saved model **x** — validation accuracy **98.77%** (best epoch 2 of 3)."
    forest = _snap(status="done", result={"name": "f", "val_accuracy": 0.9})
    assert ui.result_line(forest) == "Saved model **f** — validation accuracy **90.00%**."
