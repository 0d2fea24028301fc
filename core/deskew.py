"""Deskewing inside the model: each digit's slant undone before the convolutions see it.

A handwritten digit's slant is mostly the writer's, not the digit's. The classic MNIST remedy
(LeCun et al. 1998 list deskewed inputs; Simard et al. 2003) measures it from the image moments and
shears it away: a row `r` of the output reads the input shifted sideways by `alpha * (r - centre)`,
where `alpha = cov(row, col) / var(row)` of the ink, and the digit is centred on its centre of mass.
As a layer of the model it acts in training and prediction alike, so Draw, Submit and the LiteRT
copy deskew the same way without any code of theirs (it is made of gathers, which LiteRT has).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from core.augment import bilinear_sample

MAX_SLANT = 1.0  # |alpha| beyond this is no handwriting (a stroke along a row); clipped


def moments(images):
    """Centre of mass `(n,)` row and column and the slant `alpha` `(n,)` of images `(n, h, w, 1)`
    (ink >= 0). A blank image: the image centre and no slant."""
    h, w = images.shape[1], images.shape[2]
    ink = images[..., 0]
    rows = ops.reshape(ops.arange(h, dtype="float32"), (1, h, 1))
    cols = ops.reshape(ops.arange(w, dtype="float32"), (1, 1, w))
    mass = ops.sum(ink, axis=(1, 2))
    blank = mass < 1e-3
    safe = ops.where(blank, 1.0, mass)
    mean_r = ops.sum(ink * rows, axis=(1, 2)) / safe
    mean_c = ops.sum(ink * cols, axis=(1, 2)) / safe
    dr = rows - ops.reshape(mean_r, (-1, 1, 1))
    dc = cols - ops.reshape(mean_c, (-1, 1, 1))
    var_r = ops.sum(ink * dr * dr, axis=(1, 2)) / safe
    cov = ops.sum(ink * dr * dc, axis=(1, 2)) / safe
    alpha = ops.clip(cov / ops.maximum(var_r, 1e-3), -MAX_SLANT, MAX_SLANT)
    centre_r, centre_c = (h - 1) / 2.0, (w - 1) / 2.0
    return (ops.where(blank, centre_r, mean_r), ops.where(blank, centre_c, mean_c),
            ops.where(blank, 0.0, alpha))


@keras.saving.register_keras_serializable(package="drs")
class Deskew(layers.Layer):
    """Images `(n, h, w, 1)` -> the same, each sheared upright about its centre of mass and moved to
    the image centre (bilinear, zero outside). No weights; the same in training and prediction."""

    def call(self, inputs):
        h, w = inputs.shape[1], inputs.shape[2]
        mean_r, mean_c, alpha = moments(inputs)
        rows = ops.reshape(ops.arange(h, dtype="float32"), (1, h, 1)) - (h - 1) / 2.0
        cols = ops.reshape(ops.arange(w, dtype="float32"), (1, 1, w)) - (w - 1) / 2.0
        src_r = rows + ops.reshape(mean_r, (-1, 1, 1)) + 0.0 * cols  # (n, h, w), as src_c
        src_c = cols + ops.reshape(alpha, (-1, 1, 1)) * rows + ops.reshape(mean_c, (-1, 1, 1))
        return bilinear_sample(inputs, src_r, src_c)

    def compute_output_shape(self, input_shape):
        return input_shape
