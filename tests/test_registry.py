"""core.registry: saved models round-trip, list best first, and no name reaches outside models/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core import registry

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
            registry.load_model(name)
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


# --------------------------------------------------------------------------- round trip


def test_save_list_load_delete_round_trip(tmp_dirs):
    _save_forest("second", 0.91, status="complete", data={"source": "sample"})
    _save_forest("best", 0.97, status="stopped", data={"source": "kaggle"})
    registry.write_history("best", [{"epoch": 1, "val_accuracy": 0.95, "note": None},
                                    {"epoch": 2, "val_accuracy": 0.97, "note": None}])

    infos = registry.list_models()
    assert [i.name for i in infos] == ["best", "second"]  # best validation accuracy first
    assert infos[0].val_accuracy == 0.97 and infos[0].status == "stopped" and infos[0].kind == "sklearn"
    assert infos[0].data_source == "kaggle" and infos[1].status == "complete"
    assert registry.best_model_name() == "best"
    assert registry.resolve_name(None) == "best" and registry.resolve_name("second") == "second"

    assert registry.read_meta("best")["metrics"] == {"val_accuracy": 0.97, "val_loss": 1.0}
    assert registry.read_history("best") == [{"epoch": 1.0, "val_accuracy": 0.95, "note": None},
                                             {"epoch": 2.0, "val_accuracy": 0.97, "note": None}]
    assert registry.read_history("second") == []

    loaded = registry.load_model()  # the best one
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
        registry.load_model("best")


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
        registry.load_model("sneaky")


def test_keras_model_round_trip(tmp_dirs):
    from core import models

    model = models.build("mlp")
    x = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8)
    expected = np.asarray(model(x.astype(np.float32), training=False))
    path = registry.save_keras_model("k", model)
    registry.write_meta("k", {"name": "k", "kind": "keras", "metrics": {"val_accuracy": 0.1}})
    assert path == (tmp_dirs.models / "k" / "model.keras").resolve()
    assert sorted(p.name for p in path.parent.iterdir()) == ["meta.json", "model.keras"]
    loaded = registry.load_model("k")
    np.testing.assert_allclose(loaded.predict_proba(x), expected, atol=1e-6)
    big = np.tile(x, (20, 1, 1))  # > 64 images takes the batched predict() path
    np.testing.assert_allclose(loaded.predict_proba(big)[:5], expected, atol=1e-5)
