"""Planted faults in `xlayers/layers/image.py`."""

from __future__ import annotations

from .plant import Plant

PLANTS: tuple[Plant, ...] = ()
