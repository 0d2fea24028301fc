"""Train page: settings follow the architecture, the time is estimated from a probe, a tiny job runs in
its own process to its saved model, one job at a time with its owner named, only the owner stops it
(also after a reload), damaged runs are named while the others stay listed, and the page never loads
TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_support import app, chart_keys, in_app, page_file
from streamlit.testing.v1 import AppTest

from core import distill, jobs, models, registry, runs, speed, status, training
from studio import guards, visitor
from studio import training_ui as ui

KERAS_ARCHS = [name for name, a in models.ARCHITECTURES.items() if a.kind == models.KERAS]

ROOT = Path(__file__).resolve().parents[1]
PAGE = page_file("Train")


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


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def measured(tmp_dirs):
    """Probes already measured for the default settings of every Keras architecture, as the page
    keeps them after measuring (so opening the page starts no probe process)."""
    for arch in KERAS_ARCHS:
        settings = training.TrainConfig(arch=arch).resolved()
        speed.remember(settings, {"images_per_s": 1000.0, "start_up_s": 5.0, "param_count": 1234})
    return tmp_dirs


def _fake_run(name: str, **meta) -> None:
    """A run folder as a job process leaves it (no training: the page only reads files)."""
    registry.write_meta(name, {"name": name, "arch": "mlp", "kind": "keras", "owner": "someone",
                               "created_at": "2026-11-30T10:00:00", "params": {"epochs": 2}, **meta})


# --------------------------------------------------------------------------- opening the page


def test_a_bad_training_file_is_one_error_line_and_the_page_stops(tmp_dirs):
    (tmp_dirs.data / "train.csv").write_text("label,pixel0\n1,2\n")
    at = app("Train").run()
    assert not at.exception and not at.button
    assert len(at.error) == 1
    assert at.error[0].value.startswith(guards.DATA_ERROR.format("train.csv: header has 2 columns"))


@pytest.mark.slow  # the probe it starts times Keras training steps
def test_page_opens_without_tensorflow_and_estimates_from_a_real_probe(tmp_dirs):
    """In a fresh interpreter: the page renders, imports no TF, and measures this machine's speed in a
    child process (a real probe); once measured, the estimate and parameter count are shown."""
    code = f"""
import json, sys, time
sys.path.insert(0, {str(ROOT)!r})
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(PAGE)!r}, default_timeout=60)
at.session_state["train_arch"] = "mlp"
at.run()
first = [c.value for c in at.caption]
deadline = time.time() + 120
while time.time() < deadline and not any("About **" in c.value for c in at.caption):
    time.sleep(1)
    at.run()
print(json.dumps({{
    "exception": [e.value for e in at.exception], "first": first,
    "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules,
    "captions": [c.value for c in at.caption], "metrics": {{m.label: m.value for m in at.metric}},
    "info": [i.value for i in at.info],
}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["exception"] == []
    assert out["tensorflow"] is False and out["keras"] is False
    assert any("Measuring this machine's speed" in c for c in out["first"])
    estimate = next(c for c in out["captions"] if "About **" in c)
    assert "10 epochs at" in estimate and "images/s" in estimate
    assert out["metrics"]["Parameters"] == "235,146"  # counted by the probe's model, not here
    assert any("No training job" in i for i in out["info"])
    measured = speed.cached_probe(training.TrainConfig(arch="mlp").resolved())
    assert measured is not None and measured["images_per_s"] > 0


def test_choosing_an_architecture_loads_its_settings(measured, no_stray_jobs):
    at = app("Train").run()
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
    estimate = next(c.value for c in at.caption if "About **" in c.value)
    assert estimate.startswith("⏱️ About **")  # from the measured probe, no new probe started
    assert next(m.value for m in at.metric if m.label == "Parameters") == "1,234"


def test_unsafe_model_name_is_refused_before_anything_starts(measured, no_stray_jobs):
    at = app("Train").run()
    at.selectbox(key="train_arch").set_value("mlp").run()
    at.text_input(key="train_name").set_value("../outside").run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("invalid model name '../outside'" in e for e in _texts(at.error))
    assert runs.list_runs() == []
    assert not any(p.is_dir() for p in measured.models.iterdir())


def test_a_teacher_gives_a_student_its_epochs_and_says_which_validation_digits(measured, save_forest,
                                                                                    sample_train):
    sample = datasets_fingerprint()
    _fake_run("good", arch="dr-sep", status="done", metrics={"val_accuracy": 0.99},
              data={"fingerprint": "another-file"})
    _fake_run("better", arch="ensemble", kind="ensemble", status="done", metrics={"val_accuracy": 0.995},
              data={"fingerprint": sample, "split": {"val_fraction": 0.2, "seed": 7}})
    _fake_run("busy", arch="dr-sep", status="running", metrics={"val_accuracy": 0.999})
    for name in ("good", "better", "busy"):
        (registry.model_dir(name) / registry.KERAS_FILE).write_bytes(b"not read by this page")
    save_forest("trees", sample_train.images[:100], sample_train.labels[:100], val_accuracy=0.999)
    # a student trains without augmentation: a probe of its own settings
    student = training.TrainConfig(arch=models.DEFAULT_ARCH, teacher="good").resolved()
    speed.remember(student, {"images_per_s": 1000.0, "start_up_s": 5.0, "param_count": 1234})
    at = app("Train").run()
    assert not at.exception
    teacher = at.selectbox(key="train_teacher")
    assert teacher.options == [ui.NO_TEACHER, "better", "good"]  # Keras models that ended, best first
    assert at.number_input(key="train_distill_copies").disabled

    teacher.set_value("good").run()
    assert not at.exception
    assert at.number_input(key="train_epochs").value == distill.EPOCHS  # each digit 13 times an epoch
    assert not at.number_input(key="train_distill_copies").disabled
    captions = "".join(c.value for c in at.caption)
    assert "🎓 Good was not trained on train.csv.gz with a recorded split" in captions
    estimate = next(c.value for c in at.caption if "About **" in c.value)
    assert f"{distill.EPOCHS} epochs at" in estimate

    at.selectbox(key="train_teacher").set_value("better").run()
    kept = "🎓 Validation digits: better's (20% of train.csv.gz, split seed 7)"
    assert any(kept in c.value for c in at.caption)
    config = ui.build_config(at.session_state).with_teacher_split(sample, "train.csv.gz")[0]
    assert (config.teacher, config.distill_copies, config.val_fraction, config.split_seed) == (
        "better", 12, 0.2, 7)

    at.selectbox(key="train_teacher").set_value(ui.NO_TEACHER).run()
    own = models.get_architecture(models.DEFAULT_ARCH).defaults["epochs"]
    assert at.number_input(key="train_epochs").value == own != distill.EPOCHS  # the architecture's own
    assert not any(c.value.startswith("🎓") for c in at.caption)


def datasets_fingerprint() -> str:
    """The fingerprint of the training file the page uses here (the committed sample)."""
    from core import data

    return data.load_train().fingerprint


def test_a_students_estimate_counts_every_warped_copy():
    plain = training.TrainConfig(arch="mlp", epochs=3, batch_size=100).resolved()
    student = training.TrainConfig(arch="mlp", epochs=3, batch_size=100, teacher="t",
                                   distill_copies=4).resolved()
    for settings in (plain, student):
        speed.remember(settings, {"images_per_s": 100.0, "start_up_s": 5.0, "param_count": 1})
    with_copies = ui.estimate(student, 1000, busy=False).seconds
    alone = ui.estimate(plain, 1000, busy=False).seconds
    assert with_copies - alone == pytest.approx(3 * 4 * 900 / 100)  # 4 more views of 900 training digits


# --------------------------------------------------------------------------- a whole job


@pytest.mark.slow  # a Keras job process trains
def test_tiny_job_runs_in_its_own_process_to_its_saved_model(measured, no_stray_jobs):
    at = in_app("Train").run()
    assert not at.exception
    at.selectbox(key="train_arch").set_value("mlp").run()
    at.number_input(key="train_epochs").set_value(2)
    at.slider(key="train_val_fraction").set_value(0.05)
    at.text_input(key="train_name").set_value("page-mlp")
    at.selectbox(key="train_checkpoint").set_value("last")
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    assert at.session_state[ui.JOB_KEY] == "page-mlp"
    assert at.query_params[visitor.TOKEN_PARAM] == at.session_state[visitor.TOKEN_KEY]
    meta = registry.read_meta("page-mlp")
    assert meta["owner"] == at.session_state[visitor.LABEL_KEY]
    assert meta["params"]["epochs"] == 2 and meta["params"]["val_fraction"] == 0.05
    assert meta["params"]["checkpoint"] == "last"
    assert meta["launched"]["pid"] != os.getpid()  # its own process

    _wait_for(at, lambda: runs.read_run("page-mlp").status == status.DONE, 180, "the job to finish")
    at.run()
    assert not at.exception
    meta = registry.read_meta("page-mlp")
    acc = meta["metrics"]["val_accuracy"]
    last_row = registry.read_history("page-mlp")[-1]
    assert meta["best_epoch"] == 2 and acc == pytest.approx(last_row["val_accuracy"])  # the last kept
    assert _texts(at.success) == [
        f"Saved model **page-mlp** — validation accuracy **{acc:.2%}** (last epoch 2 of 2)."]
    assert acc > 0.85  # 8,550 sample digits, two epochs (~0.93 measured)
    assert at.get("progress")[0].value == 100
    assert {"train_live_curves", "train_lr_curve", "train_speed_curve"} <= set(chart_keys(at))
    assert [link.proto.label for link in at.get("page_link")] == ["Evaluate page-mlp"]
    assert "train_stop" not in {b.key for b in at.button}  # nothing left to stop
    # The chart's batch axis agrees with the job: its last step closes the second epoch.
    view = runs.read_run("page-mlp")
    assert view.progress["batches"]["step"][-1] == 2 * ui.steps_per_epoch(view) == 2 * 67


@pytest.mark.slow  # a Keras job process trains
def test_other_visitors_see_the_owner_who_alone_stops_it_even_after_a_reload(measured, no_stray_jobs):
    owner, other = app("Train"), app("Train")
    owner.run()
    owner.selectbox(key="train_arch").set_value("mlp").run()
    owner.number_input(key="train_epochs").set_value(200)
    owner.button(key="train_start").click().run()
    name = owner.session_state[ui.JOB_KEY]
    owner_label = owner.session_state[visitor.LABEL_KEY]
    _wait_for(owner, lambda: runs.read_run(name).progress.get("batches"), 120, "the first batch")

    other.run()
    assert not other.exception
    assert other.session_state[visitor.LABEL_KEY] != owner_label
    assert any(f"started by **{owner_label}**" in m for m in _texts(other.markdown))
    assert "train_stop" not in {b.key for b in other.button}
    assert any(f"Only {owner_label}" in c for c in _texts(other.caption))
    # Their start waits in the queue behind the running job; they alone may cancel it.
    assert other.button(key="train_start").label == "➕ Queue training"
    other.text_input(key="train_name").set_value("waiting-mlp").run()
    other.button(key="train_start").click().run()
    assert any("waiting-mlp is queued: it starts by itself" in i for i in _texts(other.info))
    assert [(v.name, v.status) for v in runs.active_runs()] == [(name, "running"), ("waiting-mlp", "queued")]
    assert "cancel_waiting-mlp" in {b.key for b in other.button}
    owner.run()
    assert "cancel_waiting-mlp" not in {b.key for b in owner.button}
    other.button(key="cancel_waiting-mlp").click().run()
    assert "waiting-mlp" not in [v.name for v in runs.list_runs()]  # withdrawn before it started: gone
    assert [v.name for v in runs.active_runs()] == [name]

    # The owner reloads the page: a new session, the same address (its key) -> still the owner.
    reloaded = app("Train")
    reloaded.query_params[visitor.TOKEN_PARAM] = owner.query_params[visitor.TOKEN_PARAM]
    reloaded.run()
    assert any("started by **you**" in m for m in _texts(reloaded.markdown))
    assert reloaded.button(key="train_stop").label == "⏹ Stop (keeps the best epoch)"  # mlp's rule
    reloaded.button(key="train_stop").click().run()
    _wait_for(reloaded, lambda: runs.read_run(name).status == status.STOPPED, 30, "the stop")
    reloaded.run()
    assert not reloaded.exception
    assert any("Stopped on request" in w for w in _texts(reloaded.warning))
    assert any(name in s for s in _texts(reloaded.success))
    assert registry.read_meta(name)["status"] == "stopped"


# --------------------------------------------------------------------------- what the files say


def test_a_failed_run_shows_its_error(measured):
    _fake_run("will-fail", status="failed", error="RuntimeError: out of memory while building")
    at = app("Train").run()
    assert not at.exception
    assert _texts(at.error) == ["Training failed: RuntimeError: out of memory while building. "
                                "Models saved before are untouched."]


def test_damaged_runs_are_named_and_the_others_stay_listed(measured, sample_train):
    _fake_run("good", status="done", metrics={"val_accuracy": 0.9}, created_at="2026-11-30T09:00:00")
    (measured.models / "good" / registry.KERAS_FILE).write_bytes(b"model")
    registry.write_history("good", [{"epoch": 1, "val_accuracy": 0.9}])
    _fake_run("torn-meta")
    (measured.models / "torn-meta" / registry.META_FILE).write_text('{"status": "runn')
    _fake_run("bad-history", status="done", created_at="2026-11-30T08:00:00")
    (measured.models / "bad-history" / registry.KERAS_FILE).write_bytes(b"model")
    (measured.models / "bad-history" / registry.HISTORY_FILE).write_text("epoch,loss\n1,oops\n")
    _fake_run("no-model", status="done", created_at="2026-11-30T07:00:00")
    at = app("Train").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "problems" in d.value.columns)
    rows = {r["run"]: r for r in table.to_dict("records")}
    assert set(rows) == {"good", "torn-meta", "bad-history", "no-model"}
    assert rows["good"]["problems"] == "" and rows["good"]["status"] == "✅ done"
    assert "meta.json is not valid JSON (line 1, column 12)" in rows["torn-meta"]["problems"]
    # One reader of a run's JSON files: a model's meta says the same, with the model's name.
    with pytest.raises(ValueError) as err:
        registry.read_meta("torn-meta")
    assert str(err.value) == "model 'torn-meta': meta.json is not valid JSON (line 1, column 12)"
    assert "history.csv line 2, column 'loss': 'oops' is not a number" in rows["bad-history"]["problems"]
    assert "no model file" in rows["no-model"]["problems"]


# --------------------------------------------------------------------------- the classic demo


def test_classic_demo_shows_accuracy_confusion_and_comparison(measured):
    at = app("Train").run()
    assert "train_demo_confusion" not in set(chart_keys(at))
    at.button(key="train_demo").click().run()
    assert not at.exception
    metric = next(m for m in at.metric if m.label.startswith("Accuracy on 360 held-out 8x8 digits"))
    assert float(metric.value.rstrip("%")) > 90
    assert {"train_demo_confusion", "train_demo_comparison"} <= set(chart_keys(at))
    at.run()  # stays shown on the next run
    assert "train_demo_confusion" in set(chart_keys(at))


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
    assert ui.arch_defaults("kaggle-cnn")["train_checkpoint"] == "best"  # its plateau schedule
    assert ui.arch_defaults("dr-sep-elastic")["train_checkpoint"] == "last"  # one-cycle anneals to its end
    forest = ui.arch_defaults("random-forest")
    assert forest["train_n_estimators"] == 200 and forest["train_epochs"] == 10  # fallback for the widget
    for arch in KERAS_ARCHS:
        assert ui.arch_defaults(arch)["train_batch_size"] in ui.BATCH_SIZES


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (float("nan"), "—"), (0.4, "0 s"), (59, "59 s"), (75, "1 min 15 s"), (3725, "1 h 02 min")],
)
def test_format_duration(seconds, text):
    assert ui.format_duration(seconds) == text


def test_estimate_is_epochs_at_the_probed_speed_plus_validation_and_start_up():
    settings = training.TrainConfig(arch="mlp", epochs=3, batch_size=100).resolved()
    seconds = speed.estimate_seconds(settings, 1000, 300, {"images_per_s": 100.0})
    assert seconds == pytest.approx(3 * (1000 / 100 + 300 / 300) + speed.START_UP_S)


def test_a_probe_kept_from_slower_training_code_is_not_reused(tmp_dirs):
    settings = training.TrainConfig(arch="dr-sep", epochs=3).resolved()
    speed.remember(settings, {"images_per_s": 321.0})
    assert speed.cached_probe(settings)["images_per_s"] == 321.0
    old_key = speed.probe_key(settings).replace(f"|v{speed.PROBE_VERSION}", "")
    probes = speed.cached_probes()
    probes[old_key] = probes.pop(speed.probe_key(settings))  # as kept before the fused batch norm
    (speed.paths.cache_dir() / speed.PROBES_FILE).write_text(json.dumps(probes))
    assert speed.cached_probe(settings) is None  # measured again, not answered with the old speed


def _view(**changes) -> runs.RunView:
    base = dict(name="x", meta={"owner": "o", "training_time_s": 30.0, "params": {"epochs": 4}},
                status=status.RUNNING, progress={"progress": 0.02, "message": "training", "steps": 40,
                                                 "epochs": 4})
    return runs.RunView(**{**base, **changes})


def test_progress_text_and_share():
    assert ui.progress_text(_view()) == "training · 2% · elapsed 30 s"
    assert ui.progress_share(_view(status=status.DONE)) == 1.0
    assert ui.steps_per_epoch(_view()) == 10 and ui.steps_per_epoch(_view(progress={})) is None


def test_the_stop_button_says_which_epoch_a_stop_keeps():
    assert ui.stop_label({"params": {"checkpoint": "best"}}) == "⏹ Stop (keeps the best epoch)"
    assert ui.stop_label({}) == "⏹ Stop (keeps the best epoch)"  # runs recorded before the rule
    assert ui.stop_label({"params": {"checkpoint": "last"}}) == "⏹ Stop (keeps the weights as they are)"


def test_result_line_names_the_model_its_accuracy_and_best_epoch():
    meta = {"metrics": {"val_accuracy": 0.98765}, "best_epoch": 2, "epochs_done": 3}
    assert ui.result_line(_view(meta=meta)) == ("Saved model **x** — validation accuracy **98.77%** "
                                                "(best epoch 2 of 3).")
    last = {**meta, "best_epoch": 3, "params": {"checkpoint": "last"}}
    assert ui.result_line(_view(meta=last)) == ("Saved model **x** — validation accuracy **98.77%** "
                                                "(last epoch 3 of 3).")
    assert ui.result_line(_view(meta={"metrics": {"val_accuracy": 0.9}})) == (
        "Saved model **x** — validation accuracy **90.00%**.")


def test_owner_key_checks_the_secret_without_keeping_it():
    meta = {"owner_key": jobs.owner_key("s3cret")}
    assert jobs.owns(meta, "s3cret") and not jobs.owns(meta, "guess") and not jobs.owns(meta, None)
    assert not jobs.owns({}, "s3cret")  # a run started from the command line: nobody on the web
