"""Initialisers: fans exactly as Keras, sample statistics (limits, std, truncation) against the formulas
and against Keras's own samples, determinism with a seed, dtype, the name lookup."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.initializers import (TRUNCATED_NORMAL_STD, compute_fans, get_initializer, glorot_uniform,
                                       he_normal, paper_normal, zeros)

SHAPES = [(3, 3, 16, 32), (2, 2, 64, 128), (2, 2, 32, 64), (1, 1, 64, 1), (5,), (7, 3), (), (3, 5, 2, 4, 6)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_keras(shape, keras):
    from keras.src.initializers.random_initializers import compute_fans as keras_fans
    assert compute_fans(shape) == tuple(int(f) for f in keras_fans(shape))


def test_fans_of_conv_and_transposed_conv_kernels(keras):
    assert compute_fans((3, 3, 64, 128)) == (576, 1152)          # Conv2D (kh, kw, in, out)
    # Conv2DTranspose(64, 2) on 128 channels: kernel (2, 2, out=64, in=128); Keras's fan_in counts 64
    layer = keras.layers.Conv2DTranspose(64, 2, strides=2)
    layer.build((None, 8, 8, 128))
    assert tuple(layer.kernel.shape) == (2, 2, 64, 128)
    assert compute_fans(layer.kernel.shape) == (256, 512)
    assert compute_fans((2, 3, 4), input_axes=[0], output_axes=[1, 2]) == (2, 12)


def test_glorot_uniform_statistics():
    w = glorot_uniform((3, 3, 64, 64), np.random.default_rng(0))
    limit = np.sqrt(6 / (576 + 576))
    assert w.dtype == np.float32 and np.abs(w).max() <= np.float32(limit)
    assert np.abs(w).max() > 0.99 * limit                          # the whole interval is used
    assert abs(w.std() / (limit / np.sqrt(3)) - 1) < 0.01 and abs(w.mean()) < 1e-3


def test_he_normal_statistics():
    h = he_normal((3, 3, 64, 128), np.random.default_rng(0), "float64")
    std = np.sqrt(2 / 576)
    assert h.dtype == np.float64 and abs(h.std() / std - 1) < 0.01 and abs(h.mean()) < 1e-3
    bound = 2 * std / TRUNCATED_NORMAL_STD
    assert np.abs(h).max() <= bound and np.abs(h).max() > 0.99 * bound


def test_paper_normal_is_an_untruncated_gaussian():
    p = paper_normal((3, 3, 64, 128), np.random.default_rng(0), "float64")
    std = np.sqrt(2 / 576)                                         # the paper: N = 3 * 3 * 64
    assert abs(p.std() / std - 1) < 0.01
    assert np.abs(p).max() > 3 * std                                # tails beyond the truncation


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal"])
def test_distribution_matches_keras_samples(name, keras):
    """Different random numbers, same distribution: a two-sample Kolmogorov-Smirnov test."""
    from scipy.stats import ks_2samp
    shape = (3, 3, 64, 64)
    ours = get_initializer(name)(shape, np.random.default_rng(1), "float32")
    keras_init = {"glorot_uniform": keras.initializers.GlorotUniform,
                  "he_normal": keras.initializers.HeNormal}
    theirs = keras_init[name](seed=1)(shape).numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert ks_2samp(ours.ravel(), theirs.ravel()).pvalue > 1e-3
    wrong = paper_normal(shape, np.random.default_rng(1)) if name == "he_normal" else \
        he_normal(shape, np.random.default_rng(1))
    assert ks_2samp(wrong.ravel(), theirs.ravel()).pvalue < 1e-3  # the test can tell distributions apart


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "paper_normal"])
def test_seeded_and_typed(name):
    init = get_initializer(name)
    a = init((4, 5), np.random.default_rng(3), "float32")
    b = init((4, 5), np.random.default_rng(3), "float32")
    c = init((4, 5), np.random.default_rng(4), "float32")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.dtype == np.float32
    assert init((4, 5), np.random.default_rng(3), np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="default_rng"):
        init((4, 5), 3)


def test_zeros_and_lookup():
    z = zeros((3,), None, "float64")
    assert z.dtype == np.float64 and not z.any()
    assert get_initializer("zeros") is zeros and get_initializer("HE_NORMAL") is he_normal
    custom = lambda shape, rng, dtype: np.ones(shape, dtype)            # noqa: E731
    assert get_initializer(custom) is custom
    with pytest.raises(ValueError, match="unknown initializer 'orthogonal'"):
        get_initializer("orthogonal")


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=0, max_size=5), seed=st.integers(0, 1000))
def test_property(shape, seed, keras):
    from keras.src.initializers.random_initializers import compute_fans as keras_fans
    shape = tuple(shape)
    fan_in, fan_out = compute_fans(shape)
    assert (fan_in, fan_out) == tuple(int(f) for f in keras_fans(shape))
    w = glorot_uniform(shape, np.random.default_rng(seed))
    assert w.shape == shape and np.all(np.abs(w) <= np.float32(np.sqrt(6 / max(2, fan_in + fan_out))))
    h = he_normal(shape, np.random.default_rng(seed), "float64")
    assert h.shape == shape and np.all(np.abs(h) <= 2 * np.sqrt(2 / fan_in) / TRUNCATED_NORMAL_STD)
