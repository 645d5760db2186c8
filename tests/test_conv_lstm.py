"""ConvLSTM1D/2D/3D: the layer checklist, the math against a plain per-gate definition (four
convolutions per step, TF padding written out with ``F.pad``), the one input convolution for all
time steps, channels_first as the transposed channels_last, masks, states and dropout masks.
Keras itself is the conformance cases' part (`conformance/cases/conv_lstm.py`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conformance.testing import check_layer, randomize_weights
from xlayers import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from xlayers.errors import ArgumentError
from xlayers.padding import same_padding

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _conv_tf(x, kernel, strides, padding, dilation):
    """TF's convolution of a channels-first ``x`` with a Keras kernel ``(*k, in, out)``."""
    rank = x.dim() - 2
    if padding == "same":
        pads = same_padding(tuple(x.shape[2:]), kernel.shape[:rank], strides, dilation)
        x = F.pad(x, [p for pair in reversed(pads) for p in pair])  # the odd extra zero at the end
    weight = kernel.permute(rank + 1, rank, *range(rank))
    return _CONV[rank](x, weight, None, strides, 0, dilation)


def _reference(layer, x, mask=None, h=None, c=None):
    """Keras's ConvLSTMCell, step by step, four gates, four convolutions each (channels last)."""
    rank = layer.rank
    x = x.movedim(-1, 2)  # (B, T, C, *S)
    steps = range(x.shape[1] - 1, -1, -1) if layer.go_backwards else range(x.shape[1])
    outputs, previous = [], None
    for t in steps:
        z = []
        for g in "ifco":
            zg = _conv_tf(x[:, t], getattr(layer, f"kernel_{g}"), layer.strides, layer.padding, layer.dilation_rate)
            if layer.use_bias:
                zg = zg + getattr(layer, f"bias_{g}").reshape(-1, *[1] * rank)
            if h is None:
                h = c = torch.zeros_like(zg)
            z.append(zg + _conv_tf(h, getattr(layer, f"recurrent_kernel_{g}"), (1,) * rank, "same", (1,) * rank))
        i, f, o = (layer.recurrent_activation(v) for v in (z[0], z[1], z[3]))
        c_new = f * c + i * layer.activation(z[2])
        h_new = o * layer.activation(c_new)
        if mask is None:
            h, c, out = h_new, c_new, h_new
        else:
            k = mask[:, t].reshape(-1, *[1] * (rank + 1))
            out = torch.where(k, h_new, torch.zeros_like(h_new) if previous is None else previous)
            h, c, previous = torch.where(k, h_new, h), torch.where(k, c_new, c), out
        outputs.append(out)
    return torch.stack(outputs, 1).movedim(2, -1), h.movedim(1, -1), c.movedim(1, -1)


CASES = [
    (ConvLSTM1D, {"filters": 3, "kernel_size": 4, "padding": "same", "strides": 2}, (2, 5, 11, 4)),
    (ConvLSTM2D, {"filters": 5, "kernel_size": (3, 2), "padding": "same", "strides": (2, 1)}, (2, 4, 7, 9, 3)),
    (ConvLSTM2D, {"filters": 5, "kernel_size": (3, 2), "dilation_rate": (2, 1), "go_backwards": True,
                  "activation": "relu", "use_bias": False}, (3, 4, 7, 6, 2)),
    (ConvLSTM3D, {"filters": 2, "kernel_size": (3, 2, 2), "padding": "same"}, (2, 3, 5, 4, 3, 1)),
]


@pytest.mark.parametrize("cls, kwargs, shape", CASES, ids=lambda v: getattr(v, "__name__", None))
def test_matches_the_per_gate_definition(cls, kwargs, shape):
    layer = cls(**kwargs, return_sequences=True, return_state=True, dtype="float64")
    x = torch.randn(shape, dtype=torch.float64)
    layer(x)
    randomize_weights(layer, 1)
    mask = torch.ones(shape[:2], dtype=torch.bool)
    mask[0, 1] = False
    mask[-1, -1] = False
    for m in (None, mask):
        ours = layer(x, mask=m)
        with torch.no_grad():
            theirs = _reference(layer, x, m)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls, kwargs, shape", CASES[:2] + CASES[3:], ids=lambda v: getattr(v, "__name__", None))
def test_checklist(cls, kwargs, shape):
    rank = cls.rank
    k = kwargs["kernel_size"]
    k = (k,) * rank if isinstance(k, int) else k
    f, cin = kwargs["filters"], shape[-1]
    check_layer(cls(**kwargs, return_sequences=True), shape, {
        "kernel": (*k, cin, 4 * f), "recurrent_kernel": (*k, f, 4 * f), "bias": (4 * f,),
    })


def test_channels_first_is_the_transposed_channels_last():
    x = torch.randn(2, 4, 7, 9, 3)
    last = ConvLSTM2D(5, (3, 2), strides=2, padding="same", return_sequences=True, return_state=True)
    first = ConvLSTM2D(5, (3, 2), strides=2, padding="same", return_sequences=True, return_state=True,
                       data_format="channels_first")
    last(x)
    first(x.movedim(-1, 2))
    first.set_weights(last.get_weights())
    h0 = [torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)]
    ours = first(x.movedim(-1, 2), initial_state=[s.movedim(-1, 1) for s in h0])
    theirs = last(x, initial_state=h0)
    torch.testing.assert_close(ours[0], theirs[0].movedim(-1, 2))
    for a, b in zip(ours[1:], theirs[1:]):
        torch.testing.assert_close(a, b.movedim(-1, 1))
    assert first.compute_output_shape((None, 4, 3, 7, 9)) == [(None, 4, 5, 4, 5), (None, 5, 4, 5), (None, 5, 4, 5)]


def test_one_input_convolution_for_all_steps():
    """The input convolution runs once, time folded into the batch; then one recurrent conv per step."""
    layer = ConvLSTM2D(4, 3, padding="same", return_sequences=True)
    x = torch.randn(2, 6, 8, 7, 3)
    layer(x)
    with torch.profiler.profile() as profile:
        layer(x)
    convolutions = [e for e in profile.events() if e.name == "aten::convolution"]
    assert len(convolutions) == 1 + 6
    assert layer.last_path == "loop"


def test_stateful_carries_and_resets():
    layer = ConvLSTM1D(3, 3, padding="same", stateful=True)
    x = torch.randn(2, 4, 6, 2)
    first = layer(x)
    second = layer(x)
    assert not torch.allclose(first, second)
    layer.reset_state()
    torch.testing.assert_close(layer(x), first)


def test_dropout_masks_are_per_gate_seeded_and_training_only():
    layer = ConvLSTM2D(4, 3, padding="valid", strides=2, dropout=0.5, recurrent_dropout=0.3, seed=11)
    x = torch.randn(2, 3, 7, 9, 3)
    layer(x, training=True)
    drop, recurrent = layer.last_dropout_masks
    assert drop.shape == (4, 2, 7, 9, 3) and recurrent.shape == (4, 2, 3, 4, 4)
    assert not torch.equal(drop[0], drop[1])  # one mask per gate, as Keras's ConvLSTMCell
    assert set(drop.unique().tolist()) == {0.0, 2.0}
    again = ConvLSTM2D(4, 3, padding="valid", strides=2, dropout=0.5, recurrent_dropout=0.3, seed=11)
    again(x, training=False)  # builds; inference draws nothing
    again(x, training=True)
    torch.testing.assert_close(again.last_dropout_masks[0], drop)
    layer(x, training=False)
    assert layer.last_dropout_masks == (None, None)


def test_gate_views_are_live_and_config_round_trips():
    layer = ConvLSTM3D(2, (3, 2, 2), padding="same", data_format="channels_first", unit_forget_bias=True)
    layer(torch.randn(2, 3, 1, 5, 4, 3))
    assert torch.equal(layer.bias_f, torch.ones(2)) and torch.equal(layer.bias_c, torch.zeros(2))
    assert layer.kernel_o.data_ptr() == layer.kernel[..., 6:].data_ptr()
    assert tuple(layer.weight_view("kernel").shape) == (8, 1, 3, 2, 2)
    clone = ConvLSTM3D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_unknown_spatial_size_is_refused_at_build():
    with pytest.raises(ArgumentError, match=r"^`ConvLSTM2D` layer '.*': the channel and spatial axes of the input must be known"):
        ConvLSTM2D(2, 3, input_shape=(None, None, 5, 3))
