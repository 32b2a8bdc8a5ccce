"""The machinery shared by every scratch-vs-framework check (Keras and PyTorch alike).

A framework side only has to give, for one input, each layer's output keyed by the scratch layer's name
(NHWC, as NumPy arrays) and, for a loss, each weight's gradient keyed by the scratch parameter's name (in the
scratch layout). Everything else happens here, on the scratch model, through its layers' forward hooks:

    record_outputs           run the scratch model once, keeping each layer's output by name
    teacher_forced_backward  backward with every layer's cache built from the framework's activations
    near_ties                pooling windows whose first maximum differs between the two sides
    first_difference         the first layer (in forward order) whose outputs disagree: how a transfer is
                             verified before it is accepted
"""
from __future__ import annotations

import numpy as np

# Verifying a transfer: a layer's output must agree to this fraction of its largest value. Far looser than
# the parity tolerances (rounding differs between frameworks), far tighter than a wiring or activation error
# (those move outputs by 1e-2 or more).
VERIFY_TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def rel(a, b) -> float:
    """||a - b|| / ||b|| (0 when both are zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.linalg.norm(b.ravel())
    num = np.linalg.norm((a - b).ravel())
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(num / den)


def run_with_hooks(model, hook, x):
    """One forward pass of ``model`` with ``hook`` registered on every layer (removed afterwards)."""
    removers = [layer.register_forward_hook(hook) for layer in model.layers]
    try:
        return model.forward(x, training=False)
    finally:
        for remove in removers:
            remove()


def record_outputs(model, x):
    """Run the scratch model once, keeping each layer's output by name. Returns (y, {name: output})."""
    outputs = {}

    def record(layer, inp, out):
        outputs[layer.name] = out
    return run_with_hooks(model, record, x), outputs


def teacher_forced_backward(model, framework_outputs, dy):
    """Backward through the scratch model with every layer's forward cache built from the framework's
    activations.

    Each layer runs its forward on the framework's input to it (the previous layer's framework output,
    handed on by the hook), and its output is then replaced by the framework's, which also gives a fused
    ReLU the framework's mask. framework_outputs: {scratch layer name: output, "__input__": x}.
    """
    def force(layer, inp, out):
        return framework_outputs[layer.name]
    run_with_hooks(model, force, framework_outputs["__input__"])
    return model.backward(dy)


def near_ties(model, outs_scratch, outs_framework):
    """Per pooling layer: how many windows pick a different first maximum on the two sides."""
    from ..ops.pool import maxpool2d
    ties, previous = {}, "__input__"
    for layer in model.layers:
        if type(layer).__name__ == "MaxPooling2D":
            args = (layer.pool_size, layer.strides, layer.padding)
            a = maxpool2d(outs_scratch[previous], *args)[1]["argmax"]
            b = maxpool2d(outs_framework[previous], *args)[1]["argmax"]
            if int(np.sum(a != b)):
                ties[layer.name] = int(np.sum(a != b))
        previous = layer.name
    return ties


def probe_input(shape, dtype, seed=0):
    """A seeded random batch of one image in [0, 1): shape (H, W, C) -> x (1, H, W, C) of ``dtype``.

    The values are float32 numbers even in float64, so a float64 Keras model whose Input layer is float32
    (Keras's default floatx) reads exactly the same probe as the scratch model."""
    return np.random.default_rng(seed).random((1, *shape), dtype=np.float32).astype(dtype)


def first_difference(model, framework_outputs, scratch_outputs, tol=None):
    """The first scratch layer (forward order) whose output differs from the framework's, or None.

    A layer differs when its shapes differ or max |a - b| > tol * max(1, max |b|); tol defaults to
    VERIFY_TOL for the model's dtype. Returns None or (layer name, description of the difference).
    """
    tol = VERIFY_TOL.get(np.dtype(model.dtype), 1e-4) if tol is None else tol
    for layer in model.layers:
        if layer.name not in framework_outputs:
            continue
        a, b = np.asarray(scratch_outputs[layer.name]), np.asarray(framework_outputs[layer.name])
        if a.shape != b.shape:
            return layer.name, f"output shape {a.shape[1:]} here, {b.shape[1:]} there"
        err, scale = float(np.max(np.abs(a - b))), max(1.0, float(np.max(np.abs(b))))
        if not err <= tol * scale:          # also catches NaN
            return layer.name, f"max abs difference {err:.2g} (allowed {tol * scale:.1g})"
    return None
