"""Cases for `xlayers/layers/merging.py`."""

from __future__ import annotations

from ..case import LayerInfo

LAYERS: tuple[LayerInfo, ...] = ()
