"""Wrappers: `Bidirectional` (a recurrent layer run both ways) and `TimeDistributed` (a layer
applied to every time slice), as ``keras.layers.Bidirectional`` and ``keras.layers.TimeDistributed``.

Both hold their sub-layers as attributes, so their weights walk under Keras's paths
(``forward_layer/cell/kernel``, ``backward_layer/cell/kernel``, ``layer/kernel``), and both
take the wrapped layer as an xlayers layer or as the serialized config Keras writes
(``{"module": "keras.layers", "class_name": "LSTM", "config": {...}}``), which is what
their ``get_config`` gives and ``from_config`` reads.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import ArgumentError, ArgumentTypeError, InputShapeError, WeightDtypeError, WeightShapeError
from ..layer import InputSpec, Layer, Shape, dtype_name, get_layer_class, map_structure
from .bidirectional_ops import fused_bidirectional
from .recurrent import GRU, LSTM, SimpleRNN
from .recurrent_ops import fused_lstm_supported, is_activation

__all__ = ["Bidirectional", "TimeDistributed"]

MERGE_MODES = ("concat", "sum", "mul", "ave", None)
_RECURRENT_ATTRIBUTES = ("go_backwards", "return_sequences", "return_state", "stateful")


def serialize_layer(layer: Layer) -> dict[str, Any]:
    """``layer`` as Keras's ``serialize_keras_object`` writes a built-in layer: what Keras's
    wrappers' ``from_config`` deserializes (``module`` and ``class_name`` locate the class)."""
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(), "registered_name": None}


def deserialize_layer(value: Any, argument: str) -> Layer:
    """An xlayers layer from a layer (kept as it is) or from a serialized config (a new layer)."""
    if isinstance(value, Layer):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("class_name"), str):
        return get_layer_class(value["class_name"]).from_config(dict(value.get("config") or {}))
    raise ArgumentTypeError(
        f"`{argument}` must be an xlayers layer or its serialized config (a dict with `class_name` and `config`). "
        f"Received: {argument}={value!r}."
    )


def _takes(layer: Layer, argument: str) -> bool:
    return argument in inspect.signature(layer.call).parameters


_LABEL = re.compile(r"^`\w+` layer '[^']*': ")


class Wrapper(Layer):
    """What both wrappers share: sub-layers that own every weight. Errors about those weights name
    the wrapper (the layer the user called) and the weight's path inside it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.register_load_state_dict_pre_hook(Wrapper._check_nested_load)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the sub-layers' weights from arrays in Keras's order (``walk_weights``), all checked first."""
        try:
            super().set_weights(weights)
        except (WeightShapeError, ArgumentTypeError) as error:
            raise type(error)(f"{self._label}: {_LABEL.sub('', str(error))}") from None

    @staticmethod
    def _check_nested_load(wrapper: Layer, state_dict: Mapping, prefix: str, local_metadata: Mapping, *args: Any) -> None:
        """Before an ``assign=True`` load reaches the sub-layers: refuse one that would leave a
        sub-layer's weights in different dtypes, naming the keys as the wrapper's state dict has them."""
        if not local_metadata.get("assign_to_params_buffers"):
            return
        for name, module in wrapper.named_modules():
            if module is wrapper or not isinstance(module, Layer):
                continue
            keys = [f"{name}.{weight}" for weight in module._weight_names if f"{prefix}{name}.{weight}" in state_dict]
            dtypes = {key: getattr(state_dict[prefix + key], "dtype", None) for key in keys}
            if len(set(dtypes.values())) > 1:
                found = ", ".join(f"{key} {dtype_name(d) if d is not None else 'not a tensor'}" for key, d in dtypes.items())
                raise WeightDtypeError(
                    f"{wrapper._label}: `load_state_dict(assign=True)` would give the weights of `{name}` these dtypes: "
                    f"{found}; they must share one floating dtype. Cast the state dict first, or load without "
                    f"`assign=True` (values are then copied into the existing weights' dtype)."
                )


class Bidirectional(Wrapper):
    """Bidirectional wrapper for recurrent layers, as ``keras.layers.Bidirectional``.

    Two copies of ``layer`` read the sequence: ``forward_layer`` in order and
    ``backward_layer`` reversed (``go_backwards=True``, the mask reversed with it); the backward
    outputs are flipped back to input order (with ``return_sequences``) and merged with the
    forward ones::

        y = merge(forward(x), flip_time(backward(x)))    # concat: [y_f, y_b] on the last axis

    As in Keras, both copies are new layers made from ``layer``'s config (named
    ``forward_<name>`` and ``backward_<name>``; ``layer``'s own weights are not used), and
    with ``return_sequences`` both output zeros at masked steps (Keras forces
    ``zero_output_for_mask=return_sequences`` on both).

    Two LSTMs, GRUs or SimpleRNNs of one configuration on their fused kernels, called without a
    mask, dropout draws or carried states, run as one call of torch's kernel with
    ``bidirectional=True`` (``aten::lstm``/``gru``/``rnn_*``: its second direction reads the
    reversed sequence and writes back in input order, which is Keras's flipped backward output;
    ``last_path == "bidirectional"``). Anything else runs the two layers, each on its own path
    (``last_path`` gives both: ``"fused"``, ``"loop"``, ``"fused+loop"``).

    An ONNX export of two such layers (a mask taken as right-padded, as every recurrent export
    takes it) is ONE recurrent node with ``direction="bidirectional"`` (the forward layer's
    ``onnx_bidirectional`` op: weights ``[forward, backward]``, the mask's lengths as
    ``sequence_lens``), followed by the merge and the states in Keras's order; two layers that
    differ export as one node per direction.

    Args:
        layer: a recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, `RNN`, or any layer with
            ``go_backwards``, ``return_sequences``, ``return_state`` and ``stateful``), or its
            serialized config.
        merge_mode: how the two outputs combine: ``"concat"`` (default), ``"sum"``, ``"mul"``,
            ``"ave"``, or ``None`` (a list of the two).
        weights: optional initial weights, the forward layer's then the backward layer's, in
            Keras's order (set at build).
        backward_layer: optional layer for the backward direction (or its config): it must
            have ``go_backwards`` opposite to ``layer``'s and the same ``stateful``,
            ``return_sequences`` and ``return_state``. Used as it is.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, timesteps, features)``.
        mask: ``(batch, timesteps)`` booleans, ``True`` for steps to use (both directions).
        training: passed to both layers (dropout).
        initial_state: the forward layer's states, then the backward layer's (for LSTMs
            ``[h_f, c_f, h_b, c_b]``).

    Output shape:
        The wrapped layer's output with the last axis doubled (``concat``), the same
        (``sum``, ``mul``, ``ave``), or two outputs (``None``); with ``return_state``
        followed by the forward layer's states, then the backward layer's.

    Weights:
        forward_layer/...: the forward layer's weights (``forward_layer/cell/kernel``, ...).
        backward_layer/...: then the backward layer's, at the same paths under ``backward_layer``.

    Example:
        >>> from xlayers import LSTM
        >>> layer = Bidirectional(LSTM(8, return_sequences=True))
        >>> layer(torch.randn(4, 6, 3)).shape
        torch.Size([4, 6, 16])
        >>> [entry.path for entry in layer.walk_weights()][:2], layer.forward_layer.name.startswith("forward_lstm")
        (['forward_layer/cell/kernel', 'forward_layer/cell/recurrent_kernel'], True)
        >>> layer.last_path
        'bidirectional'
    """

    def __init__(
        self,
        layer: Layer | Mapping[str, Any],
        merge_mode: str | None = "concat",
        weights: Sequence[Any] | None = None,
        backward_layer: Layer | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        layer = deserialize_layer(layer, "layer")
        if backward_layer is not None:
            backward_layer = deserialize_layer(backward_layer, "backward_layer")
        for argument, value in (("layer", layer), ("backward_layer", backward_layer)):
            if value is not None and not all(hasattr(value, a) for a in _RECURRENT_ATTRIBUTES):
                raise ArgumentTypeError(
                    f"`{argument}` must be a recurrent layer (with `go_backwards`, `return_sequences`, `return_state` and "
                    f"`stateful`: `LSTM`, `GRU`, `SimpleRNN`, `RNN`). Received: {argument}=`{type(value).__name__}` layer "
                    f"'{value.name}'."
                )
        if merge_mode not in MERGE_MODES:
            raise ArgumentError(
                f"`merge_mode` must be one of 'concat', 'sum', 'mul', 'ave' or None. Received: merge_mode={merge_mode!r}."
            )
        # Fresh layers from the config, as Keras: the given layer's state (weights, carried states) is not reused.
        config = layer.get_config()
        config["name"] = f"forward_{layer.name.removeprefix('forward_')}"
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = True
            config["name"] = f"backward_{layer.name.removeprefix('backward_')}"
            backward_layer = type(layer).from_config(config)
        self.backward_layer = backward_layer
        if hasattr(layer, "use_cudnn"):  # Keras keeps it on both (it does not serialize it)
            self.forward_layer.use_cudnn = self.backward_layer.use_cudnn = layer.use_cudnn
        self._verify_layer_config()
        for sub in (self.forward_layer, self.backward_layer):
            if getattr(sub, "zero_output_for_mask", None) is not None:
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self._initial_weights = None if weights is None else list(weights)
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True
        self.input_spec = copy.copy(layer.input_spec)
        self._takes_mask = _takes(self.forward_layer, "mask")
        self._takes_training = _takes(self.forward_layer, "training")
        self._last_fused = False
        self._one_configuration = self._same_configuration()

    def _same_configuration(self) -> bool:
        """Whether the two layers differ only in name and direction (so one bidirectional kernel call
        can run both); checked once, at construction."""
        forward, backward = self.forward_layer, self.backward_layer
        if type(forward) not in _FUSED_KERNELS or type(backward) is not type(forward):
            return False
        try:
            return forward.get_config() | _SAME == backward.get_config() | _SAME
        except ArgumentError:  # an argument with no config form (a custom callable): not comparable
            return False

    def _verify_layer_config(self) -> None:
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ArgumentError(
                f"`backward_layer` must have `go_backwards` opposite to the forward layer's ({forward.go_backwards}). "
                f"Received: backward_layer.go_backwards={backward.go_backwards}."
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            if getattr(forward, attribute) != getattr(backward, attribute):
                raise ArgumentError(
                    f"`backward_layer` must have the same `{attribute}` as the forward layer ({getattr(forward, attribute)}). "
                    f"Received: backward_layer.{attribute}={getattr(backward, attribute)}."
                )

    # -- building ----------------------------------------------------------------------------

    def build(self, input_shape: Shape) -> None:  # the sub-layers hold every weight
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub._build(input_shape, device=self._build_device)
        self.input_spec = self.forward_layer.input_spec
        if self._initial_weights is not None:
            half = len(self._initial_weights) // 2
            self.forward_layer.set_weights(self._initial_weights[:half])
            self.backward_layer.set_weights(self._initial_weights[half:])
            self._initial_weights = None

    @property
    def dtype(self) -> torch.dtype:
        """The forward layer's weights' dtype (the wrapper holds no weights of its own)."""
        return self.forward_layer.dtype

    # -- states ------------------------------------------------------------------------------

    @property
    def states(self) -> list[torch.Tensor] | None:
        """The carried states of a ``stateful`` wrapper: the forward layer's, then the backward layer's."""
        forward, backward = self.forward_layer.states, self.backward_layer.states
        return [*forward, *backward] if forward and backward else None

    def state_shapes(self, batch: int) -> list[tuple[int | None, ...]]:
        """The shapes ``initial_state`` takes: the forward layer's states, then the backward layer's."""
        return [*self.forward_layer.state_shapes(batch), *self.backward_layer.state_shapes(batch)]

    def reset_state(self) -> None:
        """Zero the carried states of both directions (a ``stateful`` wrapper only)."""
        if not self.stateful:
            raise ArgumentError(f"{self._label}: `reset_state` needs a stateful layer. Received: stateful=False.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    @property
    def last_path(self) -> str | None:
        """The kernel path of the last call: ``"bidirectional"`` for one fused call of both directions,
        else the two directions' (``"fused"``, ``"loop"``), one word when they agree,
        ``"<forward>+<backward>"`` otherwise."""
        if self.__dict__.get("_last_fused"):
            return "bidirectional"
        forward, backward = getattr(self.forward_layer, "last_path", None), getattr(self.backward_layer, "last_path", None)
        return forward if forward == backward else f"{forward}+{backward}"

    # -- calling -------------------------------------------------------------------------------

    def call(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        training: bool | None = None,
        initial_state: Sequence[Any] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) % 2:
                received = f"{len(initial_state)} states" if isinstance(initial_state, (list, tuple)) else (
                    f"initial_state of type {type(initial_state).__name__}")
                raise ArgumentError(
                    f"`initial_state` must be a list of the forward layer's states then the backward layer's "
                    f"({len(self.state_shapes(1))} states). Received: {received}."
                )
            half = len(initial_state) // 2
            forward_state, backward_state = list(initial_state[:half]), list(initial_state[half:])
        kwargs: dict[str, Any] = {}
        if self._takes_mask:
            kwargs["mask"] = mask
        if self._takes_training:
            kwargs["training"] = training
        self._last_fused = False
        one_call = None
        if self._fusable(inputs, mask, training) or self._exports_as_one(inputs, training):
            one_call = self._one_call(inputs, mask, forward_state, backward_state)
        if one_call is not None:
            pair, states = one_call
            outputs = self._merge(*pair.unbind(-2))
        else:
            y, y_rev = self._directions(inputs, forward_state, backward_state, kwargs)
            states = []
            if self.return_state:
                states = self._states(list(y[1:]), list(y_rev[1:]))
                y, y_rev = y[0], y_rev[0]
            if self._compute_dtype is not None:  # a mixed policy: outputs in its half type, as Keras casts them
                y, y_rev = y.to(self._compute_dtype), y_rev.to(self._compute_dtype)
            if self.return_sequences:
                y_rev = self._to_input_order(y_rev)
            outputs = self._merge(y, y_rev)
        if self.return_state:
            return [*outputs, *states] if self.merge_mode is None else [outputs, *states]
        return outputs

    # -- one fused call for both directions ---------------------------------------------------

    def _one_call_ok(self, inputs: torch.Tensor, training: bool | None) -> bool:
        """Whether both directions can run as one bidirectional call of torch's fused kernel: two LSTMs,
        GRUs or SimpleRNNs of one configuration, each on its fused kernel, forward then backward; no
        dropout drawn, no carried states, no mixed policy or activity regularizer."""
        forward, backward = self.forward_layer, self.backward_layer
        if not self._one_configuration or self.stateful:
            return False
        if forward.go_backwards or not backward.go_backwards or not forward.fused_ok or not backward.fused_ok:
            return False
        training = self.training if training is None else bool(training)
        if training and any((layer.dropout, layer.recurrent_dropout) != (0.0, 0.0) for layer in (forward, backward)):
            return False
        if forward._compute_dtype is not None or forward.activity_regularizer is not None or forward.use_cudnn is False:
            return False
        weight = forward._first_weight()
        return (inputs.is_floating_point() and weight is not None and inputs.device == weight.device
                and fused_lstm_supported(weight.dtype, inputs.device))

    def _fusable(self, inputs: torch.Tensor, mask: Any, training: bool | None) -> bool:
        """Whether this eager call runs as one bidirectional kernel call: :meth:`_one_call_ok`, without a mask."""
        if mask is not None or torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return False
        return self._one_call_ok(inputs, training)

    def _exports_as_one(self, inputs: torch.Tensor, training: bool | None) -> bool:
        """Whether this call, under export, becomes one op for both directions, which ONNX writes as one
        recurrent node with ``direction="bidirectional"`` (the forward layer's ``onnx_bidirectional``):
        :meth:`_one_call_ok`; a mask is taken as right-padded, as every recurrent export takes it."""
        return torch.compiler.is_exporting() and self._one_call_ok(inputs, training)

    def _one_call(self, inputs: torch.Tensor, mask: Any, forward_state: list[Any] | None,
                  backward_state: list[Any] | None) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        """``(pair, states)`` from one call for both directions: ``pair`` ``(batch[, time], 2, units)``,
        each direction's output as Keras's ``Bidirectional`` merges it (the backward sequence in input
        order), ``states`` as ``return_state`` gives them. Eager: torch's bidirectional kernel; under
        export, the forward layer's ``onnx_bidirectional`` op (a mask becomes its lengths; ``None`` when
        the layer has none: the two directions then run apart)."""
        forward, backward = self.forward_layer, self.backward_layer
        x = inputs.to(forward.dtype)
        initial = []
        for layer, given in ((forward, forward_state), (backward, backward_state)):
            states = layer._initial_states(x, given)
            initial.append(states if states is not None else [x.new_zeros(s) for s in layer.state_shapes(x.shape[0])])
        stacked = [torch.stack(pair) for pair in zip(*initial)]  # each (2, batch, units): forward, backward
        lengths = None if mask is None else torch.as_tensor(mask, device=x.device).sum(dim=1)
        if torch.compiler.is_exporting():
            exported = forward.onnx_bidirectional(backward, x, lengths, stacked)
            if exported is None:
                return None
            pair, final = exported
        else:
            kernel = _FUSED_KERNELS[type(forward)]
            if type(forward).__name__ == "SimpleRNN" and is_activation(forward.activation, "relu"):
                kernel = torch.rnn_relu
            pair, final = fused_bidirectional(kernel, x, stacked, [*_torch_params(forward), *_torch_params(backward)],
                                              forward.use_bias)
        if not self.return_sequences:  # each direction's last output is its final h (zero for an empty row)
            pair = final[0].transpose(0, 1)
            if lengths is not None:
                pair = torch.where((lengths > 0)[:, None, None], pair, pair.new_zeros(()))
        for layer in (forward, backward):
            layer.last_path, layer.last_dropout_masks = "fused", (None, None)
        self._last_fused = True
        return pair, self._states([state[0] for state in final], [state[1] for state in final])

    def _directions(self, inputs: torch.Tensor, forward_state: list[Any] | None, backward_state: list[Any] | None,
                    kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """Both layers' outputs (with their states under ``return_state``), each in its processing order."""
        y = self.forward_layer(inputs, initial_state=forward_state, **kwargs)
        y_rev = self.backward_layer(inputs, initial_state=backward_state, **kwargs)
        return y, y_rev

    @staticmethod
    def _states(forward: list[torch.Tensor], backward: list[torch.Tensor]) -> list[torch.Tensor]:
        """The states ``return_state`` gives: the forward layer's, then the backward layer's."""
        return [*forward, *backward]

    @staticmethod
    def _to_input_order(y_rev: torch.Tensor) -> torch.Tensor:
        """The backward sequence (processing order: last step first) in input order: flipped on time."""
        return y_rev.flip(1)

    def _merge(self, y: torch.Tensor, y_rev: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if self.merge_mode == "concat":
            return torch.cat([y, y_rev], dim=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / 2
        if self.merge_mode == "mul":
            return y * y_rev
        return [y, y_rev]

    # -- shapes, masks, config ---------------------------------------------------------------

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        output = self.forward_layer.compute_output_shape(input_shape)
        states: list[Shape] = []
        if self.return_state:
            output, states = output[0], list(output[1:])
        output = tuple(output)
        if self.merge_mode == "concat":
            output = (*output[:-1], None if output[-1] is None else 2 * output[-1])
        outputs = [output, output] if self.merge_mode is None else [output]
        if self.return_state:
            return [*outputs, *states, *states]
        return outputs if self.merge_mode is None else output

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask: Any = mask if self.return_sequences else None
        masks = [output_mask, output_mask] if self.merge_mode is None else [output_mask]
        if self.return_state:
            return [*masks, *(None for _ in self.state_shapes(1))]
        return masks if self.merge_mode is None else output_mask

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize_layer(self.forward_layer),
            "backward_layer": serialize_layer(self.backward_layer),
        }

    def extra_repr(self) -> str:  # the sub-layers print themselves
        parts = [f"name={self.name!r}"] + ([f"merge_mode={self.merge_mode!r}"] if self.merge_mode != "concat" else [])
        return ", ".join(parts + ([f"built_with={self._build_shape}"] if self.built else []))

    # -- export ------------------------------------------------------------------------------

    def export_refusal(self) -> str | None:
        return self.forward_layer.export_refusal() or self.backward_layer.export_refusal()

    def onnx_dynamic_axes(self) -> dict[int, str]:
        return {**self.forward_layer.onnx_dynamic_axes(), **self.backward_layer.onnx_dynamic_axes()}


# torch's fused recurrent kernels by layer class (a SimpleRNN with relu takes torch.rnn_relu), and the
# arguments two directions may differ in and still share one call.
_FUSED_KERNELS: dict[type, Any] = {LSTM: torch.lstm, GRU: torch.gru, SimpleRNN: torch.rnn_tanh}
_SAME = {"name": None, "go_backwards": None, "trainable": None}


def _torch_params(layer: Layer) -> list[torch.Tensor]:
    """One direction's weights as torch's kernels take them: ``w_ih, w_hh[, b_ih, b_hh]`` (a single Keras
    bias is ``b_ih`` with a zero ``b_hh``; a GRU's two bias rows are both)."""
    params = [layer.weight_view("kernel"), layer.weight_view("recurrent_kernel")]
    if layer.use_bias:
        bias = layer.weight_view("bias")
        params += [bias[0], bias[1]] if bias.dim() == 2 else [bias, torch.zeros_like(bias)]
    return params


class TimeDistributed(Wrapper):
    """Applies a layer to every temporal slice of an input, as ``keras.layers.TimeDistributed``.

    The time axis (axis 1) is folded into the batch, the wrapped layer runs once on
    ``(batch * timesteps, ...)``, and its output is unfolded::

        y[b, t] = layer(x[b, t])    # one call: layer(x.reshape(B * T, ...)).reshape(B, T, ...)

    The one exception is a training call of a layer with statistics it updates (a
    ``BatchNormalization``: non-trainable weights): Keras normalizes each time step with its own
    batch statistics and updates the moving averages once per step, so the wrapper then calls
    the layer once per time step, in order, as Keras does.

    Masks: a ``mask`` given to the wrapper (``(batch, timesteps, ...)``) reaches a wrapped layer
    whose ``call`` takes one, folded the same way; the wrapper's output mask is its input mask
    (Keras's ``TimeDistributed`` keeps the mask it was given and does not ask the wrapped layer).

    Args:
        layer: the layer to apply (an xlayers layer, used as it is: its weights are the
            wrapper's), or its serialized config.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, timesteps, ...)``, at least rank 3.
        training: passed to the wrapped layer if its ``call`` takes it.
        mask: ``(batch, timesteps, ...)``, passed (folded) to the wrapped layer if it takes one.

    Output shape:
        ``(batch, timesteps, *layer_output_shape[1:])``.

    Weights:
        layer/...: the wrapped layer's weights (``layer/kernel``, ``layer/bias`` for a `Dense`).

    Example:
        >>> from xlayers import Dense
        >>> layer = TimeDistributed(Dense(8))
        >>> layer(torch.randn(4, 6, 3)).shape
        torch.Size([4, 6, 8])
        >>> [(entry.path, tuple(entry.parameter.shape)) for entry in layer.walk_weights()]
        [('layer/kernel', (3, 8)), ('layer/bias', (8,))]
    """

    def __init__(self, layer: Layer | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = deserialize_layer(layer, "layer")
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=3)
        self._takes_mask = _takes(self.layer, "mask")
        self._takes_training = _takes(self.layer, "training")

    def _child_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 3:
            raise InputShapeError(
                f"expected an input of rank >= 3 (batch, timesteps, ...). Received: input shape={tuple(input_shape)}."
            )
        return (input_shape[0], *input_shape[2:])

    def build(self, input_shape: Shape) -> None:  # the sub-layers hold every weight
        if not self.layer.built:
            self.layer._build(self._child_shape(input_shape), device=self._build_device)

    @property
    def dtype(self) -> torch.dtype:
        """The wrapped layer's dtype (the wrapper holds no weights of its own)."""
        return self.layer.dtype

    def _updates_statistics(self) -> bool:
        """Whether the wrapped layer has weights a training call updates (moving statistics)."""
        return any(e.declaration is not None and not e.declaration.trainable for e in self.layer.walk_weights())

    def call(self, inputs: torch.Tensor, training: bool | None = None, mask: torch.Tensor | None = None) -> Any:
        batch, steps = inputs.shape[:2]
        kwargs: dict[str, Any] = {}
        if self._takes_training and training is not None:
            kwargs["training"] = training
        if mask is not None:
            mask = torch.as_tensor(mask, device=inputs.device)
            if mask.dim() < 2 or tuple(mask.shape[:2]) != (batch, steps):
                raise InputShapeError(
                    f"`mask` must have shape (batch, timesteps, ...) with (batch, timesteps) = {(batch, steps)}. "
                    f"Received: mask shape={tuple(mask.shape)}."
                )
        training = self.training if training is None else bool(training)
        if training and self._updates_statistics():  # per-step statistics and updates, as Keras
            per_step = []
            for step in range(steps):
                step_kwargs = dict(kwargs)
                if mask is not None and self._takes_mask:
                    step_kwargs["mask"] = mask[:, step]
                per_step.append(self.layer(inputs[:, step], **step_kwargs))
            return _stack_steps(per_step)
        if mask is not None and self._takes_mask:
            kwargs["mask"] = self._fold(mask)
        outputs = self.layer(self._fold(inputs), **kwargs)
        return map_structure(lambda y: self._unfold(y, batch, steps), outputs)

    @staticmethod
    def _fold(x: torch.Tensor) -> torch.Tensor:
        """``(batch, timesteps, ...)`` -> ``(batch * timesteps, ...)``, row ``b * timesteps + t`` (a view
        of a contiguous input)."""
        return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    @staticmethod
    def _unfold(y: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
        """The inverse of :meth:`_fold` on the wrapped layer's output."""
        return y.reshape(batch, steps, *y.shape[1:])

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        child = self.layer.compute_output_shape(self._child_shape(input_shape))
        unfold = lambda shape: (shape[0], input_shape[1], *shape[1:])
        return [unfold(s) for s in child] if isinstance(child, list) else unfold(child)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        return mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    def extra_repr(self) -> str:  # the wrapped layer prints itself
        return ", ".join([f"name={self.name!r}"] + ([f"built_with={self._build_shape}"] if self.built else []))

    # -- export ------------------------------------------------------------------------------

    def export_refusal(self) -> str | None:
        return self.layer.export_refusal()

    def onnx_dynamic_axes(self) -> dict[int, str]:
        return {0: "batch", 1: "time"}


def _stack_steps(per_step: list[Any]) -> Any:
    """Per-step outputs (each a tensor or a list of them) stacked along a new time axis 1."""
    first = per_step[0]
    if isinstance(first, (list, tuple)):
        return type(first)(torch.stack([step[i] for step in per_step], dim=1) for i in range(len(first)))
    return torch.stack(per_step, dim=1)
