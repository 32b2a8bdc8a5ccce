"""Training a U-Net: ``fit``, in the shape of ``keras.Model.fit``, with checkpoints and bit-exact resume.

One training step is the whole course in four lines::

    z = model.forward(x, training=True, logits=True)     # the head's pre-activation (logits)
    loss, dz = loss_and_gradient(z, t)                    # e.g. binary cross-entropy from logits
    model.backward(dz)                                    # fills model.grads
    optimizer.apply(model.params, model.grads)            # w <- w - lr * ... (SGD, Adam)

``fit`` adds what makes it usable: batches, augmentation, a progress bar, per-epoch metrics in a
``History``, callbacks, checkpoints and resume.

Randomness is *counter-based*: the shuffle of epoch e comes from ``default_rng([seed, e])``, the
augmentation and dropout of step s of epoch e from ``default_rng([seed, e, s, ...])``. The state of every
random generator is therefore a function of (seed, epoch, step), which is what a checkpoint stores, and a
run interrupted anywhere and resumed gives the same weights, bit for bit, as one that never stopped.

A checkpoint (``<dir>/checkpoint.npz``, replaced atomically after every epoch and on Ctrl-C) holds the
weights, the optimizer's state, the model's config, and (epoch, step, seed, history, running sums, and
every setting that changes the result, compared on resume). ``weights.npz`` beside it carries the same
generation number. A run folder is locked while a run owns it (``runlock``); weights that turn NaN or Inf
stop training and never reach a checkpoint.

The pieces: ``batches`` (prepare, epoch_order, make_batch), ``objective`` (loss_from_logits), ``history``
(History, plot_history, save_history), ``checkpoint`` (save_checkpoint, load_checkpoint, read_checkpoint),
``runlock`` (RunLock, RunFolderBusy) and ``loop`` (fit, evaluate). Everything is importable from ``unet_scratch.training`` directly.
"""
from .batches import (crop_targets, epoch_order, grid_crops, make_batch, output_size, prepare, prepare_crops,
                      random_crops, tile_origins)
from .checkpoint import CHECKPOINT, WEIGHTS, apply_checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from .history import History, plot_history, save_history
from .loop import DivergedError, evaluate, fit
from .objective import LOSSES, foreground, head_kind, loss_from_logits
from .runlock import RunFolderBusy, RunLock

__all__ = ["fit", "evaluate", "prepare", "epoch_order", "make_batch", "crop_targets", "output_size",
           "prepare_crops", "random_crops", "grid_crops", "tile_origins",
           "loss_from_logits", "head_kind", "foreground", "LOSSES", "History", "plot_history", "save_history",
           "save_checkpoint", "load_checkpoint", "read_checkpoint", "apply_checkpoint", "CHECKPOINT", "WEIGHTS",
           "RunLock", "RunFolderBusy", "DivergedError"]
