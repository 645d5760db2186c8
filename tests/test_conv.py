"""Conv2D: the checklist and no layout copy for channels-last inputs.

Keras equivalence (padding x strides x dilation x groups x data_format x odd/even sizes) and
the error messages are registry data: `conformance/cases/conv.py`."""

import pytest
import torch

from conformance.testing import check_layer
from xlayers import Conv2D


def test_conv2d_checklist_same_asymmetric():
    layer = Conv2D(6, 3, strides=2, padding="same")
    check_layer(layer, (2, 8, 9, 4), {"kernel": (3, 3, 4, 6), "bias": (6,)})


def test_conv2d_checklist_channels_first_groups():
    layer = Conv2D(6, (2, 3), padding="same", data_format="channels_first", groups=2, use_bias=False)
    check_layer(layer, (2, 4, 7, 6), {"kernel": (2, 3, 2, 6)})


@pytest.mark.parametrize("padding, strides", [("valid", 1), ("same", 1), ("same", 2)])
def test_channels_last_input_reaches_conv_without_layout_copy(padding, strides):
    """The NHWC input goes to aten::convolution as a channels_last view: no copy of input size."""
    layer = Conv2D(8, 3, padding=padding, strides=strides)
    x = torch.randn(2, 16, 16, 8)
    layer(x)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        out = layer(x)
    copies = [e for e in prof.events() if e.name in ("aten::copy_", "aten::contiguous", "aten::clone", "aten::constant_pad_nd")]
    big = [e for e in copies if any(list(s) == list(x.shape) or list(s) == [2, 8, 16, 16] for s in e.input_shapes if s)]
    assert not big, [(e.name, e.input_shapes) for e in big]
    assert any(e.name == "aten::convolution" for e in prof.events())
    assert out.is_contiguous()  # NHWC out, no copy back either
