"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization, RMSNormalization."""

from __future__ import annotations

__all__: list[str] = []
