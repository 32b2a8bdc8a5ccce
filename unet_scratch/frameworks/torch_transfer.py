"""Weights across to PyTorch and back: exact copies with the layout conversions, verified by a probe pass.

    to_torch(model)        a :class:`TorchUNet` (or the module given) holding the scratch model's weights
    from_torch(module)     a scratch :class:`UNet` holding the module's weights
    torch_outputs(...)     every layer's output of the module, recorded with forward hooks, as NHWC arrays

Kernels go (kh, kw, in, out) -> (out, in, kh, kw) and transposed kernels (kh, kw, out, in) -> (in, out, kh, kw),
both by ``transpose(3, 2, 0, 1)`` (and back by ``transpose(2, 3, 1, 0)``); the copies are bit-exact both ways.
PyTorch is imported only when one of these functions runs.
"""
from __future__ import annotations

import numpy as np

from ..optional import require
from .recording import first_difference, probe_input, record_outputs

TO_TORCH = (3, 2, 0, 1)          # (kh, kw, a, b) -> (b, a, kh, kw), for Conv2D and Conv2DTranspose kernels
FROM_TORCH = (2, 3, 1, 0)        # the inverse


def import_torch():
    """PyTorch, or an ImportError that says how to install it (``pip install -e '.[torch]'``)."""
    return require("torch", "the PyTorch twin")


def torch_name(scratch_name: str) -> str:
    """"enc1_conv1/kernel" -> "enc1_conv1.weight"; "/bias" -> ".bias"."""
    layer, weight = scratch_name.rsplit("/", 1)
    return f"{layer}.{'weight' if weight == 'kernel' else weight}"


def to_torch_array(name: str, value):
    """A scratch weight as PyTorch lays it out (a NumPy array; kernels transposed, biases as they are)."""
    value = np.asarray(value)
    return np.ascontiguousarray(value.transpose(TO_TORCH)) if name.endswith("/kernel") else value


def from_torch_array(name: str, value):
    """A PyTorch weight (array or tensor) in the scratch layout."""
    value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return np.ascontiguousarray(value.transpose(FROM_TORCH)) if name.endswith("/kernel") else value


def _check_shapes(model, state, source):
    for name, p in model.params.items():
        tname = torch_name(name)
        if tname not in state:
            raise ValueError(f"the models differ: the scratch model has {name} {tuple(p.shape)}, the PyTorch "
                             f"module no {tname!r}; build it with TorchUNet(**model.get_config())")
        want = tuple(p.shape[i] for i in TO_TORCH) if name.endswith("/kernel") else tuple(p.shape)
        if tuple(state[tname].shape) != want:
            raise ValueError(f"the models differ at the first mismatching weight: scratch model has {name} "
                             f"{tuple(p.shape)} (in PyTorch's layout {want}), {source} has {tname} "
                             f"{tuple(state[tname].shape)}; build both with the same arguments")
    extra = [k for k in state if k not in {torch_name(n) for n in model.params}]
    if extra:
        raise ValueError(f"the models differ: the PyTorch module has an extra weight {extra[0]!r}; build both "
                         f"with the same arguments")


def torch_outputs(module, model, x):
    """Run ``module`` once on x (NHWC NumPy) in eval mode and record, by forward hooks, the output of the
    submodule named like each scratch layer: {scratch layer name: NHWC array, "__input__": x}."""
    torch = import_torch()
    outs, handles = {}, []
    for layer in model.layers:
        def record(mod, inp, out, name=layer.name):
            outs[name] = out.detach().cpu().numpy().transpose(0, 2, 3, 1)
        handles.append(module.get_submodule(layer.name).register_forward_hook(record))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    outs["__input__"] = x
    return outs


def verify_torch_transfer(model, module, x=None):
    """One probe forward pass of both; ValueError naming the first layer whose output differs."""
    x = probe_input(model.input_shape, model.dtype) if x is None else np.asarray(x, dtype=model.dtype)
    _, outs_s = record_outputs(model, x)
    found = first_difference(model, torch_outputs(module, model, x), outs_s)
    if found is not None:
        name, what = found
        raise ValueError(f"the transfer does not reproduce the model: on a probe input the first layer whose "
                         f"output differs is {name}: {what}; build the module with "
                         f"TorchUNet(**model.get_config())")
    return True


def to_torch(model, module=None):
    """Copy a scratch :class:`UNet`'s weights into a PyTorch module (a :class:`TorchUNet` built with the same
    arguments if none is given), exactly, then verify it. Returns the module (in eval mode)."""
    torch = import_torch()
    from .torch_model import TorchUNet
    if module is None:
        module = TorchUNet(**model.get_config())
    state = module.state_dict()
    _check_shapes(model, state, "the PyTorch module")
    with torch.no_grad():
        for name, p in model.params.items():
            target = state[torch_name(name)]
            target.copy_(torch.from_numpy(to_torch_array(name, p)).to(target.dtype))
    module.eval()
    verify_torch_transfer(model, module)
    return module


def from_torch(module, model=None):
    """Copy a PyTorch module's weights into a scratch :class:`UNet`, exactly, then verify it.

    module: a :class:`TorchUNet` (its ``config`` rebuilds the scratch model when ``model`` is None), or any
    module whose submodules and weights carry the scratch names (then pass ``model``).
    """
    from ..model import UNet
    import_torch()
    if model is None:
        if not hasattr(module, "config"):
            raise ValueError("from_torch(module) needs a TorchUNet (it carries its config); for another module "
                             "pass the scratch model to fill: from_torch(module, model=UNet(...))")
        model = UNet(**module.config, seed=0)
    state = module.state_dict()
    _check_shapes(model, state, "the PyTorch module")
    model.set_weights({name: from_torch_array(name, state[torch_name(name)]) for name in model.params},
                      source="PyTorch module")
    verify_torch_transfer(model, module)
    return model
