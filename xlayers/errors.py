"""Exceptions raised by xlayers.

Every message follows one grammar: the layer (or argument, or weight) in backticks,
what was expected, then ``Received: name=value``. ``ValueError`` subclasses are for bad
values and shapes, ``TypeError`` subclasses for wrong types, so callers that catch the
builtin exceptions keep working.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "ExportError",
    "FileFormatError",
    "InputShapeError",
    "InputDtypeError",
    "InputDeviceError",
    "NotBuiltError",
    "UnknownNameError",
    "WeightShapeError",
    "WeightNameError",
]


class ArgumentError(ValueError):
    """A constructor or call argument has a bad value."""


class ArgumentTypeError(TypeError):
    """A constructor or call argument has the wrong type."""


class ExportError(ValueError):
    """A module cannot be exported (a configuration ONNX cannot express, or a graph that
    disagrees with torch); nothing was written."""


class InputShapeError(ValueError):
    """An input has the wrong rank or a feature size other than the built one."""


class InputDtypeError(TypeError):
    """An input has a dtype the layer cannot compute in (e.g. integers for a float layer)."""


class NotBuiltError(ValueError):
    """The layer has no weights yet: call it once, or pass ``input_shape=``."""


class InputDeviceError(ValueError):
    """An input lives on a device other than the layer's weights."""


class UnknownNameError(ValueError):
    """A name (activation, initializer, ...) is not one xlayers knows; the message lists the valid ones."""


class WeightShapeError(ValueError):
    """A weight given to a layer has a shape other than the declared one."""


class WeightNameError(ValueError):
    """A weight name or path is missing, or not declared by the layer."""


class WeightDtypeError(TypeError):
    """Weights given to a layer would not share one floating dtype."""


class FileFormatError(ValueError):
    """A file that cannot be read as what it claims to be (a truncated zip, a corrupt HDF5, a
    config that is not a Keras serialization)."""
