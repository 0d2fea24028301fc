"""core.registry: saved models round-trip, list best first, and no name reaches outside models/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core import prediction, registry, status

ROOT = Path(__file__).resolve().parent.parent

GOOD_NAMES = ["a", "dr-cnn", "dr-cnn-20250101-120000", "model_2.v3", "A" * 64, "7"]
BAD_NAMES = [
    "", "..", ".", "../x", "../../etc", "/etc/passwd", "a/b", "a\\b", "has space", " lead", "trail ",
    "A" * 65, ".hidden", "-dash-first", "_under", "a..b", "tab\there", "new\nline", "nul\x00byte",
    "café", "~", "C:evil",
]


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _forest(seed: int = 0):
    """A tiny fitted forest on random 28x28 images (fast, no TensorFlow)."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(40, 784)) / 255.0
    y = np.arange(40) % 10
    return RandomForestClassifier(n_estimators=3, random_state=seed).fit(x, y)


def _save_forest(name: str, acc: float, **meta) -> None:
    registry.save_sklearn_model(name, _forest())
    registry.write_meta(name, {"name": name, "arch": "random-forest", "kind": "sklearn",
                               "metrics": {"val_accuracy": acc, "val_loss": 1.0}, **meta})


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_safe_names_are_accepted_and_stay_directly_in_models(name, tmp_dirs):
    assert registry.validate_name(name) == name
    assert registry.model_dir(name) == (tmp_dirs.models / name).resolve()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_refused_and_nothing_is_written(name, tmp_dirs):
    before = _all_files(tmp_dirs.models.parent)
    with pytest.raises(ValueError, match="invalid model name"):
        registry.validate_name(name)
    for write in (
        lambda: registry.model_dir(name),
        lambda: registry.write_meta(name, {"x": 1}),
        lambda: registry.write_history(name, [{"epoch": 1}]),
        lambda: registry.save_sklearn_model(name, _forest()),
        lambda: registry.save_train_hashes(name, np.zeros(3, dtype=np.uint64)),
        lambda: registry.delete_model(name),
        lambda: registry.read_meta(name),
        lambda: registry.unique_name(name),
    ):
        with pytest.raises(ValueError, match="invalid model name"):
            write()
    if name:  # load_model("") means "the best model", like load_model(None)
        with pytest.raises(ValueError, match="invalid model name"):
            prediction.load(name)
    assert _all_files(tmp_dirs.models.parent) == before


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a"]])
def test_non_string_names_are_refused(bad):
    with pytest.raises(ValueError, match="invalid model name"):
        registry.validate_name(bad)


def test_a_symlink_out_of_models_is_not_followed(tmp_dirs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_dirs.models / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="leaves the models folder"):
        registry.write_meta("link", {"x": 1})
    assert list(outside.iterdir()) == []


def test_unique_name_appends_a_counter(tmp_dirs):
    assert registry.unique_name("run") == "run"
    (tmp_dirs.models / "run").mkdir()
    (tmp_dirs.models / "run-2").mkdir()
    assert registry.unique_name("run") == "run-3"



def test_tests_sign_with_a_private_key_never_the_installs(tmp_dirs, tmp_path, session_signing_key):
    """tmp_dirs points DRS_KEY_FILE into the test's own folder (a copy of the session's key, itself
    temporary), so saving a model never reads or creates ~/.config/.../model-signing.key."""
    import hashlib
    import hmac

    from core import paths

    assert paths.signing_key_file() == tmp_dirs.key and tmp_path in tmp_dirs.key.parents
    assert (Path.home() / ".config") not in session_signing_key.parents
    folder = registry.model_dir("signed")
    registry.save_sklearn_model("signed", _forest())
    payload = (folder / registry.SKLEARN_FILE).read_bytes()
    expected = hmac.new(tmp_dirs.key.read_bytes(), payload, hashlib.sha256).hexdigest()
    assert (folder / registry.SIGNATURE_FILE).read_text() == expected

# --------------------------------------------------------------------------- round trip


def test_save_list_load_delete_round_trip(tmp_dirs):
    _save_forest("second", 0.91, status="done", data={"source": "sample"})
    _save_forest("best", 0.97, status="stopped", data={"source": "kaggle"})
    registry.write_history("best", [{"epoch": 1, "val_accuracy": 0.95, "note": None},
                                    {"epoch": 2, "val_accuracy": 0.97, "note": None}])

    infos = registry.list_models()
    assert [i.name for i in infos] == ["best", "second"]  # best validation accuracy first
    assert infos[0].val_accuracy == 0.97 and infos[0].status == "stopped" and infos[0].kind == "sklearn"
    assert infos[0].data_source == "kaggle" and infos[1].status == "done"
    assert registry.best_model_name() == "best"
    assert registry.resolve_name(None) == "best" and registry.resolve_name("second") == "second"
    # The shipped default is offered first, whatever the validation accuracies of other runs say.
    registry.write_meta("second", {**registry.read_meta("second"), registry.OFFERED_FIRST_KEY: True})
    assert [i.name for i in registry.list_models()] == ["second", "best"]
    assert registry.resolve_name(None) == "second"
    registry.write_meta("second", {k: v for k, v in registry.read_meta("second").items()
                                   if k != registry.OFFERED_FIRST_KEY})

    assert registry.read_meta("best")["metrics"] == {"val_accuracy": 0.97, "val_loss": 1.0}
    assert registry.read_history("best") == [{"epoch": 1.0, "val_accuracy": 0.95, "note": None},
                                             {"epoch": 2.0, "val_accuracy": 0.97, "note": None}]
    assert registry.read_history("second") == []

    loaded = prediction.load()  # the best one
    assert loaded.name == "best" and loaded.kind == "sklearn"
    probs = loaded.predict_proba(np.zeros((3, 28, 28), dtype=np.uint8))
    assert probs.shape == (3, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert loaded.predict_proba(np.zeros((28, 28))).shape == (1, 10)  # one image
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        loaded.predict_proba(np.zeros((2, 8, 8)))

    registry.delete_model("best")
    assert not (tmp_dirs.models / "best").exists()
    assert [i.name for i in registry.list_models()] == ["second"]
    with pytest.raises(ValueError, match="no saved model called 'best'"):
        registry.delete_model("best")
    with pytest.raises(ValueError, match="no saved model called 'best'"):
        prediction.load("best")



# --------------------------------------------------------------------------- runs killed mid-way


def _own_start_time() -> int:
    return int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[-1].split()[19])


def _rewrite_writer(name: str, **writer) -> None:
    """Edit the recorded training process by hand (as if another process had written the meta)."""
    path = registry.model_dir(name) / registry.META_FILE
    meta = json.loads(path.read_text())
    meta[status.WRITER_KEY] = {**meta[status.WRITER_KEY], **writer}
    path.write_text(json.dumps(meta))


def _statuses() -> dict[str, str]:
    return {i.name: i.status for i in registry.list_models()}


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_a_running_meta_records_its_process_and_stays_running_while_it_lives(tmp_dirs):
    _save_forest("live", 0.9, status="running")
    writer = registry.read_meta("live")[status.WRITER_KEY]
    assert writer == {"pid": os.getpid(), "host": socket.gethostname(), "start_time": _own_start_time()}
    assert _statuses() == {"live": "running"}  # this very process: alive

    _rewrite_writer("live", start_time=_own_start_time() - 1)  # same pid, another process (reused)
    assert _statuses() == {"live": "interrupted"}
    _rewrite_writer("live", host="another-machine")  # cannot be checked from here: not assumed dead
    assert _statuses() == {"live": "running"}
    _rewrite_writer("live", host=socket.gethostname(), start_time=_own_start_time())
    assert _statuses() == {"live": "running"}

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    _rewrite_writer("live", pid=int(done.stdout), start_time=None)  # a pid that has exited
    assert _statuses() == {"live": "interrupted"}

    # The finished run's meta drops the process record: "done" whatever happens to the pid.
    meta = registry.read_meta("live")
    registry.write_meta("live", {**meta, "status": "done"})
    assert status.WRITER_KEY not in registry.read_meta("live")
    assert _statuses() == {"live": "done"}


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_a_run_in_another_process_is_running_until_that_process_is_killed(tmp_dirs, capsys):
    from core import cli

    code = (
        "import sys, time\n"
        "from core import registry\n"
        "registry.write_meta('other', {'name': 'other', 'kind': 'sklearn', 'status': 'running',"
        " 'metrics': {'val_accuracy': 0.8}})\n"
        "print('written', flush=True)\n"
        "time.sleep(120)\n"
    )
    registry.save_sklearn_model("other", _forest())
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert proc.stdout.readline().strip() == "written"
        assert registry.read_meta("other")[status.WRITER_KEY]["pid"] == proc.pid
        assert _statuses() == {"other": "running"}
        proc.kill()
        deadline = time.monotonic() + 30
        while registry.list_models()[0].status != "interrupted" and time.monotonic() < deadline:
            time.sleep(0.05)  # not reaped yet: a zombie is dead as well
        assert _statuses() == {"other": "interrupted"}
    finally:
        proc.kill()
        proc.wait(30)
    assert _statuses() == {"other": "interrupted"}
    assert registry.read_meta("other")["status"] == "running"  # the file is left as it was
    assert prediction.load("other").kind == "sklearn"  # its checkpoint is still usable
    assert cli.main(["models"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "interrupted"

def test_models_saved_before_the_status_vocabulary_read_in_its_words(tmp_dirs):
    """Older metas said "complete"/"training"; a hand-edited unknown word is shown as failed."""
    for name, word in (("old-done", "complete"), ("old-odd", "banana")):
        _save_forest(name, 0.9, status=word)
    assert _statuses() == {"old-done": "done", "old-odd": "failed"}


def test_history_csv_has_one_row_per_epoch_and_the_union_of_columns(tmp_dirs):
    registry.write_meta("h", {})  # history is written into a model's existing folder
    registry.write_history("h", [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_loss": 0.3}])
    text = (tmp_dirs.models / "h" / "history.csv").read_text().splitlines()
    assert text == ["epoch,loss,val_loss", "1,0.5,", "2,0.25,0.3"]
    assert registry.read_history("h")[1] == {"epoch": 2.0, "loss": 0.25, "val_loss": 0.3}
    registry.write_history("empty", [])  # nothing to write: no folder either
    assert not (tmp_dirs.models / "empty").exists()


def test_meta_json_is_written_whole_and_readable_with_numpy_values(tmp_dirs):
    registry.write_meta("m", {"acc": np.float32(0.5), "n": np.int64(3), "arr": np.arange(3)})
    folder = tmp_dirs.models / "m"
    assert json.loads((folder / "meta.json").read_text()) == {"acc": 0.5, "n": 3, "arr": [0, 1, 2]}
    assert [p.name for p in folder.iterdir()] == ["meta.json"]  # no temporary file left behind
    assert oct(os.stat(folder / "meta.json").st_mode & 0o777) == "0o644"


def test_train_hashes_round_trip(tmp_dirs):
    hashes = np.array([1, 2**63 + 5, 7], dtype=np.uint64)
    registry.write_meta("h", {})
    registry.save_train_hashes("h", hashes)
    np.testing.assert_array_equal(registry.load_train_hashes("h"), hashes)
    assert registry.load_train_hashes("nothing-here") is None


def test_list_skips_folders_that_are_not_complete_models(tmp_dirs):
    _save_forest("good", 0.9)
    (tmp_dirs.models / "no-model-file").mkdir()
    (tmp_dirs.models / "no-model-file" / "meta.json").write_text("{}")
    registry.save_sklearn_model("bad-meta", _forest())
    (tmp_dirs.models / "bad-meta" / "meta.json").write_text("{not json")
    registry.save_sklearn_model("no-meta", _forest())
    (tmp_dirs.models / ".hidden").mkdir()
    (tmp_dirs.models / "stray-file.txt").write_text("x")
    assert [i.name for i in registry.list_models()] == ["good"]


def test_no_models_gives_a_clear_error(tmp_dirs):
    assert registry.list_models() == [] and registry.best_model_name() is None
    with pytest.raises(ValueError, match="no saved model yet"):
        registry.resolve_name(None)
    with pytest.raises(ValueError, match="no saved model called 'ghost'"):
        registry.resolve_name("ghost")


def test_missing_models_folder_lists_nothing(tmp_dirs, monkeypatch, tmp_path):
    monkeypatch.setenv("DRS_MODELS_DIR", str(tmp_path / "does-not-exist"))
    assert registry.list_models() == []


def test_a_joblib_file_is_only_loaded_when_meta_says_the_app_saved_it(tmp_dirs):
    registry.save_sklearn_model("sneaky", _forest())
    registry.write_meta("sneaky", {"name": "sneaky", "kind": "keras", "metrics": {"val_accuracy": 0.5}})
    with pytest.raises(ValueError, match="has no model.keras"):
        prediction.load("sneaky")


@pytest.mark.slow  # saves and loads a Keras model (TensorFlow)
def test_keras_model_round_trip(tmp_dirs):
    from core import models

    model = models.build("mlp")
    x = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    expected = np.asarray(model(x.astype(np.float32), training=False))
    path = registry.save_keras_model("k", model)
    registry.write_meta("k", {"name": "k", "kind": "keras", "metrics": {"val_accuracy": 0.1}})
    assert path == (tmp_dirs.models / "k" / "model.keras").resolve()
    assert sorted(p.name for p in path.parent.iterdir()) == ["meta.json", "model.keras"]
    loaded = prediction.load("k")
    np.testing.assert_allclose(loaded.predict_proba(x), expected, atol=1e-6)
    big = np.tile(x, (20, 1, 1))  # > 64 images takes the batched predict() path
    np.testing.assert_allclose(loaded.predict_proba(big)[:5], expected, atol=1e-5)
