"""The same U-Net in PyTorch: an ``nn.Module`` with the scratch model's options and layer names.

Layouts (what the transfer converts):

    scratch / Keras                        PyTorch
    x       (N, H, W, C)       NHWC        (N, C, H, W)       NCHW       x.transpose(0, 3, 1, 2)
    Conv2D kernel  (kh, kw, in, out)  HWIO  Conv2d weight  (out, in, kh, kw)  w.transpose(3, 2, 0, 1)
    Conv2DTranspose kernel (kh, kw, out, in)  ConvTranspose2d weight (in, out, kh, kw)  w.transpose(3, 2, 0, 1)
    bias    (out,)                            (out,)

(the same permutation for both kernels, because Keras stores the transposed kernel (kh, kw, out, in) and
PyTorch (in, out, kh, kw): in both frameworks the transposed conv's kernel is the forward conv's kernel with
"in" and "out" read the other way round.)

Every layer of the scratch model is a submodule here under the same name (``enc1_conv1``, ``dec4_upsample``,
``dec4_concat``, ``head`` ...), so ``module.get_submodule(name)`` finds the twin of ``model.layers[i]`` and a
forward hook records its output; the weights are ``enc1_conv1.weight``, ``enc1_conv1.bias``, ... Padding is
written out: a 'same' conv pads (k - 1) // 2 pixels before and the rest after (TensorFlow's rule; for the
even 2x2 kernel of zhixuhao's up-step that is 0 before and 1 after, where ``nn.Conv2d(padding=k // 2)``
would pad 1 on both sides and return one pixel more).

Importing this module needs PyTorch (``pip install -e '.[torch]'``); :mod:`unet_scratch.torch_ref` imports
it only when a function needs it.
"""
from __future__ import annotations

from ..model import OPTION_DEFAULTS, check_unet_options
from ..ops.concat import crop_amounts
from ..optional import require

torch = require("torch", "the PyTorch twin (unet_scratch.torch_ref)")
nn = torch.nn
F = torch.nn.functional


def activate(z, activation):
    """The fused activation of a conv: "relu", "sigmoid", "softmax" (over channels, dim 1) or None."""
    if activation == "relu":
        return F.relu(z)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    if activation == "softmax":
        return torch.softmax(z, dim=1)
    return z


class ConvAct(nn.Conv2d):
    """``nn.Conv2d`` with Keras's padding rule and a fused activation, like ``keras.layers.Conv2D``.

    x: (N, C_in, H, W) -> y: (N, out, H', W'); weight (out, in, kh, kw). A forward hook sees the activated
    output, as the scratch layer's and the Keras layer's do.
    """

    def __init__(self, in_channels, out_channels, kernel_size, padding="same", activation=None):
        super().__init__(in_channels, out_channels, kernel_size, padding=0)
        k = self.kernel_size[0]
        before = (k - 1) // 2 if padding == "same" else 0
        after = (k - 1 - before) if padding == "same" else 0
        self.pads = (before, after, before, after)           # F.pad order: left, right, top, bottom
        self.activation = activation

    def forward(self, x, logits=False):
        z = super().forward(F.pad(x, self.pads) if any(self.pads) else x)
        return z if logits else activate(z, self.activation)


class Concat(nn.Module):
    """Channel concatenation of the up-step and the skip: ``[up, skip]`` or ``[skip, up]`` (dim 1)."""

    def __init__(self, skip_first=False):
        super().__init__()
        self.skip_first = skip_first

    def forward(self, up, skip):
        return torch.cat([skip, up] if self.skip_first else [up, skip], dim=1)


class CenterCrop(nn.Module):
    """Crop a skip (N, C, H, W) to the up-step's size, centred as :func:`unet_scratch.ops.concat.crop_amounts`."""

    def forward(self, skip, like):
        (t, b), (l, r) = crop_amounts(skip.shape[2], skip.shape[3], like.shape[2], like.shape[3])
        return skip[:, :, t:skip.shape[2] - b, l:skip.shape[3] - r]


class TorchUNet(nn.Module):
    """The scratch :class:`unet_scratch.UNet` in PyTorch, built from the same arguments (``**model.get_config()``).

    x: (N, C, H, W) -> y: (N, out_channels, H', W'). Same options (padding, dropout, upsampling,
    concat_order, head_hidden, skip_connections) and layer names; ``layer_names`` lists them in the scratch
    model's order. The initial weights are PyTorch's own (``kernel_initializer`` and ``seed`` are accepted
    for the config's sake and not used): copy a scratch model's with :func:`to_torch`.
    """

    def __init__(self, input_shape=(256, 256, 1), base_filters=64, depth=4, padding="same", dropout=0.5,
                 out_channels=1, out_activation="sigmoid", kernel_initializer="glorot_uniform", seed=None,
                 dtype="float32", skip_connections=True, upsampling="transpose", concat_order="up_first",
                 head_hidden=0):
        super().__init__()
        options = check_unet_options(upsampling, concat_order, head_hidden)
        self.config = dict(input_shape=[int(s) for s in input_shape], base_filters=int(base_filters),
                           depth=int(depth), padding=padding, dropout=float(dropout or 0.0),
                           out_channels=int(out_channels), out_activation=out_activation,
                           kernel_initializer=kernel_initializer, dtype=str(dtype))
        if not skip_connections:
            self.config["skip_connections"] = False
        self.config.update({k: v for k, v in options.items() if v != OPTION_DEFAULTS[k]})
        self.depth, self.skip_connections = int(depth), bool(skip_connections)
        self.upsampling, self.head_hidden_filters = options["upsampling"], options["head_hidden"]
        self.layer_names = []
        f = [int(base_filters) * 2 ** i for i in range(self.depth + 1)]
        c = int(input_shape[-1])
        for i in range(1, self.depth + 1):
            self._add(f"enc{i}_conv1", ConvAct(c, f[i - 1], 3, padding, "relu"))
            self._add(f"enc{i}_conv2", ConvAct(f[i - 1], f[i - 1], 3, padding, "relu"))
            if dropout and i == self.depth:
                self._add(f"enc{i}_drop", nn.Dropout(dropout))
            self._add(f"enc{i}_pool", nn.MaxPool2d(2))
            c = f[i - 1]
        self._add("bottleneck_conv1", ConvAct(c, f[-1], 3, padding, "relu"))
        self._add("bottleneck_conv2", ConvAct(f[-1], f[-1], 3, padding, "relu"))
        if dropout:
            self._add("bottleneck_drop", nn.Dropout(dropout))
        c = f[-1]
        for i in range(self.depth, 0, -1):
            if self.upsampling == "transpose":
                self._add(f"dec{i}_upconv", nn.ConvTranspose2d(c, f[i - 1], 2, stride=2))
            else:
                self._add(f"dec{i}_upsample", nn.Upsample(scale_factor=2, mode="nearest"))
                self._add(f"dec{i}_upconv", ConvAct(c, f[i - 1], 2, "same", "relu"))
            if padding == "valid":
                self._add(f"dec{i}_crop", CenterCrop())
            self._add(f"dec{i}_concat", Concat(options["concat_order"] == "skip_first"))
            self._add(f"dec{i}_conv1", ConvAct(2 * f[i - 1], f[i - 1], 3, padding, "relu"))
            self._add(f"dec{i}_conv2", ConvAct(f[i - 1], f[i - 1], 3, padding, "relu"))
            c = f[i - 1]
        if self.head_hidden_filters:
            self._add("head_hidden", ConvAct(c, self.head_hidden_filters, 3, padding, "relu"))
            c = self.head_hidden_filters
        self._add("head", ConvAct(c, int(out_channels), 1, "valid", out_activation))
        self.to({"float32": torch.float32, "float64": torch.float64}[str(dtype)])

    def _add(self, name, module):
        self.add_module(name, module)
        self.layer_names.append(name)

    def layer(self, name):
        return self.get_submodule(name)

    def forward(self, x, logits=False):
        """x: (N, C, H, W) -> y (N, out_channels, H', W'); logits=True stops before the head's activation."""
        L = self.layer
        has = set(self.layer_names)
        skips, h = [], x
        for i in range(1, self.depth + 1):
            h = L(f"enc{i}_conv2")(L(f"enc{i}_conv1")(h))
            if f"enc{i}_drop" in has:
                h = L(f"enc{i}_drop")(h)
            skips.append(h if self.skip_connections else torch.zeros_like(h))
            h = L(f"enc{i}_pool")(h)
        h = L("bottleneck_conv2")(L("bottleneck_conv1")(h))
        if "bottleneck_drop" in has:
            h = L("bottleneck_drop")(h)
        for i in range(self.depth, 0, -1):
            up = L(f"dec{i}_upsample")(h) if self.upsampling == "resize_conv" else h
            up = L(f"dec{i}_upconv")(up)
            skip = skips[i - 1]
            if f"dec{i}_crop" in has:
                skip = L(f"dec{i}_crop")(skip, up)
            h = L(f"dec{i}_conv2")(L(f"dec{i}_conv1")(L(f"dec{i}_concat")(up, skip)))
        if self.head_hidden_filters:
            h = L("head_hidden")(h)
        return L("head")(h, logits=logits)
