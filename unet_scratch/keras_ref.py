"""The real thing: the source article's U-Net in Keras 3, weight transfer both ways, and parity checks.

Everything that touches Keras lives here and imports it lazily, so the rest of the package runs on NumPy
alone. The Keras model uses the same names as the scratch model ("enc1_conv1", "dec4_upconv", "head"), and
its variables' paths ("enc1_conv1/kernel") are the scratch model's parameter names, so the two line up
one to one.
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np

from .ops.concat import crop_amounts

FORWARD_RTOL = FORWARD_ATOL = 1e-5      # every layer's output, np.allclose sense (float32, CPU)
OUTPUT_ATOL = 1e-5                      # the network's output
GRAD_RTOL = 1e-4                        # each weight gradient, ||a - b|| / ||b||


def _quiet_import(name: str):
    """Import a module with the process's stderr (file descriptor 2) sent to /dev/null meanwhile.

    TensorFlow 2.21 writes absl and CUDA-probe lines with timestamps straight to fd 2 at import, even with
    TF_CPP_MIN_LOG_LEVEL=3; in a notebook they would land in the stored outputs and differ on every run.
    Import errors still surface: they are Python exceptions, raised after stderr is restored.
    """
    if sys.modules.get(name) is not None:
        return sys.modules[name]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")     # no "oneDNN custom operations" banner
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        return importlib.import_module(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """TensorFlow, imported without its start-up chatter (see :func:`_quiet_import`)."""
    try:
        return _quiet_import("tensorflow")
    except ImportError as err:
        raise ImportError("this needs TensorFlow: pip install -e '.[keras]' (or make venv)") from err


def import_keras():
    """Keras 3 (TensorFlow backend unless KERAS_BACKEND says otherwise), imported quietly."""
    try:
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            import_tensorflow()
        return _quiet_import("keras")
    except ImportError as err:
        raise ImportError("the Keras reference needs TensorFlow and Keras 3: "
                          "pip install -e '.[keras]' (or make venv)") from err


def build_keras_unet(input_shape=(256, 256, 1), base_filters=64, depth=4, padding="same", dropout=0.5,
                     out_channels=1, out_activation="sigmoid", kernel_initializer="glorot_uniform",
                     seed=None, dtype="float32"):
    """The source article's ``unet(input_shape)`` as a Keras 3 model, generalised like :class:`UNet`.

    With the defaults it is layer for layer the article's function: Conv2D(64, 3, activation='relu',
    padding='same') x2, MaxPooling2D, ..., Dropout(0.5) after conv4 and conv5, Conv2DTranspose(n, 2,
    strides=(2, 2), padding='same'), concatenate([up, skip]), Conv2D(1, 1, activation='sigmoid').
    ``padding="valid"`` adds Cropping2D on the skips (the paper's network).
    """
    keras = import_keras()
    L = keras.layers
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    f = [int(base_filters) * 2 ** i for i in range(int(depth) + 1)]

    def conv(filters, name):
        return L.Conv2D(filters, 3, activation="relu", padding=padding, name=name,
                        kernel_initializer=kernel_initializer, dtype=dtype)

    inputs = L.Input(shape=tuple(input_shape), name="input", dtype=dtype)
    h, skips = inputs, []
    for i in range(1, depth + 1):
        h = conv(f[i - 1], f"enc{i}_conv2")(conv(f[i - 1], f"enc{i}_conv1")(h))
        if dropout and i == depth:
            h = L.Dropout(dropout, name=f"enc{i}_drop", dtype=dtype)(h)
        skips.append(h)
        h = L.MaxPooling2D(pool_size=(2, 2), name=f"enc{i}_pool", dtype=dtype)(h)
    h = conv(f[depth], "bottleneck_conv2")(conv(f[depth], "bottleneck_conv1")(h))
    if dropout:
        h = L.Dropout(dropout, name="bottleneck_drop", dtype=dtype)(h)
    for i in range(depth, 0, -1):
        up = L.Conv2DTranspose(f[i - 1], 2, strides=(2, 2), padding="same", name=f"dec{i}_upconv",
                               kernel_initializer=kernel_initializer, dtype=dtype)(h)
        skip = skips[i - 1]
        if tuple(skip.shape[1:3]) != tuple(up.shape[1:3]):
            cropping = crop_amounts(skip.shape[1], skip.shape[2], up.shape[1], up.shape[2])
            skip = L.Cropping2D(cropping, name=f"dec{i}_crop", dtype=dtype)(skip)
        h = L.concatenate([up, skip], name=f"dec{i}_concat")
        h = conv(f[i - 1], f"dec{i}_conv2")(conv(f[i - 1], f"dec{i}_conv1")(h))
    outputs = L.Conv2D(out_channels, 1, activation=out_activation, name="head",
                       kernel_initializer=kernel_initializer, dtype=dtype)(h)
    return keras.Model(inputs=[inputs], outputs=[outputs], name="unet")


# ---------------------------------------------------------------------------------------- weights
def _keras_weights(keras_model) -> dict:
    """Ordered {"layer/weight": variable} of a Keras model (kernel before bias, layers in order)."""
    out = {}
    for layer in keras_model.layers:
        for var in layer.weights:
            out[f"{layer.name}/{var.name.split('/')[-1]}"] = var
    return out


def _check_same_architecture(names_shapes_a, names_shapes_b, a="scratch model", b="Keras model"):
    """Raise ValueError naming the first weight whose name or shape differs."""
    la, lb = list(names_shapes_a.items()), list(names_shapes_b.items())
    for (na, sa), (nb, sb) in zip(la, lb):
        if na != nb or tuple(sa) != tuple(sb):
            raise ValueError(f"the models differ at the first mismatching weight: {a} has {na} {tuple(sa)}, "
                             f"{b} has {nb} {tuple(sb)}; build both with the same arguments")
    if len(la) != len(lb):
        longer, name = (la, a) if len(la) > len(lb) else (lb, b)
        extra = longer[min(len(la), len(lb))]
        raise ValueError(f"the models differ: {name} has an extra weight {extra[0]} {tuple(extra[1])} "
                         f"({len(la)} vs {len(lb)} weights); build both with the same arguments")


def to_keras(model, keras_model=None):
    """Copy a scratch :class:`UNet`'s weights into a Keras model (built to match if none is given)."""
    if keras_model is None:
        cfg = model.get_config()
        keras_model = build_keras_unet(**cfg)
    kw = _keras_weights(keras_model)
    _check_same_architecture({n: p.shape for n, p in model.params.items()},
                             {n: tuple(v.shape) for n, v in kw.items()})
    for name, var in kw.items():
        var.assign(np.asarray(model.params[name], dtype=var.dtype))
    return keras_model


def config_from_keras(keras_model) -> dict:
    """The :class:`UNet` arguments that rebuild a Keras model made by :func:`build_keras_unet`."""
    layers = {l.name: l for l in keras_model.layers}
    missing = [n for n in ("enc1_conv1", "head") if n not in layers]
    if missing:
        raise ValueError(f"not a unet-scratch U-Net: no layer named {missing[0]!r} (layers: "
                         f"{[l.name for l in keras_model.layers][:6]}...); build it with build_keras_unet")
    first, head = layers["enc1_conv1"], layers["head"]
    drops = [l for l in keras_model.layers if type(l).__name__ == "Dropout"]
    act = head.activation.__name__
    return dict(input_shape=tuple(keras_model.input_shape[1:]), base_filters=first.filters,
                depth=sum(type(l).__name__ == "MaxPooling2D" for l in keras_model.layers),
                padding=first.padding, dropout=drops[0].rate if drops else 0.0,
                out_channels=head.filters, out_activation=None if act == "linear" else act,
                dtype=str(np.dtype(first.dtype if isinstance(first.dtype, str) else "float32")))


def from_keras(keras_model, model=None):
    """Copy a Keras model's weights into a scratch :class:`UNet` (built to match if none is given)."""
    from .model import UNet
    if model is None:
        model = UNet(**config_from_keras(keras_model), seed=0)
    kw = _keras_weights(keras_model)
    _check_same_architecture({n: tuple(v.shape) for n, v in kw.items()},
                             {n: p.shape for n, p in model.params.items()},
                             a="Keras model", b="scratch model")
    model.set_weights({n: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for n, v in kw.items()},
                      source="Keras model")
    return model


# ---------------------------------------------------------------------------------------- training
def fit_keras(model, train, val=None, epochs=1, batch_size=4, learning_rate=1e-3, loss="bce", augment=False,
              seed=0, lr_schedule=None, keras_model=None, verbose=0):
    """Train the Keras twin of a scratch ``model`` the way :func:`unet_scratch.training.fit` trains it.

    The Keras model starts from ``model``'s current weights (copy them before training the scratch one),
    sees exactly the same batches in the same order with the same augmentation (``training.make_batch``),
    and uses Keras's Adam and Keras's losses ("bce": BinaryCrossentropy; "dice": Dice; "bce_dice": both),
    with the same ``lr_schedule`` (epoch -> learning rate) if one is given.
    Only dropout masks differ (Keras draws its own). Returns (History, keras_model); the history has the
    keys of ``fit``'s ("loss", "dice", "val_loss", "val_dice", "seconds").
    """
    import math
    import time

    from . import training
    keras = import_keras()
    if loss not in ("bce", "dice", "bce_dice"):
        raise ValueError(f"fit_keras supports the sigmoid-head losses 'bce', 'dice', 'bce_dice', not {loss!r}")
    keras_model = to_keras(model, keras_model)
    bce, dice = keras.losses.BinaryCrossentropy(), keras.losses.Dice()
    loss_fn = {"bce": bce, "dice": dice, "bce_dice": lambda t, p: bce(t, p) + dice(t, p)}[loss]
    keras_model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss_fn,
                        jit_compile=False)
    data = training.prepare(model, *train, name="train")
    val_data = training.prepare(model, *val, name="val") if val is not None else None
    n = len(data[0])
    history = training.History()
    for epoch in range(int(epochs)):
        order = training.epoch_order(n, seed, epoch)
        if lr_schedule is not None:
            keras_model.optimizer.learning_rate.assign(float(lr_schedule(epoch)))
        loss_sum, inter, total, t0 = 0.0, 0, 0, time.perf_counter()
        steps = math.ceil(n / batch_size)
        for step in range(steps):
            xb, tb, _ = training.make_batch(data, order, step, batch_size, seed, epoch, augment)
            p = keras_model([xb], training=False).numpy()     # the prediction before this step's update,
            loss_sum += float(keras_model.train_on_batch([xb], tb))  # as fit() measures its running metrics
            a, b = training._dice_counts(p, tb)
            inter, total = inter + a, total + b
        logs = {"loss": loss_sum / steps, "dice": training._dice((inter, total))}
        if val_data is not None:
            x, t, _ = val_data
            p = keras_model.predict([x], batch_size=batch_size, verbose=0)
            a, b = training._dice_counts(p, t)
            # evaluate() computes the loss on the model's symbolic output, so BinaryCrossentropy uses the
            # head's logits as in training (on predict()'s plain probabilities it would clip instead)
            logs["val_loss"] = float(keras_model.evaluate([x], t, batch_size=batch_size, verbose=0))
            logs["val_dice"] = training._dice((a, b))
        logs["seconds"] = time.perf_counter() - t0
        history.append(epoch, logs)
        if verbose:
            print(f"keras epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    return history, keras_model


from .parity import LockstepResult, ParityReport, compare, lockstep  # noqa: E402  (re-exported here)

__all__ = ["build_keras_unet", "to_keras", "from_keras", "config_from_keras", "compare", "lockstep", "fit_keras",
           "ParityReport", "LockstepResult"]
