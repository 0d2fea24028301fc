"""Prediction at full CPU speed: a Keras model folded into an inference-only graph, traced once.

A trained model still carries its training graph: each batch norm is a separate pass of
multiply/add over every feature map, and the augmentation and dropout layers sit in the graph
doing nothing. Folding each batch norm into the convolution (or dense layer) before it, and leaving
the training-only layers out, gives the same probabilities (to float32 rounding) about 1.35x faster
for the default CNN (benchmarks/bench_evaluate.py); tracing it once as a `tf.function` removes
Keras' per-call set-up, which dominates for a single drawn digit.

The folded graph is checked against the original on a fixed batch before it is used; a model the
folder does not understand (not a simple chain, say) is used as it is. The folded weights are a
snapshot: the studio never changes a loaded model's weights (fine-tuning works on a clone and saves a
new model), and a model changed in place would need a new `inference_function`. Every prediction in the
studio (Draw, Evaluate, Submit, the command line) goes through `predict`.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

BATCH = 1024  # fastest of 64/256/1024 for the default CNN on 2 CPU cores (bench_evaluate.py)
TOLERANCE = 1e-4  # largest probability difference accepted between folded and original graphs

_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _training_only(layer: Any) -> bool:
    """Layers that are the identity at inference: dropout, noise and random augmentation."""
    name = type(layer).__name__
    return name.startswith("Random") or name in {"Dropout", "SpatialDropout2D", "GaussianNoise",
                                                 "GaussianDropout", "AlphaDropout"}


def _foldable(layer: Any, following: Any) -> bool:
    from keras import layers

    if not isinstance(following, layers.BatchNormalization):
        return False
    if following.axis not in (-1, len(following.input.shape) - 1):  # must normalise the channels
        return False
    if isinstance(layer, layers.Conv2D):
        return layer.data_format == "channels_last" and layer.activation.__name__ == "linear"
    if isinstance(layer, layers.Dense):
        return layer.activation.__name__ == "linear"
    return False


def _folded_layer(layer: Any, bn: Any, h: Any) -> Any:
    """`bn(layer(h))` as one layer with a bias: w' = w * s, b' = (b - mean) * s + beta."""
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    s = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else 0.0
    config = {**layer.get_config(), "use_bias": True, "name": f"{layer.name}_folded"}
    config.pop("dtype", None)  # build in float32 whatever the policy was at training
    fused = type(layer).from_config(config)
    out = fused(h)
    fused.set_weights([kernel * s, (bias - bn.moving_mean.numpy()) * s + beta])
    return out


def fold(model: Any) -> Any:
    """An inference-only copy of a chain-shaped Keras model: batch norms folded, training-only
    layers left out. A model with several inputs or outputs raises ValueError; one with branches
    fails here or gives other outputs, which `inference_function` checks."""
    import keras

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("only single-input, single-output models are folded")
    inp = keras.Input(model.inputs[0].shape[1:], dtype="float32")
    layers_ = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    h, i = inp, 0
    while i < len(layers_):
        layer = layers_[i]
        nxt = layers_[i + 1] if i + 1 < len(layers_) else None
        if _training_only(layer):
            i += 1
        elif nxt is not None and _foldable(layer, nxt):
            h = _folded_layer(layer, nxt, h)
            i += 2
        else:
            h = layer(h)
            i += 1
    return keras.Model(inp, h, name=f"{model.name}_inference")


def _same_outputs(original: Any, candidate: Any) -> bool:
    rng = np.random.default_rng(0)
    probe = np.concatenate([np.zeros((1, 28, 28)), rng.uniform(0, 255, (7, 28, 28))]).astype(np.float32)
    probe = probe.reshape((len(probe), *original.inputs[0].shape[1:]))
    a = np.asarray(original(probe, training=False))
    b = np.asarray(candidate(probe, training=False))
    return a.shape == b.shape and bool(np.max(np.abs(a - b)) <= TOLERANCE)


def inference_function(model: Any):
    """The traced inference graph of `model` (folded when that is exact), built once per model."""
    with _lock:
        fn = _functions.get(model)
        if fn is None:
            import tensorflow as tf

            try:
                graph = fold(model)
                if not _same_outputs(model, graph):
                    graph = model
            except Exception:  # noqa: BLE001 - any model the folder cannot handle runs unfolded
                graph = model
            # The cache must not keep `model` alive (it is the key): refer to it weakly.
            ref = weakref.ref(graph) if graph is model else (lambda: graph)
            spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)
            fn = tf.function(lambda x: ref()(x, training=False), input_signature=[spec])
            _functions[model] = fn
    return fn


def predict(model: Any, images: np.ndarray, *, batch_size: int = BATCH) -> np.ndarray:
    """Probabilities `(n, 10)` float32 of a Keras model for float32 images, `batch_size` at a time."""
    fn = inference_function(model)
    x = np.asarray(images, dtype=np.float32)
    if len(x) <= batch_size:
        return np.asarray(fn(x), dtype=np.float32)
    return np.concatenate([np.asarray(fn(x[i:i + batch_size]), dtype=np.float32)
                           for i in range(0, len(x), batch_size)])
