"""Bring your own model: any Keras U-Net of the article's or zhixuhao's architecture comes in by its structure.

The article's function (tests/fixtures/article_unet.py, verbatim) and zhixuhao/unet's (tests/fixtures/
zhixuhao_unet.py) import through ``from_keras`` with Keras's own layer names and agree with Keras: float64
forward within 1e-12 and every weight gradient within 1e-10, float32 forward within 1e-5 (and the teacher-
forced parity report passes). Saved files (.keras, .h5) and open input sizes come in too; every transfer is
verified, and a model wired or activated differently is refused naming the first layer that differs.
"""
import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest

from unet_scratch import UNet

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

SIZE = 16                     # the verbatim models are full width (64..1024 filters): the smallest legal size


@pytest.fixture(scope="module")
def kr(keras):
    from unet_scratch import keras_ref
    return keras_ref


@contextlib.contextmanager
def keras_dtype(keras, dtype):
    """Build Keras models in ``dtype``: both the layers' policy and floatx (the Input layer's dtype)."""
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy(dtype)
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)


def tiny_unet(keras, base=4, depth=2, input_shape=(SIZE, SIZE, 1), upsampling="transpose", skip_first=False,
              head_hidden=0, activation="relu", dropout=0.5, extra=None):
    """A small U-Net written like the article's function: Keras's automatic layer names throughout.
    extra: "batchnorm" puts a BatchNormalization after the first conv; "bilinear" up-samples bilinearly;
    "dropout_rates" gives the two Dropouts different rates."""
    L = keras.layers
    conv = dict(activation=activation, padding="same")
    inputs = L.Input(shape=input_shape)
    h, skips = inputs, []
    for i in range(depth):
        h = L.Conv2D(base * 2 ** i, 3, **conv)(h)
        if extra == "batchnorm" and i == 0:
            h = L.BatchNormalization()(h)
        h = L.Conv2D(base * 2 ** i, 3, **conv)(h)
        if dropout and i == depth - 1:
            h = L.Dropout(dropout)(h)
        skips.append(h)
        h = L.MaxPooling2D(pool_size=(2, 2))(h)
    h = L.Conv2D(base * 2 ** depth, 3, **conv)(L.Conv2D(base * 2 ** depth, 3, **conv)(h))
    if dropout:
        h = L.Dropout(dropout / 2 if extra == "dropout_rates" else dropout)(h)
    for i in reversed(range(depth)):
        if upsampling == "transpose":
            up = L.Conv2DTranspose(base * 2 ** i, 2, strides=(2, 2), padding="same")(h)
        else:
            interpolation = "bilinear" if extra == "bilinear" else "nearest"
            up = L.Conv2D(base * 2 ** i, 2, **conv)(L.UpSampling2D(size=(2, 2), interpolation=interpolation)(h))
        h = L.concatenate([skips[i], up] if skip_first else [up, skips[i]])
        h = L.Conv2D(base * 2 ** i, 3, **conv)(L.Conv2D(base * 2 ** i, 3, **conv)(h))
    if head_hidden:
        h = L.Conv2D(head_hidden, 3, **conv)(h)
    outputs = L.Conv2D(1, 1, activation="sigmoid")(h)
    return keras.Model(inputs=[inputs], outputs=[outputs])


def _x(dtype, n=2, size=SIZE, seed=1):
    return np.random.default_rng(seed).random((n, size, size, 1)).astype(dtype)


def _forward_and_gradient_errors(model, km, tf, x):
    """Max abs forward error, and per weight (paired in Keras's variable order) the gradient errors of the
    loss mean(y * g): {scratch name: (max abs error, ||a - b|| / ||b||)}."""
    g = np.random.default_rng(2).standard_normal((x.shape[0], *model.output_shape[1:])).astype(model.dtype)
    y = model.forward(x)
    model.backward(g / g.size)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        yk = km([xt], training=False)
        loss = tf.reduce_mean(yk * g)
    grads_k = tape.gradient(loss, km.trainable_variables)
    errors = {}
    for (name, gs), gk in zip(model.grads.items(), grads_k):      # the pairing the issue asks for
        gk = gk.numpy()
        assert gs.shape == gk.shape, name
        errors[name] = (float(np.max(np.abs(gs - gk))), float(np.linalg.norm(gs - gk) / np.linalg.norm(gk)))
    return float(np.max(np.abs(y - yk.numpy()))), errors


def _check_import(kr, keras, tf, build, dtype, expected_options):
    with keras_dtype(keras, dtype):
        keras.utils.set_random_seed(0)
        km = build()
    model = kr.from_keras(km)
    assert model.dtype == np.dtype(dtype) and all(p.dtype == np.dtype(dtype) for p in model.params.values())
    config = model.get_config()
    assert {k: config.get(k) for k in expected_options} == expected_options
    assert config["base_filters"] == 64 and config["depth"] == 4 and config["input_shape"] == [SIZE, SIZE, 1]
    assert model.count_params() == km.count_params()
    # Keras's own names (conv2d, conv2d_1, ...), paired by structure; the scratch names stay the scratch names
    structure = kr.read_keras_unet(km)
    assert not set(structure.layers.values()) & {l.name for l in model.layers}
    # the weights keep Keras's variable order: zip pairs them, and the copies are exact
    for (name, p), v in zip(model.params.items(), km.trainable_variables):
        assert structure.layers[name.rsplit("/", 1)[0]] == v.path.rsplit("/", 1)[0]
        np.testing.assert_array_equal(p, v.numpy())
    return model, km


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_articles_function_verbatim_imports_and_agrees(kr, keras, tf, dtype):
    import article_unet
    model, km = _check_import(kr, keras, tf, lambda: article_unet.unet((SIZE, SIZE, 1)), dtype,
                              dict(upsampling=None, concat_order=None, head_hidden=None, dropout=0.5))
    forward, grads = _forward_and_gradient_errors(model, km, tf, _x(dtype))
    if dtype == "float64":
        assert forward <= 1e-12, forward
        worst = max(grads, key=lambda k: grads[k][1])
        assert all(e[0] <= 1e-10 and e[1] <= 1e-10 for e in grads.values()), (worst, grads[worst])
        print(f"\narticle float64: forward {forward:.1e}, worst gradient {grads[worst][1]:.1e} ({worst})")
    else:
        assert forward <= 1e-5, forward
        report = kr.compare(model, km, _x(dtype, n=1))
        assert report.passed, str(report)
        assert [r.name for r in report.rows if r.kind == "gradient"] == list(model.params)
        print(f"\narticle float32: forward {forward:.1e}; {report.verdict()}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zhixuhaos_model_imports_and_agrees(kr, keras, tf, dtype):
    import zhixuhao_unet
    model, km = _check_import(kr, keras, tf, lambda: zhixuhao_unet.unet(input_size=(SIZE, SIZE, 1)), dtype,
                              dict(upsampling="resize_conv", concat_order="skip_first", head_hidden=2,
                                   kernel_initializer="he_normal"))
    forward, grads = _forward_and_gradient_errors(model, km, tf, _x(dtype))
    if dtype == "float64":
        assert forward <= 1e-12, forward
        worst = max(grads, key=lambda k: grads[k][1])
        assert all(e[0] <= 1e-10 and e[1] <= 1e-10 for e in grads.values()), (worst, grads[worst])
        print(f"\nzhixuhao float64: forward {forward:.1e}, worst gradient {grads[worst][1]:.1e} ({worst})")
    else:
        assert forward <= 1e-5, forward
        report = kr.compare(model, km, _x(dtype, n=1))
        assert report.passed, str(report)
        print(f"\nzhixuhao float32: forward {forward:.1e}; {report.verdict()}")


@pytest.mark.slow
def test_zhixuhaos_pretrained_weights_argument(kr, keras, tmp_path):
    """``unet(pretrained_weights=...)``, as a user with a trained unet_membrane.hdf5 calls it, then from_keras."""
    import zhixuhao_unet
    keras.utils.set_random_seed(3)
    trained = zhixuhao_unet.unet(input_size=(SIZE, SIZE, 1))
    path = tmp_path / "unet_membrane.weights.h5"
    trained.save_weights(path)
    model = kr.from_keras(zhixuhao_unet.unet(pretrained_weights=str(path), input_size=(SIZE, SIZE, 1)))
    for p, v in zip(model.params.values(), trained.trainable_variables):
        np.testing.assert_array_equal(p, v.numpy())


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_saved_models_come_in_by_path(kr, keras, tmp_path, suffix):
    keras.utils.set_random_seed(1)
    km = tiny_unet(keras, upsampling="resize_conv", skip_first=True, head_hidden=2)
    path = tmp_path / f"model{suffix}"
    km.save(path)
    for source in (path, str(path)):
        model = kr.from_keras(source)
        assert model.get_config()["upsampling"] == "resize_conv"
        for p, v in zip(model.params.values(), km.trainable_variables):
            np.testing.assert_array_equal(p, v.numpy())
    assert kr.config_from_keras(path)["concat_order"] == "skip_first"


def test_open_input_size_is_built_for_a_given_size(kr, keras):
    keras.utils.set_random_seed(2)
    km = tiny_unet(keras, input_shape=(None, None, 1))
    assert kr.from_keras(km).input_shape == (64, 64, 1)            # the first legal size >= 64
    model = kr.from_keras(km, input_shape=(32, 32, 1))
    assert model.input_shape == (32, 32, 1) and kr.config_from_keras(km, (24, 32, 1))["input_shape"] == [24, 32, 1]
    x = _x(np.float32, size=48)                                     # and any legal size runs on both
    np.testing.assert_allclose(model.forward(x), km([x], training=False).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"input_shape \(32, 32, 3\) does not fit"):
        kr.from_keras(km, input_shape=(32, 32, 3))


def test_scratch_weights_go_into_the_articles_keras_model(kr, keras):
    """to_keras pairs by structure too: a scratch model's weights into a Keras model with its own names."""
    keras.utils.set_random_seed(4)
    km = tiny_unet(keras, base=8)
    model = UNet(input_shape=(SIZE, SIZE, 1), base_filters=8, depth=2, seed=9)
    assert kr.to_keras(model, km) is km
    for p, v in zip(model.params.values(), km.trainable_variables):
        np.testing.assert_array_equal(p, v.numpy())
    report = kr.compare(model, km, _x(np.float32))
    assert report.passed, str(report)


@pytest.mark.parametrize("options", [dict(upsampling="resize_conv"), dict(concat_order="skip_first"),
                                     dict(head_hidden=3), dict(upsampling="resize_conv", concat_order="skip_first",
                                                               head_hidden=2, padding="valid")])
def test_the_keras_builder_has_every_option(kr, options):
    size = 92 if options.get("padding") == "valid" else SIZE
    model = UNet(input_shape=(size, size, 1), base_filters=4, depth=2, seed=3, **options)
    km = kr.to_keras(model)
    back = kr.from_keras(km)
    assert back.get_config() == model.get_config()
    assert [v.path for v in km.trainable_variables] == list(model.params)
    report = kr.compare(model, km, _x(np.float32, size=size))
    assert report.passed, str(report)


# ---------------------------------------------------------------- what is refused, and how it says so
def test_a_same_named_model_wired_skip_first_is_refused(kr):
    """The issue's first silent failure: the names and shapes fit, the wiring does not."""
    model = UNet(input_shape=(SIZE, SIZE, 1), base_filters=4, depth=2, seed=0)              # [up, skip]
    km = kr.build_keras_unet(input_shape=(SIZE, SIZE, 1), base_filters=4, depth=2, concat_order="skip_first")
    assert [v.path for v in km.weights] == list(model.params)                   # same names, same shapes
    keras_before = [v.numpy().copy() for v in km.weights]
    scratch_before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match=r"first layer whose output differs is dec2_concat .*"
                                         r"concat_order='skip_first' \(the scratch model: 'up_first'\)"):
        kr.to_keras(model, km)
    with pytest.raises(ValueError, match="first layer whose output differs is dec2_concat"):
        kr.from_keras(km, model)
    # nothing lost: a refused transfer leaves both models' weights as they were
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(keras_before, km.weights))
    assert all(np.array_equal(scratch_before[k], model.params[k]) for k in scratch_before)
    assert kr.from_keras(km).get_config()["concat_order"] == "skip_first"       # built to match: accepted


def test_elu_activations_are_refused_naming_the_layer(kr, keras):
    """The issue's second silent failure: ELU instead of ReLU, same names and shapes."""
    model = UNet(input_shape=(SIZE, SIZE, 1), base_filters=4, depth=2, seed=0)
    km = tiny_unet(keras, activation="elu")
    first = km.layers[1].name
    with pytest.raises(ValueError, match=rf"layer '{first}' \(Conv2D\) has activation 'elu'; an encoder conv "
                                         r"must use 'relu'"):
        kr.from_keras(km)
    with pytest.raises(ValueError, match="has activation 'elu'"):
        kr.to_keras(model, km)


def test_verification_catches_what_the_structure_cannot_see(kr):
    """A check that can fail: a Keras weight changed after the copy is found by the probe forward pass."""
    model = UNet(input_shape=(SIZE, SIZE, 1), base_filters=4, depth=2, seed=0)
    km = kr.to_keras(model)
    assert kr.verify_keras_transfer(model, km)
    var = km.get_layer("dec1_conv1").kernel
    var.assign(var.numpy() * 1.01)
    with pytest.raises(ValueError, match=r"first layer whose output differs is dec1_conv1 \(Keras layer "
                                         r"'dec1_conv1'\): max abs difference"):
        kr.verify_keras_transfer(model, km)


@pytest.mark.parametrize("extra,match", [
    ("batchnorm", r"'batch_normalization\w*' \(BatchNormalization\) stands where an encoder conv"),
    ("bilinear", r"\(UpSampling2D\) up-samples by \(2, 2\) with 'bilinear'"),
    ("dropout_rates", r"\(Dropout\) has rate 0.25, the other Dropout 0.5"),
])
def test_unsupported_layers_are_named_with_the_reason(kr, keras, extra, match):
    km = tiny_unet(keras, upsampling="resize_conv" if extra == "bilinear" else "transpose", extra=extra)
    with pytest.raises(ValueError, match=match):
        kr.from_keras(km)


def test_a_sequential_or_other_wiring_is_refused(kr, keras):
    seq = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Conv2D(1, 1)])
    with pytest.raises(ValueError, match="not a functional Keras model"):
        kr.from_keras(seq)
    inputs = keras.Input((SIZE, SIZE, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", padding="same")(inputs)
    plain = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(h))
    with pytest.raises(ValueError, match=r"\(Conv2D\) stands where an encoder conv|has kernel_size \(1, 1\)"):
        kr.from_keras(plain)


def test_a_wider_keras_model_names_the_first_weight(kr, keras):
    """The shape check comes before any copy, with Keras's names on the Keras side."""
    keras.utils.set_random_seed(5)
    km = tiny_unet(keras, base=8)
    model = UNet(input_shape=(SIZE, SIZE, 1), base_filters=4, depth=2, seed=0)
    before = [v.numpy().copy() for v in km.trainable_variables]
    with pytest.raises(ValueError, match=r"scratch model has enc1_conv1/kernel \(3, 3, 1, 4\), Keras model has "
                                         r"\w+/kernel \(3, 3, 1, 8\)"):
        kr.to_keras(model, km)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, km.trainable_variables))   # nothing copied


def test_lockstep_and_fit_with_keras_own_names(kr, keras):
    """lockstep and fit_keras pair weights by structure too: the article's style of model, trained beside."""
    keras.utils.set_random_seed(6)
    km = tiny_unet(keras, dropout=0.0)
    model = UNet(input_shape=(SIZE, SIZE, 1), base_filters=4, depth=2, dropout=0.0, seed=0)
    rng = np.random.default_rng(0)
    batches = [(rng.random((2, SIZE, SIZE, 1), dtype=np.float32),
                (rng.random((2, SIZE, SIZE, 1)) > 0.5).astype(np.float32)) for _ in range(3)]
    result = kr.lockstep(model, km, batches, optimizer="adam", steps=10)
    assert result.passed, (result.max_rel_diff, result.weight_rel_diff)
    assert result.framework == "Keras"
