"""Weight layouts: each weight declared once, every other view derived from it.

A layer lists its weights in a ``LAYOUT`` class attribute. Each :class:`Weight` names its
storage axes (Keras's layout, which is what ``get_weights`` returns and what the
parameter holds) and the orders in which torch and ONNX want the same axes. A gated
weight (LSTM, GRU) has an axis called ``"gate"``; it is stored fused with the axis that
follows it, as Keras does (``kernel (in, 4*units)``), and the gate order along it is
given per framework.

Conversions are derived from the declaration and never written by hand. The verbs are
*split* / *merge* (reshape the gate axis out and back), *gates* (reorder gates) and
*permute*; each has an exact inverse, so a round trip is bit-exact.

Conformance, porting and ONNX export read ``LAYOUT`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from .errors import WeightShapeError

__all__ = ["GATE_ALIASES", "Framework", "Weight"]

Framework = Literal["keras", "torch", "onnx"]

GATE_AXIS = "gate"

# torch's and ONNX's letters for Keras's gates: torch calls LSTM's cell gate ``g`` and
# GRU's candidate ``n``; Keras calls them ``c`` and ``h``.
GATE_ALIASES: Mapping[str, str] = {"g": "c", "n": "h"}


def _canonical(gates: str) -> str:
    return "".join(GATE_ALIASES.get(letter, letter) for letter in gates)


@dataclass(frozen=True)
class Weight:
    """One weight of a layer, declared once.

    Args:
        name: Keras's name of the weight (``"kernel"``), also its ``state_dict`` key.
        axes: storage axes in Keras's order, named; sizes come from ``build``.
        torch: the same axis names in the order torch's functional op wants them.
        onnx: the order ONNX's operator wants; defaults to ``torch``.
        gates: Keras's gate order along the ``"gate"`` axis (``"ifco"``), empty if none.
        torch_gates: torch's gate order, in torch's letters (``"ifgo"``); defaults to ``gates``.
        onnx_gates: ONNX's gate order (``"iofc"``); defaults to ``gates``.
        role: prefix of the layer's ``*_initializer``, ``*_regularizer`` and
            ``*_constraint`` arguments (``"recurrent"`` for ``recurrent_kernel``);
            defaults to ``name``.
        enabled_by: the config flag that turns the weight on (``"use_bias"``), if any.
        trainable: whether the weight takes gradients.
        path: the Keras variable's path inside its layer, sub-layer attributes then the
            variable's name (``"cell/kernel"`` for a Keras 3 LSTM); defaults to ``name``.
    """

    name: str
    axes: tuple[str, ...]
    torch: tuple[str, ...] | None = None
    onnx: tuple[str, ...] | None = None
    gates: str = ""
    torch_gates: str = ""
    onnx_gates: str = ""
    role: str = ""
    enabled_by: str | None = None
    trainable: bool = True
    path: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_permutations", {})  # (source, target) -> permutation, or None for none
        for view in ("torch", "onnx"):
            order = getattr(self, view)
            if order is not None and sorted(order) != sorted(self.axes):
                raise ValueError(f"`{self.name}`: {view} axes {order} are not a permutation of {self.axes}.")
        if (GATE_AXIS in self.axes) != bool(self.gates):
            raise ValueError(f"`{self.name}`: a `gate` axis needs `gates`, and `gates` needs a `gate` axis.")
        if self.gates:
            if self.axes.index(GATE_AXIS) == len(self.axes) - 1:
                raise ValueError(f"`{self.name}`: the `gate` axis must precede the axis it is fused with.")
            for order in (self.torch_gates, self.onnx_gates):
                if order and sorted(_canonical(order)) != sorted(self.gates):
                    raise ValueError(f"`{self.name}`: gate order {order!r} is not a permutation of {self.gates!r}.")

    # -- declared views ---------------------------------------------------------------

    @property
    def keras_path(self) -> str:
        """The Keras variable path inside the layer (``"cell/kernel"``, or just ``"kernel"``)."""
        return self.path or self.name

    @property
    def key(self) -> str:
        """Prefix of the layer's initializer/regularizer/constraint arguments."""
        return self.role or self.name

    def order(self, framework: Framework) -> tuple[str, ...]:
        """The axis names, in the order ``framework`` stores them."""
        if framework == "keras":
            return self.axes
        if framework == "torch":
            return self.torch or self.axes
        return self.onnx or self.torch or self.axes

    def permutation(self, source: Framework, target: Framework) -> tuple[int, ...]:
        """Axes of ``source``'s layout in ``target``'s order, for ``tensor.permute`` (ungated weights)."""
        src = self.order(source)
        return tuple(src.index(axis) for axis in self.order(target))

    def gate_order(self, framework: Framework) -> str:
        """The gate order of ``framework`` in Keras's letters (``""`` if ungated)."""
        declared = {"keras": self.gates, "torch": self.torch_gates, "onnx": self.onnx_gates}[framework]
        return _canonical(declared or self.gates)

    def split_shape(self, sizes: Mapping[str, int], framework: Framework = "keras") -> tuple[int, ...]:
        """Shape with the gate axis standing apart, in ``framework``'s order."""
        return tuple(len(self.gates) if axis == GATE_AXIS else sizes[axis] for axis in self.order(framework))

    def shape(self, sizes: Mapping[str, int], framework: Framework = "keras") -> tuple[int, ...]:
        """Stored shape in ``framework``'s order: the gate axis merged with the next one."""
        return _merge_gate(self.order(framework), self.split_shape(sizes, framework))

    def describe(self, sizes: Mapping[str, int] | None = None, framework: Framework = "keras") -> str:
        """Human-readable shape with axis names, e.g. ``(in, units)`` or ``(in=784, units=128)``."""
        names = _merged_names(self.order(framework), len(self.gates))
        if sizes is not None:
            names = [f"{n}={s}" for n, s in zip(names, self.shape(sizes, framework))]
        return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"

    def sizes_from(self, shape: tuple[int, ...]) -> dict[str, int]:
        """Axis sizes read off a Keras-layout ``shape`` (the inverse of :meth:`shape`)."""
        plain = [axis for axis in self.axes if axis != GATE_AXIS]
        fused = self._fused_axis(self.axes)
        return {a: (s // len(self.gates) if a == fused else s) for a, s in zip(plain, shape)}

    def _fused_axis(self, axes: tuple[str, ...]) -> str | None:
        """The axis the gate axis is merged with in ``axes`` (None if ungated)."""
        return axes[axes.index(GATE_AXIS) + 1] if self.gates else None

    # -- gate-split views ----------------------------------------------------------------

    def gate_names(self) -> dict[str, int]:
        """``{"kernel_i": 0, "kernel_f": 1, ...}``: Keras's per-gate names and positions."""
        return {f"{self.name}_{letter}": index for index, letter in enumerate(self.gates)}

    def gate_slice(self, value: torch.Tensor, index: int) -> torch.Tensor:
        """The live view of gate ``index`` of a Keras-layout ``value`` (no copy)."""
        axis = self.axes.index(GATE_AXIS)
        width = value.shape[axis] // len(self.gates)
        return value.narrow(axis, index * width, width)

    # -- conversions ---------------------------------------------------------------------

    def convert(self, value: torch.Tensor, source: Framework, target: Framework) -> torch.Tensor:
        """Re-lay ``value`` from ``source``'s layout into ``target``'s.

        Split the gate axis out, reorder gates, permute axes, merge the gate axis back.
        The result is a view where torch allows one; call ``.contiguous()`` to own it.
        """
        if not self.gates:  # the hot path: a permutation, worked out once per pair of layouts
            try:
                permutation = self._permutations[source, target]
            except KeyError:
                permutation = self.permutation(source, target)
                permutation = None if permutation == tuple(range(len(permutation))) else permutation
                self._permutations[source, target] = permutation
            return value if permutation is None else value.permute(permutation)
        src_axes, dst_axes = self.order(source), self.order(target)
        split = self._split(value, src_axes)
        if self.gates:
            src_gates, dst_gates = self.gate_order(source), self.gate_order(target)
            if src_gates != dst_gates:
                index = torch.tensor([src_gates.index(g) for g in dst_gates], device=value.device)
                split = split.index_select(src_axes.index(GATE_AXIS), index)
        split = split.permute([src_axes.index(axis) for axis in dst_axes])
        return split.reshape(_merge_gate(dst_axes, tuple(split.shape)))

    def _split(self, value: torch.Tensor, axes: tuple[str, ...]) -> torch.Tensor:
        """Reshape so that the gate axis stands apart, just before the axis it was fused with."""
        if not self.gates:
            return value
        fused = self._fused_axis(axes)
        plain = [axis for axis in axes if axis != GATE_AXIS]
        shape: list[int] = []
        for axis, size in zip(plain, value.shape):
            shape += [len(self.gates), size // len(self.gates)] if axis == fused else [size]
        return value.reshape(shape)

    def check(self, label: str, value_shape: tuple[int, ...], sizes: Mapping[str, int], framework: Framework = "keras") -> None:
        """Raise :class:`WeightShapeError` unless ``value_shape`` is this weight's shape.

        ``label`` names the owner, as errors begin (a layer's ``_label``)."""
        if tuple(value_shape) != self.shape(sizes, framework):
            raise WeightShapeError(
                f"{label}: weight `{self.keras_path}` must have shape {self.describe(sizes, framework)} in {framework} "
                f"layout. Received: shape={tuple(value_shape)}."
            )


def _merge_gate(axes: tuple[str, ...], split_shape: tuple[int, ...]) -> tuple[int, ...]:
    if GATE_AXIS not in axes:
        return tuple(split_shape)
    at = axes.index(GATE_AXIS)
    return (*split_shape[:at], split_shape[at] * split_shape[at + 1], *split_shape[at + 2 :])


def _merged_names(axes: tuple[str, ...], gate_count: int) -> list[str]:
    names: list[str] = []
    skip = False
    for i, axis in enumerate(axes):
        if skip:
            skip = False
            continue
        if axis == GATE_AXIS:
            names.append(f"{gate_count}*{axes[i + 1]}")
            skip = True
        else:
            names.append(axis)
    return names
