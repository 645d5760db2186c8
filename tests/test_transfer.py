"""Weight transfer by name through LAYOUT: both directions, bit-exact, clear errors."""

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras, keras_twin_from_config
from conformance.testing import randomize_weights
from xlayers.tolerance import assert_close
from conformance.transfer import from_keras, to_keras
from xlayers import LSTM, Conv2D, Dense
from xlayers.errors import WeightNameError, WeightShapeError


@pytest.mark.parametrize(
    "layer, shape",
    [(Dense(3, lora_rank=2), (2, 5)), (Conv2D(4, (2, 3), groups=2), (2, 6, 7, 4)), (LSTM(3, use_bias=False), (2, 4, 5))],
    ids=["dense-lora", "conv2d-groups", "lstm-nobias"],
)
def test_round_trip_is_bit_exact(layer, shape):
    layer(torch.randn(*shape))
    randomize_weights(layer)
    before = [w.detach().clone() for w in layer.weights]
    twin = keras_twin_from_config(layer)
    to_keras(layer, twin)
    with torch.no_grad():
        for w in layer.weights:
            w.zero_()
    from_keras(layer, twin)
    assert all(torch.equal(a, b) for a, b in zip(before, layer.weights))


def test_shape_mismatch_names_layer_weight_and_both_shapes():
    layer = LSTM(3)
    layer(torch.randn(2, 4, 5))
    other = keras().layers.LSTM(4)
    other.build((None, 4, 5))
    kernel_before = layer.kernel.detach().clone()
    with pytest.raises(WeightShapeError, match=r"`LSTM` layer 'lstm': weight `cell/kernel` must have shape \(in=5, 4\*units=12\) in keras layout\. Received: shape=\(5, 16\)"):
        from_keras(layer, other)
    assert torch.equal(layer.kernel, kernel_before)  # nothing was written
    with pytest.raises(WeightShapeError, match=r"weight `cell/kernel` must have shape \(in=5, 4\*units=12\)"):
        to_keras(layer, other)


def test_name_mismatch_is_reported():
    layer = Dense(3, use_bias=False)
    layer(torch.randn(2, 5))
    other = keras().layers.Dense(3)
    other.build((None, 5))
    with pytest.raises(WeightNameError, match=r"missing=\[\], unexpected=\['bias'\]"):
        from_keras(layer, other)


def test_keras_to_xlayers_matches_outputs():
    k = keras()
    reference = k.layers.Conv2D(5, 3, strides=2, padding="same")
    x = np.random.randn(2, 9, 8, 3).astype(np.float32)
    expected = np.asarray(reference(x))
    layer = Conv2D.from_config(reference.get_config())
    layer(torch.from_numpy(x))
    from_keras(layer, reference)
    assert_close(layer(torch.from_numpy(x)).detach(), expected)
