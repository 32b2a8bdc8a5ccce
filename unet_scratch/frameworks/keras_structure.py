"""Reading a Keras U-Net by its structure: which Keras layer plays which part, whatever the names.

``from_keras`` and ``to_keras`` pair layers by the part they play, found by walking the model's wiring (the
inbound nodes of ``model.get_config()``, the graph that ``model.save`` writes) from the input to the output:

    encoder level   Conv2D(f, 3, relu) -> Conv2D(f, 3, relu) [-> Dropout] -> MaxPooling2D(2), the tensor
                    before the pooling going across as the skip
    bottleneck      Conv2D(F, 3, relu) -> Conv2D(F, 3, relu) [-> Dropout]
    decoder level   Conv2DTranspose(f, 2, strides=2, 'same')          ("transpose", the article)
                    or UpSampling2D(2) -> Conv2D(f, 2, relu, 'same')   ("resize_conv", zhixuhao's)
                    [Cropping2D on the skip] -> concatenate([up, skip]) or ([skip, up])
                    -> Conv2D(f, 3, relu) -> Conv2D(f, 3, relu)
    head            [Conv2D(k, 3, relu)] -> Conv2D(out, 1, sigmoid | softmax | linear)

The result is the scratch :class:`UNet`'s arguments (``config``) and a map from each scratch layer name
(``enc1_conv1``, ``dec4_upconv``, ``head`` ...; ``"__input__"`` for the input) to the Keras layer's name. Any
other layer, or another wiring, is refused with the first layer that does not fit and why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..checks import nearest_legal_sizes
from ..initializers import INITIALIZERS

SUPPORTED = ("the article's U-Net (Conv2DTranspose up-steps, concatenate([up, skip])) and zhixuhao/unet's "
             "(UpSampling2D then Conv2D(n, 2) up-steps, concatenate([skip, up]), a 3x3 ReLU conv before the "
             "head), of any depth, width, padding, dropout rate and float32/float64 dtype; ReLU fused into "
             "the convs, no BatchNormalization")
DEFAULT_SIZE = 64          # a dimension the Keras model leaves open (None) is built at the first legal size >= this


@dataclass
class UNetStructure:
    """What :func:`read_keras_unet` found: the UNet's arguments and who is who."""
    config: dict                                     # UNet(**config) rebuilds the architecture
    layers: dict = field(default_factory=dict)       # scratch layer name -> Keras layer name

    def keras_name(self, scratch_name: str) -> str:
        return self.layers[scratch_name]

    def scratch_names(self) -> dict:
        """Keras layer name -> scratch layer name."""
        return {k: s for s, k in self.layers.items()}


def _tensor_sources(obj, out):
    """Collect the layer names of the Keras tensors in a serialized call's arguments (nested lists, dicts)."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(obj["config"]["keras_history"][0])
        else:
            for v in obj.values():
                _tensor_sources(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensor_sources(v, out)
    return out


def _io_names(spec):
    """["name", 0, 0] or [["name", 0, 0], ...] -> ["name", ...]."""
    if spec and isinstance(spec[0], str):
        return [spec[0]]
    return [s[0] for s in spec]


def _activation(layer) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", repr(act))


class _Reader:
    """Walks one Keras functional model from its input to its output; see the module docstring."""

    def __init__(self, keras_model):
        self.model = keras_model
        if type(keras_model).__name__ == "Sequential" or not hasattr(keras_model, "inputs"):
            raise ValueError(f"{getattr(keras_model, 'name', keras_model)!r} is not a functional Keras model; "
                             f"a U-Net's skips need the functional API (keras.Model(inputs, outputs))")
        cfg = keras_model.get_config()
        self.kind, self.parents, self.children = {}, {}, {}
        for entry in cfg["layers"]:
            name = entry["name"]
            self.kind[name] = entry["class_name"]
            nodes = entry.get("inbound_nodes", [])
            if len(nodes) > 1:
                self.refuse(name, f"is called {len(nodes)} times (a shared layer); every layer of a U-Net "
                                  f"is used once")
            self.parents[name] = _tensor_sources(nodes, [])
            self.children.setdefault(name, [])
            for p in self.parents[name]:
                self.children.setdefault(p, []).append(name)
        self.inputs, self.outputs = _io_names(cfg["input_layers"]), _io_names(cfg["output_layers"])
        self.visited, self.map = set(), {}

    # ---------------------------------------------------------------- small helpers
    def refuse(self, name, why):
        kind = self.kind.get(name, "?")
        raise ValueError(f"cannot read Keras model {self.model.name!r} as a U-Net: layer {name!r} ({kind}) "
                         f"{why}. Supported: {SUPPORTED}")

    def layer(self, name):
        return self.model.get_layer(name)

    def only_child(self, name, what):
        kids = self.children.get(name, [])
        if len(kids) != 1:
            self.refuse(name, f"feeds {len(kids)} layers ({kids}); {what} should follow it alone")
        return kids[0]

    def take(self, scratch_name, name):
        self.map[scratch_name] = name
        self.visited.add(name)
        return name

    def expect_conv(self, name, kernel, activations, filters=None, role="a conv"):
        """Check that ``name`` is a plain Conv2D with this kernel size and one of these activations."""
        if self.kind[name] != "Conv2D":
            self.refuse(name, f"stands where {role} (Conv2D {kernel}x{kernel}) should be")
        l = self.layer(name)
        problems = []
        if tuple(l.kernel_size) != (kernel, kernel):
            problems.append(f"has kernel_size {tuple(l.kernel_size)}, expected ({kernel}, {kernel})")
        if tuple(l.strides) != (1, 1) or tuple(l.dilation_rate) != (1, 1) or getattr(l, "groups", 1) != 1:
            problems.append(f"has strides {tuple(l.strides)}, dilation {tuple(l.dilation_rate)}, groups "
                            f"{getattr(l, 'groups', 1)}; only strides 1, dilation 1, groups 1 are supported")
        if l.data_format != "channels_last":
            problems.append("is channels_first; the scratch model is NHWC (channels_last)")
        if not l.use_bias:
            problems.append("has no bias (use_bias=False); the scratch convs all have one")
        if _activation(l) not in activations:
            problems.append(f"has activation {_activation(l)!r}; {role} must use "
                            + " or ".join(repr(a) for a in activations))
        if filters is not None and l.filters != filters:
            problems.append(f"has {l.filters} filters where the U-Net's doubling/halving rule gives {filters}")
        if problems:
            self.refuse(name, problems[0])
        return l

    # ---------------------------------------------------------------- the walk
    def read(self, input_shape=None) -> UNetStructure:
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            self.refuse((self.inputs + self.outputs)[0], f"is one of {len(self.inputs)} inputs and "
                                                        f"{len(self.outputs)} outputs; a U-Net has one of each")
        cur = self.take("__input__", self.inputs[0])
        skips, drops, level = [], [], 0
        while True:                                     # encoder levels, then the bottleneck
            level += 1
            prefix = f"enc{level}"
            c1 = self.only_child(cur, "a 3x3 ReLU Conv2D")
            l1 = self.expect_conv(c1, 3, ("relu",), role="an encoder conv")
            if level == 1:
                padding, base = l1.padding, l1.filters
            elif l1.filters != base * 2 ** (level - 1):
                self.refuse(c1, f"has {l1.filters} filters; level {level} of a U-Net with {base} filters at "
                                f"level 1 has {base * 2 ** (level - 1)}")
            c2 = self.only_child(c1, "a second 3x3 ReLU Conv2D")
            self.expect_conv(c2, 3, ("relu",), filters=l1.filters, role="an encoder conv")
            for c in (c1, c2):
                if self.layer(c).padding != padding:
                    self.refuse(c, f"has padding {self.layer(c).padding!r}, the first conv {padding!r}; "
                                   f"a U-Net pads all its 3x3 convs alike")
            out, drop = c2, None
            kids = self.children[c2]
            if len(kids) == 1 and self.kind[kids[0]] == "Dropout":
                drop = out = kids[0]
            kids = self.children[out]
            pools = [k for k in kids if self.kind[k] == "MaxPooling2D"]
            if len(kids) == 2 and len(pools) == 1:      # an encoder level: pooling down, skip across
                self.take(f"{prefix}_conv1", c1), self.take(f"{prefix}_conv2", c2)
                if drop is not None:
                    self.take(f"{prefix}_drop", drop)
                    drops.append((level, drop))
                pool = self.layer(pools[0])
                if tuple(pool.pool_size) != (2, 2) or tuple(pool.strides) != (2, 2) or pool.padding != "valid":
                    self.refuse(pools[0], f"pools {tuple(pool.pool_size)} with strides {tuple(pool.strides)} and "
                                          f"padding {pool.padding!r}; a U-Net pools 2x2, strides 2, 'valid'")
                skips.append(out)
                cur = self.take(f"{prefix}_pool", pools[0])
                continue
            if level == 1:
                self.refuse(out, "is not followed by a MaxPooling2D and a skip connection; a U-Net has at "
                                 "least one pooling")
            self.take("bottleneck_conv1", c1), self.take("bottleneck_conv2", c2)
            if drop is not None:
                self.take("bottleneck_drop", drop)
            cur, bottleneck_drop = out, drop
            break
        depth = level - 1
        dropout = self._dropout(drops, bottleneck_drop, depth)
        upsampling, order = None, None
        for level in range(depth, 0, -1):
            cur, kind, first = self._decoder_level(cur, level, skips[level - 1], base * 2 ** (level - 1),
                                                   padding)
            for what, found, seen in (("up-step", kind, upsampling), ("concatenation order", first, order)):
                if seen is not None and found != seen:
                    self.refuse(self.map[f"dec{level}_concat"], f"uses the {what} {found!r} where the deeper "
                                                                f"levels use {seen!r}")
            upsampling, order = kind, first
        head_hidden, cur = self._head(cur, padding)
        unused = [n for n in self.kind if n not in self.visited]
        if unused:
            self.refuse(unused[0], "is not on the U-Net's path from the input to the output")
        shape = self._input_shape(input_shape, depth, padding)
        dtype = self._dtype()
        head = self.layer(self.map["head"])
        act = _activation(head)
        init = type(self.layer(self.map["enc1_conv1"]).kernel_initializer).__name__
        init = "".join("_" + c.lower() if c.isupper() else c for c in init).lstrip("_")   # GlorotUniform ->
        config = dict(input_shape=shape, base_filters=int(base), depth=depth, padding=padding,
                      dropout=dropout, out_channels=int(head.filters),
                      out_activation=None if act == "linear" else act,
                      kernel_initializer=init if init in INITIALIZERS else "glorot_uniform", dtype=dtype)
        config.update(upsampling=upsampling, concat_order=order, head_hidden=head_hidden)
        return UNetStructure(config, dict(self.map))

    def _dropout(self, drops, bottleneck_drop, depth) -> float:
        """One rate after the deepest encoder level and the bottleneck, or none at all."""
        for level, name in drops:
            if level != depth:
                self.refuse(name, f"drops out after encoder level {level}; the scratch U-Net drops out only "
                                  f"after the deepest encoder level ({depth}) and the bottleneck")
        rates = [self.layer(n).rate for _, n in drops] + ([self.layer(bottleneck_drop).rate]
                                                          if bottleneck_drop else [])
        names = [n for _, n in drops] + ([bottleneck_drop] if bottleneck_drop else [])
        if len(rates) == 1:
            self.refuse(names[0], "is the only Dropout; the scratch U-Net has one after the deepest encoder "
                                  "level and one after the bottleneck, or none")
        if rates and rates[0] != rates[1]:
            self.refuse(names[1], f"has rate {rates[1]}, the other Dropout {rates[0]}; the scratch U-Net "
                                  f"uses one rate")
        for n in names:
            if getattr(self.layer(n), "noise_shape", None) is not None:
                self.refuse(n, "has a noise_shape (spatial dropout); only plain Dropout is supported")
        return float(rates[0]) if rates else 0.0

    def _decoder_level(self, cur, level, skip, filters, padding):
        prefix = f"dec{level}"
        k = self.only_child(cur, "the decoder's up-step")
        if self.kind[k] == "Conv2DTranspose":
            l = self.layer(k)
            if (tuple(l.kernel_size), tuple(l.strides), l.padding) != ((2, 2), (2, 2), "same") \
                    or tuple(l.dilation_rate) != (1, 1) or getattr(l, "output_padding", None) is not None:
                self.refuse(k, f"is a {tuple(l.kernel_size)} transposed conv with strides {tuple(l.strides)} and "
                               f"padding {l.padding!r}; the up-step is Conv2DTranspose(n, 2, strides=2, "
                               f"padding='same')")
            if not l.use_bias or _activation(l) != "linear" or l.filters != filters \
                    or l.data_format != "channels_last":
                self.refuse(k, f"has activation {_activation(l)!r}, bias {l.use_bias}, {l.filters} filters; the "
                               f"up-step has no activation, a bias and {filters} filters")
            up, kind = self.take(f"{prefix}_upconv", k), "transpose"
        elif self.kind[k] == "UpSampling2D":
            l = self.layer(k)
            if tuple(l.size) != (2, 2) or l.interpolation != "nearest" or l.data_format != "channels_last":
                self.refuse(k, f"up-samples by {tuple(l.size)} with {l.interpolation!r}; supported: size (2, 2), "
                               f"'nearest'")
            self.take(f"{prefix}_upsample", k)
            c = self.only_child(k, "a 2x2 ReLU Conv2D")
            l = self.expect_conv(c, 2, ("relu",), filters=filters, role="the up-step's conv")
            if l.padding != "same":
                self.refuse(c, f"has padding {l.padding!r}; the up-step's 2x2 conv is 'same'")
            up, kind = self.take(f"{prefix}_upconv", c), "resize_conv"
        else:
            self.refuse(k, "stands where the decoder's up-step (Conv2DTranspose, or UpSampling2D then Conv2D) "
                           "should be")
        cat = self.only_child(up, "the skip's concatenation")
        if self.kind[cat] != "Concatenate":
            self.refuse(cat, "stands where the concatenation with the skip should be")
        if self.layer(cat).axis not in (-1, 3):
            self.refuse(cat, f"concatenates along axis {self.layer(cat).axis}; a U-Net stacks channels (-1 or 3)")
        parents = self.parents[cat]
        if len(parents) != 2 or up not in parents:
            self.refuse(cat, f"joins {parents}; expected the up-step and the skip")
        other = parents[1 - parents.index(up)]
        if other != skip:
            if self.kind[other] != "Cropping2D" or self.parents[other] != [skip]:
                self.refuse(cat, f"joins {other!r}, not level {level}'s skip {skip!r} (directly or through a "
                                 f"Cropping2D)")
            if padding != "valid":
                self.refuse(other, "crops a skip in a 'same'-padded U-Net, whose skips already fit")
            self.take(f"{prefix}_crop", other)
        elif padding == "valid":
            self.refuse(cat, "joins an uncropped skip in a 'valid'-padded U-Net (the paper crops each skip)")
        self.take(f"{prefix}_concat", cat)
        first = "up_first" if parents[0] == up else "skip_first"
        c1 = self.only_child(cat, "a 3x3 ReLU Conv2D")
        self.expect_conv(c1, 3, ("relu",), filters=filters, role="a decoder conv")
        c2 = self.only_child(c1, "a second 3x3 ReLU Conv2D")
        self.expect_conv(c2, 3, ("relu",), filters=filters, role="a decoder conv")
        for c in (c1, c2):
            if self.layer(c).padding != padding:
                self.refuse(c, f"has padding {self.layer(c).padding!r}; the rest of the U-Net {padding!r}")
        self.take(f"{prefix}_conv1", c1)
        return self.take(f"{prefix}_conv2", c2), kind, first

    def _head(self, cur, padding):
        k = self.only_child(cur, "the 1x1 head")
        hidden = 0
        if self.kind[k] == "Conv2D" and tuple(self.layer(k).kernel_size) == (3, 3):
            l = self.expect_conv(k, 3, ("relu",), role="the conv before the head")
            if l.padding != padding:
                self.refuse(k, f"has padding {l.padding!r}; the rest of the U-Net {padding!r}")
            hidden = int(l.filters)
            self.take("head_hidden", k)
            k = self.only_child(k, "the 1x1 head")
        self.expect_conv(k, 1, ("sigmoid", "softmax", "linear"), role="the head")
        if self.children.get(k):
            self.refuse(self.children[k][0], "follows the 1x1 head; the head's output is the model's output")
        if k != self.outputs[0]:
            self.refuse(k, f"is the head but the model's output is {self.outputs[0]!r}")
        return hidden, self.take("head", k)

    def _input_shape(self, input_shape, depth, padding):
        _, h, w, c = self.model.input_shape
        if input_shape is not None:
            ih, iw, ic = input_shape
            if ic != c or (h is not None and ih != h) or (w is not None and iw != w):
                raise ValueError(f"input_shape {tuple(input_shape)} does not fit the Keras model's input "
                                 f"{(h, w, c)}: only its open (None) dimensions can be chosen")
            return [int(ih), int(iw), int(c)]
        size = nearest_legal_sizes(DEFAULT_SIZE, depth, padding)[1]
        return [int(size) if h is None else int(h), int(size) if w is None else int(w), int(c)]

    def _dtype(self) -> str:
        dtypes = set()
        for name, scratch in ((n, s) for s, n in self.map.items() if s != "__input__"):
            l = self.layer(name)
            if l.weights and str(l.compute_dtype) != str(l.weights[0].dtype):
                self.refuse(name, f"computes in {l.compute_dtype} with {l.weights[0].dtype} weights (mixed "
                                  f"precision); build the model with one float dtype")
            dtypes.update(str(v.dtype) for v in l.weights)
        if len(dtypes) != 1 or not dtypes <= {"float32", "float64"}:
            raise ValueError(f"Keras model {self.model.name!r} has weights of dtype {sorted(dtypes)}; the scratch "
                             f"U-Net reads float32 or float64 models with one dtype throughout")
        return dtypes.pop()


def read_keras_unet(keras_model, input_shape=None) -> UNetStructure:
    """Find the U-Net in a Keras functional model by its structure (names do not matter).

    input_shape: (H, W, C) for the scratch model when the Keras input leaves H or W open (None); without it
    an open dimension becomes the first legal size >= 64 for the model's depth and padding.
    Returns a :class:`UNetStructure` (``config``: UNet arguments; ``layers``: scratch name -> Keras name), or
    raises ValueError naming the first layer that does not fit and why.
    """
    return _Reader(keras_model).read(input_shape)


def keras_layer_outputs(keras_model, structure, x):
    """Every mapped layer's output for input x (NHWC NumPy): {scratch layer name: array, "__input__": x}."""
    from .imports import import_keras
    keras = import_keras()
    names = [s for s in structure.layers if s != "__input__"]
    outs = [keras_model.get_layer(structure.layers[s]).output for s in names]
    probe = keras.Model(keras_model.inputs, outs)
    values = probe([x], training=False)
    result = {s: np.asarray(v) for s, v in zip(names, values)}
    result["__input__"] = x
    return result
