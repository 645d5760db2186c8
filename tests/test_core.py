"""Dense and Masking: the checklist, the documented differences from Keras, bad input types.

Keras equivalence over every argument value and the error messages are registry data:
`conformance/cases/core.py`, run by `tests/test_conformance.py`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

from conformance.keras_reference import keras_call, keras_twin
from conformance.testing import check_layer, randomize_weights
from xlayers.tolerance import assert_close
from xlayers import Dense, Masking
from xlayers.errors import ArgumentTypeError, InputDtypeError, InputShapeError


def test_dense_checklist():
    check_layer(Dense(5, activation="tanh"), (3, 4), {"kernel": (4, 5), "bias": (5,)})


def test_dense_checklist_lora():
    layer = Dense(5, lora_rank=2)
    check_layer(layer, (3, 4), {"kernel": (4, 5), "bias": (5,), "lora_kernel_a": (4, 2), "lora_kernel_b": (2, 5)})
    assert not layer.kernel.requires_grad and [w.shape for w in layer.non_trainable_weights] == [(4, 5)]


def _sparsemax_reference(z: np.ndarray) -> np.ndarray:
    """Martins & Astudillo (2016), Algorithm 1, along the last axis, in float64."""
    z = z.astype(np.float64)
    ordered = -np.sort(-z, axis=-1)
    cumsum = np.cumsum(ordered, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    support = (1 + k * ordered) > cumsum
    size = support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumsum, size - 1, axis=-1) - 1) / size
    return np.maximum(z - tau, 0.0)


def test_sparsemax_follows_the_paper_where_keras_differs():
    """The registry's `dense/act=sparsemax` records Keras's deviation; this is the correct value."""
    layer = Dense(6, activation="sparsemax")
    x = np.random.randn(3, 5).astype(np.float32) * 2
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    pre_activation = (torch.from_numpy(x) @ layer.kernel + layer.bias).detach().numpy()
    expected = _sparsemax_reference(pre_activation)
    assert ((expected > 0).sum(-1) > 1).any(), "every support has size 1, where Keras agrees: pick other inputs"
    out = layer(torch.from_numpy(x)).detach()
    assert_close(out, expected)
    torch.testing.assert_close(out.sum(-1), torch.ones(3))
    theirs = keras_call(keras_twin(layer), x)[0]
    assert not np.allclose(theirs, expected, atol=1e-3), "Keras fixed sparsemax (keras#23425): compare with Keras"


def test_dense_lora_alpha_scales_the_update():
    """Keras 3.15's Dense drops a constructor `lora_alpha` at build (it calls `enable_lora(rank)`,
    so the scale is 1); Conv2D keeps it. xlayers honours the documented `lora_alpha / lora_rank`."""
    layer = Dense(4, lora_rank=2, lora_alpha=3.0)
    x = np.random.randn(3, 5).astype(np.float32)
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    kernel, bias, a, b = (w.detach().numpy().astype(np.float64) for w in layer.weights)
    expected = x @ (kernel + 1.5 * a @ b) + bias
    assert_close(layer(torch.from_numpy(x)).detach(), expected)
    assert not np.allclose(keras_call(keras_twin(layer), x)[0], expected, atol=1e-3), "Keras fixed it: compare with Keras"


def test_masking_emits_mask():
    x = np.random.randn(3, 5, 4).astype(np.float32)
    x[0, 3:] = 0.0
    x[2, 1] = 0.0
    x[1, 2, :3] = 0.0  # a step with some features at the mask value is kept: a step is masked only if all are
    layer = Masking(0.0)
    out = layer(torch.from_numpy(x))
    mask = layer.compute_mask(torch.from_numpy(x))
    expected = [[True] * 5, [True] * 5, [True, False, True, True, True]]
    expected[0][3:] = [False, False]
    assert mask.tolist() == expected
    twin = keras.layers.Masking(0.0)
    assert mask.tolist() == np.asarray(twin.compute_mask(x)).tolist()
    np.testing.assert_array_equal(out.numpy(), np.asarray(twin(x)))


def test_threshold_is_refused_by_name_as_in_keras():
    layer = Dense(6, activation="threshold")  # Keras's threshold needs `threshold` and `default_value`
    pattern = (
        r"^`Dense` layer 'dense': the `threshold` activation needs `threshold` and `default_value` "
        r"\(required, as in Keras; .*\)\. Received: threshold=None, default_value=None\.$"
    )
    with pytest.raises(ArgumentTypeError, match=pattern):
        layer(torch.randn(2, 3))
    with pytest.raises(TypeError, match=r"threshold\(\) missing 2 required positional arguments"):
        keras.layers.Dense(6, activation="threshold")(np.zeros((2, 3), np.float32))


def test_dense_bad_input_types():
    layer = Dense(3)
    layer(torch.randn(2, 4))
    message = r"^`Dense` layer 'dense': expected a torch tensor or numpy array\. Received: type=str\.$"
    with pytest.raises(InputDtypeError, match=message):
        layer("abc")
    message = r"^`Dense` layer 'dense_1': expected an input of rank >= 2\. Received: input shape=\(4,\)\.$"
    with pytest.raises(InputShapeError, match=message):
        Dense(3)(torch.randn(4))  # also before the first build
