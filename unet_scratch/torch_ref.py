"""The PyTorch twin: the same U-Net as an ``nn.Module``, exact weight copies both ways, and parity checks.

One import for everything on the PyTorch side (implemented in :mod:`unet_scratch.frameworks`)::

    from unet_scratch.torch_ref import TorchUNet, to_torch, from_torch, compare_torch, lockstep_torch

    module = to_torch(model)                  # a TorchUNet holding the scratch weights (NCHW, (out, in, kh, kw))
    report = compare_torch(model, module, x)  # per layer, teacher-forced gradients, as keras_ref.compare
    back = from_torch(module)                 # and back, bit for bit

PyTorch is an optional extra (``pip install -e '.[torch]'``; a CPU-only wheel: ``pip install torch==2.13.0
--index-url https://download.pytorch.org/whl/cpu``). It is imported only when a function needs it, so this
module imports without it, and each function then says what to install.
"""
from .frameworks.torch_parity import compare_torch, keras_adam_in_torch, lockstep_torch
from .frameworks.torch_transfer import from_torch, import_torch, to_torch, torch_outputs, verify_torch_transfer

__all__ = ["import_torch", "TorchUNet", "to_torch", "from_torch", "torch_outputs", "verify_torch_transfer",
           "compare_torch", "lockstep_torch", "keras_adam_in_torch"]


def __getattr__(name):
    """``TorchUNet`` is an ``nn.Module``: its module needs PyTorch, so it is imported on first use."""
    if name == "TorchUNet":
        import_torch()
        from .frameworks.torch_model import TorchUNet
        return TorchUNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
