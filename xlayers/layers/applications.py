"""Layers private to ``keras.applications``, built in so its models port: ConvNeXt's
``LayerScale`` and InceptionResNetV2's ``CustomScaleLayer``.

Keras serializes them with ``module: "keras.src.applications.<model>"`` and
``registered_name`` set to the class name (Keras 2 ``.h5`` files leave ``module`` out); they
are recognised by that class name, as Keras's own loader does, and nothing from the file is
executed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .. import initializers
from ..errors import InputShapeError
from ..layer import Layer, Shape
from ..layout import Weight

__all__ = ["CustomScaleLayer", "LayerScale"]


class LayerScale(Layer):
    """Scales each channel by a learned factor: ``outputs = inputs * variable`` (ConvNeXt).

    Keras's ``keras.src.applications.convnext.LayerScale``; torch: one broadcast multiply on
    the channels-last input. Keras creates the weight with ``add_weight`` and no name, so its
    name (and the last part of its path) is ``variable``; tf_keras names it ``gamma`` (files
    are read by position, so both load).

    Args:
        init_values: the factor every channel starts with.
        projection_dim: the number of channels (the input's last axis).
        **kwargs: base `Layer` arguments.

    Input shape:
        ``(batch, ..., projection_dim)``.

    Output shape:
        the input's.

    Weights:
        variable: ``(channels,)``; the same in torch.

    Example:
        >>> layer = LayerScale(1e-6, 4)
        >>> layer(torch.ones(2, 3, 3, 4)).shape, tuple(layer.variable.shape)
        (torch.Size([2, 3, 3, 4]), (4,))
    """

    KERAS_MODULE = "keras.src.applications.convnext"
    KERAS_REGISTERED_NAME = "LayerScale"
    LAYOUT = (Weight("variable", ("channels",)),)

    def __init__(self, init_values: float, projection_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = int(projection_dim)

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        return initializers.Constant(self.init_values)

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        if input_shape[-1] not in (None, self.projection_dim):
            raise InputShapeError(
                f"the input's last axis must have `projection_dim` ({self.projection_dim}) channels. "
                f"Received: input shape={tuple(input_shape)}."
            )
        return {"channels": self.projection_dim}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * self.variable

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init_values": self.init_values, "projection_dim": self.projection_dim}


class CustomScaleLayer(Layer):
    """Adds a scaled residual: ``outputs = inputs[0] + inputs[1] * scale`` (InceptionResNetV2).

    Keras's ``keras.src.applications.inception_resnet_v2.CustomScaleLayer``; no weights.

    Args:
        scale: the residual's factor.
        **kwargs: base `Layer` arguments.

    Input shape:
        a list of two tensors of the same shape.

    Output shape:
        their shape.

    Example:
        >>> CustomScaleLayer(0.5)([torch.ones(2, 3), torch.full((2, 3), 4.0)])[0]
        tensor([3., 3., 3.])
    """

    KERAS_MODULE = "keras.src.applications.inception_resnet_v2"
    KERAS_REGISTERED_NAME = "CustomScaleLayer"

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, input_shape: Any) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 \
                or not all(isinstance(s, (list, tuple, torch.Size)) for s in input_shape):
            raise InputShapeError(f"expected a list of two inputs. Received: input shape={input_shape}.")

    def call(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return inputs[0] + inputs[1] * self.scale

    def compute_output_shape(self, input_shape: Any) -> Shape:
        return tuple(input_shape[0])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}
