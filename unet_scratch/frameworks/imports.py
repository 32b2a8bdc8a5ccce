"""Importing TensorFlow and Keras quietly, with an error that says which extra to install."""
from __future__ import annotations

import importlib
import os
import sys

from ..optional import install_hint


def quiet_import(name: str):
    """Import a module with the process's stderr (file descriptor 2) sent to /dev/null meanwhile.

    TensorFlow 2.21 writes absl and CUDA-probe lines with timestamps straight to fd 2 at import, even with
    TF_CPP_MIN_LOG_LEVEL=3; in a notebook they would land in the stored outputs and differ on every run.
    Import errors still surface: they are Python exceptions, raised after stderr is restored.
    """
    if sys.modules.get(name) is not None:
        return sys.modules[name]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")     # no "oneDNN custom operations" banner
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        return importlib.import_module(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """TensorFlow, imported without its start-up chatter (see :func:`quiet_import`)."""
    try:
        return quiet_import("tensorflow")
    except ImportError as err:
        raise ImportError(f"this needs TensorFlow: {install_hint('tensorflow')}") from err


def import_keras():
    """Keras 3 (TensorFlow backend unless KERAS_BACKEND says otherwise), imported quietly."""
    try:
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import_tensorflow()
        return quiet_import("keras")
    except ImportError as err:
        raise ImportError(f"the Keras reference needs TensorFlow and Keras 3: {install_hint('keras')}") from err
