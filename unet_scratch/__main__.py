"""Command line: ``python -m unet_scratch <command>``.

    info                       versions and the backends that work on this machine
    summary [--size 256] ...   the model's layer table and parameter count
    compare [--size 128] ...   scratch vs Keras, layer by layer; exit status 1 if any row fails
    bench [--quick] ...        NumPy and Numba backends against TensorFlow, in one run
    train --dataset membranes --epochs N --backend numba --out runs/NAME
                               train from scratch: progress, checkpoints, curves.png, test Dice
    predict --weights W --input IN.png --output OUT.png
                               segment an image of any size (overlap-tile), save an 8-bit mask
"""
from __future__ import annotations

import argparse
import platform
import sys


def _model_args(p: argparse.ArgumentParser, size=256, base=64):
    p.add_argument("--size", type=int, default=size, help="input height and width")
    p.add_argument("--channels", type=int, default=1, help="input channels")
    p.add_argument("--base-filters", type=int, default=base)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--padding", choices=["same", "valid"], default="same")
    p.add_argument("--seed", type=int, default=0)


def _build(args):
    from .model import UNet
    valid = args.padding == "valid"
    return UNet(input_shape=(args.size, args.size, args.channels), base_filters=args.base_filters,
                depth=args.depth, padding=args.padding, out_channels=2 if valid else 1,
                out_activation="softmax" if valid else "sigmoid", seed=args.seed)


def cmd_info(args) -> int:
    import numpy as np
    from . import __version__, backend
    print(f"unet_scratch {__version__}, Python {platform.python_version()}, NumPy {np.__version__}")
    for name in ("numba", "cupy", "tensorflow", "keras", "scipy", "matplotlib"):
        try:
            mod = __import__(name)
            print(f"  {name:<11} {getattr(mod, '__version__', '?')}")
        except Exception as err:  # noqa: BLE001 - any import failure means "not available"
            print(f"  {name:<11} not available ({type(err).__name__})")
    print("backends that work here:", ", ".join(backend.available_backends()))
    return 0


def cmd_summary(args) -> int:
    try:
        model = _build(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model.summary()
    return 0


def cmd_compare(args) -> int:
    import os
    import time

    import numpy as np
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from . import keras_ref
    try:
        model = _build(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    keras_model = keras_ref.to_keras(model)
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, args.size, args.size, args.channels), dtype=np.float32)
    y = None
    if model.config["out_activation"] == "sigmoid":
        y = (rng.random((args.batch, *model.output_shape[1:])) > 0.5).astype(np.float32)
    report = keras_ref.compare(model, keras_model, x, y, seed=args.seed)
    print(report)
    print(f"({model.count_params():,} parameters, input {x.shape}, {time.perf_counter() - start:.1f} s)")
    return 0 if report.passed else 1


def cmd_train(args) -> int:
    import json
    import os
    import time

    from . import backend, data, optional, training
    from .model import UNet
    try:
        backend.set_backend(args.backend)
    except (ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    train = data.load(args.dataset, "train", n=args.n_train, size=args.size, seed=args.data_seed)
    val = data.load(args.dataset, "val", size=args.size, seed=args.data_seed)
    test = data.load(args.dataset, "test", size=args.size, seed=args.data_seed)
    model = UNet((args.size, args.size, 1), base_filters=args.base_filters, depth=args.depth,
                 dropout=args.dropout, kernel_initializer="he_normal", seed=args.seed)
    print(f"training a U-Net (base {args.base_filters}, depth {args.depth}, {model.count_params():,} "
          f"parameters) on {args.dataset} {args.size}x{args.size}, backend {backend.get_backend()}")
    resume = os.path.exists(os.path.join(args.out, training.CHECKPOINT)) and args.resume
    if resume:
        print(f"resuming from {os.path.join(args.out, training.CHECKPOINT)}")
    start = time.perf_counter()
    try:
        history = training.fit(model, train[:2], val[:2], epochs=args.epochs, batch_size=args.batch_size,
                               learning_rate=args.lr, loss=args.loss, augment=args.augment, seed=args.seed,
                               checkpoint_dir=args.out, resume=resume, time_limit=args.time_limit,
                               verbose=1 if sys.stderr.isatty() else 2)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    training.save_history(os.path.join(args.out, "history.json"), history)
    if history.epoch and not optional.available("matplotlib"):
        print(f"curves.png not written: matplotlib is not installed ({optional.install_hint('matplotlib')})")
    elif history.epoch:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        axes = history.plot()
        axes[0].figure.tight_layout()
        axes[0].figure.savefig(os.path.join(args.out, "curves.png"))
        plt.close(axes[0].figure)
    result = training.evaluate(model, test[:2], loss=args.loss, prefix="test_")
    result["train_seconds"] = round(seconds, 1)
    with open(os.path.join(args.out, "test.json"), "w") as f:
        json.dump(result, f, indent=1)
    if history.stop_reason:
        print(f"stopped: {history.stop_reason}")
    print(f"test Dice {result['test_dice']:.4f}, test loss {result['test_loss']:.4f} after {seconds:.0f} s; "
          f"wrote {args.out}/checkpoint.npz, weights.npz, history.json, curves.png, test.json")
    return 1 if history.stop_reason and "NaN" in history.stop_reason else 0


def cmd_predict(args) -> int:
    from . import images
    from .inference import load_model, predict_tiled
    try:
        model = load_model(args.weights)
        image = images.read_image(args.input, "grey" if args.grayscale else model.input_shape[-1])
        p = predict_tiled(model, image, tile=args.tile)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    p = p[..., 1:2] if p.shape[-1] == 2 else p
    images.save_mask(args.output, p, threshold=args.threshold)
    written = [args.output]
    if args.probabilities:
        written.append(images.save_probabilities(args.probabilities, p))
    if args.overlay:
        written.append(images.save_overlay(args.overlay, image, p > args.threshold))
    print(f"{args.input} {image.shape[0]}x{image.shape[1]}: foreground {float((p > args.threshold).mean()):.1%}; "
          f"wrote {', '.join(written)}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:                 # the benchmark parses its own options
        from .bench import main as bench_main
        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m unet_scratch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions and available backends").set_defaults(func=cmd_info)
    p = sub.add_parser("summary", help="print the model's layer table")
    _model_args(p)
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("compare", help="scratch vs Keras: per-layer outputs and weight gradients")
    _model_args(p, size=128, base=16)
    p.add_argument("--batch", type=int, default=2)
    p.set_defaults(func=cmd_compare)
    sub.add_parser("bench", help="benchmark the backends against TensorFlow (see --help after it)")
    p = sub.add_parser("train", help="train a U-Net on a generated data set")
    p.add_argument("--dataset", choices=["membranes", "cells"], default="membranes")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--backend", default="numba", help="numpy, numba or cupy")
    p.add_argument("--out", required=True, help="run folder: checkpoint.npz, weights.npz, curves.png, ...")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--base-filters", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--loss", choices=["bce", "dice", "bce_dice"], default="bce")
    p.add_argument("--augment", choices=["none", "flip", "elastic"], default="flip")
    p.add_argument("--n-train", type=int, default=None, help="training images (default 64)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds; stop after that epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if --out holds a checkpoint (it is overwritten)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("predict", help="segment an image with trained weights")
    p.add_argument("--weights", required=True, help="weights.npz or checkpoint.npz from train")
    p.add_argument("--input", required=True, help="an image file (PNG, TIFF, JPEG)")
    p.add_argument("--output", required=True, help="mask PNG to write (0/255)")
    p.add_argument("--probabilities", help="also write the probability map as an 8-bit PNG")
    p.add_argument("--overlay", help="also write the mask over the image as an RGB PNG")
    p.add_argument("--tile", type=int, default=None, help="tile size (default: the model's input size)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--grayscale", action="store_true", help="convert a colour image to grey")
    p.set_defaults(func=cmd_predict)
    args = parser.parse_args(argv)
    if getattr(args, "augment", None) in ("none", "elastic"):
        args.augment = {"none": False, "elastic": True}[args.augment]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
