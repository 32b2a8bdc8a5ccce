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
