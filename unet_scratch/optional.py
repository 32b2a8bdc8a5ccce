"""Packages outside the core install (NumPy, SciPy), imported only when a feature needs them.

The core install builds, trains, predicts and scores U-Nets. Plots, PNG files, progress bars, the Keras
comparison, the PyTorch twin and the fast backends each need an extra; ``require`` names it when the package is missing:

    ImportError: plotting needs matplotlib, which is not installed: pip install -e '.[notebooks]' (or make venv)
"""
from __future__ import annotations

import importlib

# module -> (what pip installs, the extra of pyproject.toml that brings it)
PACKAGES = {
    "matplotlib": ("matplotlib", "notebooks"),
    "PIL": ("pillow", "notebooks"),
    "tqdm": ("tqdm", "notebooks"),
    "tensorflow": ("tensorflow", "keras"),
    "keras": ("keras", "keras"),
    "numba": ("numba", "numba"),
    "cupy": ("cupy", "gpu"),
    "torch": ("torch", "torch"),
}


def install_hint(module: str) -> str:
    """"pip install -e '.[extra]' (or make venv)" for a module of :data:`PACKAGES`."""
    pip_name, extra = PACKAGES[module.split(".")[0]]
    return f"pip install -e '.[{extra}]' (or make venv)"


def require(module: str, feature: str):
    """Import ``module`` (e.g. "matplotlib.pyplot") or raise ImportError naming ``feature`` and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pip_name = PACKAGES[module.split(".")[0]][0]
        raise ImportError(f"{feature} needs {pip_name}, which is not installed: {install_hint(module)}") from err


def available(module: str) -> bool:
    """True when ``module`` imports."""
    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False
