"""Resampling layers: UpSampling 1D/2D/3D, Resizing and CenterCrop, on one set of TF-exact resize ops."""

from __future__ import annotations

__all__: list[str] = []
