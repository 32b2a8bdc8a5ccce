"""The layer API: builds on first call, params/grads dicts, gradients through the layer, Keras parity."""
import numpy as np
import pytest

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.layers import (Concatenate, Conv2D, Conv2DTranspose, Cropping2D, Dropout, MaxPooling2D,
                                 UpSampling2D)


def test_conv2d_builds_on_first_call(rng):
    layer = Conv2D(5, 3, padding="same", activation="relu", seed=0)
    assert not layer.built
    y = layer.forward(rng.random((2, 6, 6, 3), dtype=np.float32))
    assert y.shape == (2, 6, 6, 5) and layer.built
    assert layer.params["kernel"].shape == (3, 3, 3, 5) and layer.params["bias"].shape == (5,)
    assert layer.count_params() == 3 * 3 * 3 * 5 + 5
    with pytest.raises(ValueError, match="built for 3 input channels"):
        layer.forward(np.zeros((1, 6, 6, 4), np.float32))


def test_assigning_weights_before_build_is_explained():
    with pytest.raises(RuntimeError, match="no weights yet"):
        Conv2D(2, 3).params["kernel"] = np.zeros((3, 3, 1, 2))


def test_backward_before_forward():
    layer = MaxPooling2D()
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2, 2, 1)))


@pytest.mark.parametrize("cls,kwargs", [
    (Conv2D, dict(filters=3, kernel_size=3, strides=2, padding="same", activation="sigmoid")),
    (Conv2D, dict(filters=2, kernel_size=(2, 3), padding="valid", use_bias=False)),
    (Conv2D, dict(filters=3, kernel_size=2, padding="same", activation="relu")),     # zhixuhao's up-step conv
    (Conv2DTranspose, dict(filters=3, kernel_size=3, strides=2, padding="same", activation="relu")),
    (Conv2DTranspose, dict(filters=2, kernel_size=2, strides=2, padding="valid")),
])
def test_layer_gradients(cls, kwargs, rng):
    layer = cls(**kwargs, seed=1, dtype="float64")
    x = rng.standard_normal((2, 5, 6, 2))
    y = layer.forward(x)
    if layer.use_bias:
        layer.params["bias"] = 0.1 * rng.standard_normal(layer.params["bias"].shape)
        y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    assert rel_error(dx, numeric_gradient(lambda _: layer.forward(x), x, dy)) < 1e-7
    for name, p in layer.params.items():
        assert rel_error(layer.grads[name], numeric_gradient(lambda _: layer.forward(x), p, dy)) < 1e-7


@pytest.mark.parametrize("cls,kwargs", [
    (Conv2D, dict(filters=4, kernel_size=3, strides=2, padding="same", activation="relu")),
    (Conv2DTranspose, dict(filters=4, kernel_size=2, strides=2, padding="same")),
    (MaxPooling2D, dict(pool_size=3, strides=2, padding="same")),
    (Cropping2D, dict(cropping=((1, 2), (0, 3)))),
    (UpSampling2D, dict(size=(2, 3))),
    (Conv2D, dict(filters=4, kernel_size=2, padding="same", activation="relu")),     # even kernel: pad after
])
def test_layers_match_keras(cls, kwargs, rng, keras):
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    ours = cls(**kwargs)
    y = ours.forward(x)
    theirs = getattr(keras.layers, cls.__name__)(**kwargs)
    theirs.build(x.shape)
    if ours.params:
        theirs.set_weights([ours.params["kernel"], ours.params["bias"]])
    np.testing.assert_allclose(y, theirs(x).numpy(), rtol=1e-5, atol=1e-5)
    assert y.shape == ours.compute_output_shape(x.shape)


def test_concatenate_layer_returns_one_gradient_per_input(rng):
    layer = Concatenate()
    a, b = rng.random((1, 4, 4, 2)), rng.random((1, 4, 4, 3))
    y = layer.forward([a, b])
    da, db = layer.backward(np.ones_like(y))
    assert da.shape == a.shape and db.shape == b.shape and layer.output_shape == (1, 4, 4, 5)


def test_upsampling_layer_gradient_and_shapes(rng):
    layer = UpSampling2D(2, dtype="float64")
    x = rng.standard_normal((2, 3, 4, 2))
    y = layer(x)
    assert y.shape == (2, 6, 8, 2) == layer.output_shape and layer.count_params() == 0
    dy = rng.standard_normal(y.shape)
    assert rel_error(layer.backward(dy), numeric_gradient(lambda _: layer.forward(x), x, dy)) < 1e-7
    with pytest.raises(ValueError, match="interpolation='nearest' only"):
        UpSampling2D(2, interpolation="bilinear")


def test_dropout_layer_seeded_and_inference_identity(rng):
    x = rng.random((2, 8, 8, 4), dtype=np.float32)
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))
    assert Dropout(0.5).forward(x) is x


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="activation must be one of"):
        Conv2D(2, 3, activation="tanh")
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        Conv2D(2, 0)
