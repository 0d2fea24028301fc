"""Any picture of one digit -> the 28x28 input an MNIST model expects, made the way MNIST was made.

MNIST digits are white ink on black, scaled (keeping the aspect ratio, with anti-aliasing) to fit
a 20x20 box, then placed in a 28x28 frame so that their centre of mass sits at the centre. A model
trained on them reads a drawing well only if the drawing is brought to the same form, so:

1. decode   bytes/file -> pixel array (Pillow, with a size limit checked before decoding)
2. ink      alpha/colour -> one grey "ink" map, bright ink on black whatever the polarity
3. clean    remove an uneven paper background and noise, drop specks, normalise contrast
4. crop     to the ink's bounding box
5. fit      into a 20x20 box, aspect kept, stroke width normalised, anti-aliased resize
6. centre   by centre of mass in the 28x28 frame

`preprocess(source)` runs them all and returns every step (`PreprocessResult`) so the Draw page
can show what the model saw. An image without ink raises `BlankImageError`: never a guess.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

MAX_PIXELS = 40_000_000  # refuse bigger images before decoding them (a 40 MP photo is plenty)
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own decompression-bomb guard, at the same limit
MAX_BYTES = 50 * 1024 * 1024
WORK_SIDE = 400  # larger pictures are reduced to this before analysis: enough detail, fast
FRAME = 28  # MNIST's frame
BOX = 20  # MNIST's box: the digit's longer side after fitting
TARGET_COM = (14.0, 14.0)  # where MNIST puts the centre of mass (row, column; measured on MNIST)
MIN_CONTRAST = 0.10  # weakest ink (0..1 grey levels above the background) that counts as a mark
SPECK_FRACTION = 0.04  # ink whose bounding box is below this share of the image side is a speck
SPECK_MASS = 0.03  # blobs with less than this share of the largest blob's ink are dropped as noise
# Stroke width relative to the digit's longer side, as `stroke_ratio` measures it at 80 px:
# MNIST's median, and the band (about MNIST's own spread) outside which a drawing's strokes are
# thickened or thinned towards it, so that drawn digits look like the ones the model learned.
TARGET_STROKE = 0.11
STROKE_BAND = (0.075, 0.17)
BLOB_STROKE = 0.3  # bolder than this, the loops are filled in: thinning would only carve noise


class BlankImageError(ValueError):
    """The image holds no digit to read (blank, or only a speck): the caller says so, never guesses."""


@dataclass(frozen=True)
class PreprocessResult:
    """Each step of `preprocess`, all uint8 with ink bright on black.

    grey: (h, w) the cleaned ink map at working resolution; cropped: the ink's bounding box of it;
    fitted: (<=20, <=20) the digit in MNIST's 20x20 box; centred: (28, 28) what the model reads.
    """

    grey: np.ndarray
    cropped: np.ndarray
    fitted: np.ndarray
    centred: np.ndarray
    inverted: bool  # the source was dark ink on a light background
    bbox: tuple[int, int, int, int]  # top, left, bottom, right (exclusive) of the ink in `grey`
    stroke_ratio: float  # stroke width / digit height measured in the source

    @property
    def image(self) -> np.ndarray:
        """The (28, 28) uint8 model input."""
        return self.centred


# --------------------------------------------------------------------------- 1. decode


def decode_image(source: bytes | str | Path, *, name: str | None = None) -> np.ndarray:
    """Pixels of an image file or its bytes: uint8 `(h, w)` grey, `(h, w, 3)` RGB or `(h, w, 4)` RGBA.

    Checks the size from the header before decoding (at most `MAX_PIXELS`), applies the EXIF
    orientation of phone photos, and reduces very large JPEGs while decoding. Anything Pillow
    cannot read raises `ValueError` naming the file.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ValueError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
        if size > MAX_BYTES:
            raise ValueError(f"{name}: the file is too large ({size / 2**20:.0f} MB; at most 50 MB)")
        payload = path.read_bytes()
    else:
        payload = bytes(source)
        name = name or "the image"
        if len(payload) > MAX_BYTES:
            raise ValueError(f"{name}: the file is too large ({len(payload) / 2**20:.0f} MB; at most 50 MB)")
    if not payload:
        raise ValueError(f"{name}: the file is empty, not an image")
    try:
        with warnings.catch_warnings():  # the size is checked below, before any decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(payload))
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ValueError(
                    f"{name}: the image is too large ({w}x{h} = {w * h / 1e6:.0f} megapixels; "
                    f"at most {MAX_PIXELS / 1e6:.0f})"
                )
            if im.format == "JPEG":
                im.draft("RGB", (WORK_SIDE, WORK_SIDE))  # decode at 1/2..1/8 scale: much faster
            im.seek(0)  # the first frame of an animation
            im = ImageOps.exif_transpose(im)
            return _as_array(im)
    except ValueError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, EOFError) as exc:
        detail = "not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP, TIFF)"
        if isinstance(exc, Image.DecompressionBombError):
            # Pillow refuses more than twice its limit before reading the size for us.
            detail = (f"the image is too large (over {2 * MAX_PIXELS / 1e6:.0f} megapixels; "
                      f"at most {MAX_PIXELS / 1e6:.0f})")
        elif not isinstance(exc, UnidentifiedImageError):
            detail = f"the image is damaged or truncated ({exc})"
        raise ValueError(f"{name}: {detail}") from None


def _as_array(im: Image.Image) -> np.ndarray:
    """Pillow image -> uint8 array, keeping transparency where the file has it."""
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        return np.asarray(im.convert("RGBA"))
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = arr.max() or 1.0
        return np.round(arr / top * 255).astype(np.uint8)
    if im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64))
        lo, hi = arr.min(), arr.max()
        return np.round((arr - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8)
    if im.mode in ("L", "1"):
        return np.asarray(im.convert("L"))
    return np.asarray(im.convert("RGB"))


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"expected an image array (h, w), (h, w, 3) or (h, w, 4), got shape {arr.shape}")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ValueError(
            f"the image is too small to read ({arr.shape[1]}x{arr.shape[0]} pixels; at least 8x8)"
        )
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ValueError(f"the image is too large ({arr.shape[1]}x{arr.shape[0]} pixels)")
    if arr.dtype != np.uint8:
        arr = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("the image has NaN or infinite values")
        if arr.max() <= 1.0 and arr.min() >= 0.0:
            arr = arr * 255  # floats 0..1
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    return arr


def _reduce(arr: np.ndarray, side: int = WORK_SIDE, *, min_side: int = 8) -> np.ndarray:
    """Shrink so the longer side is at most `side` (area average: keeps thin strokes as grey).

    For uint8 pictures and float32 ink maps alike; neither side goes below `min_side` pixels.
    """
    h, w = arr.shape[:2]
    if max(h, w) <= side:
        return arr
    scale = side / max(h, w)
    size = (max(min_side, round(w * scale)), max(min_side, round(h * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize(size, Image.Resampling.BOX))


# --------------------------------------------------------------------------- 2. ink


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def ink_map(pixels: np.ndarray) -> tuple[np.ndarray, bool]:
    """Grey float32 `(h, w)` in 0..1 with the ink bright, and whether the source was inverted.

    Transparency (the Draw canvas: coloured strokes on a transparent background) is composited
    onto whichever of black/white the strokes contrast with. Polarity is then decided by the
    background (the border's median): the tail of grey values farther from it is the ink.
    """
    arr = np.asarray(pixels).astype(np.float32) / 255.0
    if arr.ndim == 2:
        grey = arr
    else:
        grey = _luminance(arr[..., :3])
        if arr.shape[2] == 4:
            alpha = arr[..., 3]
            if alpha.min() < 0.95:  # there is transparency: composite
                solid = alpha > 0.5
                bright_ink = not solid.any() or float(np.median(grey[solid])) >= 0.5
                backdrop = 0.0 if bright_ink else 1.0
                grey = grey * alpha + backdrop * (1.0 - alpha)
    h, w = grey.shape
    ring = max(1, round(0.03 * min(h, w)))
    border = np.concatenate(
        [grey[:ring].ravel(), grey[-ring:].ravel(), grey[:, :ring].ravel(), grey[:, -ring:].ravel()]
    )
    background = float(np.median(border))
    lo, hi = np.percentile(_subsample(grey), [0.2, 99.8])
    inverted = (background - lo) > (hi - background)
    return ((1.0 - grey) if inverted else grey).astype(np.float32), bool(inverted)


def _subsample(a: np.ndarray, target: int = 20_000) -> np.ndarray:
    """A regular grid of about `target` pixels: statistics of a large image at a fraction of the cost."""
    step = max(1, round(float(np.sqrt(a.size / target))))
    return a[::step, ::step].ravel()


# --------------------------------------------------------------------------- 3. clean


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in 0..1 (the split that best separates two grey-level groups)."""
    bins = 128
    hist = np.bincount(np.clip(values * bins, 0, bins - 1).astype(np.intp), minlength=bins).astype(np.float64)
    centres = (np.arange(bins) + 0.5) / bins
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(int(np.argmax(between[:-1])) + 1) / bins


def _background_surface(ink: np.ndarray) -> tuple[np.ndarray | float, float]:
    """A smooth (quadratic) fit of the background and the noise level around it.

    Photos of paper are lit unevenly; a global threshold would either eat faint ink or keep
    the dark corner. The fit is robust: it starts from the darker half of the pixels (the
    background, unless ink covers half the picture), then refits on every pixel not far above
    the surface (the far ones are ink), a few times. A flat background (the canvas)
    is returned as one number: nothing to fit.
    """
    h, w = ink.shape
    step = max(1, int(np.sqrt(ink.size / 3000)))
    sub = ink[::step, ::step]
    values = sub.ravel().astype(np.float64)
    lo, mid = np.percentile(values, [1, 50])
    if mid - lo < 1.5 / 255:  # most of it one value: a drawing, a clean render
        return float(mid), 0.0
    rows, cols = np.divmod(np.arange(values.size), sub.shape[1])
    y, x = rows * step / h - 0.5, cols * step / w - 0.5
    design = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    keep = values <= mid
    coef, noise = np.array([mid, 0, 0, 0, 0, 0], dtype=np.float64), 0.0
    for _ in range(5):
        d = design[keep]
        # Normal equations: a 6x6 solve, far cheaper than a general least-squares call.
        coef = np.linalg.solve(d.T @ d + 1e-6 * np.eye(6), d.T @ values[keep])
        resid = values - design @ coef
        r = resid[keep]
        noise = float(1.4826 * np.median(np.abs(r - np.median(r))))
        new_keep = resid < 3.0 * max(noise, 1.0 / 255)
        if np.array_equal(new_keep, keep) or new_keep.sum() < 50:
            break
        keep = new_keep
    yy = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    xx = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    c = coef.astype(np.float32)
    surface = (c[0] + c[1] * xx + c[3] * xx * xx) + (c[2] * yy + c[5] * yy * yy) + c[4] * (yy * xx)
    return surface, noise


def clean_ink(ink: np.ndarray) -> np.ndarray:
    """Background removed, noise floored, specks dropped, contrast stretched: float32 0..1.

    Raises `BlankImageError` when nothing stands out from the background.
    """
    if float(ink.max() - ink.min()) < MIN_CONTRAST:
        raise BlankImageError("nothing to read: the image is blank")
    surface, noise = _background_surface(ink)
    signal = ink - surface
    sample = _subsample(signal)
    top = float(signal.max()) if sample.size < 2000 else float(np.percentile(sample, 99.9))
    positive = sample[sample > 0]
    if positive.size:
        top = max(top, float(np.percentile(positive, 99)))
    if top < max(MIN_CONTRAST, 5 * noise):  # pure noise reaches ~3 sigma at its 99.9th percentile
        raise BlankImageError("nothing to read: the image is blank")
    floor = max(4 * noise, 0.15 * top)
    strong = sample[sample > floor]
    hi = float(np.percentile(strong, 95)) if strong.size > 20 else top
    out = np.clip((signal - floor) * (1.0 / max(hi - floor, 1e-6)), 0.0, 1.0)
    return _drop_specks(out.astype(np.float32))


def _drop_specks(ink: np.ndarray) -> np.ndarray:
    """Keep the blobs that carry real ink; noise and dust specks go."""
    labels, n = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    if n <= 1:
        return ink
    mass = ndimage.sum_labels(ink, labels, index=np.arange(1, n + 1))
    keep = np.concatenate([[False], mass >= SPECK_MASS * mass.max()])
    if keep[1:].all():
        return ink
    return np.where(keep[labels], ink, 0.0).astype(np.float32)


# --------------------------------------------------------------------------- 4-6. crop, fit, centre


def ink_bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the pixels with ink, bottom/right exclusive."""
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    if len(rows) == 0:
        raise BlankImageError("nothing to read: the image is blank")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def stroke_ratio(ink: np.ndarray) -> float:
    """Stroke width relative to the digit's longer side.

    The width is read off the distance transform along the strokes' ridge (each ridge pixel's
    distance to the background is half the local width), so it does not depend on the length.
    """
    core = ink > 0.5
    if not core.any():
        return 0.0
    dist = ndimage.distance_transform_edt(np.pad(core, 1))[1:-1, 1:-1]
    ridge = core & (dist >= ndimage.maximum_filter(dist, size=3))
    width = max(2.0 * float(np.median(dist[ridge])) - 1.0, 1.0)
    return width / max(ink.shape)


def normalise_stroke(cropped: np.ndarray, ratio: float) -> np.ndarray:
    """Thicken hairlines and thin very bold strokes towards MNIST's stroke width (grey morphology)."""
    lo, hi = STROKE_BAND
    if ratio <= 0 or lo <= ratio <= hi or ratio > BLOB_STROKE:
        return cropped
    height = max(cropped.shape)
    change = (TARGET_STROKE - ratio) * height  # pixels of width to add (or remove if negative)
    radius = int(round(abs(change) / 2))
    if radius < 1:
        return cropped
    size = 2 * radius + 1
    disk = np.add.outer((np.arange(size) - radius) ** 2, (np.arange(size) - radius) ** 2) <= radius**2
    if change > 0:
        padded = np.pad(cropped, radius)
        return ndimage.grey_dilation(padded, footprint=disk)
    thinner = ndimage.grey_erosion(cropped, footprint=disk)
    return thinner if thinner.max() > 0.5 else cropped  # never erase the digit


def fit_box(cropped: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale so the longer side is `box` pixels, aspect kept, anti-aliased: float32 0..1."""
    h, w = cropped.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow wants (width, height)
    im = Image.fromarray(np.ascontiguousarray(cropped, dtype=np.float32), mode="F")
    fitted = np.asarray(im.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    fitted = np.clip(fitted, 0.0, None)
    inked = fitted[fitted > 0.05]
    # Stroke cores at full brightness, as in MNIST (a thin line loses some in the resize; the
    # resampling filter's overshoot at edges must not dim everything else).
    top = float(np.percentile(inked, 98)) if inked.size else float(fitted.max())
    return np.clip(fitted / top, 0.0, 1.0) if top > 0 else fitted


def centre_by_mass(fitted: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """Place `fitted` in a `frame` x `frame` field with its centre of mass at MNIST's centre
    (whole-pixel shift, as MNIST did, so the strokes stay crisp)."""
    h, w = fitted.shape
    com_r, com_c = ndimage.center_of_mass(fitted)
    top = int(np.clip(round(TARGET_COM[0] - com_r), 0, frame - h))
    left = int(np.clip(round(TARGET_COM[1] - com_c), 0, frame - w))
    out = np.zeros((frame, frame), dtype=np.float32)
    out[top : top + h, left : left + w] = fitted
    return out


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0.0, 1.0) * 255).astype(np.uint8)


def preprocess(
    source: np.ndarray | bytes | str | Path, *, name: str | None = None, normalise_strokes: bool = True
) -> PreprocessResult:
    """Any picture of one digit -> MNIST-style 28x28 uint8 (ink bright on black), with each step.

    `source` is a pixel array (`(h, w)`, `(h, w, 3)` or `(h, w, 4)` uint8, e.g. the canvas's
    RGBA) or an image file's path or bytes. Raises `BlankImageError` (a `ValueError`) when there
    is no ink to read, `ValueError` when the file is not a readable image.

    >>> canvas = np.zeros((280, 280, 4), np.uint8)  # the Draw page's RGBA canvas, empty
    >>> canvas[60:220, 130:150] = 255  # one white stroke: a "1"
    >>> preprocess(canvas).centred.shape
    (28, 28)
    """
    if isinstance(source, np.ndarray):
        pixels = _check_pixels(source)
    else:
        pixels = _check_pixels(decode_image(source, name=name))
    pixels = _reduce(pixels)
    ink, inverted = ink_map(pixels)
    grey = clean_ink(ink)
    top, left, bottom, right = ink_bbox(grey)
    side = max(grey.shape)
    if max(bottom - top, right - left) < max(3, SPECK_FRACTION * side):
        raise BlankImageError("nothing to read: the ink is only a speck; draw a bigger digit")
    cropped = grey[top:bottom, left:right]
    small = _reduce(cropped, 4 * BOX, min_side=1)  # 80 px is detail enough for a 20 px box, and fast
    ratio = stroke_ratio(small)
    shaped = normalise_stroke(small, ratio) if normalise_strokes else small
    fitted = fit_box(shaped)
    centred = centre_by_mass(fitted)
    return PreprocessResult(
        grey=_to_uint8(grey),
        cropped=_to_uint8(cropped),
        fitted=_to_uint8(fitted),
        centred=_to_uint8(centred),
        inverted=inverted,
        bbox=(top, left, bottom, right),
        stroke_ratio=round(ratio, 4),
    )
