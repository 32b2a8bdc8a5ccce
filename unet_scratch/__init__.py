"""unet-scratch: a U-Net built by hand in NumPy, accelerated with Numba and CuPy, checked against Keras.

    from unet_scratch import UNet, set_backend
    model = UNet()                      # the source article's model: 31,030,593 parameters
    y = model.forward(x)                # x: (N, H, W, 1) float32
    dx = model.backward(dy)             # fills model.grads
"""
__version__ = "0.1.0"

from .backend import get_backend, set_backend, use_backend  # noqa: E402,F401
from .model import UNet  # noqa: E402,F401

__all__ = ["UNet", "set_backend", "get_backend", "use_backend", "__version__"]
