"""The tolerance policy: the one place that says how close is equal.

An element passes when ``|actual - expected| <= FACTOR[device] * (rtol * |expected| + atol * scale)``
where ``scale = max(1, max |expected|)`` over the whole tensor (its finite elements), so bounds
follow each tensor's magnitude (a gradient of size 1e3 is not held to an absolute 1e-6), and
``(rtol, atol)`` comes from the dtype. ``FACTOR`` widens bounds for comparisons across
frameworks (different summation orders, different fused kernels) and devices.

``elementwise=True`` takes ``scale = max(1, |expected|)`` per element instead: for elementwise
functions (activations) whose outputs span many magnitudes, where one element's size says
nothing about another's error (``squareplus(-1e4) = 1e-4`` beside ``squareplus(1e4) = 1e4``).

Equal values (infinities of the same sign included) and NaN against NaN always match.

A whole network is held to its reference's own rounding instead (`compare_with_noise`): float32
rounding compounds over a deep network, so one operation's bound does not hold end to end, and
how far it compounds depends on the weights and the input (the conditioning of the point). There
the yardstick is the reference framework's own float32 error against its float64 result with the
same weights and inputs: xlayers' float32 output may be at most ``NOISE_FACTOR`` times as far from
that float64 result as the reference's float32 output is (the greatest absolute difference over
the tensor), plus the policy's absolute term. A real fault moves xlayers away from the float64
result while the reference's noise stays where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Comparison", "DTYPE_TOLERANCE", "FACTOR", "NOISE_FACTOR", "NoiseComparison", "assert_close", "compare",
           "compare_with_noise", "tolerance"]

# (rtol, atol) per dtype: a few units in the last place, times the accumulation depth seen in
# practice (convolutions and LSTMs sum hundreds of terms).
DTYPE_TOLERANCE: dict[str, tuple[float, float]] = {
    "float64": (1e-10, 1e-12),
    "float32": (2e-6, 2e-7),
    "bfloat16": (1.6e-2, 4e-3),
    "float16": (2e-3, 5e-4),
}

# Reported relative errors divide by |expected| floored at this fraction of the tensor's largest
# magnitude, so rounding on near-zero elements does not read as a large relative error.
REL_FLOOR = 1e-3

# Cross-framework factor per device: Keras on CPU vs xlayers on this device.
FACTOR: dict[str, float] = {"cpu": 8.0, "cuda": 16.0}

# A whole network's float32 error against the float64 result, as a multiple of the reference
# framework's own (two frameworks rounding independently land at about the same distance; 4 leaves
# room for a different summation order without admitting a fault that doubles the error).
NOISE_FACTOR = 4.0


def tolerance(dtype: str | torch.dtype, device: str = "cpu") -> tuple[float, float]:
    """``(rtol, atol)`` for ``dtype`` on ``device``, the cross-framework factor applied."""
    name = str(dtype).removeprefix("torch.")
    rtol, atol = DTYPE_TOLERANCE[name]
    factor = FACTOR[str(device).split(":")[0]]
    return rtol * factor, atol * factor


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing two arrays under the policy."""

    passed: bool
    max_abs_error: float
    max_rel_error: float  # |a - e| / max(|e|, REL_FLOOR * scale)
    mismatched: int
    total: int
    worst_index: tuple[int, ...]
    rtol: float
    atol: float
    scale: float
    bound_fraction: float = 0.0  # the largest |a - e| / (rtol * |e| + atol * scale): passes while <= 1

    def describe(self, what: str) -> str:
        return (
            f"{what}: {self.mismatched}/{self.total} elements outside tolerance "
            f"(rtol={self.rtol:.1e}, atol={self.atol:.1e} x scale {self.scale:.3g}); "
            f"greatest abs diff {self.max_abs_error:.3e}, greatest rel diff {self.max_rel_error:.3e} "
            f"at index {self.worst_index}"
        )


def _numpy(value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.double() if value.dtype in (torch.bfloat16, torch.float16) else value
        return value.numpy()
    return np.asarray(value)


def compare(
    actual: object,
    expected: object,
    dtype: str | torch.dtype,
    device: str = "cpu",
    override: tuple[float, float] | None = None,
    *,
    elementwise: bool = False,
) -> Comparison:
    """Compare ``actual`` against ``expected`` under the policy for ``dtype`` on ``device``
    (or under a case's documented ``(rtol, atol)`` override); ``elementwise=True`` scales
    ``atol`` by each element's own magnitude. ``Comparison.scale`` is the largest scale used;
    ``worst_index`` is where the absolute difference is greatest (elementwise: the relative one,
    as absolute differences of elements of unrelated magnitudes do not compare)."""
    a = _numpy(actual).astype(np.float64)
    e = _numpy(expected).astype(np.float64)
    rtol, atol = override if override is not None else tolerance(dtype, device)
    if a.shape != e.shape:
        return Comparison(False, float("inf"), float("inf"), max(a.size, e.size), max(a.size, e.size), (), rtol, atol, 0.0)
    if a.size == 0:
        return Comparison(True, 0.0, 0.0, 0, 0, (), rtol, atol, 0.0, 0.0)
    magnitude = np.where(np.isfinite(e), np.abs(e), 0.0)
    scale = np.maximum(1.0, magnitude) if elementwise else np.full(e.shape, max(1.0, float(np.max(magnitude))))
    with np.errstate(invalid="ignore"):
        diff = np.asarray(np.abs(a - e))  # an array even for 0-d inputs (scalar weights)
    diff[(a == e) | (np.isnan(a) & np.isnan(e))] = 0.0
    diff[np.isnan(diff)] = np.inf
    bound = rtol * np.abs(e) + atol * scale
    bad = diff > bound
    with np.errstate(invalid="ignore"):
        rel = np.asarray(diff / np.maximum(np.abs(e), REL_FLOOR * scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(diff == 0.0, 0.0, diff / bound)
    rel[np.isnan(rel)] = 0.0  # an infinite diff at an infinite expected value counts in `diff` and `bad`
    worst = np.unravel_index(int(np.argmax(rel if elementwise else diff)), diff.shape)
    return Comparison(
        passed=not bool(bad.any()),
        max_abs_error=float(diff.max()),
        max_rel_error=float(rel.max()),
        mismatched=int(bad.sum()),
        total=int(diff.size),
        worst_index=tuple(int(i) for i in worst),
        rtol=rtol,
        atol=atol,
        scale=float(scale.max()),
        bound_fraction=float(np.nan_to_num(fraction, nan=np.inf).max()),
    )


def assert_close(
    actual: object,
    expected: object,
    dtype: str | torch.dtype = "float32",
    device: str = "cpu",
    what: str = "output",
    *,
    elementwise: bool = False,
) -> Comparison:
    """``compare`` and raise ``AssertionError`` with the policy's failure line if it fails."""
    result = compare(actual, expected, dtype, device, elementwise=elementwise)
    if not result.passed:
        raise AssertionError(result.describe(what))
    return result


@dataclass(frozen=True)
class NoiseComparison:
    """A whole network's output against the float64 result, measured against the reference's own
    float32 error (see the module docstring)."""

    passed: bool
    error: float  # max |actual - exact|
    noise: float  # max |reference - exact|: the reference's own rounding at this point
    bound: float  # NOISE_FACTOR * noise + atol * scale

    @property
    def ratio(self) -> float:
        """``error`` as a multiple of the reference's own float32 error."""
        return self.error / self.noise if self.noise else (0.0 if self.error == 0 else float("inf"))

    def describe(self, what: str) -> str:
        return (f"{what}: max abs error against the float64 result {self.error:.3g}, the reference's own float32 "
                f"error {self.noise:.3g} ({self.ratio:.2f}x; bound {NOISE_FACTOR:g}x plus atol: {self.bound:.3g})")


def compare_with_noise(
    actual: object, reference: object, exact: object, dtype: str | torch.dtype = "float32", device: str = "cpu"
) -> NoiseComparison:
    """``actual`` (xlayers in ``dtype``) and ``reference`` (Keras in ``dtype``) against ``exact``
    (Keras in float64, same weights and inputs): passes while ``max|actual - exact|`` is at most
    ``NOISE_FACTOR * max|reference - exact| + atol * scale``. Shapes must agree; a NaN fails."""
    a, r, e = (_numpy(v).astype(np.float64) for v in (actual, reference, exact))
    if a.shape != e.shape or r.shape != e.shape:
        return NoiseComparison(False, float("inf"), float("nan"), 0.0)
    if e.size == 0:
        return NoiseComparison(True, 0.0, 0.0, 0.0)
    _, atol = tolerance(dtype, device)
    scale = max(1.0, float(np.max(np.where(np.isfinite(e), np.abs(e), 0.0))))
    error = float(np.nan_to_num(np.abs(a - e), nan=np.inf).max())
    noise = float(np.nan_to_num(np.abs(r - e), nan=np.inf).max())
    bound = NOISE_FACTOR * noise + atol * scale
    return NoiseComparison(error <= bound and np.isfinite(error), error, noise, bound)
