"""xlayers.regularizers and xlayers.constraints against Keras (TensorFlow backend)."""

from __future__ import annotations

import json
import os
import re

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from keras.src.constraints import ALL_OBJECTS_DICT as KERAS_CONSTRAINTS  # noqa: E402
from keras.src.regularizers import ALL_OBJECTS_DICT as KERAS_REGULARIZERS  # noqa: E402

from xlayers import constraints, regularizers  # noqa: E402
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError, UnknownNameError  # noqa: E402

REG_NAMES = regularizers.names()
CON_NAMES = constraints.names()


def _weights(shape, dtype, scale=1.0):
    rng = np.random.default_rng(sum(shape))
    w = rng.standard_normal(shape) * scale
    w.flat[0] = 250.0  # a large magnitude
    w.flat[-1] = -1e-3
    return w.astype(dtype)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _tols(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- #
# Regularizers
# --------------------------------------------------------------------------- #
def _keras_regularizer(name):
    # "l1_l2" is Keras 2's (and Keras 3's docstring's) name, with l1 = l2 = 0.01;
    # Keras 3.15 itself only registers "l1l2"/"L1L2", whose defaults are 0.
    if name == "l1_l2":
        return keras.regularizers.L1L2(l1=0.01, l2=0.01)
    return keras.regularizers.get(name)


def test_regularizer_registry_matches_keras():
    # Keras also registers its abstract base ("Regularizer"/"regularizer"); xlayers leaves it out.
    assert set(REG_NAMES) == (set(KERAS_REGULARIZERS) - {"Regularizer", "regularizer"}) | {"l1_l2"}


REG_VARIANTS = [
    regularizers.L1(0.3),
    regularizers.L2(0.1),
    regularizers.L1L2(l1=0.2, l2=0.05),
    regularizers.L1L2(l1=0.2),
    regularizers.L1L2(l2=None),
    regularizers.OrthogonalRegularizer(factor=0.1, mode="columns"),
    regularizers.OrthogonalRegularizer(factor=0.5),
]


def _reg_cases():
    for name in REG_NAMES:
        yield pytest.param(regularizers.get(name), _keras_regularizer(name), id=name)
    for reg in REG_VARIANTS:
        theirs = getattr(keras.regularizers, type(reg).__name__).from_config(reg.get_config())
        yield pytest.param(reg, theirs, id=repr(reg))


def _assert_config_close(ours, theirs):
    """Keras keeps L1's and OrthogonalRegularizer's factor as a float32 tensor, so its
    config holds the float32-rounded value (0.01 -> 0.009999999776482582); xlayers
    keeps the exact Python float."""
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        if isinstance(value, float):
            assert value == pytest.approx(theirs[key], rel=1e-7), key
        else:
            assert value == theirs[key], key


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(6, 4), (4, 7)])
@pytest.mark.parametrize("ours, theirs", list(_reg_cases()))
def test_regularizer_matches_keras(ours, theirs, shape, dtype):
    w_np = _weights(shape, dtype, scale=3.0)
    out = ours(torch.from_numpy(w_np))
    assert out.dim() == 0 and out.dtype == torch.from_numpy(w_np).dtype
    # Keras gets a backend tensor, as from a layer: on numpy input its
    # OrthogonalRegularizer(mode="columns") normalises the wrong axis.
    w = keras.ops.convert_to_tensor(w_np)
    if dtype == "float32":
        np.testing.assert_allclose(out.numpy(), _np(theirs(w)), rtol=2e-6, atol=1e-6)
    elif isinstance(ours, regularizers.OrthogonalRegularizer):
        # Keras's OrthogonalRegularizer fails on float64 weights (float32 factor times
        # a float64 tensor); compare with its float32 result.
        np.testing.assert_allclose(out.numpy(), _np(theirs(keras.ops.cast(w, "float32"))), rtol=1e-5, atol=1e-6)
    else:
        # Keras casts the Python factor through a float32 tensor (0.01 -> 0.0099999998),
        # so its float64 penalties are off by ~1e-8 relative; xlayers uses the exact factor.
        np.testing.assert_allclose(out.numpy(), _np(theirs(w)), rtol=1e-7, atol=1e-14)
    _assert_config_close(ours.get_config(), theirs.get_config())


@pytest.mark.parametrize("name", REG_NAMES)
def test_regularizer_serialize(name):
    reg = regularizers.get(name)
    config = regularizers.serialize(reg)
    json.dumps(config)
    assert config["class_name"] == type(reg).__name__
    again = regularizers.get(json.loads(json.dumps(config)))
    assert type(again) is type(reg) and again.get_config() == reg.get_config()
    theirs = keras.regularizers.serialize(_keras_regularizer(name))
    assert {k: v for k, v in config.items() if k != "config"} == {k: v for k, v in theirs.items() if k != "config"}
    _assert_config_close(config["config"], theirs["config"])
    # and Keras can read ours back
    _assert_config_close(reg.get_config(), keras.regularizers.get(config).get_config())


def test_regularizer_defaults():
    assert regularizers.L1().l1 == 0.01 and regularizers.L1(None).l1 == 0.01
    assert regularizers.L2().l2 == 0.01
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert regularizers.OrthogonalRegularizer().get_config() == {"factor": 0.01, "mode": "rows"}
    w = torch.ones(5, 5)
    torch.testing.assert_close(regularizers.L2(2.0)(w), torch.tensor(50.0))
    torch.testing.assert_close(regularizers.L1L2()(w), torch.tensor(0.0))


def test_regularizer_dtypes_and_grad():
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        w = torch.randn(4, 3, dtype=dtype)
        regs = (regularizers.L1(), regularizers.L2(), regularizers.L1L2(0.1, 0.1), regularizers.OrthogonalRegularizer())
        for reg in regs:
            assert reg(w).dtype == dtype
    w = torch.randn(4, 3, requires_grad=True)
    regularizers.L2(0.5)(w).backward()
    torch.testing.assert_close(w.grad, w.detach())


def test_regularizer_errors():
    with pytest.raises(InputShapeError, match="rank-2"):
        regularizers.OrthogonalRegularizer()(torch.zeros(2, 3, 4))
    with pytest.raises(ArgumentError, match="mode"):
        regularizers.OrthogonalRegularizer(mode="diag")
    with pytest.raises(ArgumentError, match=r"Received: l1=-1"):
        regularizers.L1(-1)
    with pytest.raises(ArgumentError, match="l2"):
        regularizers.L2(float("nan"))
    with pytest.raises(ArgumentTypeError, match="l1"):
        regularizers.L1("0.1")
    with pytest.raises(ArgumentTypeError):
        regularizers.get(1.0)
    with pytest.raises(ArgumentTypeError):
        regularizers.serialize(lambda w: w.sum())
    pattern = r"^`regularizer` must be one of \[(.*)\]\. Received: regularizer='l3'\.$"
    with pytest.raises(UnknownNameError, match=pattern) as info:
        regularizers.get("l3")
    listed = re.match(pattern, str(info.value)).group(1)
    assert [s.strip().strip("'") for s in listed.split(",")] == REG_NAMES


def test_regularizer_get_passthrough():
    assert regularizers.get(None) is None
    reg = regularizers.L1(0.5)
    assert regularizers.get(reg) is reg
    assert isinstance(regularizers.get(regularizers.L2), regularizers.L2)
    fn = lambda w: w.sum()  # noqa: E731
    assert regularizers.get(fn) is fn


# --------------------------------------------------------------------------- #
# Constraints
# --------------------------------------------------------------------------- #
def test_constraint_registry_matches_keras():
    # Keras also registers its identity base class ("Constraint"/"constraint"); xlayers leaves it out.
    assert set(CON_NAMES) == set(KERAS_CONSTRAINTS) - {"Constraint", "constraint"}


CON_VARIANTS = [
    (constraints.MaxNorm(max_value=1.5, axis=[0, 1, 2]), (3, 3, 4, 8)),
    (constraints.MaxNorm(max_value=0.5, axis=1), (6, 4)),
    (constraints.UnitNorm(axis=1), (6, 4)),
    (constraints.UnitNorm(axis=[0, 1, 2]), (3, 3, 4, 8)),
    (constraints.MinMaxNorm(min_value=2.0, max_value=4.0, rate=0.7, axis=0), (6, 4)),
    (constraints.MinMaxNorm(min_value=0.5, max_value=1.5, axis=[0, 1, 2]), (3, 3, 4, 8)),
    (constraints.NonNeg(), (3, 3, 4, 8)),
]


def _con_cases():
    for name in CON_NAMES:
        for shape in [(6, 4), (3, 3, 4, 8)]:
            yield pytest.param(constraints.get(name), keras.constraints.get(name), shape, id=f"{name}-{shape}")
    for con, shape in CON_VARIANTS:
        theirs = getattr(keras.constraints, type(con).__name__).from_config(con.get_config())
        yield pytest.param(con, theirs, shape, id=f"{con!r}-{shape}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ours, theirs, shape", list(_con_cases()))
def test_constraint_matches_keras(ours, theirs, shape, dtype):
    for scale in (0.1, 3.0):  # norms below and above the bounds
        w = _weights(shape, dtype, scale=scale)
        out = ours(torch.from_numpy(w))
        assert out.dtype == torch.from_numpy(w).dtype and tuple(out.shape) == shape
        np.testing.assert_allclose(out.numpy(), _np(theirs(w)), **_tols(dtype))
    assert ours.get_config() == theirs.get_config()


@pytest.mark.parametrize("name", CON_NAMES)
def test_constraint_serialize(name):
    con = constraints.get(name)
    config = constraints.serialize(con)
    json.dumps(config)
    again = constraints.get(json.loads(json.dumps(config)))
    assert type(again) is type(con) and again.get_config() == con.get_config()
    assert config == keras.constraints.serialize(keras.constraints.get(name))
    assert keras.constraints.get(config).get_config() == con.get_config()


def test_constraint_semantics():
    w = torch.tensor([[3.0, 0.1], [4.0, 0.2]])
    out = constraints.MaxNorm()(w)  # default max_value=2, axis=0
    torch.testing.assert_close(out[:, 0].norm(), torch.tensor(2.0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[:, 1], w[:, 1], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(constraints.UnitNorm()(w).norm(dim=0), torch.ones(2), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(constraints.NonNeg()(torch.tensor([-1.0, 0.0, 2.0])), torch.tensor([0.0, 0.0, 2.0]))
    assert constraints.MaxNorm().get_config() == {"max_value": 2, "axis": 0}
    assert constraints.MinMaxNorm().get_config() == {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0}
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        for con in (constraints.MaxNorm(), constraints.MinMaxNorm(), constraints.NonNeg(), constraints.UnitNorm()):
            assert con(w.to(dtype)).dtype == dtype


def test_constraint_errors():
    with pytest.raises(ArgumentTypeError, match="axis"):
        constraints.MaxNorm(axis="rows")
    with pytest.raises(ArgumentTypeError, match="max_value"):
        constraints.MaxNorm(max_value="2")
    with pytest.raises(ArgumentTypeError):
        constraints.get(0)
    with pytest.raises(ArgumentTypeError):
        constraints.serialize(lambda w: w)
    pattern = r"^`constraint` must be one of \[(.*)\]\. Received: constraint='max'\.$"
    with pytest.raises(UnknownNameError, match=pattern) as info:
        constraints.get("max")
    listed = re.match(pattern, str(info.value)).group(1)
    assert [s.strip().strip("'") for s in listed.split(",")] == CON_NAMES
    assert constraints.get(None) is None
    assert isinstance(constraints.get(constraints.NonNeg), constraints.NonNeg)
