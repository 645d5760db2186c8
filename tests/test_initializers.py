"""xlayers.initializers against keras.initializers (TensorFlow backend)."""

from __future__ import annotations

import json
import math
import os
import re

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from keras.src.initializers import ALL_OBJECTS_DICT as KERAS_INITIALIZERS  # noqa: E402
from keras.src.initializers.random_initializers import compute_fans as keras_compute_fans  # noqa: E402

from xlayers import initializers  # noqa: E402
from xlayers.errors import ArgumentError, ArgumentTypeError, UnknownNameError  # noqa: E402

NAMES = initializers.names()

# Keras layout (kh, kw, in, out): fan_in = 3*3*64 = 576, fan_out = 3*3*48 = 432; 27648 samples.
BIG_SHAPE = (3, 3, 64, 48)
SMALL_SHAPE = (3, 3, 4, 5)


def _shape_for(init, big: bool = False):
    if isinstance(init, initializers.Identity):
        return (40, 60) if big else (4, 6)
    if isinstance(init, initializers.STFT):
        return (16, 1, 9)
    return BIG_SHAPE if big else SMALL_SHAPE


def _is_random(init) -> bool:
    return not initializers.is_deterministic(init)


def _seeded(init, seed):
    return type(init).from_config({**init.get_config(), "seed": seed}) if _is_random(init) else init


def _keras_instance(name, seed=None):
    """Keras counterpart. Built from the class: `keras.initializers.get("constant")`
    raises in Keras 3.15 (Constant.from_config needs 'value'), and STFT's default
    window needs scipy, which is not installed, so STFT uses window=None."""
    cls = KERAS_INITIALIZERS[name]
    if cls.__name__ == "STFT":
        return cls(window=None)
    obj = cls()
    if seed is not None and "seed" in obj.get_config():
        obj = cls.from_config({**obj.get_config(), "seed": seed})
    return obj


def _ours_for_keras(name):
    init = initializers.get(name)
    if isinstance(init, initializers.STFT):
        init = initializers.STFT(window=None)
    return init


def test_registry_matches_keras():
    # Keras also registers its abstract base class ("Initializer"/"initializer"),
    # which cannot produce values; xlayers leaves it out.
    assert set(NAMES) == set(KERAS_INITIALIZERS) - {"Initializer", "initializer"}
    assert NAMES == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, "float64", None])
def test_shape_and_dtype(name, dtype):
    init = initializers.get(name)
    shape = _shape_for(init)
    out = init(shape) if dtype is None else init(shape, dtype=dtype)
    expected = {None: torch.float32, "float64": torch.float64}.get(dtype, dtype)
    assert out.dtype == expected
    assert tuple(out.shape) == tuple(shape)
    assert torch.isfinite(out.float()).all()
    assert init(list(shape), device="cpu").shape == torch.Size(shape)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_reproducible(name):
    init = _seeded(initializers.get(name), 42)
    shape = _shape_for(init)
    torch.manual_seed(0)
    a = init(shape)
    torch.manual_seed(1)  # the global RNG must not matter
    b = init(shape)
    c = _seeded(initializers.get(name), 42)(shape)  # nor the instance
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    if _is_random(init):
        # Lower precisions are the cast float32 draw (float64 draws in double precision).
        torch.testing.assert_close(init(shape, dtype=torch.float16), a.half(), rtol=0, atol=0)
        d = _seeded(initializers.get(name), 43)(shape)
        assert not torch.equal(a, d)


@pytest.mark.parametrize("name", NAMES)
def test_unseeded_uses_global_rng(name):
    init = initializers.get(name)
    shape = _shape_for(init)
    torch.manual_seed(123)
    a = init(shape)
    b = init(shape)
    torch.manual_seed(123)
    c = init(shape)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    if _is_random(init):
        assert not torch.equal(a, b)


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _is_bounded(init) -> bool:
    if isinstance(init, initializers.VarianceScaling):
        return init.distribution != "untruncated_normal"
    return isinstance(init, (initializers.RandomUniform, initializers.TruncatedNormal))


@pytest.mark.parametrize("name", NAMES)
def test_statistics_match_keras(name):
    ours_init = _seeded(_ours_for_keras(name), 2024)
    shape = _shape_for(ours_init, big=True)
    ours = ours_init(shape).numpy().ravel()
    theirs = keras.ops.convert_to_numpy(_keras_instance(name, seed=2024)(shape)).ravel()
    assert ours.shape == theirs.shape
    if initializers.is_deterministic(ours_init):
        # Same values as Keras: exactly, except STFT, which Keras computes in float32 and xlayers in
        # float64 (then rounds), 2.7e-6 apart at most.
        atol = 1e-5 if isinstance(ours_init, initializers.STFT) else 0.0
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol)
        return
    std = theirs.std()
    n = ours.size
    assert abs(ours.mean() - theirs.mean()) < 6 * std / math.sqrt(n)
    assert abs(ours.std() / std - 1) < 0.04
    # Two-sample Kolmogorov-Smirnov test at alpha ~ 1e-6.
    assert _ks_statistic(ours, theirs) < 2.7 * math.sqrt(2.0 / n)
    tol = 0.02 * std if _is_bounded(ours_init) else 1.5 * std
    assert abs(ours.min() - theirs.min()) < tol
    assert abs(ours.max() - theirs.max()) < tol


DETERMINISTIC = {"Constant", "Identity", "Ones", "STFT", "Zeros"}


@pytest.mark.parametrize("name", NAMES)
def test_is_deterministic(name):
    init = initializers.get(name)
    expected = type(init).__name__ in DETERMINISTIC
    assert init.deterministic is type(init).deterministic is expected
    assert initializers.is_deterministic(init) is expected
    assert initializers.is_deterministic(type(init)) is expected
    assert initializers.is_deterministic(name) is expected
    assert initializers.is_deterministic(initializers.serialize(init)) is expected
    # Random initializers, and only they, take a seed.
    assert ("seed" in init.get_config()) is not expected
    shape = _shape_for(init)
    torch.manual_seed(0)
    first = init(shape)
    torch.manual_seed(1)  # a deterministic initializer ignores the global RNG; a random one does not
    assert torch.equal(first, init(shape)) is expected


def test_is_deterministic_plain_callables():
    def zeros(shape, dtype=None, device=None):
        return torch.zeros(shape, dtype=dtype, device=device)

    assert initializers.is_deterministic(zeros) is False  # unmarked: not assumed
    zeros.deterministic = True
    assert initializers.is_deterministic(zeros) is True
    assert initializers.is_deterministic(lambda shape, dtype=None, device=None: torch.randn(shape)) is False
    assert initializers.is_deterministic(None) is False
    assert initializers.is_deterministic(initializers.Constant(2.0)) is True
    assert initializers.is_deterministic(initializers.GlorotUniform(seed=1)) is False  # seeded, still random

    class Halves(initializers.Initializer):  # subclasses are random unless they say otherwise
        def __call__(self, shape, dtype=torch.float32, device=None):
            return torch.full(shape, 0.5, dtype=dtype, device=device)

    assert initializers.is_deterministic(Halves()) is False
    Halves.deterministic = True
    assert initializers.is_deterministic(Halves()) is True
    with pytest.raises(UnknownNameError, match=r"Received: initializer='nope'"):
        initializers.is_deterministic("nope")


@pytest.mark.parametrize(
    "shape",
    [(), (7,), (3, 5), (5, 3), (3, 3, 16, 32), (2, 3, 4, 5, 6), (4, 8, 1)],
)
def test_compute_fans_matches_keras(shape):
    assert initializers.compute_fans(shape) == keras_compute_fans(shape)


def test_compute_fans_values():
    assert initializers.compute_fans((7,)) == (7, 7)
    assert initializers.compute_fans((3, 5)) == (3, 5)
    assert initializers.compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)
    assert initializers.compute_fans((2, 3, 4), input_axes=[0, 1], output_axes=[2]) == (6, 4)
    assert initializers.compute_fans((2, 3, 4), input_axes=[0, 1], output_axes=[2]) == keras_compute_fans(
        (2, 3, 4), input_axes=[0, 1], output_axes=[2]
    )


@pytest.mark.parametrize("shape", [(4096,), (64, 128), (3, 3, 32, 16)])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_std(shape, mode, distribution):
    fan_in, fan_out = initializers.compute_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    expected_std = math.sqrt(2.0 / max(1.0, n))
    init = initializers.VarianceScaling(scale=2.0, mode=mode, distribution=distribution, seed=5)
    w = init(shape, dtype=torch.float64)
    assert abs(w.std().item() / expected_std - 1) < 0.05
    if distribution == "uniform":
        limit = math.sqrt(3.0) * expected_std
        assert w.abs().max().item() <= limit
        assert w.abs().max().item() > 0.99 * limit
    elif distribution == "truncated_normal":
        bound = 2 * expected_std / 0.87962566103423978
        assert w.abs().max().item() <= bound
        assert w.abs().max().item() > 0.99 * bound


def test_truncated_normal_bounds():
    w = initializers.TruncatedNormal(mean=1.0, stddev=0.5, seed=0)((20000,), dtype=torch.float64)
    assert w.min().item() >= 0.0 and w.max().item() <= 2.0
    assert abs(w.std().item() - 0.5 * 0.87962566103423978) < 0.01
    assert initializers.TruncatedNormal().get_config() == {"seed": None, "mean": 0.0, "stddev": 0.05}
    assert initializers.RandomNormal().stddev == 0.05
    assert (initializers.RandomUniform().minval, initializers.RandomUniform().maxval) == (-0.05, 0.05)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 3, 4, 8), (2, 3, 40)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal(shape, gain):
    w = initializers.Orthogonal(gain=gain, seed=3)(shape, dtype=torch.float64)
    assert tuple(w.shape) == shape
    flat = w.reshape(-1, shape[-1])
    gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
    torch.testing.assert_close(gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.float64), rtol=0, atol=1e-10)
    # float32 result is orthogonal too.
    w32 = initializers.Orthogonal(gain=gain, seed=3)(shape).reshape(-1, shape[-1])
    gram32 = w32.T @ w32 if w32.shape[0] >= w32.shape[1] else w32 @ w32.T
    torch.testing.assert_close(gram32, gain**2 * torch.eye(gram32.shape[0]), rtol=0, atol=1e-5)


def test_orthogonal_needs_rank_2():
    with pytest.raises(ArgumentError, match=r"rank >= 2"):
        initializers.Orthogonal()((5,))


def test_identity_exact():
    torch.testing.assert_close(initializers.Identity()((3, 5)), torch.eye(3, 5), rtol=0, atol=0)
    torch.testing.assert_close(
        initializers.Identity(gain=2.5)((4, 2), dtype=torch.float64),
        2.5 * torch.eye(4, 2, dtype=torch.float64),
        rtol=0,
        atol=0,
    )
    ours = initializers.Identity(gain=0.5)((4, 3)).numpy()
    theirs = keras.ops.convert_to_numpy(keras.initializers.Identity(gain=0.5)((4, 3)))
    np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ArgumentError, match=r"2-D"):
        initializers.Identity()((2, 2, 2))


def test_constant_exact():
    torch.testing.assert_close(initializers.Constant(3.25)((2, 3)), torch.full((2, 3), 3.25), rtol=0, atol=0)
    torch.testing.assert_close(initializers.Constant(7)((4,), dtype=torch.int64), torch.full((4,), 7), rtol=0, atol=0)
    assert initializers.Constant(torch.tensor(2.0)).get_config() == {"value": 2.0}
    assert initializers.Constant(np.float32(1.5)).value == 1.5
    np.testing.assert_array_equal(
        initializers.Constant(-1.5)((2, 2)).numpy(),
        keras.ops.convert_to_numpy(keras.initializers.Constant(-1.5)((2, 2))),
    )
    assert initializers.Zeros()((2,), dtype=torch.int32).dtype == torch.int32
    torch.testing.assert_close(initializers.Ones()((2, 2)), torch.ones(2, 2), rtol=0, atol=0)


@pytest.mark.parametrize("side", ["real", "imag"])
@pytest.mark.parametrize("scaling", ["density", "spectrum", None])
@pytest.mark.parametrize("window", [None, "array"])
def test_stft_matches_keras(side, scaling, window):
    if window == "array":
        window = np.hanning(16).tolist()
    ours = initializers.STFT(side=side, window=window, scaling=scaling)((16, 1, 9)).numpy()
    theirs = keras.ops.convert_to_numpy(keras.initializers.STFT(side=side, window=window, scaling=scaling)((16, 1, 9)))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_stft_named_windows():
    # scipy is unavailable for Keras here; check the torch windows directly.
    n = 8
    k = np.arange(n)
    hann_sym = 0.5 - 0.5 * np.cos(2 * np.pi * k / (n - 1))
    ours = initializers.STFT(window="hann", scaling=None)((n, 1, 5), dtype=torch.float64).numpy()
    plain = initializers.STFT(window=None, scaling=None)((n, 1, 5), dtype=torch.float64).numpy()
    np.testing.assert_allclose(ours, plain * hann_sym.reshape(n, 1, 1), atol=1e-12)
    hann_periodic = 0.5 - 0.5 * np.cos(2 * np.pi * k / n)
    ours = initializers.STFT(window="hann", scaling=None, periodic=True)((n, 1, 5), dtype=torch.float64).numpy()
    np.testing.assert_allclose(ours, plain * hann_periodic.reshape(n, 1, 1), atol=1e-12)
    with pytest.raises(ArgumentError, match="window"):
        initializers.STFT(window="kaiser")


@pytest.mark.parametrize("name", NAMES)
def test_serialize_roundtrip_and_keras_form(name):
    init = initializers.get(name)
    config = initializers.serialize(init)
    json.dumps(config)
    again = initializers.get(json.loads(json.dumps(config)))
    assert type(again) is type(init) and again.get_config() == init.get_config()
    assert type(init).from_config(init.get_config()).get_config() == init.get_config()
    keras_obj = KERAS_INITIALIZERS[name]
    if keras_obj.__name__ == "STFT":
        return  # Keras cannot build its default STFT without scipy.
    theirs = keras.initializers.serialize(keras_obj())
    assert config["class_name"] == theirs["class_name"]
    assert config["module"] == theirs["module"]
    assert config["config"] == theirs["config"]


def test_identity_keeps_a_gain_that_keras_drops():
    # Keras 3.15's Identity has no get_config (it writes {} whatever the gain); xlayers writes the
    # default as Keras does and keeps any other gain.
    assert keras.initializers.serialize(keras.initializers.Identity(gain=2.0))["config"] == {}
    config = initializers.serialize(initializers.Identity(gain=2.0))
    assert config["config"] == {"gain": 2.0}
    assert initializers.get(config).gain == 2.0


def test_get_accepts_keras_serialized_dicts():
    cfg = keras.initializers.serialize(keras.initializers.GlorotUniform(seed=3))
    init = initializers.get(cfg)
    assert isinstance(init, initializers.GlorotUniform) and init.seed == 3
    keras_init = keras.initializers.VarianceScaling(scale=0.5, mode="fan_out", distribution="normal")
    cfg = keras.initializers.serialize(keras_init)
    init = initializers.get(cfg)
    assert init.get_config() == cfg["config"] and init.distribution == "truncated_normal"
    assert initializers.get({"class_name": "RandomNormal", "config": {"stddev": 2.0}}).stddev == 2.0


def test_get_other_identifiers():
    assert initializers.get(None) is None
    assert isinstance(initializers.get(initializers.HeNormal), initializers.HeNormal)
    inst = initializers.Orthogonal(seed=1)
    assert initializers.get(inst) is inst
    fn = lambda shape, dtype=None, device=None: torch.zeros(shape)  # noqa: E731
    assert initializers.get(fn) is fn
    assert isinstance(initializers.get("normal"), initializers.RandomNormal)
    assert isinstance(initializers.get("one"), initializers.Ones)
    with pytest.raises(ArgumentTypeError):
        initializers.get(3.5)
    with pytest.raises(ArgumentTypeError):
        initializers.serialize(fn)


def test_unknown_name_message():
    pattern = r"^`initializer` must be one of \[(.*)\]\. Received: initializer='foo'\.$"
    with pytest.raises(UnknownNameError, match=pattern) as info:
        initializers.get("foo")
    listed = re.match(pattern, str(info.value)).group(1)
    assert [s.strip().strip("'") for s in listed.split(",")] == NAMES
    with pytest.raises(UnknownNameError, match=r"Received: initializer='Nope'"):
        initializers.get({"class_name": "Nope", "config": {}})


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="scale"):
        initializers.VarianceScaling(scale=0.0)
    with pytest.raises(ArgumentError, match="mode"):
        initializers.VarianceScaling(mode="fan_sum")
    with pytest.raises(ArgumentError, match="distribution"):
        initializers.VarianceScaling(distribution="cauchy")
    with pytest.raises(ArgumentTypeError, match="seed"):
        initializers.RandomNormal(seed=1.5)
    with pytest.raises(ArgumentError, match="floating-point"):
        initializers.RandomNormal()((2, 2), dtype=torch.int32)
    with pytest.raises(ArgumentError, match="non-negative"):
        initializers.Zeros()((2, -1))
    with pytest.raises(ArgumentTypeError, match="dtype"):
        initializers.Zeros()((2,), dtype="float8")


def test_meta_device():
    w = initializers.GlorotUniform(seed=1)((3, 4), device="meta")
    assert w.device.type == "meta" and tuple(w.shape) == (3, 4)
