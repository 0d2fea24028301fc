"""The web server never loads TensorFlow: importing every studio module and serving every page, Draw,
Evaluate and Submit included (each one predicting), leaves `tensorflow` and `keras` out of the process;
and every page but Evaluate's validation split leaves scikit-learn out too (t-SNE runs in a child).

Run in a fresh interpreter (this test process may have imported TensorFlow for other tests), on a
private copy of the shipped model and its serving copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, pkgutil, sys
from pathlib import Path
ROOT = Path(sys.argv[1])
sys.path.insert(0, str(ROOT))
import importlib
import studio
for module in pkgutil.iter_modules(studio.__path__):
    importlib.import_module(f"studio.{module.name}")
from streamlit.testing.v1 import AppTest
from core import data

def page(name):
    path = ROOT / "Home.py" if name == "Home" else next((ROOT / "pages").glob(f"*_{name}.py"))
    return AppTest.from_file(str(path), default_timeout=120)

seen = {}
for name in ("Home", "Explore", "Train"):
    at = page(name).run()
    seen[name] = [e.value for e in at.exception]

draw = page("Draw").run()
draw.radio(key="draw_input").set_value("🖼️ Upload a picture").run()
draw.file_uploader(key="draw_upload").upload("digit.png", Path(sys.argv[2]).read_bytes(), "image/png")
draw.run()
seen["Draw"] = [e.value for e in draw.exception]
digit = [m.value for m in draw.markdown if 'aria-label="predicted digit"' in m.value]

submit = page("Submit").run()
submit.button(key="submit_predict").click().run()
seen["Submit"] = [e.value for e in submit.exception]
valid = [s.value for s in submit.success if s.value.startswith("Valid submission")]
# Before Evaluate: on the model's own training file it rebuilds the validation split with
# scikit-learn's splitter (on any other file it does not).
sklearn_before_evaluate = sorted(m for m in sys.modules if m.split(".")[0] == "sklearn")

evaluate = page("Evaluate").run()
seen["Evaluate"] = [e.value for e in evaluate.exception]
accuracy = [m.value for m in evaluate.metric if m.label == "Accuracy"]

heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({"exceptions": seen, "digit": digit, "accuracy": accuracy, "valid": valid,
                  "tensorflow": heavy, "sklearn": sklearn_before_evaluate}))
"""


def test_serving_every_page_never_loads_tensorflow(tmp_dirs):
    shutil.copytree(ROOT / "models" / "default-cnn", tmp_dirs.models / "default-cnn")
    png = tmp_dirs.data.parent / "digit.png"
    shutil.copy(ROOT / "tests" / "corpus" / "images" / "0-canvas.png", png)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(png)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    pages = ("Home", "Explore", "Train", "Draw", "Evaluate", "Submit")
    assert out["exceptions"] == {name: [] for name in pages}
    assert out["digit"] and ">0<" in out["digit"][0]  # the drawn 0 was read (and read right)
    assert out["accuracy"] and float(out["accuracy"][0].rstrip("%")) > 95
    assert out["valid"]  # a submission was predicted and checked
    assert out["tensorflow"] == []
    # Nor scikit-learn (~57 MB): Explore's t-SNE runs in a child process, the metrics are numpy.
    assert out["sklearn"] == []
