"""Held-out MNIST digits re-drawn the way people present them to the Draw page and `predict-image`.

- canvas: the Draw page's 280x280 RGBA canvas: white strokes (sometimes coloured) on a transparent
  or black background, the digit 100-250 px tall, off-centre, strokes of varied width with
  anti-aliased edges.
- paper: a photo/scan of dark ink on light paper: uneven lighting, paper grain and noise, varied
  size, position and slight rotation, saved as JPEG (or PNG) bytes.
- strokes: digits drawn as a mouse draws them, from hand-made stroke templates (constant brush
  width, round ends), with random size, slant, width-to-height ratio, brush and position: not
  MNIST's handwriting at all, so it checks that the path reads plain drawn shapes too.

The digits come from the committed sample's TEST file (`data/sample/test.csv.gz`, labels in
`test_answers.csv`), which no model trains on. Everything is seeded: the same call gives the
same images. Used by `benchmarks/bench_drawn.py`, `bench_inference.py` and the tests.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import data  # noqa: E402

CANVAS = 280


def heldout_digits(n: int | None = None, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` test digits of the committed sample (all 1,000 when None) and their labels, shuffled."""
    test = data.parse_csv(data.paths.sample_dir() / "test.csv.gz", expect_labels=False)
    labels = data.sample_answers()
    order = np.random.default_rng(seed).permutation(test.n)[: n or test.n]
    return test.images[order], labels[order].astype(np.int64)


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return np.add.outer(r * r, r * r) <= radius * radius


def stroke_mask(
    digit: np.ndarray, height: int, rng: np.random.Generator, *, width_px: float | None = None
) -> np.ndarray:
    """The digit as a smooth pen drawing `height` px tall: float 0..1 with anti-aliased edges.

    MNIST strokes are ~10% of the digit's height; a person's brush is whatever the slider says,
    so the width is re-drawn: `width_px` (random 8-30 px when None).
    """
    img = digit.astype(np.float32) / 255.0
    rows, cols = np.flatnonzero(img.max(1) > 0.1), np.flatnonzero(img.max(0) > 0.1)
    img = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = height / img.shape[0]
    size = (max(2, round(img.shape[1] * scale)), height)
    big = np.asarray(Image.fromarray(img, mode="F").resize(size, Image.Resampling.BICUBIC))
    # The pen's path: the digit thinned to a line (a high threshold), then widened to the brush.
    core = big > 0.55
    if not core.any():
        core = big > 0.3
    natural = 0.095 * height  # MNIST's stroke width at this size
    width = float(width_px if width_px is not None else rng.uniform(8, 30))
    radius = int(round((width - natural) / 2))
    if radius > 0:
        core = ndimage.binary_dilation(np.pad(core, radius + 2), structure=_disk(radius))
    elif radius < 0:
        thinner = ndimage.binary_erosion(core, structure=_disk(-radius))
        core = np.pad(thinner if thinner.sum() > 0.3 * core.sum() else core, 2)
    else:
        core = np.pad(core, 2)
    return np.clip(ndimage.gaussian_filter(core.astype(np.float32), 0.8), 0.0, 1.0)


def _place(mask: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Put `mask` at a random position inside a field of `shape` (shrinking it if it does not fit)."""
    h, w = mask.shape
    if h > shape[0] or w > shape[1]:
        f = min(shape[0] / h, shape[1] / w) * 0.98
        mask = np.asarray(Image.fromarray(mask, mode="F").resize((max(2, int(w * f)), max(2, int(h * f)))))
        h, w = mask.shape
    field = np.zeros(shape, dtype=np.float32)
    top = int(rng.integers(0, shape[0] - h + 1))
    left = int(rng.integers(0, shape[1] - w + 1))
    field[top : top + h, left : left + w] = mask
    return field


def canvas_image(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit as the Draw canvas returns it: `(280, 280, 4)` uint8 RGBA."""
    height = int(rng.integers(100, 251))
    stroke = _place(stroke_mask(digit, height, rng), (CANVAS, CANVAS), rng)
    colour = np.array([255, 255, 255], dtype=np.float32)
    if rng.random() < 0.15:  # some people pick a colour
        palette = [[255, 80, 80], [90, 200, 255], [255, 230, 60], [120, 255, 120]]
        colour = rng.choice(palette).astype(np.float32)
    rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.float32)
    if rng.random() < 0.5:  # transparent background, strokes carry alpha
        rgba[..., :3] = colour
        rgba[..., 3] = stroke * 255
    else:  # opaque black background
        rgba[..., :3] = stroke[..., None] * colour
        rgba[..., 3] = 255
    return np.round(rgba).astype(np.uint8)


def paper_image(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One digit as a photo of dark ink on light paper: JPEG (sometimes PNG) bytes."""
    h, w = int(rng.integers(200, 481)), int(rng.integers(200, 481))
    height = int(rng.integers(int(0.3 * min(h, w)), int(0.85 * min(h, w)) + 1))
    mask = stroke_mask(digit, height, rng, width_px=rng.uniform(0.06, 0.16) * height)
    if rng.random() < 0.7:
        mask = ndimage.rotate(mask, rng.uniform(-8, 8), reshape=True, order=1)
    ink = _place(np.clip(mask, 0, 1), (h, w), rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paper = rng.uniform(0.7, 0.95)
    gx, gy = rng.uniform(-0.15, 0.15, size=2)
    light = paper + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)).astype(np.float32), 2.0)
    light = light + 0.04 * grain / max(float(grain.std()), 1e-6)
    darkness = rng.uniform(0.55, 0.9)  # pencil is faint, a marker nearly black
    grey = light * (1 - darkness * ink) + rng.normal(0, rng.uniform(0.01, 0.04), (h, w))
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 1.0)], dtype=np.float32)
    rgb = np.clip(grey[..., None] * tint * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    if rng.random() < 0.8:
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(rng.integers(55, 95)))
    else:
        Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> list:
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True))


# Each digit as pen strokes in a box x 0..0.6, y 0..1 (y down), the way people draw them.
STROKE_TEMPLATES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.3, 0.5, 0.3, 0.5, 0, 360, 40)],
    1: [[(0.3, 0.0), (0.3, 1.0)]],
    2: [_arc(0.3, 0.28, 0.28, 0.28, 200, 405) + [(0.0, 1.0), (0.6, 1.0)]],
    3: [_arc(0.3, 0.25, 0.27, 0.25, -160, 90) + _arc(0.3, 0.73, 0.3, 0.27, -90, 160)],
    4: [[(0.45, 0.0), (0.0, 0.65), (0.6, 0.65)], [(0.45, 0.25), (0.45, 1.0)]],
    5: [[(0.55, 0.0), (0.08, 0.0), (0.05, 0.45)] + _arc(0.3, 0.68, 0.3, 0.3, -120, 150)],
    6: [[(0.5, 0.0)] + _arc(0.3, 0.7, 0.3, 0.3, -150, 210)],
    7: [[(0.0, 0.0), (0.6, 0.0), (0.2, 1.0)]],
    8: [_arc(0.3, 0.25, 0.25, 0.25, 90, 450), _arc(0.3, 0.73, 0.3, 0.27, -90, 270)],
    9: [_arc(0.3, 0.28, 0.28, 0.28, 0, 360) + [(0.58, 0.3), (0.55, 1.0)]],
}


def stroke_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """Digit `label` drawn with a round brush on a transparent 280x280 canvas: RGBA uint8."""
    height = rng.uniform(120, 240)
    width = height * rng.uniform(0.8, 1.2)
    slant = rng.uniform(-0.25, 0.1)
    brush = int(rng.uniform(10, 30))
    x0 = max(10.0, rng.uniform(20, 260 - 0.6 * width - height * abs(slant)))
    y0 = rng.uniform(15, max(16.0, 265 - height))
    im = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    pen = ImageDraw.Draw(im)
    white = (255, 255, 255, 255)
    for stroke in STROKE_TEMPLATES[int(label)]:
        pts = [(x0 + (x + slant * (1 - y)) * width, y0 + y * height) for x, y in stroke]
        pen.line(pts, fill=white, width=brush, joint="curve")
        for px, py in (pts[0], pts[-1]):  # round ends, as the canvas brush makes
            pen.ellipse([px - brush / 2, py - brush / 2, px + brush / 2, py + brush / 2], fill=white)
    return np.asarray(im)


def stroke_set(per_digit: int = 50, *, seed: int = 6) -> tuple[list[np.ndarray], np.ndarray]:
    """`per_digit` template drawings of each digit 0..9 (RGBA arrays) and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_digit)
    return [stroke_image(label, rng) for label in labels], labels


def canvas_set(n: int = 1000, *, seed: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` held-out digits as canvas RGBA arrays, and their labels."""
    digits, labels = heldout_digits(n, seed=seed)
    rng = np.random.default_rng(seed)
    return [canvas_image(d, rng) for d in digits], labels


def paper_set(n: int = 1000, *, seed: int = 2) -> tuple[list[bytes], np.ndarray]:
    """`n` held-out digits as photo-of-paper image bytes, and their labels."""
    digits, labels = heldout_digits(n, seed=seed)
    rng = np.random.default_rng(seed)
    return [paper_image(d, rng) for d in digits], labels


def write_examples(folder: Path) -> list[Path]:
    """A few example files for `tests/corpus/images/` (label first in each name), plus two refusals."""
    folder.mkdir(parents=True, exist_ok=True)
    digits, labels = heldout_digits(40, seed=4)
    rng = np.random.default_rng(4)
    written, seen = [], set()
    for digit, label in zip(digits, labels, strict=True):
        if label in seen:
            continue
        seen.add(label)
        if len(seen) % 2:
            path = folder / f"{label}-canvas.png"
            Image.fromarray(canvas_image(digit, rng)).save(path, optimize=True)
        else:
            path = folder / f"{label}-paper.jpg"
            path.write_bytes(paper_image(digit, rng))
        written.append(path)
        if len(seen) == 6:
            break
    blank = folder / "blank.png"
    Image.new("L", (200, 200), 235).save(blank)
    junk = folder / "not-an-image.png"
    junk.write_bytes(b"this file is called .png but holds text\n")
    return [*written, blank, junk]


if __name__ == "__main__":
    for p in write_examples(ROOT / "tests" / "corpus" / "images"):
        print(p.relative_to(ROOT), p.stat().st_size)
