"""What ``fit`` returns (a :class:`History` of per-epoch metrics), its plot, and history.json."""
from __future__ import annotations

import json

import numpy as np

from ..optional import require
from ..serialization import atomic_write_text


class History:
    """What ``fit`` returns: ``history`` maps "loss", "dice", "val_loss", "val_dice", "seconds" to one
    value per epoch (as ``keras.callbacks.History``); ``stop_reason`` says why training ended early."""

    def __init__(self, history=None, epoch=None, stop_reason=None, stop_kind=None):
        self.history = history if history is not None else {}
        self.epoch = epoch if epoch is not None else []
        self.stop_reason = stop_reason
        # why, in one word: None (all epochs done), "diverged", "interrupted", "callback", "max_steps", "time_limit"
        self.stop_kind = stop_kind

    def stop(self, kind, reason):
        """Record why training ended early."""
        self.stop_kind, self.stop_reason = kind, reason

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def plot(self, axes=None, label=None, **kwargs):
        return plot_history(self, axes=axes, label=label, **kwargs)

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last}, stop_reason={self.stop_reason!r})"


def plot_history(*histories, axes=None, label=None, labels=None, **kwargs):
    """Loss and Dice per epoch, training solid and validation dashed; one or several histories
    (e.g. scratch next to Keras, ``labels=["scratch", "Keras"]``). Returns the two axes."""
    plt = require("matplotlib.pyplot", "plotting a history")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    labels = labels or [label] * len(histories)
    for h, lab, color in zip(histories, labels, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        h = h.history if isinstance(h, History) else h
        for ax, key in zip(axes, ("loss", "dice")):
            epochs = np.arange(1, len(h.get(key, [])) + 1)
            name = f"{lab} " if lab else ""
            if key in h:
                ax.plot(epochs, h[key], color=color, label=f"{name}train", **kwargs)
            if f"val_{key}" in h:
                ax.plot(epochs, h[f"val_{key}"], color=color, ls="--", label=f"{name}validation", **kwargs)
    axes[0].set(xlabel="epoch", ylabel="loss", title="Loss falls as the network learns")
    axes[1].set(xlabel="epoch", ylabel="Dice (threshold 0.5)", title="Dice rises towards 1", ylim=(0, 1))
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return axes


def save_history(path, history):
    """history.json: the per-epoch metrics and why training stopped (written atomically)."""
    atomic_write_text(path, json.dumps({"history": history.history, "epoch": history.epoch,
                                        "stop_reason": history.stop_reason}, indent=1))
