"""``unet_scratch/checks.py``: the argument rules shared by the ops, the kernels, the layers and the model.

Each rule is tested on its own (what it accepts, what it refuses and what the message tells the reader to
do), then against every caller: the NumPy reference, the ``xp`` ops that serve CuPy, the Numba backend,
the layers and the model must raise the SAME message for the same mistake, which they only do while
they all call the one rule.
"""
import importlib.util

import numpy as np
import pytest

import unet_scratch.ops as ref
from unet_scratch import UNet
from unet_scratch.checks import (check_conv_args, check_dropout_rate, check_dy_shape, check_float_array,
                                 check_transpose_args, normalize_pair, normalize_padding, pool_args)
from unet_scratch.kernels import xp_ops
from unet_scratch.layers import Conv2D, Conv2DTranspose, Dropout, MaxPooling2D

BACKENDS = [ref, xp_ops]
if importlib.util.find_spec("numba") is not None:
    from unet_scratch.kernels import numba_ops
    BACKENDS.append(numba_ops)
IDS = [m.__name__.rsplit(".", 1)[-1] for m in BACKENDS]


def _message(fn, *args, error=ValueError, **kwargs) -> str:
    with pytest.raises(error) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------- each rule


def test_normalize_padding():
    assert normalize_padding("same") == "same"
    assert normalize_padding("VALID") == "valid"
    for bad in ("full", "", None, 1):
        msg = _message(normalize_padding, bad)
        assert msg.startswith(f"padding must be 'same' or 'valid', got {bad!r}") and "ceil(H / stride)" in msg


def test_normalize_pair_accepts_ints_and_pairs():
    assert normalize_pair(2) == (2, 2)
    assert normalize_pair(np.int64(3), "pool_size") == (3, 3)
    assert normalize_pair((2, 3)) == (2, 3)
    assert normalize_pair([1, np.int32(4)], "kernel_size") == (1, 4)
    assert all(type(v) is int for v in normalize_pair((np.int64(2), 3)))


@pytest.mark.parametrize("bad", [(1, 2, 3), (2,), 2.0, (1.0, 2), True, (True, 1), None, "22"])
def test_normalize_pair_refuses_what_is_not_a_pair_of_ints(bad):
    msg = _message(normalize_pair, bad, "kernel_size")
    assert msg == f"kernel_size must be a positive int or a pair of positive ints like (2, 2), got {bad!r}"


def test_normalize_pair_refuses_zero_and_negatives_and_says_what_strides_1_means():
    assert _message(normalize_pair, (2, 0), "pool_size") == \
        "pool_size must be a positive int or a pair of positive ints, got (2, 0)"
    assert _message(normalize_pair, -1).endswith("got -1; use 1 for no striding")


def test_check_float_array():
    check_float_array(np.zeros((2, 3), np.float32), 2, "(H, W)", "a")
    assert "np.asarray(a, dtype=np.float32)" in _message(check_float_array, [[1.0]], 2, "(H, W)", "a",
                                                         error=TypeError)
    assert "a.astype(np.float32)" in _message(check_float_array, np.zeros((2, 2), np.int64), 2, "(H, W)", "a",
                                              error=TypeError)
    assert "a.astype" in _message(check_float_array, np.zeros((2, 2), bool), 2, "(H, W)", "a", error=TypeError)
    assert _message(check_float_array, np.zeros(3), 2, "(H, W)", "a") == "a must be 2-D (H, W), got shape (3,)"


def test_conv_and_transpose_argument_checks(rng):
    x = rng.standard_normal((1, 5, 5, 3))
    check_conv_args(x, rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4))
    check_transpose_args(x, rng.standard_normal((2, 2, 4, 3)), rng.standard_normal(4))
    msg = _message(check_conv_args, x, rng.standard_normal((3, 3, 2, 4)), None)
    assert "x has 3 channels but the kernel w (3, 3, 2, 4) expects 2" in msg
    assert "b must be (4,)" in _message(check_conv_args, x, rng.standard_normal((3, 3, 3, 4)),
                                        rng.standard_normal(3))
    msg = _message(check_transpose_args, x, rng.standard_normal((2, 2, 3, 4)), None)
    assert "input channels LAST" in msg and "w.transpose(0, 1, 3, 2)" in msg
    assert "4 output channels; b must be (4,)" in _message(check_transpose_args, x, rng.standard_normal((2, 2, 4, 3)),
                                                           rng.standard_normal(3))


def test_pool_args(rng):
    x = rng.standard_normal((1, 5, 4, 2))
    assert pool_args(x, 2, None, "VALID") == ((2, 2), (2, 2), "valid")
    assert pool_args(x, (3, 2), 1, "same") == ((3, 2), (1, 1), "same")
    assert pool_args(x, 6, None, "same")[0] == (6, 6)               # 'same' pads: a large pool is fine
    assert _message(pool_args, x, (2, 5), None, "valid") == (
        "input width 4 is smaller than the pool size 5 with 'valid' padding; "
        "use padding='same' or a smaller pool")


def test_check_dropout_rate():
    assert check_dropout_rate(0) == 0.0 and check_dropout_rate(np.float32(0.5)) == 0.5
    for bad in (1, 1.0, -0.1, float("nan"), "half", None):
        assert _message(check_dropout_rate, bad).startswith("dropout rate must be in [0, 1), got ")
    assert "got 'half'" in _message(check_dropout_rate, "half")


def test_check_dy_shape():
    check_dy_shape(np.zeros((1, 2, 2, 3)), (1, 2, 2, 3))
    msg = _message(check_dy_shape, np.zeros((1, 3, 3, 3)), (1, 2, 2, 3), "the pooled shape")
    assert msg.startswith("dy has shape (1, 3, 3, 3), expected (1, 2, 2, 3) (the pooled shape): ")


# ----------------------------------------------------------------------------- one rule, every caller


@pytest.mark.parametrize("ops", BACKENDS, ids=IDS)
def test_every_backend_raises_the_rules_own_messages(ops, rng):
    x, w = rng.standard_normal((1, 5, 5, 2)), rng.standard_normal((3, 3, 2, 4))
    expected = _message(normalize_padding, "full")
    assert _message(ops.conv2d, x, w, padding="full") == expected
    assert _message(ops.conv2d_transpose, x, w.transpose(0, 1, 3, 2), padding="full") == expected
    assert _message(ops.maxpool2d, x, 2, None, "full") == expected
    assert _message(ops.conv2d, x, w, strides=0) == _message(normalize_pair, 0)
    assert _message(ops.maxpool2d, x, (2, 2, 2)) == _message(normalize_pair, (2, 2, 2), "pool_size")
    assert _message(ops.maxpool2d, x, 6) == _message(pool_args, x, 6, None, "valid")
    assert _message(ops.conv2d, x, w[:, :, :1]) == _message(check_conv_args, x, w[:, :, :1], None)
    assert _message(ops.conv2d_transpose, x, w) == _message(check_transpose_args, x, w, None)
    assert _message(ops.conv2d, x.astype(np.int32), w, error=TypeError) == \
        _message(check_conv_args, x.astype(np.int32), w, None, error=TypeError)
    assert _message(ops.dropout, x, 1.0, np.random.default_rng(0), True) == _message(check_dropout_rate, 1.0)


@pytest.mark.parametrize("ops", BACKENDS, ids=IDS)
def test_every_backend_checks_dy_with_the_same_rule(ops, rng):
    x = rng.standard_normal((1, 4, 4, 2))
    _, cache = (ref.maxpool2d if ops is ref else xp_ops.maxpool2d)(x, 2)
    if ops.__name__.endswith("numba_ops"):            # numba's own cache format, without compiling a kernel
        cache = {key: cache[key] for key in ("argmax", "pool_size", "strides", "x_shape", "pads")}
    wrong = np.zeros((1, 3, 3, 2))
    assert _message(ops.maxpool2d_backward, wrong, cache) == \
        _message(check_dy_shape, wrong, (1, 2, 2, 2), "the pooled shape")
    w = rng.standard_normal((2, 2, 3, 2))
    _, cache = (ref.conv2d_transpose if ops is ref else xp_ops.conv2d_transpose)(x, w, None, 2, "same")
    if ops.__name__.endswith("numba_ops"):
        cache["fast"] = True
    assert _message(ops.conv2d_transpose_backward, wrong, cache) == _message(check_dy_shape, wrong, (1, 8, 8, 3))


def test_layers_and_model_use_the_same_rules():
    assert _message(Conv2D, 2, 3, padding="full") == _message(normalize_padding, "full")
    assert _message(Conv2DTranspose, 2, 2, strides=(2, 0)) == _message(normalize_pair, (2, 0), "strides")
    assert _message(Conv2D, 2, 3.0) == _message(normalize_pair, 3.0, "kernel_size")
    assert _message(MaxPooling2D, 0) == _message(normalize_pair, 0, "pool_size")
    assert _message(MaxPooling2D, 2, padding="SAME ") == _message(normalize_padding, "SAME ")
    assert _message(Dropout, 1.5) == _message(check_dropout_rate, 1.5)
    assert _message(UNet, input_shape=(16, 16, 1), depth=2, padding="full") == _message(normalize_padding, "full")
    assert UNet(input_shape=(16, 16, 1), base_filters=2, depth=2, padding="SAME").padding == "same"
