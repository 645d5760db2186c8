"""Write the Keras 2 (tf_keras 2.21) model files the tests port, with the inputs and tf_keras's
own outputs beside each (the reference: computed by tf_keras here, never by xlayers).

Needs tf_keras, which the project does not install: `pip install --no-deps tf_keras==2.21.0`
(it reuses TensorFlow 2.21). The files are small and committed under tests/data/keras2/, so the
tests need neither TensorFlow nor tf_keras.

Usage: python tools/make_keras2_files.py [--out tests/data/keras2]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _randomize(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.standard_normal(tuple(variable.shape)).astype(variable.dtype.as_numpy_dtype) * 0.5
        variable.assign(np.abs(value) + 0.5 if "variance" in variable.name else value)


def text_model(k2):
    """Embedding (mask_zero) -> LSTM -> GRU, a nested Sequential called on the result, and ops."""
    ids = k2.Input((7,), dtype="int32", name="ids")
    h = k2.layers.Embedding(11, 4, mask_zero=True, name="emb")(ids)
    h = k2.layers.LSTM(5, return_sequences=True, name="lstm")(h)
    h = k2.layers.GRU(6, name="gru")(h)
    inner = k2.Sequential([k2.layers.Dense(4, activation="tanh", name="in_d"), k2.layers.BatchNormalization(name="in_bn")],
                          name="inner_seq")
    y = inner(h)
    z = y * 0.5 + h[:, :4]
    out = k2.layers.Dense(3, activation="softmax", name="head")(k2.layers.Concatenate(name="cat")([z, y]))
    inputs = np.random.default_rng(1).integers(1, 11, (3, 7)).astype(np.int32)
    inputs[0, 5:] = 0
    inputs[1, 2:] = 0
    return k2.Model(ids, out, name="text"), [inputs]


def vision_model(k2):
    """Two inputs, a shared Conv2D, a stride-2 'same' convolution, BatchNormalization with a list
    axis, pooling, a DepthwiseConv2D (Keras 2 writes `groups`) and two outputs."""
    a = k2.Input((9, 11, 3), name="a")
    b = k2.Input((9, 11, 3), name="b")
    shared = k2.layers.Conv2D(4, 3, padding="same", name="shared")
    x = k2.layers.Add(name="add")([shared(a), shared(b)])
    x = k2.layers.Conv2D(6, 3, strides=2, padding="same", name="down")(x)
    x = k2.layers.BatchNormalization(axis=[3], name="bn")(x)
    x = k2.layers.DepthwiseConv2D(3, padding="same", name="dw")(k2.layers.ReLU(6.0, name="relu6")(x))
    pooled = k2.layers.GlobalAveragePooling2D(name="gap")(x)
    rng = np.random.default_rng(2)
    model = k2.Model([a, b], [k2.layers.Dense(2, name="o1")(pooled), k2.layers.MaxPooling2D(name="pool")(x)], name="vision")
    return model, [rng.standard_normal((2, 9, 11, 3)).astype(np.float32) for _ in range(2)]


def sequential_model(k2):
    model = k2.Sequential([k2.layers.Dense(5, activation="relu", input_shape=(4,), name="d1"),
                           k2.layers.Dropout(0.3, name="drop"), k2.layers.Dense(2, name="d2")], name="seq")
    return model, [np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)]


MODELS = {"text": text_model, "vision": vision_model, "sequential": sequential_model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data" / "keras2"))
    args = parser.parse_args()
    import tf_keras as k2

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed, (name, build) in enumerate(MODELS.items()):
        model, inputs = build(k2)
        _randomize(model, seed)
        model.save(out / f"{name}.h5")
        outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        np.savez(out / f"{name}.npz", **{f"input{i}": x for i, x in enumerate(inputs)},
                 **{f"output{i}": np.asarray(y) for i, y in enumerate(outputs)})
        print(f"wrote {out / name}.h5 ({(out / f'{name}.h5').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
