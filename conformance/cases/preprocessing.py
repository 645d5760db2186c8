"""Cases for `xlayers/layers/preprocessing.py`."""

from __future__ import annotations

from ..case import LayerInfo

LAYERS: tuple[LayerInfo, ...] = ()
