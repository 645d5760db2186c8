"""Keras's generic recurrent layer `RNN(cell)`, its cells `LSTMCell`, `GRUCell`, `SimpleRNNCell`, and
`StackedRNNCells`, as ``keras.layers.RNN`` and friends.

A cell is one step: ``cell(inputs, states) -> (output, new_states)``, with ``state_size``,
``output_size`` and ``get_initial_state``. `RNN` runs a cell over time. For the three built-in
cells in the configuration torch's fused kernels compute, it runs the same fused ops as the
`LSTM`, `GRU` and `SimpleRNN` layers (which are these specialisations of ``RNN(cell)``);
any other cell (a `StackedRNNCells`, a user's cell, another activation) runs a loop over time
that calls the cell at each step. ``last_path`` says which ran.

The cells declare the weights of the layers' ``LAYOUT`` (same gate orders and torch views),
each at its own Keras path (``kernel``, not ``cell/kernel``): the `RNN` holds its cell at
attribute ``cell``, so its weights walk as ``cell/kernel``, and a `StackedRNNCells` keys its
cells as Keras's ``.keras`` files do, by class in snake case numbered per class
(``cell/cells/lstm_cell/kernel``, ``cell/cells/lstm_cell_1/kernel``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .. import activations
from ..arguments import check_positive_int
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError, WeightDtypeError, WeightShapeError
from ..layer import InputSpec, Layer, Shape, _snake_case, get_layer_class
from ..layout import Weight
from .recurrent import GRU, LSTM, BaseRNN, SimpleRNN, _check_rate, _UnitForgetBias
from .recurrent_ops import gru, is_activation, lstm, simple_rnn

__all__ = ["RNN", "GRUCell", "LSTMCell", "SimpleRNNCell", "StackedRNNCells"]

Tensor = torch.Tensor


def _cell_layout(layer: type[Layer]) -> tuple[Weight, ...]:
    """A recurrent layer's ``LAYOUT`` with each weight at its own path: the cell's (the layer
    reaches it as ``cell/<name>``)."""
    return tuple(dataclasses.replace(weight, path="") for weight in layer.LAYOUT)


def _keras_dtype(policy: str) -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": policy}, "registered_name": None}


def serialize_cell(cell: Layer) -> dict[str, Any]:
    """``cell`` as Keras's ``serialize_keras_object`` writes it (what ``RNN.from_config`` reads):
    ``module``, ``class_name``, its config (dtype as Keras's ``DTypePolicy``), and its
    ``build_config`` once built."""
    config = dict(cell.get_config())
    if isinstance(config.get("dtype"), str):
        config["dtype"] = _keras_dtype(config["dtype"])
    module = "keras.layers" if type(cell).__module__.startswith("xlayers.") else type(cell).__module__
    serialized: dict[str, Any] = {"module": module, "class_name": type(cell).__name__, "config": config, "registered_name": None}
    if cell.built:
        serialized["build_config"] = {"input_shape": tuple(cell._build_shape)}  # Keras writes the tuple
    return serialized


def deserialize_cell(value: Any, argument: str, dtype: Any = None) -> Any:
    """A cell from a cell (kept as it is), a list of cells (a `StackedRNNCells`), or a serialized
    config as Keras writes it (``{"module": ..., "class_name": ..., "config": {...}}``), which is
    built from its ``build_config`` if it has one. ``dtype``: the owner's, for a config that
    names none."""
    if isinstance(value, (list, tuple)):
        return StackedRNNCells(list(value), **({} if dtype is None else {"dtype": dtype}))
    if isinstance(value, Mapping) and isinstance(value.get("class_name"), str):
        config = dict(value.get("config") or {})
        if dtype is not None and config.get("dtype") is None:
            config["dtype"] = dtype
        cell = get_layer_class(value["class_name"]).from_config(config)
        if value.get("build_config"):
            cell.build_from_config(value["build_config"])
        return cell
    if not callable(getattr(value, "call", None)) or getattr(value, "state_size", None) is None:
        raise ArgumentTypeError(
            f"`{argument}` must be a cell (a layer with `call(inputs, states)` and `state_size`), a list of cells, "
            f"or a cell's serialized config. Received: {argument}={value!r}."
        )
    return value


def _flat_sizes(state_size: Any) -> list[int]:
    if isinstance(state_size, (list, tuple)):
        return [size for item in state_size for size in _flat_sizes(item)]
    return [int(state_size)]


def _flatten(states: Any) -> list[Any]:
    if isinstance(states, (list, tuple)):
        return [leaf for item in states for leaf in _flatten(item)]
    return [states]


def _pack(cell: Any, flat: list[Any]) -> list[Any]:
    """``flat`` states in the structure Keras gives ``cell``'s: a list of the cell's states, or
    for a `StackedRNNCells` one such list per cell."""
    leaves = iter(flat)

    def pack(cell: Any) -> list[Any]:
        if isinstance(cell, StackedRNNCells):
            return [pack(inner) for inner in cell.cells]
        return [next(leaves) for _ in _flat_sizes(cell.state_size)]

    return pack(cell)


def _takes_training(cell: Any) -> bool:
    call = cell.call if isinstance(cell, Layer) else getattr(cell, "call", cell)
    try:
        return "training" in inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False


def _call_cell(cell: Any, inputs: Tensor, states: Any, training: bool) -> tuple[Tensor, Any]:
    kwargs = {"training": training} if _takes_training(cell) else {}
    return (cell if callable(cell) else cell.call)(inputs, states, **kwargs)


# -- cells ------------------------------------------------------------------------------------


class _RecurrentCell(Layer):
    """What the built-in cells share: Keras's ``DropoutRNNCell`` (masks drawn once and kept
    until the `RNN` resets them after its call), the one-step ``call`` (the layer's op over a
    one-step sequence), and the sequence op the `RNN` dispatches to."""

    FUSED_ACTIVATIONS: ClassVar[Mapping[str, str]] = {}
    GATES: ClassVar[int] = 1  # dropout masks drawn per gate (Keras's implementation 1): how many

    def __init__(self, units: int, dropout: float, recurrent_dropout: float, seed: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ArgumentTypeError(f"`seed` must be an int or None. Received: seed={seed!r}.")
        self.seed = None if seed is None else int(seed)
        self._generator: torch.Generator | None = None
        self._dropout_mask: Tensor | None = None
        self._recurrent_dropout_mask: Tensor | None = None
        self.last_dropout_masks: tuple[Tensor | None, Tensor | None] = (None, None)
        self.input_spec = InputSpec(ndim=2)

    @property
    def state_size(self) -> int | list[int]:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def fused_ok(self) -> bool:
        """Whether the configuration is one torch's fused kernel computes (its activations)."""
        return all(is_activation(getattr(self, argument), name) for argument, name in self.FUSED_ACTIVATIONS.items())

    @property
    def per_gate(self) -> bool:
        """Keras's ``implementation=1``: one dropout mask per gate (with recurrent dropout)."""
        return self.GATES > 1 and self.recurrent_dropout != 0.0

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        features = input_shape[-1]
        if features is None:
            raise ArgumentError(
                f"the feature axis of the input must be known to build. Received: input_shape={tuple(input_shape)}."
            )
        self.input_spec = InputSpec(ndim=2, axes={-1: features})
        return {"in": features, "units": self.units, "state": self.units, "source": 2}

    def get_initial_state(self, batch_size: int) -> list[Tensor]:
        """Zero states, ``(batch_size, units)`` each, in the cell's dtype."""
        device = self._first_weight().device if self._weight_names else None
        return [torch.zeros(batch_size, size, dtype=self.compute_dtype, device=device) for size in _flat_sizes(self.state_size)]

    # -- dropout (Keras's DropoutRNNCell) -----------------------------------------------------------

    def _draw(self, like: Tensor, rate: float) -> Tensor:
        generator = None
        if self.seed is not None:
            if self._generator is None or self._generator.device != like.device:
                self._generator = torch.Generator(device=like.device).manual_seed(self.seed)
            generator = self._generator
        shape = (self.GATES, *like.shape) if self.per_gate else tuple(like.shape)
        keep = torch.rand(shape, generator=generator, device=like.device) >= rate
        return keep.to(like.dtype) / (1.0 - rate)

    def get_dropout_mask(self, step_input: Tensor) -> Tensor | None:
        """The input mask of this call (drawn on first use, then kept until reset)."""
        if self._dropout_mask is None and 0.0 < self.dropout < 1.0:
            self._dropout_mask = self._draw(step_input, self.dropout)
        return self._dropout_mask

    def get_recurrent_dropout_mask(self, step_state: Tensor) -> Tensor | None:
        """The recurrent mask of this call (drawn on first use, then kept until reset)."""
        if self._recurrent_dropout_mask is None and 0.0 < self.recurrent_dropout < 1.0:
            self._recurrent_dropout_mask = self._draw(step_state, self.recurrent_dropout)
        return self._recurrent_dropout_mask

    def reset_dropout_mask(self) -> None:
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self) -> None:
        self._recurrent_dropout_mask = None

    def masks(self, step_input: Tensor, step_state: Tensor, training: bool) -> tuple[Tensor | None, Tensor | None]:
        """The ``(input, recurrent)`` masks a training call applies (``None`` when it applies none)."""
        masks = (self.get_dropout_mask(step_input), self.get_recurrent_dropout_mask(step_state)) if training else (None, None)
        self.last_dropout_masks = masks
        return masks

    # -- calling -------------------------------------------------------------------------------

    def sequence(
        self, inputs: Tensor, states: list[Tensor], mask: Tensor | None, go_backwards: bool,
        zero_output_for_mask: bool, masks: tuple[Tensor | None, Tensor | None],
    ) -> tuple[Tensor, list[Tensor], str]:
        """The cell over a ``(batch, time, features)`` sequence with the layer's op:
        ``(outputs, final states, path)``."""
        raise NotImplementedError

    def call(self, inputs: Tensor, states: Any, training: bool | None = None) -> tuple[Tensor, Any]:
        training = self.training if training is None else bool(training)
        flat = _flatten(states)
        sizes = _flat_sizes(self.state_size)
        if len(flat) != len(sizes):
            raise ArgumentError(f"`states` must be a list of {len(sizes)} states. Received: {len(flat)} states.")
        tensors = []
        for index, (state, size) in enumerate(zip(flat, sizes)):
            state = torch.as_tensor(state, device=inputs.device).to(inputs.dtype)
            if tuple(state.shape) != (inputs.shape[0], size):
                raise InputShapeError(
                    f"state {index} must have shape (batch, units) = {(inputs.shape[0], size)}. "
                    f"Received: shape={tuple(state.shape)}."
                )
            tensors.append(state)
        outputs, new, _ = self.sequence(inputs.unsqueeze(1), tensors, None, False, False, self.masks(inputs, tensors[0], training))
        if len(new) == 1 and not isinstance(states, (list, tuple)):
            return outputs[:, 0], new[0]
        return outputs[:, 0], new

    def compute_output_shape(self, input_shape: Shape) -> list[Shape]:
        """The output and each new state, flattened: ``[(batch, units), (batch, units), ...]``."""
        return [(input_shape[0], self.output_size), *((input_shape[0], size) for size in _flat_sizes(self.state_size))]

    def export_refusal(self) -> str | None:
        return "a cell is one step of a recurrence: export the `RNN` (or `LSTM`, `GRU`, `SimpleRNN`) that runs it"

    def _cell_config(self) -> dict[str, Any]:
        return {
            **self._weight_argument_config(),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


class LSTMCell(_RecurrentCell):
    """One step of an LSTM, as ``keras.layers.LSTMCell``: the cell `RNN` runs (``RNN(LSTMCell(u))``
    is ``LSTM(u)``, and runs torch's fused ``aten::lstm`` with tanh/sigmoid).

    Per step, with gates stacked ``i, f, c, o``::

        z = x @ kernel + h @ recurrent_kernel + bias
        c' = f * c + i * activation(z_c);  h' = o * activation(c')   (i, f, o: recurrent_activation)

    Args:
        units: dimensionality of the output and of each state.
        activation: for the cell input and the output (default ``tanh``).
        recurrent_activation: for the i, f, o gates (default ``sigmoid``).
        use_bias: whether the cell uses a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        unit_forget_bias: add 1 to the forget gate's bias at initialization.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only; one mask per `RNN` call,
            one per gate with recurrent dropout, as Keras's ``implementation=1``).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        seed: seed for the dropout masks.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: ``(batch, features)``, one step.
        states: ``[h, c]``, each ``(batch, units)``.
        training: whether dropout applies (default: the module's ``training`` flag).

    Output shape:
        ``(h', [h', c'])``, each ``(batch, units)``.

    Weights:
        kernel: ``(in, 4*units)``; torch view ``(4*units, in)`` (gates ``ifgo``).
        recurrent_kernel: ``(state, 4*units)``; torch view ``(4*units, state)``; ``state`` is ``units``.
        bias: ``(4*units,)``, if ``use_bias``.
        Gate views, live: ``kernel_i/f/c/o``, ``recurrent_kernel_i/f/c/o``, ``bias_i/f/c/o``.

    Example:
        >>> cell = LSTMCell(8)
        >>> h, (h1, c1) = cell(torch.randn(2, 5), [torch.zeros(2, 8), torch.zeros(2, 8)])
        >>> tuple(h.shape), tuple(cell.kernel_f.shape), cell.state_size
        ((2, 8), (5, 8), [8, 8])
    """

    LAYOUT = _cell_layout(LSTM)
    FUSED_ACTIVATIONS = LSTM.FUSED_ACTIVATIONS
    GATES = 4

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Tensor], Tensor] | None = "tanh",
        recurrent_activation: str | Callable[[Tensor], Tensor] | None = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, dropout, recurrent_dropout, seed, **kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self._set_weight_arguments(locals())

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    def initializer_for(self, weight: Weight) -> Callable[..., Tensor]:
        if weight.name == "bias" and self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return super().initializer_for(weight)

    def sequence(self, inputs, states, mask, go_backwards, zero_output_for_mask, masks):
        outputs, h, c, path = lstm(
            inputs, self.weight_view("kernel"), self.weight_view("recurrent_kernel"),
            self.weight_view("bias") if self.use_bias else None, initial_state=states, mask=mask,
            go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask, activation=self.activation,
            recurrent_activation=self.recurrent_activation, fused_ok=self.fused_ok, dropout_mask=masks[0],
            recurrent_dropout_mask=masks[1],
        )
        return outputs, [h, c], path

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            **self._cell_config(),
        }


_GRU_BIASES = {weight.enabled_by: weight for weight in _cell_layout(GRU) if weight.name == "bias"}


class GRUCell(_RecurrentCell):
    """One step of a GRU, as ``keras.layers.GRUCell``: the cell `RNN` runs (``RNN(GRUCell(u))`` is
    ``GRU(u)``, and runs torch's fused ``aten::gru`` with ``reset_after``, tanh/sigmoid).

    Per step, with gates stacked ``z, r, h``::

        z, r = recurrent_activation(x @ kernel_z|r + b + h @ recurrent_kernel_z|r + c)
        hh = activation(x @ kernel_h + b_h + r * (h @ recurrent_kernel_h + c_h))   # reset_after
        hh = activation(x @ kernel_h + b_h + (r * h) @ recurrent_kernel_h)         # not reset_after
        h' = z * h + (1 - z) * hh

    Args:
        units: dimensionality of the output and the state.
        activation: for the candidate ``hh`` (default ``tanh``).
        recurrent_activation: for the z and r gates (default ``sigmoid``).
        use_bias: whether the cell uses a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        reset_after: apply the reset gate after the recurrent matmul (``True``, with a separate
            recurrent bias) or before it.
        seed: seed for the dropout masks.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: ``(batch, features)``, one step.
        states: ``[h]`` (or ``h``), ``(batch, units)``.
        training: whether dropout applies (default: the module's ``training`` flag).

    Output shape:
        ``(h', [h'])`` (``(h', h')`` for a lone state), each ``(batch, units)``.

    Weights:
        kernel: ``(in, 3*units)``; torch view ``(3*units, in)`` (gates ``rzn``).
        recurrent_kernel: ``(state, 3*units)``; torch view ``(3*units, state)``; ``state`` is ``units``.
        bias: ``(source, 3*units)`` = ``(2, 3*units)`` (input row, recurrent row) with ``reset_after``;
        bias: ``(3*units,)`` without it. Either only if ``use_bias``.
        Gate views, live: ``kernel_z/r/h``, ``recurrent_kernel_z/r/h``, ``bias_z/r/h``.

    Example:
        >>> cell = GRUCell(6)
        >>> h, (h1,) = cell(torch.randn(2, 5), [torch.zeros(2, 6)])
        >>> tuple(h.shape), tuple(cell.bias.shape)
        ((2, 6), (2, 18))
    """

    LAYOUT = _cell_layout(GRU)
    FUSED_ACTIVATIONS = GRU.FUSED_ACTIVATIONS
    GATES = 3

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Tensor], Tensor] | None = "tanh",
        recurrent_activation: str | Callable[[Tensor], Tensor] | None = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        reset_after: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, dropout, recurrent_dropout, seed, **kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.reset_after = bool(reset_after)
        self._set_weight_arguments(locals())

    @property
    def _bias_after(self) -> bool:
        return self.use_bias and self.reset_after

    @property
    def _bias_before(self) -> bool:
        return self.use_bias and not self.reset_after

    @property
    def fused_ok(self) -> bool:
        """As the GRU layer's: tanh/sigmoid and ``reset_after`` (torch's GRU convention)."""
        return self.reset_after and super().fused_ok

    def weight_view(self, name: str, framework: Any = "torch", value: Tensor | None = None) -> Tensor:
        if name != "bias":
            return super().weight_view(name, framework, value)
        declaration = _GRU_BIASES["_bias_after" if self.reset_after else "_bias_before"]
        return declaration.convert(self.bias if value is None else value, "keras", framework)

    def __getattr__(self, name: str) -> Any:
        if name in ("bias_z", "bias_r", "bias_h") and not self.__dict__.get("reset_after", True):
            self._require_built(name)
            return _GRU_BIASES["_bias_before"].gate_slice(self.bias, "zrh".index(name[-1]))
        return super().__getattr__(name)

    def sequence(self, inputs, states, mask, go_backwards, zero_output_for_mask, masks):
        bias_ih = bias_hh = None
        if self.use_bias:
            bias = self.weight_view("bias")
            bias_ih, bias_hh = (bias[0], bias[1]) if self.reset_after else (bias, None)
        to_torch = [1, 0, 2]  # Keras's per-gate masks are z, r, h; torch's gates r, z, n
        drop, recurrent = (None if m is None else (m[to_torch] if m.dim() == 3 else m) for m in masks)
        outputs, h, path = gru(
            inputs, self.weight_view("kernel"), self.weight_view("recurrent_kernel"), bias_ih, bias_hh,
            initial_state=states[0], mask=mask, go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
            reset_after=self.reset_after, activation=self.activation, recurrent_activation=self.recurrent_activation,
            fused_ok=self.fused_ok, dropout_mask=drop, recurrent_dropout_mask=recurrent,
        )
        return outputs, [h], path

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            **self._cell_config(),
            "reset_after": self.reset_after,
        }


class SimpleRNNCell(_RecurrentCell):
    """One step of a fully-connected RNN, as ``keras.layers.SimpleRNNCell``: the cell `RNN` runs
    (``RNN(SimpleRNNCell(u))`` is ``SimpleRNN(u)``: torch's ``aten::rnn_tanh`` / ``rnn_relu``).

    Per step: ``h' = activation(x @ kernel + bias + h @ recurrent_kernel)``.

    Args:
        units: dimensionality of the output and the state.
        activation: activation function (default ``tanh``).
        use_bias: whether the cell uses a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        seed: seed for the dropout masks.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: ``(batch, features)``, one step.
        states: ``[h]`` (or ``h``), ``(batch, units)``.
        training: whether dropout applies (default: the module's ``training`` flag).

    Output shape:
        ``(h', [h'])``, each ``(batch, units)``.

    Weights:
        kernel: ``(in, units)``; torch view ``(units, in)``.
        recurrent_kernel: ``(state, units)``; torch view ``(units, state)``; ``state`` is ``units``.
        bias: ``(units,)``, if ``use_bias``.

    Example:
        >>> cell = SimpleRNNCell(4)
        >>> h, (h1,) = cell(torch.randn(3, 5), [torch.zeros(3, 4)])
        >>> tuple(h.shape), tuple(cell.recurrent_kernel.shape)
        ((3, 4), (4, 4))
    """

    LAYOUT = _cell_layout(SimpleRNN)

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Tensor], Tensor] | None = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, dropout, recurrent_dropout, seed, **kwargs)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())

    @property
    def fused_ok(self) -> bool:
        """Whether the activation is one torch's fused kernels compute: tanh or relu."""
        return is_activation(self.activation, "tanh") or is_activation(self.activation, "relu")

    def sequence(self, inputs, states, mask, go_backwards, zero_output_for_mask, masks):
        outputs, h, path = simple_rnn(
            inputs, self.weight_view("kernel"), self.weight_view("recurrent_kernel"),
            self.weight_view("bias") if self.use_bias else None, initial_state=states[0], mask=mask,
            go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask, activation=self.activation,
            fused_ok=self.fused_ok, dropout_mask=masks[0], recurrent_dropout_mask=masks[1],
        )
        return outputs, [h], path

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._cell_config(),
        }


# -- layers that hold cells -----------------------------------------------------------------------


class _HoldsCells:
    """What a layer holding cells (`RNN`, `StackedRNNCells`) adds to `Layer`: errors about its
    cells' weights begin with its own label (the layer the user called), and an
    ``load_state_dict(assign=True)`` that would mix dtypes inside one cell is refused naming the
    full ``state_dict`` keys (``cell.kernel``), before anything is assigned."""

    def _hold_cells(self) -> None:
        self.register_load_state_dict_pre_hook(_HoldsCells._check_cells_load)

    def set_weights(self, weights: Sequence[Any]) -> None:
        try:
            super().set_weights(weights)  # type: ignore[misc]
        except (ArgumentError, ArgumentTypeError, WeightShapeError) as error:
            message = str(error)
            if message.startswith(self._label + ":"):  # type: ignore[attr-defined]
                raise
            raise type(error)(f"{self._label}: {message}") from None  # type: ignore[attr-defined]

    @staticmethod
    def _check_cells_load(layer: Layer, state_dict: Mapping, prefix: str, local_metadata: Mapping, *args: Any) -> None:
        if not local_metadata.get("assign_to_params_buffers"):
            return
        for name, module in layer.named_modules(prefix=prefix.rstrip(".")):
            if not isinstance(module, Layer) or module is layer:
                continue
            keys = {f"{name}.{weight}": state_dict[f"{name}.{weight}"] for weight in module._weight_names
                    if f"{name}.{weight}" in state_dict}
            dtypes = {key: getattr(value, "dtype", None) for key, value in keys.items()}
            if len(set(dtypes.values())) > 1 or any(d is not None and not d.is_floating_point for d in dtypes.values()):
                found = ", ".join(f"{key} {str(d).removeprefix('torch.')}" for key, d in dtypes.items())
                raise WeightDtypeError(
                    f"{layer._label}: `load_state_dict(assign=True)` would give the weights of {module._label} these "
                    f"dtypes: {found}; a layer's weights must share one floating dtype. Cast the state dict first, or "
                    f"load without `assign=True` (values are then copied into the existing weights' dtype)."
                )


# -- StackedRNNCells -----------------------------------------------------------------------------


class StackedRNNCells(_HoldsCells, Layer):
    """A list of cells run as one cell, as ``keras.layers.StackedRNNCells``: each step, each cell
    takes the previous cell's output; the states are one list per cell, in the cells' order.

    Args:
        cells: the cells (xlayers cells, a user's cells, or their serialized configs).
        **kwargs: base `Layer` arguments (``name``, ``dtype``: given to configs that name none).

    Call arguments:
        inputs: ``(batch, features)``, one step.
        states: one entry per cell: its states (a list, or a lone tensor for one state).
        training: whether dropout applies (passed to the cells that take it).

    Output shape:
        ``(output, [states of cell 0, states of cell 1, ...])``; ``output`` is the last cell's.

    Weights:
        The cells', under ``cells/<class in snake case>[_<n>]/`` (Keras's ``.keras`` paths).

    Example:
        >>> cells = StackedRNNCells([LSTMCell(4), GRUCell(3)])
        >>> y, states = cells(torch.randn(2, 5), cells.get_initial_state(2))
        >>> tuple(y.shape), [entry.path for entry in cells.walk_weights()][::3]
        ((2, 3), ['cells/lstm_cell/kernel', 'cells/gru_cell/kernel'])
    """

    def __init__(self, cells: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(cells, (str, bytes, Mapping)) or not isinstance(cells, Sequence) or not cells:
            raise ArgumentTypeError(f"`cells` must be a non-empty list of cells. Received: cells={cells!r}.")
        dtype = kwargs.get("dtype")
        self._hold_cells()
        self.cells = [deserialize_cell(cell, "cells", dtype) for cell in cells]
        used: dict[str, int] = {}
        for cell in self.cells:
            if isinstance(cell, torch.nn.Module):
                base = _snake_case(type(cell).__name__)
                count = used.get(base, -1) + 1
                used[base] = count
                self.add_module(f"cells/{base}" if count == 0 else f"cells/{base}_{count}", cell)

    @property
    def state_size(self) -> list[Any]:
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self) -> int:
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        return _flat_sizes(last.state_size)[0]

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._build(shape, device=self._build_device)
            output = getattr(cell, "output_size", None) or _flat_sizes(cell.state_size)[0]
            shape = (shape[0], output)

    def _first_weight(self) -> Tensor | None:
        return next(iter(self.weights), None)

    def get_initial_state(self, batch_size: int) -> list[Any]:
        """Zero states, one list per cell."""
        states = []
        for cell in self.cells:
            make = getattr(cell, "get_initial_state", None)
            if make is not None:
                initial = make(batch_size)
                states.append(list(initial) if isinstance(initial, (list, tuple)) else [initial])
            else:
                reference = self._first_weight()
                states.append([torch.zeros(batch_size, size, dtype=self.compute_dtype, device=None if reference is None
                                           else reference.device) for size in _flat_sizes(cell.state_size)])
        return states

    def call(self, inputs: Tensor, states: Any, training: bool | None = None) -> tuple[Tensor, list[Any]]:
        if not isinstance(states, (list, tuple)) or len(states) != len(self.cells):
            received = f"{len(states)} entries" if isinstance(states, (list, tuple)) else f"states of type {type(states).__name__}"
            raise ArgumentError(f"`states` must be a list with one entry per cell ({len(self.cells)}). Received: {received}.")
        training = self.training if training is None else bool(training)
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            listed = isinstance(cell_states, (list, tuple))
            inputs, cell_states = _call_cell(cell, inputs, list(cell_states) if listed else [cell_states], training)
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
            new_states.append(list(cell_states) if listed or len(cell_states) != 1 else cell_states[0])
        return inputs, new_states

    def compute_output_shape(self, input_shape: Shape) -> list[Shape]:
        """The output and every state, flattened."""
        return [(input_shape[0], self.output_size), *((input_shape[0], size) for size in _flat_sizes(self.state_size))]

    def export_refusal(self) -> str | None:
        return "a cell is one step of a recurrence: export the `RNN` that runs it"

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cells": [serialize_cell(cell) for cell in self.cells]}

    def _default_config(self) -> dict[str, Any]:
        return self.get_config()  # `cells` is required; rebuilding them to compare would draw their weights


# -- RNN ------------------------------------------------------------------------------------------


def _dropout_cells(cell: Any) -> list[Any]:
    if isinstance(cell, StackedRNNCells):
        return [inner for c in cell.cells for inner in _dropout_cells(c)]
    return [cell]


class RNN(_HoldsCells, BaseRNN):
    """Base class for recurrent layers, as ``keras.layers.RNN``: runs ``cell`` over the time axis.

    ``LSTM``, ``GRU`` and ``SimpleRNN`` are its fused specialisations: with an `LSTMCell`,
    `GRUCell` or `SimpleRNNCell` in the configuration torch's kernels compute (their
    ``fused_ok``), it runs the same ops as those layers (torch's fused kernel, or the exact loop
    of the op when a call needs it: a mask that is not right-padded, recurrent dropout). Any
    other cell (a `StackedRNNCells`, a user's cell, another activation) runs a loop over time
    calling the cell, with Keras's mask semantics (masked steps keep the states and repeat the
    previous output). ``last_path``: ``"fused"``, ``"loop"`` (the op's loop) or ``"cell"``.

    Args:
        cell: a cell (a layer with ``call(inputs, states)`` returning ``(output, new_states)``,
            ``state_size`` and optionally ``output_size`` and ``get_initial_state``), a list of
            cells (a `StackedRNNCells`), or a cell's serialized config, as Keras writes it
            (``{"module": "keras.layers", "class_name": "LSTMCell", "config": {...}}``).
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last states (one entry per state; for a
            `StackedRNNCells`, one list per cell, as Keras).
        go_backwards: process the sequence reversed (outputs in processing order).
        stateful: carry the last states of a batch over to the next call.
        unroll: accepted for Keras compatibility; numerics do not depend on it.
        zero_output_for_mask: output zeros (not the previous output) at masked steps.
        **kwargs: base `Layer` arguments (``name``, ``dtype``: given to a cell config that names none).

    Call arguments:
        inputs: ``(batch, timesteps, features)``.
        mask: ``(batch, timesteps)`` booleans, ``True`` for steps to use.
        training: whether the cell's dropout applies (default: the module's ``training`` flag).
        initial_state: the cell's states: ``[h, c]`` for an `LSTMCell`, ``[h]`` (or ``h``) for one
            state, one entry per cell for a `StackedRNNCells`.

    Output shape:
        ``(batch, output_size)``, or ``(batch, timesteps, output_size)`` with ``return_sequences``;
        with ``return_state``, followed by the states.

    Weights:
        The cell's, under ``cell/`` (``cell/kernel``, ``cell/cells/lstm_cell/kernel``).

    Example:
        >>> layer = RNN(LSTMCell(8), return_sequences=True)
        >>> layer(torch.randn(2, 7, 5)).shape, layer.last_path
        (torch.Size([2, 7, 8]), 'fused')
        >>> stacked = RNN([LSTMCell(4), GRUCell(3)], return_state=True)
        >>> [tuple(t.shape) for t in stacked(torch.randn(2, 7, 5))[0:1]], stacked.last_path
        ([(2, 3)], 'cell')
    """

    STATES = ("states",)  # the cell's: see `state_sizes`

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
            stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask, **kwargs,
        )
        self._hold_cells()
        self.cell = deserialize_cell(cell, "cell", kwargs.get("dtype"))
        self.supports_masking = True

    # -- the cell's states ------------------------------------------------------------------------

    @property
    def state_size(self) -> list[Any]:
        """Keras's ``RNN.state_size``: the cell's, as a list."""
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    @property
    def fused_ok(self) -> bool:
        """Whether the cell is a built-in cell whose configuration torch's fused kernels compute."""
        return isinstance(self.cell, _RecurrentCell) and type(self.cell).call is _RecurrentCell.call and self.cell.fused_ok

    def _output_size(self) -> int:
        size = getattr(self.cell, "output_size", None)
        return int(size) if size is not None else _flat_sizes(self.cell.state_size)[0]

    def state_shapes(self, batch: int) -> list[Any]:
        """The shape of each state, in the structure ``initial_state`` takes (one list per cell
        of a `StackedRNNCells`)."""
        return _pack(self.cell, [(batch, size) for size in _flat_sizes(self.cell.state_size)])

    def state_shape(self, input_shape: Shape) -> dict[str, int | None]:
        return {"batch": input_shape[0], "units": self._output_size()}

    def _first_weight(self) -> Tensor | None:
        return next(iter(self.weights), None)

    def build(self, input_shape: Shape) -> None:
        features = input_shape[-1]
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell._build((input_shape[0], *input_shape[2:]), device=self._build_device)
        self.input_spec = InputSpec(ndim=3, axes={} if features is None else {-1: features})

    def _initial_states(self, inputs: Tensor, initial_state: Any) -> list[Tensor]:
        batch = inputs.shape[0]
        sizes = _flat_sizes(self.cell.state_size)
        if initial_state is not None:
            return self._check_flat_states(initial_state, inputs, sizes)
        if self.stateful and self.states is not None:
            carried = self.states[0].shape[0]
            if carried != batch:
                raise InputShapeError(
                    f"a stateful layer needs the batch size of its states ({carried}). "
                    f"Received: input shape={tuple(inputs.shape)}."
                )
            return list(self.states)
        make = getattr(self.cell, "get_initial_state", None)
        states = _flatten(make(batch)) if make is not None else [inputs.new_zeros(batch, size) for size in sizes]
        return [state.to(device=inputs.device, dtype=inputs.dtype) for state in states]

    def _check_flat_states(self, states: Any, inputs: Tensor, sizes: list[int]) -> list[Tensor]:
        size = self.cell.state_size
        if not isinstance(states, (list, tuple)):
            states = [states]  # Keras takes a lone state as it is
        entries = len(_pack(self.cell, sizes))
        flat = _flatten(states)
        if len(states) != entries or len(flat) != len(sizes):
            raise ArgumentError(
                f"`initial_state` must hold the cell's {len(sizes)} states in the structure of its `state_size` "
                f"{size}. Received: {len(flat)} states in {len(states)} entries."
            )
        tensors = []
        for index, (state, width) in enumerate(zip(flat, sizes)):
            if not isinstance(state, Tensor) and np.asarray(state).dtype.kind not in "biuf":
                raise ArgumentTypeError(
                    f"initial state {index} must be a tensor or an array of numbers. "
                    f"Received: state {index} of type {type(state).__name__}."
                )
            state = torch.as_tensor(state, device=inputs.device).to(inputs.dtype)
            if tuple(state.shape) != (inputs.shape[0], width):
                raise InputShapeError(
                    f"initial state {index} must have shape (batch, units) = {(inputs.shape[0], width)}. "
                    f"Received: shape={tuple(state.shape)}."
                )
            tensors.append(state)
        return tensors

    # -- calling --------------------------------------------------------------------------------------

    def _check_mask(self, mask: Any, inputs: Tensor) -> Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, Tensor) and np.asarray(mask).dtype.kind not in "biu":
            raise ArgumentTypeError(
                f"`mask` must be a tensor or array of booleans (True for steps to use). Received: mask of type {type(mask).__name__}."
            )
        if isinstance(mask, Tensor) and (mask.is_floating_point() or mask.is_complex() or mask.device.type == "meta"):
            raise ArgumentTypeError(
                f"`mask` must hold booleans on a device with data. Received: mask of dtype {mask.dtype} on {mask.device}."
            )
        mask = torch.as_tensor(mask, device=inputs.device)
        if tuple(mask.shape) != tuple(inputs.shape[:2]):
            raise InputShapeError(
                f"`mask` must have shape (batch, timesteps) = {tuple(inputs.shape[:2])}. Received: mask shape={tuple(mask.shape)}."
            )
        return mask

    def call(
        self,
        inputs: Tensor,
        mask: Tensor | None = None,
        training: bool | None = None,
        initial_state: Any = None,
    ) -> Tensor | list[Any]:
        if inputs.shape[1] == 0:
            raise InputShapeError(f"expected at least one time step. Received: input shape={tuple(inputs.shape)}.")
        states = self._initial_states(inputs, initial_state)
        mask = self._check_mask(mask, inputs)
        training = self.training if training is None else bool(training)
        try:
            if self.fused_ok:
                masks = self.cell.masks(inputs[:, 0], states[0], training)
                outputs, states, path = self.cell.sequence(
                    inputs, states, mask, self.go_backwards, self.zero_output_for_mask, masks
                )
            else:
                outputs, states = self._cell_loop(inputs, states, mask, training)
                path = "cell"
        finally:
            self._reset_dropout_masks()
        self.last_path = path
        self.last_dropout_masks = tuple(getattr(c, "last_dropout_masks", (None, None)) for c in _dropout_cells(self.cell))
        if self.stateful:
            self.states = [s.detach() for s in states]
        output = outputs if self.return_sequences else outputs[:, -1]
        if not self.return_state:
            return output
        packed = _pack(self.cell, states)
        return [output, *packed]

    def _reset_dropout_masks(self) -> None:
        for cell in _dropout_cells(self.cell):
            if isinstance(cell, _RecurrentCell):
                cell.reset_dropout_mask()
                cell.reset_recurrent_dropout_mask()

    def _cell_loop(self, inputs: Tensor, states: list[Tensor], mask: Tensor | None, training: bool) -> tuple[Tensor, list[Tensor]]:
        """Keras's ``backend.rnn``: the cell at each step; at a masked step the states are kept and
        the output is the previous step's (zeros before the first, or with ``zero_output_for_mask``)."""
        steps = inputs.shape[1]
        keep = None if mask is None else mask.bool().unsqueeze(-1)
        previous: Tensor | None = None
        outputs = []
        for step in range(steps):
            t = steps - 1 - step if self.go_backwards else step
            output, new = _call_cell(self.cell, inputs[:, t], _pack(self.cell, states), training)
            new = _flatten(new)
            if keep is not None:
                k = keep[:, t]
                other = output.new_zeros(()) if self.zero_output_for_mask or previous is None else previous
                output = torch.where(k, output, other)
                new = [torch.where(k, n, s) for n, s in zip(new, states)]
            states = new
            previous = output
            outputs.append(output)
        return torch.stack(outputs, dim=1), states

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        """The output shape; with ``return_state``, the states' after it, flattened."""
        batch = input_shape[0]
        output = (batch, input_shape[1], self._output_size()) if self.return_sequences else (batch, self._output_size())
        if not self.return_state:
            return output
        return [output, *((batch, size) for size in _flat_sizes(self.cell.state_size))]

    def get_initial_state(self, batch_size: int) -> list[Any]:
        """Keras's ``RNN.get_initial_state``: the cell's zero states, in its structure."""
        return _pack(self.cell, _flatten(self.cell.get_initial_state(batch_size)) if hasattr(self.cell, "get_initial_state")
                     else [torch.zeros(batch_size, size) for size in _flat_sizes(self.cell.state_size)])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cell": serialize_cell(self.cell)}

    def _default_config(self) -> dict[str, Any]:
        """The defaults of the optional arguments, ``cell`` as it is (rebuilding the cell to compare
        would draw its weights)."""
        config = self.get_config()
        parameters = inspect.signature(RNN.__init__).parameters
        return {**config, **{k: p.default for k, p in parameters.items() if k in config and p.default is not p.empty}}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RNN:
        return cls(**config)
