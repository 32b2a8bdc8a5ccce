"""Check functions for the chapters' exercises, one module per chapter (``exercises.ch01`` for chapter 01).

Each check runs a student's function on several cases and says what is wrong (an AssertionError with the
case and the expected answer), or prints that it is right. See ``exercises.base``. The messages are in
Chinese in the Chinese edition (``notebooks/zh/``, or ``UNET_SCRATCH_LANG=zh``) and in English elsewhere:
:func:`language`.
"""
from .base import LANG_VARIABLE, Mistake, check_arrays, check_cases, error_bound, language, message, tr
from .ch00 import check_conv_params, check_pixel_patches, check_same_unet_sizes
