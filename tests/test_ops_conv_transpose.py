"""Tests for unet_scratch/ops/conv_transpose.py: Conv2DTranspose forward and backward.

Checks: vectorised == naive scatter-add (float64, 1e-12), the transpose identity <conv(z), x> = <z, convT(x)>,
the crops (k=3 s=2 keeps full[0:2i], not PyTorch's full[1:2i+1]), central-difference gradient checks
(float64, norm-based rel_error < 1e-7), Keras 3 Conv2DTranspose parity (float32, rtol = atol = 1e-5) for
k in 1..5, s in 1..3, both paddings, odd and even sizes, forward and GradientTape gradients; dtype, errors,
hypothesis properties.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error, sample_indices
from unet_scratch.ops.conv import conv2d, padding_amounts
from unet_scratch.ops.conv_transpose import (conv2d_transpose, conv2d_transpose_backward,
                                             conv2d_transpose_naive, conv_transpose_output_size,
                                             keras_crop_start)

GRAD_TOL = 1e-7          # float64 central differences, norm-based relative error
NAIVE_TOL = 1e-12

ALL_KS = [(k, s, p) for k in (1, 2, 3, 4, 5) for s in (1, 2, 3) for p in ("valid", "same")]


def make_inputs(rng, n, h, w, c_in, kh, kw, f, dtype=np.float64):
    x = rng.standard_normal((n, h, w, c_in)).astype(dtype)
    k = rng.standard_normal((kh, kw, f, c_in)).astype(dtype)      # Keras layout: (KH, KW, F_out, C_in)
    b = rng.standard_normal(f).astype(dtype)
    return x, k, b


def test_output_size():
    assert conv_transpose_output_size(4, 2, 2, "same") == 8
    assert conv_transpose_output_size(4, 3, 2, "same") == 8
    assert conv_transpose_output_size(4, 3, 2, "valid") == 9        # (4-1)*2 + 3
    assert conv_transpose_output_size(4, 2, 2, "valid") == 8
    assert conv_transpose_output_size(4, 1, 3, "valid") == 12       # s > k: (4-1)*3 + max(1, 3)
    assert conv_transpose_output_size(4, 5, 1, "VALID") == 8


@pytest.mark.parametrize("k, s, padding", ALL_KS)
def test_crop_start_is_tensorflow_same_split(k, s, padding):
    """Keras's padding formula and TensorFlow's SAME rule (applied to the conv of output size) agree."""
    before = padding_amounts(3 * s, k, s, padding)[0]
    assert keras_crop_start(k, s, padding) == before


@pytest.mark.parametrize("k, s, padding", ALL_KS)
def test_vectorised_equals_naive(rng, k, s, padding):
    for h, w in ((3, 4), (4, 3)):
        x, kern, b = make_inputs(rng, 2, h, w, 3, k, k, 2)
        y, _ = conv2d_transpose(x, kern, b, s, padding)
        assert y.shape == (2, conv_transpose_output_size(h, k, s, padding),
                           conv_transpose_output_size(w, k, s, padding), 2)
        assert np.max(np.abs(y - conv2d_transpose_naive(x, kern, b, s, padding))) < NAIVE_TOL


def test_rectangular_kernel_and_strides_equal_naive(rng):
    x, kern, b = make_inputs(rng, 2, 3, 4, 2, 4, 3, 3)
    for strides in ((2, 3), (3, 1)):
        for padding in ("valid", "same"):
            y, _ = conv2d_transpose(x, kern, b, strides, padding)
            assert np.max(np.abs(y - conv2d_transpose_naive(x, kern, b, strides, padding))) < NAIVE_TOL


def test_crops_against_the_full_canvas(rng):
    """'valid' with k >= s IS the full scatter canvas; 'same' is a crop of it.
    k=2 s=2: no crop; k=3 s=2: full[0:2i] (PyTorch's padding=1, output_padding=1 gives full[1:2i+1]);
    k=4 s=2: full[1:2i+1]."""
    x = rng.standard_normal((1, 4, 5, 2))
    for k, start in ((2, 0), (3, 0), (4, 1)):
        kern = rng.standard_normal((k, k, 3, 2))
        full, _ = conv2d_transpose(x, kern, None, 2, "valid")
        same, _ = conv2d_transpose(x, kern, None, 2, "same")
        np.testing.assert_allclose(same, full[:, start:start + 8, start:start + 10], atol=NAIVE_TOL)
        if k == 3:   # the PyTorch-style crop is a different answer
            assert not np.allclose(same, full[:, 1:9, 1:11])


def test_is_the_transpose_of_conv2d(rng):
    """<conv2d(z, w), x> == <z, conv2d_transpose(x, w)> for every z of the output's shape."""
    for k, s, padding in ALL_KS:
        x, kern, _ = make_inputs(rng, 1, 3, 4, 2, k, k, 3)
        y, _ = conv2d_transpose(x, kern, None, s, padding)
        z = rng.standard_normal(y.shape)
        conv_z, _ = conv2d(z, kern, None, s, padding)
        assert conv_z.shape == x.shape
        assert abs(np.sum(conv_z * x) - np.sum(z * y)) < 1e-10


@pytest.mark.parametrize("k, s, padding", [(2, 2, "same"), (3, 2, "same"), (4, 2, "same"), (3, 2, "valid"),
                                           (1, 3, "valid"), (2, 3, "same"), (5, 1, "same"), (4, 3, "valid")])
def test_gradient_check_float64(rng, k, s, padding):
    """Analytic dx, dw, db agree with central differences to norm-based rel_error < 1e-7."""
    x, kern, b = make_inputs(rng, 2, 3, 4, 2, k, k, 3)
    y, cache = conv2d_transpose(x, kern, b, s, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_transpose_backward(dy, cache)
    fwd = conv2d_transpose
    assert rel_error(dx, numeric_gradient(lambda v: fwd(v, kern, b, s, padding)[0], x, dy)) < GRAD_TOL
    assert rel_error(dw, numeric_gradient(lambda v: fwd(x, v, b, s, padding)[0], kern, dy)) < GRAD_TOL
    assert rel_error(db, numeric_gradient(lambda v: fwd(x, kern, v, s, padding)[0], b, dy)) < GRAD_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x, kern, b = make_inputs(rng, 2, 3, 3, 2, 2, 2, 4, dtype)
    y, cache = conv2d_transpose(x, kern, b, 2, "same")
    dx, dw, db = conv2d_transpose_backward(rng.standard_normal(y.shape).astype(dtype), cache)
    assert y.dtype == dx.dtype == dw.dtype == db.dtype == dtype


def test_no_bias_and_errors(rng):
    x, kern, b = make_inputs(rng, 1, 3, 3, 2, 2, 2, 4)
    y, cache = conv2d_transpose(x, kern, None, 2, "same")
    assert conv2d_transpose_backward(y, cache)[2] is None
    with pytest.raises(ValueError, match=r"\(KH, KW, F_out, C_in\)"):
        conv2d_transpose(x, kern.transpose(0, 1, 3, 2), b)        # a Conv2D-layout kernel
    with pytest.raises(ValueError, match="4-D"):
        conv2d_transpose(x[0], kern, b)
    with pytest.raises(ValueError, match="bias"):
        conv2d_transpose(x, kern, b[:2])
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        conv2d_transpose(x, kern, b, 2, "full")
    with pytest.raises(ValueError, match="positive"):
        conv2d_transpose(x, kern, b, (2, -1))
    with pytest.raises(ValueError, match="dy has shape"):
        conv2d_transpose_backward(y[:, 1:], cache)
    with pytest.raises(TypeError, match="astype"):
        conv2d_transpose(x.astype(np.int64), kern, b)


# ----------------------------------------------------------------------------- Keras / TensorFlow parity


@pytest.mark.parametrize("size", [(3, 4), (4, 3)], ids=["odd-even", "even-odd"])
def test_keras_conv2d_transpose_parity(rng, tf, keras, size):
    """Keras Conv2DTranspose with our weights: same y and GradientTape gradients for L = sum(y * dy)."""
    for k, s, padding in ALL_KS:
        x, kern, b = make_inputs(rng, 2, *size, 3, k, k, 2, np.float32)
        layer = keras.layers.Conv2DTranspose(2, k, strides=s, padding=padding, dtype="float32")
        layer.build((None, *size, 3))
        assert tuple(layer.kernel.shape) == kern.shape
        layer.set_weights([kern, b])
        y, cache = conv2d_transpose(x, kern, b, s, padding)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            yt = layer(xt)
            loss = tf.reduce_sum(yt * dy)
        grads = tape.gradient(loss, [xt, layer.kernel, layer.bias])
        msg = f"k={k} s={s} {padding} size={size}"
        assert y.shape == tuple(yt.shape), msg
        np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5, err_msg=msg)
        for ours, theirs in zip(conv2d_transpose_backward(dy, cache), grads):
            np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-5, err_msg=msg)


# ----------------------------------------------------------------------------- hypothesis properties

cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "h": st.integers(1, 5), "w": st.integers(1, 5), "c": st.integers(1, 3),
    "f": st.integers(1, 3), "kh": st.integers(1, 5), "kw": st.integers(1, 5),
    "sh": st.integers(1, 3), "sw": st.integers(1, 3), "padding": st.sampled_from(["valid", "same"]),
    "seed": st.integers(0, 2 ** 16),
})


@settings(max_examples=25, deadline=None)
@given(cases)
def test_property_shape_naive_and_adjoint(case):
    rng = np.random.default_rng(case["seed"])
    x, kern, b = make_inputs(rng, case["n"], case["h"], case["w"], case["c"], case["kh"], case["kw"], case["f"])
    strides, padding = (case["sh"], case["sw"]), case["padding"]
    y, cache = conv2d_transpose(x, kern, b, strides, padding)
    assert y.shape == (case["n"], conv_transpose_output_size(case["h"], case["kh"], case["sh"], padding),
                       conv_transpose_output_size(case["w"], case["kw"], case["sw"], padding), case["f"])
    assert np.max(np.abs(y - conv2d_transpose_naive(x, kern, b, strides, padding))) < NAIVE_TOL
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_transpose_backward(dy, cache)
    lhs = np.sum(dy * (y - b))          # y - b is linear in x and in w
    scale = 1 + np.sum(np.abs(dy * (y - b)))
    assert abs(lhs - np.sum(dx * x)) < 1e-12 * scale
    assert abs(lhs - np.sum(dw * kern)) < 1e-12 * scale
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(cases)
def test_property_gradients_spot_check(case):
    """dx and dw at 12 random entries each agree with central differences (float64)."""
    rng = np.random.default_rng(case["seed"])
    x, kern, b = make_inputs(rng, case["n"], case["h"], case["w"], case["c"], case["kh"], case["kw"], case["f"])
    strides, padding = (case["sh"], case["sw"]), case["padding"]
    y, cache = conv2d_transpose(x, kern, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = conv2d_transpose_backward(dy, cache)
    for grad, arr, f in ((dx, x, lambda v: conv2d_transpose(v, kern, b, strides, padding)[0]),
                         (dw, kern, lambda v: conv2d_transpose(x, v, b, strides, padding)[0])):
        idx = sample_indices(arr.shape, 12, rng)
        num = numeric_gradient(f, arr, dy, indices=idx)
        picked = tuple(np.array(idx).T)
        assert rel_error(grad[picked], num[picked]) < GRAD_TOL
