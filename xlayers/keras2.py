"""Keras 2 (tf_keras) model configs, normalised to the Keras 3 form xlayers reads.

Keras 3.15 loads few of the files tf_keras 2.x writes; what differs is the config (see
``../shared/notes/keras-files.md``), and :func:`normalize` rewrites it:

- ``inbound_nodes`` as lists of ``[layer, node, tensor, kwargs]`` become ``{"args", "kwargs"}``
  with ``__keras_tensor__`` references; a call on several tensors passes them as one list;
- a nested model's calls are numbered from 1 in Keras 2 (its node 0 is its own graph) and
  from 0 in Keras 3;
- mixed-precision ``Policy`` dicts become the policy's name; ``batch_input_shape`` is dropped
  from layers that are not inputs; what a layer class changes is declared beside it
  (``KERAS2_DROPPED``, `Layer.from_keras2_config`): RNNs' ``time_major`` and ``implementation``,
  Embedding's ``input_length``, ``groups`` of depthwise and transposed convolutions,
  MultiHeadAttention's ``*_shape`` keys, BatchNormalization's list ``axis``, InputLayer's
  ``batch_input_shape``;
- the private layers of ``keras.applications``, which tf_keras's ``.h5`` files name
  ``Custom>CustomScaleLayer``, get their class name back;
- ``TFOpLambda`` / ``SlicingOpLambda`` nodes (``tf.math.multiply``, ``tf.__operators__.getitem``)
  become the Keras 3 operation nodes of `xlayers.ops` (an unknown one is named, with its layer).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .errors import ArgumentError
from .layer import _LAYER_CLASSES

__all__ = ["TF_FUNCTIONS", "is_keras2_config", "normalize"]

# tf function name -> (xlayers.ops key, the call's tensor arguments in order, config renames)
TF_FUNCTIONS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    **{name: ("numpy.Add", ("x", "y"), {}) for name in ("math.add", "__operators__.add", "compat.v1.math.add")},
    **{name: ("numpy.Subtract", ("x", "y"), {}) for name in ("math.subtract", "__operators__.sub")},
    **{name: ("numpy.Multiply", ("x", "y"), {}) for name in ("math.multiply", "__operators__.mul")},
    **{name: ("numpy.TrueDivide", ("x", "y"), {}) for name in ("math.truediv", "__operators__.truediv", "math.divide")},
    "math.maximum": ("numpy.Maximum", ("x", "y"), {}),
    "math.minimum": ("numpy.Minimum", ("x", "y"), {}),
    "math.not_equal": ("numpy.NotEqual", ("x", "y"), {}),
    "math.equal": ("numpy.Equal", ("x", "y"), {}),
    "math.negative": ("numpy.Negative", ("x",), {}),
    "math.sqrt": ("numpy.Sqrt", ("x",), {}),
    "math.exp": ("numpy.Exp", ("x",), {}),
    "math.tanh": ("numpy.Tanh", ("x",), {}),
    "math.sigmoid": ("nn.Sigmoid", ("x",), {}),
    "nn.relu": ("nn.Relu", ("features",), {}),
    "nn.relu6": ("nn.Relu6", ("features",), {}),
    "nn.silu": ("nn.Silu", ("features",), {}),
    "nn.softmax": ("nn.Softmax", ("logits",), {"axis": "axis"}),
    "math.reduce_mean": ("numpy.Mean", ("input_tensor",), {"axis": "axis", "keepdims": "keepdims"}),
    "math.reduce_sum": ("numpy.Sum", ("input_tensor",), {"axis": "axis", "keepdims": "keepdims"}),
    "math.reduce_max": ("numpy.Max", ("input_tensor",), {"axis": "axis", "keepdims": "keepdims"}),
    "math.reduce_any": ("numpy.Any", ("input_tensor",), {"axis": "axis", "keepdims": "keepdims"}),
    "reshape": ("numpy.Reshape", ("tensor",), {"shape": "newshape"}),
    "compat.v1.transpose": ("numpy.Transpose", ("a",), {"perm": "axes"}),
    "transpose": ("numpy.Transpose", ("a",), {"perm": "axes"}),
    "expand_dims": ("numpy.ExpandDims", ("input",), {"axis": "axis"}),
    "cast": ("core.Cast", ("x",), {"dtype": "dtype"}),
    "__operators__.getitem": ("numpy.GetItem", ("x",), {}),
}

_MODEL_CLASSES = ("Functional", "Model", "Sequential")
APPLICATIONS_MODULE = "keras.src.applications."  # where Keras keeps the applications' private layers


def is_keras2_config(config: Mapping[str, Any]) -> bool:
    """Whether a model config was written by Keras 2 (its nodes are lists, not ``{"args", "kwargs"}``)."""
    for entry in config.get("config", {}).get("layers", []) if isinstance(config.get("config"), Mapping) else []:
        nodes = entry.get("inbound_nodes") or []
        if nodes:
            return isinstance(nodes[0], list)
        if "batch_input_shape" in entry.get("config", {}):
            return True
    return False


def normalize(config: Mapping[str, Any]) -> dict[str, Any]:
    """A Keras 2 model config (``{"class_name", "config"}``) in the Keras 3 form."""
    config = copy.deepcopy(dict(config))
    config.pop("module", None)
    if config.get("class_name") == "Model":
        config["class_name"] = "Functional"
    inner = config["config"]
    if config["class_name"] == "Sequential":
        inner["layers"] = [_layer_entry(entry, set()) for entry in inner.get("layers", [])]
        first = inner["layers"][0]["config"] if inner["layers"] else {}
        if "batch_input_shape" in first:
            inner["build_input_shape"] = first["batch_input_shape"]
        for entry in inner["layers"]:
            entry["config"].pop("batch_input_shape", None)
        return config
    models = {e["name"] for e in inner["layers"] if e.get("class_name") in _MODEL_CLASSES}
    inner["layers"] = [_layer_entry(entry, models) for entry in inner["layers"]]
    for key in ("input_layers", "output_layers"):
        references = _references(inner[key], models)
        # Keras 2 lists even a lone input or output; a model of one takes and gives a bare tensor
        inner[key] = references[0] if isinstance(references, list) and len(references) == 1 and _is_reference(references[0]) else references
    return config


def _references(value: Any, models: set[str]) -> Any:
    """``[layer, node, tensor]`` references with a nested model's node renumbered from 0."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
        return [value[0], value[1] - 1 if value[0] in models else value[1], value[2]]
    if isinstance(value, list):
        return [_references(v, models) for v in value]
    if isinstance(value, Mapping):
        return {k: _references(v, models) for k, v in value.items()}
    return value


def _tensor(reference: list[Any], models: set[str]) -> dict[str, Any]:
    name, node, index = _references(reference[:3], models)
    return {"class_name": "__keras_tensor__", "config": {"shape": None, "dtype": None, "keras_history": [name, node, index]}}


def _is_reference(value: Any) -> bool:
    return isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str) and isinstance(value[1], int) \
        and isinstance(value[2], int)


def _layer_config(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """A layer's Keras 2 config in Keras 3's form: what every layer shares here (a ``Policy``
    dict becomes its name; ``batch_input_shape``, which Keras 2 let any first layer carry, goes),
    then what its own class changes (`Layer.from_keras2_config`, declared beside the layer)."""
    config = dict(config)
    dtype = config.get("dtype")
    if isinstance(dtype, Mapping) and dtype.get("class_name") == "Policy":
        config["dtype"] = dtype.get("config", {}).get("name")
    klass = _LAYER_CLASSES.get(class_name)
    if klass is not None:
        config = klass.from_keras2_config(config)
    config.pop("batch_input_shape", None)
    for key in ("layer", "backward_layer", "cell"):  # wrapped layers
        if isinstance(config.get(key), Mapping) and "class_name" in config[key]:
            nested = config[key]
            config[key] = {"module": "keras.layers", "class_name": nested["class_name"],
                           "config": _layer_config(nested["class_name"], nested.get("config", {})), "registered_name": None}
    if "cells" in config:
        config["cells"] = [{"module": "keras.layers", "class_name": c["class_name"], "config": _layer_config(c["class_name"], c["config"]),
                            "registered_name": None} for c in config["cells"]]
    return config


def _class_name(class_name: str) -> str:
    """The class name, less the ``Custom>`` package tf_keras's ``.h5`` files give the private
    layers of ``keras.applications`` (``Custom>CustomScaleLayer``); a user's registered layer
    keeps its package (it needs ``custom_objects``)."""
    package, _, short = class_name.rpartition(">")
    known = _LAYER_CLASSES.get(short)
    if package and known is not None and known.KERAS_MODULE.startswith(APPLICATIONS_MODULE):
        return short
    return class_name


def _layer_entry(entry: Mapping[str, Any], models: set[str]) -> dict[str, Any]:
    class_name = _class_name(entry["class_name"])
    name = entry.get("name") or entry.get("config", {}).get("name")
    if class_name in ("TFOpLambda", "SlicingOpLambda"):
        return _operation_entry(entry, models)
    if class_name == "Lambda":
        raise ArgumentError(
            f"layer '{name}' is a `Lambda`: its config holds marshalled Python bytecode, which xlayers never executes. "
            "Map it to your own layer with `custom_objects`."
        )
    out: dict[str, Any] = {"module": "keras.layers", "class_name": class_name, "registered_name": None, "name": name}
    if class_name in _MODEL_CLASSES:
        out["config"] = normalize({"class_name": class_name, "config": entry["config"]})["config"]
        out["class_name"] = "Functional" if class_name == "Model" else class_name
    else:
        out["config"] = _layer_config(class_name, entry.get("config", {}))
    nodes = []
    for node in entry.get("inbound_nodes", []):
        tensors = [_tensor(ref, models) for ref in node]
        kwargs = {k: (_tensor(v, models) if _is_reference(v) else v) for k, v in (node[0][3] if node and len(node[0]) > 3 else {}).items()}
        nodes.append({"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs})
    out["inbound_nodes"] = nodes
    return out


def _operation_entry(entry: Mapping[str, Any], models: set[str]) -> dict[str, Any]:
    config = entry.get("config", {})
    function = config.get("function")
    name = entry.get("name") or config.get("name")
    if function not in TF_FUNCTIONS:
        raise ArgumentError(
            f"layer '{name}' calls tf.{function}, which has no xlayers translation; known: {sorted(TF_FUNCTIONS)}."
        )
    key, tensor_arguments, renames = TF_FUNCTIONS[function]
    module, class_name = key.split(".")
    op_config: dict[str, Any] = {"name": name}
    nodes = []
    for node in entry.get("inbound_nodes", []):
        first, kwargs = node[:3], dict(node[3]) if len(node) > 3 else {}
        kwargs.pop("name", None)
        args: list[Any] = [_tensor(first, models)]
        for argument in tensor_arguments[1:]:
            value = kwargs.pop(argument, None)
            args.append(_tensor(value, models) if _is_reference(value) else value)
        if class_name == "GetItem":
            args.append([{"class_name": "__slice__", "config": s} if isinstance(s, Mapping) and "start" in s else s
                         for s in kwargs.pop("slice_spec")])
        for source, target in renames.items():
            if source in kwargs:
                op_config[target] = kwargs.pop(source)
        nodes.append({"args": args, "kwargs": {}})
    return {"module": f"keras.src.ops.{module}", "class_name": class_name, "config": op_config,
            "registered_name": class_name, "name": name, "inbound_nodes": nodes}
