"""Recurrent layers: `BaseRNN`, generic over the cell, and its members `LSTM`, `GRU` and `SimpleRNN`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .. import activations, initializers
from ..arguments import check_positive_int
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight
from .bidirectional_ops import (
    exported_bidirectional_gru,
    exported_bidirectional_lstm,
    exported_bidirectional_simple_rnn,
)
from .recurrent_ops import (
    GRU_FUSED_ACTIVATIONS,
    LSTM_FUSED_ACTIVATIONS,
    SIMPLE_RNN_FUSED_ACTIVATIONS,
    gru,
    gru_dropout_masks,
    is_activation,
    lstm,
    lstm_dropout_masks,
    simple_rnn,
    simple_rnn_dropout_masks,
)

__all__ = ["GRU", "LSTM", "BaseRNN", "SimpleRNN"]

DropoutMasks = tuple[torch.Tensor | None, torch.Tensor | None]


def _check_rate(argument: str, rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ArgumentError(f"`{argument}` must be a float in [0, 1]. Received: {argument}={rate!r}.")
    return float(rate)


def _activation_name(fn: Callable[[torch.Tensor], torch.Tensor]) -> str:
    """Keras's name of a built-in activation, or the callable's repr."""
    try:
        return repr(activations.serialize(fn))
    except ArgumentError:
        return repr(fn)


class BaseRNN(Layer):
    """A recurrent layer over ``(batch, timesteps, features)`` sequences, generic over its
    cell, as Keras's ``RNN(cell)`` and torch's ``RNNBase(mode)``.

    The base owns what every member shares: the states (their names in ``STATES``, their
    shape from :meth:`state_shape`, :meth:`state_shapes` for a batch), ``initial_state``
    checking, the ``stateful`` carry-over and ``reset_state``; the mask check; the dropout
    arguments and their seeded generator; assembling ``return_sequences`` /
    ``return_state``; the configuration's half of the fused-or-loop decision
    (:attr:`fused_ok`; a call's own half, such as a right-padded mask, is the op's); and
    the ONNX export rules. A member sets ``STATES``, ``LAYOUT``,
    ``FUSED_ACTIVATIONS`` and ``ONNX_OPERATOR``, and implements its cell's math in
    :meth:`recurrence` and its dropout masks in :meth:`dropout_masks`.

    Args:
        dropout: fraction of the input units to drop (training only).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        seed: seed for the dropout masks.
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last states.
        go_backwards: process the sequence reversed (outputs in processing order).
        stateful: carry the last states of a batch over to the next call.
        unroll: accepted for Keras compatibility; numerics do not depend on it.
        zero_output_for_mask: output zeros (not the previous output) at masked steps.
        use_cudnn: ``"auto"`` (fused kernel when possible), ``True`` (require it),
            ``False`` (always the loop).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Attributes:
        states: the carried states of a ``stateful`` layer (``None`` before its first call).
        last_path: ``"fused"`` or ``"loop"``: which computation the last call ran.
        last_dropout_masks: ``(input_mask, recurrent_mask)`` the last call applied, each
            ``None`` or a tensor (already scaled by ``1 / (1 - rate)``); ``(None, None)``
            for a call without dropout (inference, or rates of 0).
    """

    STATES: ClassVar[tuple[str, ...]] = ()
    """Names of the states, in Keras's order (``("h", "c")`` for an LSTM)."""
    FUSED_ACTIVATIONS: ClassVar[Mapping[str, str]] = {}
    """The activation each argument must be for torch's fused kernel (Keras's names)."""
    ONNX_OPERATOR: ClassVar[str | None] = None
    """The ONNX operator the fused configuration exports as (``None``: not exportable)."""
    KERAS2_DROPPED = ("time_major", "implementation")

    def __init__(
        self,
        *,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        use_cudnn: bool | str = "auto",
        **kwargs: Any,
    ) -> None:
        if not type(self).STATES:
            raise TypeError(
                f"`{type(self).__name__}` is abstract: use `LSTM`, or set `STATES`, `LAYOUT` and `recurrence`."
            )
        super().__init__(**kwargs)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ArgumentTypeError(f"`seed` must be an int or None. Received: seed={seed!r}.")
        self.seed = None if seed is None else int(seed)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        if use_cudnn not in ("auto", True, False):
            raise ArgumentError(f"`use_cudnn` must be one of 'auto', True, False. Received: use_cudnn={use_cudnn!r}.")
        self.use_cudnn = use_cudnn
        self.states: list[torch.Tensor] | None = None
        self.last_path: str | None = None
        self.last_dropout_masks: DropoutMasks = (None, None)
        self._generator: torch.Generator | None = None
        self.input_spec = InputSpec(ndim=3)

    def _check_use_cudnn(self) -> None:
        """Refuse ``use_cudnn=True`` for a configuration the fused kernel cannot run. A member
        calls it at the end of its constructor, once its activations are set."""
        if self.use_cudnn is True and (not self.fused_ok or self.recurrent_dropout):
            wanted = ", ".join(f"{argument}={name!r}" for argument, name in self.FUSED_ACTIVATIONS.items())
            received = ", ".join(
                f"{argument}={_activation_name(getattr(self, argument))}" for argument in self.FUSED_ACTIVATIONS
            )
            raise ArgumentError(
                f"`use_cudnn=True` needs {wanted} and no recurrent_dropout. "
                f"Received: {received}, recurrent_dropout={self.recurrent_dropout}."
            )

    # -- the fused-or-loop decision ------------------------------------------------------

    @property
    def fused_ok(self) -> bool:
        """Whether this configuration may run torch's fused kernel: the activations it
        computes (``FUSED_ACTIVATIONS``) and ``use_cudnn`` not ``False``. A call still takes
        the loop for a mask that is not right-padded, per-gate or recurrent dropout masks,
        or an unsupported device; :attr:`last_path` says which ran."""
        return self.use_cudnn is not False and all(
            is_activation(getattr(self, argument), name) for argument, name in self.FUSED_ACTIVATIONS.items()
        )

    # -- what a member provides ------------------------------------------------------------

    def state_shape(self, input_shape: Shape) -> dict[str, int | None]:
        """The named axes of each state, and of one step's output, for inputs of
        ``input_shape``: ``{"batch": batch, "units": units}``."""
        return {"batch": input_shape[0], "units": self.units}

    def state_shapes(self, batch: int) -> list[tuple[int | None, ...]]:
        """The shape of each state, in ``STATES`` order, for ``batch`` sequences (of the build
        shape, for a member whose states depend on more than the batch): what
        ``initial_state`` takes."""
        template = self._build_shape if self.built else (None, None, None)
        shape = tuple(self.state_shape((batch, *template[1:])).values())
        return [shape for _ in self.STATES]

    def recurrence(
        self,
        inputs: torch.Tensor,
        initial_state: list[torch.Tensor] | None,
        mask: torch.Tensor | None,
        dropout_masks: DropoutMasks,
    ) -> tuple[torch.Tensor, list[torch.Tensor], str]:
        """Run the cell over the sequence: ``(outputs (batch, timesteps, ...), final states,
        path)``, outputs in processing order. ``initial_state`` ``None`` means zeros."""
        raise NotImplementedError(f"`{type(self).__name__}` implements `recurrence`.")

    def dropout_masks(self, inputs: torch.Tensor, generator: torch.Generator | None) -> DropoutMasks:
        """Draw ``(input_mask, recurrent_mask)`` for one training call, as Keras's cell does."""
        raise NotImplementedError(f"`{type(self).__name__}` implements `dropout_masks`.")

    # -- states ------------------------------------------------------------------------------

    def reset_state(self) -> None:
        """Zero the carried states of a ``stateful`` layer."""
        if self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]

    reset_states = reset_state

    def _initial_states(self, inputs: torch.Tensor, initial_state: Any) -> list[torch.Tensor] | None:
        axes = self.state_shape(tuple(inputs.shape))
        shape = tuple(axes.values())
        if initial_state is not None:
            return self._check_states(initial_state, inputs, axes)
        if not self.stateful:
            return None
        if self.states is None:
            self.states = [inputs.new_zeros(shape) for _ in self.STATES]
        carried = tuple(self.states[0].shape)
        if carried != shape:
            if carried[0] != shape[0]:
                raise InputShapeError(
                    f"a stateful layer needs the batch size of its states ({carried[0]}). "
                    f"Received: input shape={tuple(inputs.shape)}."
                )
            raise InputShapeError(
                f"a stateful layer needs inputs that give states of its shape {carried}. "
                f"Received: input shape={tuple(inputs.shape)}."
            )
        return self.states

    def _check_states(self, states: Any, inputs: torch.Tensor, axes: Mapping[str, int | None]) -> list[torch.Tensor]:
        names = self.STATES
        if len(names) == 1 and not isinstance(states, (list, tuple)):
            states = [states]  # Keras takes a lone state as it is
        if not isinstance(states, (list, tuple)) or len(states) != len(names):
            if isinstance(states, (list, tuple)):
                received = f"{len(states)} states"
            else:
                received = f"initial_state of type {type(states).__name__}"
            raise ArgumentError(
                f"`initial_state` must be a list of {len(names)} states [{', '.join(names)}]. Received: {received}."
            )
        shape = tuple(axes.values())
        tensors = []
        for name, state in zip(names, states):
            if not isinstance(state, torch.Tensor) and np.asarray(state).dtype.kind not in "biuf":
                raise ArgumentTypeError(
                    f"initial state `{name}` must be a tensor or an array of numbers. Received: {name} of type {type(state).__name__}."
                )
            state = torch.as_tensor(state, device=inputs.device).to(inputs.dtype)
            if tuple(state.shape) != shape:
                raise InputShapeError(
                    f"initial state `{name}` must have shape ({', '.join(axes)}) = {shape}. "
                    f"Received: shape={tuple(state.shape)}."
                )
            tensors.append(state)
        return tensors

    # -- calling ---------------------------------------------------------------------------

    def _dropout_generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def call(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        training: bool | None = None,
        initial_state: Sequence[Any] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        states = self._initial_states(inputs, initial_state)
        if mask is not None:
            if not isinstance(mask, torch.Tensor) and np.asarray(mask).dtype.kind not in "biu":
                raise ArgumentTypeError(
                    f"`mask` must be a tensor or array of booleans (True for steps to use). Received: mask of type {type(mask).__name__}."
                )
            if isinstance(mask, torch.Tensor) and (mask.is_floating_point() or mask.is_complex() or mask.device.type == "meta"):
                raise ArgumentTypeError(
                    f"`mask` must hold booleans on a device with data. Received: mask of dtype {mask.dtype} on {mask.device}."
                )
            mask = torch.as_tensor(mask, device=inputs.device)
            if tuple(mask.shape) != tuple(inputs.shape[:2]):
                raise InputShapeError(
                    f"`mask` must have shape (batch, timesteps) = {tuple(inputs.shape[:2])}. "
                    f"Received: mask shape={tuple(mask.shape)}."
                )
        training = self.training if training is None else bool(training)
        masks: DropoutMasks = (None, None)
        if training and (self.dropout or self.recurrent_dropout):
            masks = self.dropout_masks(inputs, self._dropout_generator(inputs.device))
        self.last_dropout_masks = masks
        outputs, states, path = self.recurrence(inputs, states, mask, masks)
        if self.use_cudnn is True and path != "fused":
            raise ArgumentError(
                "`use_cudnn=True` but the fused kernel cannot run this call (a mask that is not right-padded, "
                "or an unsupported device). Received: use_cudnn=True."
            )
        self.last_path = path
        if self.stateful:
            self.states = [s.detach() for s in states]
        output = outputs if self.return_sequences else outputs[:, -1]
        return [output, *states] if self.return_state else output

    # -- shapes, masks, config --------------------------------------------------------------

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        state = tuple(self.state_shape(input_shape).values())
        output = (state[0], input_shape[1], *state[1:]) if self.return_sequences else state
        return [output, *(state for _ in self.STATES)] if self.return_state else output

    def get_config(self) -> dict[str, Any]:
        """Keras's ``RNN`` arguments; a member adds its cell's, then :meth:`_dropout_config`."""
        return {
            **super().get_config(),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }

    def _dropout_config(self) -> dict[str, Any]:
        config = {"dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}
        if self.use_cudnn != "auto":
            config["use_cudnn"] = self.use_cudnn
        return config

    # -- export ------------------------------------------------------------------------------

    def export_refusal(self) -> str | None:
        name = type(self).__name__
        if self.ONNX_OPERATOR is None:
            return f"`{name}` has no ONNX translation"
        if not self.fused_ok:
            wanted = ", ".join(f"{argument}={activation!r}" for argument, activation in self.FUSED_ACTIVATIONS.items())
            return (
                f"only {name}s on the fused kernel ({wanted}, use_cudnn not False) export as ONNX's "
                f"{self.ONNX_OPERATOR} operator; others would unroll at a fixed length"
            )
        if self.stateful:
            return "ONNX graphs hold no state between runs, so `stateful` layers cannot be exported"
        return None

    def onnx_dynamic_axes(self) -> dict[int, str]:
        return {0: "batch", 1: "time"}

    def onnx_bidirectional(
        self, backward: BaseRNN, inputs: torch.Tensor, lengths: torch.Tensor | None, initial_state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        """For export: this layer (reading forward) and ``backward`` (its configuration, reading
        backwards), both fused, as one custom op that ONNX writes as one node with
        ``direction="bidirectional"`` (:mod:`~xlayers.layers.bidirectional_ops`' conventions):
        ``(outputs (batch, time, 2, units), final states, each (2, batch, units))`` over sequences
        right-padded to ``lengths``, from ``initial_state`` (each ``(2, batch, units)``). ``None``
        where the member has no such op (the two directions then export apart)."""
        return None

    def _both_directions(self, backward: BaseRNN, *names: str) -> list[torch.Tensor | None]:
        """The torch view of each weight ``name``, this layer's stacked on ``backward``'s (``None``
        for a weight the configuration disables): a bidirectional op's weights."""
        enabled = {weight.name for weight in self.declared_weights()}
        return [torch.stack([self.weight_view(n), backward.weight_view(n)]) if n in enabled else None for n in names]


class _UnitForgetBias:
    """Keras's ``unit_forget_bias``: the bias initializer, with ones for the forget gate."""

    def __init__(self, base: Callable[..., torch.Tensor], units: int) -> None:
        self.base, self.units = base, units
        self.deterministic = initializers.is_deterministic(base)  # ones, plus whatever the base draws

    def __call__(self, shape: Sequence[int], dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        u = self.units
        return torch.cat([
            self.base((u,), dtype=dtype, device=device),
            torch.ones(u, dtype=dtype, device=device),
            self.base((2 * u,), dtype=dtype, device=device),
        ])


class LSTM(BaseRNN):
    """Long Short-Term Memory layer (Hochreiter 1997), as ``keras.layers.LSTM``.

    Per step, with gates stacked ``i, f, c, o`` along the last axis of the weights::

        z = x_t @ kernel + h @ recurrent_kernel + bias
        i, f, o = recurrent_activation(z_i), recurrent_activation(z_f), recurrent_activation(z_o)
        c = f * c + i * activation(z_c);  h = o * activation(c)

    With ``tanh``/``sigmoid`` (the defaults), no recurrent dropout, and a mask that is
    absent or right-padded, it runs torch's fused ``aten::lstm`` (oneDNN on CPU, cuDNN on
    CUDA) on the torch views of the weights (Keras's gate order i, f, c, o is torch's
    i, f, g, o, so ``weight_ih`` is a view of ``kernel``). Anything else runs an exact loop
    over time that follows Keras. ``last_path`` says which ran; ``fused_ok`` whether the
    configuration allows the fused kernel.

    Args:
        units: dimensionality of the output space.
        activation: for the cell input and the output (default ``tanh``).
        recurrent_activation: for the i, f, o gates (default ``sigmoid``).
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        unit_forget_bias: add 1 to the forget gate's bias at initialization.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
            activity_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        seed: seed for the dropout masks.
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last ``h`` and ``c``.
        go_backwards: process the sequence reversed (outputs in processing order).
        stateful: carry the last states of a batch over to the next call.
        unroll: accepted for Keras compatibility; numerics do not depend on it.
        zero_output_for_mask: output zeros (not the previous output) at masked steps.
        use_cudnn: ``"auto"`` (fused kernel when possible), ``True`` (require it),
            ``False`` (always the loop).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, timesteps, features)``.
        mask: ``(batch, timesteps)`` booleans, ``True`` for steps to use.
        training: whether dropout applies (default: the module's ``training`` flag).
        initial_state: ``[h0, c0]``, each ``(batch, units)``.

    Output shape:
        ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``;
        with ``return_state``, followed by ``h`` and ``c``, each ``(batch, units)``.

    Weights:
        kernel: ``(in, 4*units)``; torch view ``(4*units, in)`` (gates ``ifgo``).
        recurrent_kernel: ``(state, 4*units)``; torch view ``(4*units, state)``; ``state`` is ``units``.
        bias: ``(4*units,)``, if ``use_bias``.
        Keras paths ``cell/kernel``, ``cell/recurrent_kernel``, ``cell/bias``.
        Gate views, live: ``kernel_i/f/c/o`` ``(in, units)``,
        ``recurrent_kernel_i/f/c/o`` ``(units, units)``, ``bias_i/f/c/o`` ``(units,)``.

    Example:
        >>> layer = LSTM(64, return_sequences=True)
        >>> layer(torch.randn(8, 20, 10)).shape
        torch.Size([8, 20, 64])
        >>> tuple(layer.kernel_i.shape), tuple(layer.bias_f.shape), layer.last_path
        ((10, 64), (64,), 'fused')
    """

    STATES = ("h", "c")
    FUSED_ACTIVATIONS = LSTM_FUSED_ACTIVATIONS
    ONNX_OPERATOR = "LSTM"
    LAYOUT = (
        Weight("kernel", ("in", "gate", "units"), torch=("gate", "units", "in"),
               gates="ifco", torch_gates="ifgo", onnx_gates="iofc", path="cell/kernel"),
        Weight("recurrent_kernel", ("state", "gate", "units"), torch=("gate", "units", "state"),
               gates="ifco", torch_gates="ifgo", onnx_gates="iofc", role="recurrent", path="cell/recurrent_kernel"),
        Weight("bias", ("gate", "units"), gates="ifco", torch_gates="ifgo", onnx_gates="iofc", enabled_by="use_bias",
               path="cell/bias"),
    )

    def __init__(
        self,
        units: int,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = "tanh",
        recurrent_activation: str | Callable[[torch.Tensor], torch.Tensor] | None = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        use_cudnn: bool | str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, use_cudnn=use_cudnn, activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())
        self.unit_forget_bias = bool(unit_forget_bias)
        self._check_use_cudnn()

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        features = input_shape[-1]
        if features is None:
            raise ArgumentError(
                f"the feature axis of the input must be known to build. Received: input_shape={tuple(input_shape)}."
            )
        self.input_spec = InputSpec(ndim=3, axes={-1: features})
        return {"in": features, "units": self.units, "state": self.units}

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        if weight.name == "bias" and self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return super().initializer_for(weight)

    def dropout_masks(self, inputs: torch.Tensor, generator: torch.Generator | None) -> DropoutMasks:
        return lstm_dropout_masks(
            inputs, self.units, dropout=self.dropout, recurrent_dropout=self.recurrent_dropout, training=True,
            generator=generator,
        )

    def recurrence(
        self,
        inputs: torch.Tensor,
        initial_state: list[torch.Tensor] | None,
        mask: torch.Tensor | None,
        dropout_masks: DropoutMasks,
    ) -> tuple[torch.Tensor, list[torch.Tensor], str]:
        outputs, h, c, path = lstm(
            inputs,
            self.weight_view("kernel"),
            self.weight_view("recurrent_kernel"),
            self.weight_view("bias") if self.use_bias else None,
            initial_state=initial_state,
            mask=mask,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            fused_ok=self.fused_ok,
            dropout_mask=dropout_masks[0],
            recurrent_dropout_mask=dropout_masks[1],
        )
        return outputs, [h, c], path

    def onnx_bidirectional(
        self, backward: BaseRNN, inputs: torch.Tensor, lengths: torch.Tensor | None, initial_state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """As :meth:`BaseRNN.onnx_bidirectional`: ``xlayers::bidirectional_lstm`` (ONNX's ``LSTM``)."""
        weights = self._both_directions(backward, "kernel", "recurrent_kernel", "bias")
        outputs, h, c = exported_bidirectional_lstm(inputs, lengths, *initial_state, *weights)
        return outputs, [h, c]

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        from .recurrent_onnx import bidirectional_lstm_translation, lstm_translation  # onnxscript: only when exporting

        return {
            torch.ops.xlayers.lstm.default: lstm_translation(cls.LAYOUT),
            torch.ops.xlayers.bidirectional_lstm.default: bidirectional_lstm_translation(cls.LAYOUT),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            "unit_forget_bias": self.unit_forget_bias,
            **self._dropout_config(),
        }


# Keras's GRU bias: ``(2, 3*units)`` (input row, recurrent row) with ``reset_after``,
# ``(3*units,)`` without; both are ``bias``, the configuration picks one.
_GRU_BIAS_AFTER = Weight("bias", ("source", "gate", "units"), gates="zrh", torch_gates="rzn", onnx_gates="zrh",
                         enabled_by="_bias_after", path="cell/bias")
_GRU_BIAS_BEFORE = Weight("bias", ("gate", "units"), gates="zrh", torch_gates="rzn", onnx_gates="zrh",
                          enabled_by="_bias_before", path="cell/bias")


class GRU(BaseRNN):
    """Gated Recurrent Unit (Cho et al. 2014), as ``keras.layers.GRU``.

    Per step, with gates stacked ``z, r, h`` along the last axis of the weights::

        z = recurrent_activation(x_t @ kernel_z + h @ recurrent_kernel_z + b_z)
        r = recurrent_activation(x_t @ kernel_r + h @ recurrent_kernel_r + b_r)
        hh = activation(x_t @ kernel_h + b_h + r * (h @ recurrent_kernel_h + c_h))   # reset_after
        hh = activation(x_t @ kernel_h + b_h + (r * h) @ recurrent_kernel_h)         # not reset_after
        h = z * h + (1 - z) * hh

    With ``reset_after=True`` (the default), ``tanh``/``sigmoid``, no recurrent dropout and a
    mask that is absent or right-padded, it runs torch's fused ``aten::gru`` on the torch
    views of the weights (Keras's z, r, h is torch's r, z, n reordered; Keras's two bias rows
    are torch's ``b_ih`` and ``b_hh``). Anything else runs an exact loop that follows Keras.
    ``last_path`` says which ran.

    Args:
        units: dimensionality of the output space.
        activation: for the candidate ``hh`` (default ``tanh``).
        recurrent_activation: for the z and r gates (default ``sigmoid``).
        use_bias: whether the layer uses a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
            activity_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        seed: seed for the dropout masks.
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last ``h``.
        go_backwards: process the sequence reversed (outputs in processing order).
        stateful: carry the last state of a batch over to the next call.
        unroll: accepted for Keras compatibility; numerics do not depend on it.
        reset_after: apply the reset gate after the recurrent matmul (``True``, with a
            separate recurrent bias) or before it (``False``).
        zero_output_for_mask: output zeros (not the previous output) at masked steps.
        use_cudnn: ``"auto"`` (fused kernel when possible), ``True`` (require it),
            ``False`` (always the loop).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, timesteps, features)``.
        mask: ``(batch, timesteps)`` booleans, ``True`` for steps to use.
        training: whether dropout applies (default: the module's ``training`` flag).
        initial_state: ``[h0]`` (or ``h0``), ``(batch, units)``.

    Output shape:
        ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``;
        with ``return_state``, followed by ``h`` ``(batch, units)``.

    Weights:
        kernel: ``(in, 3*units)``; torch view ``(3*units, in)`` (gates ``rzn``).
        recurrent_kernel: ``(state, 3*units)``; torch view ``(3*units, state)``; ``state`` is ``units``.
        bias: ``(source, 3*units)`` = ``(2, 3*units)`` (input row, recurrent row) with ``reset_after``;
        bias: ``(3*units,)`` without it. Either only if ``use_bias``.
        Keras paths ``cell/kernel``, ``cell/recurrent_kernel``, ``cell/bias``.
        Gate views, live: ``kernel_z/r/h`` ``(in, units)``,
        ``recurrent_kernel_z/r/h`` ``(units, units)``, ``bias_z/r/h``.

    Example:
        >>> layer = GRU(64, return_sequences=True)
        >>> layer(torch.randn(8, 20, 10)).shape
        torch.Size([8, 20, 64])
        >>> tuple(layer.kernel_z.shape), tuple(layer.bias.shape), layer.last_path
        ((10, 64), (2, 192), 'fused')
    """

    STATES = ("h",)
    FUSED_ACTIVATIONS = GRU_FUSED_ACTIVATIONS
    ONNX_OPERATOR = "GRU"
    LAYOUT = (
        Weight("kernel", ("in", "gate", "units"), torch=("gate", "units", "in"),
               gates="zrh", torch_gates="rzn", onnx_gates="zrh", path="cell/kernel"),
        Weight("recurrent_kernel", ("state", "gate", "units"), torch=("gate", "units", "state"),
               gates="zrh", torch_gates="rzn", onnx_gates="zrh", role="recurrent", path="cell/recurrent_kernel"),
        _GRU_BIAS_BEFORE,
        _GRU_BIAS_AFTER,
    )

    def __init__(
        self,
        units: int,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = "tanh",
        recurrent_activation: str | Callable[[torch.Tensor], torch.Tensor] | None = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        reset_after: bool = True,
        zero_output_for_mask: bool = False,
        use_cudnn: bool | str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, use_cudnn=use_cudnn, activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.reset_after = bool(reset_after)
        self._set_weight_arguments(locals())
        if self.use_cudnn is True and not self.reset_after:
            raise ArgumentError("`use_cudnn=True` needs reset_after=True (torch's GRU). Received: reset_after=False.")
        self._check_use_cudnn()

    @property
    def _bias_after(self) -> bool:
        return self.use_bias and self.reset_after

    @property
    def _bias_before(self) -> bool:
        return self.use_bias and not self.reset_after

    @property
    def fused_ok(self) -> bool:
        """As :attr:`BaseRNN.fused_ok`, and ``reset_after`` (torch's GRU convention)."""
        return self.reset_after and super().fused_ok

    def _bias_declaration(self) -> Weight:
        return _GRU_BIAS_AFTER if self.reset_after else _GRU_BIAS_BEFORE

    def weight_view(self, name: str, framework: Any = "torch", value: torch.Tensor | None = None) -> torch.Tensor:
        if name != "bias":
            return super().weight_view(name, framework, value)
        return self._bias_declaration().convert(self.bias if value is None else value, "keras", framework)

    def __getattr__(self, name: str) -> Any:
        if name in ("bias_z", "bias_r", "bias_h") and not self.__dict__.get("reset_after", True):
            self._require_built(name)
            return _GRU_BIAS_BEFORE.gate_slice(self.bias, "zrh".index(name[-1]))
        return super().__getattr__(name)

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        features = input_shape[-1]
        if features is None:
            raise ArgumentError(
                f"the feature axis of the input must be known to build. Received: input_shape={tuple(input_shape)}."
            )
        self.input_spec = InputSpec(ndim=3, axes={-1: features})
        return {"in": features, "units": self.units, "state": self.units, "source": 2}

    def dropout_masks(self, inputs: torch.Tensor, generator: torch.Generator | None) -> DropoutMasks:
        return gru_dropout_masks(
            inputs, self.units, dropout=self.dropout, recurrent_dropout=self.recurrent_dropout, training=True,
            generator=generator,
        )

    def recurrence(
        self,
        inputs: torch.Tensor,
        initial_state: list[torch.Tensor] | None,
        mask: torch.Tensor | None,
        dropout_masks: DropoutMasks,
    ) -> tuple[torch.Tensor, list[torch.Tensor], str]:
        bias_ih = bias_hh = None
        if self.use_bias:
            bias = self.weight_view("bias")
            bias_ih, bias_hh = (bias[0], bias[1]) if self.reset_after else (bias, None)
        # Keras's per-gate masks are z, r, h; torch's gates r, z, n.
        to_torch = [1, 0, 2]
        drop, recurrent = (None if m is None or m.dim() == 2 else m[to_torch] for m in dropout_masks)
        drop = dropout_masks[0] if drop is None else drop
        recurrent = dropout_masks[1] if recurrent is None else recurrent
        outputs, h, path = gru(
            inputs,
            self.weight_view("kernel"),
            self.weight_view("recurrent_kernel"),
            bias_ih,
            bias_hh,
            initial_state=None if initial_state is None else initial_state[0],
            mask=mask,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            reset_after=self.reset_after,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            fused_ok=self.fused_ok,
            dropout_mask=drop,
            recurrent_dropout_mask=recurrent,
        )
        return outputs, [h], path

    def export_refusal(self) -> str | None:
        if not self.reset_after:
            return "a GRU with reset_after=False runs an exact loop (ONNX's GRU exports only reset_after=True here)"
        return super().export_refusal()

    def onnx_bidirectional(
        self, backward: BaseRNN, inputs: torch.Tensor, lengths: torch.Tensor | None, initial_state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """As :meth:`BaseRNN.onnx_bidirectional`: ``xlayers::bidirectional_gru`` (ONNX's ``GRU``,
        ``linear_before_reset=1``; the fused GRU is reset_after, its bias an input and a recurrent row)."""
        weight_ih, weight_hh, bias = self._both_directions(backward, "kernel", "recurrent_kernel", "bias")
        bias_ih, bias_hh = (None, None) if bias is None else bias.unbind(1)
        outputs, h = exported_bidirectional_gru(inputs, lengths, *initial_state, weight_ih, weight_hh, bias_ih, bias_hh)
        return outputs, [h]

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        from .recurrent_onnx import bidirectional_gru_translation, gru_translation  # onnxscript: only when exporting

        return {
            torch.ops.xlayers.gru.default: gru_translation(cls.LAYOUT),
            torch.ops.xlayers.bidirectional_gru.default: bidirectional_gru_translation(cls.LAYOUT),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            **self._dropout_config(),
            "reset_after": self.reset_after,
        }


class SimpleRNN(BaseRNN):
    """Fully-connected RNN whose output is fed back as its input, as ``keras.layers.SimpleRNN``.

    Per step::

        h = activation(x_t @ kernel + h @ recurrent_kernel + bias)

    With ``tanh`` (the default) or ``relu``, no recurrent dropout and a mask that is absent
    or right-padded, it runs torch's fused ``aten::rnn_tanh`` / ``aten::rnn_relu`` on the
    torch views of the weights (Keras's bias as ``b_ih``, a zero ``b_hh``); anything else runs
    an exact loop that follows Keras. ``last_path`` says which ran.

    Args:
        units: dimensionality of the output space.
        activation: activation function (default ``tanh``).
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
            activity_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last ``h``.
        go_backwards: process the sequence reversed (outputs in processing order).
        stateful: carry the last state of a batch over to the next call.
        unroll: accepted for Keras compatibility; numerics do not depend on it.
        seed: seed for the dropout masks.
        zero_output_for_mask: output zeros (not the previous output) at masked steps.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, timesteps, features)``.
        mask: ``(batch, timesteps)`` booleans, ``True`` for steps to use.
        training: whether dropout applies (default: the module's ``training`` flag).
        initial_state: ``[h0]`` (or ``h0``), ``(batch, units)``.

    Output shape:
        ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``;
        with ``return_state``, followed by ``h`` ``(batch, units)``.

    Weights:
        kernel: ``(in, units)``; torch view ``(units, in)``.
        recurrent_kernel: ``(state, units)``; torch view ``(units, state)``; ``state`` is ``units``.
        bias: ``(units,)``, if ``use_bias``.
        Keras paths ``cell/kernel``, ``cell/recurrent_kernel``, ``cell/bias``.

    Example:
        >>> layer = SimpleRNN(16, return_sequences=True)
        >>> layer(torch.randn(8, 20, 10)).shape
        torch.Size([8, 20, 16])
        >>> tuple(layer.kernel.shape), layer.last_path
        ((10, 16), 'fused')
    """

    STATES = ("h",)
    FUSED_ACTIVATIONS = SIMPLE_RNN_FUSED_ACTIVATIONS
    ONNX_OPERATOR = "RNN"
    LAYOUT = (
        Weight("kernel", ("in", "units"), torch=("units", "in"), path="cell/kernel"),
        Weight("recurrent_kernel", ("state", "units"), torch=("units", "state"), role="recurrent",
               path="cell/recurrent_kernel"),
        Weight("bias", ("units",), enabled_by="use_bias", path="cell/bias"),
    )

    def __init__(
        self,
        units: int,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        seed: int | None = None,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, activity_regularizer=activity_regularizer, **kwargs,
        )
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())

    @property
    def fused_ok(self) -> bool:
        """Whether the activation is one torch's fused kernels compute: tanh or relu."""
        return is_activation(self.activation, "tanh") or is_activation(self.activation, "relu")

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        features = input_shape[-1]
        if features is None:
            raise ArgumentError(
                f"the feature axis of the input must be known to build. Received: input_shape={tuple(input_shape)}."
            )
        self.input_spec = InputSpec(ndim=3, axes={-1: features})
        return {"in": features, "units": self.units, "state": self.units}

    def dropout_masks(self, inputs: torch.Tensor, generator: torch.Generator | None) -> DropoutMasks:
        return simple_rnn_dropout_masks(
            inputs, self.units, dropout=self.dropout, recurrent_dropout=self.recurrent_dropout, training=True,
            generator=generator,
        )

    def recurrence(
        self,
        inputs: torch.Tensor,
        initial_state: list[torch.Tensor] | None,
        mask: torch.Tensor | None,
        dropout_masks: DropoutMasks,
    ) -> tuple[torch.Tensor, list[torch.Tensor], str]:
        outputs, h, path = simple_rnn(
            inputs,
            self.weight_view("kernel"),
            self.weight_view("recurrent_kernel"),
            self.weight_view("bias") if self.use_bias else None,
            initial_state=None if initial_state is None else initial_state[0],
            mask=mask,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            activation=self.activation,
            fused_ok=self.fused_ok,
            dropout_mask=dropout_masks[0],
            recurrent_dropout_mask=dropout_masks[1],
        )
        return outputs, [h], path

    def export_refusal(self) -> str | None:
        if not self.fused_ok:
            return (
                "only SimpleRNNs with activation 'tanh' or 'relu' export as ONNX's RNN operator; "
                "others would unroll at a fixed length"
            )
        return super().export_refusal()

    def onnx_bidirectional(
        self, backward: BaseRNN, inputs: torch.Tensor, lengths: torch.Tensor | None, initial_state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """As :meth:`BaseRNN.onnx_bidirectional`: ``xlayers::bidirectional_simple_rnn`` (ONNX's ``RNN``)."""
        weights = self._both_directions(backward, "kernel", "recurrent_kernel", "bias")
        relu = is_activation(self.activation, "relu")
        outputs, h = exported_bidirectional_simple_rnn(inputs, lengths, *initial_state, *weights, relu)
        return outputs, [h]

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        from .recurrent_onnx import (  # onnxscript: only when exporting
            bidirectional_simple_rnn_translation,
            simple_rnn_translation,
        )

        return {
            torch.ops.xlayers.simple_rnn.default: simple_rnn_translation(),
            torch.ops.xlayers.bidirectional_simple_rnn.default: bidirectional_simple_rnn_translation(),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
