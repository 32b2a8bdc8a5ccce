"""Optimizers with Keras 3's update rules, step for step (see keras/src/optimizers/sgd.py, adam.py).

SGD:   v <- momentum v - lr g;  w <- w + v                 (nesterov: w <- w + momentum v - lr g)
       without momentum: w <- w - lr g
Adam:  t <- t + 1;  alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t)
       m <- m + (g - m)(1 - beta1);  v <- v + (g^2 - v)(1 - beta2)
       w <- w - alpha m / (sqrt(v) + epsilon)              (epsilon outside the bias correction, as Keras)

``apply(params, grads)`` updates the parameter arrays in place, computing in each parameter's dtype and in
Keras's order of operations, so float32 runs agree with Keras to rounding.
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    """Base class: per-parameter slots created lazily, an iteration counter, a checkpointable state."""

    slot_names: tuple = ()

    def __init__(self, learning_rate):
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self.slots = {name: {} for name in self.slot_names}

    def apply(self, params, grads):
        """params, grads: mappings name -> array. Updates every param in place."""
        for name, w in params.items():
            if name not in grads:
                raise KeyError(f"no gradient for parameter {name!r}: run backward() before apply()")
            g = grads[name]                      # NumPy or CuPy: no conversion, no copy
            if g.shape != w.shape:
                raise ValueError(f"gradient of {name!r} has shape {g.shape}, parameter has {w.shape}")
            for slot in self.slot_names:
                self.slots[slot].setdefault(name, np.zeros_like(w))
            self._update(name, w, g.astype(w.dtype, copy=False))
        self.iterations += 1

    def _update(self, name, w, g):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Arrays and scalars only (keys like "momentum/enc1_conv1/kernel"): safe for np.savez."""
        state = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for slot, arrays in self.slots.items():
            for name, a in arrays.items():
                state[f"{slot}/{name}"] = a.copy()
        return state

    def load_state_dict(self, state: dict):
        self.iterations = int(state["iterations"])
        self.slots = {name: {} for name in self.slot_names}
        for key, a in state.items():
            slot, _, name = key.partition("/")
            if slot in self.slots:
                self.slots[slot][name] = np.array(a)


class SGD(Optimizer):
    """``keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()
        super().__init__(learning_rate)

    def _update(self, name, w, g):
        lr = w.dtype.type(self.learning_rate)
        if not self.momentum:
            w -= g * lr
            return
        mom = w.dtype.type(self.momentum)
        v = self.slots["momentum"][name]
        v[...] = v * mom - g * lr
        if self.nesterov:
            w += v * mom - g * lr
        else:
            w += v


class Adam(Optimizer):
    """``keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        super().__init__(learning_rate)

    def apply(self, params, grads):
        self._t = self.iterations + 1          # every parameter of one step sees the same t
        super().apply(params, grads)

    def _update(self, name, w, g):
        f = w.dtype.type
        t = f(self._t)
        beta_1_power, beta_2_power = f(self.beta_1) ** t, f(self.beta_2) ** t
        alpha = f(self.learning_rate) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m, v = self.slots["m"][name], self.slots["v"][name]
        m += (g - m) * (1 - f(self.beta_1))
        v += (np.square(g) - v) * (1 - f(self.beta_2))
        w -= (m * alpha) / (np.sqrt(v) + f(self.epsilon))


def get_optimizer(name, **kwargs):
    """"sgd" or "adam" (or an Optimizer instance, returned as is)."""
    if isinstance(name, Optimizer):
        return name
    table = {"sgd": SGD, "adam": Adam}
    if name not in table:
        raise ValueError(f"unknown optimizer {name!r}; choose 'sgd' or 'adam'")
    return table[name](**kwargs)
