"""The training loop: ``fit`` (batches, the step, metrics, callbacks, checkpoints, Ctrl-C, NaN) and ``evaluate``.

One training step::

    z = model.forward(x, training=True, logits=True)     # the head's pre-activation (logits)
    loss, dz, p = loss_from_logits(model, z, t)           # e.g. binary cross-entropy from logits
    model.backward(dz)                                    # fills model.grads
    optimizer.apply(model.params, model.grads)            # w <- w - lr * ... (SGD, Adam)
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from ..backend import backend_device, get_array_module, to_device_array
from ..metrics import dice_counts, dice_from_counts
from ..optimizers import Optimizer, get_optimizer
from ..serialization import clean_orphans
from .batches import (crop_targets, epoch_order, grid_crops, make_batch, output_size, prepare,
                      prepare_crops)
from .checkpoint import CHECKPOINT, WEIGHTS, apply_checkpoint, generation_of, read_checkpoint, save_checkpoint, \
    save_weights_file
from .history import History
from .objective import LOSSES, foreground, loss_from_logits
from .runlock import RunLock


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
def _count(value, name, minimum):
    """An integer setting (an integral float such as 3.0 is accepted), or a ValueError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not float(value).is_integer() or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _augment_mode(augment):
    """False (none), "flip" or True (flips, rotations and the elastic deformation)."""
    if augment is None or augment is False or (isinstance(augment, np.bool_) and not augment) or augment == "none":
        return False
    if augment is True or (isinstance(augment, np.bool_) and augment) or augment == "elastic":
        return True
    if augment == "flip":
        return "flip"
    raise ValueError(f"augment must be False or 'none' (no augmentation), 'flip' (flips and 90-degree "
                     f"rotations) or True or 'elastic' (those plus the elastic deformation), got {augment!r}")


def _fingerprint(*arrays):
    """A short hash of the arrays' shapes, dtypes and bytes: equal data, equal fingerprint."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        if isinstance(a, list):                        # images of different sizes (crop=...)
            h.update(f"list{len(a)}".encode() + _fingerprint(*a).encode())
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _optimizer_settings(opt, schedule):
    """The optimizer's hyperparameters (numbers, flags), without its step counter; without the
    learning rate when a schedule sets it."""
    out = {k: v for k, v in sorted(vars(opt).items())
           if isinstance(v, (bool, int, float, str)) and not k.startswith("_") and k != "iterations"}
    if schedule:
        out.pop("learning_rate", None)
    return out


def _changed_settings(saved, current):
    """[(what, before, now), ...] for every setting of ``saved`` that ``current`` changes."""
    changes = []
    for key, before in saved.items():
        if key not in current:
            continue
        now = current[key]
        if key == "learning_rates" and before is not None and now is not None:
            n = min(len(before), len(now))
            if before[:n] != now[:n]:
                first = next(i for i in range(n) if before[i] != now[i])
                changes.append((f"lr_schedule at epoch {first + 1}", before[first], now[first]))
            continue
        if key in ("model", "optimizer_config", "extra") and isinstance(before, dict) and isinstance(now, dict):
            for k in sorted(set(before) | set(now)):
                if before.get(k) != now.get(k):
                    label = {"model": "model: saved with ", "optimizer_config": "optimizer ", "extra": ""}[key]
                    changes.append((f"{label}{k}", before.get(k), now.get(k)))
            continue
        if before != now:
            changes.append((key, before, now))
    return changes


def _describe(change):
    what, before, now = change
    if what in ("data", "val_data"):
        return f"{'training' if what == 'data' else 'validation'} data (images, masks or weight maps) differ"
    if what.startswith("model: saved with "):
        return f"{what}={before!r} (this model: {now!r})"
    return f"{what} {before!r} -> {now!r}"


def _tile_size(model, crop):
    """crop as (h, w), a legal input size for the model, or ValueError saying which sizes are."""
    from ..checks import check_unet_size
    h, w = (int(crop), int(crop)) if np.ndim(crop) == 0 else (int(crop[0]), int(crop[1]))
    check_unet_size(h, w, model.depth, model.padding)
    return h, w


def _params_finite(model):
    """One cheap test for NaN or Inf in any parameter: the float64 sum of every tensor's sum (NaN and Inf
    propagate; finite float32 values cannot overflow it). One device sync on the GPU."""
    total = 0.0
    for p in model.params.values():
        total = total + p.sum(dtype=np.float64)
    return math.isfinite(float(total))


def fit(model, train, val=None, epochs=1, batch_size=4, optimizer="adam", learning_rate=None, loss="bce",
        augment=False, seed=0, checkpoint_dir=None, resume=None, callbacks=(), lr_schedule=None,
        time_limit=None, max_steps=None, verbose=1, extra_settings=None, crop=None):
    """Train ``model`` on ``train`` and return a :class:`History`.

    train, val: (images, masks) or (images, masks, weight_maps), see :func:`prepare`.
    epochs: the total number of epochs (a resumed run continues up to it, like Keras's initial_epoch).
    optimizer: "adam", "sgd" or an Optimizer; learning_rate overrides its default.
    loss: "bce" (default), "dice", "bce_dice" for a sigmoid head; "weighted_ce" for a softmax head (masks:
    class indices; with K > 2 classes the reported Dice is the foreground's, every class but 0).
    augment: False or "none", "flip" (flips and 90-degree rotations) or True or "elastic" (those plus the
    elastic deformation); anything else is a ValueError.
    checkpoint_dir: write ``checkpoint.npz`` there after every epoch (and on Ctrl-C), plus ``weights.npz``.
    The folder is locked while fit runs (see :mod:`.runlock`): a second run into it is refused.
    resume: a checkpoint path (or True: ``checkpoint_dir``'s) to continue from, bit-exactly. Every setting
    that changes the result must match the checkpoint's (the model's config, the training and validation
    data, batch size, loss, augmentation, seed, the optimizer, its hyperparameters and learning rate or
    schedule); a change is a ValueError that names it, and nothing is loaded.
    callbacks: functions ``f(epoch, logs)`` called after each epoch; returning True stops training.
    lr_schedule: a function ``epoch -> learning rate`` applied at the start of every epoch (Keras's
    LearningRateScheduler), e.g. ``lambda e: 2e-3 if e < 16 else 5e-4``.
    time_limit: seconds; stop after the epoch during which the limit passed. max_steps: stop after this
    many optimizer steps in this call (tests, quick demos).
    verbose: 0 silent, 1 a progress bar per epoch (tqdm, notebook-aware), 2 one line per epoch.
    extra_settings: a JSON-able dict stored in the checkpoint and compared on resume like the rest (the
    command line stores the data set's name and size there).
    crop: a tile size (h, w) (or one int): train on random h x w windows of images of any size (train's images
    and masks may then be lists of differently sized arrays, e.g. ``folders.load_folder``'s), drawn anew every
    step from (seed, epoch, step), so a resumed run sees the same windows; validation uses tiles on a grid
    that covers each validation image.

    Device: fit trains where the current backend computes: with ``set_backend("cupy")`` the model is moved
    to the GPU (``model.to("gpu")``) and stays there; each batch is copied there, and the loss, its
    gradient and the Dice counts are computed on the device (only the loss value and the counts come back).

    Divergence: a NaN or Inf loss stops training before the step is applied; NaN or Inf weights after a
    step (a finite loss can hide them) stop it at once. Either way a warning names the epoch and step, no
    checkpoint is written with such weights, and ``stop_reason`` says which checkpoint on disk (if any) is
    the last good one.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    batch_size, epochs = _count(batch_size, "batch_size", 1), _count(epochs, "epochs", 0)
    augment = _augment_mode(augment)
    if resume is True and checkpoint_dir is None:
        raise ValueError("resume=True continues the checkpoint in checkpoint_dir, but no checkpoint_dir was "
                         "given; pass checkpoint_dir=... (or resume='path/to/checkpoint.npz')")
    if time_limit is not None and not time_limit >= 0:
        raise ValueError(f"time_limit must be a number of seconds >= 0, got {time_limit!r}")
    target_size = None
    if crop is not None:
        crop = _tile_size(model, crop)
        data = prepare_crops(model, *train, size=crop, name="train")
        val_data = grid_crops(*prepare_crops(model, *val, size=crop, name="val"), crop) if val is not None else None
        target_size = output_size(model, np.empty((1, *crop, 1)))
        target_size = None if target_size == crop else target_size
    else:
        data = prepare(model, *train, name="train")
        val_data = prepare(model, *val, name="val") if val is not None else None
        oh, ow = output_size(model, data[0])
        data = (data[0], crop_targets(data[1], oh, ow), crop_targets(data[2], oh, ow))
    if augment and crop is None and data[0].shape[1:3] != data[1].shape[1:3]:
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
                    optimizer=type(opt).__name__, optimizer_config=_optimizer_settings(opt, lr_schedule),
                    learning_rates=None if lr_schedule is None else [float(lr_schedule(e)) for e in range(epochs)],
                    model=model.get_config(), data=_fingerprint(*data),
                    val_data=None if val_data is None else _fingerprint(*val_data),
                    extra=extra_settings or {}, crop=None if crop is None else list(crop))
    settings = json.loads(json.dumps(settings))            # as a checkpoint stores it (tuples -> lists)

    if model.device != backend_device():
        model.to(backend_device())                  # train where the backend computes (cupy: the GPU)
    lock = None
    if checkpoint_dir is not None:
        lock = RunLock(checkpoint_dir).acquire()
        if lock.note:
            warnings.warn(lock.note, UserWarning, stacklevel=2)
    try:
        return _fit(model, data, val_data, epochs, batch_size, opt, loss, augment, seed, checkpoint_dir,
                    resume, callbacks, lr_schedule, time_limit, max_steps, verbose, settings, n, steps_per_epoch,
                    crop, target_size)
    finally:
        if lock is not None:
            lock.release()


def _fit(model, data, val_data, epochs, batch_size, opt, loss, augment, seed, checkpoint_dir, resume,
         callbacks, lr_schedule, time_limit, max_steps, verbose, settings, n, steps_per_epoch, crop=None,
         target_size=None):
    history, epoch, step, running = History(), 0, 0, None
    run_id, saved_at = os.urandom(6).hex(), None
    if checkpoint_dir is not None:
        clean_orphans(checkpoint_dir)
    if resume:
        path = os.path.join(checkpoint_dir, CHECKPOINT) if resume is True else os.fspath(resume)
        state = read_checkpoint(path)
        changed = _changed_settings(state["state"].get("settings", {}), settings)
        if changed:
            raise ValueError("resume with the settings of the checkpoint to continue bit-exactly; changed: "
                             + "; ".join(_describe(c) for c in changed)
                             + ". Nothing was loaded. To start afresh instead: fit without resume (train "
                               "--fresh), or use another checkpoint_dir (train --out)")
        apply_checkpoint(state, model, opt, source=f"checkpoint {path!r}")
        train_state = state["state"]
        history = History(train_state["history"], train_state["epochs_done"])
        epoch, step, running = train_state["epoch"], train_state["step"], train_state["running"]
        run_id = train_state.get("run", run_id)
        saved_at = (epoch, step)
        weights_path = os.path.join(os.path.dirname(os.path.abspath(path)), WEIGHTS)
        if checkpoint_dir is not None and state["generation"] is not None \
                and generation_of(weights_path) != state["generation"]:
            save_weights_file(weights_path, model, state["generation"])     # the pair was left mismatched

    dropouts = [layer for layer in model.layers if type(layer).__name__ == "Dropout"]
    start, steps_run = time.perf_counter(), 0

    def state_now(epoch, step, running):
        return dict(settings=settings, epoch=epoch, step=step, running=running, run=run_id,
                    history=history.history, epochs_done=history.epoch)

    def checkpoint(epoch, step, running):
        nonlocal saved_at
        if checkpoint_dir is None or not _params_finite(model):      # never a bad checkpoint over a good one
            return
        generation = f"{run_id}/{epoch}/{step}"
        save_checkpoint(os.path.join(checkpoint_dir, CHECKPOINT), model, opt, state_now(epoch, step, running),
                        generation)
        save_weights_file(os.path.join(checkpoint_dir, WEIGHTS), model, generation)
        saved_at = (epoch, step)

    def last_good():
        if checkpoint_dir is None:
            return "no checkpoint_dir was given, so nothing was saved"
        if saved_at is None:
            return f"no checkpoint was written to {checkpoint_dir}"
        e, s = saved_at
        where = f"after epoch {e}" if s == 0 else f"at epoch {e + 1}, step {s}"
        return f"the checkpoint on disk ({where}) is the last good one"

    def diverged(what, how, bar):
        history.stop("diverged", f"{what} at epoch {epoch + 1}, step {step + 1} ({how}): training stopped; lower "
                                 f"the learning rate; {last_good()}")
        warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=4)
        if bar is not None:
            bar.close()
        return history

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
                xb, tb, wb = make_batch(data, order, step, batch_size, seed, epoch, augment, crop, target_size)
                for k, layer in enumerate(dropouts):
                    layer.rng = np.random.default_rng([seed, epoch, step, 2, k])
                device = model.device                   # the batch goes where the weights are
                tb = to_device_array(tb, device)
                wb = None if wb is None else to_device_array(wb, device)
                with np.errstate(all="ignore"):
                    z = model.forward(to_device_array(xb, device), training=True, logits=True)
                    bad = not bool(get_array_module(z).isfinite(z).all())
                    if not bad:
                        value, dz, p = loss_from_logits(model, z, tb, wb, loss)
                        bad = not math.isfinite(value)
                if bad:
                    return diverged("loss is NaN or Inf", "the step was not applied", bar)
                with np.errstate(all="ignore"):
                    model.backward(dz)
                    opt.apply(model.params, model.grads)
                if not _params_finite(model):
                    return diverged("the weights became NaN or Inf", "in that step's update", bar)
                inter, total = _dice_counts(p, foreground(model, tb))
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
                    kind = "interrupted" if interrupt.requested else "max_steps"
                    history.stop(kind, ("interrupted (Ctrl-C)" if interrupt.requested else
                                        f"max_steps={max_steps} reached") + f" at epoch {epoch + 1}, step {step}"
                                 + (f"; resume from {os.path.join(checkpoint_dir, CHECKPOINT)}"
                                    if checkpoint_dir else ""))
                    if bar is not None:
                        bar.close()
                    return history
            else:
                running["seconds"] += time.perf_counter() - t0
            logs = {"loss": running["loss_sum"] / running["batches"], "dice": dice_from_counts(running["inter"],
                                                                                     running["total"])}
            if val_data is not None:
                try:
                    logs.update(evaluate(model, val_data, batch_size=batch_size, loss=loss, _prepared=True,
                                         prefix="val_"))
                except DivergedError:
                    step -= 1                              # name the epoch's last step in the message
                    return diverged("the validation outputs are NaN or Inf", "after that step's update", bar)
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
                history.stop("callback", f"a callback stopped training after epoch {epoch}")
                break
            if interrupt.requested:
                history.stop("interrupted", f"interrupted (Ctrl-C) after epoch {epoch}")
                break
            if max_steps is not None and steps_run >= max_steps:
                history.stop("max_steps", f"max_steps={max_steps} reached after epoch {epoch}")
                break
            if time_limit is not None and time.perf_counter() - start > time_limit:
                history.stop("time_limit", f"time limit of {time_limit:g} s reached after epoch {epoch}")
                break
    return history


def _dice_counts(p, t):
    """metrics.dice_counts on the host; on the GPU the counts are made there and only two ints come back."""
    if get_array_module(p) is np:
        return dice_counts(p, t)
    from ..kernels.xp_losses import dice_counts as device_counts
    return tuple(int(c) for c in device_counts(p, t))


class DivergedError(ValueError):
    """The model's outputs are NaN or Inf: its weights diverged."""


def evaluate(model, data, batch_size=8, loss="bce", prefix="", _prepared=False):
    """Mean loss and global Dice over a data set (dropout off): {"loss": ..., "dice": ...}.

    A model whose outputs are NaN or Inf (diverged weights) raises :class:`DivergedError` (a ValueError)."""
    x, t, w = data if _prepared else prepare(model, *data, name="data")
    oh, ow = output_size(model, x)
    t, w = crop_targets(t, oh, ow), crop_targets(w, oh, ow)
    loss_sum, inter, total = 0.0, 0, 0
    device = model.device                            # batches go where the weights are
    for i in range(0, len(x), batch_size):
        with np.errstate(all="ignore"):
            z = model.forward(to_device_array(x[i:i + batch_size], device), training=False, logits=True)
        if not bool(get_array_module(z).isfinite(z).all()):
            raise DivergedError("the model's outputs are NaN or Inf on these images: its weights diverged "
                                "during training; train again with a lower learning rate")
        tb = to_device_array(t[i:i + batch_size], device)
        value, _, p = loss_from_logits(model, z, tb,
                                       None if w is None else to_device_array(w[i:i + batch_size], device), loss)
        loss_sum += value * len(z)
        a, b = _dice_counts(p, foreground(model, tb))
        inter, total = inter + a, total + b
    return {f"{prefix}loss": loss_sum / len(x), f"{prefix}dice": dice_from_counts(inter, total)}
