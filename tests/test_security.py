"""Hostile input: names that try to leave models/ or data/, unsafe model files, oversize uploads.

Everything runs against temporary folders (`tmp_dirs`), so nothing here can touch the real data/
or models/ even when a check fails.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import data, kaggle_csv, kaggle_rows, prediction, registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def own_signing_key(tmp_dirs, tmp_path, monkeypatch) -> Path:
    """A fresh pickle-signing key per test, not yet created: never the install's own (~/.config/...).
    Set after tmp_dirs (which gives a copy of the session's key), so this one wins."""
    key = tmp_path / "keys" / "model-signing.key"
    monkeypatch.setenv("DRS_KEY_FILE", str(key))
    return key

BAD_NAMES = [
    "",
    ".",
    "..",
    "../x",
    "../../etc",
    "x/../../y",
    "a/b",
    "a\\b",
    "..\\..\\windows",
    "/etc/passwd",
    "/tmp/x",
    "~",
    "~/x",
    "x\x00y",
    "x\x00",
    "\x00",
    ".hidden",
    "-rf",
    "_x",
    "a..b",
    "a b",
    "a\tb",
    "a\nb",
    "a:b",
    "a*b",
    "a$b",
    "ａbc",  # fullwidth a
    "аbc",  # Cyrillic a
    "a\u2215b",  # division slash, looks like '/'
    "a\u2024\u2024b",  # one-dot leaders, look like '..'
    "a\uff0eb",  # fullwidth full stop
    "a\u200bb",  # zero-width space
    "x" * 65,
    "x" * 4096,
]


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


# --------------------------------------------------------------------------- model names


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_model_names_are_refused(name, tmp_dirs):
    with pytest.raises(ValueError, match="invalid model name"):
        registry.validate_name(name)
    with pytest.raises(ValueError, match="invalid model name"):
        registry.model_dir(name)
    with pytest.raises(ValueError):
        registry.write_meta(name, {"kind": "keras"})
    with pytest.raises(ValueError):
        registry.delete_model(name)
    assert _all_files(tmp_dirs.models) == set()
    # Nothing but what tmp_dirs made: the three folders and the copy of the session's key.
    assert _all_files(tmp_dirs.models.parent) == {tmp_dirs.models, tmp_dirs.data, tmp_dirs.cache,
                                                  tmp_dirs.key.parent, tmp_dirs.key}


@pytest.mark.parametrize("name", ["x\n", "abc\n"], ids=repr)
def test_trailing_newline_is_refused(name, tmp_dirs):
    with pytest.raises(ValueError, match="invalid model name"):
        registry.validate_name(name)


@pytest.mark.parametrize("name", [1, None, b"abc", ["abc"], Path("abc")], ids=repr)
def test_non_string_names_are_refused(name, tmp_dirs):
    with pytest.raises(ValueError, match="invalid model name"):
        registry.validate_name(name)


@pytest.mark.parametrize("name", ["a", "cnn-1", "dr_cnn.v2", "A" * 64, "0x", "a.b-c_d"])
def test_good_names_stay_directly_inside_models(name, tmp_dirs):
    assert registry.validate_name(name) == name
    folder = registry.model_dir(name)
    assert folder.parent == tmp_dirs.models.resolve()
    assert folder.name == name


def test_symlinked_model_folder_pointing_outside_is_refused(tmp_dirs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / registry.META_FILE).write_text(json.dumps({"kind": "sklearn"}))
    (tmp_dirs.models / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="leaves the models folder"):
        registry.model_dir("evil")
    with pytest.raises(ValueError, match="leaves the models folder"):
        prediction.load("evil")
    with pytest.raises(ValueError, match="leaves the models folder"):
        registry.delete_model("evil")
    assert outside.is_dir() and (outside / registry.META_FILE).is_file()


def test_unique_name_refuses_bad_base_and_never_leaves_models(tmp_dirs):
    with pytest.raises(ValueError):
        registry.unique_name("../x")
    registry.write_meta("run", {"kind": "keras"})
    assert registry.unique_name("run") == "run-2"


def test_cli_train_refuses_escaping_name_and_writes_nothing(tmp_dirs, tmp_path):
    """The real command line: exit 2, one line on stderr, nothing written anywhere."""
    work = tmp_path / "work" / "a" / "b"
    work.mkdir(parents=True)
    models, cache, datadir = tmp_dirs.models, tmp_dirs.cache, tmp_dirs.data
    env = dict(os.environ, DRS_MODELS_DIR=str(models), DRS_CACHE_DIR=str(cache), DRS_DATA_DIR=str(datadir),
               PYTHONPATH=str(ROOT))
    before = _all_files(tmp_path)
    train_csv = ROOT / "tests" / "corpus" / "train_valid.csv"
    for name in ("../../etc", "/tmp/escape", "..", "a/../../b"):
        proc = subprocess.run(
            [sys.executable, "-m", "core", "train", "--data", str(train_csv), "--arch", "mlp",
             "--epochs", "1", "--name", name, "--quiet"],
            cwd=work, env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert lines == [lines[0]] and lines[0].startswith("error: invalid model name"), proc.stderr
        assert proc.stdout == ""
    after = _all_files(tmp_path) - before
    # The only thing allowed to appear is the parse cache of the training CSV.
    assert all(p == cache or cache in p.parents for p in after), sorted(after)
    assert list(models.iterdir()) == []
    assert not (tmp_path / "etc").exists() and not Path("/tmp/escape").exists()


# --------------------------------------------------------------------------- data file names


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for member, body in members.items():
            zf.writestr(member, body)
    return buf.getvalue()


def test_zip_members_with_paths_are_written_only_as_data_train_and_test(tmp_dirs, tmp_path):
    """A zip whose members say '../../x/train.csv' or '/abs/test.csv' still lands in data/ only."""
    corpus = ROOT / "tests" / "corpus"
    payload = _zip({
        "../../escape/train.csv": (corpus / "train_valid.csv").read_bytes(),
        "/tmp/escape-abs/test.csv": (corpus / "test_valid.csv").read_bytes(),
    })
    (tmp_dirs.data / "digit-recognizer.zip").write_bytes(payload)
    before_outside = _all_files(tmp_path) - _all_files(tmp_dirs.data) - _all_files(tmp_dirs.cache)
    assert data.unpack_kaggle_zip(tmp_dirs.data) is True
    written = sorted(p.name for p in tmp_dirs.data.iterdir())
    assert written == ["digit-recognizer.zip", "test.csv", "train.csv"]
    after_outside = _all_files(tmp_path) - _all_files(tmp_dirs.data) - _all_files(tmp_dirs.cache)
    assert after_outside == before_outside
    assert not (tmp_path / "escape").exists() and not Path("/tmp/escape-abs").exists()
    assert data.load_train().n == 3


def test_user_digits_are_written_inside_data(tmp_dirs):
    path = data.append_user_digit(np.zeros((28, 28), np.uint8), 3)
    assert path.parent == tmp_dirs.data and path.name == "user_digits.csv"


# --------------------------------------------------------------------------- model files


def _save_keras(name: str, model) -> None:
    registry.save_keras_model(name, model)
    registry.write_meta(name, {"name": name, "kind": "keras", "arch": "test",
                               "metrics": {"val_accuracy": 0.5}})


@pytest.mark.slow  # Keras files (TensorFlow)
def test_keras_file_with_lambda_layer_is_refused(tmp_dirs):
    """A .keras file carrying Python code (a Lambda layer) is never deserialised: safe_mode."""
    import keras

    inp = keras.Input((28, 28))
    out = keras.layers.Lambda(lambda x: x * 2.0)(inp)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(out))
    _save_keras("lambda", keras.Model(inp, out))
    assert "lambda" in [m.name for m in registry.list_models()]
    with pytest.raises(ValueError, match="(?i)lambda|safe_mode"):
        prediction.load("lambda")
    # The best-model default reaches it too, and is refused the same way.
    with pytest.raises(ValueError, match="(?i)lambda|safe_mode"):
        prediction.load(None)


@pytest.mark.slow  # Keras files (TensorFlow)
def test_plain_keras_file_loads(tmp_dirs):
    """The control for the test above: the same folder layout without Python code loads fine."""
    import keras

    inp = keras.Input((28, 28))
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp))
    _save_keras("plain", keras.Model(inp, out))
    loaded = prediction.load("plain")
    probs = loaded.predict_proba(np.zeros((2, 28, 28), np.uint8))
    assert probs.shape == (2, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)


class _Boom:
    """Unpickling this writes a marker file: proof that a pickle ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


def _plant_joblib(folder: Path, marker: Path) -> None:
    import joblib

    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(_Boom(str(marker)), folder / registry.SKLEARN_FILE)


def test_joblib_is_never_unpickled_for_a_keras_folder(tmp_dirs):
    """A model.joblib dropped beside a meta.json that says keras (or says nothing) is not loaded."""
    marker = tmp_dirs.data / "pwned"
    for name, meta in (("k", {"kind": "keras"}), ("nokind", {})):
        folder = tmp_dirs.models / name
        _plant_joblib(folder, marker)
        (folder / registry.META_FILE).write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="no model.keras"):
            prediction.load(name)
    assert not marker.exists()


def test_joblib_without_meta_is_not_listed_or_loaded(tmp_dirs):
    marker = tmp_dirs.data / "pwned"
    _plant_joblib(tmp_dirs.models / "orphan", marker)
    assert registry.list_models() == []
    with pytest.raises(ValueError, match="no saved model"):
        prediction.load("orphan")
    with pytest.raises(ValueError, match="no saved model"):
        prediction.load(None)
    assert not marker.exists()


def test_joblib_not_written_by_the_app_is_refused(tmp_dirs):
    marker = tmp_dirs.data / "pwned"
    folder = tmp_dirs.models / "planted"
    _plant_joblib(folder, marker)
    meta = {"kind": "sklearn", "metrics": {"val_accuracy": 1.0}}
    (folder / registry.META_FILE).write_text(json.dumps(meta))
    refused = False
    try:
        prediction.load("planted")
    except ValueError:
        refused = True
    ran_code = marker.exists()
    marker.unlink(missing_ok=True)
    assert not ran_code, "unpickling the planted model.joblib ran its code"
    assert refused


def _forest(sample_train, n: int = 300):
    from sklearn.ensemble import RandomForestClassifier

    x = sample_train.images[:n].reshape(n, -1) / 255.0
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(x, sample_train.labels[:n]), x


def _save_forest(name: str, forest) -> Path:
    registry.save_sklearn_model(name, forest)
    registry.write_meta(name, {"name": name, "kind": "sklearn", "metrics": {"val_accuracy": 0.7}})
    return registry.model_dir(name)


def test_app_written_sklearn_model_loads(tmp_dirs, sample_train):
    """The control: a forest saved through the registry is loaded and predicts."""
    forest, x = _forest(sample_train)
    _save_forest("forest", forest)
    probs = prediction.load("forest").predict_proba(sample_train.images[:4])
    assert probs.shape == (4, 10)
    assert np.array_equal(probs.argmax(1), forest.predict_proba(x[:4]).argmax(1))


def test_signing_key_is_private_and_outside_models(tmp_dirs, sample_train, own_signing_key):
    folder = _save_forest("forest", _forest(sample_train)[0])
    assert own_signing_key.is_file() and oct(own_signing_key.stat().st_mode & 0o777) == "0o600"
    assert tmp_dirs.models not in own_signing_key.parents
    key = own_signing_key.read_bytes()
    assert len(key) >= 32
    assert all(key not in p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_joblib_signed_by_another_install_is_refused(tmp_dirs, sample_train, monkeypatch, tmp_path):
    """A model folder copied from another machine (another key) is not unpickled here."""
    _save_forest("forest", _forest(sample_train)[0])
    monkeypatch.setenv("DRS_KEY_FILE", str(tmp_path / "other-install.key"))
    with pytest.raises(ValueError, match="not written by this app"):
        prediction.load("forest")


def test_joblib_swapped_under_a_valid_signature_is_refused(tmp_dirs, sample_train):
    """Replacing model.joblib (keeping the app's signature file) is caught before unpickling."""
    marker = tmp_dirs.data / "pwned"
    folder = _save_forest("forest", _forest(sample_train)[0])
    _plant_joblib(folder, marker)
    with pytest.raises(ValueError, match="not written by this app"):
        prediction.load("forest")
    assert not marker.exists()
    (folder / registry.SIGNATURE_FILE).unlink()
    with pytest.raises(ValueError, match="not written by this app"):
        prediction.load("forest")
    assert not marker.exists()


# --------------------------------------------------------------------------- upload size


def test_streamlit_upload_limit_is_set_and_within_the_parser_limit():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    mb = config["server"]["maxUploadSize"]
    assert isinstance(mb, int) and 80 <= mb <= 1024  # Kaggle's train.csv (73 MB) fits; no unlimited
    assert mb * 2**20 <= kaggle_csv.MAX_CSV_BYTES  # what Streamlit accepts, core can parse
    assert f"{mb} MB" in (ROOT / "Home.py").read_text()  # the page tells users the same limit


@pytest.fixture
def small_limit(monkeypatch):
    """A 10 KB limit, and parsers that fail the test if they are ever reached."""
    monkeypatch.setattr(kaggle_csv, "MAX_CSV_BYTES", 10_000)

    def never(*args, **kwargs):
        raise AssertionError("the parser ran on an oversize input")

    monkeypatch.setattr(kaggle_rows, "fast_parse", never)
    monkeypatch.setattr(kaggle_rows, "slow_parse", never)
    return 10_000


def _big_csv(rows: int = 20) -> bytes:
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    return (header + "\n" + ("1," + ",".join(["0"] * 784) + "\n") * rows).encode()


def test_oversize_bytes_refused_before_parsing(small_limit):
    payload = _big_csv()
    assert len(payload) > small_limit
    with pytest.raises(ValueError, match="larger than the .* limit"):
        data.parse_csv(payload, name="up.csv")


def test_oversize_file_refused_before_reading(small_limit, tmp_dirs, monkeypatch):
    path = tmp_dirs.data / "train.csv"
    path.write_bytes(_big_csv())
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(AssertionError("read")))
    with pytest.raises(ValueError, match="train.csv: .* larger than the .* limit"):
        data.parse_csv(path)
    with pytest.raises(ValueError, match="larger than the .* limit"):
        data.load_csv(path, expect_labels=True)


def test_gzip_bomb_refused(small_limit):
    import gzip

    bomb = gzip.compress(_big_csv(200))
    assert len(bomb) < small_limit
    with pytest.raises(ValueError, match="unpacks to more than"):
        data.parse_csv(bomb, name="bomb.csv.gz")


def test_zip_member_over_limit_refused(small_limit):
    payload = _zip({"train.csv": _big_csv(), "test.csv": b"pixel0\n0\n"})
    with pytest.raises(ValueError, match="train.csv is .* more than the .* limit"):
        data.load_zip(payload, name="dr.zip")
