"""Optimizers follow Keras 3 step for step; their state survives a checkpoint bit-exactly."""
import numpy as np
import pytest

from unet_scratch.initializers import compute_fans, get_initializer, glorot_uniform, he_normal
from unet_scratch.optimizers import SGD, Adam, get_optimizer

CASES = [("sgd", dict(learning_rate=0.1)), ("sgd", dict(learning_rate=0.05, momentum=0.9)),
         ("sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
         ("adam", dict(learning_rate=0.01))]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"a/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
              "a/bias": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
             for _ in range(10)]
    return params, grads


@pytest.mark.parametrize("name,kwargs", CASES)
def test_matches_keras_for_ten_steps(name, kwargs, keras):
    params, grads = _problem()
    variables = [keras.Variable(v.copy()) for v in params.values()]
    k_opt = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[name](**kwargs)
    opt = get_optimizer(name, **kwargs)
    for g in grads:
        opt.apply(params, g)
        k_opt.apply_gradients(zip([g[k] for k in params], variables))
    for (k, v), var in zip(params.items(), variables):
        np.testing.assert_allclose(v, var.numpy(), rtol=1e-6, atol=1e-6, err_msg=k)
        assert v.dtype == np.float32
    assert opt.iterations == 10


@pytest.mark.parametrize("name,kwargs", CASES)
def test_state_round_trip_is_bit_exact(name, kwargs, tmp_path):
    params_a, grads = _problem()
    params_b = {k: v.copy() for k, v in params_a.items()}
    straight = get_optimizer(name, **kwargs)
    for g in grads:
        straight.apply(params_a, g)
    first = get_optimizer(name, **kwargs)
    for g in grads[:5]:
        first.apply(params_b, g)
    np.savez(tmp_path / "opt.npz", **first.state_dict())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        state = {k: data[k] for k in data.files}
    second = get_optimizer(name, **kwargs)
    second.load_state_dict(state)
    for g in grads[5:]:
        second.apply(params_b, g)
    for k in params_a:
        np.testing.assert_array_equal(params_a[k], params_b[k])


def test_in_place_update_and_errors():
    params, grads = _problem()
    w = params["a/bias"]
    SGD(0.1).apply(params, grads[0])
    assert params["a/bias"] is w
    with pytest.raises(ValueError, match="shape"):
        SGD().apply(params, {"a/kernel": np.zeros(3), "a/bias": np.zeros(4)})
    with pytest.raises(KeyError, match="run backward"):
        Adam().apply(params, {})
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("rmsprop")


@pytest.mark.parametrize("shape", [(3, 3, 16, 32), (2, 2, 64, 128), (1, 1, 64, 1), (5,), (7, 3)])
def test_fans_match_keras(shape, keras):
    from keras.src.initializers.random_initializers import compute_fans as keras_fans
    assert compute_fans(shape) == tuple(int(f) for f in keras_fans(shape))


def test_initializer_statistics():
    rng = np.random.default_rng(0)
    w = glorot_uniform((3, 3, 64, 64), rng)
    limit = np.sqrt(6 / (576 + 576))
    assert w.dtype == np.float32 and np.abs(w).max() <= limit and abs(w.std() - limit / np.sqrt(3)) < 1e-3
    h = he_normal((3, 3, 64, 128), rng, "float64")
    assert h.dtype == np.float64 and abs(h.std() / np.sqrt(2 / 576) - 1) < 0.02
    assert np.abs(h).max() <= 2 * np.sqrt(2 / 576) / 0.87962566103423978 + 1e-12
    a, b = (glorot_uniform((4, 4), np.random.default_rng(3)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="unknown initializer"):
        get_initializer("orthogonal")
