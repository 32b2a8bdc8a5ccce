"""The U-Net of the source article (Keras's classic U-Net) and of Ronneberger et al. 2015, from scratch.

With the defaults this is exactly the article's Keras model: 64-128-256-512-1024 filters, two 3x3
same-padded ReLU convs per level, 2x2 max-pool, dropout 0.5 after the deepest encoder block and after the
bottleneck, 2x2 stride-2 transposed convs, concatenation skips ``[up, skip]``, a 1x1 sigmoid head;
31,030,593 parameters for one input channel. ``padding="valid"`` gives the paper's network
(572 x 572 -> 388 x 388, skips centre-cropped by 4, 16, 40 and 88 pixels per side).

Four poolings and no fully connected layer: the article's diagrams (five poolings into a dense layer) are
wrong, and this code follows the paper.

Three options give zhixuhao/unet's ``model.py`` (the most-forked Keras U-Net, whose layout the article
follows): ``upsampling="resize_conv"`` (UpSampling2D then a 2x2 'same' ReLU conv), ``concat_order="skip_first"``
(``concatenate([skip, up])``) and ``head_hidden=2`` (a 3x3 ReLU conv with 2 filters before the 1x1 head), with
``kernel_initializer="he_normal"``.
"""
from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from .backend import backend_device, device_of, get_array_module, get_backend, to_numpy
from .checks import check_image_batch, check_unet_size, normalize_padding
from .layers import Concatenate, Conv2D, Conv2DTranspose, Cropping2D, Dropout, MaxPooling2D, UpSampling2D
from .ops.concat import crop_amounts
from .serialization import array_to_config, atomic_savez, config_to_array, load_npz

UPSAMPLINGS = ("transpose", "resize_conv")      # Conv2DTranspose(f, 2, strides=2) | UpSampling2D + Conv2D(f, 2)
CONCAT_ORDERS = ("up_first", "skip_first")      # concatenate([up, skip]) (the article) | ([skip, up]) (zhixuhao)
# the options that are written into get_config() only when they differ from these (the article's model)
OPTION_DEFAULTS = dict(upsampling="transpose", concat_order="up_first", head_hidden=0)


class EncoderBlock:
    """One level of the contracting path: conv 3x3 -> ReLU, twice, (dropout), then 2x2 max-pool.

    forward(x) returns (skip, pooled): the skip goes across to the decoder, the pooled map goes down.
    """

    def __init__(self, level, filters, padding, dropout, kernel_initializer, rng, dtype):
        conv = dict(kernel_size=3, padding=padding, activation="relu",
                    kernel_initializer=kernel_initializer, seed=rng, dtype=dtype)
        self.conv1 = Conv2D(filters, name=f"enc{level}_conv1", **conv)
        self.conv2 = Conv2D(filters, name=f"enc{level}_conv2", **conv)
        self.drop = Dropout(dropout, seed=int(rng.integers(2**63)), name=f"enc{level}_drop",
                            dtype=dtype) if dropout else None
        self.pool = MaxPooling2D(2, name=f"enc{level}_pool", dtype=dtype)

    @property
    def layers(self):
        return [l for l in (self.conv1, self.conv2, self.drop, self.pool) if l is not None]

    def forward(self, x, training=False):
        h = self.conv2(self.conv1(x))
        if self.drop is not None:
            h = self.drop(h, training)
        return h, self.pool(h)

    def backward(self, dpooled, dskip):
        # The skip's gradient (from the decoder) joins the gradient coming up the contracting path.
        dh = self.pool.backward(dpooled) + dskip
        if self.drop is not None:
            dh = self.drop.backward(dh)
        return self.conv1.backward(self.conv2.backward(dh))


class Bottleneck:
    """The bottom of the U: two 3x3 ReLU convs at the widest level, then dropout."""

    def __init__(self, filters, padding, dropout, kernel_initializer, rng, dtype):
        conv = dict(kernel_size=3, padding=padding, activation="relu",
                    kernel_initializer=kernel_initializer, seed=rng, dtype=dtype)
        self.conv1 = Conv2D(filters, name="bottleneck_conv1", **conv)
        self.conv2 = Conv2D(filters, name="bottleneck_conv2", **conv)
        self.drop = Dropout(dropout, seed=int(rng.integers(2**63)), name="bottleneck_drop",
                            dtype=dtype) if dropout else None

    @property
    def layers(self):
        return [l for l in (self.conv1, self.conv2, self.drop) if l is not None]

    def forward(self, x, training=False):
        h = self.conv2(self.conv1(x))
        return self.drop(h, training) if self.drop is not None else h

    def backward(self, dy):
        if self.drop is not None:
            dy = self.drop.backward(dy)
        return self.conv1.backward(self.conv2.backward(dy))


class DecoderBlock:
    """One level of the expanding path: up-step, (crop the skip), concatenate, then conv 3x3 -> ReLU twice.

    The up-step doubles the size and sets the channels to ``filters``: a 2x2 stride-2 transposed conv
    ("transpose", the article) or nearest up-sampling then a 2x2 'same' ReLU conv ("resize_conv",
    zhixuhao's). The concatenation is ``[up, skip]`` ("up_first") or ``[skip, up]`` ("skip_first").
    """

    def __init__(self, level, filters, padding, kernel_initializer, rng, dtype, upsampling="transpose",
                 concat_order="up_first"):
        if upsampling == "transpose":
            self.upsample = None
            self.upconv = Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"dec{level}_upconv",
                                          kernel_initializer=kernel_initializer, seed=rng, dtype=dtype)
        else:
            self.upsample = UpSampling2D(2, name=f"dec{level}_upsample", dtype=dtype)
            self.upconv = Conv2D(filters, 2, padding="same", activation="relu", name=f"dec{level}_upconv",
                                 kernel_initializer=kernel_initializer, seed=rng, dtype=dtype)
        self.skip_first = concat_order == "skip_first"
        self.crop = None          # a Cropping2D for valid padding, made at build time
        self.concat = Concatenate(name=f"dec{level}_concat", dtype=dtype)
        conv = dict(kernel_size=3, padding=padding, activation="relu",
                    kernel_initializer=kernel_initializer, seed=rng, dtype=dtype)
        self.conv1 = Conv2D(filters, name=f"dec{level}_conv1", **conv)
        self.conv2 = Conv2D(filters, name=f"dec{level}_conv2", **conv)
        self.level, self.dtype = level, dtype

    @property
    def layers(self):
        return [l for l in (self.upsample, self.upconv, self.crop, self.concat, self.conv1, self.conv2)
                if l is not None]

    def build(self, x_shape, skip_shape):
        if self.upsample is not None:
            x_shape = self.upsample.build(x_shape)
        up_shape = self.upconv.build(x_shape)
        if up_shape[1:3] != skip_shape[1:3]:
            cropping = crop_amounts(skip_shape[1], skip_shape[2], up_shape[1], up_shape[2])
            self.crop = Cropping2D(cropping, name=f"dec{self.level}_crop", dtype=self.dtype)
            skip_shape = self.crop.build(skip_shape)
        shape = self.concat.build([skip_shape, up_shape] if self.skip_first else [up_shape, skip_shape])
        return self.conv2.build(self.conv1.build(shape))

    def forward(self, x, skip):
        up = self.upconv(x if self.upsample is None else self.upsample(x))
        if self.crop is not None:
            skip = self.crop(skip)
        h = self.concat([skip, up] if self.skip_first else [up, skip])
        return self.conv2(self.conv1(h))

    def backward(self, dy):
        """Returns (dx, dskip): the concatenation's gradient splits into the up-step's and the skip's."""
        dh = self.conv1.backward(self.conv2.backward(dy))
        parts = self.concat.backward(dh)
        dskip, dup = parts if self.skip_first else parts[::-1]
        if self.crop is not None:
            dskip = self.crop.backward(dskip)
        dx = self.upconv.backward(dup)
        if self.upsample is not None:
            dx = self.upsample.backward(dx)
        return dx, dskip


class UNet:
    """U-Net with explicit forward and backward passes.

    input_shape: (H, W, C) used to build the weights and the summary; any legal size runs later.
    base_filters: filters at the first level, doubled at each level down (64 -> 1024 for depth 4).
    depth: number of poolings. padding: "same" (the article) or "valid" (the paper).
    dropout: rate after the deepest encoder block and the bottleneck (0 or None: no dropout layers).
    out_channels, out_activation: the 1x1 head ("sigmoid", "softmax" or None for logits).
    kernel_initializer: "glorot_uniform" (Keras's default) or "he_normal" (the paper's).
    skip_connections: False cuts the skips for experiments (chapter 04): the decoder receives zeros in
    their place and no gradient goes back across, with the same layers and parameters as the real U-Net.
    upsampling: "transpose" (Conv2DTranspose(f, 2, strides=2, padding='same'), the article) or
    "resize_conv" (UpSampling2D(2), nearest, then Conv2D(f, 2, activation='relu', padding='same'):
    zhixuhao/unet's resize-then-convolve, free of the transposed conv's checkerboard pattern).
    concat_order: "up_first" (``concatenate([up, skip])``, the article) or "skip_first" (``[skip, up]``,
    zhixuhao's); the same numbers either way except that the next conv's kernel rows are swapped.
    head_hidden: 0 (the article) or the filters of an extra Conv2D(head_hidden, 3, activation='relu')
    (padding as the model's) before the 1x1 head; zhixuhao's model has 2.
    zhixuhao's model: ``UNet(kernel_initializer="he_normal", upsampling="resize_conv",
    concat_order="skip_first", head_hidden=2)``. The three options enter ``get_config()`` only when they
    differ from the article's, so the article's configuration (and every file saved with it) is unchanged.

    x: (N, H, W, C) -> y: (N, H, W, out_channels) for "same"; (N, H - 184, W - 184, out) for "valid", depth 4.
    """

    def __init__(self, input_shape=(256, 256, 1), base_filters=64, depth=4, padding="same", dropout=0.5,
                 out_channels=1, out_activation="sigmoid", kernel_initializer="glorot_uniform",
                 seed=None, dtype="float32", skip_connections=True, upsampling="transpose",
                 concat_order="up_first", head_hidden=0):
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
        for label, v, hint in (("input_shape's height", input_shape[0], ""), ("input_shape's width", input_shape[1], ""),
                               ("input_shape's channels", input_shape[2], " (1 for grey images, 3 for RGB)"),
                               ("base_filters", base_filters, " (64 in the article)"),
                               ("depth", depth, " (the number of poolings, 4 in the article)"),
                               ("out_channels", out_channels, " (1 for a sigmoid head, 2 for the paper's)")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{label} must be a positive integer, got {v!r}{hint}; nothing is rounded")
        padding = normalize_padding(padding)
        options = check_unet_options(upsampling, concat_order, head_hidden)
        self.config = dict(input_shape=[int(s) for s in input_shape], base_filters=int(base_filters),
                           depth=int(depth), padding=padding, dropout=float(dropout or 0.0),
                           out_channels=int(out_channels), out_activation=out_activation,
                           kernel_initializer=kernel_initializer, dtype=str(np.dtype(dtype)))
        if not skip_connections:
            self.config["skip_connections"] = False     # only when cut: the article's config is unchanged
        self.config.update({k: v for k, v in options.items() if v != OPTION_DEFAULTS[k]})
        self.skip_connections = bool(skip_connections)
        self.depth, self.padding, self.dtype = int(depth), padding, np.dtype(dtype)
        self.input_shape = tuple(int(s) for s in input_shape)
        rng = np.random.default_rng(seed)
        f = [int(base_filters) * 2 ** i for i in range(self.depth + 1)]
        init = kernel_initializer
        self.encoder = [EncoderBlock(i + 1, f[i], padding, dropout if i == self.depth - 1 else 0, init,
                                     rng, dtype) for i in range(self.depth)]
        self.bottleneck = Bottleneck(f[-1], padding, dropout, init, rng, dtype)
        self.decoder = [DecoderBlock(i + 1, f[i], padding, init, rng, dtype, options["upsampling"],
                                     options["concat_order"]) for i in reversed(range(self.depth))]
        self.head_hidden = None
        if options["head_hidden"]:
            self.head_hidden = Conv2D(options["head_hidden"], 3, padding=padding, activation="relu",
                                      name="head_hidden", kernel_initializer=init, seed=rng, dtype=dtype)
        self.head = Conv2D(out_channels, 1, activation=out_activation, name="head",
                           kernel_initializer=init, seed=rng, dtype=dtype)
        self._build((None, *self.input_shape))

    def _build(self, shape):
        check_unet_size(shape[1], shape[2], self.depth, self.padding)
        skips = []
        for block in self.encoder:
            shape = block.conv2.build(block.conv1.build(shape))
            if block.drop is not None:
                block.drop.build(shape)
            skips.append(shape)
            shape = block.pool.build(shape)
        shape = self.bottleneck.conv2.build(self.bottleneck.conv1.build(shape))
        if self.bottleneck.drop is not None:
            self.bottleneck.drop.build(shape)
        for block, skip in zip(self.decoder, reversed(skips)):
            shape = block.build(shape, skip)
        if self.head_hidden is not None:
            shape = self.head_hidden.build(shape)
        self.output_shape = self.head.build(shape)

    # ------------------------------------------------------------------ the two passes
    def forward(self, x, training=False, logits=False):
        """x: (N, H, W, C) float images -> y: (N, H', W', out_channels). Caches what backward needs.

        training=True turns dropout on. logits=True returns the head's pre-activation z (before the
        sigmoid/softmax); backward(dz) then expects dL/dz, as a loss computed from logits gives it.
        """
        x = self._check_input(x)
        skips = []
        h = x
        for block in self.encoder:
            skip, h = block.forward(h, training)
            skips.append(skip if self.skip_connections else get_array_module(skip).zeros_like(skip))
        h = self.bottleneck.forward(h, training)
        for block, skip in zip(self.decoder, reversed(skips)):
            h = block.forward(h, skip)
        if self.head_hidden is not None:
            h = self.head_hidden(h)
        y = self.head(h, logits=logits)
        self._output_shape_seen = tuple(y.shape)     # what backward's dy must look like
        return y

    def backward(self, dy):
        """dy: dL/dy shaped like the output -> dL/dx; fills every layer's grads."""
        if getattr(self, "_output_shape_seen", None) is not None:
            from .checks import check_dy_shape
            check_dy_shape(dy, self._output_shape_seen, "the shape of the last forward's output")
        dh = self.head.backward(dy)
        if self.head_hidden is not None:
            dh = self.head_hidden.backward(dh)
        dskips = []
        for block in reversed(self.decoder):          # shallowest first: dskips in encoder order 1..depth
            dh, dskip = block.backward(dh)
            dskips.append(dskip if self.skip_connections else get_array_module(dskip).zeros_like(dskip))
        dh = self.bottleneck.backward(dh)
        for block, dskip in zip(reversed(self.encoder), reversed(dskips)):
            dh = block.backward(dh, dskip)
        return dh

    def __call__(self, x, training=False):
        return self.forward(x, training)

    def _check_input(self, x):
        where, mine = device_of(x), self.device
        if mine != backend_device():
            fix = "set_backend('cupy')" if mine == "gpu" else "set_backend('numpy') or 'numba'"
            raise RuntimeError(f"this model's weights are on the {mine.upper()} but the backend "
                               f"{get_backend()!r} computes on the {backend_device().upper()}: {fix}, or move "
                               f"the model with model.to({backend_device()!r})")
        if where != mine:
            fix = ("pass cupy.asarray(x)" if mine == "gpu" else "pass cupy.asnumpy(x)")
            raise TypeError(f"x is a {'CuPy' if where == 'gpu' else 'NumPy'} array ({where}) but this model's "
                            f"weights are on the {mine.upper()}: {fix}, or move the model with "
                            f"model.to({where!r}); fit, evaluate, predict and predict_tiled move the data "
                            f"for you")
        # On the GPU the NaN/Inf scan would wait for the device on every forward: the data is scanned on
        # the host instead, where fit, evaluate and predict take it in (a NaN input still reaches the loss).
        x = check_image_batch(x, channels=self.input_shape[-1], finite=mine == "cpu")
        check_unet_size(x.shape[1], x.shape[2], self.depth, self.padding)
        return x.astype(self.dtype, copy=False)

    # ------------------------------------------------------------------ devices
    @property
    def device(self) -> str:
        """Where the weights are: "cpu" (NumPy arrays) or "gpu" (CuPy arrays)."""
        return device_of(self.head.params["kernel"])

    def to(self, device: str):
        """Move every weight and gradient to ``device``, "gpu" (CuPy) or "cpu" (NumPy); returns the model.

        The weights stay there through every later ``load_weights``, ``set_weights``, ``load_checkpoint``,
        ``fit(resume=...)`` and ``from_keras(..., model=...)``: assigning a weight copies the new values to
        the device the weight is on. Forward caches are dropped (they hold arrays of the old device).
        Select the matching backend for the ops: ``set_backend("cupy")`` for "gpu" (``fit`` and the command
        line's ``train --backend cupy`` do both).
        """
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        if device == "gpu":
            try:
                import cupy  # noqa: F401
            except ImportError as err:
                raise RuntimeError("moving a model to the GPU needs CuPy and a CUDA GPU: pip install -e "
                                   "'.[gpu-cuda12]' (or '.[gpu-cuda13]' for a CUDA 13 driver)") from err
        for layer in self.layers:
            layer.to(device)
        return self

    # ------------------------------------------------------------------ parameters
    @property
    def layers(self):
        """All layers in the order Keras creates them."""
        out = [l for b in self.encoder for l in b.layers] + self.bottleneck.layers
        out += [l for b in self.decoder for l in b.layers]
        return out + [l for l in (self.head_hidden, self.head) if l is not None]

    @property
    def params(self):
        """Ordered mapping "layer/weight" -> array (the layers' own arrays; assignment is checked)."""
        return _ParamView(self, "params")

    @property
    def grads(self):
        """Ordered mapping "layer/weight" -> gradient array from the last backward()."""
        return _ParamView(self, "grads")

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def summary_rows(self):
        """[(layer name, layer type, output shape, parameter count), ...] as in Keras's summary."""
        return [(l.name, type(l).__name__, l.output_shape, l.count_params()) for l in self.layers]

    def summary(self, print_fn=print):
        """Print a table like ``keras.Model.summary()`` and return it as a string."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        rows += [(f"{n} ({t})", str(s), f"{p:,}") for n, t, s, p in self.summary_rows()]
        w0, w1 = max(len(r[0]) for r in rows) + 2, max(len(r[1]) for r in rows) + 2
        line = "-" * (w0 + w1 + 12)
        text = [f"UNet (depth {self.depth}, padding {self.padding!r}): "
                f"{self.input_shape} -> {self.output_shape[1:]}", line]
        text += [f"{a:<{w0}}{b:<{w1}}{c:>10}" for a, b, c in rows[:1]] + [line]
        text += [f"{a:<{w0}}{b:<{w1}}{c:>10}" for a, b, c in rows[1:]]
        text += [line, f"Total params: {self.count_params():,}"]
        text = "\n".join(text)
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self) -> dict:
        return dict(self.config)

    # ------------------------------------------------------------------ saving
    def save_weights(self, path):
        """Save every parameter and the architecture to an .npz, atomically (a crash keeps the old file)."""
        arrays = {name: to_numpy(p) for name, p in self.params.items()}
        arrays["__config__"] = config_to_array(self.get_config())
        return atomic_savez(path, arrays)

    def load_weights(self, path):
        """Load weights saved by :meth:`save_weights`. Checks every name and shape before assigning any."""
        data = load_npz(path)
        source = f"weights file {str(path)!r}"
        saved_config = array_to_config(data.pop("__config__"), source) if "__config__" in data else None
        data = {k: v for k, v in data.items() if not k.startswith("__")}     # e.g. __generation__
        self.set_weights(data, source=source, saved_config=saved_config)

    def set_weights(self, weights: dict, source="weights", saved_config=None):
        """Assign a dict "layer/weight" -> array after checking that it matches this model exactly."""
        problems = []
        mine = self.params
        for name, p in mine.items():
            if name not in weights:
                problems.append(f"{name}: missing (model has shape {p.shape})")
            elif tuple(weights[name].shape) != p.shape:
                problems.append(f"{name}: shape {tuple(weights[name].shape)} in {source}, "
                                f"{p.shape} in this model")
        problems += [f"{name}: not in this model" for name in weights if name not in mine]
        if problems:
            cfg = ""
            if saved_config is not None:
                diff = {k: (v, self.config.get(k)) for k, v in saved_config.items()
                        if self.config.get(k) != v}
                if diff:
                    cfg = "; saved with " + ", ".join(f"{k}={v[0]!r} (this model: {v[1]!r})"
                                                      for k, v in diff.items())
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ValueError(f"{source} does not match this model's architecture: "
                             + "; ".join(problems[:5]) + more + cfg
                             + ". Build the model with the same arguments as the one that was saved; "
                             "nothing was loaded")
        values = {}                        # dtype and values checked for every tensor before any is assigned
        for name in mine:
            w = to_numpy(weights[name])
            if w.dtype == bool or not np.issubdtype(w.dtype, np.floating):
                problems.append(f"{name}: dtype {w.dtype} (weights must be floating point)")
                continue
            with np.errstate(over="ignore", invalid="ignore"):
                values[name] = w.astype(self.dtype, copy=False)
            bad = int(np.size(values[name]) - np.count_nonzero(np.isfinite(values[name])))
            if bad:
                beyond = np.all(np.isfinite(w))
                problems.append(f"{name}: {bad} NaN or Inf values" + (f" after conversion to {self.dtype} "
                                                                     "(values beyond its range)" if beyond else ""))
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ValueError(f"{source} holds weights this model cannot use: " + "; ".join(problems[:5]) + more
                             + ". NaN or Inf weights come from a run that diverged: load an earlier checkpoint "
                             "or retrain with a lower learning rate; nothing was loaded")
        for name in mine:
            mine[name] = values[name]


def check_unet_options(upsampling, concat_order, head_hidden) -> dict:
    """The decoder/head options, checked: {"upsampling", "concat_order", "head_hidden"}."""
    head_hidden = 0 if head_hidden is None else head_hidden
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"upsampling must be 'transpose' (Conv2DTranspose 2x2 stride 2, the article) or "
                         f"'resize_conv' (UpSampling2D then a 2x2 conv, zhixuhao's), got {upsampling!r}")
    if concat_order not in CONCAT_ORDERS:
        raise ValueError(f"concat_order must be 'up_first' (concatenate([up, skip]), the article) or "
                         f"'skip_first' (concatenate([skip, up]), zhixuhao's), got {concat_order!r}")
    if isinstance(head_hidden, bool) or not isinstance(head_hidden, (int, np.integer)) or head_hidden < 0:
        raise ValueError(f"head_hidden must be 0 (no extra conv before the 1x1 head) or a positive number of "
                         f"filters (zhixuhao's model: 2), got {head_hidden!r}")
    return dict(upsampling=upsampling, concat_order=concat_order, head_hidden=int(head_hidden))


class _ParamView(MutableMapping):
    """A live, ordered mapping over the layers' params or grads, keyed "layer/weight"."""

    def __init__(self, model, attr):
        self._model, self._attr = model, attr

    def _index(self):
        return {f"{l.name}/{k}": (l, k) for l in self._model.layers for k in getattr(l, self._attr)}

    def __getitem__(self, name):
        index = self._index()
        if name not in index:
            raise KeyError(f"no parameter {name!r}; names look like 'enc1_conv1/kernel'")
        layer, key = index[name]
        return getattr(layer, self._attr)[key]

    def __setitem__(self, name, value):
        if self._attr != "params":
            raise TypeError("gradients are read-only; they are filled by backward()")
        index = self._index()
        if name not in index:
            raise KeyError(f"no parameter {name!r}; names look like 'enc1_conv1/kernel'")
        layer, key = index[name]
        layer.params[key] = value

    def __delitem__(self, name):
        raise TypeError("a model's parameters cannot be deleted")

    def __iter__(self):
        return iter(self._index())

    def __len__(self):
        return len(self._index())

    def __contains__(self, name):
        return name in self._index()

    def items(self):
        """[(name, array), ...] in layer order, looked up once (O(L), not O(L^2) as Mapping's default)."""
        return [(n, getattr(l, self._attr)[k]) for n, (l, k) in self._index().items()]

    def values(self):
        return [getattr(l, self._attr)[k] for l, k in self._index().values()]

    def __repr__(self):
        return "{" + ", ".join(f"{n!r}: {v.shape}" for n, v in self.items()) + "}"
