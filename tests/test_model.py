"""The U-Net model: the seed's architecture, the paper's, gradients end to end, saving, bad input."""
import numpy as np
import pytest

from unet_scratch import UNet
from unet_scratch.checks import nearest_legal_sizes, valid_output_size
from unet_scratch.gradcheck import numeric_gradient, rel_error, sample_indices


@pytest.fixture(scope="module")
def seed_model():
    """The source article's model, full width, built for 256 x 256 x 1."""
    return UNet(seed=0)


def test_seed_model_parameter_count(seed_model):
    assert seed_model.count_params() == 31_030_593


def test_seed_model_summary_shapes(seed_model):
    shapes = {name: shape for name, _, shape, _ in seed_model.summary_rows()}
    assert shapes["enc1_conv1"] == (None, 256, 256, 64)
    assert shapes["enc4_drop"] == (None, 32, 32, 512)
    assert shapes["enc4_pool"] == (None, 16, 16, 512)
    assert shapes["bottleneck_conv2"] == (None, 16, 16, 1024)
    assert shapes["bottleneck_drop"] == (None, 16, 16, 1024)
    assert shapes["dec4_upconv"] == (None, 32, 32, 512)
    assert shapes["dec4_concat"] == (None, 32, 32, 1024)
    assert shapes["dec1_conv2"] == (None, 256, 256, 64)
    assert shapes["head"] == (None, 256, 256, 1)
    # Four poolings and no dense layer (the source article's diagram shows five and a dense layer).
    types = [t for _, t, _, _ in seed_model.summary_rows()]
    assert types.count("MaxPooling2D") == 4 and types.count("Conv2DTranspose") == 4
    assert types.count("Conv2D") == 19 and types.count("Dropout") == 2
    text = seed_model.summary(print_fn=None)
    assert "Total params: 31,030,593" in text


def test_seed_model_parameter_names_follow_keras(seed_model):
    names = list(seed_model.params)
    assert names[:4] == ["enc1_conv1/kernel", "enc1_conv1/bias", "enc1_conv2/kernel", "enc1_conv2/bias"]
    assert names[-2:] == ["head/kernel", "head/bias"]
    assert seed_model.params["dec4_upconv/kernel"].shape == (2, 2, 512, 1024)   # (kh, kw, out, in)
    assert seed_model.params["dec4_conv1/kernel"].shape == (3, 3, 1024, 512)
    assert seed_model.params["head/kernel"].shape == (1, 1, 64, 1)
    assert all(p.dtype == np.float32 for p in seed_model.params.values())
    assert not np.any(seed_model.params["enc1_conv1/bias"])             # zeros, as Keras


def test_seed_model_forward_at_small_size(seed_model):
    x = np.random.default_rng(1).random((1, 32, 32, 1), dtype=np.float32)
    y = seed_model.forward(x)
    assert y.shape == (1, 32, 32, 1) and y.dtype == np.float32
    assert np.all((y > 0) & (y < 1))
    dx = seed_model.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert set(seed_model.grads) == set(seed_model.params)


def test_paper_valid_model():
    model = UNet(input_shape=(572, 572, 1), padding="valid", out_channels=2, out_activation="softmax")
    assert model.count_params() == 31_030_658
    assert model.output_shape == (None, 388, 388, 2)
    crops = {l.name: l.cropping for l in model.layers if type(l).__name__ == "Cropping2D"}
    assert crops == {"dec4_crop": ((4, 4), (4, 4)), "dec3_crop": ((16, 16), (16, 16)),
                     "dec2_crop": ((40, 40), (40, 40)), "dec1_crop": ((88, 88), (88, 88))}
    shapes = {name: shape[1] for name, _, shape, _ in model.summary_rows()}
    down = [shapes[f"enc{i}_conv{j}"] for i in range(1, 5) for j in (1, 2)]
    assert down == [570, 568, 282, 280, 138, 136, 66, 64]
    assert [shapes["bottleneck_conv1"], shapes["bottleneck_conv2"]] == [30, 28]
    up = [shapes[f"dec{i}_{n}"] for i in (4, 3, 2, 1) for n in ("upconv", "conv1", "conv2")]
    assert up == [56, 54, 52, 104, 102, 100, 200, 198, 196, 392, 390, 388]


def test_legal_valid_tiles():
    assert valid_output_size(572, 4) == 388
    legal = [s for s in range(100, 400) if valid_output_size(s, 4) is not None]
    assert legal[:3] == [188, 204, 220] and all((s - 60) % 16 == 0 for s in legal)
    assert all(valid_output_size(s, 4) == s - 184 for s in legal)


def _small(padding, dtype="float64", seed=0):
    size = 16 if padding == "same" else nearest_legal_sizes(1, 2, "valid")[1]
    model = UNet(input_shape=(size, size, 2), base_filters=4, depth=2, padding=padding, dropout=0.5,
                 out_channels=2, out_activation="sigmoid", seed=seed, dtype=dtype)
    return model, size


ZHIXUHAO = dict(upsampling="resize_conv", concat_order="skip_first", head_hidden=2)


def _gradient_errors(model, size, seed=2):
    """Relative errors of the analytic gradients (x and every parameter, sampled) against central
    differences, float64: {name: error}."""
    rng = np.random.default_rng(seed)
    for name in model.params:     # non-zero biases: with zero biases and all-zero ReLU inputs a unit
        if name.endswith("/bias"):  # sits exactly on the kink z = 0, where no derivative exists
            model.params[name] = 0.1 * rng.standard_normal(model.params[name].shape)
    x = rng.standard_normal((2, size, size, model.input_shape[-1]))
    y = model.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy)
    f = lambda _: model.forward(x)  # noqa: E731  (the perturbed array is read in place)
    h = 1e-6   # small steps: a larger h lets some of the ~10^4 ReLU/max-pool switches fall inside [x-h, x+h]
    idx = sample_indices(x.shape, 40, rng)
    num = numeric_gradient(f, x, dy, h=h, indices=idx)
    errors = {"x": rel_error(np.array([dx[i] for i in idx]), np.array([num[i] for i in idx]))}
    for name, p in model.params.items():
        idx = sample_indices(p.shape, 12, rng)
        num = numeric_gradient(f, p, dy, h=h, indices=idx)
        g = model.grads[name]
        errors[name] = rel_error(np.array([g[i] for i in idx]), np.array([num[i] for i in idx]))
    return errors


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_whole_unet_gradient_check(padding):
    """Analytic gradients of a depth-2 U-Net against central differences, float64: rel error < 1e-6."""
    model, size = _small(padding)
    errors = _gradient_errors(model, size)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: {errors[worst]:.2e}"


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_zhixuhao_options_gradient_check(padding):
    """Resize-then-convolve up-steps, [skip, up] concatenation and the hidden head conv: every gradient
    against central differences, float64, rel error < 1e-6 (the paper's valid padding too)."""
    size = 16 if padding == "same" else nearest_legal_sizes(1, 2, "valid")[1]
    model = UNet(input_shape=(size, size, 2), base_filters=4, depth=2, padding=padding, seed=1,
                 dtype="float64", **ZHIXUHAO)
    errors = _gradient_errors(model, size)
    assert {"dec2_upconv/kernel", "head_hidden/kernel"} <= set(errors)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: {errors[worst]:.2e}"


def test_zhixuhao_layers_and_config():
    model = UNet(input_shape=(64, 64, 1), kernel_initializer="he_normal", seed=0, **ZHIXUHAO)
    types = [t for _, t, _, _ in model.summary_rows()]
    assert types.count("UpSampling2D") == 4 and types.count("Conv2DTranspose") == 0
    assert types.count("Conv2D") == 19 + 4 + 1                      # 4 up-step convs, 1 hidden head conv
    names = [l.name for l in model.layers]
    i = names.index("dec4_upsample")
    assert names[i:i + 6] == ["dec4_upsample", "dec4_upconv", "dec4_concat", "dec4_conv1", "dec4_conv2",
                              "dec3_upsample"]
    assert names[-2:] == ["head_hidden", "head"]
    assert model.params["dec4_upconv/kernel"].shape == (2, 2, 1024, 512)   # a Conv2D now: (kh, kw, in, out)
    assert model.params["head_hidden/kernel"].shape == (3, 3, 64, 2)
    assert model.params["head/kernel"].shape == (1, 1, 2, 1)
    # 31,030,593 - 4 transposed convs' (2*2*2f*f + f) + 4 up-step convs' (2*2*2f*f + f): the same count,
    # + the hidden head conv (3*3*64*2 + 2) - the head's 63 fewer inputs (64 - 2)
    assert model.count_params() == 31_030_593 + (3 * 3 * 64 * 2 + 2) - 62
    config = model.get_config()
    assert {k: config[k] for k in ZHIXUHAO} == ZHIXUHAO
    assert UNet(**config).get_config() == config


def test_default_config_is_unchanged_by_the_options():
    """Saved files and checkpoints hold this config: the new options are not written for the article's model."""
    config = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2).get_config()
    assert list(config) == ["input_shape", "base_filters", "depth", "padding", "dropout", "out_channels",
                            "out_activation", "kernel_initializer", "dtype"]
    explicit = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, upsampling="transpose",
                    concat_order="up_first", head_hidden=0)
    assert explicit.get_config() == config


def test_options_round_trip_through_a_weights_file(tmp_path):
    model = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=3, **ZHIXUHAO)
    path = model.save_weights(tmp_path / "z.npz")
    back = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=4, **ZHIXUHAO)
    back.load_weights(path)
    x = np.random.default_rng(0).random((1, 16, 16, 1), dtype=np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    article = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2)
    with pytest.raises(ValueError, match=r"dec2_upconv/kernel: shape \(2, 2, 16, 8\).*upsampling='resize_conv'"):
        article.load_weights(path)


def test_concat_order_only_permutes_the_next_kernel():
    """[skip, up] computes what [up, skip] computes once the next conv's input rows are swapped."""
    up_first = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=5, dtype="float64")
    skip_first = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, concat_order="skip_first",
                      dtype="float64")
    for name, p in up_first.params.items():
        if name.endswith("_conv1/kernel") and name.startswith("dec"):
            n_up = up_first.params[name.replace("conv1", "upconv")].shape[2]     # (kh, kw, out, in)
            p = np.concatenate([p[:, :, n_up:], p[:, :, :n_up]], axis=2)
        skip_first.params[name] = p
    x = np.random.default_rng(6).random((2, 16, 16, 1))
    np.testing.assert_allclose(skip_first.forward(x), up_first.forward(x), rtol=1e-13, atol=1e-15)


def test_bad_options_name_the_choices():
    with pytest.raises(ValueError, match="upsampling must be 'transpose'.*'resize_conv'"):
        UNet(input_shape=(16, 16, 1), depth=2, upsampling="bilinear")
    with pytest.raises(ValueError, match="concat_order must be 'up_first'.*'skip_first'"):
        UNet(input_shape=(16, 16, 1), depth=2, concat_order="last")
    with pytest.raises(ValueError, match="head_hidden must be 0"):
        UNet(input_shape=(16, 16, 1), depth=2, head_hidden=-1)


def test_zhixuhao_options_on_the_numba_backend():
    pytest.importorskip("numba", reason="Numba not installed: pip install -e '.[numba]'")
    from unet_scratch import use_backend
    model = UNet(input_shape=(16, 16, 2), base_filters=4, depth=2, seed=2, **ZHIXUHAO)
    x = np.random.default_rng(7).random((2, 16, 16, 2), dtype=np.float32)
    y = model.forward(x)
    dx = model.backward(np.ones_like(y))
    grads = {k: v.copy() for k, v in model.grads.items()}
    with use_backend("numba"):
        y_nb = model.forward(x)
        dx_nb = model.backward(np.ones_like(y))
    np.testing.assert_allclose(y_nb, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx_nb, dx, rtol=1e-5, atol=1e-6)
    for k, g in grads.items():
        np.testing.assert_allclose(model.grads[k], g, rtol=1e-4, atol=1e-6, err_msg=k)


def test_dropout_only_when_training():
    model, size = _small("same", dtype="float32")
    x = np.random.default_rng(3).random((1, size, size, 2), dtype=np.float32)
    a, b = model.forward(x), model.forward(x)
    np.testing.assert_array_equal(a, b)
    c = model.forward(x, training=True)
    assert not np.allclose(a, c)


def test_float32_and_float64_agree():
    m64, size = _small("same", "float64", seed=4)
    m32, _ = _small("same", "float32", seed=4)
    x = np.random.default_rng(5).random((2, size, size, 2))
    np.testing.assert_allclose(m32.forward(x.astype(np.float32)), m64.forward(x), rtol=1e-5, atol=1e-6)


def test_same_seed_same_weights():
    a, _ = _small("same", seed=7)
    b, _ = _small("same", seed=7)
    c, _ = _small("same", seed=8)
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)
    assert not np.array_equal(a.params["enc1_conv1/kernel"], c.params["enc1_conv1/kernel"])


def test_he_normal_initialiser_statistics():
    model = UNet(input_shape=(16, 16, 1), base_filters=32, depth=1, kernel_initializer="he_normal", seed=0)
    w = model.params["enc1_conv2/kernel"]                      # fan_in = 3 * 3 * 32 = 288
    assert abs(w.std() / np.sqrt(2 / 288) - 1) < 0.05
