"""Shared by the Draw tests: one small model trained once per test session, and redrawn digits."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import training_support
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import drawn_sets  # noqa: E402

MODEL = "draw-mlp"


def small_model(cache: Path, models_dir: Path, *, arch: str = "mlp", name: str = MODEL, **settings) -> str:
    """Train `arch` briefly on the committed sample once (kept in `cache`), copy it into `models_dir`."""
    from core import registry, training

    trained = cache / name
    if not (trained / "meta.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        old = os.environ.get("DRS_MODELS_DIR")
        os.environ["DRS_MODELS_DIR"] = str(cache)
        try:
            config = training.TrainConfig(arch=arch, name=name, **({"epochs": 8} | settings))
            result = training_support.train_here(config, owner="tests")
            assert result is not None, registry.read_meta(name).get("error")
        finally:
            if old is None:
                os.environ.pop("DRS_MODELS_DIR", None)
            else:
                os.environ["DRS_MODELS_DIR"] = old
    shutil.copytree(trained, models_dir / name, dirs_exist_ok=True)
    return name


@contextmanager
def private_env(tmp_path_factory, label: str) -> Iterator[SimpleNamespace]:
    """Empty data/models/cache folders for a test module (env vars set), with the small model in."""
    import pytest

    base = tmp_path_factory.mktemp(label)
    dirs = SimpleNamespace(data=base / "data", models=base / "models", cache=base / "cache")
    for d in (dirs.data, dirs.models, dirs.cache):
        d.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_DATA_DIR", str(dirs.data))
        mp.setenv("DRS_MODELS_DIR", str(dirs.models))
        mp.setenv("DRS_CACHE_DIR", str(dirs.cache))
        dirs.model_cache = tmp_path_factory.getbasetemp() / "draw-model-cache"
        dirs.name = small_model(dirs.model_cache, dirs.models)
        yield dirs


def redrawn(n: int, *, seed: int = 7) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` held-out digits drawn big and off-centre on a 280x280 RGBA canvas, and their labels."""
    return drawn_sets.canvas_set(n, seed=seed)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
