"""The real thing: the source article's U-Net in Keras 3, weight transfer both ways, and parity checks.

One import for everything on the Keras side (implemented in :mod:`unet_scratch.frameworks`)::

    from unet_scratch.keras_ref import build_keras_unet, to_keras, from_keras, compare, lockstep, fit_keras

``from_keras`` reads any Keras U-Net with the article's or zhixuhao/unet's architecture by its structure,
whatever its layer names (a saved ``.keras``/``.h5`` path too); every transfer is verified by one forward
pass of both models (``verify_keras_transfer``), and a mismatch is refused naming the first differing layer.

TensorFlow and Keras are imported only when a function needs them, so the rest of the package runs on
NumPy alone.
"""
from .frameworks.imports import import_keras, import_tensorflow
from .frameworks.keras_fit import fit_keras
from .frameworks.keras_model import build_keras_unet
from .frameworks.keras_structure import UNetStructure, read_keras_unet
from .frameworks.keras_transfer import (config_from_keras, from_keras, keras_weights, load_keras_model, to_keras,
                                        verify_keras_transfer)
from .frameworks.parity import LockstepResult, ParityReport, compare, lockstep
from .frameworks.tolerances import FORWARD_ATOL, FORWARD_RTOL, GRAD_RTOL, OUTPUT_ATOL, WEIGHT_RTOL

__all__ = ["import_tensorflow", "import_keras", "build_keras_unet", "to_keras", "from_keras",
           "config_from_keras", "keras_weights", "read_keras_unet", "UNetStructure", "load_keras_model",
           "verify_keras_transfer", "compare", "lockstep", "fit_keras", "ParityReport",
           "LockstepResult", "FORWARD_RTOL", "FORWARD_ATOL", "OUTPUT_ATOL", "GRAD_RTOL", "WEIGHT_RTOL"]
