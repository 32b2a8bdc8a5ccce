"""The capstone: your own ops inside the real U-Net.

Every layer of ``UNet`` asks ``backend.ops()`` for its op functions when it runs forward, and keeps them
for the matching backward. ``use_student_ops`` hands the layers YOUR functions for the length of a
``with`` block::

    from unet_scratch import UNet
    from unet_scratch.capstone import use_student_ops, from_plain

    model = UNet((64, 64, 1), seed=0)
    with use_student_ops(conv2d=my_conv2d, conv2d_backward=my_conv2d_backward,
                         maxpool2d=my_maxpool2d, maxpool2d_backward=my_maxpool2d_backward) as calls:
        y = model.forward(x)              # every Conv2D layer runs my_conv2d, every pool my_maxpool2d
        dx = model.backward(dy)           # ... and their backward passes
    print(calls)                          # Counter({'conv2d': 23, 'conv2d_backward': 23, ...})

Your functions need the signatures of the reference ops in ``unet_scratch.ops`` (forward returns
``(y, cache)``, backward takes ``(dy, cache)``; the cache is yours, only your backward reads it):

    conv2d(x, w, b, strides, padding) -> (y, cache)         conv2d_backward(dy, cache) -> (dx, dw, db)
    conv2d_transpose(x, w, b, strides, padding) -> (y, c)   conv2d_transpose_backward(dy, c) -> (dx, dw, db)
    maxpool2d(x, pool_size, strides, padding) -> (y, c)     maxpool2d_backward(dy, c) -> dx
    relu(x) -> (y, c), sigmoid(x) -> (y, c)                 relu_backward(dy, c) -> dx, sigmoid_backward ...
    concatenate(xs, axis) -> (y, c)                         concatenate_backward(dy, c) -> [dx_1, dx_2, ...]
    dropout(x, rate, rng, training) -> (y, c)               dropout_backward(dy, c) -> dx

with x: (N, H, W, C), a Conv2D kernel w: (KH, KW, C, F), a Conv2DTranspose kernel (KH, KW, F, C),
b: (F,) or None, strides and pool_size pairs such as (2, 2), padding "same" or "valid". Give each forward
with its backward (the backward reads the forward's cache). Ops you do not give run as before, so the
pieces can be plugged in one at a time. Note: a fused ReLU's output may be replaced by a forward hook
(``keras_ref.compare`` feeds Keras's activations back in), and the layer then calls ``relu(y)`` on that
output to rebuild its cache; ``relu(y)``'s mask equals ``relu(x)``'s, so a correct ReLU needs no care.
(``crop2d``, which only the paper's valid-padded U-Net uses, is called by ``Cropping2D`` directly.)

Functions written as in the early chapters (forward returns y alone, backward takes the forward's inputs)
plug in through :func:`from_plain`::

    with use_student_ops(**from_plain("relu", relu_forward, relu_backward)):      # relu_backward(dy, x)
        ...

While you are still writing them, ``written_ops(functions)`` keeps the pairs that no longer raise
``NotImplementedError``, so the network runs with yours where they exist and the package's elsewhere::

    mine, missing = written_ops(dict(conv2d=conv2d, conv2d_backward=conv2d_backward, relu=relu, ...))
    with use_student_ops(**mine):
        ...

Your ops run on NumPy arrays: the block refuses the ``cupy`` backend (the ``numba`` backend's ops still
run wherever you did not replace them).
"""
from __future__ import annotations

import collections
import contextlib
import functools

import numpy as np

from . import backend


def op_names() -> list[str]:
    """The op names ``use_student_ops`` accepts (each forward and its ``_backward``)."""
    return backend.op_names()


def _counted(name, fn, calls):
    @functools.wraps(fn)
    def op(*args, **kwargs):
        calls[name] += 1
        return fn(*args, **kwargs)
    return op


@contextlib.contextmanager
def use_student_ops(**functions):
    """Context manager: inside the block the layers call ``functions`` (op name -> your function, with the
    reference op's signature) instead of the current backend's ops. Yields a ``collections.Counter`` of
    how many times each of your functions ran. Unknown names are refused, naming the known ones; on exit
    (also after an exception) the previous ops come back.

    A layer keeps the functions it ran forward with for its backward: a forward inside the block and a
    backward after it still pair your forward with your backward.
    """
    if backend.get_backend() == "cupy":
        raise RuntimeError("use_student_ops: the cupy backend hands your functions CuPy arrays; run the "
                           "block under backend 'numpy' (unet_scratch.use_backend('numpy'))")
    calls = collections.Counter()
    counted = {name: _counted(name, fn, calls) if callable(fn) else fn for name, fn in functions.items()}
    with backend.use_ops(**counted):
        yield calls


def _probes():
    """For each op, arguments of a tiny float32 call as the layers make it (forward args, then a dy)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 2)).astype(np.float32)
    up = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    b = np.zeros(2, np.float32)
    return {"conv2d": ((x, w, b, (1, 1), "same"), x), "maxpool2d": ((x, (2, 2), (2, 2), "valid"), x[:, :2, :2]),
            "conv2d_transpose": ((x, up, b, (2, 2), "same"), np.zeros((1, 8, 8, 2), np.float32)),
            "relu": ((x,), x), "sigmoid": ((x,), x), "softmax": ((x,), x),
            "concatenate": (([x, x], -1), np.concatenate([x, x], -1)),
            "dropout": ((x, 0.5, np.random.default_rng(0), True), x)}


def written_ops(functions):
    """Split ``functions`` (op name -> function, as for ``use_student_ops``) into the pairs that are written
    and the names of those that still raise ``NotImplementedError`` (a student copy's stubs).

    Each forward is called once on a tiny float32 input, and its backward on that call's cache; a pair
    where either raises NotImplementedError is left out, so the package's op runs in its place. Any other
    error is not caught here: it shows up, with its traceback, when the network runs. Returns
    (dict of the written functions, sorted list of the names left out).
    """
    probes, written, missing = _probes(), {}, []
    forwards = sorted({name.removesuffix("_backward") for name in functions})
    for forward in forwards:
        pair = {n: functions[n] for n in (forward, forward + "_backward") if n in functions}
        if forward in probes and len(pair) == 2:
            args, dy = probes[forward]
            try:
                _, cache = pair[forward](*args)
                pair[forward + "_backward"](dy, cache)
            except NotImplementedError:
                missing += sorted(pair)
                continue
            except Exception:          # a bug, not a stub: let the real run show it
                pass
        written.update(pair)
    return written, sorted(missing)


def from_plain(name, forward, backward):
    """{name: op, name + "_backward": op_backward} in the ops' signatures, from plain functions:
    ``forward(*args) -> y`` and ``backward(dy, *args) -> gradients``, where args are what the layer
    passes the op (``conv2d``: x, w, b, strides, padding; ``maxpool2d``: x, pool_size, strides, padding;
    ``relu``: x; ``concatenate``: xs, axis). The cache is the forward's arguments, so the backward
    recomputes what it needs from them. Not for ``dropout``, whose backward needs the mask the forward
    drew.

        >>> ops = from_plain("maxpool2d", lambda x, pool, strides, padding: maxpool2x2(x),
        ...                  lambda dy, x, pool, strides, padding: maxpool2x2_backward(dy, x))
    """
    if name == "dropout":
        raise ValueError("from_plain cannot wrap dropout: its backward needs the mask the forward drew, "
                         "not the forward's arguments; write dropout(x, rate, rng, training) -> (y, mask) "
                         "and dropout_backward(dy, mask) -> dx (chapter 05b)")
    if name not in op_names() or name.endswith("_backward"):
        forwards = [n for n in op_names() if not n.endswith("_backward")]
        raise ValueError(f"unknown op {name!r}; from_plain takes the forward's name, one of "
                         f"{', '.join(forwards)}")

    def op(*args):
        return forward(*args), args

    def op_backward(dy, cache):
        return backward(dy, *cache)

    op.__name__, op_backward.__name__ = name, name + "_backward"
    return {name: op, name + "_backward": op_backward}
