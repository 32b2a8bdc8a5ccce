"""Chapter 03's exercise checks accept right answers, reject stubs, and name each classic mistake when a
wrong implementation (written here as a student would, not with the check's own answer functions) makes it."""
import numpy as np
import pytest

from unet_scratch import ops
from unet_scratch.exercises.ch03 import check_conv_transpose_backward, check_conv_transpose_scatter, check_overlap_counts

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _sizes(h, k, s, padding):
    out = h * s if padding == "same" else h * s + max(k - s, 0)
    start = max(k - s, 0) // 2 if padding == "same" else 0
    return out, start


def conv_transpose_scatter(x, w, b, s, padding, mistake=None):
    n, h, wd, c_in = x.shape
    if mistake == "in-out":                         # w read as (KH, KW, C_in, F)
        kh, kw, _, f = w.shape
        w = w.transpose(0, 1, 3, 2)
    else:
        kh, kw, f, _ = w.shape
    if mistake == "flip":
        w = w[::-1, ::-1]
    step = 1 if mistake == "stride" else s
    (oh, top), (ow, left) = _sizes(h, kh, s, padding), _sizes(wd, kw, s, padding)
    if mistake == "crop-side":
        top, left = max(kh - s, 0) - top, max(kw - s, 0) - left
    full = np.zeros((n, max((h - 1) * s + kh, oh + top), max((wd - 1) * s + kw, ow + left), f))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for q in range(kw):
                    full[:, i * step + a, j * step + q, :] += x[:, i, j, :] @ w[a, q].T     # (N, C_in) @ (C_in, F)
    y = full[:, top:top + oh, left:left + ow, :]
    return y if mistake == "bias" else y + b


def conv_transpose_backward(dy, x, w, s, padding, mistake=None):
    """The adjoint of the scatter: put dy back on the full canvas, then every input pixel gathers its window."""
    n, h, wd, c_in = x.shape
    kh, kw, f, _ = w.shape
    (oh, top), (ow, left) = _sizes(h, kh, s, padding), _sizes(wd, kw, s, padding)
    d_full = np.zeros((n, max((h - 1) * s + kh, oh + top), max((wd - 1) * s + kw, ow + left), f))
    d_full[:, top:top + oh, left:left + ow, :] = dy
    w_dx = w[::-1, ::-1] if mistake == "flip" else w
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    for i in range(h):
        for j in range(wd):
            window = d_full[:, i * s:i * s + kh, j * s:j * s + kw, :]            # (N, KH, KW, F)
            dx[:, i, j, :] = np.einsum("naqf,aqfc->nc", window, w_dx)
            dw += np.einsum("naqf,nc->aqfc", window, x[:, i, j, :])
    if mistake == "transposed-conv":
        dx = ops.conv2d_transpose(dy, w.transpose(0, 1, 3, 2), None, s, padding)[0]
    if mistake == "dw-swapped":
        dw = np.einsum("aqfc->aqcf", dw)
    db = {"db-zero": np.zeros(f), "db-per-image": dy.sum(axis=(1, 2))}.get(mistake, dy.sum(axis=(0, 1, 2)))
    return dx, dw, db


def overlap_counts(n, k, s, mistake=None):
    counts = np.zeros(n * s if mistake == "length" else (n - 1) * s + k, dtype=int)
    for i in range(n):
        start = i if mistake == "stride" else i * s
        counts[start:start + (s if mistake == "width" else k)] += 1
    return counts


CORRECT = [(check_conv_transpose_scatter, conv_transpose_scatter),
           (check_conv_transpose_backward, conv_transpose_backward), (check_overlap_counts, overlap_counts)]


def test_checks_accept_correct_answers(capsys):
    for check, answer in CORRECT:
        assert check(answer) is True
    out = capsys.readouterr().out
    assert out.count("correct:") == 3 and "conv_transpose_scatter passes 7 cases" in out


def test_the_reference_ops_pass_their_own_checks():
    assert check_conv_transpose_scatter(lambda x, w, b, s, p: ops.conv2d_transpose_naive(x, w, b, s, p))

    def fast_backward(dy, x, w, s, p):                 # the identities of the chapter's section 6
        dx = ops.conv2d(dy, w, None, s, p)[0]
        _, cache = ops.conv2d(dy, w, None, s, p)
        _, dw, _ = ops.conv2d_backward(x, cache)        # the conv's weight gradient, x as its upstream gradient
        return dx, dw, dy.sum(axis=(0, 1, 2))
    assert check_conv_transpose_backward(fast_backward)


@pytest.mark.parametrize("check", [c for c, _ in CORRECT])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _named(check, wrong, name):
    with pytest.raises(AssertionError, match="your answer is what .*" + name) as info:
        check(wrong)
    return str(info.value)


@pytest.mark.parametrize("mistake, name", [
    ("flip", "a flipped kernel"), ("in-out", r"read as \(KH, KW, C_in, F_out\)"), ("stride", "the stride ignored"),
    ("crop-side", "crop taken from the wrong side"), ("bias", "forgetting the bias")])
def test_scatter_names_its_mistakes(mistake, name):
    _named(check_conv_transpose_scatter, lambda *a: conv_transpose_scatter(*a, mistake=mistake), name)


def test_scatter_names_a_stride_ignored_everywhere():
    # a student who ignores the stride in the sizes too: the output is a stride-1 transposed convolution
    _named(check_conv_transpose_scatter, lambda x, w, b, s, p: conv_transpose_scatter(x, w, b, 1, p),
           "the stride ignored")


def test_the_crop_mistake_is_caught_where_the_two_sides_differ():
    # k = 3, s = 2 'same' cuts its one surplus row at the end; the wrong side keeps full[1:2H + 1]
    msg = _named(check_conv_transpose_scatter, lambda *a: conv_transpose_scatter(*a, mistake="crop-side"),
                 "wrong side")
    assert "stride 2, 'same'" in msg and "(k - s) // 2 are cut at the START" in msg


@pytest.mark.parametrize("mistake, name", [
    ("transposed-conv", "dx computed as a transposed convolution of dy"), ("flip", "dx computed with the kernel flipped"),
    ("dw-swapped", "dw with its input and output channels swapped"), ("db-zero", "db forgotten"),
    ("db-per-image", "db not summed over the batch")])
def test_backward_names_its_mistakes(mistake, name):
    _named(check_conv_transpose_backward, lambda *a: conv_transpose_backward(*a, mistake=mistake), name)


@pytest.mark.parametrize("mistake, name", [
    ("stride", "the stride ignored"), ("length", "a canvas n\\*s long"), ("width", "stamps s pixels wide")])
def test_overlap_counts_names_its_mistakes(mistake, name):
    _named(check_overlap_counts, lambda n, k, s: overlap_counts(n, k, s, mistake), name)
