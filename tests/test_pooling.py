"""Pooling layers (windowed, global, adaptive; 1D/2D/3D on three rank-generic bases): the
checklist, brute-force references built from the definitions (TF's 'same' windows, Keras 3's
adaptive bins), no copy of the input on the way to torch's ops, the ONNX graph (one
``MaxPool`` / ``AveragePool`` with TF's pads), masks, errors and configs.

Keras equivalence is registry data: `conformance/cases/pooling.py`."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import xlayers
from conformance.testing import check_layer
from xlayers import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    Masking,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    Sequential,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers import pooling_ops
from xlayers.layers.pooling import BaseAdaptivePooling, BaseGlobalPooling, BasePooling
from xlayers.padding import same_padding

WINDOWED = (MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D, AveragePooling3D)
GLOBAL = (GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D,
          GlobalAveragePooling3D)
ADAPTIVE = (AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D, AdaptiveAveragePooling1D,
            AdaptiveAveragePooling2D, AdaptiveAveragePooling3D)
SPATIAL = {1: (10,), 2: (10, 9), 3: (6, 7, 5)}
_name = lambda v: v.__name__ if isinstance(v, type) else str(v)  # noqa: E731


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()


def _shape(rank: int, data_format: str = "channels_last", channels: int = 4, batch: int = 3, spatial=None) -> tuple[int, ...]:
    spatial = SPATIAL[rank] if spatial is None else spatial
    return (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)


def _to_first(x: torch.Tensor, data_format: str) -> torch.Tensor:
    return x.movedim(-1, 1) if data_format == "channels_last" else x


def _to_format(y: torch.Tensor, data_format: str) -> torch.Tensor:
    return y.movedim(1, -1) if data_format == "channels_last" else y


# -- references from the definitions ---------------------------------------------------------------


def _tf_windows(size: int, pool: int, stride: int, padding: str) -> list[tuple[int, int]]:
    """TF's windows of one axis, clipped to the input: ``[j*stride - before, ... + pool)``."""
    before, after = same_padding((size,), pool, stride)[0] if padding == "same" else (0, 0)
    count = (size + before + after - pool) // stride + 1
    return [(max(j * stride - before, 0), min(j * stride - before + pool, size)) for j in range(count)]


def _reference_pool(x: np.ndarray, mode: str, pool_size, strides, padding: str) -> np.ndarray:
    """``x`` channels-first ``(N, C, *spatial)``: each output the max or mean of the real cells of its window."""
    windows = [_tf_windows(n, k, s, padding) for n, k, s in zip(x.shape[2:], pool_size, strides)]
    out = np.empty((*x.shape[:2], *(len(w) for w in windows)), x.dtype)
    for index in itertools.product(*(range(len(w)) for w in windows)):
        box = x[(slice(None), slice(None), *(slice(*windows[d][i]) for d, i in enumerate(index)))]
        flat = box.reshape(*x.shape[:2], -1)
        out[(slice(None), slice(None), *index)] = flat.max(-1) if mode == "max" else flat.mean(-1)
    return out


def _keras_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Keras 3's adaptive bins by their definition: ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def _reference_adaptive(x: np.ndarray, mode: str, output_size, bins=_keras_bins) -> np.ndarray:
    windows = [bins(n, o) for n, o in zip(x.shape[2:], output_size)]
    out = np.empty((*x.shape[:2], *output_size), x.dtype)
    for index in itertools.product(*(range(o) for o in output_size)):
        box = x[(slice(None), slice(None), *(slice(*windows[d][i]) for d, i in enumerate(index)))]
        flat = box.reshape(*x.shape[:2], -1)
        out[(slice(None), slice(None), *index)] = flat.max(-1) if mode == "max" else flat.mean(-1)
    return out


# -- the checklist ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", WINDOWED, ids=_name)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_checklist_windowed_same_uneven(cls, data_format):
    pool_size = (3, 2, 2)[: cls.rank]  # rows by ceil mode, cols by the shift, depth by ceil mode
    strides = (2, 1, 2)[: cls.rank]
    layer = cls(pool_size, strides=strides, padding="same", data_format=data_format)
    check_layer(layer, _shape(cls.rank, data_format), {})


@pytest.mark.parametrize("cls", GLOBAL, ids=_name)
@pytest.mark.parametrize("keepdims", [False, True])
def test_checklist_global(cls, keepdims):
    out = check_layer(cls(keepdims=keepdims, data_format="channels_first"), _shape(cls.rank, "channels_first"), {})
    assert out.shape == ((3, 4) + (1,) * cls.rank if keepdims else (3, 4))


def test_checklist_global_average_1d_with_mask():
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[0, 4:] = False
    check_layer(GlobalAveragePooling1D(), _shape(1), {}, call_kwargs={"mask": mask})


@pytest.mark.parametrize("cls", ADAPTIVE, ids=_name)
def test_checklist_adaptive(cls):
    check_layer(cls((4, 3, 2)[: cls.rank]), _shape(cls.rank), {})


# -- windowed pooling against the definition -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["max", "average"])
def test_brute_force_1d_table(mode):
    """Every size 1..13, pool 1..5, stride 1..4, 'same' and 'valid': `pooling_ops.pool` gives the
    max / mean of the real cells of TF's windows (every placement of TF's padding occurs)."""
    placements = set()
    for size, pool, stride in itertools.product(range(1, 14), range(1, 6), range(1, 5)):
        x = torch.randn(2, 3, size, dtype=torch.float64) - 1.0  # mostly negative: a zero pad would show
        for padding in ("same", "valid"):
            if padding == "valid" and size < pool:
                continue
            expected = _reference_pool(x.numpy(), mode, (pool,), (stride,), padding)
            got = pooling_ops.pool(x, mode, (pool,), (stride,), padding)
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13, atol=1e-13,
                                       err_msg=f"{padding} size {size} pool {pool} stride {stride}")
            before, after = same_padding((size,), pool, stride)[0]
            placements.add((before == after, after > before and stride > 1, after > before and stride == 1))
    assert placements == {(True, False, False), (False, True, False), (False, False, True)}


CONFIGS_ND = [
    ((3, 2), (2, 1), (10, 9)),
    (3, 2, (10, 11)),
    ((5, 3), (2, 3), (10, 11)),
    ((2, 4), (1, 3), (7, 10)),
    ((3, 2, 2), (2, 1, 2), (6, 7, 5)),
    ((2, 3, 4), (1, 2, 3), (5, 8, 7)),
    (2, 3, (5, 6, 7)),
]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("pool_size, strides, size", CONFIGS_ND, ids=str)
def test_matches_definition_nd(mode, padding, data_format, pool_size, strides, size):
    rank = len(size)
    cls = {(m, r): c for c in WINDOWED for m, r in [(c.pool_mode, c.rank)]}[mode, rank]
    layer = cls(pool_size, strides=strides, padding=padding, data_format=data_format, dtype="float64")
    x = torch.randn(_shape(rank, data_format, spatial=size), dtype=torch.float64) - 0.5
    expected = _reference_pool(_to_first(x, data_format).numpy(), mode, layer.pool_size, layer.strides, padding)
    torch.testing.assert_close(layer(x), _to_format(torch.from_numpy(expected), data_format), rtol=1e-12, atol=1e-12)


def test_max_never_takes_the_padding_and_average_excludes_it():
    x = -torch.arange(1.0, 11.0).reshape(1, 10, 1)  # all negative
    assert MaxPooling1D(3, strides=2, padding="same")(x)[0, -1, 0] == -9.0  # window (9, 10, pad): not 0
    assert AveragePooling1D(3, strides=2, padding="same")(x)[0, -1, 0] == -9.5  # (-9 - 10) / 2, not / 3
    assert AveragePooling1D(2, strides=1, padding="same")(x)[0, -1, 0] == -10.0  # the stride-1 shift


def test_float16_and_bfloat16_on_cpu():
    """3-D average pooling runs as two 2-D pools (torch's CPU avg_pool3d has no half kernel)."""
    for cls in WINDOWED + ADAPTIVE + GLOBAL:
        kwargs = {"output_size": 2} if issubclass(cls, BaseAdaptivePooling) else {}
        if issubclass(cls, BasePooling):
            kwargs = {"pool_size": 3, "strides": 2, "padding": "same"}
        x = torch.randn(_shape(cls.rank))
        want = cls(**kwargs)(x)
        for dtype in (torch.float16, torch.bfloat16):
            got = cls(**kwargs, dtype=dtype)(x.to(dtype))
            assert got.dtype == dtype
            torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


# -- adaptive pooling ----------------------------------------------------------------------------


ADAPTIVE_SIZES = [((10,), (4,)), ((11,), (4,)), ((3,), (5,)), ((9,), (3,)), ((7,), (1,)), ((1,), (3,)), ((2,), (3,)),
                  ((10, 7), (4, 3)), ((3, 8), (5, 2)), ((5, 7, 4), (2, 3, 2)), ((5, 6, 7), (3, 2, 4))]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("size, output_size", ADAPTIVE_SIZES, ids=str)
def test_adaptive_matches_keras_bins(mode, data_format, size, output_size):
    rank = len(size)
    cls = {(c.pool_mode, c.rank): c for c in ADAPTIVE}[mode, rank]
    layer = cls(output_size, data_format=data_format, dtype="float64")
    x = torch.randn(_shape(rank, data_format, spatial=size), dtype=torch.float64)
    expected = _to_format(torch.from_numpy(_reference_adaptive(_to_first(x, data_format).numpy(), mode, output_size)), data_format)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    # Keras's own formulation (the export path, and the fallback) gives the same numbers
    gathered = _to_format(pooling_ops.adaptive_pool_gather(_to_first(x, data_format), mode, output_size), data_format)
    torch.testing.assert_close(gathered, expected, rtol=1e-12, atol=1e-12)


def test_adaptive_bins_are_torchs_while_keras_float32_edges_are_exact():
    for size, out in itertools.product(range(1, 200), range(1, 60)):
        assert pooling_ops.keras_adaptive_bins(size, out) == pooling_ops._exact_bins(size, out), (size, out)
        assert pooling_ops.torch_adaptive_matches_keras(size, out)
    # beyond 2**24 Keras's float32 edges can round across an integer: the layer follows Keras there
    size, out = 9261, 1873
    assert size * out > 2**24 and not pooling_ops.torch_adaptive_matches_keras(size, out)
    keras_bins = list(zip(*pooling_ops.keras_adaptive_bins(size, out)))
    assert keras_bins != _keras_bins(size, out)
    x = torch.randn(1, size, 2, dtype=torch.float64)
    for cls in (AdaptiveMaxPooling1D, AdaptiveAveragePooling1D):
        expected = _reference_adaptive(_to_first(x, "channels_last").numpy(), cls.pool_mode, (out,), bins=lambda n, o: keras_bins)
        torch.testing.assert_close(cls(out, dtype="float64")(x), _to_format(torch.from_numpy(expected), "channels_last"))


def test_one_bin_adaptive_max_is_the_global_max():
    x = torch.randn(3, 7, 4)
    torch.testing.assert_close(AdaptiveMaxPooling1D(1)(x)[:, 0], GlobalMaxPooling1D()(x), rtol=0, atol=0)
    x.requires_grad_(True)
    AdaptiveMaxPooling1D(1)(x).sum().backward()
    assert x.grad.sum() == 12 and set(x.grad.unique().tolist()) == {0.0, 1.0}  # one-hot per (batch, channel)


# -- global pooling and masks ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", GLOBAL, ids=_name)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_is_the_reduction(cls, data_format):
    x = torch.randn(_shape(cls.rank, data_format), dtype=torch.float64)
    axes = tuple(range(1, cls.rank + 1)) if data_format == "channels_last" else tuple(range(2, cls.rank + 2))
    want = x.amax(axes) if cls.pool_mode == "max" else x.mean(axes)
    torch.testing.assert_close(cls(data_format=data_format, dtype="float64")(x), want)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_1d_mask_is_keras_masked_mean(data_format):
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    inputs = x if data_format == "channels_last" else x.transpose(1, 2)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    layer = GlobalAveragePooling1D(data_format=data_format, dtype="float64")
    want = torch.stack([x[0, :2].mean(0), x[1, [0, 2, 4, 5]].mean(0), torch.full((4,), torch.nan, dtype=torch.float64)])
    torch.testing.assert_close(layer(inputs, mask=mask), want, equal_nan=True)  # an all-masked row: 0 / 0, as Keras
    torch.testing.assert_close(layer(inputs, mask=mask.to(torch.float32) * 3.0), want, equal_nan=True)  # non-zero keeps
    kept = GlobalAveragePooling1D(data_format=data_format, keepdims=True, dtype="float64")(inputs, mask=mask)
    assert kept.shape == ((3, 1, 4) if data_format == "channels_last" else (3, 4, 1))


def test_only_the_global_average_over_steps_takes_a_mask():
    """As Keras: GlobalAveragePooling1D's call takes the mask and consumes it; GlobalMaxPooling1D
    takes none (in a Sequential the mask stops there)."""
    x = torch.randn(2, 5, 3)
    x[0, 3:] = 0.0
    averaged = Sequential([Masking(0.0), GlobalAveragePooling1D()])(x)
    torch.testing.assert_close(averaged[0], x[0, :3].mean(0))
    assert GlobalAveragePooling1D().compute_mask(x, torch.ones(2, 5, dtype=torch.bool)) is None
    maxed = Sequential([Masking(0.0), GlobalMaxPooling1D()])(x)
    torch.testing.assert_close(maxed, x.amax(1))
    assert GlobalAveragePooling1D().supports_masking and not GlobalMaxPooling1D().supports_masking
    with pytest.raises(TypeError):
        GlobalMaxPooling1D()(x, mask=torch.ones(2, 5, dtype=torch.bool))


def test_mask_of_the_wrong_shape():
    message = ("`GlobalAveragePooling1D` layer 'global_average_pooling1d': `mask` must have shape (batch, steps) = (2, 5). "
               "Received: mask.shape=(2, 4), input shape=(2, 5, 3).")
    with pytest.raises(InputShapeError, match=re.escape(message) + "$"):
        GlobalAveragePooling1D()(torch.randn(2, 5, 3), mask=torch.ones(2, 4))


# -- no copy of the input -----------------------------------------------------------------------------


class _InputCopies(TorchDispatchMode):
    """Records every op that reads ``source``'s memory, and which of them copy it."""

    COPIES = frozenset({"aten.clone.default", "aten.copy_.default", "aten._to_copy.default", "aten.constant_pad_nd.default",
              "aten.cat.default", "aten.contiguous.default", "aten.reflection_pad2d.default"})

    def __init__(self, source: torch.Tensor) -> None:
        super().__init__()
        self.storage = source.untyped_storage().data_ptr()
        self.readers: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        if any(t.untyped_storage().data_ptr() == self.storage for t in tensors):
            self.readers.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("cls, kwargs", [
    *((c, dict(pool_size=p, strides=s, padding=pad)) for c in WINDOWED for p, s, pad in
      [(3, 2, "same"), (2, 1, "same"), (2, None, "valid")]),
    *((c, dict(output_size=(4, 3, 2)[: c.rank])) for c in ADAPTIVE),
], ids=lambda v: v.__name__ if isinstance(v, type) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_channels_last_input_reaches_torch_without_a_copy(cls, kwargs):
    """The NHWC input goes to torch's pooling op as a channels-last view; no op copies its memory
    (a 'same' stride-1 even pool crops its output, never the input)."""
    layer = cls(**kwargs)
    x = torch.randn(_shape(cls.rank, channels=8))
    layer(x)
    with torch.no_grad(), _InputCopies(x) as mode:
        out = layer(x)
    readers = [r for r in mode.readers if not r.startswith(("aten.permute", "aten.unsqueeze", "aten.view", "aten._reshape_alias",
                                                             "aten.reshape", "aten.as_strided", "aten.squeeze"))]
    assert readers and all("pool" in r for r in readers), readers
    assert not set(readers) & _InputCopies.COPIES
    assert out.shape == layer.compute_output_shape(x.shape)


# -- ONNX -----------------------------------------------------------------------------------------------


def _node_attributes(path, op_type: str) -> dict:
    import onnx

    for node in onnx.load(str(path)).graph.node:
        if node.op_type == op_type:
            return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    raise AssertionError(f"no {op_type} node")


@pytest.mark.parametrize("cls, kwargs, shape, counts, pads", [
    (MaxPooling2D, dict(pool_size=3, strides=2, padding="same"), (2, 10, 11, 3), {"MaxPool": 1, "Transpose": 2}, [0, 1, 1, 1]),
    (AveragePooling2D, dict(pool_size=(3, 2), strides=(2, 1), padding="same", data_format="channels_first"), (2, 3, 10, 9),
     {"AveragePool": 1}, [0, 0, 1, 1]),
    (AveragePooling1D, dict(pool_size=5, strides=2, padding="same"), (2, 10, 3), {"AveragePool": 1, "Transpose": 2}, [1, 2]),
    (MaxPooling3D, dict(pool_size=(3, 2, 2), strides=(2, 1, 2), padding="same"), (2, 6, 7, 5, 3),
     {"MaxPool": 1, "Transpose": 2}, [0, 0, 0, 1, 1, 1]),
    (AveragePooling3D, dict(pool_size=2, padding="valid"), (2, 6, 7, 5, 3), {"AveragePool": 1, "Transpose": 2}, None),
], ids=["max2d-same-nhwc", "avg2d-same-nchw", "avg1d-same-both-sides", "max3d-same", "avg3d-valid"])
def test_export_is_one_pool_node_with_tf_pads(tmp_path, cls, kwargs, shape, counts, pads):
    from xlayers.onnx import export

    layer = cls(**kwargs)
    layer(torch.randn(shape))
    result = export(layer, torch.randn(shape), tmp_path / "p.onnx", verbose=False)
    assert result.node_counts == counts, result.node_counts  # no Pad, no Slice
    op = "MaxPool" if cls.pool_mode == "max" else "AveragePool"
    attributes = _node_attributes(tmp_path / "p.onnx", op)
    assert attributes.get("pads", [0] * 2 * cls.rank) == (pads or [0] * 2 * cls.rank)
    assert attributes.get("ceil_mode", 0) == 0
    if op == "AveragePool" and pads:
        assert attributes["count_include_pad"] == 0


@pytest.mark.parametrize("cls, kwargs, shape, counts", [
    (GlobalAveragePooling2D, {}, (2, 6, 5, 3), {"ReduceMean": 1}),
    (GlobalMaxPooling3D, dict(keepdims=True, data_format="channels_first"), (2, 3, 4, 5, 6), {"ReduceMax": 1}),
    (AdaptiveAveragePooling2D, dict(output_size=(3, 2)), (2, 9, 8, 3), {"AveragePool": 1, "Transpose": 2}),
    (AdaptiveMaxPooling1D, dict(output_size=4, data_format="channels_first"), (2, 3, 10), {"MaxPool": 2, "Concat": 1, "Gather": 1}),
], ids=["gap2d", "gmp3d-keepdims-nchw", "adaptive-avg-divides", "adaptive-max-overlapping-bins"])
def test_export_global_and_adaptive(tmp_path, cls, kwargs, shape, counts):
    from xlayers.onnx import export

    layer = cls(**kwargs)
    layer(torch.randn(shape))
    result = export(layer, torch.randn(shape), tmp_path / "g.onnx", verbose=False)
    assert result.node_counts == counts, result.node_counts


def test_export_masked_global_average(tmp_path):
    from xlayers.onnx import export

    layer = GlobalAveragePooling1D()
    x = torch.randn(3, 6, 4)
    layer(x)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [3], [1]])
    result = export(layer, (x, mask), tmp_path / "m.onnx", verbose=False)  # verified with an empty row: NaN on both sides
    assert result.node_counts.get("ReduceSum") == 2 and "Where" in result.node_counts


# -- torch.compile with dynamic sizes --------------------------------------------------------------------


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling3D], ids=_name)
def test_compile_dynamic_sizes(cls):
    """Sizes whose 'same' pads differ compile (the pads are pinned by shape guards) and agree with eager."""
    layer = cls(3, strides=2, padding="same") if cls.rank == 2 else cls((2, 3, 2), strides=(1, 2, 2), padding="same")
    layer(torch.randn(_shape(cls.rank, spatial=(8,) * cls.rank)))  # built before compiling
    compiled = torch.compile(layer, fullgraph=True, dynamic=True, backend="eager")
    for size in (9, 10):
        x = torch.randn(_shape(cls.rank, spatial=(size,) * cls.rank))
        torch.testing.assert_close(compiled(x), layer(x))


# -- arguments, configs, errors ---------------------------------------------------------------------


def test_defaults_and_config_round_trip():
    layer = MaxPooling2D()
    assert (layer.pool_size, layer.strides, layer.padding, layer.data_format) == ((2, 2), (2, 2), "valid", "channels_last")
    config = AveragePooling3D((2, 3, 1), padding="SAME", data_format="channels_first").get_config()
    assert {k: config[k] for k in ("pool_size", "strides", "padding", "data_format")} == {
        "pool_size": (2, 3, 1), "strides": (2, 3, 1), "padding": "same", "data_format": "channels_first"}
    for cls, kwargs in [(MaxPooling1D, dict(pool_size=3, strides=1)), (GlobalAveragePooling2D, dict(keepdims=True)),
                        (AdaptiveMaxPooling3D, dict(output_size=(1, 2, 3), data_format="channels_first"))]:
        config = json.loads(json.dumps(cls(**kwargs).get_config()))
        assert cls.from_config(config).get_config() == cls(**kwargs, name=config["name"]).get_config()
    assert set(GlobalMaxPooling1D().get_config()) == {"name", "trainable", "dtype", "data_format", "keepdims"}
    assert set(AdaptiveAveragePooling2D(3).get_config()) == {"name", "trainable", "dtype", "output_size", "data_format"}
    assert AdaptiveAveragePooling2D(3).output_size == (3, 3)
    assert "pool_size=(3, 3)" in repr(MaxPooling2D(3)) and "padding" not in repr(MaxPooling2D(3))


def test_keras_aliases_are_the_same_classes():
    assert xlayers.MaxPool2D is MaxPooling2D and xlayers.AvgPool1D is AveragePooling1D
    assert xlayers.GlobalAvgPool3D is GlobalAveragePooling3D and xlayers.GlobalMaxPool1D is GlobalMaxPooling1D
    assert MaxPooling2D().name.startswith("max_pooling2d") and GlobalAveragePooling1D().name.startswith("global_average_pooling1d")


@pytest.mark.parametrize("base", [BasePooling, BaseGlobalPooling, BaseAdaptivePooling], ids=_name)
def test_bases_are_abstract(base):
    with pytest.raises(TypeError, match=rf"`{base.__name__}` is abstract: use `\w+1D`, `\w+2D`, `\w+3D`"):
        base(2) if base is BaseAdaptivePooling else base()


def _argument_errors():
    cases = []
    for cls in WINDOWED:
        r = cls.rank
        cases += [
            (cls, dict(pool_size=0), ArgumentError, f"`pool_size` must be a positive int or a tuple of {r} positive ints. Received: pool_size=0."),
            (cls, dict(pool_size=(2,) * (r + 1)), ArgumentError,
             f"`pool_size` must be a positive int or a tuple of {r} positive ints. Received: pool_size={(2,) * (r + 1)}."),
            (cls, dict(strides=0), ArgumentError, f"`strides` must be a positive int or a tuple of {r} positive ints. Received: strides=0."),
            (cls, dict(pool_size=2.5), ArgumentTypeError, f"`pool_size` must be a positive int or a tuple of {r} positive ints. Received: pool_size=2.5."),
            (cls, dict(padding="full"), ArgumentError, "`padding` must be one of ('valid', 'same'). Received: padding='full'."),
            (cls, dict(data_format="NHWC"), ArgumentError,
             "`data_format` must be one of ['channels_last', 'channels_first']. Received: data_format='NHWC'."),
            (cls, dict(bogus=1), ArgumentTypeError, "unrecognized keyword arguments ['bogus']. Received: bogus=1."),
        ]
    for cls in GLOBAL:
        cases += [(cls, dict(keepdims=1), ArgumentTypeError, "`keepdims` must be a bool. Received: keepdims=1."),
                  (cls, dict(data_format=3), ArgumentError,
                   "`data_format` must be one of ['channels_last', 'channels_first']. Received: data_format=3.")]
    for cls in ADAPTIVE:
        r = cls.rank
        cases += [(cls, dict(output_size=0), ArgumentError,
                   f"`output_size` must be a positive int or a tuple of {r} positive ints. Received: output_size=0."),
                  (cls, dict(output_size="2"), ArgumentTypeError,
                   f"`output_size` must be a positive int or a tuple of {r} positive ints. Received: output_size='2'.")]
    return [pytest.param(c, k, e, m, id=f"{c.__name__}-{'-'.join(k)}") for c, k, e, m in cases]


@pytest.mark.parametrize("cls, kwargs, error, message", _argument_errors())
def test_argument_errors(cls, kwargs, error, message):
    label = rf"^`{cls.__name__}` layer '\w+': "
    with pytest.raises(error, match=label + re.escape(message) + "$"):
        cls(**kwargs)


@pytest.mark.parametrize("cls", WINDOWED, ids=_name)
def test_input_errors(cls):
    rank, name = cls.rank, cls.__name__
    layer = cls(5, name="pool")
    label = re.escape(f"`{name}` layer 'pool': ")
    with pytest.raises(InputShapeError, match=label + re.escape(f"expected an input of rank {rank + 2}. Received: input shape=(2, 8).")):
        layer(torch.randn(2, 8))
    small = (1, *(3,) * rank, 2)
    message = f"the input's spatial size is smaller than the pool {(5,) * rank} with padding='valid'. Received: input shape={small}."
    with pytest.raises(InputShapeError, match=label + re.escape(message) + "$"):
        layer(torch.randn(small))
    assert not layer.built
    assert cls(5, padding="same")(torch.randn(small)).shape == (1, *(1,) * rank, 2)  # 'same' takes any size
