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


def layer_specs(model) -> list:
    """Distinct (op, input shape, params) of the model's conv / transposed conv / pool layers, with counts."""
    specs = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Conv2DTranspose", "MaxPooling2D"):
            continue
        param = layer.pool_size if kind == "MaxPooling2D" else tuple(layer.params["kernel"].shape)
        key = (kind, (1, *layer.input_shape[1:]), param, layer.strides, layer.padding)
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
    """(forward, train step) in PyTorch with the same weights (NCHW, kernels as (out, in, kh, kw)).

    device: "cpu" or "cuda". On CUDA each call first sets TF32 for cuDNN convolutions and matmuls to
    ``tf32`` (PyTorch's default lets cuDNN use TF32, a 10-bit mantissa: off here unless asked, so the
    comparison is float32 against float32) and ends with ``torch.cuda.synchronize()``; the forward then
    returns the output tensor on the GPU (NCHW), the CPU forward a NumPy array as before."""
    import torch
    import torch.nn.functional as F
    dev = torch.device(device)
    p = {k: torch.tensor(np.ascontiguousarray(to_numpy(v)), device=dev, requires_grad=True)
         for k, v in model.params.items()}
    kern = lambda name: p[name + "/kernel"].permute(3, 2, 0, 1)        # noqa: E731 - HWIO / HWOI -> torch
    depth, drop = model.depth, model.config["dropout"]

    def net(xt, training):
        h, skips = xt, []
        conv = lambda h, n: F.relu(F.conv2d(h, kern(n), p[n + "/bias"], padding="same"))  # noqa: E731
        for i in range(1, depth + 1):
            h = conv(conv(h, f"enc{i}_conv1"), f"enc{i}_conv2")
            h = F.dropout(h, drop, training) if i == depth and drop else h
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = conv(conv(h, "bottleneck_conv1"), "bottleneck_conv2")
        h = F.dropout(h, drop, training) if drop else h
        for i in range(depth, 0, -1):
            up = F.conv_transpose2d(h, kern(f"dec{i}_upconv"), p[f"dec{i}_upconv/bias"], stride=2)
            h = conv(conv(torch.cat([up, skips[i - 1]], 1), f"dec{i}_conv1"), f"dec{i}_conv2")
        return torch.sigmoid(F.conv2d(h, kern("head"), p["head/bias"]))
    xt = torch.tensor(to_numpy(x).transpose(0, 3, 1, 2).copy(), device=dev)
    tt = torch.tensor(to_numpy(target).transpose(0, 3, 1, 2).copy(), device=dev)
    opt = torch.optim.SGD(list(p.values()), lr=learning_rate)
    cuda = dev.type == "cuda"

    def settings():
        if cuda:
            torch.backends.cudnn.allow_tf32 = bool(tf32)
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32)

    def step():
        settings()
        opt.zero_grad()
        loss = F.binary_cross_entropy(net(xt, True), tt)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
            return loss
        return float(loss)

    def forward():
        settings()
        with torch.no_grad():
            y = net(xt, False)
        if cuda:
            torch.cuda.synchronize()
            return y
        return y.numpy()
    return forward, step


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
    """(model, x, target) for a UNet config: seeded weights, a random image batch of 1 and a random 0/1 mask."""
    model = UNet(**config, seed=0)
    rng = np.random.default_rng(1)
    x = rng.random((1, *model.input_shape), dtype=np.float32)
    target = (rng.random((1, *model.output_shape[1:])) > 0.5).astype(np.float32)
    return model, x, target
