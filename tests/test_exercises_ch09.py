"""Chapter 09's exercise checks accept right answers, reject stubs and name each classic mistake."""
import re

import numpy as np
import pytest

from unet_scratch.bench import forward_gflop
from unet_scratch.exercises.ch09 import check_bias_relu_rows, check_conv_flops, check_winograd_conv3x3
from unet_scratch.model import UNet

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def winograd(x, w, bt=BT, flip=False, reshape_only=False):
    """A loop over tiles, 16 matrix products per tile row block: written independently of the check."""
    if flip:
        w = w[::-1, ::-1]
    n, h, wd, c = x.shape
    f = w.shape[3]
    t, u = (h - 2) // 2, (wd - 2) // 2
    U = np.zeros((4, 4, c, f))
    for ci in range(c):
        for fi in range(f):
            U[:, :, ci, fi] = G @ w[:, :, ci, fi] @ G.T
    tiles = np.zeros((n, t, u, 2, 2, f))
    for ti in range(t):
        for ui in range(u):
            d = x[:, 2 * ti:2 * ti + 4, 2 * ui:2 * ui + 4, :]               # (N, 4, 4, C)
            V = np.einsum("ia,nabc,jb->nijc", bt, d, bt)                     # (N, 4, 4, C)
            M = np.stack([np.stack([V[:, i, j] @ U[i, j] for j in range(4)], 1) for i in range(4)], 1)
            tiles[:, ti, ui] = np.einsum("pi,nijf,qj->npqf", AT, M, AT)
    if reshape_only:
        return tiles.reshape(n, 2 * t, 2 * u, f)
    return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * t, 2 * u, f)


def flops(h, w, c, f, k):
    return 2 * h * w * k * k * c * f


def bias_relu(y, b):
    np.maximum(y + b, 0, out=y)


def test_checks_accept_correct_answers(capsys):
    assert check_winograd_conv3x3(winograd)
    assert check_bias_relu_rows(bias_relu)
    assert check_conv_flops(flops)
    out = capsys.readouterr().out
    assert out.count("correct") == 3
    assert "winograd_conv3x3 passes 3 cases (largest relative error 0 (exact)" in out       # integer inputs


def test_the_flop_formula_adds_up_to_the_benchmark_count():
    model = UNet(input_shape=(32, 32, 1), base_filters=4, depth=2, seed=0)
    total = 0
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            _, h, w, c = layer.input_shape
            k, _, _, f = layer.params["kernel"].shape
            total += flops(h, w, c, f, k)
        elif type(layer).__name__ == "Conv2DTranspose":
            _, h, w, c = layer.input_shape
            total += 2 * h * w * int(np.prod(layer.params["kernel"].shape))
    assert total / 1e9 == pytest.approx(forward_gflop(model), rel=1e-12)


@pytest.mark.parametrize("check", [check_winograd_conv3x3, check_bias_relu_rows, check_conv_flops])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("kw, case, name", [
    (dict(flip=True), "one 4x4 tile", "a true convolution (the kernel flipped)"),
    (dict(bt=BT.T), "one 4x4 tile", "the input transform written B d B^T"),
    (dict(reshape_only=True), "N=2, 10x8", "the tiles reassembled by a reshape alone"),
])
def test_winograd_names_each_mistake(kw, case, name):
    with pytest.raises(AssertionError, match=rf"winograd_conv3x3 \({case}.*your answer is what " + re.escape(name)):
        check_winograd_conv3x3(lambda x, w: winograd(x, w, **kw))


def relu_first(y, b):
    np.add(np.maximum(y, 0), b, out=y)


def no_relu(y, b):
    y += b


def no_bias(y, b):
    np.maximum(y, 0, out=y)


@pytest.mark.parametrize("wrong, name", [
    (relu_first, "the ReLU applied before the bias"),
    (no_relu, "the bias added but no ReLU"),
    (no_bias, "the ReLU without the bias"),
    (lambda y, b: np.maximum(y + b, 0), "a kernel that returns its result"),
])
def test_bias_relu_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"bias_relu_rows \(y of shape \(7, 3\).*" + re.escape(name)):
        check_bias_relu_rows(wrong)


@pytest.mark.parametrize("wrong, name", [
    (lambda h, w, c, f, k: h * w * k * k * c * f, "the multiply-adds (MACs), not the FLOPs"),
    (lambda h, w, c, f, k: 2 * h * w * k * c * f, "a kernel of K, not K x K"),
    (lambda h, w, c, f, k: 2 * h * w * k * k * c * f + h * w * f, "the bias adds counted too"),
])
def test_conv_flops_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"conv_flops\(256, 256, 1, 64, 3\): expected 75497472, got \d+: "
                                             r"that is what " + re.escape(name)):
        check_conv_flops(wrong)
