"""Batch normalization that trains in one fused TensorFlow op.

Keras 3 normalizes a training batch with separate ops (moments, then the affine formula, then
the moving-average updates), several passes over the feature map each forward and backward. On
this 2-core CPU that made batch norm cost as much as the convolutions around it: about 16 ms of a
dr-cnn step for the 28x28x32 map alone, against ~5 ms for TensorFlow's fused kernel (the one Keras
2 used by default). `FusedBatchNorm` is Keras' `BatchNormalization` with the same weights, config
and inference path; only its training step runs the fused kernel, which also updates the moving
statistics. It is a subclass, so code that looks for batch-norm layers (freezing them to fine-tune)
finds it, and the saved model and its LiteRT copy predict with Keras' own formula.
"""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="drs")
class FusedBatchNorm(layers.BatchNormalization):
    """`BatchNormalization` over the channels of an `(n, h, w, c)` map, trained by
    `FusedBatchNormV3`; any other use (inference, a frozen layer, a mask, another axis or dtype, no
    scale or centre, renorm) is Keras' own code."""

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta),
            mean=tf.convert_to_tensor(self.moving_mean), variance=tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon, is_training=True, exponential_avg_factor=1.0 - self.momentum)
        # With an averaging factor the op returns the moving statistics already updated.
        self.moving_mean.assign(mean)
        self.moving_variance.assign(variance)
        return outputs

    def _can_fuse(self, inputs, training, mask) -> bool:
        return bool(training and self.trainable and mask is None and self.center and self.scale
                    and not self.renorm and not self.synchronized and len(inputs.shape) == 4
                    and self.axis in (-1, 3) and inputs.dtype == "float32")
