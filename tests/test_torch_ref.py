"""The PyTorch twin: TorchUNet with every option, exact weight copies both ways with the layout conversions,
verified transfers, compare_torch (per layer, teacher-forced gradients) and lockstep_torch (SGD, Adam).

Skipped with the reason shown where PyTorch is not installed (``pip install -e '.[torch]'``); the install
hint itself is checked without it.
"""
import sys

import numpy as np
import pytest

from unet_scratch import UNet

ZHIXUHAO = dict(upsampling="resize_conv", concat_order="skip_first", head_hidden=2)
CONFIGS = [dict(), ZHIXUHAO, dict(padding="valid", input_shape=(92, 92, 2)),
           dict(out_channels=3, out_activation="softmax", dropout=0.0, **ZHIXUHAO)]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: pip install -e '.[torch]'")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def tr(torch):
    from unet_scratch import torch_ref
    return torch_ref


def _model(dtype="float32", seed=0, **kw):
    args = dict(input_shape=(16, 16, 2), base_filters=4, depth=2, seed=seed, dtype=dtype)
    return UNet(**{**args, **kw})


def _x(model, n=2, seed=1):
    return np.random.default_rng(seed).random((n, *model.input_shape)).astype(model.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", CONFIGS)
def test_weights_round_trip_exactly(tr, torch, kw, dtype):
    model = _model(dtype, **kw)
    module = tr.to_torch(model)
    assert isinstance(module, tr.TorchUNet) and module.config == model.get_config()
    state = module.state_dict()
    assert list(state) == [f"{n.rsplit('/', 1)[0]}.{'weight' if n.endswith('kernel') else 'bias'}"
                           for n in model.params]                  # the scratch order, the scratch names
    for name, p in model.params.items():
        t = state[name.replace("/kernel", ".weight").replace("/bias", ".bias")].numpy()
        assert t.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(t, p.transpose(3, 2, 0, 1) if p.ndim == 4 else p)
    back = tr.from_torch(module)
    assert back.get_config() == model.get_config()
    for name, p in model.params.items():
        np.testing.assert_array_equal(back.params[name], p)       # bit for bit, both ways


def test_layouts_are_pytorchs(tr, torch):
    module = tr.to_torch(_model())
    assert module.enc1_conv1.weight.shape == (4, 2, 3, 3)                   # Conv2d: (out, in, kh, kw)
    assert isinstance(module.dec2_upconv, torch.nn.ConvTranspose2d)
    assert module.dec2_upconv.weight.shape == (16, 8, 2, 2)                 # ConvTranspose2d: (in, out, kh, kw)
    resize = tr.to_torch(_model(**ZHIXUHAO))
    assert isinstance(resize.dec2_upsample, torch.nn.Upsample)
    assert resize.dec2_upconv.weight.shape == (8, 16, 2, 2)                 # a Conv2d after the up-sampling
    assert resize.head_hidden.weight.shape == (2, 4, 3, 3) and resize.head.weight.shape == (1, 2, 1, 1)


def test_even_same_conv_pads_after_as_tensorflow(tr, torch):
    """The 2x2 'same' conv of the up-step: 0 rows before, 1 after; torch's padding=k//2 gives a larger output."""
    from unet_scratch.frameworks.torch_model import ConvAct
    conv = ConvAct(1, 1, 2, "same")
    with torch.no_grad():
        conv.weight[:] = torch.arange(1.0, 5.0).reshape(1, 1, 2, 2)
        conv.bias.zero_()
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(conv(x)[0, 0].detach().numpy(), [[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert torch.nn.Conv2d(1, 1, 2, padding=1)(x).shape[-1] == 4


@pytest.mark.parametrize("kw", CONFIGS)
def test_forward_agrees_in_float32_and_float64(tr, torch, kw):
    for dtype, tol in (("float32", 1e-5), ("float64", 1e-12)):
        model = _model(dtype, **kw)
        module = tr.to_torch(model)
        x = _x(model)
        with torch.no_grad():
            y = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(y, model.forward(x), rtol=tol, atol=tol)


@pytest.mark.parametrize("kw", [dict(), ZHIXUHAO, dict(padding="valid", input_shape=(92, 92, 2))])
def test_compare_torch_passes(tr, torch, kw):
    model = _model(**kw)
    module = tr.to_torch(model)
    x = _x(model)
    y = (np.random.default_rng(2).random((2, *model.output_shape[1:])) > 0.5).astype(np.float32)
    for target in (y, None):
        report = tr.compare_torch(model, module, x, target)
        assert report.passed, str(report)
        assert report.framework == "PyTorch" and abs(report.loss_scratch - report.loss_framework) < 1e-5
        assert sum(r.kind == "gradient" for r in report.rows) == len(model.params)
        assert sum(r.kind == "forward" for r in report.rows) == len(model.layers)


def test_compare_torch_float64_errors(tr, torch):
    """The twin in float64: every layer within 1e-12, every weight gradient within 1e-10 (relative)."""
    model = _model("float64", **ZHIXUHAO)
    report = tr.compare_torch(model, tr.to_torch(model), _x(model))
    fwd = max(r.max_abs for r in report.rows if r.kind == "forward")
    grad = max(r.rel for r in report.rows if r.kind == "gradient")
    assert fwd <= 1e-12 and grad <= 1e-10, (fwd, grad)


def test_compare_torch_catches_a_corrupted_weight(tr, torch):
    """A check that can fail: one changed PyTorch kernel entry is reported at its layer."""
    model = _model()
    module = tr.to_torch(model)
    with torch.no_grad():
        module.dec2_conv1.weight[0, 0, 1, 1] += 0.05
    report = tr.compare_torch(model, module, _x(model))
    assert not report.passed and report.failures()[0].name == "dec2_conv1"
    assert report.verdict().startswith("FAIL")


def test_a_module_wired_otherwise_is_refused(tr, torch):
    """Same names and shapes, [skip, up] where the scratch model has [up, skip]: refused at dec2_concat."""
    model = _model()
    other = tr.TorchUNet(**{**model.get_config(), "concat_order": "skip_first"})
    with pytest.raises(ValueError, match="first layer whose output differs is dec2_concat"):
        tr.to_torch(model, other)
    with pytest.raises(ValueError, match="first layer whose output differs is dec2_concat"):
        tr.from_torch(other, _model())


def test_shapes_are_checked_before_copying(tr, torch):
    model = _model()
    wider = tr.TorchUNet(**{**model.get_config(), "base_filters": 8})
    before = wider.enc1_conv1.weight.detach().clone()
    with pytest.raises(ValueError, match=r"scratch model has enc1_conv1/kernel \(3, 3, 2, 4\) \(in PyTorch's "
                                         r"layout \(4, 2, 3, 3\)\), the PyTorch module has enc1_conv1.weight "
                                         r"\(8, 2, 3, 3\)"):
        tr.to_torch(model, wider)
    assert torch.equal(before, wider.enc1_conv1.weight)
    with pytest.raises(ValueError, match="needs a TorchUNet"):
        tr.from_torch(torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3)))


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.05), ("adam", 1e-3)])
def test_lockstep_torch(tr, torch, optimizer, lr):
    """Same weights, same batches: SGD and Adam (Keras's update, adam="keras") agree step for step, to
    rounding in float64."""
    rng = np.random.default_rng(0)
    batches = [(rng.random((2, 16, 16, 2)), (rng.random((2, 16, 16, 1)) > 0.5).astype(float)) for _ in range(4)]
    for dtype, loss_tol, weight_tol in (("float32", 1e-5, 1e-4), ("float64", 1e-13, 1e-12)):
        model = _model(dtype, dropout=0.0)
        result = tr.lockstep_torch(model, None, batches, optimizer=optimizer, steps=20, learning_rate=lr)
        assert result.framework == "PyTorch" and len(result.framework_losses) == 20
        assert result.max_rel_diff <= loss_tol and result.weight_rel_diff <= weight_tol, \
            (dtype, result.max_rel_diff, result.weight_rel_diff)
        assert result.scratch_losses[-1] < result.scratch_losses[0]


def test_pytorchs_own_adam_differs_by_the_epsilon_placement(tr, torch):
    """torch.optim.Adam as a PyTorch user writes it is a slightly different optimizer: the same curve to
    ~1e-3, but weights with gradients near eps move differently. The Keras-equivalent lr/eps per step close
    the gap to rounding (float64), so the difference is the optimizer's, not the network's."""
    rng = np.random.default_rng(0)
    batches = [(rng.random((2, 16, 16, 2)), (rng.random((2, 16, 16, 1)) > 0.5).astype(float)) for _ in range(4)]
    runs = {mode: tr.lockstep_torch(_model("float64", dropout=0.0), None, batches, optimizer="adam", steps=20,
                                    adam=mode) for mode in ("keras", "torch")}
    assert runs["keras"].weight_rel_diff < 1e-12
    assert 1e-6 < runs["torch"].max_rel_diff < 1e-2 and runs["torch"].weight_rel_diff > 1e-3
    lr, eps = tr.keras_adam_in_torch(1e-3, 0.9, 0.999, 1e-7, 1)
    assert eps == pytest.approx(1e-7 / np.sqrt(0.001)) and lr == pytest.approx(1e-3, rel=1e-4)
    with pytest.raises(ValueError, match="adam must be 'keras'"):
        tr.lockstep_torch(_model(), None, batches, optimizer="adam", adam="pytorch")


def test_the_twin_trains_like_the_scratch_model(tr, torch):
    """Dropout follows train()/eval(): off in eval mode (what the transfers and compare use)."""
    model = _model(dropout=0.5)
    module = tr.to_torch(model)
    assert not module.training
    x = torch.from_numpy(_x(model).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        a, b = module(x), module(x)
        module.train()
        c = module(x)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_missing_torch_gives_install_hint(monkeypatch):
    from unet_scratch import torch_ref
    monkeypatch.setitem(sys.modules, "torch", None)            # "not installed", as far as import goes
    with pytest.raises(ImportError, match=r"the PyTorch twin needs torch.*pip install -e '\.\[torch\]'"):
        torch_ref.import_torch()
    with pytest.raises(ImportError, match=r"pip install -e '\.\[torch\]'"):
        torch_ref.to_torch(_model())
