"""Tests for unet_scratch/ops/conv.py: Conv2D forward and backward.

Checks: vectorised == naive loops (float64, 1e-12), == scipy.signal.correlate, central-difference
gradient checks (float64, norm-based rel_error < 1e-7), Keras Conv2D parity (float32, rtol = atol = 1e-5)
for the forward pass and the GradientTape gradients, dtype preservation, error messages, and hypothesis
property tests (output shapes, adjoint identities, backward == naive backward).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.conv import (col2im, conv2d, conv2d_backward, conv2d_backward_naive, conv2d_naive,
                                   conv_output_size, im2col, padding_amounts)

GRAD_TOL = 1e-7          # float64 central differences, norm-based relative error
NAIVE_TOL = 1e-12        # float64, vectorised vs loops (same sums, different order)

# (KH, KW, strides, padding, H, W): kernels 1..5 incl. even and rectangular, odd/even sizes
CONFIGS = [
    (1, 1, (1, 1), "valid", 5, 4), (2, 2, (1, 1), "same", 5, 6), (2, 2, (2, 2), "same", 7, 7),
    (3, 3, (1, 1), "same", 6, 5), (3, 3, (2, 2), "same", 7, 8), (3, 3, (2, 1), "valid", 7, 6),
    (4, 4, (2, 2), "same", 9, 8), (4, 2, (3, 1), "valid", 9, 5), (5, 5, (1, 1), "same", 6, 7),
    (5, 3, (3, 2), "same", 8, 7), (2, 5, (1, 3), "valid", 4, 9), (1, 3, (3, 3), "same", 5, 7),
]


def make_inputs(rng, n, h, w, c, kh, kw, f, dtype=np.float64):
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    k = rng.standard_normal((kh, kw, c, f)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, k, b


def test_output_size_and_tensorflow_same_padding():
    assert conv_output_size(5, 3, 1, "valid") == 3
    assert conv_output_size(5, 2, 2, "valid") == 2            # floor
    assert conv_output_size(5, 3, 2, "same") == 3             # ceil(5 / 2)
    assert padding_amounts(6, 3, 1, "same") == (1, 1)
    assert padding_amounts(6, 2, 1, "same") == (0, 1)         # even kernel: the extra pixel goes after
    assert padding_amounts(6, 4, 1, "same") == (1, 2)
    assert padding_amounts(6, 3, 2, "same") == (0, 1)         # out 3: (3-1)*2 + 3 - 6 = 1
    assert padding_amounts(7, 3, 2, "SAME") == (1, 1)
    assert padding_amounts(6, 1, 3, "same") == (0, 0)         # total never negative
    assert padding_amounts(6, 3, 1, "valid") == (0, 0)


def test_im2col_matches_window_order_and_col2im_is_its_adjoint(rng):
    x = rng.standard_normal((2, 6, 5, 3))
    cols = im2col(x, 3, 2, 2, 1)
    oh, ow = (6 - 3) // 2 + 1, (5 - 2) // 1 + 1
    assert cols.shape == (2 * oh * ow, 3 * 2 * 3)
    np.testing.assert_array_equal(cols[ow + 1], x[0, 2:5, 1:3, :].ravel())   # row (n=0, i=1, j=1), (kh, kw, c)
    g = rng.standard_normal(cols.shape)
    # <im2col(x), g> == <x, col2im(g)>: col2im is the transpose of im2col
    assert abs(np.sum(cols * g) - np.sum(x * col2im(g, x.shape, 3, 2, 2, 1))) < 1e-10


@pytest.mark.parametrize("kh, kw, strides, padding, h, w", CONFIGS)
def test_vectorised_equals_naive(rng, kh, kw, strides, padding, h, w):
    x, k, b = make_inputs(rng, 2, h, w, 3, kh, kw, 4)
    y, cache = conv2d(x, k, b, strides, padding)
    assert np.max(np.abs(y - conv2d_naive(x, k, b, strides, padding))) < NAIVE_TOL
    dy = rng.standard_normal(y.shape)
    for fast, slow in zip(conv2d_backward(dy, cache), conv2d_backward_naive(dy, x, k, strides, padding)):
        assert fast.shape == slow.shape
        assert np.max(np.abs(fast - slow)) < NAIVE_TOL


def test_matches_scipy_correlate(rng):
    signal = pytest.importorskip("scipy.signal")
    x = rng.standard_normal((1, 9, 8, 1))
    k = rng.standard_normal((4, 3, 1, 1))
    y, _ = conv2d(x, k)
    expected = signal.correlate(x[0, :, :, 0], k[:, :, 0, 0], mode="valid")
    np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kh, kw, strides, padding, h, w",
                         [CONFIGS[1], CONFIGS[4], CONFIGS[6], CONFIGS[9], CONFIGS[10]])
def test_gradient_check_float64(rng, kh, kw, strides, padding, h, w):
    """Analytic dx, dw, db agree with central differences to norm-based rel_error < 1e-7."""
    x, k, b = make_inputs(rng, 2, h, w, 2, kh, kw, 3)
    y, cache = conv2d(x, k, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    assert rel_error(dx, numeric_gradient(lambda v: conv2d(v, k, b, strides, padding)[0], x, dy)) < GRAD_TOL
    assert rel_error(dw, numeric_gradient(lambda v: conv2d(x, v, b, strides, padding)[0], k, dy)) < GRAD_TOL
    assert rel_error(db, numeric_gradient(lambda v: conv2d(x, k, v, strides, padding)[0], b, dy)) < GRAD_TOL


def test_no_bias(rng):
    x, k, _ = make_inputs(rng, 1, 5, 5, 2, 3, 3, 2)
    y, cache = conv2d(x, k, None, 1, "same")
    np.testing.assert_allclose(y, conv2d_naive(x, k, None, 1, "same"), atol=NAIVE_TOL)
    dx, dw, db = conv2d_backward(np.ones_like(y), cache)
    assert db is None and dx.shape == x.shape and dw.shape == k.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x, k, b = make_inputs(rng, 2, 6, 6, 3, 3, 3, 4, dtype)
    y, cache = conv2d(x, k, b, 2, "same")
    dx, dw, db = conv2d_backward(rng.standard_normal(y.shape).astype(dtype), cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype


def test_errors_name_the_problem(rng):
    x, k, b = make_inputs(rng, 1, 5, 5, 3, 3, 3, 2)
    with pytest.raises(ValueError, match="4-D"):
        conv2d(x[0], k)
    with pytest.raises(ValueError, match="4-D"):
        conv2d(x, k[0])
    with pytest.raises(ValueError, match="channels"):
        conv2d(x[..., :2], k)
    with pytest.raises(ValueError, match="bias"):
        conv2d(x, k, b[:1])
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        conv2d(x, k, b, padding="full")
    with pytest.raises(ValueError, match="positive"):
        conv2d(x, k, b, strides=0)
    with pytest.raises(ValueError, match="pair"):
        conv2d(x, k, b, strides=(1, 2, 3))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv2d(x[:, :2], k)
    with pytest.raises(TypeError, match="astype"):
        conv2d(x.astype(np.int32), k)
    with pytest.raises(TypeError, match="NumPy array"):
        conv2d(x.tolist(), k)
    assert conv2d(x, k, b, padding="SAME")[0].shape == (1, 5, 5, 2)


# ----------------------------------------------------------------------------- Keras / TensorFlow parity

KERAS_CONFIGS = [(k, s, p) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3) for p in ("valid", "same")]


def test_keras_conv2d_parity_forward_and_gradients(rng, tf, keras):
    """Keras Conv2D with our weights: same y, and GradientTape's dL/dx, dL/dw, dL/db for L = sum(y * dy)."""
    size = (7, 8)                       # odd height, even width
    for k, s, padding in KERAS_CONFIGS:
        x, w, b = make_inputs(rng, 2, *size, 3, k, k, 4, np.float32)
        layer = keras.layers.Conv2D(4, k, strides=s, padding=padding, dtype="float32")
        layer.build((None, *size, 3))
        layer.set_weights([w, b])
        y, cache = conv2d(x, w, b, s, padding)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            yt = layer(xt)
            loss = tf.reduce_sum(yt * dy)
        gx, gw, gb = tape.gradient(loss, [xt, layer.kernel, layer.bias])
        np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"k={k} s={s} {padding}")
        for ours, theirs in zip(conv2d_backward(dy, cache), (gx, gw, gb)):
            np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-5,
                                       err_msg=f"k={k} s={s} {padding}")


# ----------------------------------------------------------------------------- hypothesis properties

conv_cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "h": st.integers(1, 8), "w": st.integers(1, 8), "c": st.integers(1, 3),
    "f": st.integers(1, 3), "kh": st.integers(1, 5), "kw": st.integers(1, 5),
    "sh": st.integers(1, 3), "sw": st.integers(1, 3), "padding": st.sampled_from(["valid", "same"]),
    "seed": st.integers(0, 2 ** 16),
})


def _draw(case):
    if case["padding"] == "valid":      # the input must hold at least one window
        case = {**case, "h": max(case["h"], case["kh"]), "w": max(case["w"], case["kw"])}
    rng = np.random.default_rng(case["seed"])
    x, k, b = make_inputs(rng, case["n"], case["h"], case["w"], case["c"], case["kh"], case["kw"], case["f"])
    return case, rng, x, k, b


@settings(max_examples=25, deadline=None)
@given(conv_cases)
def test_property_shapes_and_naive_backward(case):
    case, rng, x, k, b = _draw(case)
    strides, padding = (case["sh"], case["sw"]), case["padding"]
    y, cache = conv2d(x, k, b, strides, padding)
    expected = (case["n"], conv_output_size(case["h"], case["kh"], case["sh"], padding),
                conv_output_size(case["w"], case["kw"], case["sw"], padding), case["f"])
    assert y.shape == expected
    assert np.max(np.abs(y - conv2d_naive(x, k, b, strides, padding))) < NAIVE_TOL
    dy = rng.standard_normal(y.shape)
    for fast, slow in zip(conv2d_backward(dy, cache), conv2d_backward_naive(dy, x, k, strides, padding)):
        assert np.max(np.abs(fast - slow)) < NAIVE_TOL


@settings(max_examples=25, deadline=None)
@given(conv_cases)
def test_property_adjoint_identities(case):
    """y = A(w) x + b is linear in x and in w: <dy, y - b> = <dx, x> = <dw, w>; db = sum dy."""
    case, rng, x, k, b = _draw(case)
    y, cache = conv2d(x, k, b, (case["sh"], case["sw"]), case["padding"])
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    lhs = np.sum(dy * (y - b))
    scale = 1 + np.sum(np.abs(dy * (y - b)))
    assert abs(lhs - np.sum(dx * x)) < 1e-12 * scale
    assert abs(lhs - np.sum(dw * k)) < 1e-12 * scale
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), atol=1e-12)
