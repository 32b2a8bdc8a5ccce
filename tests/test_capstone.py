"""use_student_ops / backend.use_ops: the layers run the functions given, only inside the block, and
everything comes back afterwards (also after an exception); wrong names and half pairs are refused."""
import numpy as np
import pytest

from unet_scratch import UNet, backend, ops
from unet_scratch.capstone import from_plain, op_names, use_student_ops


@pytest.fixture
def model_and_input():
    model = UNet((16, 16, 1), base_filters=2, depth=2, dropout=0.5, seed=0)
    x = np.random.default_rng(0).random((2, 16, 16, 1)).astype(np.float32)
    return model, x


def _run(model, x):
    y = model.forward(x)
    dx = model.backward(np.ones_like(y))
    return y, dx, {k: g.copy() for k, g in model.grads.items()}


def _same(a, b):
    (ya, dxa, ga), (yb, dxb, gb) = a, b
    return np.array_equal(ya, yb) and np.array_equal(dxa, dxb) and all(np.array_equal(ga[k], gb[k]) for k in ga)


REFERENCE_PAIRS = ["conv2d", "conv2d_transpose", "maxpool2d", "relu", "sigmoid", "concatenate", "dropout"]


def test_the_layers_run_the_given_functions_and_give_the_reference_results(model_and_input):
    model, x = model_and_input
    expected = _run(model, x)
    given = {n: getattr(ops, n) for p in REFERENCE_PAIRS for n in (p, p + "_backward")}
    with use_student_ops(**given) as calls:
        got = _run(model, x)
    assert _same(got, expected)
    # depth 2: 2 + 2 encoder convs, 2 bottleneck, 2 + 2 decoder, 1 head; 2 pools, 2 up-convs, 2 concats
    assert calls["conv2d"] == calls["conv2d_backward"] == 11
    assert calls["maxpool2d"] == calls["maxpool2d_backward"] == 2
    assert calls["conv2d_transpose"] == calls["concatenate"] == 2
    assert calls["relu"] == 10 and calls["sigmoid"] == 1
    assert calls["dropout"] == 2                       # the deepest encoder level and the bottleneck


def test_a_wrong_op_changes_the_result_only_inside_the_block(model_and_input):
    model, x = model_and_input
    expected = _run(model, x)

    def flipped(x, w, b, strides, padding):           # a true convolution: the classic mistake
        return ops.conv2d(x, w[::-1, ::-1], b, strides, padding)
    with use_student_ops(conv2d=flipped, conv2d_backward=ops.conv2d_backward):
        inside = model.forward(x)
    assert not np.allclose(inside, expected[0])
    assert _same(_run(model, x), expected)
    assert backend.ops() is ops                        # no replacement left behind


def test_everything_comes_back_after_an_exception(model_and_input):
    model, x = model_and_input
    expected = _run(model, x)

    def broken(*args):
        raise ZeroDivisionError("a student's bug")
    with pytest.raises(ZeroDivisionError, match="a student's bug"):
        with use_student_ops(relu=broken, relu_backward=broken):
            model.forward(x)
    assert backend.ops() is ops
    assert _same(_run(model, x), expected)


def test_unknown_names_are_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown op name 'conv2D'; the ops that can be replaced are: .*"
                                         r"conv2d, conv2d_backward"):
        with use_student_ops(conv2D=ops.conv2d):
            pass
    assert "maxpool2d_backward" in op_names() and "dropout" in op_names()


def test_a_forward_without_its_backward_is_refused():
    with pytest.raises(ValueError, match=r"conv2d is given without conv2d_backward"):
        with use_student_ops(conv2d=ops.conv2d):
            pass
    with pytest.raises(ValueError, match=r"relu_backward is given without relu\b"):
        with use_student_ops(relu_backward=ops.relu_backward):
            pass
    with pytest.raises(TypeError, match=r"relu must be a function, got int"):
        with use_student_ops(relu=1, relu_backward=ops.relu_backward):
            pass


def test_blocks_nest_and_the_inner_one_wins(model_and_input):
    model, x = model_and_input
    pair = {"relu": ops.relu, "relu_backward": ops.relu_backward}
    with use_student_ops(**pair) as outer:
        model.forward(x)
        with use_student_ops(**pair) as inner:
            model.forward(x)
        model.forward(x)
    assert outer["relu"] == 20 and inner["relu"] == 10


def test_a_backward_after_the_block_pairs_with_the_forward_inside_it(model_and_input):
    model, x = model_and_input
    expected = _run(model, x)
    with use_student_ops(conv2d=ops.conv2d, conv2d_backward=ops.conv2d_backward) as calls:
        y = model.forward(x)
    dx = model.backward(np.ones_like(y))
    assert calls["conv2d_backward"] == 11
    assert np.array_equal(dx, expected[1])


def test_the_cupy_backend_is_refused(monkeypatch):
    monkeypatch.setattr(backend, "get_backend", lambda: "cupy")
    with pytest.raises(RuntimeError, match="use_backend\\('numpy'\\)"):
        with use_student_ops(relu=ops.relu, relu_backward=ops.relu_backward):
            pass


def test_from_plain_adapts_functions_that_return_y_alone(model_and_input):
    model, x = model_and_input
    expected = _run(model, x)

    def relu(x):
        return np.maximum(x, 0)

    def relu_backward(dy, x):
        return dy * (x > 0)

    def pool(x, pool_size, strides, padding):
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

    def pool_backward(dy, x, pool_size, strides, padding):
        return ops.maxpool2d_backward(dy, ops.maxpool2d(x, pool_size, strides, padding)[1])

    with use_student_ops(**from_plain("relu", relu, relu_backward),
                         **from_plain("maxpool2d", pool, pool_backward)) as calls:
        got = _run(model, x)
    assert _same(got, expected)
    assert calls["relu_backward"] == 10 and calls["maxpool2d"] == 2


def test_from_plain_refuses_dropout_and_unknown_names():
    with pytest.raises(ValueError, match="needs the mask"):
        from_plain("dropout", lambda *a: a[0], lambda dy, *a: dy)
    with pytest.raises(ValueError, match=r"unknown op 'relu_backward'; .* one of .*conv2d"):
        from_plain("relu_backward", lambda x: x, lambda dy, x: dy)


def test_the_replaced_namespace_is_a_snapshot():
    with backend.use_ops(relu=ops.sigmoid, relu_backward=ops.sigmoid_backward):
        snapshot = backend.ops()
    assert snapshot.relu is ops.sigmoid and snapshot.conv2d is ops.conv2d
    assert "relu" in repr(snapshot)
    assert backend.ops().relu is ops.relu


def test_written_ops_leaves_out_the_stubs_and_keeps_the_rest(model_and_input):
    from unet_scratch.capstone import written_ops

    def stub(*args):
        raise NotImplementedError

    def buggy(x, w, b, strides, padding):           # a bug, not a stub: the real run must show it
        raise IndexError("off by one")
    given = {n: getattr(ops, n) for p in REFERENCE_PAIRS for n in (p, p + "_backward")}
    mine, missing = written_ops(given)
    assert mine == given and missing == []
    given.update(relu_backward=stub, maxpool2d=stub, conv2d=buggy)
    mine, missing = written_ops(given)
    assert missing == ["maxpool2d", "maxpool2d_backward", "relu", "relu_backward"]
    assert mine["conv2d"] is buggy and "relu" not in mine and mine["sigmoid"] is ops.sigmoid
    model, x = model_and_input
    del mine["conv2d"], mine["conv2d_backward"]
    with use_student_ops(**mine) as calls:         # the package's pool and ReLU run in place of the stubs
        model.forward(x)
    assert calls["sigmoid"] == 1 and "relu" not in calls
