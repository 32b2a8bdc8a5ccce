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
weights, the optimizer's state, the model's config, and (epoch, step, seed, history, running sums).
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from .augment import augment_with_weights
from .backend import to_backend, to_numpy
from .data import check_pair
from .ops.activations import sigmoid, softmax
from .ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy
from .optimizers import Optimizer, get_optimizer
from .serialization import array_to_config, atomic_savez, config_to_array, load_npz

CHECKPOINT = "checkpoint.npz"
LOSSES = ("bce", "dice", "bce_dice", "weighted_ce")


# ----------------------------------------------------------------------------------------- the data
def prepare(model, images, masks, weights=None, name="train"):
    """Check a data set against the model and return (x, t, w) ready for training.

    images: (N, H, W, C) (or (N, H, W) for one channel) in [0, 1]; masks: (N, H, W[, 1]) in {0, 1}
    (0/255 is normalised with a warning); weights: optional (N, H, W[, 1]) per-pixel loss weights
    (the paper's weight map). For the valid-padded network the targets are centre-cropped to the output.
    """
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim == 3:
        images = images[..., None]
    if masks.ndim == 3:
        masks = masks[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"{name}: images must be a non-empty batch (N, H, W, C), got shape {images.shape}")
    channels = model.input_shape[-1]
    if images.shape[-1] != channels:
        fix = ("convert to grey with image.mean(axis=-1, keepdims=True)" if channels == 1
               else f"build the model with input_shape=(H, W, {images.shape[-1]})")
        raise ValueError(f"{name}: images have {images.shape[-1]} channels, the model expects {channels}; "
                         f"{fix}")
    x, t = check_pair(images, masks)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float32)
        w = w[..., None] if w.ndim == 3 else w
        if w.shape != t.shape:
            raise ValueError(f"{name}: weight maps have shape {w.shape}, the masks {t.shape}; they must match")
        if not np.all(np.isfinite(w)) or w.min() < 0:
            raise ValueError(f"{name}: weight maps must be finite and >= 0")
    return x.astype(model.dtype, copy=False), t, w


def _crop_to(a, h, w):
    """Centre-crop (N, H, W, C) to (N, h, w, C): the valid network's output is smaller than its input."""
    if a is None or a.shape[1:3] == (h, w):
        return a
    top, left = (a.shape[1] - h) // 2, (a.shape[2] - w) // 2
    return a[:, top:top + h, left:left + w]


def epoch_order(n, seed, epoch):
    """The shuffled example order of one epoch: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def make_batch(data, order, step, batch_size, seed, epoch, augment=False):
    """Examples order[step * batch_size : ...], augmented with the generator of (seed, epoch, step)."""
    x, t, w = data
    idx = order[step * batch_size:(step + 1) * batch_size]
    xb, tb, wb = x[idx], t[idx], None if w is None else w[idx]
    if augment:
        rng = np.random.default_rng([seed, epoch, step, 1])
        ex = [augment_with_weights(xb[i], tb[i], None if wb is None else wb[i], rng,
                                   elastic=augment != "flip") for i in range(len(idx))]
        xb = np.stack([e[0] for e in ex])
        tb = np.stack([e[1] for e in ex])
        wb = None if wb is None else np.stack([e[2] for e in ex])
    return xb, tb, wb


# --------------------------------------------------------------------------------------- the loss
def _head_kind(model):
    act = model.config["out_activation"]
    if act == "softmax":
        return "softmax"
    if model.config["out_channels"] != 1:
        raise ValueError("a sigmoid (or linear) head needs out_channels=1 for binary masks; use "
                         "out_activation='softmax' for several classes")
    return "sigmoid"


def loss_from_logits(model, z, t, w=None, loss="bce"):
    """(loss, dL/dz, probabilities) from the head's logits z: (N, H, W, K).

    Sigmoid head: "bce" (Keras's BinaryCrossentropy, which computes from logits even when the model ends in
    a sigmoid), "dice" (soft Dice on p = sigmoid(z)), "bce_dice" (their sum); with w, a per-pixel weighted
    BCE mean(w * l). Softmax head: "weighted_ce", the paper's Eq. 1 (w = 1 without a weight map).
    """
    if _head_kind(model) == "softmax":
        if loss not in ("weighted_ce", "bce"):
            raise ValueError(f"loss {loss!r} needs a sigmoid head; a softmax head trains with 'weighted_ce'")
        labels = t[..., 0].astype(np.int64)
        value, dz = weighted_softmax_crossentropy(z, labels, None if w is None else w[..., 0])
        return value, dz, softmax(z)[0][..., 1:2]
    if loss not in ("bce", "dice", "bce_dice"):
        raise ValueError(f"unknown loss {loss!r} for a sigmoid head; choose 'bce', 'dice' or 'bce_dice'")
    p = sigmoid(z)[0]
    value, dz = 0.0, np.zeros_like(z)
    if loss in ("bce", "bce_dice"):
        value, dz = binary_crossentropy(z, t, from_logits=True, weights=w)
    if loss in ("dice", "bce_dice"):
        d, dp = dice_loss(p, t)
        value, dz = value + d, dz + dp * p * (1 - p)          # chain rule through the sigmoid
    return value, dz, p


def _dice_counts(p, t):
    """(|P and T|, |P| + |T|) of the thresholded prediction: summed over an epoch, one global Dice."""
    pred = p > 0.5
    truth = t > 0.5
    return int(np.sum(pred & truth)), int(pred.sum() + truth.sum())


def _dice(counts):
    inter, total = counts
    return 1.0 if total == 0 else 2.0 * inter / total


# ---------------------------------------------------------------------------------------- history
class History:
    """What ``fit`` returns: ``history`` maps "loss", "dice", "val_loss", "val_dice", "seconds" to one
    value per epoch (as ``keras.callbacks.History``); ``stop_reason`` says why training ended early."""

    def __init__(self, history=None, epoch=None, stop_reason=None):
        self.history = history if history is not None else {}
        self.epoch = epoch if epoch is not None else []
        self.stop_reason = stop_reason

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
    import matplotlib.pyplot as plt
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


# ------------------------------------------------------------------------------------- checkpoints
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
    loss: "bce" (default), "dice", "bce_dice" for a sigmoid head; "weighted_ce" for a softmax head.
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
    oh, ow = _output_size(model, data[0])
    data = (data[0], _crop_to(data[1], oh, ow), _crop_to(data[2], oh, ow))
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
                inter, total = _dice_counts(p, tb)
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
            logs = {"loss": running["loss_sum"] / running["batches"], "dice": _dice((running["inter"],
                                                                                      running["total"]))}
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


def _output_size(model, x):
    """The model's output (height, width) for inputs shaped like x."""
    if model.padding == "same":
        return x.shape[1], x.shape[2]
    from .checks import valid_output_size
    return valid_output_size(x.shape[1], model.depth), valid_output_size(x.shape[2], model.depth)


def evaluate(model, data, batch_size=8, loss="bce", prefix="", _prepared=False):
    """Mean loss and global Dice over a data set (dropout off): {"loss": ..., "dice": ...}."""
    x, t, w = data if _prepared else prepare(model, *data, name="data")
    oh, ow = _output_size(model, x)
    t, w = _crop_to(t, oh, ow), _crop_to(w, oh, ow)
    loss_sum, inter, total = 0.0, 0, 0
    for i in range(0, len(x), batch_size):
        z = to_numpy(model.forward(to_backend(x[i:i + batch_size]), training=False, logits=True))
        value, _, p = loss_from_logits(model, z, t[i:i + batch_size],
                                       None if w is None else w[i:i + batch_size], loss)
        loss_sum += value * len(z)
        a, b = _dice_counts(p, t[i:i + batch_size])
        inter, total = inter + a, total + b
    return {f"{prefix}loss": loss_sum / len(x), f"{prefix}dice": _dice((inter, total))}


def save_history(path, history):
    """history.json: the per-epoch metrics and why training stopped."""
    with open(path, "w") as f:
        json.dump({"history": history.history, "epoch": history.epoch, "stop_reason": history.stop_reason},
                  f, indent=1)
