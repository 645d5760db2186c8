"""Dense and Masking: the checklist, Keras equivalence over a spread of arguments, bad input."""

import inspect

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras_call, keras_twin
from conformance.testing import check_layer, randomize_weights
from conformance.tolerance import assert_close
from xlayers import Dense, Masking, activations
from xlayers.errors import ArgumentError, ArgumentTypeError, InputDtypeError, InputShapeError, UnknownNameError


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


# Deliberate differences from Keras 3.15, each checked against the correct definition instead.
KERAS_BUGS = {
    "sparsemax": "Keras <= 3.15 sums every in-support cumulative sum for the threshold, so its output does "
    "not sum to 1 (keras-team/keras#23425, fixed upstream by #23469); xlayers follows the paper.",
}


@pytest.mark.parametrize("activation", activations.names())
def test_dense_activation_matches_keras(activation):
    layer = Dense(6, activation=activation)
    x = np.random.randn(3, 5).astype(np.float32) * 2
    required = [p for p in inspect.signature(layer.activation).parameters.values() if p.default is p.empty]
    if len(required) > 1:  # e.g. `threshold`: unusable by name in Keras too; both must refuse
        with pytest.raises(TypeError):
            layer(torch.from_numpy(x))
        return
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    expected = keras_call(keras_twin(layer), x)[0]
    if activation in KERAS_BUGS:
        layer.activation = activations.get("linear")
        pre_activation = keras_call(keras_twin(layer), x)[0]
        reference = _sparsemax_reference(pre_activation)
        assert not np.allclose(expected, reference, atol=1e-3), "Keras fixed it: drop the exception"
        expected = reference
        layer.activation = activations.get(activation)
    assert_close(layer(torch.from_numpy(x)).detach(), expected, what=activation)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(3, 5), (2, 7, 5), (2, 3, 4, 5)], ids=["rank2", "rank3", "rank4"])
@pytest.mark.parametrize("lora_rank", [None, 2])
def test_dense_matches_keras(use_bias, shape, lora_rank):
    layer = Dense(7, use_bias=use_bias, lora_rank=lora_rank)
    x = np.random.randn(*shape).astype(np.float32)
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    assert_close(layer(torch.from_numpy(x)).detach(), keras_call(keras_twin(layer), x)[0])


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


def test_dense_float64_matches_keras():
    layer = Dense(4, activation="sigmoid", dtype="float64")
    x = np.random.randn(3, 6)
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    assert layer.kernel.dtype == torch.float64
    assert_close(layer(torch.from_numpy(x)).detach(), keras_call(keras_twin(layer), x)[0], dtype="float64")


def test_masking_matches_keras_and_emits_mask():
    x = np.random.randn(3, 5, 4).astype(np.float32)
    x[0, 3:] = 0.0
    x[2, 1] = 0.0
    layer = Masking(0.0)
    out = layer(torch.from_numpy(x))
    assert_close(out, keras_call(keras_twin(layer), x)[0])
    mask = layer.compute_mask(torch.from_numpy(x))
    assert mask.tolist() == np.any(x != 0.0, axis=-1).tolist()


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: Dense(0), ArgumentError, r"`Dense`: `units` must be a positive integer\. Received: units=0"),
        (lambda: Dense(3.5), ArgumentError, r"Received: units=3\.5"),
        (lambda: Dense(3, activation="nope"), UnknownNameError, r"must be one of .*'relu'.*Received: activation='nope'"),
        (lambda: Dense(3, kernel_initializer="nope"), UnknownNameError, r"glorot_uniform.*Received: .*'nope'"),
        (lambda: Dense(3, bogus=1), ArgumentTypeError, r"`Dense`: unrecognized keyword arguments \['bogus'\]"),
        (lambda: Dense(3, lora_rank=2, kernel_constraint="non_neg"), ArgumentError, r"lora_rank"),
    ],
)
def test_dense_bad_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_dense_bad_inputs():
    layer = Dense(3)
    layer(torch.randn(2, 4))
    with pytest.raises(InputShapeError, match=r"`Dense` layer 'dense': expected axis -1 of the input to have size 4.*Received: input shape=\(2, 5\)"):
        layer(torch.randn(2, 5))
    with pytest.raises(InputShapeError, match=r"expected an input of rank >= 2\. Received: input shape=\(4,\)"):
        layer(torch.randn(4))
    with pytest.raises(InputDtypeError, match=r"expected a floating-point input.*Received: dtype=int64"):
        layer(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(InputDtypeError, match=r"expected a torch tensor or numpy array\. Received: type=str"):
        layer("abc")
    with pytest.raises(InputShapeError, match=r"rank >= 2"):
        Dense(3)(torch.randn(4))  # also before the first build
