"""Planted faults in `xlayers/layers/image.py` (its resize math lives in `xlayers/layers/image_ops.py`)."""

from __future__ import annotations

from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

from xlayers.layers import image, image_ops

from .plant import Plant


def _patch_interpolate(**changes: Any) -> ContextManager[Any]:
    """Patch the ``F.interpolate`` call of the TF-equal fast path (bilinear, nearest) with other flags."""

    def planted(images: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
        if method == "bilinear":
            return F.interpolate(images, size=size, mode="bilinear", **{"align_corners": False, **changes.get("bilinear", {})})
        return F.interpolate(images, size=size, **{"mode": "nearest-exact", **changes.get("nearest", {})})

    return mock.patch.object(image, "_interpolate", planted)


def _resize_bilinear_align_corners() -> ContextManager[Any]:
    # torch's F.interpolate(align_corners=True) / TF1's resize_bilinear(align_corners=True): corners map to corners
    return _patch_interpolate(bilinear={"align_corners": True})


def _resize_bicubic_torch_a() -> ContextManager[Any]:
    return mock.patch.object(image_ops, "bicubic_weights", lambda i, o: image_ops._bicubic(i, o, -0.75))


def _resize_nearest_floor() -> ContextManager[Any]:
    # torch's legacy mode="nearest": floor(o * in / out), no half-pixel offset
    return _patch_interpolate(nearest={"mode": "nearest"})


def _resize_crop_from_corner() -> ContextManager[Any]:
    original = image_ops.crop_box

    def corner(*args: Any, **kwargs: Any) -> tuple[int, int, int, int]:
        _, crop_height, _, crop_width = original(*args, **kwargs)
        return 0, crop_height, 0, crop_width

    return mock.patch.object(image_ops, "crop_box", corner)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "resize-bilinear-align-corners",
        "bilinear resize with align_corners=True (torch's option, TF1's resize_bilinear default) instead of TF2's "
        "half-pixel centers: every interior sample shifts",
        ("resizing/bilinear-nhwc-7x9-to-5x13", "up_sampling2d/bilinear-2x3-nhwc"),
        _resize_bilinear_align_corners,
    ),
    Plant(
        "resize-bicubic-torch-a",
        "bicubic with torch's Keys coefficient a=-0.75 (F.interpolate(mode='bicubic')) instead of TF's a=-0.5",
        ("resizing/bicubic-nhwc-7x9-to-5x13", "up_sampling2d/bicubic-2x3-nhwc"),
        _resize_bicubic_torch_a,
    ),
    Plant(
        "resize-nearest-floor",
        "nearest neighbour as torch's legacy mode='nearest' (floor(o * in / out)) instead of TF2's half-pixel "
        "rounding floor((o + 0.5) * in / out)",
        ("resizing/nearest-nhwc-7x9-to-5x13", "resizing/nearest-nchw-7x9-to-5x13"),
        _resize_nearest_floor,
    ),
    Plant(
        "resize-crop-from-corner",
        "crop_to_aspect_ratio taking the window from the top-left corner instead of the centre",
        ("resizing/crop-nhwc-7x15-to-5x6", "resizing/crop-bicubic-nhwc-15x7-to-6x5"),
        _resize_crop_from_corner,
    ),
)
