"""The main job until the conformance harness lands: the seed's three examples, run with
xlayers and checked against real Keras (TF backend) with the same weights."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import torch

import xlayers
from xlayers.tolerance import compare

from .keras_reference import keras_call, keras_twin

EXAMPLES: list[tuple[str, Callable[[], xlayers.Layer], tuple[int, ...]]] = [
    ("Dense", lambda: xlayers.Dense(units=128, activation="relu"), (32, 784)),
    ("Conv2D", lambda: xlayers.Conv2D(filters=32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 3)), (16, 28, 28, 3)),
    ("LSTM", lambda: xlayers.LSTM(units=64, return_sequences=True), (8, 20, 10)),
]


def run(print_fn: Callable[[str], object] = print) -> bool:
    """Run the examples; print the seed's lines and the comparison; True if all agree."""
    ok = True
    for title, make, shape in EXAMPLES:
        start = time.perf_counter()
        layer = make()
        inputs = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        outputs = layer(torch.from_numpy(inputs)).detach()
        print_fn(f"== {title} ==")
        print_fn(f"Input shape: {inputs.shape}")
        print_fn(f"Output shape: {tuple(outputs.shape)}")
        if isinstance(layer, xlayers.LSTM):
            for kind in ("kernel", "bias"):
                for gate in "ifco":
                    label = "weights shape (W_" if kind == "kernel" else "biases shape (b_"
                    print_fn(f"Layer {label}{gate}): {tuple(getattr(layer, f'{kind}_{gate}').shape)}")
        else:
            print_fn(f"Layer weights shape: {tuple(layer.kernel.shape)}")
            print_fn(f"Layer biases shape: {tuple(layer.bias.shape)}")
        twin = keras_twin(layer)
        result = compare(outputs, keras_call(twin, inputs)[0], "float32")
        same_weights = all(tuple(w.shape) == tuple(k.shape) for w, k in zip(layer.weights, twin.weights))
        ok &= result.passed and same_weights
        verdict = "agrees" if result.passed and same_weights else "DIFFERS"
        print_fn(
            f"Keras {verdict}: max abs error {result.max_abs_error:.2e} (bound rtol {result.rtol:.1e}, "
            f"atol {result.atol:.1e} x {result.scale:.3g}); weight shapes "
            f"{'equal' if same_weights else 'differ'}; {layer.last_path + ' path; ' if isinstance(layer, xlayers.LSTM) else ''}"
            f"{time.perf_counter() - start:.2f}s"
        )
    print_fn("All three seed examples agree with Keras." if ok else "Some seed examples differ from Keras.")
    return ok


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
