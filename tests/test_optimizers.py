"""Optimizers follow Keras 3 step for step (float32 and float64); their state survives a checkpoint
bit-exactly; in-place updates; errors that say what to do."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.optimizers import SGD, Adam, get_optimizer

CASES = [("sgd", dict(learning_rate=0.1)), ("sgd", dict(learning_rate=0.05, momentum=0.9)),
         ("sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
         ("sgd", dict(learning_rate=0.01, momentum=0.99)),                  # the paper's setting
         ("adam", dict()), ("adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6))]
IDS = ["sgd", "momentum", "nesterov", "paper", "adam", "adam-custom"]


def _problem(seed=0, dtype=np.float32, steps=10):
    rng = np.random.default_rng(seed)
    params = {"enc1_conv1/kernel": rng.standard_normal((3, 3, 2, 4)).astype(dtype),
              "enc1_conv1/bias": rng.standard_normal(4).astype(dtype)}
    grads = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
             for _ in range(steps)]
    return params, grads


def _keras_run(keras, name, kwargs, params, grads):
    variables = [keras.Variable(v.copy(), dtype=str(v.dtype)) for v in params.values()]
    opt = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[name](**kwargs)
    for g in grads:
        opt.apply_gradients(zip([g[k] for k in params], variables))
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_matches_keras_for_ten_steps(name, kwargs, dtype, tol, keras):
    params, grads = _problem(dtype=dtype)
    expected = _keras_run(keras, name, kwargs, params, grads)
    opt = get_optimizer(name, **kwargs)
    for g in grads:
        opt.apply(params, g)
    for (k, v), e in zip(params.items(), expected):
        np.testing.assert_allclose(v, e, rtol=tol, atol=tol, err_msg=k)
        assert v.dtype == dtype
    assert opt.iterations == 10


def test_adam_float32_casts_constants_as_keras_does(keras):
    """1 - beta_1 is computed in Python, then cast: float32(0.1), not 1 - float32(0.9) = 0.10000002.
    Getting that wrong leaves errors of ~1e-7 relative; getting it right agrees to the last bit or so."""
    params, grads = _problem(dtype=np.float32)
    expected = _keras_run(keras, "adam", {}, params, grads)
    opt = Adam()
    for g in grads:
        opt.apply(params, g)
    for v, e in zip(params.values(), expected):
        assert np.max(np.abs(v - e)) <= 2 * np.finfo(np.float32).eps * np.max(np.abs(e))


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_round_trip_is_bit_exact(name, kwargs, tmp_path):
    params_a, grads = _problem()
    params_b = {k: v.copy() for k, v in params_a.items()}
    straight = get_optimizer(name, **kwargs)
    for g in grads:
        straight.apply(params_a, g)
    first = get_optimizer(name, **kwargs)
    for g in grads[:5]:
        first.apply(params_b, g)
    state = first.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    np.savez(tmp_path / "opt.npz", **state)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        loaded = {k: data[k] for k in data.files}
    second = get_optimizer(name, **kwargs)
    second.load_state_dict(loaded)
    assert second.iterations == 5
    for g in grads[5:]:
        second.apply(params_b, g)
    for k in params_a:
        np.testing.assert_array_equal(params_a[k], params_b[k])


def test_state_keys_name_slot_and_parameter():
    params, grads = _problem()
    sgd, adam = SGD(momentum=0.9), Adam()
    sgd.apply(params, grads[0])
    adam.apply(params, grads[0])
    assert set(sgd.state_dict()) == {"iterations", "momentum/enc1_conv1/kernel", "momentum/enc1_conv1/bias"}
    assert set(adam.state_dict()) == {"iterations", "m/enc1_conv1/kernel", "m/enc1_conv1/bias",
                                      "v/enc1_conv1/kernel", "v/enc1_conv1/bias"}
    assert set(SGD().state_dict()) == {"iterations"}          # plain SGD keeps no slots (as Keras)
    state = adam.state_dict()
    state["m/enc1_conv1/bias"][...] = 99                       # a copy: the optimizer is unaffected
    assert not np.any(adam.slots["m"]["enc1_conv1/bias"] == 99)
    with pytest.raises(KeyError, match="unexpected optimizer state entry 'm/enc1_conv1/kernel'"):
        SGD(momentum=0.9).load_state_dict(adam.state_dict())
    with pytest.raises(KeyError, match="no 'iterations'"):
        Adam().load_state_dict({})


def test_in_place_update_and_dtype():
    for dtype in (np.float32, np.float64):
        params, grads = _problem(dtype=dtype)
        objects = {k: id(v) for k, v in params.items()}
        before = {k: v.copy() for k, v in params.items()}
        opt = Adam()
        opt.apply(params, grads[0])
        assert {k: id(v) for k, v in params.items()} == objects
        assert all(not np.array_equal(before[k], params[k]) and params[k].dtype == dtype for k in params)
        assert opt.slots["m"]["enc1_conv1/kernel"].dtype == dtype


def test_errors_leave_the_parameters_unchanged():
    params, grads = _problem()
    before = {k: v.copy() for k, v in params.items()}
    bad = {"enc1_conv1/kernel": grads[0]["enc1_conv1/kernel"], "enc1_conv1/bias": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match=r"gradient of 'enc1_conv1/bias' has shape \(5,\).*\(4,\)"):
        SGD(momentum=0.9).apply(params, bad)
    with pytest.raises(KeyError, match="run backward"):
        Adam().apply(params, {"enc1_conv1/kernel": grads[0]["enc1_conv1/kernel"]})
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        get_optimizer("rmsprop")
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD(momentum=1.5)
    with pytest.raises(ValueError, match="beta_1"):
        Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(learning_rate=-0.1)
    opt = Adam()
    assert get_optimizer(opt) is opt and isinstance(get_optimizer("SGD"), SGD)


@settings(max_examples=15, deadline=None)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4)), lr=st.floats(1e-4, 0.5),
       momentum=st.sampled_from([0.0, 0.5, 0.9]), seed=st.integers(0, 1000))
def test_sgd_formula_property(shape, lr, momentum, seed):
    """Two SGD steps against the formula written out in float64."""
    r = np.random.default_rng(seed)
    w = r.standard_normal(shape)
    g1, g2 = r.standard_normal(shape), r.standard_normal(shape)
    opt, params = SGD(lr, momentum=momentum), {"w": w.copy()}
    opt.apply(params, {"w": g1})
    opt.apply(params, {"w": g2})
    lr, momentum = float(np.float32(lr)), float(np.float32(momentum))   # Keras's casts go via float32
    v1 = -lr * g1
    v2 = momentum * v1 - lr * g2
    np.testing.assert_allclose(params["w"], w + v1 + v2, rtol=1e-12, atol=1e-12)
