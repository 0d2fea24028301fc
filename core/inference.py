"""Read one digit: a picture in, the model's answer out (the Draw page and `predict-image`).

`read_digit(model, source)` runs `core.preprocess` then the model (a `core.prediction.Predictor`),
and returns both, so a page can show what the model saw next to what it said.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import preprocess as prep
from core.prediction import Predictor


@dataclass(frozen=True)
class Reading:
    """The model's reading of one digit: best label, its probability, all ten, the best three."""

    label: int
    confidence: float
    probs: np.ndarray  # (10,) float32, sums to 1
    top3: list[tuple[int, float]]

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "probs": [round(float(p), 6) for p in self.probs],
        }


def _reading(probs: np.ndarray) -> Reading:
    probs = np.asarray(probs, dtype=np.float32).reshape(10)
    order = np.argsort(-probs, kind="stable")
    return Reading(
        label=int(order[0]),
        confidence=float(probs[order[0]]),
        probs=probs,
        top3=[(int(i), float(probs[i])) for i in order[:3]],
    )


def predict_digit(model: Predictor, image28: np.ndarray) -> Reading:
    """The model's reading of one MNIST-style image `(28, 28)` uint8 0..255 (ink bright on black)."""
    image28 = np.asarray(image28)
    if image28.shape != (28, 28):
        raise ValueError(f"expected a 28x28 image, got shape {image28.shape}")
    return _reading(model.predict_proba(image28[None])[0])


def read_digit(
    model: Predictor, source: np.ndarray | bytes | str | Path, *, name: str | None = None
) -> tuple[prep.PreprocessResult, Reading]:
    """Any picture of a digit (canvas RGBA array, image bytes or path) -> (preprocessing steps, reading).

    Raises `preprocess.BlankImageError` when there is nothing to read, `ValueError` for a file
    that is not an image.
    """
    steps = prep.preprocess(source, name=name)
    return steps, predict_digit(model, steps.centred)


def predict_image_file(model: Predictor, path: Path) -> dict:
    """`predict-image`'s record for one file: `{"file", "label", "confidence", "probs"}`.

    Raises `ValueError` (naming the file) for a non-image, or a blank image.
    """
    path = Path(path)
    try:
        _, pred = read_digit(model, path, name=str(path))
    except prep.BlankImageError as exc:
        raise prep.BlankImageError(f"{path}: {exc}") from None
    return {"file": str(path), **pred.as_dict()}
