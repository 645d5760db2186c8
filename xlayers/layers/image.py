"""Resampling layers: UpSampling 1D/2D/3D, Resizing and CenterCrop, on one set of TF-exact resize ops.

Every resize is separable: `xlayers.layers.image_ops` gives one ``(out, in)`` matrix per
spatial axis (an index vector for ``nearest``), computed once per (input size, output size,
method) in TF's own float32 arithmetic; a layer keeps them as tensors per device and dtype and
applies them as one GEMM per axis. Where torch's own kernel follows TF's convention (half-pixel
bilinear without antialias, ``nearest-exact``) the layer calls ``F.interpolate`` on a
channels-first view instead: the same samples and weights, at torch's speed.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..arguments import check_positive_int
from ..arguments import data_format as check_data_format
from ..errors import ArgumentError, ArgumentTypeError
from ..layer import InputSpec, Layer, Shape
from ..padding import normalize_tuple
from . import image_ops

__all__ = ["BaseUpSampling", "CenterCrop", "Resizing", "UpSampling1D", "UpSampling2D", "UpSampling3D", "resample", "resize_images"]





def _interpolation(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in image_ops.INTERPOLATIONS:
        raise ArgumentError(
            f"`interpolation` must be one of {list(image_ops.INTERPOLATIONS)}. Received: interpolation={value!r}."
        )
    return value.lower()


def _repeat(x: torch.Tensor, axis: int, times: int) -> torch.Tensor:
    """Each element of ``axis`` repeated ``times`` times in place (Keras's ``ops.repeat``), as
    unsqueeze, expand and reshape: one view and one copy, exported as Expand + Reshape."""
    if times == 1:
        return x
    shape = list(x.shape)
    expanded = x.unsqueeze(axis + 1).expand(*shape[: axis + 1], times, *shape[axis + 1 :])
    shape[axis] *= times
    return expanded.reshape(shape)


class _Resampler:
    """The per-axis operators of one layer, as tensors, by (method, in, out, antialias, dtype,
    device): computed on first use, then reused on every call of the same sizes."""

    def __init__(self) -> None:
        self.cache: dict[tuple[Any, ...], torch.Tensor] = {}

    def operator(self, method: str, in_size: int, out_size: int, antialias: bool, like: torch.Tensor,
                 sparse: bool = False) -> torch.Tensor:
        key = (method, in_size, out_size, antialias, like.dtype, like.device, sparse)
        found = self.cache.get(key)
        if found is None:
            if method == "nearest":
                found = torch.from_numpy(image_ops.nearest_index(in_size, out_size)).to(like.device)
            else:  # both forms at once: a traced call (dense) after eager ones (sparse) finds its operator
                dense = self.cache.get(key[:-1] + (False,))
                if dense is None:
                    dense = torch.from_numpy(image_ops.resize_weights(method, in_size, out_size, antialias)).to(like.device, like.dtype)
                    self.cache[key[:-1] + (False,)] = dense
                found = dense
                if sparse:
                    with warnings.catch_warnings():  # "sparse CSR support is in beta": only matmul is used
                        warnings.simplefilter("ignore", UserWarning)
                        found = dense.to_sparse_csr()
            self.cache[key] = found
        return found


def _interpolate(images: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """torch's own kernel where its convention is TF's (``images`` channels first): half-pixel
    bilinear (``align_corners=False``, no antialias) and ``nearest-exact``
    (``floor((o + 0.5) * in / out)``, TF's half-pixel nearest). Both place samples in float32
    for float32 images exactly as TF does (``tests/test_image.py`` checks them against
    `image_ops`' TF weights)."""
    if method == "bilinear":
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=False)
    return F.interpolate(images, size=size, mode="nearest-exact")


def _traced() -> bool:
    """Inside torch.compile or an export (sparse tensors are not traceable there)."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()


def resample(x: torch.Tensor, axis: int, out_size: int, method: str, antialias: bool, resampler: _Resampler) -> torch.Tensor:
    """``x`` resized along ``axis`` to ``out_size`` by TF's ``method``: a gather for nearest,
    else one matmul with the axis's ``(out, in)`` matrix. The matrix is banded (2 to ~11
    non-zeros a row, more with antialias), so eager float32/float64 calls multiply it as a
    sparse CSR matrix (3x faster than the dense GEMM at 256x320 -> 224x224); traced calls
    (torch.compile, ONNX export) use the dense matrix and one ``tensordot`` (a single GEMM)."""
    if method == "nearest":
        return x.index_select(axis, resampler.operator(method, x.shape[axis], out_size, antialias, x))
    sparse = x.dtype in (torch.float32, torch.float64) and not _traced()
    operator = resampler.operator(method, x.shape[axis], out_size, antialias, x, sparse)
    if not sparse:
        return torch.tensordot(x, operator, dims=([axis], [1])).movedim(-1, axis)
    moved = x.movedim(axis, 0)
    return (operator @ moved.reshape(moved.shape[0], -1)).reshape(out_size, *moved.shape[1:]).movedim(0, axis)


def resize_images(x: torch.Tensor, size: tuple[int, int], method: str, antialias: bool, resampler: _Resampler,
                  channels_last: bool) -> torch.Tensor:
    """Batched images ``x`` (rank 4) resized to ``size`` as ``tf.image.resize``."""
    if x.is_floating_point() and (method == "nearest" or (method == "bilinear" and not antialias)):
        images = x.permute(0, 3, 1, 2) if channels_last else x  # a channels_last-format view, no copy
        resized = _interpolate(images, size, method)
        return resized.permute(0, 2, 3, 1) if channels_last else resized
    h_axis = 1 if channels_last else 2
    x = resample(x, h_axis, size[0], method, antialias, resampler)
    return resample(x, h_axis + 1, size[1], method, antialias, resampler)


class BaseUpSampling(Layer):
    """Repeats each element ``size`` times along each of ``rank`` spatial axes, as Keras's
    ``UpSampling{1,2,3}D`` (``ops.repeat``); UpSampling2D also resizes by TF's interpolations.

    A member sets ``rank``; everything else is shared.
    """

    rank: ClassVar[int]

    def __init__(self, size: int | tuple[int, ...] = 2, data_format: str | None = None, **kwargs: Any) -> None:
        if not getattr(type(self), "rank", None):
            raise TypeError(f"`{type(self).__name__}` is abstract: use `UpSampling1D`, `UpSampling2D` or `UpSampling3D`.")
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, self.rank, "size")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        start = 1 if self.data_format == "channels_last" else 2
        return tuple(range(start, start + self.rank))

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        for axis, times in zip(self.spatial_axes, self.size):
            inputs = _repeat(inputs, axis, times)
        return inputs

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        for axis, times in zip(self.spatial_axes, self.size):
            shape[axis] = None if shape[axis] is None else shape[axis] * times
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


class UpSampling1D(BaseUpSampling):
    """Repeats each step ``size`` times along the steps axis: ``y[:, t] = x[:, t // size]``.

    Args:
        size: positive int, the upsampling factor.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, steps, features)``.

    Output shape:
        ``(batch, steps * size, features)``.

    Example:
        >>> UpSampling1D(size=3)(torch.randn(2, 5, 4)).shape
        torch.Size([2, 15, 4])
    """

    rank = 1

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(size=1, **kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise ArgumentTypeError(f"`size` must be a positive integer. Received: size={size!r}.")
        self.size = (check_positive_int("size", size),)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["data_format"]
        return {**config, "size": self.size[0]}


class UpSampling2D(BaseUpSampling):
    """Upsamples rows and columns by integer factors: ``nearest`` repeats them (Keras's
    ``ops.repeat``); any other interpolation resizes to ``(rows * size[0], cols * size[1])``
    with ``tf.image.resize``'s method (half-pixel centers, TF's bicubic ``a = -0.5``, no
    antialias), as separable matmuls.

    Args:
        size: int or tuple of 2 positive ints, the factors for rows and columns.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        interpolation: ``"nearest"`` (default), ``"bilinear"``, ``"bicubic"``,
            ``"lanczos3"``, ``"lanczos5"`` or ``"area"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)``.

    Output shape:
        ``(batch, rows * size[0], cols * size[1], channels)`` (or channels first).

    Example:
        >>> UpSampling2D((2, 3), interpolation="bilinear")(torch.randn(2, 5, 7, 3)).shape
        torch.Size([2, 10, 21, 3])
    """

    rank = 2

    def __init__(self, size: int | tuple[int, int] = (2, 2), data_format: str | None = None,
                 interpolation: str = "nearest", **kwargs: Any) -> None:
        super().__init__(size=size, data_format=data_format, **kwargs)
        self.interpolation = _interpolation(interpolation)
        self._resampler = _Resampler()

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.interpolation == "nearest":
            return super().call(inputs)
        x = inputs if inputs.is_floating_point() else inputs.float()  # TF's resize returns float32
        size = tuple(x.shape[axis] * times for axis, times in zip(self.spatial_axes, self.size))
        return resize_images(x, size, self.interpolation, False, self._resampler, self.data_format == "channels_last")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(BaseUpSampling):
    """Repeats each element ``size[i]`` times along depth, rows and columns.

    Args:
        size: int or tuple of 3 positive ints, the factors for the three spatial axes.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, dim1, dim2, dim3, channels)``, or ``(batch, channels, dim1, dim2, dim3)``.

    Output shape:
        ``(batch, dim1 * size[0], dim2 * size[1], dim3 * size[2], channels)`` (or channels first).

    Example:
        >>> UpSampling3D((1, 2, 3))(torch.randn(2, 3, 4, 5, 6)).shape
        torch.Size([2, 3, 8, 15, 6])
    """

    rank = 3

    def __init__(self, size: int | tuple[int, int, int] = (2, 2, 2), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(size=size, data_format=data_format, **kwargs)


class _ImageLayer(Layer):
    """Shared by `Resizing` and `CenterCrop`: batched (rank 4) or unbatched (rank 3) images,
    either data format, and Keras's crop-to-aspect-ratio then resize."""

    def _init_image(self, height: Any, width: Any, data_format: Any) -> None:
        self.height = check_positive_int("height", height)
        self.width = check_positive_int("width", width)
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(min_ndim=3, max_ndim=4)
        self._resampler = _Resampler()

    def _axes(self, ndim: int) -> tuple[int, int, int]:
        """(height axis, width axis, channel axis) of a batched (rank 4) input."""
        return (1, 2, -1) if self.data_format == "channels_last" else (2, 3, 1)

    def _resize(self, x: torch.Tensor, interpolation: str, antialias: bool, crop: bool, pad: bool = False,
                fill_value: float = 0.0, crop_in_float32: bool = True) -> torch.Tensor:
        h_axis, w_axis, channel_axis = self._axes(x.ndim)
        height, width = x.shape[h_axis], x.shape[w_axis]
        if crop:
            top, crop_height, left, crop_width = image_ops.crop_box(height, width, self.height, self.width, float32=crop_in_float32)
            x = x.narrow(h_axis, top, crop_height).narrow(w_axis, left, crop_width)
        elif pad:
            rows, cols = image_ops.pad_amount(height, width, self.height, self.width)
            if rows or cols:
                pads = [0, 0] * (x.ndim - h_axis)  # F.pad lists the last axis first
                pads[2 * (x.ndim - 1 - h_axis) : 2 * (x.ndim - h_axis)] = [rows, rows]
                pads[2 * (x.ndim - 1 - w_axis) : 2 * (x.ndim - w_axis)] = [cols, cols]
                x = F.pad(x, pads, value=float(fill_value))
        return resize_images(x, (self.height, self.width), interpolation, antialias, self._resampler, channel_axis == -1)

    def _batched(self, inputs: torch.Tensor, fn: Any) -> torch.Tensor:
        if inputs.ndim == 3:
            return fn(inputs.unsqueeze(0)).squeeze(0)
        return fn(inputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        offset = len(shape) - 3  # 1 when batched
        h_axis = offset + (0 if self.data_format == "channels_last" else 1)
        shape[h_axis], shape[h_axis + 1] = self.height, self.width
        return tuple(shape)


class Resizing(_ImageLayer):
    """Resizes images to ``(height, width)`` exactly as ``tf.image.resize`` (Keras's TF backend).

    Each spatial axis is one precomputed ``(out, in)`` matrix in TF's conventions: half-pixel
    centers; TF's nearest rounding ``floor((o + 0.5) * in / out)``; bicubic with Keys
    ``a = -0.5`` from TF's 1024-step table (torch's bicubic uses ``a = -0.75``); ``area`` as
    ``ResizeArea``; ``lanczos3``/``lanczos5`` (and ``antialias`` bilinear/bicubic) as
    ``ScaleAndTranslate``. ``crop_to_aspect_ratio`` first takes the largest centred window of
    the target's aspect ratio; ``pad_to_aspect_ratio`` pads ``fill_value`` on both sides of the
    short axis (half the missing size each, truncated, as Keras).

    Integer images come back in their dtype, rounded and saturated (as Keras); other methods
    than ``nearest`` compute them in float32.

    Args:
        height: positive int, the output height.
        width: positive int, the output width.
        interpolation: ``"bilinear"`` (default), ``"nearest"``, ``"bicubic"``, ``"lanczos3"``,
            ``"lanczos5"`` or ``"area"``.
        crop_to_aspect_ratio: crop to the target's aspect ratio before resizing.
        pad_to_aspect_ratio: pad to the target's aspect ratio before resizing.
        fill_mode: ``"constant"`` (the only mode Keras's TF backend supports).
        fill_value: the padding value of ``pad_to_aspect_ratio``.
        antialias: widen the kernel when downscaling (bilinear, bicubic, lanczos).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, rows, cols, channels)`` or unbatched ``(rows, cols, channels)``
        (channels first with ``channels_first``).

    Output shape:
        ``(batch, height, width, channels)`` (or unbatched, or channels first).

    Example:
        >>> Resizing(5, 11, interpolation="bicubic")(torch.randn(2, 7, 9, 3)).shape
        torch.Size([2, 5, 11, 3])
    """

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        antialias: bool = False,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_image(height, width, data_format)
        self.interpolation = _interpolation(interpolation)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ArgumentError(
                "only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True. "
                f"Received: crop_to_aspect_ratio={crop_to_aspect_ratio!r}, pad_to_aspect_ratio={pad_to_aspect_ratio!r}."
            )
        if fill_mode != "constant":
            raise ArgumentError(f"`fill_mode` must be 'constant' (the only mode Keras supports here). Received: fill_mode={fill_mode!r}.")
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float, np.number)):
            raise ArgumentTypeError(f"`fill_value` must be a number. Received: fill_value={fill_value!r}.")
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.antialias = bool(antialias)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        integer = not inputs.is_floating_point() and self.interpolation != "nearest"
        x = inputs.float() if integer else inputs

        def run(images: torch.Tensor) -> torch.Tensor:
            return self._resize(images, self.interpolation, self.antialias, self.crop_to_aspect_ratio,
                                self.pad_to_aspect_ratio, self.fill_value)

        outputs = self._batched(x, run)
        if integer:  # Keras: round, then saturate into the input's integer dtype
            info = torch.iinfo(inputs.dtype)
            outputs = outputs.round().clamp(info.min, info.max).to(inputs.dtype)
        return outputs

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "antialias": self.antialias,
            "data_format": self.data_format,
        }


class CenterCrop(_ImageLayer):
    """Crops the central ``(height, width)`` window: ``x[top:top + height, left:left + width]``
    with ``top = (rows - height) // 2``, ``left = (cols - width) // 2``.

    When the input is smaller than the target on either axis, Keras crops the largest centred
    window of the target's aspect ratio and resizes it bilinearly to ``(height, width)``
    (``keras.utils.smart_resize``); so does this layer. Inputs are cast to the layer's dtype.

    Args:
        height: positive int, the output height.
        width: positive int, the output width.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, rows, cols, channels)`` or unbatched ``(rows, cols, channels)``
        (channels first with ``channels_first``).

    Output shape:
        ``(batch, height, width, channels)`` (or unbatched, or channels first).

    Example:
        >>> CenterCrop(4, 5)(torch.randn(2, 7, 9, 3)).shape
        torch.Size([2, 4, 5, 3])
    """

    def __init__(self, height: int, width: int, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_image(height, width, data_format)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs.to(self.compute_dtype)

        def run(images: torch.Tensor) -> torch.Tensor:
            h_axis, w_axis, _ = self._axes(images.ndim)
            height, width = images.shape[h_axis], images.shape[w_axis]
            if height >= self.height and width >= self.width:
                top, left = (height - self.height) // 2, (width - self.width) // 2
                return images.narrow(h_axis, top, self.height).narrow(w_axis, left, self.width)
            return self._resize(images, "bilinear", False, crop=True, crop_in_float32=False)

        return self._batched(x, run)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}
