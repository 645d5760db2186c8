"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, ZeroPadding 1D/2D/3D, Cropping 1D/2D/3D."""

from __future__ import annotations

__all__: list[str] = []
