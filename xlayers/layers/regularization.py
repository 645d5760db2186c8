"""Regularization layers: Dropout, SpatialDropout 1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization."""

from __future__ import annotations

__all__: list[str] = []
