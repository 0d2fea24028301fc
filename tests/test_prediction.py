"""core.prediction: chunks with progress, averaged models and views, shapes refused, the model version,
and loading without TensorFlow (a missing or stale serving copy is made again in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import prediction, registry, serving

ROOT = Path(__file__).resolve().parents[1]


class Stub:
    """A model that answers the digit written in pixel (0, 0), and counts its calls."""

    name = "stub"

    def __init__(self):
        self.calls: list[int] = []

    def predict_proba(self, images):
        self.calls.append(len(images))
        return np.eye(10, dtype=np.float32)[images[:, 0, 0].astype(int) % 10]


def _images(n: int) -> np.ndarray:
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    return images


def test_chunks_report_progress_and_keep_order():
    stub, seen = Stub(), []
    proba = prediction.predict_proba(stub, _images(25), chunk=10, progress=lambda d, t: seen.append((d, t)))
    assert stub.calls == [10, 10, 5] and seen == [(10, 25), (20, 25), (25, 25)]
    assert proba.dtype == np.float32 and proba.argmax(1).tolist() == [i % 10 for i in range(25)]
    assert prediction.predict_proba(stub, _images(0)).shape == (0, 10)


def test_rows_are_predicted_in_their_order_a_chunk_at_a_time():
    stub, seen = Stub(), []
    rows = np.array([24, 3, 3, 17, 0, 9, 11])
    proba = prediction.predict_proba(stub, _images(25), rows=rows, chunk=3,
                                     progress=lambda d, t: seen.append((d, t)))
    assert stub.calls == [3, 3, 1] and seen == [(3, 7), (6, 7), (7, 7)]
    assert proba.argmax(1).tolist() == [r % 10 for r in rows.tolist()]
    assert prediction.predict_proba(stub, _images(5), rows=np.zeros(0, np.int64)).shape == (0, 10)


def test_models_and_views_are_averaged_each_with_the_same_weight():
    class Shifted(Stub):
        def predict_proba(self, images):
            return np.roll(super().predict_proba(images), 1, axis=1)

    seen = []
    proba = prediction.predict_proba([Stub(), Shifted()], _images(4),
                                     progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 8), (8, 8)]  # images times models
    np.testing.assert_allclose(proba[0, [0, 1]], [0.5, 0.5])
    # With TTA each model sees the three views; rotating a one-pixel corner mark loses it, which is
    # what the stub then reads (digit 0): the views are averaged, a third each.
    proba = prediction.predict_proba(Stub(), _images(4), tta=True)
    assert len(prediction.TTA_VIEWS) == 3
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert proba[3, 3] == pytest.approx(1 / 3) and proba[3, 0] == pytest.approx(2 / 3)


def test_bad_input_is_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match="at least one model"):
        prediction.predict_proba([], _images(2))
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        prediction.predict_proba(Stub(), np.zeros((2, 784)))

    class Wrong(Stub):
        def predict_proba(self, images):
            return np.zeros((len(images), 3), dtype=np.float32)

    with pytest.raises(ValueError, match=r"shape \(2, 3\), expected \(2, 10\)"):
        prediction.predict_proba(Wrong(), _images(2))


def test_model_version_changes_with_the_weights_not_the_notes(tiny_models_env):
    before = prediction.model_version("mlp-a")
    meta = registry.read_meta("mlp-a")
    registry.write_meta("mlp-a", {**meta, "note": "renamed or annotated"})
    assert prediction.model_version("mlp-a") == before
    keras_file = registry.model_dir("mlp-a") / registry.KERAS_FILE
    keras_file.write_bytes(keras_file.read_bytes())  # re-saved
    assert prediction.model_version("mlp-a") > before


def test_a_missing_serving_copy_is_made_in_a_child_and_no_tensorflow_here(tiny_models_env, sample_test):
    """Run in a fresh interpreter: it must not import TensorFlow, even to export."""
    folder = tiny_models_env.models / "mlp-a"
    expected = prediction.load("mlp-a").predict_proba(sample_test.images[:16])
    (folder / serving.TFLITE_FILE).unlink()
    code = f"""
import json, sys
import numpy as np
sys.path.insert(0, {str(ROOT)!r})
from core import data, prediction
ds = data.load_csv({str(ROOT / "data" / "sample" / "test.csv.gz")!r}, expect_labels=False)
p = prediction.load("mlp-a").predict_proba(ds.images[:16])
print(json.dumps({{"probs": p.tolist(), "tensorflow": "tensorflow" in sys.modules,
                  "keras": "keras" in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["tensorflow"] is False and found["keras"] is False
    np.testing.assert_allclose(np.array(found["probs"]), expected, atol=1e-5)
    assert serving.is_current(folder)


def test_a_copy_that_does_not_match_its_keras_file_is_never_used(tiny_models_env, sample_test):
    folder = tiny_models_env.models / "mlp-a"
    good = prediction.load("mlp-a").predict_proba(sample_test.images[:8])
    # A copy whose sidecar names another model.keras: its digest gives it away.
    sidecar = json.loads((folder / serving.EXPORT_FILE).read_text())
    sidecar["keras_digest"] = "0" * 32
    (folder / serving.EXPORT_FILE).write_text(json.dumps(sidecar))
    assert not serving.is_current(folder)
    with pytest.raises(serving.StaleExport, match="made from another model.keras"):
        serving.load(folder)
    # prediction.load makes a fresh copy (in a child) and answers as before.
    again = prediction.load("mlp-a").predict_proba(sample_test.images[:8])
    np.testing.assert_allclose(again, good, atol=1e-5)
    assert serving.is_current(folder)


def test_a_damaged_copy_is_refused_and_remade(tiny_models_env, sample_test):
    folder = tiny_models_env.models / "mlp-a"
    good = prediction.load("mlp-a").predict_proba(sample_test.images[:8])
    flatbuffer = bytearray((folder / serving.TFLITE_FILE).read_bytes())
    flatbuffer[len(flatbuffer) // 2] ^= 0xFF
    (folder / serving.TFLITE_FILE).write_bytes(bytes(flatbuffer))
    with pytest.raises(serving.StaleExport, match="not the file its sidecar describes"):
        serving.load(folder)
    (folder / serving.EXPORT_FILE).write_text("{not json")
    with pytest.raises(serving.StaleExport, match="unreadable"):
        serving.load(folder)
    again = prediction.load("mlp-a").predict_proba(sample_test.images[:8])
    np.testing.assert_allclose(again, good, atol=1e-5)


def test_a_copy_that_cannot_be_made_says_why(tiny_models_env):
    folder = tiny_models_env.models / "mlp-a"
    (folder / serving.TFLITE_FILE).unlink()
    (folder / registry.KERAS_FILE).write_bytes(b"not a keras file")
    with pytest.raises(ValueError, match=r"not be prepared for serving: .*python -m core convert mlp-a"):
        prediction.load("mlp-a")
    assert prediction.load("forest").kind == "sklearn"  # the other models are unaffected
