"""The reference: the Keras (TensorFlow backend) twin of an xlayers layer.

``keras_twin(layer)`` builds the ``keras.layers`` class of the same name from the xlayers
layer's ``get_config()`` (the two share Keras's argument names) and gives it the same
weights through Keras's public ``set_weights``, in Keras's order and layout.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["keras", "keras_call", "keras_twin", "keras_twin_from_config", "unwrap"]


def keras() -> Any:
    """The ``keras`` module on the TF backend (imported on first use: TF is heavy)."""
    import keras as _keras

    # TF's Python logger warns on every call of Keras's grouped convolution, which recompiles its XLA
    # function each time ("triggered tf.function retracing"): true, and nothing a user can act on.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    if _keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"The Keras reference must run on the TensorFlow backend. Received: backend={_keras.backend.backend()!r}.")
    return _keras


class ChannelsFirstTwin:
    """TF's CPU convolutions take NHWC only: a ``channels_first`` layer is checked against the
    ``channels_last`` Keras layer applied between two transposes, which is Keras's own
    definition of ``channels_first`` (the kernel layout does not depend on it)."""

    def __init__(self, twin: Any) -> None:
        self.twin = twin

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        import tensorflow as tf

        rank = len(inputs.shape)
        to_last = [0, *range(2, rank), 1]
        to_first = [0, rank - 1, *range(1, rank - 1)]
        return tf.transpose(self.twin(tf.transpose(inputs, to_last), **kwargs), to_first)

    def get_config(self) -> dict[str, Any]:
        """The configuration of the layer this twin stands for (``channels_first``)."""
        return {**self.twin.get_config(), "data_format": "channels_first"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.twin, name)


def unwrap(twin: Any) -> Any:
    """The Keras layer inside a twin (a `ChannelsFirstTwin` wraps one)."""
    return twin.twin if isinstance(twin, ChannelsFirstTwin) else twin


def keras_twin(layer: Any) -> Any:
    """A built Keras layer with ``layer``'s configuration and weights (copied by name)."""
    from .transfer import to_keras

    twin = keras_twin_from_config(layer)
    to_keras(layer, twin)
    return twin


def keras_twin_from_config(layer: Any, dtype: str | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """A built Keras layer with ``layer``'s configuration (and Keras's own initial weights).

    ``overrides`` (a case's constructor arguments) win over ``layer.get_config()``, so a layer
    that misreports its own configuration cannot make its reference agree with it.
    """
    import importlib

    from keras.src.backend.common import global_state

    module = keras()
    name = type(layer).__name__
    # Keras's class of the same name, from `keras.layers` or the module its serialization names
    # (`keras.src.applications.convnext` for LayerScale)
    klass = getattr(module.layers, name, None) or getattr(importlib.import_module(type(layer).KERAS_MODULE), name)
    # a weight made without a name is named from a process-wide counter (`variable`, `variable_1`,
    # ...): cleared, so the twin's is `variable`, as in a fresh process
    global_state.get_global_attribute("object_name_uids", {}).pop("variable", None)
    config = {**layer.get_config(), **(overrides or {})}
    if dtype is not None:
        config["dtype"] = dtype
    shape = layer._build_shape
    channels_first = config.get("data_format") == "channels_first"
    if channels_first:
        config["data_format"] = "channels_last"
        shape = (shape[0], *shape[2:], shape[1])
    twin = klass.from_config(config)
    build = layer.get_build_config() or {}
    if "shapes_dict" in build:  # built from several named shapes (MultiHeadAttention's query, value, key)
        twin.build_from_config(build)
    else:
        twin.build(shape)
    return ChannelsFirstTwin(twin) if channels_first else twin


def keras_call(twin: Any, inputs: np.ndarray | Sequence[np.ndarray], **kwargs: Any) -> list[np.ndarray]:
    """Call ``twin`` and return every output as a numpy array (states included)."""
    import tensorflow as tf

    converted = {k: (tf.constant(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    if "initial_state" in converted and isinstance(converted["initial_state"], (list, tuple)):
        converted["initial_state"] = [tf.constant(s) for s in converted["initial_state"]]
    outputs = twin(tf.constant(inputs), **converted)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(o) for o in outputs]
