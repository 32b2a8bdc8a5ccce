"""The CuPy backend.

On every machine: the array logic it shares with the CPU (``kernels/xp_ops.py``) runs with ``xp=numpy``
against the NumPy reference, op by op and as a whole U-Net, and the backend's failure modes without a GPU
(clear errors from ``set_backend("cupy")`` and ``to_device``) are checked.
Where CuPy finds a CUDA GPU: the full parity suite, every op and the whole U-Net on the GPU against the
reference, float32 rtol = atol = 1e-5. Without one those tests are skipped with the reason shown; the
same GPU path then runs on the strict CuPy stand-in in tests/test_gpu_path.py (on every machine).
Dropout draws its mask on the GPU (same seed, same mask; not the CPU's), so the whole-model comparisons
run without dropout and the dropout op is checked for its own properties there.
"""
import functools
import os
import types

import numpy as np
import pytest
try:                            # a bare GPU install (cupy, pytest) runs the GPU tests without hypothesis
    from hypothesis import given, settings, strategies as st
except ImportError:             # pragma: no cover - hypothesis is in the dev extra
    given = settings = st = None

import unet_scratch.ops as ref
from unet_scratch import UNet, backend, use_backend
from unet_scratch.backend import to_numpy
from unet_scratch.kernels import to_device, xp_ops

from conftest import assert_same  # tests/conftest.py: dtype, shape, TOL by dtype; CuPy arrays copied back

LAYER_OPS = ("conv2d", "conv2d_backward", "conv2d_transpose", "conv2d_transpose_backward", "maxpool2d",
             "maxpool2d_backward", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "softmax",
             "softmax_backward", "dropout", "dropout_backward", "concatenate", "concatenate_backward")


def _gpu_available() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - not installed, no driver, no device: all mean "no GPU"
        return False


GPU = _gpu_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="no CUDA GPU (CuPy not installed or no device): "
                                               "GPU parity suite skipped")


def test_assert_same_catches_a_wrong_answer(rng):
    y = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(AssertionError):
        assert_same(y + 1e-3, y)


def _op_cases(rng, dtype):
    """(name, forward args, backward needs dy) for every layer op, small random inputs with ties."""
    r = lambda *s: rng.standard_normal(s).astype(dtype)          # noqa: E731
    x = r(2, 7, 6, 3)
    ties = np.maximum(rng.integers(-1, 3, (2, 7, 6, 3)), 0).astype(dtype)
    return [("conv2d", (x, r(3, 3, 3, 4), r(4), 1, "same")), ("conv2d", (x, r(3, 2, 3, 4), None, 2, "valid")),
            ("conv2d", (x, r(1, 1, 3, 2), r(2), 1, "valid")),
            ("conv2d_transpose", (x, r(2, 2, 4, 3), r(4), 2, "same")),
            ("conv2d_transpose", (x, r(3, 3, 4, 3), r(4), 2, "valid")),
            ("maxpool2d", (ties, 2, None, "valid")), ("maxpool2d", (ties, 3, 2, "same")),
            ("relu", (np.round(x),)), ("sigmoid", (x * 10,)), ("softmax", (x,))]


def _check_ops(ops, to_device_array, rng, dtype, tol=None):
    """Every op of the namespace ``ops`` (forward and backward) against the reference."""
    for name, args in _op_cases(rng, dtype):
        y_ref, cache_ref = getattr(ref, name)(*args)
        dev_args = tuple(to_device_array(a) if isinstance(a, np.ndarray) else a for a in args)
        y, cache = getattr(ops, name)(*dev_args)
        assert_same(y, y_ref, tol)
        dy = rng.standard_normal(y_ref.shape).astype(dtype)
        assert_same(getattr(ops, name + "_backward")(to_device_array(dy), cache),
                    getattr(ref, name + "_backward")(dy, cache_ref), tol)
    xs = [rng.standard_normal((2, 4, 4, c)).astype(dtype) for c in (3, 5)]
    y, cache = ops.concatenate([to_device_array(a) for a in xs], -1)
    assert_same(y, ref.concatenate(xs, -1)[0], tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = ref.concatenate_backward(dy, ref.concatenate(xs, -1)[1])
    assert_same(ops.concatenate_backward(to_device_array(dy), cache), expected, tol)
    x = rng.standard_normal((2, 4, 4, 3)).astype(dtype)
    y, cache = ops.dropout(to_device_array(x), 0.5, np.random.default_rng(7), True)
    y_ref, cache_ref = ref.dropout(x, 0.5, np.random.default_rng(7), True)
    if isinstance(to_device_array(x), np.ndarray):             # on the CPU: the reference's very mask
        assert_same(y, y_ref, tol)
        assert_same(ops.dropout_backward(to_device_array(x), cache), ref.dropout_backward(x, cache_ref), tol)
    else:                                                      # on the GPU: drawn there, same seed same mask
        again, _ = ops.dropout(to_device_array(x), 0.5, np.random.default_rng(7), True)
        mask = to_numpy(cache)
        assert_same(again, to_numpy(y))
        assert set(np.unique(mask)) <= {0, 2}
        assert_same(y, x * mask, tol)
        assert_same(ops.dropout_backward(to_device_array(x), cache), x * mask, tol)


def xp_namespace(xp=np):
    """The layer ops of ``xp_ops`` bound to an array module: what cupy_ops runs, minus its CUDA kernels."""
    return types.SimpleNamespace(**{n: functools.partial(getattr(xp_ops, n), xp=xp) for n in LAYER_OPS})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shared_logic_matches_reference_on_cpu(rng, dtype):
    _check_ops(xp_namespace(np), lambda a: a, rng, dtype)


def _shared_conv_and_pool_case(h, w, c, f, k, s, padding, seed):
    rng = np.random.default_rng(seed)
    x, wk = rng.standard_normal((2, h, w, c)), rng.standard_normal((k, k, c, f))
    for name, kernel in (("conv2d", wk), ("conv2d_transpose", wk.transpose(0, 1, 3, 2))):
        y_ref, cache_ref = getattr(ref, name)(x, kernel, None, s, padding)
        y, cache = getattr(xp_ops, name)(x, kernel, None, s, padding)
        assert_same(y, y_ref)
        dy = rng.standard_normal(y.shape)
        expected = getattr(ref, name + "_backward")(dy, cache_ref)
        assert_same(getattr(xp_ops, name + "_backward")(dy, cache), expected)
    y_ref, cache_ref = ref.maxpool2d(x, k, s, padding)
    y, cache = xp_ops.maxpool2d(x, k, s, padding)
    assert_same(y, y_ref)
    dy = rng.standard_normal(y.shape)
    assert_same(xp_ops.maxpool2d_backward(dy, cache), ref.maxpool2d_backward(dy, cache_ref))


if given is None:
    @pytest.mark.skip(reason="hypothesis is not installed (the dev extra)")
    def test_property_shared_conv_and_pool():
        pass
else:
    @settings(max_examples=25, deadline=None)
    @given(h=st.integers(3, 9), w=st.integers(3, 9), c=st.integers(1, 4), f=st.integers(1, 4),
           k=st.integers(1, 3), s=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]),
           seed=st.integers(0, 2**16))
    def test_property_shared_conv_and_pool(h, w, c, f, k, s, padding, seed):
        _shared_conv_and_pool_case(h, w, c, f, k, s, padding, seed)


def _unet_grads(model, x, dy_seed=2):
    y = model.forward(x, training=True)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(model.dtype)
    return y, model.backward(dy), dy


def test_shared_logic_runs_the_whole_unet_on_cpu(monkeypatch):
    kw = dict(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=3)
    x = np.random.default_rng(1).random((2, 16, 16, 1), dtype=np.float32)
    expected_model = UNet(**kw)
    y_ref, dx_ref, _ = _unet_grads(expected_model, x)
    model = UNet(**kw)
    monkeypatch.setattr(backend, "ops", lambda: xp_namespace(np))
    y, dx, _ = _unet_grads(model, x)
    assert_same(y, y_ref)
    assert_same(dx, dx_ref)
    for name, g in expected_model.grads.items():
        assert_same(model.grads[name], g)


@pytest.mark.skipif(GPU, reason="a GPU is present: the no-GPU error path cannot be shown")
def test_cupy_backend_without_gpu_is_a_clear_error(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "cupy", None)                      # "not installed", whatever ran before
    monkeypatch.delitem(sys.modules, "unet_scratch.kernels.cupy_ops", raising=False)
    with pytest.raises(RuntimeError, match="backend 'cupy' is not available"):
        backend.set_backend("cupy")
    assert backend.get_backend() == "numpy"


def test_to_device_cpu_and_bad_names():
    model = UNet(input_shape=(16, 16, 1), base_filters=2, depth=1, seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    assert to_device(model, "cpu") is model
    assert all(isinstance(v, np.ndarray) and np.array_equal(v, before[k]) for k, v in model.params.items())
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        to_device(model, "tpu")
    if not GPU:
        try:
            import cupy  # noqa: F401
        except ImportError:
            with pytest.raises(RuntimeError, match="CuPy"):
                to_device(model, "gpu")


# ----------------------------------------------------------------------------- on a GPU


@needs_gpu
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_gpu_ops_match_reference(rng, dtype, tol):
    import cupy
    from unet_scratch.kernels import cupy_ops
    assert int(os.environ.get("CUPY_TF32", "0") or 0) == 0, "CUPY_TF32 is set: float32 GEMMs would be TF32"
    _check_ops(cupy_ops, cupy.asarray, rng, dtype, tol)


@needs_gpu
@pytest.mark.parametrize("padding,size", [("same", 32), ("valid", 44)])
def test_gpu_whole_unet_matches_numpy(padding, size):
    import cupy
    kw = dict(input_shape=(size, size, 1), base_filters=8, depth=2, padding=padding, seed=3, dropout=0.0)
    if padding == "valid":
        kw.update(out_channels=2, out_activation="softmax")
    x = np.random.default_rng(1).random((2, size, size, 1), dtype=np.float32)
    expected = UNet(**kw)
    y_ref, dx_ref, dy = _unet_grads(expected, x)
    model = to_device(UNet(**kw), "gpu")
    with use_backend("cupy"):
        y = model.forward(cupy.asarray(x), training=True)
        dx = model.backward(cupy.asarray(dy))
    assert_same(y, y_ref)
    assert_same(dx, dx_ref)
    for name, g in expected.grads.items():
        assert isinstance(model.grads[name], cupy.ndarray)
        assert_same(model.grads[name], g)
    to_device(model, "cpu")
    assert all(isinstance(p, np.ndarray) for p in model.params.values())
