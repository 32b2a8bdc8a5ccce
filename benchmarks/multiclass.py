"""Chapter 07's multi-class example: a 3-class softmax U-Net (background / cell interior / cell boundary).

    python benchmarks/multiclass.py            # 2 runs (plain and class-balanced cross-entropy), a few CPU-minutes
    python benchmarks/multiclass.py --quick    # 2 epochs each: a smoke test (about 15 s)

Writes benchmarks/results/multiclass.json (configuration, per-epoch curves, per-class Dice and separated
cells on the test split for each run) and benchmarks/results/multiclass-pred.npy (the predicted classes of
two test images for each run, uint8), which chapter 07 reads.

Targets come from ``data.load("cells", ...)``'s instance labels through ``multiclass.boundary_classes``:
0 background, 1 interior, 2 the 1-pixel outline of each cell. The same U-Net (softmax head, 3 channels) is
trained twice with ``training.fit(loss="weighted_ce")``: with plain cross-entropy (every pixel weight 1) and
with ``multiclass.class_balance_weights`` (each class the same total weight, the w_c of the paper's Eq. 2
for K classes). Each run stops when the validation loss has not improved for ``patience`` epochs; the weights
of its best validation epoch are scored on the test split.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # one BLAS thread: stable on a shared 2-core machine

import argparse
import json
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

CONFIG = dict(size=64, n_train=128, classes=3, boundary_width=1, base_filters=8, depth=3,
              kernel_initializer="he_normal", batch_size=4, learning_rate=2e-3, max_epochs=60, patience=10,
              min_delta=1e-3, seed=0)
QUICK = dict(CONFIG, n_train=16, max_epochs=2, patience=2)
CLASS_NAMES = ["background", "interior", "boundary"]


class EarlyStopping:
    """A ``fit`` callback: keep the weights of the best validation loss; stop after ``patience`` epochs
    without a relative improvement larger than ``min_delta``."""

    def __init__(self, model, patience, min_delta):
        self.model, self.patience, self.min_delta = model, patience, min_delta
        self.best, self.best_epoch, self.weights = np.inf, -1, None

    def __call__(self, epoch, logs):
        if logs["val_loss"] < self.best * (1 - self.min_delta):
            self.best, self.best_epoch = logs["val_loss"], epoch
            self.weights = {k: np.array(v, copy=True) for k, v in self.model.params.items()}
        return epoch - self.best_epoch >= self.patience


def split(name, n, cfg):
    from unet_scratch import data
    from unet_scratch.multiclass import boundary_classes
    images, _, instances = data.load("cells", name, n=n, size=cfg["size"])
    return images, boundary_classes(instances, cfg["boundary_width"]), instances


def run(cfg, weighted, train, val, test):
    from unet_scratch import UNet, metrics, training
    from unet_scratch.multiclass import class_balance_weights, per_class_dice
    model = UNet((cfg["size"], cfg["size"], 1), base_filters=cfg["base_filters"], depth=cfg["depth"], dropout=0,
                 out_channels=cfg["classes"], out_activation="softmax",
                 kernel_initializer=cfg["kernel_initializer"], seed=cfg["seed"])
    data = train[:2] + ((class_balance_weights(train[1], cfg["classes"]),) if weighted else ())
    stop = EarlyStopping(model, cfg["patience"], cfg["min_delta"])
    t0 = time.perf_counter()
    h = training.fit(model, data, val[:2], epochs=cfg["max_epochs"], batch_size=cfg["batch_size"],
                     learning_rate=cfg["learning_rate"], loss="weighted_ce", seed=cfg["seed"], callbacks=[stop],
                     verbose=0)
    seconds = time.perf_counter() - t0
    model.set_weights(stop.weights)
    pred = model.forward(test[0]).argmax(-1)
    interiors = np.where(test[1] == 1, test[2], 0)            # each cell's interior, labelled as its cell
    separated = sum(metrics.count_separated(pred[i] == 1, interiors[i]) for i in range(len(pred)))
    record = dict(weighted=weighted, epochs=len(h.epoch), best_epoch=stop.best_epoch + 1,
                  stop_reason=h.stop_reason or "max_epochs reached", seconds=seconds,
                  history={k: [float(v) for v in vals] for k, vals in h.history.items() if k != "seconds"},
                  test_dice=dict(zip(CLASS_NAMES, per_class_dice(pred, test[1], cfg["classes"]))),
                  test_cells=int(sum(len(np.unique(i)) - 1 for i in test[2])), test_cells_separated=int(separated),
                  test_pixel_fractions=[float((test[1] == c).mean()) for c in range(cfg["classes"])])
    return record, pred


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 epochs each: a smoke test")
    parser.add_argument("--out", default=RESULTS, help="folder for multiclass.json and multiclass-pred.npy")
    args = parser.parse_args(argv)
    import unet_scratch as us
    cfg = dict(QUICK if args.quick else CONFIG)
    us.set_backend("numba")
    train, val, test = split("train", cfg["n_train"], cfg), split("val", 16, cfg), split("test", 16, cfg)
    start, runs, preds = time.perf_counter(), [], []
    for weighted in (False, True):
        record, pred = run(cfg, weighted, train, val, test)
        runs.append(record)
        preds.append(pred[:2])
        print(f"weighted {weighted!s:>5}: {record['epochs']} epochs (best {record['best_epoch']}), test Dice "
              + ", ".join(f"{k} {v:.3f}" for k, v in record["test_dice"].items())
              + f"; cells separated {record['test_cells_separated']}/{record['test_cells']}, "
              f"{record['seconds']:.0f} s", flush=True)
    import numpy
    result = dict(config=cfg, classes=CLASS_NAMES, data=dict(name="cells", train=len(train[0]), val=len(val[0]),
                                                             test=len(test[0])),
                  machine=dict(python=platform.python_version(), numpy=numpy.__version__, cpus=os.cpu_count(),
                               openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS"), backend="numba",
                               date=time.strftime("%Y-%m-%d")),
                  seconds=time.perf_counter() - start, runs=runs)
    os.makedirs(args.out, exist_ok=True)
    name = "multiclass-quick" if args.quick else "multiclass"
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)
    np.save(os.path.join(args.out, f"{name}-pred.npy"), np.stack(preds).astype(np.uint8))   # (runs, 2, H, W)
    print("wrote", os.path.join(args.out, f"{name}.json"), f"({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
