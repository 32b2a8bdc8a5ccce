"""Stateful layers: thin wrappers that hold parameters, their gradients and the forward cache.

Every layer has the same small interface, with Keras's argument names:

    y  = layer(x, training=False)            # forward, then any forward hooks; builds weights on first call
    y  = layer.forward(x, training=False)    # the forward pass alone (no hooks)
    dx = layer.backward(dy)                  # fills layer.grads, returns the input gradient
    layer.params["kernel"], layer.params["bias"]   # assign to set weights (shape-checked)
    layer.grads["kernel"],  layer.grads["bias"]

The maths lives in ``unet_scratch.ops`` (or a faster backend with the same functions): a layer only
remembers what its op's backward needs.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .backend import device_of, get_array_module, to_device_array
from .checks import check_dropout_rate, normalize_pair, normalize_padding
from .initializers import get_initializer
from .ops.concat import crop2d, crop2d_backward

_ACTIVATIONS = (None, "linear", "relu", "sigmoid", "softmax")
_NO_CACHE = object()        # "forward has not run yet" (a cache itself may legitimately be None)


class ParamDict(dict):
    """A layer's weights. Assigning ``params[name] = array`` checks the name, shape and values, and keeps
    the weight on the device it is on: a NumPy array assigned to a GPU weight is copied to the GPU, a
    CuPy array assigned to a CPU weight is copied back (``layer.to(device)`` moves them)."""

    def __init__(self, layer):
        super().__init__()
        self._layer = layer

    def __setitem__(self, key, value):
        layer = self._layer
        if not layer.built:
            raise RuntimeError(f"layer {layer.name!r} has no weights yet: call layer.forward(x) or "
                               f"layer.build(input_shape) before assigning {key!r}")
        if key not in self:
            raise KeyError(f"layer {layer.name!r} has no parameter {key!r}; it has {sorted(self)}")
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            value = np.asarray(value)                       # lists, scalars: host arrays
        xp = get_array_module(value)                        # checked where the value is, NumPy or CuPy
        current = dict.__getitem__(self, key)
        expected = current.shape
        if tuple(value.shape) != tuple(expected):
            raise ValueError(f"{layer.name}/{key}: expected shape {expected}, got {tuple(value.shape)}"
                             + layer._layout_hint(key, tuple(value.shape)))
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"{layer.name}/{key}: weights must be floating point, got {value.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            new = xp.array(value, dtype=layer.dtype)
        if not bool(xp.isfinite(new).all()):
            raise ValueError(f"{layer.name}/{key}: the new weights hold {int(xp.isnan(new).sum())} NaN and "
                             f"{int(xp.isinf(new).sum())} Inf values (as {layer.dtype}); NaN or Inf weights come "
                             f"from a run that diverged: load an earlier checkpoint; nothing was assigned")
        dict.__setitem__(self, key, to_device_array(new, device_of(current)))

    def create(self, key, value):
        """Add (or replace) a weight as it is, without the setter's checks: for ``build`` and for moving
        a layer's weights between devices (the value may be a NumPy or a CuPy array)."""
        dict.__setitem__(self, key, value)


class Layer:
    """Base class: a name, ``params``/``grads`` dicts, and the input/output shapes seen at build time."""

    _counter: dict[str, int] = {}

    def __init__(self, name: str | None = None, dtype="float32"):
        if name is None:
            base = type(self).__name__.lower()
            Layer._counter[base] = Layer._counter.get(base, 0) + 1
            name = f"{base}_{Layer._counter[base]}"
        self.name = name
        self.dtype = np.dtype(dtype)
        self.params = ParamDict(self)
        self.grads: dict[str, np.ndarray] = {}
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._cache = _NO_CACHE
        self._hooks: dict[int, object] = {}

    # ------------------------------------------------------------------ calling, hooks, the cache
    def __call__(self, x, training=False, **kwargs):
        """``forward``, then each forward hook in the order registered (how the U-Net calls its layers)."""
        y = self.forward(x, training, **kwargs)
        for hook in list(self._hooks.values()):
            replaced = hook(self, x, y)
            if replaced is not None:
                y = self.replace_output(replaced)
        return y

    def register_forward_hook(self, hook):
        """Call ``hook(layer, x, y)`` after every ``layer(x)``; returns a function that removes it.

        A hook that returns ``None`` only observes (records activations, say). One that returns an array
        replaces the layer's output: the next layer receives it, and ``backward`` then runs as if this
        layer had produced it (see :meth:`replace_output`). ``parity.compare`` uses both kinds.
        """
        key = max(self._hooks, default=-1) + 1
        self._hooks[key] = hook

        def remove():
            self._hooks.pop(key, None)
        return remove

    def replace_output(self, y):
        """Make the last forward's output ``y``; layers whose backward depends on their own output
        (a fused ReLU's mask) rebuild that part of the cache from ``y``. Returns ``y``."""
        return y

    def clear_cache(self):
        """Forget the last forward pass (``backward`` then says so instead of using stale arrays)."""
        self._cache = _NO_CACHE

    def to(self, device: str):
        """Move the weights and gradients to ``device`` ("gpu": CuPy arrays, "cpu": NumPy) and forget the
        forward cache (it holds arrays of the old device). Returns the layer."""
        for name, value in list(self.params.items()):
            self.params.create(name, to_device_array(value, device))
        for name, value in list(self.grads.items()):
            if value is not None:
                self.grads[name] = to_device_array(value, device)
        self.clear_cache()
        return self

    def build(self, input_shape) -> tuple:
        """Create the weights for ``input_shape`` (N, H, W, C) and return the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def _layout_hint(self, key, shape) -> str:
        return ""

    def _check_built(self, x):
        if not self.built:
            self.build(x.shape)
        elif x.shape[-1] != self.input_shape[-1]:
            raise ValueError(f"layer {self.name!r} was built for {self.input_shape[-1]} input channels, "
                             f"got input of shape {tuple(x.shape)}")

    def _backward_cache(self):
        if self._cache is _NO_CACHE:
            raise RuntimeError(f"layer {self.name!r}: backward() called before forward()")
        return self._cache

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def _fused_conv_relu(ops):
    """The backend's ``conv2d_relu`` (relu(conv2d(...)) in one pass, returning (y, conv_cache, relu_cache); the
    Numba backend has one), or None: the NumPy reference has none, and ``use_ops`` replacing conv2d or relu
    must reach the replacement."""
    replaced = getattr(ops, "replacements", {})
    return None if "conv2d" in replaced or "relu" in replaced else getattr(ops, "conv2d_relu", None)


class _ConvBase(Layer):
    """Shared code of Conv2D and Conv2DTranspose: kernel, bias, fused activation."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 name=None, seed=None, dtype="float32"):
        super().__init__(name, dtype)
        if int(filters) < 1:
            raise ValueError(f"filters must be a positive int, got {filters}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.filters = int(filters)
        self.kernel_size = normalize_pair(kernel_size, "kernel_size")
        self.strides = normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)
        self.activation = None if activation == "linear" else activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = get_initializer(bias_initializer)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def _kernel_shape(self, in_channels) -> tuple:
        raise NotImplementedError

    def build(self, input_shape):
        shape = self._kernel_shape(int(input_shape[-1]))
        self.params.create("kernel", self.kernel_initializer(shape, self.rng, self.dtype))
        if self.use_bias:
            self.params.create("bias", self.bias_initializer((self.filters,), self.rng, self.dtype))
        return super().build(input_shape)

    def _activate(self, z):
        """Apply the fused activation; returns (y, cache)."""
        if self.activation is None:
            return z, None
        return getattr(self._ops, self.activation)(z)

    def _activate_backward(self, dy, cache):
        if self.activation is None:
            return dy
        return getattr(self._ops, self.activation + "_backward")(dy, cache)

    def forward(self, x, training=False, logits=False):
        """y = activation(conv(x) + b); with ``logits=True`` the pre-activation z = conv(x) + b, and
        backward then takes dL/dz (how a loss "from logits" skips the sigmoid or softmax)."""
        self._check_built(x)
        self._ops = backend.ops()
        fused = _fused_conv_relu(self._ops) if self.activation == "relu" and not logits and \
            isinstance(self, Conv2D) else None
        if fused is not None:                       # the backend applies the ReLU as it writes the output
            y, conv_cache, act_cache = fused(x, self.params["kernel"], self.params.get("bias"),
                                             self.strides, self.padding)
            self._cache = (conv_cache, act_cache, logits)
            return y
        z, conv_cache = self._op(x, self.params["kernel"], self.params.get("bias"),
                                 self.strides, self.padding)
        y, act_cache = (z, None) if logits else self._activate(z)
        self._cache = (conv_cache, act_cache, logits)
        return y

    def replace_output(self, y):
        """A fused ReLU takes its mask from the new output (relu(y) = y where y >= 0); the sigmoid's or
        softmax's cache stays the one this layer computed."""
        conv_cache, act_cache, logits = self._backward_cache()
        if self.activation == "relu" and not logits:
            act_cache = self._ops.relu(y)[1]
        self._cache = (conv_cache, act_cache, logits)
        return y

    def backward(self, dy):
        conv_cache, act_cache, logits = self._backward_cache()
        dz = dy if logits else self._activate_backward(dy, act_cache)
        dx, dw, db = self._op_backward(dz, conv_cache)
        self.grads["kernel"] = dw
        if self.use_bias:
            self.grads["bias"] = db
        return dx


class Conv2D(_ConvBase):
    """2-D cross-correlation, like ``keras.layers.Conv2D``. Kernel (KH, KW, C_in, filters).

    x: (N, H, W, C_in) -> y: (N, OH, OW, filters), OH = ceil(H / s) ('same') or (H - KH) // s + 1 ('valid').
    """

    def _kernel_shape(self, c):
        return (*self.kernel_size, c, self.filters)

    def _op(self, *args):
        return self._ops.conv2d(*args)

    def _op_backward(self, dz, cache):
        return self._ops.conv2d_backward(dz, cache)

    def compute_output_shape(self, s):
        from .ops.conv import conv_output_size
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        return (s[0], conv_output_size(s[1], kh, sh, self.padding),
                conv_output_size(s[2], kw, sw, self.padding), self.filters)


class Conv2DTranspose(_ConvBase):
    """Transposed convolution, like ``keras.layers.Conv2DTranspose``. Kernel (KH, KW, filters, C_in).

    x: (N, H, W, C_in) -> y: (N, OH, OW, filters), OH = H * s ('same') or H * s + max(KH - s, 0) ('valid').
    """

    def _kernel_shape(self, c):
        return (*self.kernel_size, self.filters, c)

    def _layout_hint(self, key, shape):
        if key == "kernel" and len(shape) == 4 and shape[2:] == self.params["kernel"].shape[:1:-1]:
            return ("; Conv2DTranspose kernels are (kh, kw, out, in) as in Keras: "
                    "transpose a (kh, kw, in, out) kernel with w.transpose(0, 1, 3, 2)")
        return ""

    def _op(self, *args):
        return self._ops.conv2d_transpose(*args)

    def _op_backward(self, dz, cache):
        return self._ops.conv2d_transpose_backward(dz, cache)

    def compute_output_shape(self, s):
        from .ops.conv_transpose import conv_transpose_output_size
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        return (s[0], conv_transpose_output_size(s[1], kh, sh, self.padding),
                conv_transpose_output_size(s[2], kw, sw, self.padding), self.filters)


class MaxPooling2D(Layer):
    """Max pooling, like ``keras.layers.MaxPooling2D``; the gradient goes to the first maximum."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", name=None, dtype="float32"):
        super().__init__(name, dtype)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def compute_output_shape(self, s):
        from .ops.conv import conv_output_size
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return (s[0], conv_output_size(s[1], ph, sh, self.padding),
                conv_output_size(s[2], pw, sw, self.padding), s[3])

    def forward(self, x, training=False):
        self._check_built(x)
        self._ops = backend.ops()
        y, self._cache = self._ops.maxpool2d(x, self.pool_size, self.strides, self.padding)
        return y

    def backward(self, dy):
        cache = self._backward_cache()
        return self._ops.maxpool2d_backward(dy, cache)


class UpSampling2D(Layer):
    """Nearest-neighbour up-sampling, like ``keras.layers.UpSampling2D(size)``: no weights.

    x: (N, H, W, C) -> y: (N, H * sh, W * sw, C); backward sums dy over each sh x sw block.
    zhixuhao's U-Net up-steps with it, followed by a 2x2 'same' Conv2D ("resize, then convolve").
    """

    def __init__(self, size=(2, 2), interpolation="nearest", name=None, dtype="float32"):
        super().__init__(name, dtype)
        if interpolation != "nearest":
            raise ValueError(f"UpSampling2D supports interpolation='nearest' only, got {interpolation!r}")
        self.size = normalize_pair(size, "size")
        self.interpolation = interpolation

    def compute_output_shape(self, s):
        return (s[0], s[1] * self.size[0], s[2] * self.size[1], s[3])

    def forward(self, x, training=False):
        self._check_built(x)
        self._ops = backend.ops()
        y, self._cache = self._ops.upsample2d(x, self.size)
        return y

    def backward(self, dy):
        cache = self._backward_cache()
        return self._ops.upsample2d_backward(dy, cache)


class Dropout(Layer):
    """Inverted dropout, like ``keras.layers.Dropout``: identity unless ``training=True``."""

    def __init__(self, rate, seed=None, name=None, dtype="float32"):
        super().__init__(name, dtype)
        self.rate = check_dropout_rate(rate)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def forward(self, x, training=False):
        self._check_built(x)
        self._ops = backend.ops()
        y, self._cache = self._ops.dropout(x, self.rate, self.rng, training)
        return y

    def backward(self, dy):
        cache = self._backward_cache()
        return self._ops.dropout_backward(dy, cache)


class Concatenate(Layer):
    """Concatenation along channels, like ``keras.layers.Concatenate``. forward takes a list."""

    def __init__(self, axis=-1, name=None, dtype="float32"):
        super().__init__(name, dtype)
        self.axis = axis

    def build(self, input_shapes):
        self.input_shape = [tuple(s) for s in input_shapes]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True
        return self.output_shape

    def compute_output_shape(self, shapes):
        out = list(shapes[0])
        out[self.axis] = sum(s[self.axis] for s in shapes)
        return tuple(out)

    def forward(self, xs, training=False):
        if not self.built:
            self.build([x.shape for x in xs])
        self._ops = backend.ops()
        y, self._cache = self._ops.concatenate(list(xs), self.axis)
        return y

    def backward(self, dy):
        """Returns one gradient per input: the concatenation's gradient is a split."""
        cache = self._backward_cache()
        return self._ops.concatenate_backward(dy, cache)


class Cropping2D(Layer):
    """Crop rows and columns, like ``keras.layers.Cropping2D(((top, bottom), (left, right)))``.

    The paper's valid U-Net centre-crops each skip to the decoder's size with it.
    """

    def __init__(self, cropping=((0, 0), (0, 0)), name=None, dtype="float32"):
        super().__init__(name, dtype)
        (t, b), (l, r) = cropping
        self.cropping = ((int(t), int(b)), (int(l), int(r)))

    def compute_output_shape(self, s):
        (t, b), (l, r) = self.cropping
        return (s[0], s[1] - t - b, s[2] - l - r, s[3])

    def forward(self, x, training=False):
        self._check_built(x)
        y, self._cache = crop2d(x, self.cropping)
        return y

    def backward(self, dy):
        """The gradient of a crop: dy pasted back into zeros of the input's shape."""
        return crop2d_backward(dy, self._backward_cache())
