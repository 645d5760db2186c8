"""Cases for `xlayers/layers/activations.py`."""

from __future__ import annotations

from ..case import LayerInfo

LAYERS: tuple[LayerInfo, ...] = ()
