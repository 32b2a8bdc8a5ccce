"""What the benchmark times: FLOP counts, the seed model's distinct layer shapes, and for each contender
(the scratch backends, TensorFlow, PyTorch) zero-argument calls of a layer or of the whole model.

``unet_scratch.bench`` runs them (interleaved, medians, memory, the report); chapter 09 uses them for its
live benchmark; ``tools/gpu_check.py`` times the GPU with them. Every call builds its inputs once, outside
the call, so only the work is timed. A GPU call (the cupy backend, PyTorch on CUDA) waits for the device
before it returns, so a timer around it measures the work, not the launch.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .backend import to_device_array, to_numpy
from .model import UNet

# ----------------------------------------------------------------------------- FLOPs and layer shapes


def layer_specs(model, batch: int = 1) -> list:
    """Distinct (op, input shape, params) of the model's conv / transposed conv / pool layers, with counts;
    x_shape: (batch, H, W, C)."""
    specs = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Conv2DTranspose", "MaxPooling2D"):
            continue
        param = layer.pool_size if kind == "MaxPooling2D" else tuple(layer.params["kernel"].shape)
        key = (kind, (int(batch), *layer.input_shape[1:]), param, layer.strides, layer.padding)
        specs[key] = specs.get(key, 0) + 1
    return [dict(op=k[0], x_shape=k[1], param=k[2], strides=k[3], padding=k[4], count=n)
            for k, n in specs.items()]


def forward_gflop(model, batch: int = 1) -> float:
    """2 x multiply-adds of every conv and transposed conv in one forward pass (GFLOP)."""
    macs = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, oh, ow, f = layer.output_shape
            macs += oh * ow * int(np.prod(layer.params["kernel"].shape[:3])) * f
        elif kind == "Conv2DTranspose":
            _, h, w, c = layer.input_shape
            macs += h * w * int(np.prod(layer.params["kernel"].shape))
    return 2 * macs * batch / 1e9


def spec_gflop(spec) -> float:
    """GFLOP (2 x multiply-adds) of one forward call of a layer spec from :func:`layer_specs` (pools: 0)."""
    n, h, w, c = spec["x_shape"]
    if spec["op"] == "Conv2D":
        kh, kw, _, f = spec["param"]
        from .ops.conv import conv_output_size
        oh = conv_output_size(h, kh, spec["strides"][0], spec["padding"])
        ow = conv_output_size(w, kw, spec["strides"][1], spec["padding"])
        return 2 * n * oh * ow * kh * kw * c * f / 1e9
    if spec["op"] == "Conv2DTranspose":
        return 2 * n * h * w * int(np.prod(spec["param"])) / 1e9
    return 0.0


def spec_label(spec) -> str:
    """A short label: "conv 3x3/1 256x256x64->64", "upconv 2x2/2 ...", "maxpool 2x2 ..."."""
    _, h, w, c = spec["x_shape"]
    if spec["op"] == "MaxPooling2D":
        return f"maxpool {spec['param'][0]}x{spec['param'][1]} {h}x{w}x{c}"
    kh, kw = spec["param"][:2]
    f = spec["param"][3] if spec["op"] == "Conv2D" else spec["param"][2]
    name = "conv" if spec["op"] == "Conv2D" else "upconv"
    return f"{name} {kh}x{kw}/{spec['strides'][0]} {h}x{w}x{c}->{f}"


# ----------------------------------------------------------------------------- the contenders


def synchronize(device="gpu"):
    """Wait until the GPU has finished what was queued (CuPy's current device); nothing on the CPU."""
    if device == "gpu":
        import cupy
        cupy.cuda.Device().synchronize()


def synced(f, device):
    """f, followed by a device synchronisation on the GPU: a call whose time is the work's."""
    if device != "gpu":
        return f

    def call():
        out = f()
        synchronize()
        return out
    return call


def scratch_layer_calls(ops, spec, rng, device="cpu"):
    """(forward, backward) zero-argument calls of one layer shape for a NumPy-like ops module; with
    device="gpu" the inputs are CuPy arrays (made once) and each call synchronises the device."""
    put = lambda a: to_device_array(a, device)          # noqa: E731
    x = put(rng.standard_normal(spec["x_shape"], dtype=np.float32))
    if spec["op"] == "MaxPooling2D":
        fwd = lambda: ops.maxpool2d(x, spec["param"], spec["strides"], spec["padding"])  # noqa: E731
        y, cache = fwd()
        dy = put(rng.standard_normal(y.shape, dtype=np.float32))
        return synced(fwd, device), synced(lambda: ops.maxpool2d_backward(dy, cache), device)
    w = put((rng.standard_normal(spec["param"], dtype=np.float32) * 0.05).astype(np.float32))
    b = put(rng.standard_normal(spec["param"][3 if spec["op"] == "Conv2D" else 2], dtype=np.float32))
    op, op_back = ((ops.conv2d, ops.conv2d_backward) if spec["op"] == "Conv2D"
                   else (ops.conv2d_transpose, ops.conv2d_transpose_backward))
    fwd = lambda: op(x, w, b, spec["strides"], spec["padding"])  # noqa: E731
    y, cache = fwd()
    dy = put(rng.standard_normal(y.shape, dtype=np.float32))
    return synced(fwd, device), synced(lambda: op_back(dy, cache), device)


def model_copy(model, device="cpu"):
    """A new UNet with ``model``'s configuration and weights, on ``device``."""
    twin = UNet(**model.get_config())
    twin.set_weights({k: to_numpy(v) for k, v in model.params.items()})
    return twin.to(device)


def tf_layer_calls(tf, spec, rng):
    """The same layer in TensorFlow: the forward op and its gradient ops, each in a tf.function."""
    x = tf.constant(rng.standard_normal(spec["x_shape"], dtype=np.float32))
    pad, s = spec["padding"].upper(), [1, *spec["strides"], 1]
    opts = dict(strides=s, padding=pad)
    if spec["op"] == "MaxPooling2D":
        ksize = [1, *spec["param"], 1]
        fwd = tf.function(lambda x: tf.nn.max_pool2d(x, ksize, s, pad))
        y = fwd(x)
        dy = tf.constant(rng.standard_normal(y.shape, dtype=np.float32))
        bwd = tf.function(lambda x, y, dy: tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=dy,
                                                                  ksize=ksize, strides=s, padding=pad))
        return lambda: fwd(x).numpy(), lambda: bwd(x, y, dy).numpy()
    w = tf.constant(rng.standard_normal(spec["param"], dtype=np.float32) * 0.05)
    b = tf.constant(rng.standard_normal(spec["param"][3 if spec["op"] == "Conv2D" else 2], dtype=np.float32))
    if spec["op"] == "Conv2D":
        fwd = tf.function(lambda x, w, b: tf.nn.bias_add(tf.nn.conv2d(x, w, s, pad), b))
        y = fwd(x, w, b)
        dy = tf.constant(rng.standard_normal(y.shape, dtype=np.float32))
        bwd = tf.function(lambda x, w, dy: (
            tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy, **opts),
            tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy, **opts),
            tf.reduce_sum(dy, axis=(0, 1, 2))))
    else:                                   # transposed conv: forward is conv2d's input gradient
        from .ops.conv_transpose import transpose_output_shape
        out_shape = transpose_output_shape(spec["x_shape"], spec["param"], spec["strides"], spec["padding"])
        fwd = tf.function(lambda x, w, b: tf.nn.bias_add(tf.nn.conv2d_transpose(x, w, out_shape, s, pad), b))
        y = fwd(x, w, b)
        dy = tf.constant(rng.standard_normal(y.shape, dtype=np.float32))
        bwd = tf.function(lambda x, w, dy: (
            tf.nn.conv2d(dy, w, s, pad),
            tf.raw_ops.Conv2DBackpropFilter(input=dy, filter_sizes=tf.shape(w), out_backprop=x, **opts),
            tf.reduce_sum(dy, axis=(0, 1, 2))))
    return (lambda: fwd(x, w, b).numpy(),
            lambda: [t.numpy() for t in bwd(x, w, dy)])


def scratch_model_calls(model, name, x, target, learning_rate=0.01):
    """(forward, train step) of the scratch model on backend ``name``.

    For "cupy" the calls run a GPU copy of the model on CuPy copies of x and target (made once), compute
    the loss on the device (binary cross-entropy from the logits, ``kernels/xp_losses``, as ``fit`` does)
    and synchronise the device before returning; the loss value stays on the device."""
    from .ops.losses import binary_crossentropy
    from .optimizers import SGD
    opt = SGD(learning_rate)
    if backend.backend_device(name) == "gpu":
        return _gpu_model_calls(model_copy(model, "gpu"), name, to_device_array(x, "gpu"),
                                to_device_array(target, "gpu"), opt)

    def forward():
        with backend.use_backend(name):
            return model.forward(x, training=False)

    def step():
        with backend.use_backend(name):
            y = model.forward(x, training=True)
            loss, dy = binary_crossentropy(y, target)
            model.backward(dy)
            opt.apply(model.params, model.grads)
            return loss
    return forward, step


def _gpu_model_calls(model, name, x, target, opt):
    from .kernels.xp_losses import binary_crossentropy_from_logits

    def forward():
        with backend.use_backend(name):
            y = model.forward(x, training=False)
        synchronize()
        return y

    def step():
        with backend.use_backend(name):
            z = model.forward(x, training=True, logits=True)
            loss, dz = binary_crossentropy_from_logits(z, target)
            model.backward(dz)
            opt.apply(model.params, model.grads)
        synchronize()
        return loss
    forward.model = step.model = model              # for the caller's checks (logits, memory)
    return forward, step


def tf_model_calls(model, x, target, learning_rate=0.01):
    """(forward, train step) of the Keras twin, each compiled with tf.function."""
    import keras
    import tensorflow as tf

    from .keras_ref import to_keras
    km = to_keras(model)
    opt, bce = keras.optimizers.SGD(learning_rate), keras.losses.BinaryCrossentropy()
    xt, tt = tf.constant(x), tf.constant(target)
    forward = tf.function(lambda x: km(x, training=False))

    @tf.function
    def step(x, t):
        with tf.GradientTape() as tape:
            loss = bce(t, km(x, training=True))
        opt.apply(tape.gradient(loss, km.trainable_variables), km.trainable_variables)
        return loss
    return (lambda: forward(xt).numpy()), (lambda: step(xt, tt).numpy())


def torch_model_calls(model, x, target, learning_rate=0.01, device="cpu", tf32=False):
    """(forward, train step) of the PyTorch twin with the same weights: ``TorchUNet`` filled by
    ``torch_ref.to_torch`` (an exact copy, checked layer by layer on a probe input), NCHW input, binary
    cross-entropy on its sigmoid output, ``torch.optim.SGD``.

    device: "cpu" or "cuda". On CUDA each call first sets TF32 for cuDNN convolutions and matmuls to
    ``tf32`` (PyTorch's default lets cuDNN use TF32, a 10-bit mantissa: off here unless asked, so the
    comparison is float32 against float32) and ends with ``torch.cuda.synchronize()``; the forward then
    returns the output tensor on the GPU (NCHW), the CPU forward a NumPy array."""
    import torch
    import torch.nn.functional as F

    from .frameworks.torch_transfer import to_torch
    dev = torch.device(device)
    module = to_torch(model_copy(model)).to(dev)
    xt = torch.tensor(to_numpy(x).transpose(0, 3, 1, 2).copy(), device=dev)
    tt = torch.tensor(to_numpy(target).transpose(0, 3, 1, 2).copy(), device=dev)
    opt = torch.optim.SGD(module.parameters(), lr=learning_rate)
    cuda = dev.type == "cuda"

    def settings():
        if cuda:
            torch.backends.cudnn.allow_tf32 = bool(tf32)
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32)

    def step():
        settings()
        module.train()
        opt.zero_grad()
        loss = F.binary_cross_entropy(module(xt), tt)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
            return loss
        return loss.item()

    def forward():
        settings()
        module.eval()
        with torch.no_grad():
            y = module(xt)
        if cuda:
            torch.cuda.synchronize()
            return y
        return y.numpy()
    forward.module = step.module = module
    return forward, step


def _torch_pads(spec):
    """TensorFlow's padding of a layer spec as (top, bottom, left, right) (see ops.conv.padding_amounts)."""
    from .ops.conv import padding_amounts
    kh, kw = spec["param"][:2]
    _, h, w, _ = spec["x_shape"]
    (top, bottom) = padding_amounts(h, kh, spec["strides"][0], spec["padding"])
    (left, right) = padding_amounts(w, kw, spec["strides"][1], spec["padding"])
    return top, bottom, left, right


def torch_layer_calls(torch, spec, rng):
    """The same layer in PyTorch on the CPU (NCHW, its native layout): forward and the backward op alone
    (``aten.convolution_backward`` for dx, dw, db; ``aten.max_pool2d_with_indices_backward``), as the
    TensorFlow calls time the gradient ops alone. Arrays are drawn from ``rng`` in NHWC in the order
    :func:`scratch_layer_calls` draws them, so the same seed gives both the same numbers."""
    import torch.nn.functional as F
    aten = torch.ops.aten
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))   # noqa: E731
    x = nchw(rng.standard_normal(spec["x_shape"], dtype=np.float32))
    draw_like = lambda y: nchw(rng.standard_normal(tuple(y.permute(0, 2, 3, 1).shape), dtype=np.float32))  # noqa: E731
    stride = list(spec["strides"])
    if spec["op"] == "MaxPooling2D":
        k = list(spec["param"])
        if spec["padding"] != "valid":
            raise ValueError("torch_layer_calls times 'valid' max-pooling only (U-Net's)")
        fwd = lambda: F.max_pool2d(x, k, stride)                                      # noqa: E731
        y, idx = F.max_pool2d(x, k, stride, return_indices=True)
        dy = draw_like(y)
        pool_bwd = lambda: aten.max_pool2d_with_indices_backward(dy, x, k, stride, [0, 0], [1, 1], False, idx)  # noqa: E731
        return (lambda: fwd().numpy()), (lambda: pool_bwd().numpy())
    kern = rng.standard_normal(spec["param"], dtype=np.float32) * 0.05
    w = torch.from_numpy(np.ascontiguousarray(kern.transpose(3, 2, 0, 1)))      # Keras -> PyTorch layout
    f = spec["param"][3] if spec["op"] == "Conv2D" else spec["param"][2]
    b = torch.from_numpy(rng.standard_normal(f, dtype=np.float32))
    if spec["op"] == "Conv2D":
        top, bottom, left, right = _torch_pads(spec)
        if top == bottom and left == right:
            pad, xin = [top, left], x
        else:                                            # asymmetric 'same': pad explicitly, as TorchUNet does
            pad, xin = [0, 0], F.pad(x, (left, right, top, bottom))
        fwd = lambda: F.conv2d(xin, w, b, stride, pad)                                # noqa: E731
        transposed = False
        dy = draw_like(fwd())
    else:
        if tuple(spec["param"][:2]) != tuple(spec["strides"]):
            raise ValueError("torch_layer_calls times transposed convs with kernel == stride only (U-Net's)")
        pad, xin, transposed = [0, 0], x, True
        fwd = lambda: F.conv_transpose2d(xin, w, b, stride)                           # noqa: E731
        dy = draw_like(fwd())
    h, wd = x.shape[2:]
    top, left = (0, 0) if xin is x else _torch_pads(spec)[::2]

    def bwd():
        dx, dw, db = aten.convolution_backward(dy, xin, w, [f], stride, pad, [1, 1], transposed, [0, 0], 1,
                                               [True, True, True])
        return [dx[:, :, top:top + h, left:left + wd].numpy(), dw.numpy(), db.numpy()]
    return (lambda: fwd().numpy()), bwd


def shifted_views_conv(x, w):
    """The measured alternative to im2col (stride 1, 'same', odd kernel): pad, flatten the rows, and take
    one GEMM per kernel offset on a shifted slice of the flattened image (computed over the padded width,
    the extra columns dropped at the end). x: (N, H, W, C), w: (KH, KW, C, F) -> y: (N, H, W, F)."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    ph, pw = kh // 2, kw // 2
    x_pad = np.zeros((n, h + kh, wd + 2 * pw, c), dtype=x.dtype)   # one spare row keeps slices in range
    x_pad[:, ph:ph + h, pw:pw + wd] = x
    wp = wd + 2 * pw
    flat = x_pad.reshape(n, -1, c)
    y_ext, part = np.zeros((n, h * wp, f), dtype=x.dtype), np.empty((h * wp, f), dtype=x.dtype)
    for i in range(n):
        for a in range(kh):
            for q in range(kw):
                start = a * wp + q
                np.matmul(flat[i, start:start + h * wp], w[a, q], out=part)
                y_ext[i] += part
    return y_ext.reshape(n, h, wp, f)[:, :, :wd]


def model_and_data(config: dict):
    """(model, x, target) for a UNet config plus an optional "batch" (default 1): seeded weights, a random
    image batch x: (batch, H, W, C) and a random 0/1 mask of the output's shape."""
    config = dict(config)
    batch = int(config.pop("batch", 1))
    model = UNet(**config, seed=0)
    rng = np.random.default_rng(1)
    x = rng.random((batch, *model.input_shape), dtype=np.float32)
    target = (rng.random((batch, *model.output_shape[1:])) > 0.5).astype(np.float32)
    return model, x, target
