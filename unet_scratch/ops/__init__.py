"""NumPy reference ops: forward ``op(x, ...) -> (y, cache)`` and backward ``op_backward(dy, cache)``."""
