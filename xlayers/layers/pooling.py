"""Pooling layers: MaxPooling/AveragePooling 1D/2D/3D (TF 'same'), global and adaptive pooling."""

from __future__ import annotations

__all__: list[str] = []
