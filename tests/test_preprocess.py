"""core.preprocess: each step on constructed images whose right answer is known."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from core import preprocess as prep


def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _square(side: int = 280, box: tuple[int, int, int, int] = (90, 90, 190, 190)) -> np.ndarray:
    img = np.zeros((side, side), dtype=np.uint8)
    top, left, bottom, right = box
    img[top:bottom, left:right] = 255
    return img


def _ring(side: int = 280, centre=(140, 140), radius: int = 80, width: int = 18) -> np.ndarray:
    """An "0"-like ring of ink, white on black."""
    yy, xx = np.mgrid[0:side, 0:side]
    d = np.hypot(yy - centre[0], xx - centre[1])
    return ((np.abs(d - radius) < width / 2) * 255).astype(np.uint8)


def _com(img: np.ndarray) -> tuple[float, float]:
    return tuple(float(v) for v in ndimage.center_of_mass(img.astype(float)))


# --------------------------------------------------------------------------- geometry


def test_centred_square_lands_centred_and_fills_the_box():
    res = prep.preprocess(_square())
    out = res.centred
    assert out.shape == (28, 28) and out.dtype == np.uint8
    r, c = _com(out)
    assert abs(r - 14.0) <= 0.6 and abs(c - 14.0) <= 0.6
    rows = np.flatnonzero(out.max(1) > 30)
    cols = np.flatnonzero(out.max(0) > 30)
    assert 19 <= len(rows) <= 21 and 19 <= len(cols) <= 21  # the 20x20 box
    assert out.max() == 255 and out[14, 14] >= 250
    assert out[:3].max() == 0 and out[:, :3].max() == 0  # a margin, as MNIST has


def test_small_off_centre_digit_is_scaled_to_20px_and_centred_by_mass():
    # A thin-ish "L" (not symmetric: its centre of mass is not its box centre), 40 px tall,
    # in the top-left corner of a big canvas.
    img = np.zeros((280, 280), dtype=np.uint8)
    img[10:50, 15:21] = 255  # vertical bar
    img[44:50, 15:40] = 255  # foot
    res = prep.preprocess(img, normalise_strokes=False)
    assert res.bbox == (10, 15, 50, 40)
    assert res.fitted.shape == (20, 12) or res.fitted.shape[0] == 20  # longer side 20, aspect kept
    assert abs(res.fitted.shape[1] - round(25 * 20 / 40)) <= 1
    r, c = _com(res.centred)
    assert abs(r - 14.0) <= 0.6 and abs(c - 14.0) <= 0.6
    # Centred by mass, not by box: the box is off the frame's centre towards the bar's side.
    cols = np.flatnonzero(res.centred.max(0) > 30)
    assert (cols[0] + cols[-1]) / 2 > 14.0


def test_aspect_ratio_of_a_tall_stroke_is_kept():
    img = np.zeros((280, 280), dtype=np.uint8)
    img[40:240, 130:150] = 255  # a "1": 200 tall, 20 wide
    res = prep.preprocess(img)
    assert res.fitted.shape[0] == 20
    assert res.fitted.shape[1] <= 4


def test_mnist_digit_is_nearly_unchanged(sample_train):
    """An MNIST digit is already in MNIST form: preprocessing must give it back nearly as is."""
    corr = []
    for img in sample_train.images[:30]:
        big = np.asarray(Image.fromarray(img).resize((280, 280), Image.Resampling.BICUBIC))
        out = prep.preprocess(big).centred.astype(float)
        corr.append(np.corrcoef(out.ravel(), img.astype(float).ravel())[0, 1])
    assert np.median(corr) > 0.85


# --------------------------------------------------------------------------- polarity and alpha


def test_dark_ink_on_light_paper_is_inverted():
    light = 255 - _ring()
    res_light = prep.preprocess(light)
    res_dark = prep.preprocess(_ring())
    assert res_light.inverted is True and res_dark.inverted is False
    assert np.abs(res_light.centred.astype(int) - res_dark.centred.astype(int)).max() <= 2


def test_white_ink_on_black_is_kept():
    res = prep.preprocess(_ring())
    assert res.inverted is False
    assert res.centred[14, 14] == 0  # the hole of the "0" stays dark
    assert res.centred.max() == 255


def test_canvas_rgba_with_transparent_background_uses_alpha():
    ring = _ring()
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white strokes...
    rgba[..., 3] = ring  # ...visible only where drawn
    reference = prep.preprocess(ring).centred
    out = prep.preprocess(rgba).centred
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 2


def test_dark_strokes_on_transparent_background_read_as_ink():
    ring = _ring()
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)  # black strokes on transparent
    rgba[..., 3] = ring
    res = prep.preprocess(rgba)
    assert res.centred[14, 14] == 0 and res.centred.max() == 255
    assert np.abs(res.centred.astype(int) - prep.preprocess(ring).centred.astype(int)).max() <= 2


def test_coloured_strokes_on_black_canvas():
    rgb = np.zeros((280, 280, 3), dtype=np.uint8)
    rgb[..., 2] = _ring()  # pure blue strokes: dim in luminance
    out = prep.preprocess(rgb).centred
    assert out.max() == 255  # contrast is stretched: blue ink reads as full ink
    assert np.abs(out.astype(int) - prep.preprocess(_ring()).centred.astype(int)).max() <= 3


def test_photo_of_paper_with_uneven_light_and_noise():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    light = 0.65 + 0.3 * xx / 400  # dark on the left, bright on the right
    ink = np.zeros((300, 400))
    ink[60:240, 50:64] = 1  # a "1" in the dark part
    grey = light * (1 - 0.7 * ink) + rng.normal(0, 0.03, ink.shape)
    res = prep.preprocess(_png(np.clip(grey * 255, 0, 255).astype(np.uint8), "JPEG"))
    assert res.inverted
    # The ink's box, not the dark side of the page, and noise specks dropped (the photo is
    # reduced to WORK_SIDE=400 wide: same coordinates here).
    assert np.abs(np.array(res.bbox) - [60, 50, 240, 64]).max() <= 4
    assert res.fitted.shape[0] == 20 and res.fitted.shape[1] <= 4


# --------------------------------------------------------------------------- stroke width


def _ink(img: np.ndarray, **kw) -> int:
    return int((prep.preprocess(img, **kw).centred > 128).sum())


def test_stroke_width_is_measured_relative_to_the_size():
    thin, usual, bold = (prep.preprocess(_ring(width=w)).stroke_ratio for w in (3, 18, 45))
    assert thin < 0.03 and 0.07 < usual < 0.12 and bold > 0.18


def test_hairlines_are_thickened_and_bold_strokes_thinned_towards_mnist():
    usual = _ink(_ring(width=18))  # MNIST-like: left as it is
    assert usual == _ink(_ring(width=18), normalise_strokes=False)
    thin, thin_raw = _ink(_ring(width=3)), _ink(_ring(width=3), normalise_strokes=False)
    bold, bold_raw = _ink(_ring(width=45)), _ink(_ring(width=45), normalise_strokes=False)
    assert thin > 1.3 * thin_raw and bold < 0.75 * bold_raw
    assert 0.7 < thin / usual < 1.4 and 0.7 < bold / usual < 1.4


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((280, 280), dtype=np.uint8),
        np.full((280, 280), 255, dtype=np.uint8),
        np.full((280, 280, 4), 0, dtype=np.uint8),  # the empty canvas: transparent
        np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)]),  # opaque black
    ],
    ids=["black", "white", "transparent-canvas", "black-canvas"],
)
def test_blank_images_raise_blank_error(image):
    with pytest.raises(prep.BlankImageError, match="nothing to read"):
        prep.preprocess(image)


def test_faint_noise_only_is_blank():
    rng = np.random.default_rng(1)
    paper = np.clip(200 + rng.normal(0, 6, (300, 300)), 0, 255).astype(np.uint8)
    with pytest.raises(prep.BlankImageError):
        prep.preprocess(paper)


def test_a_speck_is_not_a_digit():
    img = np.zeros((280, 280), dtype=np.uint8)
    img[100:104, 200:204] = 255
    with pytest.raises(prep.BlankImageError, match="speck"):
        prep.preprocess(img)


def test_a_speck_beside_a_digit_is_dropped():
    img = _ring()
    img[5:7, 5:7] = 255  # dust in a corner
    res = prep.preprocess(img)
    assert res.bbox[0] > 40 and res.bbox[1] > 40  # the box is the ring's, not the dust's


def test_blank_error_is_a_value_error():
    assert issubclass(prep.BlankImageError, ValueError)


def test_garbage_bytes_are_refused_with_the_name():
    with pytest.raises(ValueError, match="notes.txt: not an image"):
        prep.preprocess(b"this is not an image at all", name="notes.txt")


def test_truncated_png_is_refused():
    payload = _png(_ring())[:200]
    with pytest.raises(ValueError, match="cut.png"):
        prep.preprocess(payload, name="cut.png")


def test_empty_file_is_refused(tmp_path):
    f = tmp_path / "empty.png"
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png: the file is empty"):
        prep.preprocess(f)


def test_huge_image_is_refused_before_decoding():
    # A 8000x6000 (48 MP) PNG of one colour compresses to a few kB; it must be refused from
    # its header, without allocating the pixels.
    big = Image.new("L", (8000, 6000), 0)
    buf = io.BytesIO()
    big.save(buf, format="PNG", optimize=False, compress_level=9)
    with pytest.raises(ValueError, match="too large.*48 megapixels"):
        prep.decode_image(buf.getvalue(), name="huge.png")



def test_image_over_pillows_own_limit_is_refused_with_the_limits(tmp_path):
    # 10,000 x 10,000 (100 MP): past twice the limit Pillow refuses it itself, before we see the size.
    path = tmp_path / "huge.png"
    Image.new("L", (10_000, 10_000), 0).save(path)
    with pytest.raises(ValueError) as info:
        prep.preprocess(path, name="huge.png")
    assert str(info.value) == "huge.png: the image is too large (over 80 megapixels; at most 40)"


def test_wrong_array_shapes_are_refused():
    with pytest.raises(ValueError, match="expected an image array"):
        prep.preprocess(np.zeros((10, 10, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="too small"):
        prep.preprocess(np.zeros((4, 4), dtype=np.uint8))


# --------------------------------------------------------------------------- decoding


def test_decode_keeps_alpha_and_reads_grey(tmp_path):
    rgba = np.zeros((50, 60, 4), dtype=np.uint8)
    rgba[10:20, 10:20] = [255, 255, 255, 200]
    f = tmp_path / "a.png"
    Image.fromarray(rgba).save(f)
    arr = prep.decode_image(f)
    assert arr.shape == (50, 60, 4) and arr[15, 15, 3] == 200
    g = tmp_path / "g.png"
    Image.fromarray(_ring(60, (30, 30), 20, 5)).save(g)
    assert prep.decode_image(g).shape == (60, 60)


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((40, 80), dtype=np.uint8)  # wide
    img[5:35, 10:20] = 255
    im = Image.fromarray(img)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    f = tmp_path / "phone.jpg"
    im.save(f, exif=exif)
    assert prep.decode_image(f).shape[:2] == (80, 40)  # shown upright: tall


def test_float_arrays_in_0_1_are_accepted():
    res = prep.preprocess(_ring().astype(np.float32) / 255)
    assert res.centred.max() == 255
