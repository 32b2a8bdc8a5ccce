"""Weights across: a scratch :class:`UNet` to a Keras model and back, checked name by name and shape by shape."""
from __future__ import annotations

import numpy as np

from .keras_model import build_keras_unet


def keras_weights(keras_model) -> dict:
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
    kw = keras_weights(keras_model)
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
    from ..model import UNet
    if model is None:
        model = UNet(**config_from_keras(keras_model), seed=0)
    kw = keras_weights(keras_model)
    _check_same_architecture({n: tuple(v.shape) for n, v in kw.items()},
                             {n: p.shape for n, p in model.params.items()},
                             a="Keras model", b="scratch model")
    model.set_weights({n: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for n, v in kw.items()},
                      source="Keras model")
    return model
