"""Optimizers with Keras 3's update rules, step for step (keras/src/optimizers/sgd.py, adam.py).

SGD (learning rate lr, gradient g, weight w):
    plain:      w <- w - g lr
    momentum:   v <- v momentum - g lr;   w <- w + v
    nesterov:   v <- v momentum - g lr;   w <- w + (v momentum - g lr)     (v already updated)
The paper trains with SGD, momentum 0.99 and one tile per batch.

Adam (t = step number, counted from 1):
    alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)          (bias correction folded into the step size)
    m <- m + (g - m)(1 - beta_1);  v <- v + (g^2 - v)(1 - beta_2)
    w <- w - (m alpha) / (sqrt(v) + epsilon)                 (epsilon outside the correction, as Keras)

Floating point, to agree with Keras to the last bit:
  * every operation runs in the parameter's dtype, in Keras's order of operations;
  * Keras keeps the learning rate in a float32 variable, and ``ops.cast(0.9, "float64")`` first makes a
    float32 tensor of the Python float: so lr, momentum, beta_1 and beta_2 reach a float64 parameter
    as float64(float32(value)) (0.8999999761581421 for 0.9), and ours do too (``_keras_cast``);
  * the constants 1 - beta_1, 1 - beta_2 and epsilon are computed in Python (float64) and then meet
    the parameter's dtype directly, as in Keras: float32(1 - 0.9) = 0.1f, whereas
    1 - float32(0.9) = 0.10000002f (a 2e-7 relative difference that would show after a few steps);
  * beta^t is the C library's pow: TensorFlow's Pow op on a scalar calls ``std::pow``, i.e. powf for
    float32 and pow for float64. Neither is correctly rounded (glibc's powf is within 0.82 ulp), so
    rounding the exact value, or NumPy's own power (for base float64(float32(0.9)) and t = 56, NumPy 2.4
    on x86-64 differs from C's pow by an ulp), puts 1 - beta^t an ulp off at some steps (float32,
    beta_2 = 0.999, exact value rounded: steps 2958 and 3606 of the first 20000);
    ``_power`` calls the C library's powf through ctypes and Python's ``math.pow`` (C's pow) for float64.
With these, float32 and float64 SGD and Adam runs are bit-identical to Keras 3 / TensorFlow 2.21 on a
CPU (tests/test_optimizers.py compares with ``np.array_equal``; the pow alone was checked against
``tf.pow`` for steps 1-20000). Where no C math library is found (``ctypes.util.find_library("m")`` is
None, e.g. on Windows), float32 beta^t falls back to C's pow rounded to float32, one ulp off at rare steps.

``apply(params, grads)`` updates the parameter arrays in place; per-parameter slots (momentum, m, v) are
created on first use. ``state_dict()`` / ``load_state_dict()`` save and restore the slots and the step
counter as plain arrays, so a checkpoint survives ``np.savez`` without pickle and a resumed run is
bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np

from .backend import device_of, get_array_module, to_device_array, to_numpy


def _slot_like(w, value=None):
    """A new array with w's shape, dtype and device (NumPy or CuPy): zeros, or a copy of ``value`` (from
    either device, e.g. a slot restored from a checkpoint) cast to w's dtype."""
    xp = get_array_module(w)
    if value is None:
        return xp.zeros_like(w)
    return xp.array(to_device_array(value, device_of(w)), dtype=w.dtype)


def _keras_cast(value, dtype):
    """A Python float as ``keras.ops.cast(value, dtype)`` makes it: through float32 first."""
    return dtype.type(np.float32(value))


@functools.cache
def _c_powf():
    """The C math library's ``float powf(float, float)``, or None where no C math library is found."""
    name = ctypes.util.find_library("m")        # libm.so.6 on Linux, libm.dylib on macOS, None on Windows
    if name is None:
        return None
    powf = ctypes.CDLL(name).powf
    powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
    return powf


def _power(base, exponent):
    """base ** exponent in base's dtype as TensorFlow's scalar Pow computes it: C's powf (float32) or
    pow (float64). base: a NumPy float32 or float64 scalar; exponent: a number."""
    powf = _c_powf() if base.dtype == np.float32 else None
    if powf is not None:
        return np.float32(powf(float(base), float(exponent)))
    return base.dtype.type(math.pow(float(base), float(exponent)))     # math.pow is C's pow


class Optimizer:
    """Base class: per-parameter slots created lazily, a step counter, a checkpointable state.

    Subclasses set ``slot_names`` and implement ``_update(name, w, g)``, which changes w in place.
    """

    slot_names: tuple = ()

    def __init__(self, learning_rate):
        learning_rate = float(learning_rate)
        if not learning_rate >= 0:
            raise ValueError(f"learning_rate must be a number >= 0, got {learning_rate}")
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots = {slot: {} for slot in self.slot_names}

    def _lr(self, dtype):
        """The learning rate as Keras uses it: a float32 variable cast to the parameter's dtype."""
        return _keras_cast(self.learning_rate, dtype)

    def apply(self, params, grads):
        """One step. params, grads: mappings name -> array (NumPy or CuPy, the same for both) of equal shapes.

        Every parameter is updated in place (the same array objects); ``iterations`` grows by one.
        """
        params, grads = list(params.items()), dict(grads.items())     # one look-up each: O(L)
        for name, w in params:                   # check everything before changing anything
            if name not in grads:
                raise KeyError(f"no gradient for parameter {name!r}: run backward() before apply()")
            g = grads[name]
            if tuple(g.shape) != tuple(w.shape):
                raise ValueError(f"gradient of {name!r} has shape {tuple(g.shape)}, but the parameter has "
                                 f"{tuple(w.shape)}; pass the gradients that belong to these parameters")
            for slot in self.slot_names:
                s = self.slots[slot].get(name)
                if s is not None and tuple(s.shape) != tuple(w.shape):
                    raise ValueError(f"optimizer slot {slot}/{name} has shape {tuple(s.shape)}, the "
                                     f"parameter {tuple(w.shape)}: this state belongs to another model")
        for name, w in params:
            for slot in self.slot_names:
                s = self.slots[slot].get(name)
                if s is None or type(s) is not type(w) or s.dtype != w.dtype:
                    self.slots[slot][name] = _slot_like(w, s)
            g = grads[name]                      # NumPy or CuPy: no conversion, no copy
            self._update(name, w, g.astype(w.dtype, copy=False))
        self.iterations += 1

    def _update(self, name, w, g):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """NumPy arrays only, keys like "iterations", "momentum/enc1_conv1/kernel": safe for np.savez."""
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for slot, arrays in self.slots.items():
            for name, a in arrays.items():
                state[f"{slot}/{name}"] = np.array(to_numpy(a))    # a copy, also of NumPy slots
        return state

    def load_state_dict(self, state: dict):
        """Restore what ``state_dict`` saved (e.g. from ``np.load``). Slots move to the parameters'
        array module and dtype on the next ``apply``."""
        if "iterations" not in state:
            raise KeyError("optimizer state has no 'iterations' entry: not a state_dict() of an optimizer")
        slots = {slot: {} for slot in self.slot_names}
        for key, a in state.items():
            if key == "iterations":
                continue
            slot, _, name = key.partition("/")
            if slot not in slots or not name:
                raise KeyError(f"unexpected optimizer state entry {key!r} for {type(self).__name__}, which "
                               f"keeps {list(self.slot_names) or 'no slots'}; was it saved by another "
                               f"optimizer or with other settings?")
            slots[slot][name] = np.array(a)
        self.iterations = int(state["iterations"])
        self.slots = slots


class SGD(Optimizer):
    """``keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        momentum = float(momentum)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum} (the paper uses 0.99)")
        self.momentum, self.nesterov = momentum, bool(nesterov)
        self.slot_names = ("momentum",) if momentum != 0 else ()      # Keras makes none at momentum 0
        super().__init__(learning_rate)

    def _update(self, name, w, g):
        lr = self._lr(w.dtype)
        if not self.momentum:
            w -= g * lr
            return
        momentum = _keras_cast(self.momentum, w.dtype)
        v = self.slots["momentum"][name]
        v[...] = v * momentum - g * lr
        if self.nesterov:
            w += v * momentum - g * lr
        else:
            w += v


class Adam(Optimizer):
    """``keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        for label, beta in (("beta_1", self.beta_1), ("beta_2", self.beta_2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{label} must be in [0, 1), got {beta}")
        super().__init__(learning_rate)

    def apply(self, params, grads):
        self._step = self.iterations + 1           # every parameter of one step sees the same t
        super().apply(params, grads)

    def _update(self, name, w, g):
        f = w.dtype.type
        t = f(self._step)
        beta_1_power = _power(_keras_cast(self.beta_1, w.dtype), t)
        beta_2_power = _power(_keras_cast(self.beta_2, w.dtype), t)
        alpha = self._lr(w.dtype) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m, v = self.slots["m"][name], self.slots["v"][name]
        xp = get_array_module(w)
        m += (g - m) * f(1 - self.beta_1)
        v += (xp.square(g) - v) * f(1 - self.beta_2)
        w -= (m * alpha) / (xp.sqrt(v) + f(self.epsilon))


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get_optimizer(name, **kwargs):
    """"sgd" or "adam" with Keras's keyword arguments (or an Optimizer instance, returned as is)."""
    if isinstance(name, Optimizer):
        return name
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[key](**kwargs)
