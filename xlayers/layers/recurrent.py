"""Recurrent layers: `LSTM`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .. import activations
from ..errors import ArgumentError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight
from .core import check_positive_int
from .recurrent_ops import lstm, lstm_dropout_masks

__all__ = ["LSTM"]


class _UnitForgetBias:
    """Keras's ``unit_forget_bias``: the bias initializer, with ones for the forget gate."""

    def __init__(self, base: Callable[..., torch.Tensor], units: int) -> None:
        self.base, self.units = base, units

    def __call__(self, shape: Sequence[int], dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        u = self.units
        return torch.cat(
            [self.base((u,), dtype=dtype, device=device), torch.ones(u, dtype=dtype, device=device), self.base((2 * u,), dtype=dtype, device=device)]
        )


class LSTM(Layer):
    """Long Short-Term Memory layer (Hochreiter 1997), as ``keras.layers.LSTM``.

    Per step, with gates stacked ``i, f, c, o`` along the last axis of the weights::

        z = x_t @ kernel + h @ recurrent_kernel + bias
        i, f, o = recurrent_activation(z_i), recurrent_activation(z_f), recurrent_activation(z_o)
        c = f * c + i * activation(z_c);  h = o * activation(c)

    With ``tanh``/``sigmoid`` (the defaults), no recurrent dropout, and a mask that is
    absent or right-padded, it runs torch's fused ``aten::lstm`` (oneDNN on CPU, cuDNN on
    CUDA; Keras's gate order i, f, c, o is torch's i, f, g, o, so ``kernel.T`` is torch's
    ``weight_ih`` as a view). Anything else runs an exact loop over time that follows
    Keras. ``last_path`` says which ran.

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
        Gate views, live: ``kernel_i/f/c/o`` ``(in, units)``,
        ``recurrent_kernel_i/f/c/o`` ``(units, units)``, ``bias_i/f/c/o`` ``(units,)``.

    Example:
        >>> layer = LSTM(64, return_sequences=True)
        >>> layer(torch.randn(8, 20, 10)).shape
        torch.Size([8, 20, 64])
        >>> tuple(layer.kernel_i.shape), tuple(layer.bias_f.shape), layer.last_path
        ((10, 64), (64,), 'fused')
    """

    LAYOUT = (
        Weight("kernel", ("in", "gate", "units"), torch=("gate", "units", "in"),
               gates="ifco", torch_gates="ifgo", onnx_gates="iofc"),
        Weight("recurrent_kernel", ("state", "gate", "units"), torch=("gate", "units", "state"),
               gates="ifco", torch_gates="ifgo", onnx_gates="iofc", role="recurrent"),
        Weight("bias", ("gate", "units"), gates="ifco", torch_gates="ifgo", onnx_gates="iofc", enabled_by="use_bias"),
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
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())
        self.unit_forget_bias = bool(unit_forget_bias)
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
                raise ArgumentError(f"`{name}` must be a float in [0, 1]. Received: {name}={rate!r}.")
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        if use_cudnn not in ("auto", True, False):
            raise ArgumentError(f"`use_cudnn` must be one of 'auto', True, False. Received: use_cudnn={use_cudnn!r}.")
        self.use_cudnn = use_cudnn
        standard = activations.serialize(self.activation) == "tanh" and activations.serialize(self.recurrent_activation) == "sigmoid"
        if use_cudnn is True and (not standard or self.recurrent_dropout):
            raise ArgumentError(
                "`use_cudnn=True` needs activation='tanh', recurrent_activation='sigmoid' and no "
                f"recurrent_dropout. Received: activation={activations.serialize(self.activation)!r}, "
                f"recurrent_activation={activations.serialize(self.recurrent_activation)!r}, "
                f"recurrent_dropout={self.recurrent_dropout}."
            )
        self._fused_ok = standard and use_cudnn is not False
        self.states: list[torch.Tensor] | None = None
        self.last_path: str | None = None
        self._generator: torch.Generator | None = None
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        features = input_shape[-1]
        if features is None:
            raise ArgumentError(f"{self._label}: the feature axis of the input must be known to build. Received: input_shape={tuple(input_shape)}.")
        self.input_spec = InputSpec(ndim=3, axes={-1: features})
        return {"in": features, "units": self.units, "state": self.units}

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        if weight.name == "bias" and self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return super().initializer_for(weight)

    def reset_state(self) -> None:
        """Zero the carried states of a ``stateful`` layer."""
        if self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]

    reset_states = reset_state

    def call(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        training: bool | None = None,
        initial_state: Sequence[Any] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        batch = inputs.shape[0]
        if initial_state is not None:
            initial_state = self._check_states(initial_state, batch, inputs)
        elif self.stateful:
            if self.states is None:
                self.states = [inputs.new_zeros(batch, self.units) for _ in range(2)]
            elif self.states[0].shape[0] != batch:
                raise InputShapeError(
                    f"{self._label}: a stateful layer needs the batch size of its states ({self.states[0].shape[0]}). "
                    f"Received: input shape={tuple(inputs.shape)}."
                )
            initial_state = self.states
        if mask is not None:
            mask = torch.as_tensor(mask, device=inputs.device)
            if tuple(mask.shape) != tuple(inputs.shape[:2]):
                raise InputShapeError(
                    f"{self._label}: `mask` must have shape (batch, timesteps) = {tuple(inputs.shape[:2])}. "
                    f"Received: mask shape={tuple(mask.shape)}."
                )
        training = self.training if training is None else bool(training)
        dropout_mask = recurrent_mask = None
        if training and (self.dropout or self.recurrent_dropout):
            dropout_mask, recurrent_mask = lstm_dropout_masks(
                inputs, self.units, dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
                training=True, generator=self._dropout_generator(inputs.device),
            )
        # torch 2.13's AOTAutograd cannot differentiate oneDNN's mkldnn_rnn_layer (it saves a None
        # for backward), so a compiled training step on CPU traces the loop path instead.
        compiled_training = torch.compiler.is_compiling() and not torch.compiler.is_exporting() and torch.is_grad_enabled()
        fused_ok = self._fused_ok and not (compiled_training and inputs.device.type == "cpu")
        outputs, h, c, path = lstm(
            inputs,
            self.kernel,
            self.recurrent_kernel,
            self.bias if self.use_bias else None,
            initial_state=initial_state,
            mask=mask,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            fused_ok=fused_ok,
            dropout_mask=dropout_mask,
            recurrent_dropout_mask=recurrent_mask,
        )
        if self.use_cudnn is True and path != "fused":
            raise ArgumentError(f"{self._label}: `use_cudnn=True` but the fused kernel cannot run this call (a mask that is not right-padded, or an unsupported device). Received: use_cudnn=True.")
        self.last_path = path
        if self.stateful:
            self.states = [h.detach(), c.detach()]
        output = outputs if self.return_sequences else outputs[:, -1]
        return [output, h, c] if self.return_state else output

    def _check_states(self, states: Sequence[Any], batch: int, inputs: torch.Tensor) -> list[torch.Tensor]:
        if not isinstance(states, (list, tuple)) or len(states) != 2:
            raise ArgumentError(f"{self._label}: `initial_state` must be a list [h, c]. Received: initial_state of type {type(states).__name__}.")
        tensors = []
        for name, state in zip(("h", "c"), states):
            state = torch.as_tensor(state, device=inputs.device).to(inputs.dtype)
            if tuple(state.shape) != (batch, self.units):
                raise InputShapeError(
                    f"{self._label}: initial state `{name}` must have shape (batch, units) = {(batch, self.units)}. "
                    f"Received: shape={tuple(state.shape)}."
                )
            tensors.append(state)
        return tensors

    def _dropout_generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        batch, steps = input_shape[0], input_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        return [output, (batch, self.units), (batch, self.units)] if self.return_state else output

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        if self.use_cudnn != "auto":
            config["use_cudnn"] = self.use_cudnn
        return config
