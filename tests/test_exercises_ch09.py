"""Chapter 09's exercise checks accept right answers, reject stubs and say what is wrong."""
import numpy as np
import pytest

from unet_scratch.bench import forward_gflop
from unet_scratch.exercises.ch09 import check_arithmetic_intensity, check_bias_relu_rows, check_conv_flops
from unet_scratch.model import UNet

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def flops(h, w, c, f, k):
    return 2 * h * w * k * k * c * f


def intensity(h, w, c, f, k, itemsize):
    return flops(h, w, c, f, k) / (itemsize * (h * w * c + k * k * c * f + h * w * f))


def bias_relu(y, b):
    np.maximum(y + b, 0, out=y)


def test_checks_accept_correct_answers(capsys):
    assert check_conv_flops(flops)
    assert check_arithmetic_intensity(intensity)
    assert check_bias_relu_rows(bias_relu)
    assert capsys.readouterr().out.count("correct") == 3


def test_the_flop_formula_adds_up_to_the_benchmark_count():
    model = UNet(input_shape=(32, 32, 1), base_filters=4, depth=2, seed=0)
    total = 0
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            _, h, w, c = layer.input_shape
            k, _, _, f = layer.params["kernel"].shape
            total += flops(h, w, c, f, k)
        elif type(layer).__name__ == "Conv2DTranspose":
            _, h, w, c = layer.input_shape
            total += 2 * h * w * int(np.prod(layer.params["kernel"].shape))
    assert total / 1e9 == pytest.approx(forward_gflop(model), rel=1e-12)


@pytest.mark.parametrize("check", [check_conv_flops, check_arithmetic_intensity, check_bias_relu_rows])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_checks_say_what_is_wrong():
    with pytest.raises(AssertionError, match=r"conv_flops\(256, 256, 1, 64, 3\): expected 75497472, got 37748736"):
        check_conv_flops(lambda h, w, c, f, k: h * w * k * k * c * f)            # MACs, not FLOPs
    with pytest.raises(AssertionError, match=r"arithmetic_intensity \(H=256 .*\): the output is wrong"):
        check_arithmetic_intensity(lambda h, w, c, f, k, s: flops(h, w, c, f, k) / (s * (h * w * c + h * w * f)))
    with pytest.raises(AssertionError, match="unchanged"):
        check_bias_relu_rows(lambda y, b: np.maximum(y + b, 0))                 # returns, does not write
    with pytest.raises(AssertionError, match=r"expected max\(y \+ b, 0\)"):
        check_bias_relu_rows(lambda y, b: np.add(np.maximum(y, 0), b, out=y))   # ReLU before the bias
