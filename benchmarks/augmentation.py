"""The paper's augmentation claim, tested small: with 30 training images, do flips and the elastic
deformation help, and by how much? Quoted in chapter 08.

    nice python benchmarks/augmentation.py            # about 10 CPU-minutes; writes the results below

Ronneberger et al. (2015, section 3.1) train on the 30 images of ISBI 2012 and call the elastic deformation
"the key concept to train a segmentation network with very few annotated images". Here a small U-Net (8 base
filters, depth 3) is trained on 30 generated `membranes` images (64 x 64) under four augmentations, each with
three seeds (the seed sets the initial weights, the shuffling and the augmentation draws):

    none            the 30 images as they are
    flip            random flips and 90-degree rotations (what ``fit(augment="flip")`` draws)
    flip+elastic    those plus the elastic deformation with the paper's sigma scaled to the image
                    (``augment.scaled_sigma``: 10 px at 512 x 512 -> 1.25 px at 64 x 64; ``fit(augment=True)``)
    flip+elastic10  the same with the paper's 10 px unscaled: on 64-px images eight times the paper's
                    deformation relative to the image

Every condition runs the same loop (the one ``training.fit`` runs: shuffled batches of 4, BCE + Dice from
the logits, Adam), for a fixed number of epochs with the learning rate stepped down near the end; nothing is
selected on the test set. It writes benchmarks/results/augmentation.json: the configuration, per run the
validation Dice every few epochs, the final Dice on the training images (unaugmented), on the validation split
and on 64 test images, and the seconds; per condition the mean and the spread (min, max, sample std) over seeds.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # see benchmarks/training.py: one BLAS thread on 2 cores

import argparse
import json
import platform
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

CONFIG = dict(size=64, n_train=30, n_test=64, base_filters=8, depth=3, batch_size=4, learning_rate=2e-3,
              lr_step_epoch=45, epochs=60, loss="bce_dice", eval_every=5, seeds=[0, 1, 2])
# name -> (flips and rotations?, elastic sigma: None = none, "scaled" = scaled_sigma, a number = pixels)
CONDITIONS = {"none": (False, None), "flip": (True, None), "flip+elastic": (True, "scaled"),
              "flip+elastic10": (True, 10.0)}


def augment_batch(xb, tb, rng, flip, sigma):
    """Each example of the batch flipped/rotated and/or elastically deformed, with draws from rng."""
    from unet_scratch.augment import elastic_deform, flip_rotate, scaled_sigma
    out_x, out_t = [], []
    for x, t in zip(xb, tb):
        if flip:
            x, t = flip_rotate(x, t, rng)
        if sigma is not None:
            x, t = elastic_deform(x, t, rng, sigma=scaled_sigma(x.shape) if sigma == "scaled" else sigma)
        out_x.append(x)
        out_t.append(t)
    return np.stack(out_x), np.stack(out_t)


def train_one(cfg, condition, seed, train, val, test):
    """One run: returns its record (curves, final Dice values, seconds)."""
    from unet_scratch import UNet, training
    from unet_scratch.optimizers import Adam
    from unet_scratch.training.batches import epoch_order
    flip, sigma = CONDITIONS[condition]
    model = UNet((cfg["size"], cfg["size"], 1), base_filters=cfg["base_filters"], depth=cfg["depth"],
                 dropout=0.0, kernel_initializer="he_normal", seed=seed)
    opt = Adam(cfg["learning_rate"])
    x, t = train
    n, bs = len(x), cfg["batch_size"]
    curve = []
    t0 = time.perf_counter()
    for epoch in range(cfg["epochs"]):
        opt.learning_rate = cfg["learning_rate"] / (4 if epoch >= cfg["lr_step_epoch"] else 1)
        order = epoch_order(n, seed, epoch)
        for step in range(-(-n // bs)):
            idx = order[step * bs:(step + 1) * bs]
            xb, tb = x[idx], t[idx]
            if flip or sigma is not None:
                xb, tb = augment_batch(xb, tb, np.random.default_rng([seed, epoch, step, 1]), flip, sigma)
            z = model.forward(xb, training=True, logits=True)
            _, dz, _ = training.loss_from_logits(model, z, tb, loss=cfg["loss"])
            model.backward(dz)
            opt.apply(model.params, model.grads)
        if (epoch + 1) % cfg["eval_every"] == 0:
            curve.append([epoch + 1, training.evaluate(model, val, loss=cfg["loss"])["dice"]])
    seconds = time.perf_counter() - t0
    dice = {name: training.evaluate(model, data, loss=cfg["loss"])["dice"]
            for name, data in (("train", train), ("val", val), ("test", test))}
    return dict(condition=condition, seed=seed, val_curve=curve, train_dice=dice["train"], val_dice=dice["val"],
                test_dice=dice["test"], seconds=seconds)


def summarise(runs, key):
    values = np.array([r[key] for r in runs])
    return dict(mean=float(values.mean()), std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                min=float(values.min()), max=float(values.max()), values=[float(v) for v in values])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, help="override the epoch count (a quick smoke run)")
    p.add_argument("--seeds", type=int, nargs="+", help="override the seeds")
    p.add_argument("--out", default=os.path.join(RESULTS, "augmentation.json"))
    args = p.parse_args(argv)
    import unet_scratch as us
    from unet_scratch import data
    from unet_scratch.augment import scaled_sigma
    cfg = dict(CONFIG)
    if args.epochs:
        cfg["epochs"] = args.epochs
        cfg["lr_step_epoch"] = min(cfg["lr_step_epoch"], args.epochs)
    if args.seeds:
        cfg["seeds"] = args.seeds
    us.set_backend("numba")
    size = cfg["size"]
    train = data.load("membranes", "train", n=cfg["n_train"], size=size)
    val = data.load("membranes", "val", size=size)
    test = data.load("membranes", "test", n=cfg["n_test"], size=size)
    runs = []
    start = time.perf_counter()
    for seed in cfg["seeds"]:
        for condition in CONDITIONS:
            r = train_one(cfg, condition, seed, train, val, test)
            runs.append(r)
            print(f"{condition:<15} seed {seed}: train Dice {r['train_dice']:.3f}, val {r['val_dice']:.3f}, "
                  f"test {r['test_dice']:.3f} ({r['seconds']:.0f} s)", flush=True)
    summary = {c: {k: summarise([r for r in runs if r["condition"] == c], k)
                   for k in ("train_dice", "val_dice", "test_dice")} for c in CONDITIONS}
    for c, s in summary.items():
        t = s["test_dice"]
        print(f"{c:<15} test Dice {t['mean']:.3f} (min {t['min']:.3f}, max {t['max']:.3f})")
    result = dict(config=cfg, conditions={c: dict(flip=f, elastic_sigma_px=(scaled_sigma((size, size))
                                                                             if s == "scaled" else s))
                                          for c, (f, s) in CONDITIONS.items()},
                  runs=runs, summary=summary, total_seconds=time.perf_counter() - start,
                  machine=dict(python=platform.python_version(), numpy=np.__version__, cpus=os.cpu_count(),
                               openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                               machine=platform.machine(), date=time.strftime("%Y-%m-%d")),
                  command="python benchmarks/augmentation.py")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
