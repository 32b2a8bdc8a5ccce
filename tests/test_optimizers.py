"""Optimizers follow Keras 3 step for step (float32 and float64); their state survives a checkpoint
bit-exactly; in-place updates; errors that say what to do."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.optimizers import SGD, Adam, _keras_cast, _power, get_optimizer

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
    """The Keras 3 optimizer applied to tf.Variables (TensorFlow backend) holding copies of params."""
    import tensorflow as tf
    variables = [tf.Variable(v.copy(), dtype=str(v.dtype)) for v in params.values()]
    opt = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[name](**kwargs)
    for g in grads:
        opt.apply_gradients(zip([tf.constant(g[k]) for k in params], variables))
    return [v.numpy() for v in variables]


def _ulps(a, b):
    """Largest distance between a and b in units in the last place of b."""
    return float(np.max(np.abs(a.astype(np.float64) - b) / np.spacing(np.abs(b))))


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_to_keras_for_thirty_steps(name, kwargs, dtype, keras):
    """The module's claim, tested as made: every element equal to Keras's, not merely close."""
    params, grads = _problem(dtype=dtype, steps=30)
    expected = _keras_run(keras, name, kwargs, params, grads)
    opt = get_optimizer(name, **kwargs)
    for g in grads:
        opt.apply(params, g)
    for (k, v), e in zip(params.items(), expected):
        assert v.dtype == dtype
        assert np.array_equal(v, e), (f"{name} {kwargs} {dtype.__name__} {k}: {np.sum(v != e)} of {v.size} "
                                      f"elements differ from Keras, up to {_ulps(v, e):.1f} ulp")
    assert opt.iterations == 30


def test_adam_float32_casts_constants_as_keras_does(keras):
    """1 - beta_1 is computed in Python, then cast: float32(0.1), not 1 - float32(0.9) = 0.10000002.
    The wrong cast leaves results ulps away from Keras (this test sees that), the right one none."""
    params, grads = _problem(dtype=np.float32)
    expected = _keras_run(keras, "adam", {}, params, grads)

    class CastsLate(Adam):              # the classic mistake: 1 - beta computed in float32
        def _update(self, name, w, g):
            f = w.dtype.type
            beta_1, beta_2 = _keras_cast(self.beta_1, w.dtype), _keras_cast(self.beta_2, w.dtype)
            t = f(self._step)
            alpha = self._lr(w.dtype) * np.sqrt(1 - _power(beta_2, t)) / (1 - _power(beta_1, t))
            m, v = self.slots["m"][name], self.slots["v"][name]
            m += (g - m) * (1 - beta_1)                 # Keras: f(1 - self.beta_1)
            v += (np.square(g) - v) * (1 - beta_2)
            w -= (m * alpha) / (np.sqrt(v) + f(self.epsilon))

    for opt, exact in ((Adam(), True), (CastsLate(), False)):
        trial = {k: v.copy() for k, v in params.items()}
        for g in grads:
            opt.apply(trial, g)
        same = all(np.array_equal(v, e) for v, e in zip(trial.values(), expected))
        assert same is exact, type(opt).__name__


def test_power_is_tensorflows_scalar_pow(tf):
    """beta ** t as TensorFlow's scalar Pow computes it (C's powf / pow), over the first 3000 steps
    (checked once to 20000). The exact value rounded to float32 would fail at 0.999 ** 2958, NumPy's
    float64 power at 0.9 ** 56 (x86-64, NumPy 2.4). Results below the
    smallest normal number are left out: TensorFlow flushes subnormals to zero, and there
    1 - beta ** t is 1 either way."""
    for dtype in (np.float32, np.float64):
        for beta in (0.9, 0.999):
            base = dtype(np.float32(beta))
            t = np.arange(1, 3001, dtype=dtype)
            ours = np.array([_power(base, s) for s in t])
            theirs = np.array([tf.pow(tf.constant(base), tf.constant(s)).numpy() for s in t])
            normal = theirs >= np.finfo(dtype).tiny
            assert normal[:100].all()
            bad = t[normal & (ours != theirs)]
            assert bad.size == 0, f"{dtype.__name__} {beta} ** t differs from tf.pow at t = {bad[:10]}"


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
