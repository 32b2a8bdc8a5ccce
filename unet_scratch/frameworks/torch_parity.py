"""Scratch vs PyTorch: the parity report (per layer, teacher-forced gradients) and lockstep training.

``compare_torch`` is :func:`.parity.compare` with PyTorch on the other side: the same report, built by the same
core (:func:`.parity.parity_report`); PyTorch's per-layer outputs come from forward hooks on the submodules
named like the scratch layers, its gradients from ``loss.backward()``, both converted to NHWC/HWIO.

``lockstep_torch`` trains both with ``torch.optim.SGD`` or ``torch.optim.Adam`` beside the scratch optimizers
(which follow Keras 3 to the bit). What agrees with what:

* SGD with momentum: Keras keeps v <- mu v - lr g, w <- w + v; PyTorch b <- mu b + g, w <- w - lr b. With a
  constant learning rate v = -lr b: the same update. Keras keeps lr and momentum as float32 numbers (0.05 is
  0.0500000007), even for a float64 model, so PyTorch is given those numbers; float64 runs then agree to
  ~1e-15.
* Adam: both keep m <- m + (g - m)(1 - b1) and v <- b2 v + (1 - b2) g^2 (to rounding), but place epsilon
  differently:
      Keras / scratch:  w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
      PyTorch:          w <- w - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
  Multiplying out, Keras's update is PyTorch's with eps_t = eps / sqrt(1 - b2^t) in place of eps (31.6 eps at
  step 1, tending to eps). A second, smaller difference is in the constants: Keras computes the bias
  correction from float32 betas (0.999 -> 0.99900001, which makes 1 - b2^t 1.3e-5 relatively smaller) but the
  moving averages from the exact 1 - 0.999.
  ``adam="keras"`` sets PyTorch's eps to eps_t and its lr to the float32 lr times the ratio of Keras's bias
  correction to PyTorch's before each step: the same update as Keras, to rounding. ``adam="torch"`` runs
  ``torch.optim.Adam(lr, betas=(0.9, 0.999), eps=eps)`` as a PyTorch user writes it; the gap left is what
  the placement and the constants do (measured in tests/test_torch_ref.py and docs/bring-your-own-model.md).
  PyTorch's default eps is 1e-8, Keras's 1e-7: both sides here use ``epsilon`` (default Keras's 1e-7).
"""
from __future__ import annotations

import math

import numpy as np

from .parity import LockstepResult, parity_report
from .recording import rel
from .torch_transfer import from_torch_array, import_torch, to_torch, torch_name


def _nchw(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))


def compare_torch(model, module, x, y=None, seed=0):
    """Forward every layer and backpropagate one loss through the scratch model and a PyTorch module.

    module: a :class:`TorchUNet` holding the same weights (``to_torch(model)``). x: (N, H, W, C) NHWC.
    y: optional 0/1 target for a sigmoid head (binary cross-entropy: ``F.binary_cross_entropy`` on the
    PyTorch side); without it the loss is mean(output * g) for a fixed random g. Dropout off on both sides.
    Returns a :class:`ParityReport` ("PyTorch" as its framework), with the Keras comparison's tolerances.
    """
    torch = import_torch()
    F = torch.nn.functional

    def run_torch(x, y, g):
        outs, handles = {}, []
        for layer in model.layers:
            def record(mod, inp, out, name=layer.name):
                outs[name] = out.detach().cpu().numpy().transpose(0, 2, 3, 1)
            handles.append(module.get_submodule(layer.name).register_forward_hook(record))
        module.eval()
        module.zero_grad(set_to_none=True)
        try:
            with torch.enable_grad():
                yt = module(torch.from_numpy(_nchw(x)))
                if y is not None:
                    loss = F.binary_cross_entropy(yt, torch.from_numpy(_nchw(np.asarray(y, model.dtype))))
                else:
                    loss = (yt * torch.from_numpy(_nchw(g))).mean()
                loss.backward()
        finally:
            for h in handles:
                h.remove()
        grads = [(name, from_torch_array(name, module.get_parameter(torch_name(name)).grad))
                 for name in model.params]
        return [l.name for l in model.layers], outs, grads, float(loss.detach())

    return parity_report(model, x, y, seed, run_torch, "PyTorch")


def keras_adam_in_torch(lr, beta_1, beta_2, epsilon, t):
    """(lr_t, eps_t) that make ``torch.optim.Adam(betas=(beta_1, beta_2))``'s step t equal Keras's Adam step
    with (lr, beta_1, beta_2, epsilon): eps_t = eps / sqrt(1 - b2^t), and lr_t = float32(lr) times Keras's
    bias correction sqrt(1 - b2'^t) / (1 - b1'^t) (b' = float32(b)) over PyTorch's sqrt(1 - b2^t) / (1 - b1^t)."""
    f32 = lambda v: float(np.float32(v))           # noqa: E731
    keras = math.sqrt(1 - math.pow(f32(beta_2), t)) / (1 - math.pow(f32(beta_1), t))
    torch_ = math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return f32(lr) * keras / torch_, epsilon / math.sqrt(1 - beta_2 ** t)


def lockstep_torch(model, module=None, batches=(), optimizer="sgd", steps=20, learning_rate=None, momentum=0.9,
                   epsilon=1e-7, adam="keras") -> LockstepResult:
    """Train the scratch model and its PyTorch twin from the same weights on the same batches.

    batches: a list of (x, y), x (N, H, W, C), y 0/1 of the output's shape, reused cyclically. optimizer:
    "sgd" (``momentum``) or "adam" (``epsilon``; ``adam`` "keras" or "torch", see the module docstring). module: a :class:`TorchUNet` (built to match when None); it receives the scratch weights
    first. Returns a :class:`LockstepResult` with framework "PyTorch".
    """
    torch = import_torch()
    F = torch.nn.functional
    from ..ops.losses import binary_crossentropy
    from ..optimizers import SGD, Adam
    if model.config["out_activation"] != "sigmoid":
        raise ValueError("lockstep_torch trains with binary cross-entropy: build the models with a sigmoid head")
    if adam not in ("keras", "torch"):
        raise ValueError(f"adam must be 'keras' (PyTorch's lr and eps set each step so that its update is "
                         f"Keras's) or 'torch' (torch.optim.Adam as it is), got {adam!r}")
    module = to_torch(model, module)
    params = list(module.parameters())
    f32 = lambda v: float(np.float32(v))           # noqa: E731 - a hyper-parameter as Keras stores it
    if optimizer == "sgd":
        lr = 0.01 if learning_rate is None else learning_rate
        opt_s = SGD(lr, momentum=momentum)
        opt_t = torch.optim.SGD(params, lr=f32(lr), momentum=f32(momentum))
    elif optimizer == "adam":
        lr = 1e-3 if learning_rate is None else learning_rate
        opt_s = Adam(lr, epsilon=epsilon)
        opt_t = torch.optim.Adam(params, lr=lr, betas=(opt_s.beta_1, opt_s.beta_2), eps=epsilon)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    losses_s, losses_t = [], []
    module.eval()                                          # dropout off, as on the scratch side
    for step in range(steps):
        x, y = batches[step % len(batches)]
        x, y = np.asarray(x, model.dtype), np.asarray(y, model.dtype)
        loss, dp = binary_crossentropy(model.forward(x, training=False), y)
        model.backward(dp)
        opt_s.apply(model.params, model.grads)
        opt_t.zero_grad(set_to_none=True)
        loss_t = F.binary_cross_entropy(module(torch.from_numpy(_nchw(x))), torch.from_numpy(_nchw(y)))
        loss_t.backward()
        if optimizer == "adam" and adam == "keras":
            for group in opt_t.param_groups:
                group["lr"], group["eps"] = keras_adam_in_torch(lr, opt_s.beta_1, opt_s.beta_2, epsilon, step + 1)
        opt_t.step()
        losses_s.append(float(loss))
        losses_t.append(float(loss_t.detach()))
    gaps = [abs(a - b) / abs(b) for a, b in zip(losses_s, losses_t)]
    w_rel = max(rel(model.params[name], from_torch_array(name, module.get_parameter(torch_name(name))))
                for name in model.params)
    return LockstepResult(losses_s, losses_t, gaps, float(w_rel), optimizer, framework="PyTorch")
