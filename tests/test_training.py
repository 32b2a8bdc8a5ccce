"""fit(): learning, History, checkpoints, bit-exact resume, Ctrl-C, NaN stop, bad input; losses from logits."""
import os
import signal
import numpy as np
import pytest

from unet_scratch import UNet, data, training
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.activations import sigmoid
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.optimizers import get_optimizer


def small_model(seed=0, dropout=0.5, **kw):
    return UNet((32, 32, 1), base_filters=4, depth=2, dropout=dropout, seed=seed, **kw)


@pytest.fixture(scope="module")
def tiny():
    images, masks = data.membranes(6, size=32, seed=3)
    return images, masks


def same_params(a, b):
    return all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


# ------------------------------------------------------------------------------------ the loss
def test_logits_forward_and_backward_match_the_sigmoid_head(rng):
    model = small_model(dropout=0, dtype="float64")
    x = rng.random((2, 32, 32, 1))
    z = model.forward(x, logits=True)
    y = model.forward(x)
    np.testing.assert_allclose(sigmoid(z)[0], y, rtol=1e-12)
    t = (rng.random(y.shape) > 0.5).astype(float)
    _, dz = binary_crossentropy(z, t, from_logits=True)
    model.forward(x, logits=True)
    model.backward(dz)
    g_logits = {k: v.copy() for k, v in model.grads.items()}
    _, dp = binary_crossentropy(y, t)
    model.forward(x)
    model.backward(dp)
    for k in g_logits:
        np.testing.assert_allclose(g_logits[k], model.grads[k], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("loss,weighted", [("bce", False), ("bce", True), ("dice", False), ("bce_dice", True)])
def test_loss_from_logits_gradient_check(rng, loss, weighted):
    model = small_model(dropout=0, dtype="float64")
    z = rng.normal(0, 2, (2, 8, 8, 1))
    t = (rng.random(z.shape) > 0.6).astype(float)
    w = rng.uniform(0.5, 3, z.shape) if weighted else None
    value, dz, p = training.loss_from_logits(model, z, t, w, loss)
    num = numeric_gradient(lambda a: training.loss_from_logits(model, a, t, w, loss)[0], z.copy(), 1.0)
    assert rel_error(dz, num) < 1e-7
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z)))


def test_weighted_bce_with_unit_weights_is_plain_bce(rng):
    model = small_model(dropout=0)
    z = rng.normal(0, 2, (2, 8, 8, 1)).astype(np.float32)
    t = (rng.random(z.shape) > 0.5).astype(np.float32)
    a = training.loss_from_logits(model, z, t, None, "bce")
    b = training.loss_from_logits(model, z, t, np.ones_like(z), "bce")
    assert abs(a[0] - b[0]) < 1e-6
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------------- learning
def test_fit_learns_and_fills_history(tiny):
    model = UNet((32, 32, 1), base_filters=8, depth=2, dropout=0, seed=0, kernel_initializer="he_normal")
    history = training.fit(model, tiny, val=tiny, epochs=4, batch_size=1, learning_rate=3e-3, loss="bce_dice",
                           verbose=0)
    h = history.history
    assert set(h) == {"loss", "dice", "val_loss", "val_dice", "seconds"}
    assert len(h["loss"]) == 4 and history.epoch == [0, 1, 2, 3]
    assert h["loss"][-1] < h["loss"][0] * 0.9 and h["val_dice"][-1] > h["val_dice"][0] + 0.2
    assert history.stop_reason is None
    assert training.evaluate(model, tiny, batch_size=1, loss="bce_dice")["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-6)


def test_callbacks_and_time_limit_stop(tiny):
    seen = []
    history = training.fit(small_model(), tiny, epochs=5, batch_size=3, verbose=0,
                           callbacks=[lambda e, logs: seen.append((e, sorted(logs))) or e == 1])
    assert [e for e, _ in seen] == [0, 1] and "callback" in history.stop_reason
    history = training.fit(small_model(), tiny, epochs=5, batch_size=3, verbose=0, time_limit=0)
    assert len(history.epoch) == 1 and "time limit" in history.stop_reason


def test_softmax_head_valid_padding_trains_with_the_papers_loss(rng):
    model = UNet((44, 44, 1), base_filters=4, depth=2, padding="valid", out_channels=2,
                 out_activation="softmax", dropout=0, seed=0)
    images, masks, instances = data.cells(4, size=44, seed=1)
    from unet_scratch.weightmap import weight_maps
    w = weight_maps(instances)
    history = training.fit(model, (images, masks, w), epochs=2, batch_size=2, loss="weighted_ce", verbose=0)
    assert np.isfinite(history.history["loss"]).all()


# ------------------------------------------------------------------------------ checkpoints, resume
@pytest.mark.parametrize("augment", [False, True])
def test_resume_mid_epoch_is_bit_exact(tmp_path, tiny, augment):
    settings = dict(epochs=3, batch_size=2, augment=augment, seed=5, verbose=0)
    straight = small_model(seed=1)
    h1 = training.fit(straight, tiny, **settings)

    interrupted = small_model(seed=1)
    h = training.fit(interrupted, tiny, checkpoint_dir=tmp_path, max_steps=4, **settings)  # epoch 2, step 1
    assert "max_steps" in h.stop_reason and "step 1" in h.stop_reason
    resumed = small_model(seed=99)              # other initial weights: everything must come from the file
    h2 = training.fit(resumed, tiny, checkpoint_dir=tmp_path, resume=True, **settings)
    assert same_params(straight, resumed)
    assert h2.history["loss"] == h1.history["loss"] and h2.epoch == [0, 1, 2]
    assert os.path.exists(tmp_path / "weights.npz")


def test_resume_refuses_changed_settings_and_other_architectures(tmp_path, tiny):
    training.fit(small_model(), tiny, epochs=1, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    path = tmp_path / training.CHECKPOINT
    before = path.read_bytes()
    with pytest.raises(ValueError, match="batch_size 2 -> 3"):
        training.fit(small_model(), tiny, epochs=2, batch_size=3, checkpoint_dir=tmp_path, resume=True, verbose=0)
    other = UNet((32, 32, 1), base_filters=8, depth=2, seed=0)
    with pytest.raises(ValueError, match="base_filters=4"):
        training.fit(other, tiny, epochs=2, batch_size=2, checkpoint_dir=tmp_path, resume=True, verbose=0)
    assert path.read_bytes() == before


def test_truncated_checkpoint_is_a_clear_error_and_the_model_is_untouched(tmp_path, tiny):
    training.fit(small_model(), tiny, epochs=1, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    bad = tmp_path / "bad.npz"
    bad.write_bytes((tmp_path / training.CHECKPOINT).read_bytes()[:500])
    model = small_model(seed=7)
    kernel = model.params["head/kernel"].copy()
    with pytest.raises(ValueError, match="truncated or corrupt"):
        training.fit(model, tiny, epochs=2, batch_size=2, resume=bad, verbose=0)
    assert np.array_equal(model.params["head/kernel"], kernel)


def test_ctrl_c_saves_a_checkpoint_and_stops_cleanly(tmp_path, tiny):
    model = small_model()
    calls = []
    real_backward = model.backward

    def backward_then_ctrl_c(dz):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real_backward(dz)
    model.backward = backward_then_ctrl_c
    history = training.fit(model, tiny, epochs=3, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    assert "interrupted" in history.stop_reason and len(calls) == 2
    state = training.load_checkpoint(tmp_path / training.CHECKPOINT, small_model(seed=3),
                                     get_optimizer("adam"))
    assert (state["epoch"], state["step"]) == (0, 2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, tiny):
    model = small_model()
    training.fit(model, tiny, epochs=1, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    good = (tmp_path / training.CHECKPOINT).read_bytes()
    with pytest.warns(RuntimeWarning, match=r"NaN or Inf at epoch 2, step 1"):
        history = _fit_from_epoch_two(model, tiny, tmp_path)
    assert "NaN" in history.stop_reason
    assert (tmp_path / training.CHECKPOINT).read_bytes() == good


def _fit_from_epoch_two(model, tiny, folder):
    """Resume the one-epoch checkpoint, but with the model's weights blown up just before step 1."""
    real_set = model.set_weights

    def set_then_blow_up(weights, **kw):
        real_set(weights, **kw)
        for name in model.params:
            model.params[name] = np.full_like(model.params[name], 3e38)
    model.set_weights = set_then_blow_up
    return training.fit(model, tiny, epochs=3, batch_size=2, checkpoint_dir=folder, resume=True, verbose=0)


# ---------------------------------------------------------------------------------------- bad input
def test_masks_in_0_255_are_normalised_with_a_warning(tiny):
    images, masks = tiny
    with pytest.warns(UserWarning, match="0/255"):
        x, t, _ = training.prepare(small_model(), images, masks * 255)
    assert set(np.unique(t)) == {0.0, 1.0}


@pytest.mark.parametrize("images,masks,match", [
    (np.zeros((0, 32, 32, 1)), np.zeros((0, 32, 32, 1)), "non-empty"),
    (np.zeros((2, 32, 32, 3)), np.zeros((2, 32, 32, 1)), "3 channels, the model expects 1; convert to grey"),
    (np.zeros((2, 32, 32, 1)), np.zeros((2, 16, 16, 1)), "do not match"),
])
def test_bad_data_sets_are_clear_errors(images, masks, match):
    with pytest.raises(ValueError, match=match):
        training.fit(small_model(), (images, masks), epochs=1, verbose=0)


def test_unknown_loss_and_wrong_head():
    with pytest.raises(ValueError, match="unknown loss"):
        training.fit(small_model(), (np.zeros((1, 32, 32, 1)), np.zeros((1, 32, 32, 1))), loss="mse")
    model = UNet((32, 32, 1), base_filters=4, depth=2, out_channels=2, out_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="needs a sigmoid head"):
        training.loss_from_logits(model, np.zeros((1, 4, 4, 2), np.float32), np.zeros((1, 4, 4, 1)), None, "dice")


def test_lr_schedule_sets_the_rate_each_epoch(tiny):
    seen = []
    opt = get_optimizer("sgd", learning_rate=0.1)
    real_apply = opt.apply

    def recording_apply(params, grads):
        seen.append(opt.learning_rate)
        return real_apply(params, grads)
    opt.apply = recording_apply
    training.fit(small_model(), tiny, epochs=3, batch_size=3, optimizer=opt, verbose=0,
                 lr_schedule=lambda e: 0.1 / 10 ** e)
    assert seen == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
