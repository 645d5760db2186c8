"""Image layers: UpSampling 1D/2D/3D, Resizing, CenterCrop. Values against independent torch
references where TF's convention provably equals one (repeat, half-pixel bilinear, nearest-exact,
area on an exact 2x shrink = 2x2 average pooling), Keras's aspect-ratio arithmetic by hand,
shapes, config round trips and the ONNX graph. Keras itself is the reference in conformance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xlayers
from conformance.testing import check_layer
from xlayers import CenterCrop, Resizing, UpSampling1D, UpSampling2D, UpSampling3D
from xlayers.errors import ArgumentError, ArgumentTypeError
from xlayers.layers import image_ops
from xlayers.onnx import export


@pytest.mark.parametrize(
    "make, shape, out",
    [
        (lambda: UpSampling1D(3), (2, 5, 4), (2, 15, 4)),
        (lambda: UpSampling2D((2, 3)), (2, 5, 7, 3), (2, 10, 21, 3)),
        (lambda: UpSampling2D((2, 3), interpolation="lanczos3", data_format="channels_first"), (2, 3, 5, 7), (2, 3, 10, 21)),
        (lambda: UpSampling3D((1, 2, 3)), (2, 3, 4, 5, 2), (2, 3, 8, 15, 2)),
        (lambda: Resizing(5, 13, interpolation="bicubic"), (2, 7, 9, 3), (2, 5, 13, 3)),
        (lambda: Resizing(6, 5, pad_to_aspect_ratio=True, fill_value=1.0, data_format="channels_first"), (2, 3, 7, 15), (2, 3, 6, 5)),
        (lambda: Resizing(5, 6, crop_to_aspect_ratio=True, interpolation="area"), (2, 7, 15, 3), (2, 5, 6, 3)),
        (lambda: CenterCrop(4, 5), (2, 9, 12, 3), (2, 4, 5, 3)),
        (lambda: CenterCrop(7, 4), (2, 5, 11, 3), (2, 7, 4, 3)),
    ],
    ids=["up1d", "up2d", "up2d-lanczos-nchw", "up3d", "resize-bicubic", "resize-pad-nchw", "resize-crop-area", "crop", "crop-smaller"],
)
def test_checklist(make, shape, out):
    layer = make()
    assert tuple(check_layer(layer, shape, {}).shape) == out
    assert layer.compute_output_shape(shape) == out


def test_upsampling_repeats_like_repeat_interleave():
    x = torch.randn(2, 3, 4, 5, 2)
    expected = x.repeat_interleave(2, 1).repeat_interleave(1, 2).repeat_interleave(3, 3)
    assert torch.equal(UpSampling3D((2, 1, 3))(x), expected)
    first = UpSampling3D((2, 1, 3), data_format="channels_first")(x.permute(0, 4, 1, 2, 3))
    assert torch.equal(first, expected.permute(0, 4, 1, 2, 3))
    assert torch.equal(UpSampling1D(3)(x[:, :, 0, 0]), x[:, :, 0, 0].repeat_interleave(3, 1))
    assert torch.equal(UpSampling2D((3, 2))(x[:, 0]), x[:, 0].repeat_interleave(3, 1).repeat_interleave(2, 2))


@pytest.mark.parametrize("size", [(5, 13), (13, 4), (7, 9), (21, 3), (3, 31)])
def test_fast_path_equals_tf_weights(size):
    """Bilinear and nearest run torch's F.interpolate: the same samples as TF's weights in `image_ops`."""
    x = torch.randn(2, 7, 9, 3)
    wh, ww = (torch.from_numpy(image_ops.bilinear_weights(n, m)).float() for n, m in ((7, size[0]), (9, size[1])))
    expected = torch.einsum("oh,nhwc,pw->nopc", wh, x, ww)
    torch.testing.assert_close(Resizing(*size)(x), expected, rtol=1e-6, atol=1e-6)
    rows, cols = (torch.from_numpy(image_ops.nearest_index(n, m)) for n, m in ((7, size[0]), (9, size[1])))
    assert torch.equal(Resizing(*size, interpolation="nearest")(x), x[:, rows][:, :, cols])
    # and TF's nearest is not torch's legacy floor(o * in / out) rounding (the 'nearest' mode)
    legacy = F.interpolate(x.permute(0, 3, 1, 2), size=size, mode="nearest").permute(0, 2, 3, 1)
    assert not torch.equal(Resizing(*size, interpolation="nearest")(x), legacy) or size == (7, 9)


def test_area_on_an_exact_shrink_is_average_pooling():
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    area = Resizing(4, 6, interpolation="area", data_format="channels_first", dtype="float64")(x)
    torch.testing.assert_close(area, F.avg_pool2d(x, 2), rtol=1e-6, atol=1e-6)


def test_bicubic_is_tf_keys_half_not_torch():
    weights = image_ops.bicubic_weights(9, 13)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    ours = Resizing(13, 13, interpolation="bicubic", data_format="channels_first", dtype="float64")(x)
    torch_a075 = F.interpolate(x, size=(13, 13), mode="bicubic", align_corners=False)
    assert (ours - torch_a075).abs().max() > 1e-3
    # Keys a=-0.5 at fraction 1/2 (exact in TF's table): taps (-1/16, 9/16, 9/16, -1/16); the tap outside the
    # image is dropped and the other three renormalised (sum 17/16)
    half = image_ops._bicubic(4, 2, -0.5)  # 4 -> 2: sources at 0.5 and 2.5
    np.testing.assert_allclose(half[0], np.array([9 / 16, 9 / 16, -1 / 16, 0]) / (17 / 16), atol=1e-6)
    np.testing.assert_allclose(half[1], np.array([0, -1 / 16, 9 / 16, 9 / 16]) / (17 / 16), atol=1e-6)


def test_lanczos_same_size_is_identity_and_rows_sum_to_one():
    np.testing.assert_allclose(image_ops.resize_weights("lanczos5", 9, 9), np.eye(9), atol=1e-6)
    for name in ("lanczos3", "lanczos5", "bilinear", "bicubic"):
        for antialias in (False, True):
            np.testing.assert_allclose(image_ops.resize_weights(name, 17, 5, antialias).sum(axis=1), 1.0, atol=1e-6)
    # antialias widens the support when shrinking
    assert (image_ops.resize_weights("lanczos3", 17, 5, True) != 0).sum() > (image_ops.resize_weights("lanczos3", 17, 5) != 0).sum()


def test_aspect_ratio_arithmetic_is_keras():
    # Keras: crop_width = int(7 * 6 / 5) = 8, left = int((15 - 8) / 2) = 3
    assert image_ops.crop_box(7, 15, 5, 6) == (0, 7, 3, 8)
    assert image_ops.crop_box(15, 7, 6, 5) == (3, 8, 0, 7)
    # Keras: pad_height = int(15 * 6 / 5) = 18; (18 - 7) / 2 -> 5 rows on each side (17 rows, not 18)
    assert image_ops.pad_amount(7, 15, 6, 5) == (5, 0)
    # a 17x15 target pads a 7x15 input by 5 rows on each side, then resizes 17x15 -> 17x15 (identity)
    x = torch.randn(1, 7, 15, 1)
    y = Resizing(17, 15, pad_to_aspect_ratio=True, fill_value=2.5, interpolation="nearest")(x)
    assert torch.equal(y[:, 5:-5], x) and (y[:, :5] == 2.5).all() and (y[:, -5:] == 2.5).all()


def test_center_crop_slices_the_centre_and_casts():
    x = torch.arange(2 * 9 * 12 * 3, dtype=torch.int32).reshape(2, 9, 12, 3)
    y = CenterCrop(4, 5)(x)
    assert y.dtype == torch.float32 and torch.equal(y, x[:, 2:6, 3:8].float())


def test_unbatched_images_and_integer_dtypes():
    x = torch.randn(7, 9, 3)
    layer = Resizing(5, 13, interpolation="lanczos3")
    torch.testing.assert_close(layer(x), layer(x.unsqueeze(0))[0])
    assert layer.compute_output_shape((7, 9, 3)) == (5, 13, 3)
    images = torch.randint(0, 256, (2, 7, 9, 3), dtype=torch.uint8)
    out = Resizing(5, 13)(images)
    assert out.dtype == torch.uint8
    expected = Resizing(5, 13)(images.float()).round().clamp(0, 255)
    assert torch.equal(out.float(), expected)


def test_operators_are_cached_per_size():
    layer = Resizing(5, 13, interpolation="bicubic")
    layer(torch.randn(2, 7, 9, 3))
    cached = dict(layer._resampler.cache)
    layer(torch.randn(3, 7, 9, 3))
    assert layer._resampler.cache.keys() == cached.keys() and all(layer._resampler.cache[k] is v for k, v in cached.items())
    layer(torch.randn(1, 8, 9, 3))  # another size: one more row operator (dense and sparse), the same column one
    assert len(layer._resampler.cache) == len(cached) + 2


def test_config_round_trips_and_errors():
    layer = Resizing(5, 13, interpolation="LANCZOS5", crop_to_aspect_ratio=True, antialias=True, data_format="channels_first")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["interpolation"] == "lanczos5" and Resizing.from_config(config).get_config() == layer.get_config()
    assert UpSampling1D(4).get_config()["size"] == 4 and "data_format" not in UpSampling1D().get_config()
    assert UpSampling2D(2).get_config()["size"] == (2, 2)
    with pytest.raises(ArgumentError, match=r"^`Resizing` layer 'r': `height` must be a positive integer"):
        Resizing(0, 3, name="r")
    with pytest.raises(ArgumentTypeError, match=r"^`Resizing` layer 'r': `fill_value` must be a number"):
        Resizing(3, 3, fill_value="zero", name="r")
    with pytest.raises(TypeError, match="abstract"):
        xlayers.layers.image.BaseUpSampling()


@pytest.mark.parametrize(
    "make, shape, ops",
    [
        (lambda: Resizing(5, 13, interpolation="bicubic"), (2, 7, 9, 3), {"MatMul": 2}),
        (lambda: Resizing(5, 13, interpolation="nearest"), (2, 7, 9, 3), {"GatherND": 1}),
        (lambda: Resizing(5, 13), (2, 7, 9, 3), {"Resize": 1}),  # bilinear: one Resize (half_pixel)
        (lambda: CenterCrop(4, 5), (2, 9, 12, 3), {"Slice": 2}),
    ],
    ids=["bicubic-matmul", "nearest-gather", "bilinear-resize", "center-crop-slice"],
)
def test_onnx_graph(tmp_path, make, shape, ops):
    layer = make()
    layer(torch.randn(*shape))
    result = export(layer, torch.randn(*shape), tmp_path / "m.onnx")
    for op, count in ops.items():
        assert result.node_counts.get(op, 0) == count, result.node_counts
