"""Training checkpoints: weights, optimizer state, model config and training state in one .npz, atomically."""
from __future__ import annotations

import os

from ..backend import to_numpy
from ..serialization import array_to_config, atomic_savez, config_to_array, load_npz

CHECKPOINT = "checkpoint.npz"


def save_checkpoint(path, model, optimizer, state):
    """Weights, optimizer state, model config and the training state (JSON), atomically."""
    arrays = {f"param/{k}": to_numpy(v) for k, v in model.params.items()}
    arrays.update({f"optimizer/{k}": v for k, v in optimizer.state_dict().items()})
    arrays["__config__"] = config_to_array(model.get_config())
    arrays["__train__"] = config_to_array(state)
    return atomic_savez(path, arrays)


def load_checkpoint(path, model, optimizer):
    """Restore a checkpoint into model and optimizer; returns the training state. Nothing is changed if
    the file is unreadable or belongs to another architecture (the error says which)."""
    data = load_npz(path)
    if "__train__" not in data:
        raise ValueError(f"{os.fspath(path)!r} is not a training checkpoint (no training state); "
                         "weights files are loaded with model.load_weights")
    weights = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    saved = array_to_config(data["__config__"]) if "__config__" in data else None
    model.set_weights(weights, source=f"checkpoint {os.fspath(path)!r}", saved_config=saved)
    optimizer.load_state_dict({k[len("optimizer/"):]: v for k, v in data.items()
                               if k.startswith("optimizer/")})
    return array_to_config(data["__train__"])
