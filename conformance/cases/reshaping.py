"""Cases for `xlayers/layers/reshaping.py`."""

from __future__ import annotations

from ..case import LayerInfo

LAYERS: tuple[LayerInfo, ...] = ()
