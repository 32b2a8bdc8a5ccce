"""Chapter 01's exercise checks accept right answers, reject stubs, and name each classic mistake when a
wrong implementation (written here as a student would, not with the check's own answer functions) makes it."""
import numpy as np
import pytest

from unet_scratch import ops
from unet_scratch.exercises.ch01 import (check_col2im, check_conv2d_backward_gemm, check_conv2d_backward_loop,
                                         check_conv2d_gemm, check_conv2d_loop, check_im2col,
                                         check_receptive_field)

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


# ---------------------------------------------------------------- a student's answers, with switchable mistakes
def _same_pads(n, k, s, mistake=None):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    if mistake == "before":
        return total - total // 2, total // 2
    if mistake == "k//2":
        return k // 2, k // 2
    return total // 2, total - total // 2


def _pad(x, kh, kw, s, padding, mistake=None):
    if padding == "valid":
        return x, ((0, 0), (0, 0))
    pads = (_same_pads(x.shape[1], kh, s, mistake), _same_pads(x.shape[2], kw, s, mistake))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0))), pads


def conv2d_loop(x, w, b, stride, padding, mistake=None):
    kh, kw, _, f = w.shape
    if mistake == "flip":
        w = w[::-1, ::-1]
    x_pad, _ = _pad(x, kh, kw, stride, padding, mistake)
    oh, ow = (x_pad.shape[1] - kh) // stride + 1, (x_pad.shape[2] - kw) // stride + 1
    if mistake == "size":
        oh, ow = (x_pad.shape[1] - kh) // stride, (x_pad.shape[2] - kw) // stride
    y = np.zeros((x.shape[0], oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            window = x_pad[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(window, w, axes=3) + (0 if mistake == "bias" else b)
    return y


def im2col(x_pad, kh, kw, s, mistake=None):
    n, hp, wp, c = x_pad.shape
    step = 1 if mistake == "stride" else s
    oh, ow = (hp - kh) // step + 1, (wp - kw) // step + 1
    rows = []
    pixels = [(i, j) for j in range(ow) for i in range(oh)] if mistake == "column-major" else \
             [(i, j) for i in range(oh) for j in range(ow)]
    for m in range(n):
        for i, j in pixels:
            window = x_pad[m, i * step:i * step + kh, j * step:j * step + kw, :]
            if mistake == "channel-major":
                window = window.transpose(2, 0, 1)
            elif mistake == "qac":
                window = window.transpose(1, 0, 2)
            rows.append(window.reshape(-1))
    return np.array(rows)


def conv2d_gemm(x, w, b, stride, padding, mistake=None):
    kh, kw, c, f = w.shape
    x_pad, _ = _pad(x, kh, kw, stride, padding, mistake)
    oh, ow = (x_pad.shape[1] - kh) // stride + 1, (x_pad.shape[2] - kw) // stride + 1
    if mistake == "flip":
        w = w[::-1, ::-1]
    kernel = w.reshape(kh * kw * c, f)
    if mistake == "reshape-f-first":
        kernel = w.reshape(f, kh * kw * c).T
    elif mistake == "channel-major":
        kernel = w.transpose(2, 0, 1, 3).reshape(c * kh * kw, f)
    y = im2col(x_pad, kh, kw, stride) @ kernel
    if mistake != "bias":
        y = y + b
    return y.reshape(x.shape[0], oh, ow, f)


def conv2d_backward_loop(dy, x, w, stride, padding, mistake=None):
    kh, kw, _, f = w.shape
    x_pad, ((top, _), (left, _)) = _pad(x, kh, kw, stride, padding)
    w_used = w[::-1, ::-1] if mistake == "flip" else w
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(dy.shape[0]):
        dw_n = np.zeros_like(w)
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                for k in range(f):
                    dx_pad[n, rows, cols, :] += dy[n, i, j, k] * w_used[:, :, :, k]
                    dw_n[:, :, :, k] += dy[n, i, j, k] * x_pad[n, rows, cols, :]
        dw = dw_n if mistake == "dw-last-image" else dw + dw_n
    dx = dx_pad if mistake == "no-crop" else dx_pad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    db = {"db-per-image": lambda: dy.sum(axis=(1, 2)), "db-batch-only": lambda: dy.sum(axis=0)}.get(
        mistake, lambda: dy.sum(axis=(0, 1, 2)))()
    return dx, dw, db


def col2im(cols, x_pad_shape, kh, kw, s, mistake=None):
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    x_pad = np.zeros(x_pad_shape)
    r = 0
    for m in range(n):
        for i in range(oh):
            for j in range(ow):
                if mistake == "channel-major":
                    window = cols[r].reshape(c, kh, kw).transpose(1, 2, 0)
                else:
                    window = cols[r].reshape(kh, kw, c)
                top, left = (i, j) if mistake == "stride" else (i * s, j * s)
                if mistake == "overwrite":
                    x_pad[m, top:top + kh, left:left + kw, :] = window
                else:
                    x_pad[m, top:top + kh, left:left + kw, :] += window
                r += 1
    return x_pad


def col2im_overwrite_by_offsets(cols, x_pad_shape, kh, kw, s):
    """The vectorised col2im (a loop over the kernel offsets), with `=` for `+=`."""
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    six = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape)
    for a in range(kh):
        for q in range(kw):
            x_pad[:, a:a + s * oh:s, q:q + s * ow:s, :] = six[:, :, :, a, q, :]
    return x_pad


def conv2d_backward_gemm(dy, x, w, stride, padding, mistake=None, scatter=None):
    kh, kw, c, f = w.shape
    x_pad, ((top, _), (left, _)) = _pad(x, kh, kw, stride, padding)
    cols = im2col(x_pad, kh, kw, stride)
    dY = dy.reshape(-1, f)
    dw = (cols.T @ dY).reshape(kh, kw, c, f)
    if mistake == "dw-reshape":
        dw = (dY.T @ cols).reshape(kh, kw, c, f)
    scatter = scatter or (lambda *a: col2im(*a, mistake="overwrite" if mistake == "overwrite" else None))
    dx_pad = scatter(dY @ w.reshape(-1, f).T, x_pad.shape, kh, kw, stride)
    dx = dx_pad if mistake == "no-crop" else dx_pad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    db = dy.sum(axis=(1, 2)) if mistake == "db-per-image" else dy.sum(axis=(0, 1, 2))
    return dx, dw, db


def receptive_field(layers, mistake=None):
    r, jump = (0 if mistake == "r0" else 1), 1
    for k, s in layers:
        if mistake == "stride-first":
            jump *= s
        r += (k - 1) * jump
        if mistake not in ("stride-first", "no-strides"):
            jump *= s
    return r


CORRECT = [(check_conv2d_loop, conv2d_loop), (check_im2col, im2col), (check_conv2d_gemm, conv2d_gemm),
           (check_conv2d_backward_loop, conv2d_backward_loop), (check_col2im, col2im),
           (check_conv2d_backward_gemm, conv2d_backward_gemm), (check_receptive_field, receptive_field)]


def test_checks_accept_correct_answers(capsys):
    for check, answer in CORRECT:
        assert check(answer) is True
    out = capsys.readouterr().out
    assert out.count("correct:") == len(CORRECT), out
    assert "conv2d_gemm passes 6 cases (largest relative error" in out and "expected < 1e-07" in out


def test_the_reference_ops_pass_their_own_checks(capsys):
    assert check_conv2d_gemm(lambda x, w, b, s, p: ops.conv2d(x, w, b, s, p)[0])
    assert check_im2col(lambda x_pad, kh, kw, s: ops.im2col(x_pad, kh, kw, s, s))
    assert check_col2im(lambda cols, shape, kh, kw, s: ops.col2im(cols, shape, kh, kw, s, s))
    assert check_conv2d_backward_gemm(lambda dy, x, w, s, p: ops.conv2d_backward_naive(dy, x, w, s, p))


@pytest.mark.parametrize("check", [c for c, _ in CORRECT])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _named(check, wrong, name):
    with pytest.raises(AssertionError, match="your answer is what .*" + name) as info:
        check(wrong)
    return str(info.value)


@pytest.mark.parametrize("mistake, name", [
    ("flip", "a true convolution"), ("bias", "forgetting the bias"), ("size", "one row and one column short"),
    ("before", "extra pixel BEFORE"), ("k//2", r"PyTorch's padding=k//2")])
def test_conv2d_loop_names_its_mistakes(mistake, name):
    msg = _named(check_conv2d_loop, lambda *a: conv2d_loop(*a, mistake=mistake), name)
    if mistake == "flip":
        assert "Keras's Conv2D does not flip the kernel" in msg


@pytest.mark.parametrize("mistake, name", [
    ("channel-major", r"channel-major order \(c, a, q\)"), ("qac", r"\(q, a, c\) order"),
    ("column-major", "column-major order"), ("stride", "the stride ignored")])
def test_im2col_names_its_mistakes(mistake, name):
    _named(check_im2col, lambda *a: im2col(*a, mistake=mistake), name)


@pytest.mark.parametrize("mistake, name", [
    ("reshape-f-first", r"w.reshape\(F, KH\*KW\*C\).T"), ("channel-major", "flattened channel-major"),
    ("bias", "forgetting the bias"), ("flip", "a true convolution"), ("before", "extra pixel BEFORE")])
def test_conv2d_gemm_names_its_mistakes(mistake, name):
    _named(check_conv2d_gemm, lambda *a: conv2d_gemm(*a, mistake=mistake), name)


@pytest.mark.parametrize("mistake, name", [
    ("flip", "dx computed with the kernel flipped"), ("no-crop", "padding left on"),
    ("db-per-image", "db not summed over the batch"), ("db-batch-only", "db summed over the batch only"),
    ("dw-last-image", "dw from the last image only")])
def test_conv2d_backward_loop_names_its_mistakes(mistake, name):
    _named(check_conv2d_backward_loop, lambda *a: conv2d_backward_loop(*a, mistake=mistake), name)


@pytest.mark.parametrize("wrong, name", [
    (lambda *a: col2im(*a, mistake="overwrite"), "overwrites overlaps instead of adding"),
    (col2im_overwrite_by_offsets, "overwrites overlaps instead of adding"),
    (lambda *a: col2im(*a, mistake="channel-major"), r"channel-major order \(c, a, q\)"),
    (lambda *a: col2im(*a, mistake="stride"), "the stride ignored")])
def test_col2im_names_its_mistakes(wrong, name):
    _named(check_col2im, wrong, name)


@pytest.mark.parametrize("wrong, name", [
    (lambda *a: conv2d_backward_gemm(*a, mistake="dw-reshape"), r"dY\^T cols"),
    (lambda *a: conv2d_backward_gemm(*a, mistake="overwrite"), "col2im that overwrites"),
    (lambda *a: conv2d_backward_gemm(*a, scatter=col2im_overwrite_by_offsets), "col2im that overwrites"),
    (lambda *a: conv2d_backward_gemm(*a, mistake="no-crop"), "padding left on"),
    (lambda *a: conv2d_backward_gemm(*a, mistake="db-per-image"), "db not summed over the batch")])
def test_conv2d_backward_gemm_names_its_mistakes(wrong, name):
    _named(check_conv2d_backward_gemm, wrong, name)


@pytest.mark.parametrize("mistake, name", [
    ("r0", "starting from r = 0"), ("no-strides", "the strides ignored"), ("stride-first", "its own kernel")])
def test_receptive_field_names_its_mistakes(mistake, name):
    with pytest.raises(AssertionError, match="that is what .*" + name):
        check_receptive_field(lambda layers: receptive_field(layers, mistake=mistake))


def test_an_unknown_mistake_still_gets_a_number():
    with pytest.raises(AssertionError, match="largest difference"):
        check_conv2d_loop(lambda *a: 1.5 * conv2d_loop(*a))
