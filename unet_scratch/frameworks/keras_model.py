"""The source article's U-Net in Keras 3, generalised like :class:`unet_scratch.UNet`.

The Keras model uses the same names as the scratch model ("enc1_conv1", "dec4_upconv", "head"), and its
variables' paths ("enc1_conv1/kernel") are the scratch model's parameter names, so the two line up one to one.
"""
from __future__ import annotations

from ..model import check_unet_options
from ..ops.concat import crop_amounts
from .imports import import_keras


def build_keras_unet(input_shape=(256, 256, 1), base_filters=64, depth=4, padding="same", dropout=0.5,
                     out_channels=1, out_activation="sigmoid", kernel_initializer="glorot_uniform",
                     seed=None, dtype="float32", skip_connections=True, upsampling="transpose",
                     concat_order="up_first", head_hidden=0):
    """The source article's ``unet(input_shape)`` as a Keras 3 model, generalised like :class:`UNet`.

    With the defaults it is layer for layer the article's function: Conv2D(64, 3, activation='relu',
    padding='same') x2, MaxPooling2D, ..., Dropout(0.5) after conv4 and conv5, Conv2DTranspose(n, 2,
    strides=(2, 2), padding='same'), concatenate([up, skip]), Conv2D(1, 1, activation='sigmoid').
    ``padding="valid"`` adds Cropping2D on the skips (the paper's network). ``upsampling="resize_conv"``,
    ``concat_order="skip_first"`` and ``head_hidden=2`` (with ``kernel_initializer="he_normal"``) give
    zhixuhao/unet's model: UpSampling2D(size=(2, 2)) then Conv2D(n, 2, activation='relu', padding='same'),
    concatenate([skip, up], axis=3), and Conv2D(2, 3, activation='relu', padding='same') before the head.
    Layer names are the scratch model's ("dec4_upsample", "dec4_upconv", "head_hidden", ...).
    """
    if not skip_connections:
        raise ValueError("build_keras_unet builds the U-Net with its skips; a skip-less UNet "
                         "(skip_connections=False) has no Keras twin here")
    options = check_unet_options(upsampling, concat_order, head_hidden)
    keras = import_keras()
    L = keras.layers
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    f = [int(base_filters) * 2 ** i for i in range(int(depth) + 1)]

    def conv(filters, name):
        return L.Conv2D(filters, 3, activation="relu", padding=padding, name=name,
                        kernel_initializer=kernel_initializer, dtype=dtype)

    inputs = L.Input(shape=tuple(input_shape), name="input", dtype=dtype)
    h, skips = inputs, []
    for i in range(1, depth + 1):
        h = conv(f[i - 1], f"enc{i}_conv2")(conv(f[i - 1], f"enc{i}_conv1")(h))
        if dropout and i == depth:
            h = L.Dropout(dropout, name=f"enc{i}_drop", dtype=dtype)(h)
        skips.append(h)
        h = L.MaxPooling2D(pool_size=(2, 2), name=f"enc{i}_pool", dtype=dtype)(h)
    h = conv(f[depth], "bottleneck_conv2")(conv(f[depth], "bottleneck_conv1")(h))
    if dropout:
        h = L.Dropout(dropout, name="bottleneck_drop", dtype=dtype)(h)
    for i in range(depth, 0, -1):
        if options["upsampling"] == "transpose":
            up = L.Conv2DTranspose(f[i - 1], 2, strides=(2, 2), padding="same", name=f"dec{i}_upconv",
                                   kernel_initializer=kernel_initializer, dtype=dtype)(h)
        else:
            up = L.UpSampling2D(size=(2, 2), name=f"dec{i}_upsample", dtype=dtype)(h)
            up = L.Conv2D(f[i - 1], 2, activation="relu", padding="same", name=f"dec{i}_upconv",
                          kernel_initializer=kernel_initializer, dtype=dtype)(up)
        skip = skips[i - 1]
        if tuple(skip.shape[1:3]) != tuple(up.shape[1:3]):
            cropping = crop_amounts(skip.shape[1], skip.shape[2], up.shape[1], up.shape[2])
            skip = L.Cropping2D(cropping, name=f"dec{i}_crop", dtype=dtype)(skip)
        pair = [skip, up] if options["concat_order"] == "skip_first" else [up, skip]
        h = L.concatenate(pair, name=f"dec{i}_concat")
        h = conv(f[i - 1], f"dec{i}_conv2")(conv(f[i - 1], f"dec{i}_conv1")(h))
    if options["head_hidden"]:
        h = L.Conv2D(options["head_hidden"], 3, activation="relu", padding=padding, name="head_hidden",
                     kernel_initializer=kernel_initializer, dtype=dtype)(h)
    outputs = L.Conv2D(out_channels, 1, activation=out_activation, name="head",
                       kernel_initializer=kernel_initializer, dtype=dtype)(h)
    return keras.Model(inputs=[inputs], outputs=[outputs], name="unet")
