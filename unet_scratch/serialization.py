"""Saving and loading arrays safely: .npz only, no pickle, atomic replace.

``atomic_savez`` writes to a temporary file in the same folder and renames it over the target, so a crash
mid-write leaves the previous good file in place (``os.replace`` is atomic on POSIX and Windows).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np


def atomic_savez(path, arrays: dict) -> str:
    """Write ``arrays`` (name -> array) to ``path`` as an uncompressed .npz, atomically. Returns the path."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)         # mkstemp makes the file private; a saved model is not
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_npz(path) -> dict:
    """Read every array of an .npz into a dict (``allow_pickle=False``), with clear errors."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such weights file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path!r} is not a readable .npz file (truncated or corrupt: {err}); "
                         f"nothing was loaded, the model keeps its current weights") from err


def config_to_array(config: dict) -> np.ndarray:
    """A JSON string stored as a 0-d unicode array, so it round-trips through np.savez without pickle."""
    return np.array(json.dumps(config, sort_keys=True))


def array_to_config(a) -> dict:
    return json.loads(str(a[()]))
