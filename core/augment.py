"""Training-time augmentation in one op: a random affine warp per image, applied to the batch at once.

Keras' RandomRotation + RandomZoom + RandomTranslation resample each image three times, about 12%
of a dr-cnn training step on a 2-core CPU; `RandomAffine` composes the same moves (plus an optional
shear and a zoom per axis) into one matrix per image and resamples once, about 3%. It acts only
while training, so a saved model predicts on the image as given and its LiteRT copy has no trace of
it. Registered with Keras (package "drs") so a saved `.keras` file loads with `safe_mode=True`.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="drs")
class RandomAffine(layers.Layer):
    """Random rotation (+-`rotation` degrees), zoom (+-`zoom`, per axis when `zoom_aspect`), shear
    (+-`shear` degrees) and shift (+-`shift` of the side), about the image centre, bilinear, zero
    fill. Channels-last input `(n, h, w, c)`; the identity unless `training=True`.

    `elastic` > 0 adds an elastic distortion (Simard et al. 2003, the augmentation behind the best
    MNIST CNNs): every pixel moves by a smooth random field, drawn as +-`elastic` pixels on an
    `elastic_grid` x `elastic_grid` lattice and interpolated bicubically. The warp and the field are
    then sampled in one pass (gathers), still one resampling per image."""

    def __init__(self, rotation: float = 10.0, zoom: float = 0.1, shift: float = 0.1, shear: float = 0.0,
                 zoom_aspect: bool = False, seed: int | None = None, elastic: float = 0.0,
                 elastic_grid: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.elastic = float(elastic)
        self.elastic_grid = int(elastic_grid)
        self.rotation = float(rotation)
        self.zoom = float(zoom)
        self.shift = float(shift)
        self.shear = float(shear)
        self.zoom_aspect = bool(zoom_aspect)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, n, limit: float):
        return keras.random.uniform((n,), -limit, limit, seed=self.seed_generator)

    def transforms(self, n, h: int, w: int):
        """`(n, 8)` projective transforms mapping each output pixel to where it is read from."""
        theta = self._uniform(n, self.rotation * math.pi / 180)
        t = ops.tan(self._uniform(n, self.shear * math.pi / 180))
        zx = 1.0 + self._uniform(n, self.zoom)  # > 1 enlarges the digit
        zy = 1.0 + self._uniform(n, self.zoom) if self.zoom_aspect else zx
        tx = self._uniform(n, self.shift) * w
        ty = self._uniform(n, self.shift) * h
        c, s = ops.cos(theta), ops.sin(theta)
        a00, a01 = c / zx, (c * t - s) / zy  # M = R(theta) @ Shear @ diag(1/zx, 1/zy)
        a10, a11 = s / zx, (s * t + c) / zy
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        b0 = cx - a00 * cx - a01 * cy - tx
        b1 = cy - a10 * cx - a11 * cy - ty
        zeros = ops.zeros_like(theta)
        return ops.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        n = ops.shape(inputs)[0]
        m = self.transforms(n, inputs.shape[1], inputs.shape[2])
        if self.elastic > 0:
            return self._sample_with_field(inputs, m)
        return ops.image.affine_transform(inputs, m, interpolation="bilinear", fill_mode="constant",
                                          fill_value=0, data_format="channels_last")

    def _sample_with_field(self, inputs, m):
        """The affine map `m` plus a smooth random displacement, sampled bilinearly in one pass."""
        n = ops.shape(inputs)[0]
        h, w = inputs.shape[1], inputs.shape[2]
        g = self.elastic_grid
        coarse = keras.random.uniform((n, g, g, 2), -self.elastic, self.elastic, seed=self.seed_generator)
        field = ops.image.resize(coarse, (h, w), interpolation="bicubic")  # (n, h, w, 2): dy, dx
        ys, xs = ops.meshgrid(ops.arange(h, dtype="float32"), ops.arange(w, dtype="float32"), indexing="ij")
        xs, ys = xs[None], ys[None]

        def entry(i):
            return ops.reshape(m[:, i], (-1, 1, 1))

        src_x = entry(0) * xs + entry(1) * ys + entry(2) + field[..., 1]
        src_y = entry(3) * xs + entry(4) * ys + entry(5) + field[..., 0]
        return bilinear_sample(inputs, src_y, src_x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(rotation=self.rotation, zoom=self.zoom, shift=self.shift, shear=self.shear,
                      zoom_aspect=self.zoom_aspect, seed=self.seed, elastic=self.elastic,
                      elastic_grid=self.elastic_grid)
        return config


def bilinear_sample(images, src_y, src_x):
    """`images` `(n, h, w, c)` read at `(src_y, src_x)` `(n, h, w)`: bilinear, zero outside. By flat
    gathers, so it works for a batch of unknown size (Keras' `map_coordinates` needs it static)."""
    n = ops.shape(images)[0]
    h, w, c = images.shape[1], images.shape[2], images.shape[3]
    flat = ops.reshape(images, (-1,))
    base = ops.reshape(ops.arange(n, dtype="int32") * (h * w * c), (-1, 1, 1, 1))
    chan = ops.reshape(ops.arange(c, dtype="int32"), (1, 1, 1, -1))
    y0, x0 = ops.floor(src_y), ops.floor(src_x)
    out = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            yc, xc = y0 + dy, x0 + dx
            weight = (1 - ops.abs(src_y - yc)) * (1 - ops.abs(src_x - xc))
            inside = (yc >= 0) & (yc <= h - 1) & (xc >= 0) & (xc <= w - 1)
            yi = ops.cast(ops.clip(yc, 0, h - 1), "int32")
            xi = ops.cast(ops.clip(xc, 0, w - 1), "int32")
            index = base + ops.expand_dims((yi * w + xi) * c, -1) + chan
            value = ops.take(flat, index)
            out = out + value * ops.expand_dims(ops.where(inside, weight, 0.0), -1)
    return out

