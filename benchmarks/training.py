"""The training experiments quoted in the course (chapter 08) and the README, measured on this machine.

    python benchmarks/training.py membranes   # scratch (Numba) vs Keras on `membranes`: curves, test Dice
    python benchmarks/training.py cells       # plain vs weighted (the paper's weight map) BCE on `cells`

Each writes benchmarks/results/training-<name>.json and a figure training-<name>.png. Both take a few
minutes; run them on a quiet machine (the training time limit is wall-clock time).
"""
from __future__ import annotations

import os

# One BLAS thread: on a shared 2-core machine OpenBLAS's spinning threads collapse when another process
# runs (a 12-epoch run at 64 x 64 took 138 s with 2 threads under load, 4.5 s with 1). Set it to 2 on a
# machine of your own (before running) to use both cores for the GEMMs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

# 256 training images (the generator has no limit): with the default 64, validation Dice stalled at 0.90
# after 60 epochs while training Dice kept rising (0.92 at epoch 97): overfitting.
# and, with a constant learning rate, validation Dice jittered by +-0.005 around 0.90 from epoch to epoch:
# the rate steps down (2e-3, then 5e-4, then 1.25e-4) for the last epochs.
MEMBRANES = dict(size=128, n_train=256, base_filters=16, depth=3, batch_size=4, learning_rate=2e-3,
                 lr_steps=(15, 20), loss="bce_dice", augment="flip", epochs=23, time_limit=300.0, seed=0)


def step_schedule(base, steps):
    """epoch -> base, base / 4, base / 16, ... stepping down at each epoch in ``steps``."""
    return lambda epoch: base / 4 ** sum(epoch >= s for s in steps)
CELLS = dict(size=128, base_filters=16, depth=3, batch_size=4, learning_rate=2e-3, augment="flip",
             epochs=40, seed=0)


def _model(cfg):
    from unet_scratch import UNet
    return UNet((cfg["size"], cfg["size"], 1), base_filters=cfg["base_filters"], depth=cfg["depth"],
                dropout=0.0, kernel_initializer="he_normal", seed=cfg["seed"])


def _machine():
    import numpy
    return dict(python=platform.python_version(), numpy=numpy.__version__, cpus=os.cpu_count(),
                openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                machine=platform.machine(), date=time.strftime("%Y-%m-%d"))


def membranes(args):
    import unet_scratch as us
    from unet_scratch import data, metrics, training
    from unet_scratch.keras_ref import fit_keras
    cfg = dict(MEMBRANES)
    us.set_backend("numba")
    tr = data.load("membranes", "train", n=cfg["n_train"], size=cfg["size"])
    va, te = (data.load("membranes", s, size=cfg["size"]) for s in ("val", "test"))
    model = _model(cfg)
    keras_start = _model(cfg)                        # the same initial weights, kept for Keras
    fit_args = {k: cfg[k] for k in ("batch_size", "learning_rate", "loss", "augment", "seed")}
    fit_args["lr_schedule"] = step_schedule(cfg["learning_rate"], cfg["lr_steps"])
    if args.keras_only:                # redo the Keras half; the scratch half is read back from the results
        with open(os.path.join(RESULTS, "training-membranes.json")) as f:
            previous = json.load(f)["scratch"]
        h = training.History(previous["history"], list(range(previous["epochs"])), previous["stop_reason"])
        scratch_seconds = previous["seconds"]
        test = {"dice": previous["test_dice"], "loss": previous["test_loss"]}
        model.load_weights(os.path.join(RESULTS, "training-membranes-weights.npz"))
    else:
        t0 = time.perf_counter()
        h = training.fit(model, tr[:2], va[:2], epochs=cfg["epochs"], time_limit=cfg["time_limit"], verbose=2,
                         **fit_args)
        scratch_seconds = time.perf_counter() - t0
        test = training.evaluate(model, te[:2], loss=cfg["loss"])
    print(f"scratch: {len(h.epoch)} epochs in {scratch_seconds:.0f} s, test Dice {test['dice']:.4f}", flush=True)
    t0 = time.perf_counter()
    hk, keras_model = fit_keras(keras_start, tr[:2], va[:2], epochs=len(h.epoch), verbose=1, **fit_args)
    keras_seconds = time.perf_counter() - t0
    pk = keras_model.predict([te[0]], batch_size=4, verbose=0)
    inter, total = metrics.dice_counts(pk, te[1])
    keras_dice = metrics.dice_from_counts(inter, total)
    print(f"keras: {len(hk.epoch)} epochs in {keras_seconds:.0f} s, test Dice {keras_dice:.4f}", flush=True)
    result = dict(config=cfg, machine=_machine(), backend="numba",
                  scratch=dict(history=h.history, seconds=scratch_seconds, test_dice=test["dice"],
                               test_loss=test["loss"], epochs=len(h.epoch), stop_reason=h.stop_reason),
                  keras=dict(history=hk.history, seconds=keras_seconds, test_dice=keras_dice,
                             epochs=len(hk.epoch)))
    _write("membranes", result)
    model.save_weights(os.path.join(RESULTS, "training-membranes-weights.npz"))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    axes = training.plot_history(h, hk, labels=["scratch", "Keras"])
    axes[1].axhline(0.9, color="grey", lw=0.8, ls=":")
    axes[0].figure.suptitle(f"membranes: scratch test Dice {test['dice']:.3f}, Keras {keras_dice:.3f}")
    axes[0].figure.tight_layout()
    axes[0].figure.savefig(os.path.join(RESULTS, "training-membranes.png"))


def cells(args):
    import unet_scratch as us
    from unet_scratch import data, metrics, training
    from unet_scratch.inference import predict
    from unet_scratch.weightmap import weight_maps
    cfg = dict(CELLS)
    us.set_backend("numba")
    tr, va, te = (data.load("cells", s, size=cfg["size"]) for s in ("train", "val", "test"))
    w = weight_maps(tr[2])
    fit_args = {k: cfg[k] for k in ("batch_size", "learning_rate", "augment", "seed", "epochs")}
    out = dict(config=cfg, machine=_machine())
    for name, train in (("plain", tr[:2]), ("weighted", (tr[0], tr[1], w))):
        model = _model(cfg)
        t0 = time.perf_counter()
        h = training.fit(model, train, va[:2], verbose=2, **fit_args)
        p = predict(model, te[0])[..., 0]
        separated = [metrics.count_separated(p[i], te[2][i]) for i in range(len(p))]
        rand = [metrics.adapted_rand_error(_components(p[i] > 0.5), te[2][i]) for i in range(len(p))]
        objects = int(sum(len(np.unique(i)) - 1 for i in te[2]))
        out[name] = dict(history=h.history, seconds=time.perf_counter() - t0, separated=int(sum(separated)),
                         objects=objects, adapted_rand_error=float(np.mean(rand)),
                         dice=float(np.mean([metrics.dice(p[i] > 0.5, te[1][i, ..., 0]) for i in range(len(p))])))
        print(name, {k: v for k, v in out[name].items() if k != "history"}, flush=True)
        np.save(os.path.join(RESULTS, f"training-cells-{name}-pred.npy"), (p[:4] * 255).astype(np.uint8))
    _write("cells", out)


def _components(mask):
    from scipy import ndimage
    return ndimage.label(mask)[0]


def _write(name, result):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"training-{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", os.path.join(RESULTS, f"training-{name}.json"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=["membranes", "cells"])
    p.add_argument("--keras-only", action="store_true",
                   help="membranes: rerun only the Keras twin, reading the scratch run from the results")
    args = p.parse_args(argv)
    {"membranes": membranes, "cells": cells}[args.experiment](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
