"""Weights across: a scratch :class:`UNet` to a Keras model and back, paired by structure and verified.

Layers are paired by the part they play (:mod:`.keras_structure`), not by name, so the article's function
pasted as is (layers ``conv2d``, ``conv2d_1``, ...) and zhixuhao/unet's model both work; every weight's shape is
checked before anything is copied. After the copy one forward pass of both models on a probe input is
compared layer by layer, and a transfer that does not reproduce the model is refused, naming the first
layer whose output differs (a U-Net wired ``[skip, up]`` where the other says ``[up, skip]``, say).
"""
from __future__ import annotations

import os

import numpy as np

from .keras_model import build_keras_unet
from .keras_structure import keras_layer_outputs, read_keras_unet
from .recording import first_difference, probe_input, record_outputs

# the UNet arguments that change the architecture (compared to explain a failed transfer)
_ARCHITECTURE = ("base_filters", "depth", "padding", "out_channels", "out_activation", "upsampling",
                 "concat_order", "head_hidden")
_OPTION_DEFAULTS = dict(upsampling="transpose", concat_order="up_first", head_hidden=0, skip_connections=True)


def keras_weights(keras_model) -> dict:
    """Ordered {"layer/weight": variable} of a Keras model (kernel before bias, layers in order)."""
    out = {}
    for layer in keras_model.layers:
        for var in layer.weights:
            out[f"{layer.name}/{var.name.split('/')[-1]}"] = var
    return out


def load_keras_model(path):
    """A Keras model saved with ``model.save("x.keras")`` or as ``.h5``/``.hdf5`` (not compiled: the
    optimizer of an old Keras 2 file, such as ``Adam(lr=...)``, is not needed to read the weights)."""
    from .imports import import_keras
    keras = import_keras()
    return keras.models.load_model(os.fspath(path), compile=False)


def _pairs(model, keras_model, structure):
    """[(scratch name, scratch array, Keras name, Keras variable)] in the scratch model's order; raises
    ValueError at the first weight without a counterpart or with another shape."""
    kvars = {}
    for scratch_layer, kname in structure.layers.items():
        if scratch_layer != "__input__":
            for var in keras_model.get_layer(kname).weights:
                kvars[f"{scratch_layer}/{var.name.split('/')[-1]}"] = (f"{kname}/{var.name.split('/')[-1]}", var)
    pairs = []
    for name, p in model.params.items():
        if name not in kvars:
            raise ValueError(f"the models differ: the scratch model has {name} {tuple(p.shape)}, which the "
                             f"Keras model has no counterpart for{_config_diff(model, structure)}; build both "
                             f"with the same arguments")
        kname, var = kvars.pop(name)
        if tuple(var.shape) != tuple(p.shape):
            raise ValueError(f"the models differ at the first mismatching weight: scratch model has {name} "
                             f"{tuple(p.shape)}, Keras model has {kname} {tuple(var.shape)}; build both with "
                             f"the same arguments")
        pairs.append((name, p, kname, var))
    if kvars:
        name, (kname, var) = next(iter(kvars.items()))
        raise ValueError(f"the models differ: the Keras model has an extra weight {kname} {tuple(var.shape)} "
                         f"(a scratch model would call it {name}){_config_diff(model, structure)}; build both "
                         f"with the same arguments")
    return pairs


def _config_diff(model, structure) -> str:
    cfg, mine = structure.config, {**_OPTION_DEFAULTS, **model.get_config()}
    diff = [f"{k}={cfg.get(k)!r} (the scratch model: {mine.get(k)!r})" for k in _ARCHITECTURE
            if cfg.get(k) != mine.get(k)]
    return "; the Keras model reads as " + ", ".join(diff) if diff else ""


def _read_for(model, keras_model):
    """The Keras model's structure, its open input dimensions taken from the scratch model's input shape."""
    h, w, c = (k if k is not None else m for k, m in zip(keras_model.input_shape[1:], model.input_shape))
    return read_keras_unet(keras_model, (h, w, c))


def verify_keras_transfer(model, keras_model, structure=None, x=None):
    """Run both models once on a probe input and raise ValueError naming the first layer whose output
    differs (see :func:`.recording.first_difference` for the tolerance). x: (N, H, W, C), by default one
    seeded random image of the Keras model's input size (the scratch model's where Keras leaves it open)."""
    structure = _read_for(model, keras_model) if structure is None else structure
    x = probe_input(structure.config["input_shape"], model.dtype) if x is None else \
        np.asarray(x, dtype=model.dtype)
    _, outs_s = record_outputs(model, x)
    outs_k = keras_layer_outputs(keras_model, structure, x)
    found = first_difference(model, outs_k, outs_s)
    if found is not None:
        name, what = found
        raise ValueError(f"the transfer does not reproduce the model: on a probe input the first layer whose "
                         f"output differs is {name} (Keras layer {structure.layers.get(name)!r}): {what}"
                         f"{_config_diff(model, structure)}. After a copy of weights that fit, this means the "
                         f"wiring or an activation differs: build the scratch model with the Keras model's "
                         f"architecture (config_from_keras) or leave model=None")
    return True


def to_keras(model, keras_model=None):
    """Copy a scratch :class:`UNet`'s weights into a Keras model (built to match if none is given), then
    verify it. keras_model: any Keras U-Net that :func:`read_keras_unet` reads (names do not matter)."""
    given = keras_model is not None
    if keras_model is None:
        keras_model = build_keras_unet(**model.get_config())
    structure = _read_for(model, keras_model)
    pairs = _pairs(model, keras_model, structure)
    before = [var.numpy().copy() for _, _, _, var in pairs] if given else None
    for _, p, _, var in pairs:
        var.assign(np.asarray(p, dtype=var.dtype))
    try:
        verify_keras_transfer(model, keras_model, structure)
    except ValueError:
        if given:                      # a refused transfer leaves the caller's Keras model as it was
            for (_, _, _, var), value in zip(pairs, before):
                var.assign(value)
        raise
    return keras_model


def config_from_keras(keras_model, input_shape=None) -> dict:
    """The :class:`UNet` arguments that rebuild a Keras U-Net (read by structure; a path is accepted too).

    input_shape: (H, W, C) where the Keras input leaves H or W open (None); see :func:`read_keras_unet`.
    Options equal to the article's defaults are left out, as in ``UNet.get_config()``.
    """
    if isinstance(keras_model, (str, os.PathLike)):
        keras_model = load_keras_model(keras_model)
    config = read_keras_unet(keras_model, input_shape).config
    return {k: v for k, v in config.items() if _OPTION_DEFAULTS.get(k, object()) != v}


def from_keras(keras_model, model=None, input_shape=None):
    """Copy a Keras U-Net's weights into a scratch :class:`UNet` (built to match if none is given), then
    verify that both compute the same outputs.

    keras_model: a Keras functional model with the article's or zhixuhao's architecture, whatever its layer
    names, or the path of one saved with ``model.save("x.keras")`` or as ``.h5``. The new model takes the Keras
    model's dtype (float32 or float64) and keeps its weight order, so
    ``zip(model.grads.values(), tape.gradient(loss, keras_model.trainable_variables))`` pairs the gradients.
    input_shape: (H, W, C) for a Keras input with open (None) dimensions (default: the first legal size >= 64).
    """
    from ..model import UNet
    if isinstance(keras_model, (str, os.PathLike)):
        keras_model = load_keras_model(keras_model)
    structure = read_keras_unet(keras_model, input_shape) if model is None else _read_for(model, keras_model)
    given = model is not None
    if model is None:
        model = UNet(**structure.config, seed=0)
    pairs = _pairs(model, keras_model, structure)
    before = {name: p.copy() for name, p in model.params.items()} if given else None
    model.set_weights({name: np.asarray(var.numpy() if hasattr(var, "numpy") else var)
                       for name, _, _, var in pairs}, source="Keras model")     # kept on model's device
    try:
        if model.device == "gpu":      # the probe pass compares host arrays: check on the CPU, then go back
            from ..backend import use_backend
            model.to("cpu")
            try:
                with use_backend("numpy"):
                    verify_keras_transfer(model, keras_model, structure)
            finally:
                model.to("gpu")
        else:
            verify_keras_transfer(model, keras_model, structure)
    except ValueError:
        if given:                      # a refused transfer leaves the caller's model as it was
            model.set_weights(before, source="the model's own weights")
        raise
    return model
