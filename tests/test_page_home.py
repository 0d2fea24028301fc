"""Home page: data status, leaderboard (or its empty state), links; never imports TensorFlow."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from app_support import app
from streamlit.testing.v1 import AppTest

from studio import guards

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated(tmp_dirs, tmp_path):
    """Private models/, data/ and cache folders under `tmp_path` (see tmp_dirs)."""
    return tmp_path


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_home_shows_sample_and_empty_model_state(isolated):
    at = app("Home").run()
    assert not at.exception
    assert _metric(at, "Training digits") == "9,000"
    assert _metric(at, "Test digits") == "1,000"
    assert _metric(at, "Classes") == "10"
    assert _metric(at, "Source") == "sample"
    assert guards.NO_MODEL in [i.value for i in at.info]


def test_home_lists_saved_models_best_first(isolated):
    models = isolated / "models"
    for name, acc in (("weak", 0.91), ("strong", 0.99)):
        (models / name).mkdir()
        (models / name / "model.keras").write_bytes(b"placeholder, never loaded by Home")
        (models / name / "meta.json").write_text(
            json.dumps({"arch": "mlp", "metrics": {"val_accuracy": acc}, "data": {"source": "sample"}})
        )
    at = app("Home").run()
    assert not at.exception
    board = at.dataframe[0].value
    assert list(board["run"]) == ["strong", "weak"]  # best first: a leaderboard
    assert list(board["validation accuracy (kept epoch)"]) == [0.99, 0.91]


def _placeholder_model(models: Path, name: str, meta: dict) -> None:
    (models / name).mkdir()
    (models / name / "model.keras").write_bytes(b"placeholder, never loaded by Home")
    (models / name / "meta.json").write_text(json.dumps(meta))


def test_leaderboard_shows_the_accuracy_of_the_epoch_a_run_keeps(isolated):
    """A run keeping its last epoch is the model of that epoch: the board shows its validation
    accuracy, not a better one from an epoch the run did not keep (a run without metrics yet: its best)."""
    from core import registry

    models = isolated / "models"
    history = [{"epoch": 1, "val_accuracy": 0.995}, {"epoch": 2, "val_accuracy": 0.993}]
    _placeholder_model(models, "last", {"arch": "dr-sep", "params": {"checkpoint": "last"}, "best_epoch": 2,
                                        "val_best_epoch": 1, "metrics": {"val_accuracy": 0.993}})
    _placeholder_model(models, "early", {"arch": "dr-sep"})
    for name in ("last", "early"):
        registry.write_history(name, history)
    at = app("Home").run()
    assert not at.exception
    board = at.dataframe[0].value.set_index("run")
    assert board.loc["last", "validation accuracy (kept epoch)"] == 0.993
    assert board.loc["early", "validation accuracy (kept epoch)"] == 0.995


def test_leaderboard_parameters_are_whole_numbers_with_thousands_separators(isolated):
    models = isolated / "models"
    _placeholder_model(models, "cnn", {"arch": "dr-cnn", "param_count": 202538,
                                       "metrics": {"val_accuracy": 0.99}})
    _placeholder_model(models, "forest", {"arch": "random-forest", "metrics": {"val_accuracy": 0.95}})
    _placeholder_model(models, "mlp", {"arch": "mlp", "param_count": 1234, "metrics": {"val_accuracy": 0.9}})
    at = app("Home").run()
    assert not at.exception
    board = at.dataframe[0].value
    assert str(board["parameters"].dtype) == "Int64"  # not float (202538.0) for want of a forest's count
    assert [None if v is pd.NA else v for v in board["parameters"]] == [202538, None, 1234]
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["parameters"]["type_config"] == {"type": "number", "format": "%,d"}  # "202,538"
    assert not any("interrupted" in c.value for c in at.caption)


def test_a_killed_training_run_is_listed_as_interrupted(isolated):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    models = isolated / "models"
    dead_run = {"pid": int(gone.stdout), "host": socket.gethostname()}  # that process has exited
    _placeholder_model(models, "killed", {"arch": "mlp", "status": "training", "training_process": dead_run,
                                          "metrics": {"val_accuracy": 0.9}})
    _placeholder_model(models, "done", {"arch": "mlp", "status": "complete",
                                        "metrics": {"val_accuracy": 0.8}})
    at = app("Home").run()
    assert not at.exception
    board = at.dataframe[0].value
    assert dict(zip(board["run"], board["status"], strict=True)) == {"killed": "⚠️ interrupted",
                                                                     "done": "✅ done"}
    assert any(c.value.startswith("**interrupted**: the training process was killed") for c in at.caption)


def test_bad_data_file_is_one_error_line_and_the_page_stops(isolated):
    (isolated / "data" / "train.csv").write_text("label,pixel0\n1,2\n")
    at = app("Home").run()
    assert not at.exception
    assert len(at.error) == 1 and not at.dataframe and not at.metric
    assert at.error[0].value.startswith(guards.DATA_ERROR.format("train.csv: header has 2 columns"))


def _upload_script():
    import streamlit as st

    from core import kaggle_csv
    from studio import datasets

    good = kaggle_csv.to_csv_bytes(datasets.train_set().images[:50], datasets.train_set().labels[:50])
    _, changed = datasets.accept_upload("train", good, "mine.csv")
    st.metric("changed", str(changed))
    try:
        datasets.accept_upload("train", b"label,pixel0\n1,2\n", "bad.csv")
    except ValueError as exc:
        st.error(str(exc))
    st.metric("rows", datasets.train_set().n)
    st.metric("name", datasets.train_set().name)


def test_a_bad_upload_is_refused_and_the_good_one_kept(isolated):
    at = AppTest.from_function(_upload_script, default_timeout=60).run()
    assert not at.exception
    assert "bad.csv: header has 2 columns, expected 785" in at.error[0].value
    assert _metric(at, "rows") == "50"
    assert _metric(at, "changed") == "True"
    assert _metric(at, "name") == "mine.csv"


def test_home_does_not_import_tensorflow(isolated):
    code = (
        "import sys; from streamlit.testing.v1 import AppTest; "
        f"at = AppTest.from_file({str(ROOT / 'Home.py')!r}, default_timeout=60).run(); "
        "assert not at.exception, at.exception; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_download_full_mnist_from_a_local_server(isolated, tmp_path, monkeypatch):
    """The Home button fetches MNIST (here from 127.0.0.1) and the studio then uses it."""
    import http.server
    import io
    import threading

    import numpy as np

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(
        buf,
        x_train=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), y_train=np.arange(30) % 10,
        x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10) % 10,
    )
    payload = buf.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        import core.mnist_download

        monkeypatch.setattr(core.mnist_download, "MNIST_URL", f"http://127.0.0.1:{server.server_port}/mnist.npz")
        at = app("Home").run()
        at.button(key="download_mnist").click().run()
        assert not at.exception
        assert any("mnist-full.csv" in s.value for s in at.success)
        at = app("Home").run()
        assert _metric(at, "Training digits") == "40"
        assert _metric(at, "Source") == "mnist-download"
    finally:
        server.shutdown()
