"""The whole GPU path, on every machine: the CuPy backend run on a strict CuPy stand-in (tests/strict_cupy.py).

The stand-in refuses what a real GPU would refuse or silently get wrong: implicit conversion to NumPy,
host/device mixing, wrong kernel launch arguments, non-contiguous kernel inputs. Every test here that
takes the ``cp`` fixture also runs on the real CuPy where a CUDA GPU is present (marked ``gpu``).
Cases: every op forward and backward, NaN and dtype rules, dropout on the device, the whole U-Net in
float32 and float64 with same and valid padding, fit with each loss and optimizer, resume, load_weights,
set_weights, load_checkpoint, from_keras, predict, predict_tiled, the command line, the benchmark's GPU
calls, the self-test's message, the chunked im2col and ``make gpu-check --smoke``.
"""
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import strict_cupy
import unet_scratch.ops as ref
from unet_scratch import UNet, backend, use_backend
from unet_scratch.backend import to_numpy
from unet_scratch.kernels import xp_ops

from conftest import assert_same

ROOT = Path(__file__).resolve().parents[1]


def _real_gpu() -> bool:
    try:
        import cupy
        return not getattr(cupy, "IS_STANDIN", False) and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - not installed, no driver, no device
        return False


REAL_GPU = _real_gpu()


def _install_standin(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", strict_cupy)
    monkeypatch.delitem(sys.modules, "unet_scratch.kernels.cupy_ops", raising=False)
    strict_cupy.reset()
    return strict_cupy


@pytest.fixture(params=["standin", pytest.param("cupy", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not REAL_GPU, reason="no CUDA GPU: the real-CuPy run of this case "
                                                             "is skipped (the stand-in run is not)")])])
def cp(request, monkeypatch):
    """The array module of the GPU path: the strict stand-in, and the real CuPy where a GPU is."""
    if request.param == "standin":
        module = _install_standin(monkeypatch)
    else:
        import cupy as module
    yield module
    backend.set_backend("numpy")
    if request.param == "standin":
        _forget_standin_backend()


@pytest.fixture
def standin(monkeypatch):
    yield _install_standin(monkeypatch)
    backend.set_backend("numpy")
    _forget_standin_backend()


def _forget_standin_backend():
    """Drop the cupy_ops module imported against the stand-in, so no later test finds a 'cupy' backend
    that only the stand-in made importable (tests run in any order, several per xdist worker)."""
    sys.modules.pop("unet_scratch.kernels.cupy_ops", None)
    import unet_scratch.kernels as kernels
    kernels.__dict__.pop("cupy_ops", None)


def _cupy_ops():
    backend.set_backend("cupy")
    return backend.ops()


# ----------------------------------------------------------------------------- the stand-in itself


def test_standin_refuses_implicit_conversion_and_mixing(standin):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    a = standin.asarray(host)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    for mix in (lambda: a + host, lambda: host * a, lambda: np.where(a > 0, host, 0),
                lambda: standin.concatenate([a, host]), lambda: a.__setitem__(0, host[0]),
                lambda: a[np.array([0, 1])], lambda: standin.zeros_like(host), lambda: np.maximum(host, a)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            mix()
    assert isinstance(a.sum(), standin.ndarray) and a.sum().shape == ()       # reductions stay on the device
    assert np.array_equal(a.get(), host) and np.array_equal(standin.asnumpy(a * 2), host * 2)
    assert np.isnan(standin.empty((3,), np.float32).get()).all()                # garbage, visibly


def test_standin_checks_kernel_launches(standin):
    ops = _cupy_ops()
    from unet_scratch.kernels import cupy_ops
    x = standin.asarray(np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype(np.float32))
    y, cache = ops.maxpool2d(x)
    kernel = cupy_ops._pool_kernel("maxpool_forward", np.float32)
    good = [x, y, cache["argmax"], np.int64(y.size), *map(np.int32, (4, 4, 2, 2, 2, 2, 2, 2, 2, 0, 0))]
    kernel((1,), (256,), tuple(good))                                            # the launch cupy_ops makes
    bad_cases = [((1,), (256,), tuple([x[:, ::2]] + good[1:]), ValueError, "not C-contiguous"),
                 ((1,), (256,), tuple(good[:4] + [4] + good[5:]), TypeError, "numpy.int32"),
                 ((1,), (256,), tuple([x.astype(np.float64)] + good[1:]), TypeError, "reinterpret"),
                 ((1,), (2048,), tuple(good), ValueError, "at most 1024"),
                 ((1,), (256,), tuple(good[:-1]), TypeError, "takes 15 arguments"),
                 ((0,), (256,), tuple(good), ValueError, ">= 1")]
    for grid, block, args, error, message in bad_cases:
        with pytest.raises(error, match=message):
            kernel(grid, block, args)
    changed = cupy_ops._POOL_SOURCE.replace("atomicAdd(&dx", "atomicAdd( &dx")
    with pytest.raises(RuntimeError, match="changed"):
        standin.RawModule(code=changed).get_function("maxpool_backward<float>")
    # a wrong grid (too few threads) leaves garbage, which the comparison with the reference then shows
    out = standin.empty(y.shape, np.float32)
    kernel((1,), (4,), tuple([x, out] + good[2:]))
    assert np.isnan(out.get()).any()


def test_standin_elementwise_type_rule(standin, monkeypatch):
    from unet_scratch.kernels import cupy_ops
    _cupy_ops()
    z = standin.asarray(np.array([1.0, -1.0], np.float32))
    relu = standin.ElementwiseKernel(*cupy_ops._RELU, "unet_relu")
    with pytest.raises(TypeError, match="Unsupported type"):
        relu(np.array([1.0], np.float32))
    backward = standin.ElementwiseKernel(*cupy_ops._RELU_BACKWARD, "unet_relu_backward")
    assert backward(z.astype(np.float64), z).dtype == np.float64            # T (dy) and Y (y) may differ
    old = ("T dy, T y", "T dz", "dz = y > (T)0 ? dy : (T)0")                   # the kernel before issue 18
    with pytest.raises(RuntimeError, match="changed"):
        standin.ElementwiseKernel(*old, "unet_relu_backward")
    monkeypatch.setitem(standin._ELEMENTWISE, "unet_relu_backward",
                        (standin.fingerprint(" | ".join(old)), lambda dy, y: (np.where(y > 0, dy, 0),)))
    with pytest.raises(TypeError, match="Type is mismatched"):                # as CuPy refused float64 dy
        standin.ElementwiseKernel(*old, "unet_relu_backward")(z.astype(np.float64), z)


# ----------------------------------------------------------------------------- every op


def _op_cases(rng, dtype):
    r = lambda *s: rng.standard_normal(s).astype(dtype)          # noqa: E731
    x = r(2, 7, 6, 3)
    ties = np.maximum(rng.integers(-1, 3, (2, 7, 6, 3)), 0).astype(dtype)
    return [("conv2d", (x, r(3, 3, 3, 4), r(4), 1, "same")), ("conv2d", (x, r(3, 2, 3, 4), None, 2, "valid")),
            ("conv2d", (x, r(1, 1, 3, 2), r(2), 1, "valid")), ("conv2d", (r(2, 6, 6, 5), r(3, 3, 5, 2), r(2), 1, "same")),
            ("conv2d_transpose", (x, r(2, 2, 4, 3), r(4), 2, "same")),
            ("conv2d_transpose", (x, r(3, 3, 4, 3), r(4), 2, "valid")),
            ("maxpool2d", (ties, 2, None, "valid")), ("maxpool2d", (ties, 3, 2, "same")),
            ("relu", (np.round(x),)), ("sigmoid", (x * 10,)), ("softmax", (x,)), ("upsample2d", (x, (2, 3)))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_op_forward_and_backward_matches_the_reference(cp, rng, dtype):
    ops = _cupy_ops()
    for name, args in _op_cases(rng, dtype):
        y_ref, cache_ref = getattr(ref, name)(*args)
        y, cache = getattr(ops, name)(*(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args))
        assert isinstance(y, cp.ndarray), name
        assert_same(y, y_ref)
        dy = rng.standard_normal(y_ref.shape).astype(dtype)
        assert_same(getattr(ops, name + "_backward")(cp.asarray(dy), cache),
                    getattr(ref, name + "_backward")(dy, cache_ref))
    xs = [rng.standard_normal((2, 4, 4, c)).astype(dtype) for c in (3, 5)]
    y, cache = ops.concatenate([cp.asarray(a) for a in xs], -1)
    assert_same(y, ref.concatenate(xs, -1)[0])
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_same(ops.concatenate_backward(cp.asarray(dy), cache),
                ref.concatenate_backward(dy, ref.concatenate(xs, -1)[1]))


def test_nan_and_dtype_rules_are_the_references(cp, rng):
    ops = _cupy_ops()
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    x[0, 0, 1, 0], x[0, 2, 2, 1], x[0, 3, 3, 1] = np.nan, np.nan, np.inf
    y, cache = ops.maxpool2d(cp.asarray(x))
    y_ref, cache_ref = ref.maxpool2d(x)
    assert np.array_equal(cp.asnumpy(y), y_ref, equal_nan=True)                 # a NaN wins its window
    assert np.array_equal(cp.asnumpy(cache["argmax"]), cache_ref["argmax"])      # the first NaN's place
    r, r_cache = ops.relu(cp.asarray(x))
    assert np.array_equal(cp.asnumpy(r), ref.relu(x)[0], equal_nan=True)       # NaN stays NaN
    dy = rng.standard_normal(x.shape)                                            # float64 into float32
    dy[0, 0, 0, :] = np.nan
    expected = ref.relu_backward(dy, ref.relu(x)[1])
    got = ops.relu_backward(cp.asarray(dy), r_cache)
    assert got.dtype == expected.dtype == np.float64
    assert np.array_equal(cp.asnumpy(got), expected, equal_nan=True)
    assert ops.maxpool2d_backward(cp.asarray(rng.standard_normal(y.shape)), cache).dtype == np.float64


def test_kernels_take_strided_views(cp, rng):
    """A raw kernel reads flat C-ordered memory: the backend must hand it contiguous copies of views."""
    ops = _cupy_ops()
    x = rng.standard_normal((2, 8, 9, 6)).astype(np.float32)
    view = cp.asarray(x)[:, 1:, ::2, 1:5]
    assert not view.flags.c_contiguous
    y, cache = ops.maxpool2d(view)
    y_ref, cache_ref = ref.maxpool2d(x[:, 1:, ::2, 1:5])
    assert_same(y, y_ref)
    dy = rng.standard_normal(y_ref.shape[::-1]).astype(np.float32).T             # a transposed (strided) dy
    assert_same(ops.maxpool2d_backward(cp.asarray(np.ascontiguousarray(dy.T)).T, cache),
                ref.maxpool2d_backward(dy, cache_ref))
    r, r_cache = ops.relu(view)
    assert_same(r, ref.relu(x[:, 1:, ::2, 1:5])[0])


def test_float64_dy_into_a_float32_gpu_model_follows_the_reference(cp):
    kw = dict(input_shape=(16, 16, 1), base_filters=2, depth=1, seed=0, dropout=0)
    x = np.random.default_rng(0).random((1, 16, 16, 1), dtype=np.float32)
    cpu, gpu = UNet(**kw), UNet(**kw).to("gpu")
    dy = np.random.default_rng(1).standard_normal((1, 16, 16, 1))
    cpu.forward(x)
    dx_ref = cpu.backward(dy)
    with use_backend("cupy"):
        gpu.forward(cp.asarray(x))
        dx = gpu.backward(cp.asarray(dy))
    assert dx.dtype == dx_ref.dtype == np.float64
    assert {k: g.dtype for k, g in gpu.grads.items()} == {k: g.dtype for k, g in cpu.grads.items()}
    assert_same(dx, dx_ref)


def test_dropout_masks_are_drawn_on_the_device(cp):
    ops = _cupy_ops()
    x = cp.asarray(np.ones((4, 16, 16, 8), np.float32))
    standin = getattr(cp, "IS_STANDIN", False)
    if standin:
        cp.reset()
    y1, mask1 = ops.dropout(x, 0.5, np.random.default_rng(7), True)
    y2, mask2 = ops.dropout(x, 0.5, np.random.default_rng(7), True)
    _, other = ops.dropout(x, 0.5, np.random.default_rng(8), True)
    if standin:
        assert cp.stats["h2d"] == 0, "the mask was copied from the host"
    m1, m2 = cp.asnumpy(mask1), cp.asnumpy(mask2)
    assert np.array_equal(m1, m2) and not np.array_equal(m1, cp.asnumpy(other))   # same seed, same mask
    assert set(np.unique(m1)) == {0.0, 2.0} and m1.dtype == np.float32
    assert abs((m1 > 0).mean() - 0.5) < 0.05
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    assert_same(ops.dropout_backward(cp.asarray(dy), mask1), dy * m1)
    assert ops.dropout(x, 0.5, np.random.default_rng(7), False)[1] is None


# ----------------------------------------------------------------------------- the whole U-Net


def _unet_kw(padding, dtype):
    size = 16 if padding == "same" else 44
    kw = dict(input_shape=(size, size, 1), base_filters=4, depth=2, padding=padding, seed=3, dtype=dtype,
              dropout=0.0)
    if padding == "valid":
        kw.update(out_channels=2, out_activation="softmax")
    return kw


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_whole_unet_forward_and_backward_match_numpy(cp, padding, dtype):
    kw = _unet_kw(padding, dtype)
    rng = np.random.default_rng(1)
    x = rng.random((2, *kw["input_shape"])).astype(dtype)
    expected = UNet(**kw)
    y_ref = expected.forward(x, training=True)
    dy = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref = expected.backward(dy)
    model = UNet(**kw).to("gpu")
    assert model.device == "gpu"
    with use_backend("cupy"):
        y = model.forward(cp.asarray(x), training=True)
        dx = model.backward(cp.asarray(dy))
    assert_same(y, y_ref)
    assert_same(dx, dx_ref)
    for name, g in expected.grads.items():
        assert isinstance(model.grads[name], cp.ndarray)
        assert_same(model.grads[name], g, 1e-5 if dtype == "float32" else 1e-10)
    model.to("cpu")
    assert all(isinstance(p, np.ndarray) for p in model.params.values())


def test_a_gpu_forward_and_backward_do_not_synchronise(standin):
    model = UNet((16, 16, 1), base_filters=4, depth=2, seed=0).to("gpu")
    x = standin.asarray(np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32))
    with use_backend("cupy"):
        standin.reset()
        y = model.forward(x, training=True)
        model.backward(standin.ones_like(y))
    assert standin.stats["syncs"] == 0 and standin.stats["h2d"] == 0 and standin.stats["d2h"] == 0, \
        standin.stats
    assert standin.stats["launches"] > 0                                # the CUDA kernels ran


def test_errors_name_the_fix(cp):
    model = UNet((16, 16, 1), base_filters=2, depth=1, seed=0).to("gpu")
    x = np.random.default_rng(0).random((1, 16, 16, 1), dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"set_backend\('cupy'\)"):
        model.forward(cp.asarray(x))                                    # the backend is numpy
    with use_backend("cupy"):
        with pytest.raises(TypeError, match=r"cupy.asarray\(x\)"):
            model.forward(x)
        model.forward(cp.asarray(x), training=True)
        model.to("gpu")                                                 # a move forgets the caches
        with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
            model.backward(cp.asarray(np.ones((1, 16, 16, 1), np.float32)))
        drop = next(l for l in model.layers if type(l).__name__ == "Dropout")
        with pytest.raises(RuntimeError, match="before forward"):
            drop.backward(cp.asarray(np.ones((1, 8, 8, 4), np.float32)))
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        model.to("tpu")


# ----------------------------------------------------------------------------- training, loading, inference


def _data(n=4, size=16, classes=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1), dtype=np.float32)
    t = (rng.integers(0, classes, (n, size, size, 1)) if classes else rng.random((n, size, size, 1)) > 0.5)
    return x, t.astype(np.float32)


@pytest.mark.parametrize("loss,optimizer", [("bce", "adam"), ("bce", "sgd"), ("dice", "adam"),
                                            ("bce_dice", "sgd"), ("weighted_ce", "adam")])
def test_fit_on_the_gpu_follows_the_cpu(cp, loss, optimizer):
    from unet_scratch.training import fit
    softmax = loss == "weighted_ce"
    kw = dict(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=3, dropout=0.0,
              **(dict(out_channels=2, out_activation="softmax") if softmax else {}))
    data = _data(classes=2 if softmax else None)
    cpu, gpu = UNet(**kw), UNet(**kw)
    h_cpu = fit(cpu, data, data, epochs=2, batch_size=2, optimizer=optimizer, loss=loss, verbose=0)
    with use_backend("cupy"):
        h_gpu = fit(gpu, data, data, epochs=2, batch_size=2, optimizer=optimizer, loss=loss, verbose=0)
    assert gpu.device == "gpu"                                          # moved by fit, and kept there
    for key, values in h_cpu.history.items():
        if key != "seconds":
            np.testing.assert_allclose(h_gpu.history[key], values, rtol=1e-5, atol=1e-6, err_msg=key)
    # Adam's step is scale-free, so on a real GPU (cuBLAS's own rounding) a gradient near epsilon may
    # move a weight by more than the gradients' own 1e-5; the stand-in computes as NumPy does
    tol = 1e-5 if getattr(cp, "IS_STANDIN", False) else 1e-4
    for name, p in cpu.params.items():
        assert_same(gpu.params[name], p, tol)


def test_fit_with_nan_weights_stops_on_the_gpu_as_on_the_cpu(cp):
    from unet_scratch.training import fit
    data = _data()
    stops = []
    for device in ("cpu", "gpu"):
        model = UNet((16, 16, 1), base_filters=4, depth=2, seed=3)
        kernel = model.layers[0].params["kernel"]
        kernel[0, 0, 0, 0] = np.nan                                    # bypasses the checked setter
        with use_backend("cupy" if device == "gpu" else "numpy"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stops.append(fit(model, data, epochs=1, batch_size=2, verbose=0).stop_kind)
    assert stops == ["diverged", "diverged"]


def test_resume_load_weights_set_weights_and_load_checkpoint_keep_the_gpu(cp, tmp_path):
    from unet_scratch.training import fit, load_checkpoint
    from unet_scratch.optimizers import Adam
    kw = dict(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=3, dropout=0.5)   # masks on the device
    data = _data()
    with use_backend("cupy"):
        whole = UNet(**kw)
        fit(whole, data, epochs=2, batch_size=2, verbose=0, seed=5)
        parts = UNet(**kw)
        h = fit(parts, data, epochs=2, batch_size=2, verbose=0, seed=5, checkpoint_dir=tmp_path, max_steps=3)
        assert h.stop_kind == "max_steps"
        resumed = UNet(**kw)
        fit(resumed, data, epochs=2, batch_size=2, verbose=0, seed=5, checkpoint_dir=tmp_path, resume=True)
        assert resumed.device == "gpu"
        for name, p in whole.params.items():                            # bit-exact, dropout included
            assert np.array_equal(cp.asnumpy(resumed.params[name]), cp.asnumpy(p)), name
        again = UNet(**kw)
        fit(again, data, epochs=2, batch_size=2, verbose=0, seed=5)
        assert all(np.array_equal(cp.asnumpy(again.params[k]), cp.asnumpy(v)) for k, v in whole.params.items())

        whole.save_weights(tmp_path / "w.npz")
        for load in (lambda m: m.load_weights(tmp_path / "w.npz"),
                     lambda m: m.set_weights({k: cp.asnumpy(v) for k, v in whole.params.items()}),
                     lambda m: m.set_weights(dict(whole.params.items())),        # CuPy arrays too
                     lambda m: load_checkpoint(tmp_path / "checkpoint.npz", m, Adam())):
            model = UNet(**kw).to("gpu")
            load(model)
            assert model.device == "gpu" and all(isinstance(p, cp.ndarray) for p in model.params.values())
            model.forward(cp.asarray(data[0]))                          # still runs on the device
        model.params["head/bias"] = np.ones(1, np.float32)              # a host value, kept on the device
        assert isinstance(model.params["head/bias"], cp.ndarray)
        host = UNet(**kw)
        host.set_weights(dict(whole.params.items()))                    # CuPy values into a CPU model
        assert host.device == "cpu"


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_predict_and_predict_tiled_on_the_gpu(cp, padding):
    from unet_scratch.inference import predict, predict_tiled
    kw = _unet_kw(padding, "float32")
    cpu = UNet(**kw)
    gpu = UNet(**kw).to("gpu")
    images = np.random.default_rng(0).random((3, *kw["input_shape"]), dtype=np.float32)
    image = np.random.default_rng(1).random((37, 50), dtype=np.float32)
    tile = 16 if padding == "same" else 60
    expected = predict(cpu, images, batch_size=2), predict_tiled(cpu, image, tile=tile, max_memory=0)
    with use_backend("cupy"):
        got = predict(gpu, images, batch_size=2), predict_tiled(gpu, image, tile=tile, max_memory=0)
        with pytest.raises(ValueError, match="NaN"):
            predict(gpu, np.full((1, *kw["input_shape"]), np.nan, np.float32))
    for g, e in zip(got, expected):
        assert isinstance(g, np.ndarray)
        assert_same(g, e)


def test_from_keras_into_a_gpu_model(cp, keras):
    from unet_scratch.keras_ref import from_keras, to_keras
    kw = dict(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=3)
    source = UNet(**kw)
    km = to_keras(source)
    gpu = UNet(**dict(kw, seed=9)).to("gpu")
    with use_backend("cupy"):
        assert from_keras(km, model=gpu) is gpu
        assert gpu.device == "gpu"
        x = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
        assert_same(gpu.forward(cp.asarray(x)), np.asarray(km(x, training=False)), 1e-5)


def test_cli_trains_with_backend_cupy(standin, tmp_path, capsys):
    from unet_scratch.__main__ import main
    out = tmp_path / "run"
    code = main(["train", "--dataset", "membranes", "--epochs", "1", "--backend", "cupy", "--out", str(out),
                 "--size", "32", "--base-filters", "4", "--depth", "2", "--n-train", "4", "--batch-size", "2"])
    assert code == 0, capsys.readouterr()
    assert "backend cupy" in capsys.readouterr().out
    for name in ("checkpoint.npz", "weights.npz", "history.json", "test.json"):
        assert (out / name).exists(), name


def test_cli_says_what_is_missing_when_cupy_cannot_run(monkeypatch, tmp_path, capsys):
    from unet_scratch.__main__ import main
    monkeypatch.setitem(sys.modules, "cupy", None)                     # "not installed"
    monkeypatch.delitem(sys.modules, "unet_scratch.kernels.cupy_ops", raising=False)
    code = main(["train", "--epochs", "1", "--backend", "cupy", "--out", str(tmp_path / "r"), "--size", "32"])
    assert code != 0
    assert "gpu-cuda12" in capsys.readouterr().err


# ----------------------------------------------------------------------------- backend, benchmark, memory


def test_self_test_names_what_is_missing(standin, monkeypatch):
    assert "cupy" in backend.available_backends()

    class NoCompiler:
        def __init__(self, *a, **k):
            raise RuntimeError("nvrtc: error: failed to open libnvrtc.so.12")
    monkeypatch.setattr(standin, "RawModule", NoCompiler)
    monkeypatch.delitem(sys.modules, "unet_scratch.kernels.cupy_ops", raising=False)
    with pytest.raises(RuntimeError, match=r"NVRTC.*\[gpu-cuda12\]"):
        backend.set_backend("cupy")
    assert backend.get_backend() == "numpy" and "cupy" not in backend.available_backends()


def test_benchmark_gpu_calls(standin):
    from unet_scratch.bench_cases import layer_specs, model_and_data, scratch_layer_calls, scratch_model_calls
    model, x, target = model_and_data(dict(input_shape=(16, 16, 1), base_filters=4, depth=2))
    ops = _cupy_ops()
    for spec in layer_specs(model):
        fwd, bwd = scratch_layer_calls(ops, spec, np.random.default_rng(0), device="gpu")
        standin.reset()
        fwd(), bwd()
        assert standin.stats["syncs"] == 2 and standin.stats["h2d"] == 0       # synchronised, no copies
    backend.set_backend("numpy")
    forward, step = scratch_model_calls(model, "cupy", x, target)
    before = {k: v.copy() for k, v in model.params.items()}
    y = forward()
    assert isinstance(y, standin.ndarray)
    standin.reset()
    step()
    assert standin.stats["d2h"] == 0 and standin.stats["syncs"] == 1    # the loss stays on the device
    assert not np.array_equal(to_numpy(step.model.params["head/kernel"]), before["head/kernel"])
    assert all(np.array_equal(v, before[k]) for k, v in model.params.items())  # a copy was trained


def test_chunked_im2col_equals_the_reference(cp, monkeypatch, rng):
    assert xp_ops.row_blocks(2, 5, 100, budget=10**6) == [(slice(0, 2), slice(0, 5))]
    assert xp_ops.row_blocks(3, 5, 100, budget=1000) == [(slice(0, 2), slice(0, 5)), (slice(2, 3), slice(0, 5))]
    assert xp_ops.row_blocks(1, 5, 100, budget=200) == [(slice(0, 1), slice(0, 2)), (slice(0, 1), slice(2, 4)),
                                                        (slice(0, 1), slice(4, 5))]
    monkeypatch.setattr(xp_ops, "IM2COL_BYTES", 3000)                   # a few rows per block
    ops = _cupy_ops()
    for x_shape, w_shape, s, padding in [((2, 9, 8, 3), (3, 3, 3, 4), 1, "same"),
                                         ((2, 9, 8, 6), (3, 3, 6, 2), 1, "same"),   # the flipped-conv path
                                         ((2, 9, 8, 3), (3, 2, 3, 4), 2, "valid"),
                                         ((2, 9, 8, 3), (3, 3, 3, 4), 2, "same")]:
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal(w_shape)
        y_ref, cache_ref = ref.conv2d(x, w, None, s, padding)
        y, cache = ops.conv2d(cp.asarray(x), cp.asarray(w), None, s, padding)
        assert_same(y, y_ref)
        dy = rng.standard_normal(y_ref.shape)
        assert_same(ops.conv2d_backward(cp.asarray(dy), cache), ref.conv2d_backward(dy, cache_ref))


def test_optimizer_and_parameter_lookups_are_linear(monkeypatch):
    from unet_scratch.model import _ParamView
    from unet_scratch.optimizers import SGD
    model = UNet((16, 16, 1), base_filters=2, depth=2, seed=0)
    model.backward(np.ones_like(model.forward(np.zeros((1, 16, 16, 1), np.float32))))
    calls = []
    original = _ParamView._index
    monkeypatch.setattr(_ParamView, "_index", lambda self: calls.append(1) or original(self))
    SGD(0.1).apply(model.params, model.grads)
    assert len(calls) == 2, f"{len(calls)} index builds for {len(model.params)} parameters"


def test_gpu_check_smoke_runs_end_to_end_on_the_standin(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "gpu-smoke.md").read_text()
    assert "all checks passed" in report and "strict CuPy stand-in" in report
    for section in ("maxpool_forward_exact: True", "output_within_1e-5: True", "| 32 x 32 | 2 | train_step |"):
        assert section in report, section
