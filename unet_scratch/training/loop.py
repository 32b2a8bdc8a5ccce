"""The training loop: ``fit`` (batches, the step, metrics, callbacks, checkpoints, Ctrl-C, NaN) and ``evaluate``.

One training step::

    z = model.forward(x, training=True, logits=True)     # the head's pre-activation (logits)
    loss, dz, p = loss_from_logits(model, z, t)           # e.g. binary cross-entropy from logits
    model.backward(dz)                                    # fills model.grads
    optimizer.apply(model.params, model.grads)            # w <- w - lr * ... (SGD, Adam)
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from ..backend import to_backend, to_numpy
from ..metrics import dice_counts, dice_from_counts
from ..optimizers import Optimizer, get_optimizer
from .batches import crop_targets, epoch_order, make_batch, output_size, prepare
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .history import History
from .objective import LOSSES, foreground, loss_from_logits


class _StopOnSignal:
    """Ctrl-C (SIGINT) sets a flag that the loop reads after each step, so a step is never cut in half;
    a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _progress(total, desc, verbose):
    if verbose != 1:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=True, dynamic_ncols=True)


# -------------------------------------------------------------------------------------------- fit
def fit(model, train, val=None, epochs=1, batch_size=4, optimizer="adam", learning_rate=None, loss="bce",
        augment=False, seed=0, checkpoint_dir=None, resume=None, callbacks=(), lr_schedule=None,
        time_limit=None, max_steps=None, verbose=1):
    """Train ``model`` on ``train`` and return a :class:`History`.

    train, val: (images, masks) or (images, masks, weight_maps), see :func:`prepare`.
    epochs: the total number of epochs (a resumed run continues up to it, like Keras's initial_epoch).
    optimizer: "adam", "sgd" or an Optimizer; learning_rate overrides its default.
    loss: "bce" (default), "dice", "bce_dice" for a sigmoid head; "weighted_ce" for a softmax head (masks:
    class indices; with K > 2 classes the reported Dice is the foreground's, every class but 0).
    augment: False, "flip" (flips and 90-degree rotations) or True (those plus the elastic deformation).
    checkpoint_dir: write ``checkpoint.npz`` there after every epoch (and on Ctrl-C), plus ``weights.npz``.
    resume: a checkpoint path (or True: ``checkpoint_dir``'s) to continue from, bit-exactly.
    callbacks: functions ``f(epoch, logs)`` called after each epoch; returning True stops training.
    lr_schedule: a function ``epoch -> learning rate`` applied at the start of every epoch (Keras's
    LearningRateScheduler), e.g. ``lambda e: 2e-3 if e < 16 else 5e-4``.
    time_limit: seconds; stop after the epoch during which the limit passed. max_steps: stop after this
    many optimizer steps in this call (tests, quick demos).
    verbose: 0 silent, 1 a progress bar per epoch (tqdm, notebook-aware), 2 one line per epoch.

    A NaN or Inf loss stops training before the step is applied, with a warning naming the epoch and
    step; the last checkpoint on disk is the last good one.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if int(batch_size) < 1 or int(epochs) < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0, got {batch_size}, {epochs}")
    batch_size, epochs = int(batch_size), int(epochs)
    data = prepare(model, *train, name="train")
    val_data = prepare(model, *val, name="val") if val is not None else None
    oh, ow = output_size(model, data[0])
    data = (data[0], crop_targets(data[1], oh, ow), crop_targets(data[2], oh, ow))
    if augment and data[0].shape[1:3] != data[1].shape[1:3]:
        raise ValueError("augmentation needs targets the size of the images (same padding); the valid network "
                         "crops its targets: augment images and masks first, then train without augment")
    if isinstance(optimizer, Optimizer):
        opt = optimizer
        if learning_rate is not None:
            opt.learning_rate = float(learning_rate)
    else:
        opt = get_optimizer(optimizer, **({} if learning_rate is None else {"learning_rate": learning_rate}))
    n = len(data[0])
    steps_per_epoch = math.ceil(n / batch_size)
    settings = dict(seed=int(seed), batch_size=batch_size, n_train=n, loss=loss, augment=augment,
                    optimizer=type(opt).__name__)

    history, epoch, step, running = History(), 0, 0, None
    if resume:
        path = os.path.join(checkpoint_dir, CHECKPOINT) if resume is True else os.fspath(resume)
        state = load_checkpoint(path, model, opt)
        changed = {k: (state["settings"].get(k), v) for k, v in settings.items() if state["settings"].get(k) != v}
        if changed:
            raise ValueError("resume with the settings of the checkpoint to continue bit-exactly; changed: "
                             + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        history = History(state["history"], state["epochs_done"])
        epoch, step, running = state["epoch"], state["step"], state["running"]

    dropouts = [layer for layer in model.layers if type(layer).__name__ == "Dropout"]
    start, steps_run = time.perf_counter(), 0

    def state_now(epoch, step, running):
        return dict(settings=settings, epoch=epoch, step=step, running=running,
                    history=history.history, epochs_done=history.epoch)

    def checkpoint(epoch, step, running):
        if checkpoint_dir is not None:
            save_checkpoint(os.path.join(checkpoint_dir, CHECKPOINT), model, opt, state_now(epoch, step, running))
            model.save_weights(os.path.join(checkpoint_dir, "weights.npz"))

    with _StopOnSignal() as interrupt:
        while epoch < epochs:
            order = epoch_order(n, seed, epoch)
            if lr_schedule is not None:
                opt.learning_rate = float(lr_schedule(epoch))
            running = running or dict(loss_sum=0.0, batches=0, inter=0, total=0, seconds=0.0)
            bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{epochs}", verbose)
            if bar is not None and step:
                bar.update(step)
            t0 = time.perf_counter()
            while step < steps_per_epoch:
                xb, tb, wb = make_batch(data, order, step, batch_size, seed, epoch, augment)
                for k, layer in enumerate(dropouts):
                    layer.rng = np.random.default_rng([seed, epoch, step, 2, k])
                z = to_numpy(model.forward(to_backend(xb), training=True, logits=True))
                bad = not np.all(np.isfinite(z))
                if not bad:
                    value, dz, p = loss_from_logits(model, z, tb, wb, loss)
                    bad = not math.isfinite(value)
                if bad:
                    history.stop_reason = (f"loss is NaN or Inf at epoch {epoch + 1}, step {step + 1}: "
                                           "training stopped before applying that step; lower the "
                                           "learning rate. The last checkpoint on disk is the last good one")
                    warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=2)
                    if bar is not None:
                        bar.close()
                    return history
                model.backward(to_backend(dz))
                opt.apply(model.params, model.grads)
                inter, total = dice_counts(p, foreground(model, tb))
                running["loss_sum"] += value
                running["batches"] += 1
                running["inter"] += inter
                running["total"] += total
                step += 1
                steps_run += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{running['loss_sum'] / running['batches']:.4f}")
                if interrupt.requested or (max_steps is not None and steps_run >= max_steps):
                    running["seconds"] += time.perf_counter() - t0
                    if step == steps_per_epoch:           # a finished epoch: record it properly below
                        break
                    checkpoint(epoch, step, running)
                    history.stop_reason = ("interrupted (Ctrl-C)" if interrupt.requested else
                                           f"max_steps={max_steps} reached") + \
                        f" at epoch {epoch + 1}, step {step}" + \
                        (f"; resume from {os.path.join(checkpoint_dir, CHECKPOINT)}" if checkpoint_dir else "")
                    if bar is not None:
                        bar.close()
                    return history
            else:
                running["seconds"] += time.perf_counter() - t0
            logs = {"loss": running["loss_sum"] / running["batches"], "dice": dice_from_counts(running["inter"],
                                                                                     running["total"])}
            if val_data is not None:
                logs.update(evaluate(model, val_data, batch_size=batch_size, loss=loss, _prepared=True,
                                     prefix="val_"))
            logs["seconds"] = running["seconds"]
            history.append(epoch, logs)
            epoch, step, running = epoch + 1, 0, None
            checkpoint(epoch, step, running)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k != "seconds"})
                bar.close()
            if verbose == 2:
                print(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()),
                      flush=True)
            stop = [bool(cb(epoch - 1, dict(logs))) for cb in callbacks]
            if any(stop):
                history.stop_reason = f"a callback stopped training after epoch {epoch}"
                break
            if interrupt.requested:
                history.stop_reason = f"interrupted (Ctrl-C) after epoch {epoch}"
                break
            if max_steps is not None and steps_run >= max_steps:
                history.stop_reason = f"max_steps={max_steps} reached after epoch {epoch}"
                break
            if time_limit is not None and time.perf_counter() - start > time_limit:
                history.stop_reason = f"time limit of {time_limit:g} s reached after epoch {epoch}"
                break
    return history


def evaluate(model, data, batch_size=8, loss="bce", prefix="", _prepared=False):
    """Mean loss and global Dice over a data set (dropout off): {"loss": ..., "dice": ...}."""
    x, t, w = data if _prepared else prepare(model, *data, name="data")
    oh, ow = output_size(model, x)
    t, w = crop_targets(t, oh, ow), crop_targets(w, oh, ow)
    loss_sum, inter, total = 0.0, 0, 0
    for i in range(0, len(x), batch_size):
        z = to_numpy(model.forward(to_backend(x[i:i + batch_size]), training=False, logits=True))
        value, _, p = loss_from_logits(model, z, t[i:i + batch_size],
                                       None if w is None else w[i:i + batch_size], loss)
        loss_sum += value * len(z)
        a, b = dice_counts(p, foreground(model, t[i:i + batch_size]))
        inter, total = inter + a, total + b
    return {f"{prefix}loss": loss_sum / len(x), f"{prefix}dice": dice_from_counts(inter, total)}
