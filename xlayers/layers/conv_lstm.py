"""Convolutional LSTM layers: `ConvLSTM`, generic over the rank, and its members `ConvLSTM1D`,
`ConvLSTM2D`, `ConvLSTM3D` (Keras's ``keras/src/layers/rnn/conv_lstm.py``).

Per step, with gates stacked ``i, f, c, o`` along the last axis of the weights::

    z = conv(x_t, kernel, strides, padding, dilation_rate) + bias + conv(h, recurrent_kernel, 1, "same")
    i, f, o = recurrent_activation(z_i), recurrent_activation(z_f), recurrent_activation(z_o)
    c = f * c + i * activation(z_c);  h = o * activation(c)

The input convolution carries the layer's ``strides``, ``padding`` and ``dilation_rate``; the
recurrent one is always stride 1, ``'same'``, no dilation (Keras's ``ConvLSTMCell.recurrent_conv``),
so the states ``h`` and ``c`` have the input convolution's output shape.

Speed: the input convolution of every time step is ONE convolution over the time steps folded
into the batch, computed before the loop over time; the loop runs only the recurrent
convolution (one conv of ``4 * filters`` outputs, all gates at once) and the gate math. A
channels-last layer works in channels-last memory throughout (torch's ``channels_last``
formats: no layout copy of inputs or states). Keras's per-gate dropout masks (four input
masks, four recurrent masks) become one grouped convolution (``groups=4``) of the four
masked copies, so dropout keeps the one-convolution structure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from .. import activations
from ..arguments import check_positive_int
from ..arguments import data_format as check_data_format
from ..errors import ArgumentError, InputShapeError
from ..layer import InputSpec, Shape
from ..layout import Weight
from ..padding import normalize_padding, normalize_tuple, output_size
from .conv import kernel_axes
from .conv_ops import conv_padded, resolve_padding
from .recurrent import BaseRNN, DropoutMasks, _UnitForgetBias

__all__ = ["ConvLSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "conv_lstm", "conv_lstm_layout", "conv_lstm_step"]

Activation = Callable[[Tensor], Tensor]

# Names of the states' spatial axes (as the kernel's kd, kh, kw).
_SPATIAL_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def conv_lstm_layout(rank: int) -> tuple[Weight, ...]:
    """The ``LAYOUT`` of a ``rank``-D ConvLSTM: Keras's ``cell/kernel`` ``(*kernel, in, 4*filters)``,
    ``cell/recurrent_kernel`` ``(*kernel, filters, 4*filters)`` and ``cell/bias`` ``(4*filters,)``,
    gates ``i, f, c, o``; torch views ``(4*filters, in, *kernel)`` (a conv weight)."""
    spatial = kernel_axes(rank)
    return (
        Weight("kernel", (*spatial, "in", "gate", "filters"), torch=("gate", "filters", "in", *spatial),
               gates="ifco", path="cell/kernel"),
        Weight("recurrent_kernel", (*spatial, "state", "gate", "filters"), torch=("gate", "filters", "state", *spatial),
               gates="ifco", role="recurrent", path="cell/recurrent_kernel"),
        Weight("bias", ("gate", "filters"), gates="ifco", enabled_by="use_bias", path="cell/bias"),
    )


def _logical(t: Tensor, channels_last: bool) -> Tensor:
    """A ``(N, *spatial, C)`` tensor as the ``(N, C, *spatial)`` view torch's conv takes
    (channels-last memory); a channels-first tensor as it is."""
    return t.movedim(-1, 1) if channels_last else t


def _physical(t: Tensor, channels_last: bool) -> Tensor:
    return t.movedim(1, -1) if channels_last else t


def conv_lstm_step(
    x_t: Tensor,
    h: Tensor,
    c: Tensor,
    weight_hh: Tensor,
    pads: Sequence[tuple[int, int]],
    activation: Activation,
    recurrent_activation: Activation,
    recurrent_mask: Sequence[Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """One step of the cell on ``(N, C, *spatial)`` views: ``x_t`` is the step's input
    convolution (bias included, ``4 * filters`` channels), ``h`` and ``c`` the states;
    ``weight_hh`` the torch-layout recurrent kernel ``(4*filters, filters, *kernel)`` and
    ``pads`` its 'same' padding. ``recurrent_mask``: Keras's four per-gate masks of ``h``
    (then one grouped convolution of the four masked copies). Returns the new ``(h, c)``."""
    rank = h.dim() - 2
    if recurrent_mask is None:
        source, groups = h, 1
    else:
        source, groups = torch.cat([h * m for m in recurrent_mask], dim=1), 4
    recurrent = conv_padded(source, weight_hh, None, pads, strides=(1,) * rank, dilation_rate=(1,) * rank,
                            groups=groups, contiguous=False)
    zi, zf, zc, zo = (x_t + recurrent).chunk(4, dim=1)
    i = recurrent_activation(zi)
    f = recurrent_activation(zf)
    o = recurrent_activation(zo)
    c = f * c + i * activation(zc)
    return o * activation(c), c


def conv_lstm(
    inputs: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None,
    *,
    strides: Sequence[int],
    padding: str,
    dilation_rate: Sequence[int],
    channels_last: bool = True,
    initial_state: Sequence[Tensor] | None = None,
    mask: Tensor | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    activation: Activation = torch.tanh,
    recurrent_activation: Activation = torch.sigmoid,
    dropout_mask: Tensor | None = None,
    recurrent_dropout_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """A ConvLSTM over ``inputs`` ``(batch, time, *spatial, C)`` (``(batch, time, C, *spatial)``
    with ``channels_last=False``), with Keras's semantics (TF backend).

    Weights in torch's layout: ``weight_ih`` ``(4*filters, C, *kernel)``, ``weight_hh``
    ``(4*filters, filters, *kernel)``, ``bias`` ``(4*filters,)``, gates ``i, f, c, o``.
    ``initial_state``: ``[h, c]`` in the data format (zeros if ``None``). ``mask``
    ``(batch, time)``: a masked step keeps the states and outputs the previous output (zero
    before the first unmasked step, or always with ``zero_output_for_mask``).
    ``go_backwards``: the sequence and the mask reversed, outputs in processing order.
    ``dropout_mask`` ``(4, batch, *step)`` / ``recurrent_dropout_mask`` ``(4, batch, *state)``:
    Keras's per-gate masks (already scaled), in the data format.

    Returns ``(outputs (batch, time, *state), h, c)`` in the data format.
    """
    batch, steps = inputs.shape[0], inputs.shape[1]
    if steps == 0:
        raise InputShapeError(f"the input must have at least one time step. Received: input shape={tuple(inputs.shape)}.")
    rank = inputs.dim() - 3
    channel = -1 if channels_last else 2
    if dropout_mask is None:
        x, groups = inputs, 1
    else:  # gate g convolves inputs * mask[g] with its kernel block: one grouped conv
        x, groups = torch.cat([inputs * m.unsqueeze(1) for m in dropout_mask], dim=channel), 4
    folded = _logical(x.reshape(batch * steps, *x.shape[2:]), channels_last)  # time folded into the batch
    pads = resolve_padding(padding, tuple(folded.shape[2:]), tuple(weight_ih.shape[2:]), strides, dilation_rate)
    xw = conv_padded(folded, weight_ih, bias, pads, strides=tuple(strides), dilation_rate=tuple(dilation_rate),
                     groups=groups)  # (batch * time, 4*filters, *state spatial)
    spatial = tuple(xw.shape[2:])
    filters = weight_hh.shape[1]
    recurrent_pads = resolve_padding("same", spatial, tuple(weight_hh.shape[2:]), (1,) * rank, (1,) * rank)
    weight_hh = weight_hh.contiguous()  # once per call, not per step
    if initial_state is None:
        shape = (batch, *spatial, filters) if channels_last else (batch, filters, *spatial)
        h = c = _logical(inputs.new_zeros(shape), channels_last)
    else:
        h, c = (_logical(s, channels_last) for s in initial_state)
    recurrent_mask = None
    if recurrent_dropout_mask is not None:
        recurrent_mask = [_logical(m, channels_last) for m in recurrent_dropout_mask]
    keep = None if mask is None else mask.bool().reshape(batch, steps, *([1] * (rank + 1)))
    previous = None
    outputs = []
    # Per step, in the data format's memory order: unbind's backward is one stack of the steps' gradients
    # (`xw[:, t]` would scatter each into zeros), already in the memory format the convolution's backward takes.
    xs = [_logical(x_t, channels_last) for x_t in _physical(xw, channels_last).unflatten(0, (batch, steps)).unbind(1)]
    for s in range(steps):
        t = steps - 1 - s if go_backwards else s
        h_new, c_new = conv_lstm_step(xs[t], h, c, weight_hh, recurrent_pads, activation, recurrent_activation,
                                      recurrent_mask)
        if keep is None:
            h, c, out = h_new, c_new, h_new
        else:
            k = keep[:, t]
            other = h_new.new_zeros(()) if zero_output_for_mask or previous is None else previous
            out = torch.where(k, h_new, other)
            h = torch.where(k, h_new, h)
            c = torch.where(k, c_new, c)
            previous = out
        outputs.append(_physical(out, channels_last))
    return torch.stack(outputs, dim=1), _physical(h, channels_last), _physical(c, channels_last)


class ConvLSTM(BaseRNN):
    """N-D convolutional LSTM, as Keras's ``ConvLSTM(rank)``: an LSTM whose input and recurrent
    transformations are convolutions. A member sets ``rank`` and ``LAYOUT``
    (``conv_lstm_layout(rank)``); everything else is shared. States, ``initial_state``,
    masks, ``stateful``, dropout and the output assembly are `BaseRNN`'s.

    Args:
        filters: number of output channels (of ``h`` and ``c``).
        kernel_size: int or tuple of ``rank`` ints, the convolution window of both convolutions.
        strides: int or tuple of ``rank`` ints, of the input convolution only; strides > 1
            exclude dilation > 1.
        padding: ``"valid"`` or ``"same"`` (case-insensitive), of the input convolution (TF's
            'same': an odd total puts the extra zero at the end); the recurrent one is 'same'.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of ``rank`` ints, of the input convolution only.
        activation: for the cell input and the output (default ``tanh``).
        recurrent_activation: for the i, f, o gates (default ``sigmoid``).
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        unit_forget_bias: add 1 to the forget gate's bias at initialization.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
            activity_regularizer: regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints.
        dropout: fraction of the input units to drop (training only; four per-gate masks).
        recurrent_dropout: fraction of the recurrent state units to drop (training only).
        seed: seed for the dropout masks.
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last ``h`` and ``c``.
        go_backwards: process the sequence reversed (outputs in processing order).
        stateful: carry the last states of a batch over to the next call.
        unroll: accepted for Keras compatibility; numerics do not depend on it.
        zero_output_for_mask: output zeros (not the previous output) at masked steps.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).
    """

    rank: ClassVar[int]
    STATES = ("h", "c")

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | Activation | None = "tanh",
        recurrent_activation: str | Activation | None = "sigmoid",
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
        **kwargs: Any,
    ) -> None:
        if not type(self).LAYOUT:
            raise TypeError(
                f"`{type(self).__name__}` is abstract: use `ConvLSTM1D`, `ConvLSTM2D`, `ConvLSTM3D`, "
                f"or set `rank` and `LAYOUT`."
            )
        super().__init__(
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, activity_regularizer=activity_regularizer, **kwargs,
        )
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ArgumentError(
                "`strides` > 1 cannot be combined with `dilation_rate` > 1. "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}."
            )
        self.padding = normalize_padding(padding)
        self.data_format = check_data_format(data_format)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self._set_weight_arguments(locals())
        self.input_spec = InputSpec(ndim=self.rank + 3)

    # -- shapes ----------------------------------------------------------------------------

    @property
    def _channels_last(self) -> bool:
        return self.data_format == "channels_last"

    def _step_axes(self) -> tuple[int, tuple[int, ...]]:
        """The sequence's channel axis and spatial axes."""
        rank = self.rank
        if self._channels_last:
            return rank + 2, tuple(range(2, rank + 2))
        return 2, tuple(range(3, rank + 3))

    def state_shape(self, input_shape: Shape) -> dict[str, int | None]:
        """The named axes of ``h``, ``c`` and one step's output, in the data format:
        ``{"batch", *spatial, "filters"}`` (channels first: ``"filters"`` after ``"batch"``)."""
        input_shape = tuple(input_shape)
        _, spatial_axes = self._step_axes()
        spatial = tuple(input_shape[a] for a in spatial_axes) if len(input_shape) == self.rank + 3 else (None,) * self.rank
        try:
            sizes = output_size(spatial, self.kernel_size, self.strides, self.dilation_rate, self.padding)
        except InputShapeError:
            raise InputShapeError(
                f"the input's spatial size is smaller than the dilated kernel {self.kernel_size} "
                f"(dilation {self.dilation_rate}) with padding={self.padding!r}. Received: input shape={input_shape}."
            ) from None
        named = dict(zip(_SPATIAL_NAMES[self.rank], sizes))
        if self._channels_last:
            return {"batch": input_shape[0], **named, "filters": self.filters}
        return {"batch": input_shape[0], "filters": self.filters, **named}

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        channel_axis, spatial_axes = self._step_axes()
        channels = input_shape[channel_axis]
        spatial = tuple(input_shape[a] for a in spatial_axes)
        if channels is None or None in spatial:
            raise ArgumentError(
                "the channel and spatial axes of the input must be known to build (the states have the "
                f"convolution's output shape). Received: input_shape={tuple(input_shape)}."
            )
        self.state_shape(input_shape)  # refuses inputs smaller than the kernel, as Keras's build
        axes = {channel_axis: channels, **dict(zip(spatial_axes, spatial))}
        self.input_spec = InputSpec(ndim=self.rank + 3, axes=axes)
        return {**dict(zip(kernel_axes(self.rank), self.kernel_size)), "in": channels, "state": self.filters,
                "filters": self.filters}

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        if weight.name == "bias" and self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.filters)
        return super().initializer_for(weight)

    # -- the cell --------------------------------------------------------------------------

    def dropout_masks(self, inputs: torch.Tensor, generator: torch.Generator | None) -> DropoutMasks:
        """Keras's ``ConvLSTMCell`` masks: four per-gate masks of one step's input
        ``(4, batch, *step)`` and four of the state ``(4, batch, *state)``, drawn per element,
        scaled by ``1 / (1 - rate)``; ``None`` unless ``0 < rate < 1``."""
        state = tuple(self.state_shape(tuple(inputs.shape)).values())

        def draw(shape: tuple[int, ...], rate: float) -> torch.Tensor | None:
            if not 0.0 < rate < 1.0:
                return None
            keep = torch.rand((4, *shape), generator=generator, device=inputs.device) >= rate
            return keep.to(inputs.dtype) / (1.0 - rate)

        return draw((inputs.shape[0], *inputs.shape[2:]), self.dropout), draw(state, self.recurrent_dropout)

    def recurrence(
        self,
        inputs: torch.Tensor,
        initial_state: list[torch.Tensor] | None,
        mask: torch.Tensor | None,
        dropout_masks: DropoutMasks,
    ) -> tuple[torch.Tensor, list[torch.Tensor], str]:
        outputs, h, c = conv_lstm(
            inputs,
            self.weight_view("kernel"),
            self.weight_view("recurrent_kernel"),
            self.weight_view("bias") if self.use_bias else None,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            channels_last=self._channels_last,
            initial_state=initial_state,
            mask=mask,
            go_backwards=self.go_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            dropout_mask=dropout_masks[0],
            recurrent_dropout_mask=dropout_masks[1],
        )
        return outputs, [h, c], "loop"

    # -- export, config --------------------------------------------------------------------

    def export_refusal(self) -> str | None:
        return (
            f"`{type(self).__name__}` runs a loop over time with a convolution per step: ONNX has no convolutional "
            "recurrent operator, and an export would unroll the loop at a fixed length"
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            "unit_forget_bias": self.unit_forget_bias,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


class ConvLSTM1D(ConvLSTM):
    """1-D convolutional LSTM over ``(batch, time, steps, channels)`` sequences, as
    ``keras.layers.ConvLSTM1D``: per time step, ``z = conv1d(x_t, kernel) + bias +
    conv1d(h, recurrent_kernel)`` (the recurrent conv stride 1, 'same'), gates ``i, f, c, o``
    as `LSTM`'s. The input convolution of every time step is one conv before the loop.

    Args:
        filters, kernel_size, strides, padding, data_format, dilation_rate, activation,
            recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, activity_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, dropout, recurrent_dropout, seed, return_sequences, return_state,
            go_backwards, stateful, unroll, zero_output_for_mask: as `ConvLSTM`'s (1 spatial axis).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, time, width, channels)``, or ``(batch, time, channels, width)``
            with ``channels_first``.
        mask: ``(batch, time)`` booleans, ``True`` for steps to use.
        training: whether dropout applies (default: the module's ``training`` flag).
        initial_state: ``[h0, c0]``, each of the state's shape.

    Output shape:
        ``(batch, new_width, filters)`` (the state's shape; channels first:
        ``(batch, filters, new_width)``), or ``(batch, time, ...)`` of them with
        ``return_sequences``; with ``return_state``, followed by ``h`` and ``c``.

    Weights:
        kernel: ``(kw, in, 4*filters)``; torch view ``(4*filters, in, kw)`` (gates ``ifco``).
        recurrent_kernel: ``(kw, state, 4*filters)``; torch view ``(4*filters, state, kw)``;
        ``state`` is ``filters``.
        bias: ``(4*filters,)``, if ``use_bias``.
        Keras paths ``cell/kernel``, ``cell/recurrent_kernel``, ``cell/bias``.
        Gate views, live: ``kernel_i/f/c/o``, ``recurrent_kernel_i/f/c/o``, ``bias_i/f/c/o``.

    Example:
        >>> layer = ConvLSTM1D(6, 3, padding="same", return_sequences=True)
        >>> layer(torch.randn(2, 5, 11, 4)).shape
        torch.Size([2, 5, 11, 6])
        >>> tuple(layer.kernel.shape), tuple(layer.kernel_f.shape)
        ((3, 4, 24), (3, 4, 6))
    """

    rank = 1
    LAYOUT = conv_lstm_layout(1)


class ConvLSTM2D(ConvLSTM):
    """2-D convolutional LSTM (Shi et al. 2015) over ``(batch, time, rows, cols, channels)``
    sequences, as ``keras.layers.ConvLSTM2D``: per time step, ``z = conv2d(x_t, kernel) + bias
    + conv2d(h, recurrent_kernel)`` (the recurrent conv stride 1, 'same'), gates ``i, f, c, o``
    as `LSTM`'s. The input convolution of every time step is one conv before the loop, in
    channels-last memory for a channels-last layer.

    Args:
        filters, kernel_size, strides, padding, data_format, dilation_rate, activation,
            recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, activity_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, dropout, recurrent_dropout, seed, return_sequences, return_state,
            go_backwards, stateful, unroll, zero_output_for_mask: as `ConvLSTM`'s (2 spatial axes).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, time, rows, cols, channels)``, or ``(batch, time, channels, rows, cols)``
            with ``channels_first``.
        mask: ``(batch, time)`` booleans, ``True`` for steps to use.
        training: whether dropout applies (default: the module's ``training`` flag).
        initial_state: ``[h0, c0]``, each of the state's shape.

    Output shape:
        ``(batch, new_rows, new_cols, filters)`` (the state's shape; channels first:
        ``(batch, filters, new_rows, new_cols)``), or ``(batch, time, ...)`` of them with
        ``return_sequences``; with ``return_state``, followed by ``h`` and ``c``.

    Weights:
        kernel: ``(kh, kw, in, 4*filters)``; torch view ``(4*filters, in, kh, kw)`` (gates ``ifco``).
        recurrent_kernel: ``(kh, kw, state, 4*filters)``; torch view ``(4*filters, state, kh, kw)``;
        ``state`` is ``filters``.
        bias: ``(4*filters,)``, if ``use_bias``.
        Keras paths ``cell/kernel``, ``cell/recurrent_kernel``, ``cell/bias``.
        Gate views, live: ``kernel_i/f/c/o`` ``(kh, kw, in, filters)``,
        ``recurrent_kernel_i/f/c/o``, ``bias_i/f/c/o`` ``(filters,)``.

    Example:
        >>> layer = ConvLSTM2D(8, (3, 2), strides=2, padding="same", return_state=True)
        >>> output, h, c = layer(torch.randn(2, 4, 7, 9, 3))
        >>> output.shape, c.shape
        (torch.Size([2, 4, 5, 8]), torch.Size([2, 4, 5, 8]))
        >>> tuple(layer.recurrent_kernel.shape), tuple(layer.bias_f.shape)
        ((3, 2, 8, 32), (8,))
    """

    rank = 2
    LAYOUT = conv_lstm_layout(2)


class ConvLSTM3D(ConvLSTM):
    """3-D convolutional LSTM over ``(batch, time, depth, rows, cols, channels)`` sequences, as
    ``keras.layers.ConvLSTM3D``: per time step, ``z = conv3d(x_t, kernel) + bias +
    conv3d(h, recurrent_kernel)`` (the recurrent conv stride 1, 'same'), gates ``i, f, c, o``
    as `LSTM`'s. The input convolution of every time step is one conv before the loop.

    Args:
        filters, kernel_size, strides, padding, data_format, dilation_rate, activation,
            recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, activity_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, dropout, recurrent_dropout, seed, return_sequences, return_state,
            go_backwards, stateful, unroll, zero_output_for_mask: as `ConvLSTM`'s (3 spatial axes).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: ``(batch, time, depth, rows, cols, channels)``, or
            ``(batch, time, channels, depth, rows, cols)`` with ``channels_first``.
        mask: ``(batch, time)`` booleans, ``True`` for steps to use.
        training: whether dropout applies (default: the module's ``training`` flag).
        initial_state: ``[h0, c0]``, each of the state's shape.

    Output shape:
        ``(batch, new_depth, new_rows, new_cols, filters)`` (the state's shape; channels first:
        ``(batch, filters, ...)``), or ``(batch, time, ...)`` of them with ``return_sequences``;
        with ``return_state``, followed by ``h`` and ``c``.

    Weights:
        kernel: ``(kd, kh, kw, in, 4*filters)``; torch view ``(4*filters, in, kd, kh, kw)`` (gates ``ifco``).
        recurrent_kernel: ``(kd, kh, kw, state, 4*filters)``; torch view ``(4*filters, state, kd, kh, kw)``;
        ``state`` is ``filters``.
        bias: ``(4*filters,)``, if ``use_bias``.
        Keras paths ``cell/kernel``, ``cell/recurrent_kernel``, ``cell/bias``.
        Gate views, live: ``kernel_i/f/c/o``, ``recurrent_kernel_i/f/c/o``, ``bias_i/f/c/o``.

    Example:
        >>> layer = ConvLSTM3D(4, 3, padding="same", return_sequences=True)
        >>> layer(torch.randn(2, 3, 5, 6, 7, 2)).shape
        torch.Size([2, 3, 5, 6, 7, 4])
        >>> tuple(layer.kernel.shape)
        (3, 3, 3, 2, 16)
    """

    rank = 3
    LAYOUT = conv_lstm_layout(3)
