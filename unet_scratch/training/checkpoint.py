"""Training checkpoints: weights, optimizer state, model config and training state in one .npz, atomically.

A run folder holds ``checkpoint.npz`` (everything needed to resume) and ``weights.npz`` (the weights and
config alone, for ``load_model`` and ``predict``). Both carry the same ``__generation__`` string
("<run id>/<epoch>/<step>"): the checkpoint is written first, the weights second, so a kill between the two
leaves a pair whose generations differ. ``load_model`` refuses such a weights file (naming the checkpoint
beside it) and the next resume rewrites it.

Loading validates everything (the weights' names, shapes, dtypes and values, the optimizer's type and
state) before it changes anything: a checkpoint that does not fit leaves the model and the optimizer as
they were.
"""
from __future__ import annotations

import copy
import os

import numpy as np

from ..backend import to_numpy
from ..serialization import array_to_config, atomic_savez, config_to_array, load_npz, read_npz_entry

CHECKPOINT = "checkpoint.npz"
WEIGHTS = "weights.npz"


def save_checkpoint(path, model, optimizer, state, generation=None):
    """Weights, optimizer state, model config and the training state (JSON), atomically."""
    arrays = {f"param/{k}": to_numpy(v) for k, v in model.params.items()}
    arrays.update({f"optimizer/{k}": v for k, v in optimizer.state_dict().items()})
    arrays["__config__"] = config_to_array(model.get_config())
    arrays["__train__"] = config_to_array(state)
    if generation is not None:
        arrays["__generation__"] = np.array(str(generation))
    return atomic_savez(path, arrays)


def save_weights_file(path, model, generation=None):
    """What ``model.save_weights`` writes, plus the generation of the checkpoint it belongs to."""
    arrays = {k: to_numpy(v) for k, v in model.params.items()}
    arrays["__config__"] = config_to_array(model.get_config())
    if generation is not None:
        arrays["__generation__"] = np.array(str(generation))
    return atomic_savez(path, arrays)


def generation_of(path):
    """The ``__generation__`` string stored in a checkpoint or weights file (None if absent or unreadable)."""
    g = read_npz_entry(path, "__generation__")
    return None if g is None else str(g)


def read_checkpoint(path) -> dict:
    """Read and parse a checkpoint without applying it: {"weights", "optimizer", "config", "state",
    "generation"}. ValueError (with what to do) for a file that is not a training checkpoint."""
    shown = repr(os.fspath(path))
    data = load_npz(path, "checkpoint")
    if "__train__" not in data:
        raise ValueError(f"{shown} is not a training checkpoint (no training state): a weights file is "
                         "loaded with model.load_weights; to start a new run, train afresh (train --fresh, "
                         "or fit without resume)")
    state = array_to_config(data["__train__"], shown)
    return dict(weights={k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")},
                optimizer={k[len("optimizer/"):]: v for k, v in data.items() if k.startswith("optimizer/")},
                config=array_to_config(data["__config__"], shown) if "__config__" in data else None,
                state=state,
                generation=str(data["__generation__"]) if "__generation__" in data else None)


def _check_optimizer(checkpoint, model, optimizer, source):
    """Raise ValueError unless the checkpoint's optimizer state fits ``optimizer`` and ``model``."""
    saved_type = checkpoint["state"].get("settings", {}).get("optimizer")
    mine = type(optimizer).__name__
    advice = (f"resume with the optimizer the run was started with ({saved_type or 'see the error'}), or start "
              "afresh (train --fresh, or fit without resume)")
    if saved_type is not None and saved_type != mine:
        raise ValueError(f"{source} was trained with the optimizer {saved_type}, this run uses {mine}: the saved "
                         f"optimizer state does not fit; {advice}; nothing was loaded")
    trial = copy.deepcopy(optimizer)
    try:
        trial.load_state_dict(checkpoint["optimizer"])
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{source}: its optimizer state does not fit {mine} ({str(err).strip(chr(39))}); "
                         f"{advice}; nothing was loaded") from err
    params = model.params
    for key, a in checkpoint["optimizer"].items():
        slot, _, name = key.partition("/")
        if not name:
            continue
        if name not in params or tuple(np.shape(a)) != tuple(params[name].shape):
            raise ValueError(f"{source}: optimizer state {key} {tuple(np.shape(a))} does not belong to this "
                             f"model; {advice}; nothing was loaded")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{source}: optimizer state {key} holds NaN or Inf values (a run that diverged); "
                             "resume from an earlier checkpoint or start afresh; nothing was loaded")


def apply_checkpoint(checkpoint, model, optimizer, source="checkpoint"):
    """Put a :func:`read_checkpoint` result into model and optimizer, after checking all of it."""
    _check_optimizer(checkpoint, model, optimizer, source)
    model.set_weights(checkpoint["weights"], source=source, saved_config=checkpoint["config"])
    optimizer.load_state_dict(checkpoint["optimizer"])


def load_checkpoint(path, model, optimizer):
    """Restore a checkpoint into model and optimizer; returns the training state. Nothing is changed if
    the file is unreadable or belongs to another architecture or optimizer (the error says which)."""
    checkpoint = read_checkpoint(path)
    apply_checkpoint(checkpoint, model, optimizer, source=f"checkpoint {os.fspath(path)!r}")
    return checkpoint["state"]
