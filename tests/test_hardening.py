"""Issue 16: nothing lost, no traceback for a user's mistake. Every bad or hostile input of the issue is a row.

Each row gives an input (a command line or an API call), its expected outcome and a short id whose prefix is
the issue's category:

    loss-     data loss or corruption: nothing already saved may be lost or changed
    tb-       once a traceback: now exit 2 (the user's mistake) or 1 (not the user's), one ``error:`` line
    silent-   once a silently wrong result: now refused, or done right
    unclear-  once an unclear error: now a message that names the problem and the fix
    also-     memory, exit codes, temporary files, umask, fsync, the checkpoint/weights pair, ``--help``

The command line runs in-process (``main([...])`` with capsys) except where a real process matters (Ctrl-C,
another process holding a run folder, the exit status of ``python -m``). Models are tiny (32 x 32, base 2,
depth 2), so the module runs in well under a minute.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest

from unet_scratch import UNet, data, images, inference, serialization, training
from unet_scratch.__main__ import main
from unet_scratch.optimizers import SGD, Adam, get_optimizer

TINY = ["--size", "32", "--base-filters", "2", "--depth", "2", "--n-train", "2", "--batch-size", "2",
        "--backend", "numpy"]
FILES = ("checkpoint.npz", "weights.npz", "history.json")


# --------------------------------------------------------------------------------------------- helpers
@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


def cli(capsys, *argv) -> Result:
    """Run ``python -m unet_scratch ARGV`` in this process."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:                  # argparse's own exit, should main let one through
        code = stop.code
    except KeyboardInterrupt:                   # would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped main()")
    out, err = capsys.readouterr()
    return Result(code, out, err)


def one_error(r: Result, *needles, code=2):
    """Exit ``code``, no traceback, exactly one ``error:`` line, containing every needle."""
    assert "Traceback" not in r.err + r.out, r.err
    lines = [line for line in r.err.splitlines() if "error:" in line]
    assert r.code == code, (r.code, r.err[-2000:])
    assert len(lines) == 1, r.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def train_args(out, *extra, epochs=1):
    return ["train", "--out", out, "--epochs", epochs, *TINY, *extra]


def snapshot(folder):
    """{name: bytes} of the run files in folder (what must not change)."""
    return {n: (folder / n).read_bytes() for n in FILES if (folder / n).exists()}


def copy_run(run, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def params_of(model):
    return {k: np.array(v) for k, v in model.params.items()}


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def tiny_model(seed=0, **kw):
    kw = {"base_filters": 2, "depth": 2, "dropout": 0, **kw}
    return UNet((32, 32, kw.pop("channels", 1)), seed=seed, **kw)


def png_header(width, height, bitdepth=8, colortype=0):
    """A PNG whose header claims width x height pixels, with (almost) no pixel data: only the header is read."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, bitdepth, colortype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def env():
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# -------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished one-epoch run folder (never modified: tests copy it)."""
    out = tmp_path_factory.mktemp("hardening") / "run"
    code = main([str(a) for a in train_args(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    from PIL import Image
    d = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 44)) * 255).astype(np.uint8)).save(d / "grey.png")
    Image.fromarray((rng.random((40, 44, 3)) * 255).astype(np.uint8)).save(d / "rgb.png")
    return d


@pytest.fixture(scope="module")
def tiny_data():
    return data.membranes(2, size=32, seed=3)


@pytest.fixture
def unwritable(tmp_path):
    """A folder where creating a file fails (a read-only folder; /sys when running as root)."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        yield d
        d.chmod(0o700)
        return
    try:
        open("/sys/.unet-probe", "w").close()
    except OSError:
        yield __import__("pathlib").Path("/sys")
        return
    pytest.skip("no unwritable folder on this machine (root, and /sys is writable)")


def predict_args(weights, inp, out, *extra):
    return ["predict", "--weights", weights, "--input", inp, "--output", out, *extra]


# ============================================================================ loss-: data loss, corruption
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_loss_diverged_resume_keeps_the_good_checkpoint(tmp_path, tiny_data):
    """Issue repro: a run whose learning rate jumps to 1e39 after epoch 1, no val: the good checkpoint survives.

    (The issue resumed with ``learning_rate=1e39``; a changed rate is now refused on resume, so the jump
    comes from the run's own schedule.)"""
    schedule = lambda e: 1e-3 if e < 1 else 1e39          # noqa: E731
    training.fit(tiny_model(), tiny_data, epochs=1, batch_size=2, lr_schedule=schedule,
                 checkpoint_dir=tmp_path, verbose=0)
    good = (tmp_path / "checkpoint.npz").read_bytes()
    h = training.fit(tiny_model(), tiny_data, epochs=4, batch_size=2, lr_schedule=schedule,
                     checkpoint_dir=tmp_path, resume=True, verbose=0)
    assert h.stop_reason and "epoch 2" in h.stop_reason
    assert (tmp_path / "checkpoint.npz").read_bytes() == good
    assert "after epoch 1" in h.stop_reason


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_loss_diverged_fresh_run_claims_no_good_checkpoint(tmp_path, tiny_data):
    h = training.fit(tiny_model(), tiny_data, epochs=3, batch_size=2, learning_rate=1e39,
                     checkpoint_dir=tmp_path, verbose=0)
    assert h.stop_reason and "no checkpoint was written" in h.stop_reason
    assert "last good" not in h.stop_reason
    assert not (tmp_path / "checkpoint.npz").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_loss_diverged_last_step_is_not_silent(tiny_data):
    """One epoch of one step: the step that blows the weights up is the last; fit must still say so."""
    model = tiny_model()
    h = training.fit(model, tiny_data, epochs=1, batch_size=2, learning_rate=1e39, verbose=0)
    assert h.stop_reason and "NaN or Inf" in h.stop_reason


class _Poison(Adam):
    """Adam that writes one NaN into a kernel on its second step (weights bad, loss still finite)."""

    def apply(self, params, grads):
        super().apply(params, grads)
        if self.iterations == 2:
            params["dec1_conv2/kernel"][0, 0, 0, 0] = np.nan


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_loss_nan_weights_with_a_finite_loss_never_reach_a_checkpoint(tmp_path, tiny_data):
    h = training.fit(tiny_model(), tiny_data, epochs=3, batch_size=2, optimizer=_Poison(),
                     checkpoint_dir=tmp_path, verbose=0)
    assert h.stop_reason and "epoch 2" in h.stop_reason and "after epoch 1" in h.stop_reason
    with np.load(tmp_path / "checkpoint.npz") as f:
        assert all(np.isfinite(f[k]).all() for k in f.files if k.startswith("param/"))
    state = training.load_checkpoint(tmp_path / "checkpoint.npz", tiny_model(), _Poison())
    assert state["epoch"] == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_loss_float16_model_stops_and_saves_no_nan(tmp_path):
    """float16 at the default rate overflows within the first epoch: it must stop, save nothing bad and
    not claim a good checkpoint that does not exist."""
    x, m = data.membranes(4, size=64, seed=3)
    model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0, seed=0, dtype="float16",
                 kernel_initializer="he_normal")
    h = training.fit(model, (x, m), epochs=2, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    assert h.stop_kind == "diverged" and "no checkpoint was written" in h.stop_reason
    assert not (tmp_path / "checkpoint.npz").exists()


def _poisoned_weights(tmp_path, model, last, value):
    model.save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays[last] = value(arrays[last])
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("bad", ["nan", "int32", "overflow"])
def test_loss_load_weights_checks_everything_before_assigning(tmp_path, bad):
    value = {"nan": lambda a: np.full_like(a, np.nan), "int32": lambda a: a.astype(np.int32),
             "overflow": lambda a: np.full(a.shape, 1e39)}[bad]
    path = _poisoned_weights(tmp_path, tiny_model(seed=1), "head/bias", value)
    model = tiny_model(seed=2)
    before = params_of(model)
    with pytest.raises((ValueError, TypeError)):
        model.load_weights(path)
    assert same(params_of(model), before)


def test_loss_set_weights_checks_everything_before_assigning():
    model, other = tiny_model(seed=2), tiny_model(seed=1)
    weights = params_of(other)
    weights["head/bias"] = np.array([np.inf], np.float32)
    before = params_of(model)
    with pytest.raises(ValueError, match="head/bias"):
        model.set_weights(weights)
    assert same(params_of(model), before)


def test_loss_load_checkpoint_with_nan_leaves_model_and_optimizer_untouched(run, tmp_path):
    with np.load(run / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["param/head/kernel"] = np.full_like(arrays["param/head/kernel"], np.nan)
    np.savez(tmp_path / "c.npz", **arrays)
    model, opt = tiny_model(seed=5), get_optimizer("adam")
    before = params_of(model)
    with pytest.raises(ValueError, match="head/kernel"):
        training.load_checkpoint(tmp_path / "c.npz", model, opt)
    assert same(params_of(model), before) and opt.iterations == 0


def test_loss_resume_with_another_optimizer_type_touches_nothing(tmp_path, tiny_data):
    training.fit(tiny_model(), tiny_data, epochs=1, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    model = tiny_model(seed=9)
    before = params_of(model)
    with pytest.raises(ValueError, match="optimizer"):
        training.fit(model, tiny_data, epochs=2, batch_size=2, optimizer="sgd", checkpoint_dir=tmp_path,
                     resume=True, verbose=0)
    assert same(params_of(model), before)


def test_loss_load_checkpoint_into_another_optimizer_touches_nothing(run):
    model, opt = tiny_model(seed=9), SGD(momentum=0.9)
    before = params_of(model)
    with pytest.raises(ValueError, match="optimizer"):
        training.load_checkpoint(run / "checkpoint.npz", model, opt)
    assert same(params_of(model), before) and opt.iterations == 0


@pytest.fixture
def busy_folder(tmp_path):
    """A run folder locked by another live process (which holds the lock until the test ends)."""
    folder = tmp_path / "busy"
    code = ("import sys, time; from unet_scratch.training import runlock; "
            "lock = runlock.RunLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert p.stdout.readline().strip() == "locked"
        yield folder
    finally:
        p.kill()
        p.wait()


def test_loss_second_train_into_a_busy_folder_is_refused(busy_folder, capsys):
    r = cli(capsys, *train_args(busy_folder))
    one_error(r, "in use", "--out")
    assert not (busy_folder / "checkpoint.npz").exists()


def test_loss_fit_into_a_busy_folder_is_refused(busy_folder, tiny_data):
    with pytest.raises(training.RunFolderBusy, match="in use"):
        training.fit(tiny_model(), tiny_data, epochs=1, batch_size=2, checkpoint_dir=busy_folder, verbose=0)


def test_loss_a_real_second_run_is_refused_while_the_first_trains(tmp_path, capsys):
    folder = tmp_path / "shared"
    first = subprocess.Popen([sys.executable, "-m", "unet_scratch", *map(str, train_args(folder, epochs=100000))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        line = first.stdout.readline()
        assert "training a U-Net" in line, line + first.stderr.read()
        r = cli(capsys, *train_args(folder, epochs=2))
        one_error(r, "in use", str(first.pid))
    finally:
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "Traceback" not in err


def test_loss_stale_lock_of_a_dead_process_is_taken_over(run, tmp_path, capsys):
    folder = copy_run(run, tmp_path)
    (folder / ".lock").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(),
                                              "started": time.time() - 60}))
    r = cli(capsys, *train_args(folder, epochs=2))
    assert r.code == 0, r.err
    assert "stale" in r.out + r.err
    assert not (folder / ".lock").exists()


def test_loss_lock_of_another_host_is_refused(run, tmp_path, capsys):
    folder = copy_run(run, tmp_path)
    (folder / ".lock").write_text(json.dumps({"pid": 1, "host": "another-host.example", "started": time.time()}))
    before = snapshot(folder)
    one_error(cli(capsys, *train_args(folder, epochs=2)), "another-host.example", ".lock")
    assert snapshot(folder) == before


def test_loss_lock_is_released_after_a_run(run):
    assert not (run / ".lock").exists()


CHANGED = [
    ("dataset", ["--dataset", "cells"], "--dataset"),
    ("size", ["--size", "64"], "--size"),
    ("dropout", ["--dropout", "0.3"], "--dropout"),
    ("lr", ["--lr", "0.01"], "--lr"),
    ("base-filters", ["--base-filters", "4"], "--base-filters"),
    ("depth", ["--depth", "1"], "--depth"),
    ("n-train", ["--n-train", "3"], "--n-train"),
    ("data-seed", ["--data-seed", "1"], "--data-seed"),
    ("loss", ["--loss", "dice"], "--loss"),
    ("batch-size", ["--batch-size", "1"], "--batch-size"),
    ("augment", ["--augment", "elastic"], "--augment"),
    ("seed", ["--seed", "3"], "--seed"),
]


@pytest.mark.parametrize("flags,named", [c[1:] for c in CHANGED], ids=[f"resume-changed-{c[0]}" for c in CHANGED])
def test_loss_resume_with_changed_settings_is_refused(run, tmp_path, capsys, flags, named):
    folder = copy_run(run, tmp_path)
    before = snapshot(folder)
    one_error(cli(capsys, *train_args(folder, *flags, epochs=2)), named, "--fresh")
    assert snapshot(folder) == before


def test_loss_fresh_starts_afresh(run, tmp_path, capsys):
    folder = copy_run(run, tmp_path)
    r = cli(capsys, *train_args(folder, "--dataset", "cells", "--fresh", epochs=1))
    assert r.code == 0, r.err
    assert "resuming" not in r.out
    assert len(json.loads((folder / "history.json").read_text())["history"]["loss"]) == 1


FIT_CHANGES = {
    "dropout": lambda kw: kw.update(model=tiny_model(dropout=0.3)),
    "learning-rate": lambda kw: kw.update(learning_rate=0.01),
    "lr-schedule": lambda kw: kw.update(lr_schedule=lambda e: 1e-4),
    "adam-beta": lambda kw: kw.update(optimizer=Adam(beta_1=0.5)),
    "sgd-momentum": lambda kw: kw.update(optimizer=SGD(momentum=0.5)),
    "data": lambda kw: kw.update(train=data.membranes(2, size=32, seed=4)),
    "model-kernel-initializer": lambda kw: kw.update(model=tiny_model(kernel_initializer="he_normal")),
}


@pytest.mark.parametrize("change", list(FIT_CHANGES), ids=[f"fit-resume-changed-{k}" for k in FIT_CHANGES])
def test_loss_fit_resume_compares_every_setting(tmp_path, tiny_data, change):
    base = dict(model=tiny_model(), train=tiny_data, optimizer="adam")
    if change == "sgd-momentum":
        base["optimizer"] = SGD(momentum=0.9)
    training.fit(base["model"], base["train"], epochs=1, batch_size=2, optimizer=base["optimizer"],
                 checkpoint_dir=tmp_path, verbose=0)
    good = (tmp_path / "checkpoint.npz").read_bytes()
    kw = dict(base, model=tiny_model(seed=7))
    if change == "sgd-momentum":
        kw["optimizer"] = SGD(momentum=0.9)
    FIT_CHANGES[change](kw)
    model = kw.pop("model")
    before = params_of(model)
    with pytest.raises(ValueError, match="changed"):
        training.fit(model, kw.pop("train"), epochs=2, batch_size=2, checkpoint_dir=tmp_path, resume=True,
                     verbose=0, **kw)
    assert same(params_of(model), before)
    assert (tmp_path / "checkpoint.npz").read_bytes() == good


def _enospc_save(real_save):
    """Image.save that writes half a file, then fails like a full disk."""
    def save(self, fp, *args, **kwargs):
        if hasattr(fp, "write"):
            fp.write(b"\x89PNG half")
        else:
            with open(fp, "wb") as f:
                f.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")
    return save


@pytest.mark.parametrize("which", ["--output", "--probabilities"])
def test_loss_full_disk_keeps_the_previous_image(run, pngs, tmp_path, capsys, monkeypatch, which):
    from PIL import Image
    outs = {"--output": tmp_path / "m.png", "--probabilities": tmp_path / "p.png"}
    args = predict_args(run / "weights.npz", pngs / "grey.png", outs["--output"], "--probabilities", outs["--probabilities"])
    assert cli(capsys, *args).code == 0
    before = outs[which].read_bytes()
    real = Image.Image.save
    calls = []

    def save(self, fp, *a, **kw):
        calls.append(1)
        if (which == "--output") == (len(calls) == 1):
            return _enospc_save(real)(self, fp, *a, **kw)
        return real(self, fp, *a, **kw)
    monkeypatch.setattr(Image.Image, "save", save)
    one_error(cli(capsys, *args), "space", code=1)
    assert outs[which].read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_loss_full_disk_during_training_keeps_the_checkpoint(run, tmp_path, capsys, monkeypatch):
    folder = copy_run(run, tmp_path)
    before = snapshot(folder)

    def full(f, **arrays):
        f.write(b"PK half a file")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "savez", full)
    one_error(cli(capsys, *train_args(folder, epochs=2)), "space", code=1)
    assert snapshot(folder)["checkpoint.npz"] == before["checkpoint.npz"]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".tmp")] == []


def _mismatched_pair(run, tmp_path, capsys):
    """A run folder as a kill between writing checkpoint.npz and weights.npz leaves it."""
    folder = copy_run(run, tmp_path)
    old_weights = (folder / "weights.npz").read_bytes()
    assert cli(capsys, *train_args(folder, epochs=2)).code == 0
    (folder / "weights.npz").write_bytes(old_weights)
    return folder


def test_loss_weights_older_than_their_checkpoint_are_detected(run, pngs, tmp_path, capsys):
    folder = _mismatched_pair(run, tmp_path, capsys)
    one_error(cli(capsys, *predict_args(folder / "weights.npz", pngs / "grey.png", tmp_path / "m.png")),
              "checkpoint.npz")


def test_loss_weights_older_than_their_checkpoint_are_rewritten_on_resume(run, tmp_path, capsys, tiny_data):
    folder = _mismatched_pair(run, tmp_path, capsys)
    assert cli(capsys, *train_args(folder, epochs=3)).code == 0
    m1, m2 = inference.load_model(folder / "weights.npz"), inference.load_model(folder / "checkpoint.npz")
    assert same(params_of(m1), params_of(m2))


# ================================================================================ tb-: tracebacks
def _write(path, content):
    path.write_bytes(content)
    return path


BAD_IMAGES = {
    "empty": (lambda d, p: _write(d / "empty.png", b""), "empty"),
    "text": (lambda d, p: _write(d / "notes.png", b"these are my notes, not pixels\n" * 4), "not an image"),
    "truncated": (lambda d, p: _write(d / "cut.png", (p / "grey.png").read_bytes()[:300]), "truncated"),
    "bomb": (lambda d, p: _write(d / "bomb.png", png_header(30000, 30000)), "pixels"),
    "directory": (lambda d, p: (d / "no-images").mkdir() or d / "no-images", "is a folder with no images"),
    "missing": (lambda d, p: d / "nope.png", "no such image"),
}


@pytest.mark.parametrize("kind", list(BAD_IMAGES), ids=[f"predict-input-{k}" for k in BAD_IMAGES])
def test_tb_predict_bad_input_image(run, pngs, tmp_path, capsys, kind):
    make, needle = BAD_IMAGES[kind]
    path = make(tmp_path, pngs)
    one_error(cli(capsys, *predict_args(run / "weights.npz", path, tmp_path / "m.png")), needle)
    assert not (tmp_path / "m.png").exists()


BAD_OUTPUTS = {
    "missing-folder": (lambda t, u: t / "no" / "such" / "m.png", "does not exist"),
    "unwritable": (lambda t, u: u / "m.png", "cannot write"),
    "no-extension": (lambda t, u: t / "mask", ".png"),
    "a-directory": (lambda t, u: t, "directory"),
    "parent-is-a-file": (lambda t, u: _write(t / "f", b"x") / "m.png", "not a folder"),
}


@pytest.mark.parametrize("kind", list(BAD_OUTPUTS), ids=[f"predict-output-{k}" for k in BAD_OUTPUTS])
def test_tb_predict_bad_output_is_refused_before_computing(run, pngs, tmp_path, capsys, monkeypatch, unwritable, kind):
    make, needle = BAD_OUTPUTS[kind]
    monkeypatch.setattr(inference, "predict_tiled", lambda *a, **k: pytest.fail("predicted before checking outputs"))
    one_error(cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", make(tmp_path, unwritable))), needle)


def test_tb_predict_unwritable_probabilities_are_refused_before_the_mask_is_written(run, pngs, tmp_path, capsys, unwritable):
    r = cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", tmp_path / "m.png",
                                  "--probabilities", unwritable / "p.png"))
    one_error(r, "--probabilities", "cannot write")
    assert not (tmp_path / "m.png").exists()


def test_tb_predict_overlay_with_an_rgb_model(pngs, tmp_path, capsys):
    tiny_model(channels=3).save_weights(tmp_path / "rgb.npz")
    r = cli(capsys, *predict_args(tmp_path / "rgb.npz", pngs / "rgb.png", tmp_path / "m.png", "--overlay",
                                  tmp_path / "o.png"))
    assert r.code == 0, r.err
    from PIL import Image
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (40, 44, 3)


def _weights_file(tmp_path, run, edit):
    with np.load(run / "weights.npz") as f:
        arrays = {k: f[k] for k in f.files}
    edit(arrays)
    np.savez(tmp_path / "w.npz", **arrays)
    return tmp_path / "w.npz"


def _set_config(arrays, **change):
    cfg = json.loads(str(arrays["__config__"][()]))
    cfg.update(change)
    arrays["__config__"] = np.array(json.dumps(cfg))


BAD_WEIGHTS = {
    "int32": (lambda t, r: _weights_file(t, r, lambda a: a.update({k: v.astype(np.int32) for k, v in a.items()
                                                                     if not k.startswith("__")})), "floating"),
    "config-depth-negative": (lambda t, r: _weights_file(t, r, lambda a: _set_config(a, depth=-1)), "config"),
    "config-base-text": (lambda t, r: _weights_file(t, r, lambda a: _set_config(a, base_filters="many")), "config"),
    "config-unknown-key": (lambda t, r: _weights_file(t, r, lambda a: _set_config(a, colour="blue")), "config"),
    "npy": (lambda t, r: (np.save(t / "w.npy", np.zeros(3)), t / "w.npy")[1], ".npy"),
    "directory": (lambda t, r: t, "directory"),
    "png": (lambda t, r: _write(t / "w.npz", b"\x89PNG\r\n\x1a\n" + bytes(200)), "not a readable .npz"),
    "missing": (lambda t, r: t / "none.npz", "no such"),
    "no-config": (lambda t, r: _weights_file(t, r, lambda a: a.pop("__config__")), "no model config"),
}


@pytest.mark.parametrize("kind", list(BAD_WEIGHTS), ids=[f"predict-weights-{k}" for k in BAD_WEIGHTS])
def test_tb_predict_bad_weights(run, pngs, tmp_path, capsys, kind):
    make, needle = BAD_WEIGHTS[kind]
    one_error(cli(capsys, *predict_args(make(tmp_path, run), pngs / "grey.png", tmp_path / "m.png")), needle)


BAD_TRAIN = {
    "backend-foo": (["--backend", "foo"], "--backend"),
    "n-train-0": (["--n-train", "0"], "--n-train"),
    "size-8": (["--size", "8"], "--size"),
    "size-30": (["--size", "30"], "28 or 32"),
    "depth-0": (["--depth", "0"], "--depth"),
    "dropout-1": (["--dropout", "1"], "--dropout"),
    "dropout-negative": (["--dropout", "-0.5"], "--dropout"),
    "batch-size-0": (["--batch-size", "0"], "--batch-size"),
    "epochs-negative": (["--epochs", "-1"], "--epochs"),
    "lr-0": (["--lr", "0"], "--lr"),
    "lr-nan": (["--lr", "nan"], "--lr"),
    "lr-negative": (["--lr", "-1"], "--lr"),
    "base-filters-0": (["--base-filters", "0"], "--base-filters"),
    "time-limit-negative": (["--time-limit", "-5"], "--time-limit"),
    "size-text": (["--size", "big"], "--size"),
}


@pytest.mark.parametrize("kind", list(BAD_TRAIN), ids=[f"train-{k}" for k in BAD_TRAIN])
def test_tb_train_bad_arguments(tmp_path, capsys, kind):
    flags, needle = BAD_TRAIN[kind]
    one_error(cli(capsys, *train_args(tmp_path / "r", *flags)), needle)
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_tb_train_cupy_without_cupy_is_one_line_printed_once(tmp_path, capsys):
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    r = cli(capsys, *train_args(tmp_path / "r", "--backend", "cupy"))
    line = one_error(r, "cupy")
    assert r.err.count("pip install") == 1, r.err
    assert "pip install" in line


@pytest.mark.parametrize("kind", ["a-file", "unwritable", "parent-is-a-file"])
def test_tb_train_bad_out(tmp_path, capsys, unwritable, kind):
    out = {"a-file": lambda: _write(tmp_path / "out", b"x"), "unwritable": lambda: unwritable / "run",
           "parent-is-a-file": lambda: _write(tmp_path / "f", b"x") / "run"}[kind]()
    one_error(cli(capsys, *train_args(out)), "--out")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_tb_train_nan_loss_stops_cleanly(tmp_path, capsys):
    r = cli(capsys, *train_args(tmp_path / "r", "--lr", "1e30", epochs=3))
    one_error(r, "--lr", code=1)
    assert "stopped:" in r.out
    assert "last good" not in r.out + r.err
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


BAD_OTHER = {
    "compare-batch-0": (["compare", "--size", "32", "--base-filters", "2", "--depth", "2", "--batch", "0"], "--batch"),
    "compare-size-30": (["compare", "--size", "30", "--depth", "2"], "28 or 32"),
    "compare-channels-0": (["compare", "--size", "32", "--depth", "2", "--channels", "0"], "--channels"),
    "summary-depth-0": (["summary", "--depth", "0"], "--depth"),
    "summary-base-filters-0": (["summary", "--base-filters", "0"], "--base-filters"),
    "summary-size-negative": (["summary", "--size", "-16"], "--size"),
    "unknown-command": (["fly"], "fly"),
}


@pytest.mark.parametrize("kind", list(BAD_OTHER), ids=list(BAD_OTHER))
def test_tb_other_commands(capsys, kind):
    argv, needle = BAD_OTHER[kind]
    one_error(cli(capsys, *argv), needle)


def test_tb_ctrl_c_outside_the_training_loop_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(data, "load", interrupted)
    r = cli(capsys, *train_args(tmp_path / "r"))
    one_error(r, "interrupted", code=130)
    assert not (tmp_path / "r" / ".lock").exists()


def test_tb_ctrl_c_during_predict_exits_130(run, pngs, tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(inference, "predict_tiled", interrupted)
    one_error(cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", tmp_path / "m.png")),
              "interrupted", code=130)
    assert not (tmp_path / "m.png").exists()


def test_tb_an_internal_error_is_one_line_and_exit_1(run, pngs, tmp_path, capsys, monkeypatch):
    def broken(*a, **k):
        return 1 / 0
    monkeypatch.setattr(inference, "predict_tiled", broken)
    one_error(cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", tmp_path / "m.png")),
              "--debug", code=1)


def test_tb_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(Exception, match="28 or 32"):
        main(["train", "--debug", "--out", str(tmp_path / "r"), *TINY, "--size", "30"])


# ============================================================================ silent-: silently wrong
def test_silent_augment_none_means_no_augmentation(tiny_data):
    a, b = tiny_model(), tiny_model()
    training.fit(a, tiny_data, epochs=1, batch_size=2, augment="none", verbose=0)
    training.fit(b, tiny_data, epochs=1, batch_size=2, augment=False, verbose=0)
    assert same(params_of(a), params_of(b))


@pytest.mark.parametrize("augment", ["flips", "yes", 2])
def test_silent_unknown_augment_is_refused(tiny_data, augment):
    with pytest.raises(ValueError, match="augment"):
        training.fit(tiny_model(), tiny_data, epochs=1, batch_size=2, augment=augment, verbose=0)


def test_silent_epochs_0_is_refused(tmp_path, capsys):
    one_error(cli(capsys, *train_args(tmp_path / "r", epochs=0)), "--epochs")
    assert not (tmp_path / "r" / "weights.npz").exists()


def test_silent_a_finished_run_says_nothing_was_trained(run, tmp_path, capsys):
    folder = copy_run(run, tmp_path)
    before = snapshot(folder)
    r = cli(capsys, *train_args(folder, epochs=1))
    assert r.code == 0, r.err
    assert "nothing to train" in r.out and "wrote" not in r.out.replace("already", "")
    assert snapshot(folder) == before


@pytest.mark.parametrize("flag,name", [("--output", "m.jpg"), ("--probabilities", "p.jpeg")])
def test_silent_lossy_mask_formats_are_refused(run, pngs, tmp_path, capsys, flag, name):
    extra = [] if flag == "--output" else [flag, tmp_path / name]
    out = tmp_path / (name if flag == "--output" else "m.png")
    one_error(cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", out, *extra)), ".png")
    assert not out.exists()


@pytest.mark.parametrize("threshold", ["nan", "2", "-0.5", "1", "0"])
def test_silent_threshold_outside_0_1_is_refused(run, pngs, tmp_path, capsys, threshold):
    one_error(cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", tmp_path / "m.png",
                                        "--threshold", threshold)), "--threshold")


@pytest.mark.parametrize("tile", ["4", "8", "0", "-4", "30"])
def test_silent_tiles_that_change_the_result_are_refused(run, pngs, tmp_path, capsys, tile):
    one_error(cli(capsys, *predict_args(run / "weights.npz", pngs / "grey.png", tmp_path / "m.png",
                                        "--tile", tile)), "--tile")


def test_silent_predict_tiled_without_margin_is_refused(rng):
    with pytest.raises(ValueError, match="margin"):
        inference.predict_tiled(tiny_model(), rng.random((40, 40), dtype=np.float32), tile=8)


def _palette_png(path, colours):
    from PIL import Image
    im = Image.fromarray(np.arange(40 * 40, dtype=np.uint8).reshape(40, 40) % 4, mode="P")
    im.putpalette([c for rgb in colours for c in rgb] + [0] * (768 - 3 * len(colours)))
    im.save(path)
    return path


def test_silent_colour_palette_png_is_refused_like_rgb(run, tmp_path, capsys):
    path = _palette_png(tmp_path / "pal.png", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 10, 10)])
    one_error(cli(capsys, *predict_args(run / "weights.npz", path, tmp_path / "m.png")), "--grayscale")


def test_silent_grey_palette_png_is_read(run, tmp_path, capsys):
    path = _palette_png(tmp_path / "pal.png", [(0, 0, 0), (80, 80, 80), (160, 160, 160), (255, 255, 255)])
    assert cli(capsys, *predict_args(run / "weights.npz", path, tmp_path / "m.png")).code == 0
    a = images.read_image(path)
    assert sorted(np.unique(np.round(a * 255)).tolist()) == [0, 80, 160, 255]


def _png16(path, maximum):
    from PIL import Image
    a = (np.random.default_rng(0).random((32, 32)) * maximum).astype(np.uint16)
    a[0, 0] = maximum
    Image.fromarray(a).save(path)
    return path


def test_silent_12_bit_data_in_a_16_bit_png_is_named(run, tmp_path, capsys):
    path = _png16(tmp_path / "d12.png", 4095)
    r = cli(capsys, *predict_args(run / "weights.npz", path, tmp_path / "m.png"))
    assert r.code == 0, r.err
    assert "--bits 12" in r.err and "warning:" in r.err


def test_silent_bits_12_reads_12_bit_data_as_0_to_1(tmp_path):
    path = _png16(tmp_path / "d12.png", 4095)
    assert images.read_image(path, bits=12).max() == 1.0
    with pytest.raises(ValueError, match="bits"):
        images.read_image(_png16(tmp_path / "d16.png", 60000), bits=12)


@pytest.mark.parametrize("scale", [255.0, -1.0])
def test_silent_float_images_outside_0_1_are_refused_for_training(tiny_data, scale):
    x, m = tiny_data
    with pytest.raises(ValueError, match="255" if scale > 1 else "0, 1"):
        training.fit(tiny_model(), (x * scale, m), epochs=1, batch_size=2, verbose=0)


@pytest.mark.parametrize("kw,needle", [
    (dict(input_shape=(32, 32, 0)), "channels"),
    (dict(base_filters=2.7), "base_filters"),
    (dict(depth=1.5), "depth"),
    (dict(input_shape=(32.5, 32, 1)), "input_shape"),
    (dict(base_filters=True), "base_filters"),
], ids=["channels-0", "base-filters-2.7", "depth-1.5", "height-32.5", "base-filters-bool"])
def test_silent_unet_arguments_are_not_rounded(kw, needle):
    kw = {"input_shape": (32, 32, 1), "base_filters": 2, "depth": 2, **kw}
    with pytest.raises((ValueError, TypeError), match=needle):
        UNet(**kw)


def test_silent_bench_with_unknown_backends_is_refused(capsys, monkeypatch):
    from unet_scratch import bench
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("the benchmark ran"))
    r = cli(capsys, "bench", "--quick", "--backends", "foo")
    assert r.code == 2 and "foo" in r.err and "Traceback" not in r.err


# ============================================================================ unclear-: unclear errors
def test_unclear_channels_first_batch_to_predict(rng):
    with pytest.raises(ValueError, match="channels-first"):
        inference.predict(tiny_model(), rng.random((2, 1, 32, 32), dtype=np.float32))


def test_unclear_empty_batch_to_predict():
    with pytest.raises(ValueError, match="no images"):
        inference.predict(tiny_model(), np.zeros((0, 32, 32, 1), np.float32))


@pytest.mark.parametrize("fn", ["predict", "predict_tiled"])
def test_unclear_batch_size_0(fn, rng):
    x = rng.random((32, 32, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="batch_size"):
        getattr(inference, fn)(tiny_model(), x, batch_size=0)


def test_unclear_wrong_shape_dy_in_backward(rng):
    model = tiny_model()
    model.forward(rng.random((1, 32, 32, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"dy has shape \(1, 16, 16, 1\), expected \(1, 32, 32, 1\)"):
        model.backward(np.ones((1, 16, 16, 1), np.float32))


def test_unclear_nan_in_a_weights_file_names_the_file_not_the_images(tmp_path):
    path = _poisoned_weights(tmp_path, tiny_model(seed=1), "enc1_conv1/kernel", lambda a: np.full_like(a, np.nan))
    with pytest.raises(ValueError) as err:
        tiny_model().load_weights(path)
    assert "bad.npz" in str(err.value) and "nan_to_num" not in str(err.value)
    assert "checkpoint" in str(err.value)


def test_unclear_config_that_is_not_json(run, pngs, tmp_path, capsys):
    path = _weights_file(tmp_path, run, lambda a: a.update(__config__=np.array("{depth: 2")))
    line = one_error(cli(capsys, *predict_args(path, pngs / "grey.png", tmp_path / "m.png")), "config", "JSON")
    assert "Expecting" not in line.split("JSON")[0]


def test_unclear_pickled_checkpoint_says_how_to_start_afresh(run, tmp_path, capsys):
    folder = copy_run(run, tmp_path)
    np.savez(folder / "checkpoint.npz", a=np.array([{"x": 1}], dtype=object))
    one_error(cli(capsys, *train_args(folder, epochs=2)), "--fresh")
    with pytest.raises(ValueError, match="afresh"):
        training.fit(tiny_model(), data.membranes(2, size=32), epochs=2, batch_size=2,
                     resume=folder / "checkpoint.npz", verbose=0)


@pytest.mark.parametrize("kw,needle", [
    (dict(epochs=None), "epochs"),
    (dict(epochs=2.5), "epochs"),
    (dict(resume=True), "checkpoint_dir"),
    (dict(batch_size=0), "batch_size"),
    (dict(resume="no-such-checkpoint.npz"), "no such checkpoint"),
], ids=["epochs-none", "epochs-2.5", "resume-without-folder", "batch-size-0", "resume-missing"])
def test_unclear_fit_arguments(tiny_data, kw, needle):
    kw = {"epochs": 1, **kw}
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=needle):
        training.fit(tiny_model(), tiny_data, batch_size=kw.pop("batch_size", 2), verbose=0, **kw)


def test_unclear_from_keras_with_a_nan_weight_loads_nothing(keras):
    from unet_scratch import keras_ref
    model = tiny_model(seed=3)
    km = keras_ref.to_keras(tiny_model(seed=4))
    km.get_layer("head").bias.assign(np.array([np.nan], np.float32))
    before = params_of(model)
    with pytest.raises(ValueError, match="head/bias"):
        keras_ref.from_keras(km, model)
    assert same(params_of(model), before)


# ============================================================================ also-: memory
def test_also_memory_estimate_of_a_13000_pixel_image():
    need = inference.estimate_memory(tiny_model(), (13000, 13000, 1))
    assert need["total"] > 4e9 and need["image"] > 4e9


def test_also_memory_estimate_of_a_2048_tile():
    model = UNet((32, 32, 1), base_filters=32, depth=2, dropout=0, seed=0)
    need = inference.estimate_memory(model, (5000, 5000, 1), tile=2048)
    assert need["batch"] > 4e9
    assert inference.estimate_memory(model, (5000, 5000, 1), tile=256)["batch"] < 2e9


def test_also_memory_estimate_of_a_small_image_is_small():
    assert inference.estimate_memory(tiny_model(), (64, 64, 1))["total"] < 20e6


def test_also_predict_tiled_refuses_before_allocating():
    huge = np.broadcast_to(np.float32(0.5), (13000, 13000))       # zero strides: no memory behind it
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match="GB"):
            inference.predict_tiled(tiny_model(), huge, max_memory=4e9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6


@pytest.mark.parametrize("shape,flags,needle", [
    ((13000, 13000), ["--max-memory", "4G"], "GB"),
    ((5000, 5000), ["--tile", "2048", "--max-memory", "4G"], "--tile"),
    ((40, 44), ["--max-memory", "1M"], "needs about"),
    ((40, 44), ["--max-memory", "lots"], "4G"),
], ids=["13000-pixels", "tile-2048", "small-limit", "limit-text"])
def test_also_predict_refuses_what_does_not_fit_in_memory(tmp_path, capsys, shape, flags, needle):
    UNet((32, 32, 1), base_filters=32, depth=2, dropout=0, seed=0).save_weights(tmp_path / "w.npz")
    path = _write(tmp_path / "big.png", png_header(shape[1], shape[0])) if shape[0] > 100 else None
    if path is None:
        from PIL import Image
        path = tmp_path / "small.png"
        Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_error(cli(capsys, *predict_args(tmp_path / "w.npz", path, tmp_path / "m.png", *flags)), needle)
    assert not (tmp_path / "m.png").exists()


# ============================================================================ also-: exit codes
def test_also_interrupted_training_exits_130_with_a_checkpoint(tmp_path):
    folder = tmp_path / "r"
    p = subprocess.Popen([sys.executable, "-m", "unet_scratch", *map(str, train_args(folder, epochs=100000))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    line = p.stdout.readline()
    assert "training a U-Net" in line, line
    deadline = time.time() + 60
    while not (folder / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "stopped: interrupted" in out
    assert training.load_checkpoint(folder / "checkpoint.npz", UNet((32, 32, 1), base_filters=2, depth=2,
                                                                   dropout=0), get_optimizer("adam"))
    assert not (folder / ".lock").exists()


def test_also_python_m_exit_status_of_a_user_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "unet_scratch", "predict", "--weights", str(tmp_path / "no.npz"),
                        "--input", str(tmp_path / "no.png"), "--output", str(tmp_path / "m.png")],
                       capture_output=True, text=True, env=env(), timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len([line for line in p.stderr.splitlines() if "error:" in line]) == 1


# ============================================================================ also-: files on disk
def test_also_orphan_temporary_files_are_cleaned_up(run, tmp_path, capsys):
    folder = copy_run(run, tmp_path)
    old = [folder / ".tmp-abc12345.npz", folder / f".tmp-{dead_pid()}-0a1b2c3d.npz"]
    for p in old:
        p.write_bytes(b"x" * 1000)
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    live = folder / f".tmp-{os.getpid()}-feedbeef.npz"          # a live writer's (this process)
    live.write_bytes(b"being written")
    mine = folder / ".tmp-notes.txt"                             # not a name this package makes
    mine.write_text("keep me")
    os.utime(mine, (time.time() - 3600, time.time() - 3600))
    assert cli(capsys, *train_args(folder, epochs=2)).code == 0
    assert not any(p.exists() for p in old)
    assert live.exists() and mine.exists()


def test_also_atomic_savez_does_not_touch_the_umask(tmp_path, monkeypatch):
    real_umask = os.umask
    previous = real_umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("os.umask called: a race with other threads"))
        serialization.atomic_savez(tmp_path / "a.npz", {"x": np.zeros(3)})
    finally:
        monkeypatch.undo()
        real_umask(previous)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o640


def test_also_atomic_savez_fsyncs_the_folder(tmp_path, monkeypatch):
    import stat
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    serialization.atomic_savez(tmp_path / "a.npz", {"x": np.zeros(3)})
    assert synced == [False, True]        # the file, then the folder after os.replace


@pytest.mark.parametrize("save", ["save_mask", "save_probabilities", "save_overlay"])
def test_also_image_writes_go_through_a_temporary_file(tmp_path, monkeypatch, save):
    from PIL import Image
    moves = []
    real = os.replace

    def replace(src, dst):
        moves.append((os.path.basename(src), os.path.dirname(src) == os.path.dirname(dst), os.path.basename(dst)))
        return real(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    p = np.random.default_rng(0).random((8, 8))
    getattr(images, save)(tmp_path / "x.png", *((p, p > 0.5) if save == "save_overlay" else (p,)))
    assert len(moves) == 1 and moves[0][0].startswith(".tmp-") and moves[0][1:] == (True, "x.png")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["x.png"]
    Image.open(tmp_path / "x.png").load()


def test_also_weights_and_checkpoint_carry_the_same_generation(run):
    with np.load(run / "weights.npz") as w, np.load(run / "checkpoint.npz") as c:
        assert str(w["__generation__"]) == str(c["__generation__"])


def test_also_generation_is_ignored_by_load_weights(run):
    tiny_model(seed=4).load_weights(run / "weights.npz")


# ============================================================================ also-: --help
COMMANDS = ["info", "summary", "compare", "train", "predict"]


@pytest.mark.parametrize("command", COMMANDS, ids=[f"help-{c}" for c in COMMANDS])
def test_also_help_describes_every_flag_and_shows_defaults(capsys, command):
    import argparse
    from unet_scratch.__main__ import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    assert isinstance(sub.formatter_class, type) and issubclass(sub.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
    assert sub.description
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help != argparse.SUPPRESS, f"{command} {action.option_strings}: no help"
    assert "--debug" in sub.format_help()
    r = cli(capsys, command, "--help")
    assert r.code == 0 and "default:" in r.out or command == "info"
