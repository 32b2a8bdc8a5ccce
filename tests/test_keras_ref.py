"""Scratch vs Keras at the model level: the reference model, weight transfer, parity report, lockstep."""
import json

import numpy as np
import pytest

from unet_scratch import UNet


@pytest.fixture(scope="module")
def keras_ref(keras):
    from unet_scratch import keras_ref
    return keras_ref


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_seed_model_is_the_article(keras_ref, keras):
    """Defaults: the article's function, layer for layer, 31,030,593 parameters at 256 x 256 x 1."""
    km = keras_ref.build_keras_unet()
    assert km.count_params() == 31_030_593
    convs = [l for l in km.layers if type(l).__name__ == "Conv2D"]
    assert [l.filters for l in convs] == [64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024,
                                          512, 512, 256, 256, 128, 128, 64, 64, 1]
    assert all(l.kernel_size == (3, 3) and l.padding == "same" and l.activation.__name__ == "relu"
               for l in convs[:-1])
    assert convs[-1].kernel_size == (1, 1) and convs[-1].activation.__name__ == "sigmoid"
    ups = [l for l in km.layers if type(l).__name__ == "Conv2DTranspose"]
    assert [(l.filters, l.kernel_size, l.strides, l.padding) for l in ups] == \
        [(f, (2, 2), (2, 2), "same") for f in (512, 256, 128, 64)]
    drops = [l for l in km.layers if type(l).__name__ == "Dropout"]
    assert [(l.name, l.rate) for l in drops] == [("enc4_drop", 0.5), ("bottleneck_drop", 0.5)]
    # concatenate([up, skip]) in that order; the level-4 skip is the dropped tensor (drop4)
    concat = km.get_layer("dec4_concat")
    parents = [t._keras_history.operation.name for t in concat._inbound_nodes[0].input_tensors]
    assert parents == ["dec4_upconv", "enc4_drop"]
    assert km.get_layer("enc4_pool")._inbound_nodes[0].input_tensors[0]._keras_history.operation.name \
        == "enc4_drop"
    assert not any(type(l).__name__ == "Dense" for l in km.layers)


def test_valid_model_has_croppings(keras_ref):
    km = keras_ref.build_keras_unet(input_shape=(572, 572, 1), padding="valid", out_channels=2,
                                    out_activation="softmax", base_filters=4)
    assert km.output_shape == (None, 388, 388, 2)
    crops = {l.name: l.cropping for l in km.layers if type(l).__name__ == "Cropping2D"}
    assert crops["dec1_crop"] == ((88, 88), (88, 88)) and crops["dec4_crop"] == ((4, 4), (4, 4))


def test_weight_names_and_counts_match(keras_ref):
    model = UNet(input_shape=(32, 32, 1), base_filters=4, depth=2, seed=0)
    km = keras_ref.build_keras_unet(input_shape=(32, 32, 1), base_filters=4, depth=2)
    assert [v.path for v in km.weights] == list(model.params)
    assert km.count_params() == model.count_params()


def test_transfer_round_trip_is_exact(keras_ref):
    model = UNet(input_shape=(32, 32, 2), base_filters=4, depth=2, seed=1)
    km = keras_ref.to_keras(model)
    back = keras_ref.from_keras(km)
    assert back.get_config() == model.get_config()
    for name in model.params:
        np.testing.assert_array_equal(back.params[name], model.params[name])
    up = km.get_layer("dec2_upconv").kernel.numpy()
    np.testing.assert_array_equal(up, model.params["dec2_upconv/kernel"])     # (kh, kw, out, in) both


def test_transfer_to_another_architecture_names_the_layer(keras_ref):
    model = UNet(input_shape=(32, 32, 1), base_filters=4, depth=2, seed=0)
    wider = keras_ref.build_keras_unet(input_shape=(32, 32, 1), base_filters=8, depth=2)
    with pytest.raises(ValueError, match=r"enc1_conv1/kernel \(3, 3, 1, 4\).*enc1_conv1/kernel \(3, 3, 1, 8\)"):
        keras_ref.to_keras(model, wider)
    deeper = keras_ref.build_keras_unet(input_shape=(32, 32, 1), base_filters=4, depth=3)
    with pytest.raises(ValueError, match="differ"):
        keras_ref.from_keras(deeper, model)


@pytest.mark.parametrize("padding,size,depth", [("same", 32, 3), ("valid", 92, 3), ("valid", 188, 4)])
def test_small_model_parity(keras_ref, padding, size, depth):
    model = UNet(input_shape=(size, size, 1), base_filters=4, depth=depth, padding=padding, seed=3)
    km = keras_ref.to_keras(model)
    x = _x((2, size, size, 1))
    y = (np.random.default_rng(1).random((2, *model.output_shape[1:])) > 0.5).astype(np.float32)
    report = keras_ref.compare(model, km, x, y)
    assert report.passed, str(report)
    assert abs(report.loss_scratch - report.loss_keras) < 1e-5
    n_weights = len(model.params)
    assert sum(r.kind == "gradient" for r in report.rows) == n_weights
    d = report.to_dict()
    json.dumps(d)                                   # plain Python types only
    assert d["passed"] and len(d["rows"]) == len(report.rows)
    assert "PASS" in str(report)


def test_seed_model_parity_full_width(keras_ref):
    """The article's full-width model (64..1024 filters) at 32 x 32: every layer and gradient in tolerance."""
    model = UNet(input_shape=(32, 32, 1), seed=0)
    km = keras_ref.to_keras(model)
    report = keras_ref.compare(model, km, _x((1, 32, 32, 1), seed=2))
    assert report.passed, str(report)


def test_softmax_head_parity(keras_ref):
    model = UNet(input_shape=(16, 16, 3), base_filters=4, depth=2, out_channels=3,
                 out_activation="softmax", seed=5)
    report = keras_ref.compare(model, keras_ref.to_keras(model), _x((2, 16, 16, 3)))
    assert report.passed, str(report)


def test_compare_catches_a_corrupted_weight(keras_ref):
    """The check can fail: one perturbed kernel entry in Keras makes compare() report it."""
    model = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=0)
    km = keras_ref.to_keras(model)
    var = km.get_layer("dec2_conv1").kernel
    w = var.numpy()
    w[1, 1, 0, 0] += 0.05
    var.assign(w)
    report = keras_ref.compare(model, km, _x((1, 16, 16, 1)))
    assert not report.passed
    assert report.failures()[0].name == "dec2_conv1"
    assert report.verdict().startswith("FAIL")


def test_report_plot(keras_ref):
    import matplotlib
    matplotlib.use("Agg")
    model = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=0)
    report = keras_ref.compare(model, keras_ref.to_keras(model), _x((1, 16, 16, 1)))
    ax = report.plot()
    assert ax.get_yscale() == "log" and len(ax.get_xticklabels()) == sum(r.kind == "forward"
                                                                        for r in report.rows)


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.05), ("adam", 1e-3)])
def test_lockstep_training(keras_ref, optimizer, lr):
    model = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, dropout=0.0, seed=0)
    km = keras_ref.build_keras_unet(input_shape=(16, 16, 1), base_filters=4, depth=2, dropout=0.0)
    rng = np.random.default_rng(0)
    batches = [(rng.random((2, 16, 16, 1), dtype=np.float32),
                (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)) for _ in range(4)]
    result = keras_ref.lockstep(model, km, batches, optimizer=optimizer, steps=20, learning_rate=lr)
    assert len(result.scratch_losses) == 20
    assert result.max_rel_diff <= 1e-4, result.rel_diff
    assert result.scratch_losses[-1] < result.scratch_losses[0]          # it learned something
    assert result.weight_rel_diff < 1e-4
    assert result.passed


def test_lockstep_passed_needs_the_weights_too():
    """Equal loss curves with weights that drifted apart is not a pass."""
    from unet_scratch.keras_ref import WEIGHT_RTOL, LockstepResult
    same_losses = dict(scratch_losses=[1.0, 0.5], keras_losses=[1.0, 0.5], rel_diff=[0.0, 0.0], optimizer="sgd")
    assert LockstepResult(weight_rel_diff=WEIGHT_RTOL / 2, **same_losses).passed
    assert not LockstepResult(weight_rel_diff=WEIGHT_RTOL * 10, **same_losses).passed


def test_missing_keras_gives_install_hint(monkeypatch):
    import sys
    from unet_scratch import keras_ref
    monkeypatch.setitem(sys.modules, "keras", None)          # "not installed", as far as import goes
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[keras\]'"):
        keras_ref.build_keras_unet()
    with pytest.raises(ImportError, match=r"needs TensorFlow"):
        keras_ref.import_tensorflow()


def test_fit_keras_follows_the_scratch_training_curve(keras):
    """Same initial weights, same batches and augmentation, no dropout: the two histories agree."""
    from unet_scratch import UNet, data, training
    from unet_scratch.keras_ref import fit_keras
    train, val = data.load("membranes", "train", n=6, size=32), data.load("membranes", "val", n=3, size=32)
    model = UNet((32, 32, 1), base_filters=4, depth=2, dropout=0, seed=0, kernel_initializer="he_normal")
    settings = dict(epochs=2, batch_size=3, learning_rate=1e-3, augment="flip", seed=0)
    hk, keras_model = fit_keras(model, train, val, **settings)
    hs = training.fit(model, train, val, verbose=0, **settings)
    for key in ("loss", "dice", "val_loss", "val_dice"):
        np.testing.assert_allclose(hk.history[key], hs.history[key], rtol=1e-4, atol=1e-5, err_msg=key)
    kweights = [v.numpy() for layer in keras_model.layers for v in layer.weights]
    assert max(float(np.abs(a - b).max()) for a, b in zip(kweights, model.params.values())) < 1e-5
