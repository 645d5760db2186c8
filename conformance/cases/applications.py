"""Cases for `xlayers/layers/applications.py`: ``keras.applications``' private LayerScale
(ConvNeXt) and CustomScaleLayer (InceptionResNetV2).

Keras keeps these classes in its application modules, not in ``keras.layers``: the twin is built
from the module their serialization names (``KERAS_MODULE``).
"""

from __future__ import annotations

from xlayers import CustomScaleLayer, LayerScale
from xlayers.errors import InputShapeError

from ..case import Case, ErrorCase, LayerInfo

LAYER_SCALE = (
    Case(LayerScale, "image-5", {"init_values": 0.3, "projection_dim": 5}, (2, 3, 4, 5), dtypes=("float32", "float64")),
    Case(LayerScale, "sequence-6", {"init_values": 1e-6, "projection_dim": 6}, (3, 7, 6)),
)

CUSTOM_SCALE = (
    Case(CustomScaleLayer, "scale-0.17", {"scale": 0.17}, [(3, 5, 4, 6), (3, 5, 4, 6)], dtypes=("float32", "float64")),
    Case(CustomScaleLayer, "scale-1", {"scale": 1.0}, [(2, 7), (2, 7)]),
)

LAYER_SCALE_ERRORS = (
    ErrorCase("channels", {"init_values": 0.1, "projection_dim": 3}, InputShapeError,
              r"^`LayerScale` layer 'layer_scale': the input's last axis must have `projection_dim` \(3\) channels", (2, 4)),
)

CUSTOM_SCALE_ERRORS = (
    ErrorCase("one-input", {"scale": 0.5}, InputShapeError,
              r"^`CustomScaleLayer` layer 'custom_scale_layer': expected a list of two inputs", (2, 4)),
)

LAYERS = (
    LayerInfo(LayerScale, LAYER_SCALE, LAYER_SCALE_ERRORS, onnx_group=lambda case: "mul"),
    LayerInfo(CustomScaleLayer, CUSTOM_SCALE, CUSTOM_SCALE_ERRORS, onnx_group=lambda case: "add-mul"),
)
