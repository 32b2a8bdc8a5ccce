"""Shared fixtures. TensorFlow is imported at most once per session, quietly."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once; tests that need it are skipped with a visible reason without it."""
    tf = pytest.importorskip("tensorflow", reason="TensorFlow not installed: pip install -e '.[keras]'")
    tf.config.threading.set_inter_op_parallelism_threads(2)
    return tf


@pytest.fixture(scope="session")
def keras(tf):
    return pytest.importorskip("keras", reason="Keras 3 not installed: pip install -e '.[keras]'")


# ---------------------------------------------------------------- markers (registered in pyproject.toml)
# Applied here by file, item kind or fixture (test_book.py and test_nbgrader.py mark their slow tests
# themselves). `make test-fast` runs
# `-m "not slow and not notebook and not browser"`; `-m keras`, `-m gpu` pick the framework and GPU tests.
_FILE_MARKS = {
    "test_kernels_cupy.py": ("gpu",),
}
# Whole-pipeline tests, measured as the unit tests' heaviest on the 2-core course machine: fresh
# interpreters, kernel recompiles, a benchmark run (10-40 s each), whole-model gradient checks, training in
# lockstep with Keras or PyTorch (2-5 s of CPU each). A new heavy test: `@pytest.mark.slow` where it is written.
_SLOW_TESTS = {
    ("test_architecture.py", "test_every_module_imports_alone_in_a_fresh_interpreter"),
    ("test_numba_cache.py", "test_each_thread_mode_gets_its_own_machine_code"),
    ("test_bench.py", "test_quick_benchmark_writes_json_and_markdown"),
    ("test_keras_ref.py", "test_seed_model_parity_full_width"),
    ("test_keras_ref.py", "test_fit_keras_follows_the_scratch_training_curve"),
    ("test_keras_ref.py", "test_lockstep_training"),
    ("test_exercises_ch05b.py", "test_optimizers_match_keras_itself"),
    ("test_torch_ref.py", "test_lockstep_torch"),
    ("test_model.py", "test_zhixuhao_layers_and_config"),
    ("test_model.py", "test_zhixuhao_options_gradient_check"),
    ("test_model.py", "test_whole_unet_gradient_check"),
    ("test_optimizers.py", "test_bit_identical_to_keras_for_thirty_steps"),
    ("test_hardening.py", "test_loss_float16_model_stops_and_saves_no_nan"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        marks = set(_FILE_MARKS.get(item.path.name, ()))
        if (item.path.name, getattr(item, "originalname", item.name)) in _SLOW_TESTS:
            marks.add("slow")
        if item.path.suffix == ".ipynb":          # nbval: one item per notebook cell
            marks.add("notebook")
        if {"tf", "keras"} & set(getattr(item, "fixturenames", ())):
            marks.add("keras")
        for name in sorted(marks):
            item.add_marker(getattr(pytest.mark, name))


# ------------------------------------------------------------- helpers shared by test files (plain functions)
# Test files import them with `from conftest import stub, assert_same`: pytest's default "prepend" import
# mode puts tests/ (no __init__.py) on sys.path and registers this file as the module `conftest`.
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def stub(*args):
    """A student's untouched exercise: every check must answer "not implemented yet", not a traceback."""
    raise NotImplementedError


def assert_same(actual, expected, tol=None):
    """Same dtype and shape, values within tol (default TOL: rtol = atol = 1e-5 float32, 1e-12 float64).

    actual may live on the GPU (CuPy: copied to NumPy first); tuples and lists recurse, None must match None.
    """
    from unet_scratch.backend import to_numpy
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), \
            f"expected {len(expected)} results, got {actual!r:.80}"
        for a, e in zip(actual, expected):
            assert_same(a, e, tol)
        return
    if expected is None:
        assert actual is None, f"expected None, got {type(actual).__name__}"
        return
    actual = to_numpy(actual)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    t = TOL[np.dtype(expected.dtype)] if tol is None else tol
    np.testing.assert_allclose(actual, expected, rtol=t, atol=t, strict=True)
