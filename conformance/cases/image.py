"""Cases for `xlayers/layers/image.py`: UpSampling 1D/2D/3D, Resizing and CenterCrop.

Resizing runs every interpolation on odd, unequal sizes, once shrinking one axis while growing
the other and once shrinking both strongly (where ``area`` and the Lanczos kernels differ most
from the rest), ``antialias`` where it changes the kernel, both data formats, and the
aspect-ratio crop and pad on wide and tall inputs.

TF registers no gradient for ``ResizeArea`` (``tf.GradientTape`` raises ``LookupError``), so
Keras's ``area`` layers cannot be differentiated. The map is affine in the input, so the
driver gives the Keras twin the exact gradient of what Keras's own forward computes: the
transpose of the matrix read off by resizing basis images with Keras (``_AffineGradientTwin``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlayers import CenterCrop, Resizing, UpSampling1D, UpSampling2D, UpSampling3D
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver
from ..keras_reference import ChannelsFirstTwin, unwrap

_ALL = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5", "area")


class _AffineGradientTwin(ChannelsFirstTwin):
    """A Keras twin whose gradient is the transpose of its own forward map, read off basis
    inputs (exact for an affine layer): for Keras ops TF cannot differentiate (``ResizeArea``)."""

    def __init__(self, twin: Any) -> None:
        self.outer = twin
        self.twin = unwrap(twin)

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        import tensorflow as tf

        outer = self.outer

        @tf.custom_gradient
        def run(x):
            def grad(upstream):
                sample = tuple(x.shape[1:])
                n = int(np.prod(sample))
                basis = tf.reshape(tf.eye(n, dtype=x.dtype), (n, *sample))
                offset = outer(tf.zeros((1, *sample), x.dtype), **kwargs)
                matrix = tf.reshape(outer(basis, **kwargs) - offset, (n, -1))  # (in, out)
                flat = tf.reshape(upstream, (tf.shape(upstream)[0], -1))
                return tf.reshape(tf.matmul(flat, matrix, transpose_b=True), tf.shape(x))

            return outer(x, **kwargs), grad

        return run(inputs)

    def get_config(self) -> dict[str, Any]:
        return self.outer.get_config()


class ImageDriver(Driver):
    """Image layers take their input alone; ``area`` twins get their gradient from their forward."""

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        twin = super().twin(layer, case, dtype)
        return _AffineGradientTwin(twin) if case.kwargs.get("interpolation") == "area" else twin


_DRIVER = ImageDriver()


def _fmt(kwargs: dict[str, Any]) -> str:
    return "nchw" if kwargs.get("data_format") == "channels_first" else "nhwc"


def _shape(batch: int, size: tuple[int, int], channels: int, data_format: str | None) -> tuple[int, ...]:
    return (batch, channels, *size) if data_format == "channels_first" else (batch, *size, channels)


# -- UpSampling -------------------------------------------------------------------------------

UPSAMPLING1D = (
    Case(UpSampling1D, "size3", dict(size=3), (2, 5, 4)),
    Case(UpSampling1D, "default", dict(), (3, 4, 2)),
)


def _up2d(interpolation: str, size: tuple[int, int], data_format: str = "channels_last", hw: tuple[int, int] = (5, 7)) -> Case:
    kwargs = dict(size=size, interpolation=interpolation, data_format=data_format)
    return Case(UpSampling2D, f"{interpolation}-{size[0]}x{size[1]}-{_fmt(kwargs)}", kwargs, _shape(2, hw, 3, data_format))


UPSAMPLING2D = (
    _up2d("nearest", (2, 3)),
    _up2d("nearest", (3, 2), "channels_first"),
    _up2d("bilinear", (2, 3)),
    _up2d("bilinear", (3, 2), "channels_first"),
    _up2d("bicubic", (2, 3)),
    _up2d("lanczos3", (3, 2)),
    _up2d("lanczos5", (2, 3)),
    _up2d("area", (3, 2)),
    Case(UpSampling2D, "default", dict(), (2, 4, 3, 2)),
)

UPSAMPLING3D = (
    Case(UpSampling3D, "2x1x3-ndhwc", dict(size=(2, 1, 3)), (2, 3, 4, 5, 2)),
    Case(UpSampling3D, "1x3x2-ncdhw", dict(size=(1, 3, 2), data_format="channels_first"), (2, 2, 3, 4, 5)),
)


# -- Resizing ---------------------------------------------------------------------------------


def _resize(variant: str, hw_in: tuple[int, int], hw_out: tuple[int, int], **kwargs: Any) -> Case:
    kwargs = dict(height=hw_out[0], width=hw_out[1], **kwargs)
    size = f"{hw_in[0]}x{hw_in[1]}-to-{hw_out[0]}x{hw_out[1]}"
    return Case(Resizing, f"{variant}-{_fmt(kwargs)}-{size}", kwargs, _shape(2, hw_in, 3, kwargs.get("data_format")))


RESIZING = (
    # every interpolation: rows shrink and columns grow, then both shrink by about 2.5x
    *(_resize(m, (7, 9), (5, 13), interpolation=m) for m in _ALL),
    *(_resize(m, (13, 17), (5, 6), interpolation=m) for m in _ALL),
    # antialias widens the kernel when shrinking (nearest and area ignore it)
    *(_resize(f"{m}-antialias", (13, 17), (5, 6), interpolation=m, antialias=True) for m in ("bilinear", "bicubic", "lanczos3", "lanczos5")),
    _resize("bilinear-antialias", (7, 9), (5, 13), interpolation="bilinear", antialias=True),
    # channels_first
    *(_resize(m, (7, 9), (5, 13), interpolation=m, data_format="channels_first") for m in ("bilinear", "nearest", "bicubic", "area")),
    # half precision: the banded matmul (dense in half) and torch's bilinear kernel, forward only
    Case(Resizing, "bicubic-half-nhwc-13x17-to-5x6", dict(height=5, width=6, interpolation="bicubic"), (2, 13, 17, 3),
         dtypes=("float16", "bfloat16")),
    Case(Resizing, "bilinear-half-nhwc-7x9-to-5x13", dict(height=5, width=13), (2, 7, 9, 3), dtypes=("float16", "bfloat16")),
    # aspect ratio: a wide and a tall input, cropped (centre window) or padded (both sides, fill_value)
    _resize("crop", (7, 15), (5, 6), crop_to_aspect_ratio=True),
    _resize("crop-bicubic", (15, 7), (6, 5), crop_to_aspect_ratio=True, interpolation="bicubic"),
    _resize("crop", (15, 7), (6, 5), crop_to_aspect_ratio=True, data_format="channels_first"),
    _resize("pad", (7, 15), (6, 5), pad_to_aspect_ratio=True, fill_value=0.75),
    _resize("pad-lanczos3", (15, 6), (5, 7), pad_to_aspect_ratio=True, fill_value=-1.5, interpolation="lanczos3"),
    _resize("pad", (15, 6), (5, 7), pad_to_aspect_ratio=True, fill_value=-1.5, data_format="channels_first"),
)


# -- CenterCrop -------------------------------------------------------------------------------

CENTER_CROP = (
    Case(CenterCrop, "crop-nhwc-9x12-to-4x5", dict(height=4, width=5), (2, 9, 12, 3)),
    Case(CenterCrop, "crop-nchw-9x12-to-4x5", dict(height=4, width=5, data_format="channels_first"), (2, 3, 9, 12)),
    # smaller than the target on one axis / both: Keras's smart_resize (centre crop to the aspect ratio, bilinear)
    Case(CenterCrop, "smaller-rows-nhwc-5x11-to-7x4", dict(height=7, width=4), (2, 5, 11, 3)),
    Case(CenterCrop, "smaller-both-nchw-3x4-to-7x9", dict(height=7, width=9, data_format="channels_first"), (2, 2, 3, 4)),
)


def _resize_group(case: Case) -> tuple:
    """One ONNX check per graph shape: sizes and methods change the constant matrices (or index
    vectors for nearest) of the same MatMul (Gather) graph, whose values the records check."""
    k = case.kwargs
    crop, pad = bool(k.get("crop_to_aspect_ratio")), bool(k.get("pad_to_aspect_ratio"))
    return (k.get("interpolation") == "nearest", crop, pad, None if crop or pad else k.get("data_format") or "channels_last")


def _up_group(case: Case) -> tuple:
    return (case.kwargs.get("interpolation", "nearest") == "nearest", case.kwargs.get("data_format") or "channels_last")


def _crop_group(case: Case) -> tuple:
    return case.variant.split("-")[0]


# -- errors -----------------------------------------------------------------------------------


def _label(name: str, snake: str) -> str:
    return f"^`{name}` layer '{snake}': "


UPSAMPLING_ERRORS = {
    1: (
        ErrorCase("size-zero", {"size": 0}, ArgumentError, _label("UpSampling1D", "up_sampling1d") + r"`size` must be a positive integer"),
        ErrorCase("size-float", {"size": 2.0}, ArgumentTypeError, _label("UpSampling1D", "up_sampling1d") + r"`size` must be a positive integer"),
        ErrorCase("rank", {}, InputShapeError, _label("UpSampling1D", "up_sampling1d") + r"expected an input of rank 3", (2, 5, 4, 3)),
    ),
    2: (
        ErrorCase("size-three", {"size": (2, 2, 2)}, ArgumentError, _label("UpSampling2D", "up_sampling2d") + r"`size`"),
        ErrorCase("interpolation", {"interpolation": "cubic"}, ArgumentError,
                  _label("UpSampling2D", "up_sampling2d") + r"`interpolation` must be one of \['bilinear', 'nearest', 'bicubic', 'lanczos3', 'lanczos5', 'area'\]"),
        ErrorCase("data-format", {"data_format": "nhwc"}, ArgumentError, _label("UpSampling2D", "up_sampling2d") + r"`data_format` must be one of"),
        ErrorCase("rank", {}, InputShapeError, _label("UpSampling2D", "up_sampling2d") + r"expected an input of rank 4", (2, 5, 4)),
    ),
    3: (
        ErrorCase("size-negative", {"size": (2, -1, 2)}, ArgumentError, _label("UpSampling3D", "up_sampling3d") + r"`size`"),
        ErrorCase("rank", {}, InputShapeError, _label("UpSampling3D", "up_sampling3d") + r"expected an input of rank 5", (2, 5, 4, 3)),
    ),
}

RESIZING_ERRORS = (
    ErrorCase("height-zero", {"height": 0, "width": 4}, ArgumentError, _label("Resizing", "resizing") + r"`height` must be a positive integer\. Received: height=0"),
    ErrorCase("width-float", {"height": 3, "width": 4.5}, ArgumentError, _label("Resizing", "resizing") + r"`width` must be a positive integer"),
    ErrorCase("interpolation", {"height": 3, "width": 4, "interpolation": "cubic"}, ArgumentError,
              _label("Resizing", "resizing") + r"`interpolation` must be one of"),
    ErrorCase("crop-and-pad", {"height": 3, "width": 4, "crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, ArgumentError,
              _label("Resizing", "resizing") + r"only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio`"),
    ErrorCase("fill-mode", {"height": 3, "width": 4, "fill_mode": "reflect"}, ArgumentError, _label("Resizing", "resizing") + r"`fill_mode` must be 'constant'"),
    ErrorCase("rank", {"height": 3, "width": 4}, InputShapeError, _label("Resizing", "resizing") + r"expected an input of rank <= 4", (2, 5, 4, 3, 2)),
)

CENTER_CROP_ERRORS = (
    ErrorCase("width-zero", {"height": 3, "width": 0}, ArgumentError, _label("CenterCrop", "center_crop") + r"`width` must be a positive integer"),
    ErrorCase("rank", {"height": 3, "width": 4}, InputShapeError, _label("CenterCrop", "center_crop") + r"expected an input of rank >= 3", (5, 4)),
)

LAYERS = (
    LayerInfo(UpSampling1D, UPSAMPLING1D, UPSAMPLING_ERRORS[1], driver=_DRIVER, onnx_group=lambda case: "repeat"),
    LayerInfo(UpSampling2D, UPSAMPLING2D, UPSAMPLING_ERRORS[2], driver=_DRIVER, onnx_group=_up_group),
    LayerInfo(UpSampling3D, UPSAMPLING3D, UPSAMPLING_ERRORS[3], driver=_DRIVER, onnx_group=_up_group),
    LayerInfo(Resizing, RESIZING, RESIZING_ERRORS, driver=_DRIVER, onnx_group=_resize_group),
    LayerInfo(CenterCrop, CENTER_CROP, CENTER_CROP_ERRORS, driver=_DRIVER, onnx_group=_crop_group),
)
