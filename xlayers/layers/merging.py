"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and their functional forms."""

from __future__ import annotations

__all__: list[str] = []
