"""Cases for `xlayers/layers/regularization.py`."""

from __future__ import annotations

from ..case import LayerInfo

LAYERS: tuple[LayerInfo, ...] = ()
