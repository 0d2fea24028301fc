"""Deskewing inside the model: a slanted stroke comes out upright and centred, as scipy's affine
resampling would do it, and a blank image stays blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

pytestmark = pytest.mark.slow  # TensorFlow


def _numpy_moments(img: np.ndarray) -> tuple[float, float, float]:
    """Centre of mass (row, col) and slant cov(row, col) / var(row), straight from the definition."""
    r, c = np.mgrid[: img.shape[0], : img.shape[1]]
    m = img.sum()
    mr, mc = (img * r).sum() / m, (img * c).sum() / m
    return mr, mc, (img * (r - mr) * (c - mc)).sum() / (img * (r - mr) ** 2).sum()


def _stroke(top: tuple[int, int], bottom: tuple[int, int]) -> np.ndarray:
    img = np.zeros((28, 28), np.float32)
    for t in np.linspace(0, 1, 200):
        r = round(top[0] + t * (bottom[0] - top[0]))
        c = round(top[1] + t * (bottom[1] - top[1]))
        img[r, c : c + 2] = 1.0
    return img


def _deskew(images: np.ndarray) -> np.ndarray:
    from core.deskew import Deskew

    return np.asarray(Deskew()(images[..., None].astype(np.float32)))[..., 0]


def test_a_slanted_stroke_comes_out_upright_and_centred():
    slanted = _stroke((5, 18), (22, 8))  # "/" and off centre
    assert _numpy_moments(slanted)[2] < -0.4
    upright = _deskew(slanted[None])[0]
    mr, mc, alpha = _numpy_moments(upright)
    assert abs(alpha) < 0.05
    assert abs(mr - 13.5) < 0.3 and abs(mc - 13.5) < 0.3
    assert upright.sum() == pytest.approx(slanted.sum(), rel=0.05)  # the ink is moved, not lost


def test_it_resamples_as_scipy_does(sample_train):
    images = sample_train.images[:6].astype(np.float32) / 255
    ours = _deskew(images)
    for img, out in zip(images, ours, strict=True):
        mr, mc, alpha = _numpy_moments(img)
        shear = np.array([[1.0, 0.0], [alpha, 1.0]])
        offset = np.array([mr, mc]) - shear @ np.array([13.5, 13.5])
        expected = ndimage.affine_transform(img, shear, offset=offset, order=1, mode="constant", cval=0.0)
        np.testing.assert_allclose(out, expected, atol=2e-3)


def test_a_blank_image_stays_blank_and_an_upright_centred_one_is_unchanged():
    bar = np.zeros((28, 28), np.float32)
    bar[6:22, 13:15] = 1.0  # upright, centre of mass at (13.5, 13.5)
    out = _deskew(np.stack([np.zeros((28, 28), np.float32), bar]))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], bar, atol=1e-5)


def test_a_saved_model_with_it_loads_in_a_fresh_process(tmp_dirs):
    """A job that builds an ensemble or continues a run loads the `.keras` file in a process that
    never built the model: the layer must be registered by loading alone."""
    import os
    import subprocess
    import sys

    from core import models, registry

    registry.save_keras_model("deskewed", models.build("dr-sep-deskew"))
    code = ("from core import registry; m = registry.load_keras('deskewed'); "
            "print([layer.name for layer in m.layers if layer.name == 'deskew'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(),
                          cwd=Path(__file__).resolve().parent.parent, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['deskew']"
