"""Chapter 03's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import numpy as np
import pytest

from unet_scratch.exercises.ch03 import check_conv_transpose_output_size, check_overlap_counts, check_scatter_add

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _output_size(i, k, s, padding):
    return i * s if padding == "same" else i * s + max(k - s, 0)


def _scatter_add(x, w, s, flip=False):
    if flip:
        w = w[::-1, ::-1]
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    full = np.zeros((n, (h - 1) * s + kh, (wd - 1) * s + kw, f))
    for i in range(h):
        for j in range(wd):
            full[:, i * s:i * s + kh, j * s:j * s + kw, :] += np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)
    return full


def _overlap_counts(n, k, s):
    counts = np.zeros((n - 1) * s + k, dtype=int)
    for i in range(n):
        counts[i * s:i * s + k] += 1
    return counts


def test_checks_accept_correct_answers(capsys):
    assert check_conv_transpose_output_size(_output_size)
    assert check_scatter_add(_scatter_add)
    assert check_overlap_counts(_overlap_counts)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_conv_transpose_output_size, check_scatter_add, check_overlap_counts])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_output_size_rejects_the_conv_inverse_formula():
    # (i - 1)*s + k is the full canvas, not Keras 3's valid size when s > k
    with pytest.raises(AssertionError, match=r"conv_transpose_output_size\(4, 1, 3, 'valid'\): expected 12, got 10"):
        check_conv_transpose_output_size(lambda i, k, s, p: i * s if p == "same" else (i - 1) * s + k)


def test_scatter_add_rejects_a_flipped_kernel():
    with pytest.raises(AssertionError, match=r"scatter_add \(x \(1, 3, 3, 1\), w \(2, 2, 1, 1\)"):
        check_scatter_add(lambda x, w, s: _scatter_add(x, w, s, flip=True))


def test_overlap_counts_rejects_ignoring_the_stride():
    with pytest.raises(AssertionError, match="overlap_counts"):
        check_overlap_counts(lambda n, k, s: _overlap_counts(n, k, 1))
