"""NumPy reference ops: forward ``op(x, ...) -> (y, cache)`` and backward ``op_backward(dy, cache)``.

This module is the ``numpy`` backend: the readable reference that the Numba and CuPy kernels in
``unet_scratch.kernels`` must reproduce, function for function.
"""
from .activations import (relu, relu_backward, sigmoid, sigmoid_backward, softmax,  # noqa: F401
                          softmax_backward)
from .concat import (center_crop, center_crop_backward, concatenate, concatenate_backward,  # noqa: F401
                     crop2d, crop2d_backward, crop_amounts)
from .conv import (col2im, conv2d, conv2d_backward, conv2d_backward_naive, conv2d_naive,  # noqa: F401
                   conv_output_size, im2col, padding_amounts)
from .conv_transpose import (conv2d_transpose, conv2d_transpose_backward,  # noqa: F401
                             conv2d_transpose_naive, conv_transpose_output_size)
from .dropout import dropout, dropout_backward  # noqa: F401
from .pool import maxpool2d, maxpool2d_backward, maxpool2d_backward_naive, maxpool2d_naive  # noqa: F401
from .upsample import (upsample2d, upsample2d_backward, upsample2d_backward_naive,  # noqa: F401
                       upsample2d_naive)
