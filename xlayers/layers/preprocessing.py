"""Preprocessing layers that live inside models: Rescaling and Normalization."""

from __future__ import annotations

__all__: list[str] = []
