"""Reproduces a TensorFlow 2.21 / Keras 3.15 bug: on CPU, a grouped Conv1D runs through XLA
(`keras/src/backend/tensorflow/nn.py`, `_conv_xla`), and in float64 that corrupts the heap:
after a few dozen calls glibc aborts the process ("free(): invalid next size", "corrupted size
vs. prev_size"). float32 and grouped Conv2D survive the same loop. Uses Keras alone.

    python tools/keras_grouped_conv1d_f64.py float64   # aborts (exit code 134) on the machines we tried
    python tools/keras_grouped_conv1d_f64.py float32   # prints "survived"
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

dtype = sys.argv[1] if len(sys.argv) > 1 else "float64"
for _ in range(4):
    for kernel in (3, 4):
        for strides, dilation in ((1, 1), (2, 1), (1, 3)):
            for padding in ("valid", "same", "causal"):
                layer = keras.layers.Conv1D(6, kernel, strides=strides, dilation_rate=dilation, padding=padding, groups=2, dtype=dtype)
                x = tf.constant(np.random.randn(3, 11, 4).astype(dtype))
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(layer(x) ** 2)
                tape.gradient(loss, [x, *layer.trainable_weights])
print(dtype, "survived")
