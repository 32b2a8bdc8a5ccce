"""Chapter 04's experiment: the same small U-Net trained with and without its skip connections.

    python benchmarks/skips.py            # 3 seeds x 2 variants, about 10 CPU-minutes (Numba backend)
    python benchmarks/skips.py --quick    # 1 seed, 3 epochs each: a smoke test (about 15 s)

Writes benchmarks/results/skips.json (configuration, per-epoch curves, best epoch, test scores per seed)
and benchmarks/results/skips-pred.npy (two test predictions of each variant, seed 0, uint8), which
chapter 04 reads.

The two variants differ in one thing: ``UNet(..., skip_connections=False)`` hands the decoder zeros in
place of each skip (the same layers, parameter count and initial weights for the same seed; no gradient
goes back across). Each run trains with Adam until the validation loss has not improved by more than
``min_delta`` for ``patience`` epochs (or ``max_epochs``), and the weights of its best validation epoch are
scored on the test split: Dice and the boundary error (the fraction of wrong pixels within 2 px of a
membrane edge).
"""
from __future__ import annotations

import os

# One BLAS thread: on a shared 2-core machine OpenBLAS's spinning threads collapse under load.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

CONFIG = dict(size=64, n_train=128, base_filters=8, depth=3, kernel_initializer="he_normal", dropout=0.0,
              batch_size=4, optimizer="adam", learning_rate=1e-3, loss="bce", max_epochs=150, patience=15,
              min_delta=1e-3, seeds=[0, 1, 2])
QUICK = dict(CONFIG, max_epochs=3, patience=2, seeds=[0])


def boundary_band(mask, width=2):
    """(N, H, W, 1) bool: pixels within ``width`` px of a label edge. mask: (N, H, W, 1) in {0, 1}."""
    from scipy import ndimage
    m = mask[..., 0] > 0.5
    grow = np.stack([ndimage.binary_dilation(k, iterations=width) for k in m])
    shrink = np.stack([ndimage.binary_erosion(k, iterations=width) for k in m])
    return (grow & ~shrink)[..., None]


class EarlyStopping:
    """A ``fit`` callback: remember the weights of the best validation loss; stop after ``patience`` epochs
    without an improvement larger than ``min_delta`` (relative)."""

    def __init__(self, model, patience, min_delta):
        self.model, self.patience, self.min_delta = model, patience, min_delta
        self.best, self.best_epoch, self.weights = np.inf, -1, None

    def __call__(self, epoch, logs):
        if logs["val_loss"] < self.best * (1 - self.min_delta):
            self.best, self.best_epoch = logs["val_loss"], epoch
            self.weights = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
        return epoch - self.best_epoch >= self.patience


def run(cfg, seed, skips, train, val, test):
    """Train one variant from one seed; return its record and its test probabilities."""
    from unet_scratch import UNet, metrics, training
    model = UNet((cfg["size"], cfg["size"], 1), base_filters=cfg["base_filters"], depth=cfg["depth"],
                 dropout=cfg["dropout"], kernel_initializer=cfg["kernel_initializer"], seed=seed,
                 skip_connections=skips)
    stop = EarlyStopping(model, cfg["patience"], cfg["min_delta"])
    t0 = time.perf_counter()
    h = training.fit(model, train, val, epochs=cfg["max_epochs"], batch_size=cfg["batch_size"],
                     optimizer=cfg["optimizer"], learning_rate=cfg["learning_rate"], loss=cfg["loss"],
                     seed=seed, callbacks=[stop], verbose=0)
    seconds = time.perf_counter() - t0
    model.set_weights(stop.weights)
    p = model.forward(test[0])
    wrong = (p > 0.5) != (test[1] > 0.5)
    band = boundary_band(test[1])
    record = dict(seed=seed, skip_connections=skips, epochs=len(h.epoch), best_epoch=stop.best_epoch + 1,
                  stop_reason=h.stop_reason or "max_epochs reached", seconds=seconds,
                  history={k: [float(v) for v in vals] for k, vals in h.history.items() if k != "seconds"},
                  test_dice=metrics.dice(p, test[1]), test_boundary_error=float(wrong[band].mean()),
                  test_pixel_error=float(wrong.mean()), params=model.count_params())
    return record, p


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs: a smoke test")
    parser.add_argument("--out", default=RESULTS, help="folder for skips.json and skips-pred.npy")
    args = parser.parse_args(argv)
    import unet_scratch as us
    from unet_scratch import data
    cfg = dict(QUICK if args.quick else CONFIG)
    us.set_backend("numba")
    train = data.load("membranes", "train", n=cfg["n_train"], size=cfg["size"])
    val = data.load("membranes", "val", size=cfg["size"])
    test = data.load("membranes", "test", size=cfg["size"])
    runs, preds = [], {}
    start = time.perf_counter()
    for seed in cfg["seeds"]:
        for skips in (True, False):
            record, p = run(cfg, seed, skips, train, val, test)
            runs.append(record)
            if seed == cfg["seeds"][0]:
                preds[skips] = p[:2, ..., 0]
            print(f"seed {seed} skips {skips!s:>5}: {record['epochs']} epochs (best {record['best_epoch']}), "
                  f"test Dice {record['test_dice']:.4f}, boundary error {record['test_boundary_error']:.4f}, "
                  f"{record['seconds']:.0f} s", flush=True)
    import numpy
    result = dict(config=cfg, data=dict(name="membranes", train=len(train[0]), val=len(val[0]),
                                        test=len(test[0])),
                  machine=dict(python=platform.python_version(), numpy=numpy.__version__, cpus=os.cpu_count(),
                               openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS"), backend="numba",
                               date=time.strftime("%Y-%m-%d")),
                  seconds=time.perf_counter() - start, runs=runs)
    os.makedirs(args.out, exist_ok=True)
    name = "skips-quick" if args.quick else "skips"
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    # (2 variants: with, without) x 2 test images x H x W, probabilities as uint8
    np.save(os.path.join(args.out, f"{name}-pred.npy"),
            np.round(np.stack([preds[True], preds[False]]) * 255).astype(np.uint8))
    print("wrote", os.path.join(args.out, f"{name}.json"), f"({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
