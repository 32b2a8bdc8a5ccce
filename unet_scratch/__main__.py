"""Command line: ``python -m unet_scratch <command>`` (``<command> --help`` lists every option and its default).

    info                       versions and the backends that work on this machine
    summary [--size 256] ...   the model's layer table and parameter count
    compare [--size 128] ...   scratch vs Keras, layer by layer; exit status 1 if any row fails
    bench [--quick] ...        NumPy and Numba backends against TensorFlow, in one run
    train --dataset membranes --epochs N --backend numba --out runs/NAME
                               train from scratch: progress, checkpoints, curves.png, test Dice
    train --images DIR --masks DIR --out runs/NAME
                               the same on your own images (folders or TIFF stacks), on random crops
    evaluate --weights W --images DIR --masks DIR
                               pixel error, Dice/IoU per class, adapted Rand error, beside a threshold baseline
    predict --weights W --input IN.png --output OUT.png
                               segment an image (or a folder of them) of any size (overlap-tile), save masks

Exit status: 0 done, 1 a failure that is not the user's (a full disk, a diverged training run, a bug),
2 a mistake in the command (the one ``error:`` line says what to change), 130 Ctrl-C. ``--debug`` shows
the Python traceback instead of the one line.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import warnings

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130


class UserError(Exception):
    """A mistake in the command: exit status 2, one line that says what to change."""


class Failure(Exception):
    """Something went wrong that is not the user's mistake: exit status 1."""


# ----------------------------------------------------------------------------------- argument types
def _number(kind, text, low=None, high=None, low_open=False, high_open=False, example=None):
    try:
        value = kind(text)
    except ValueError:
        value = None
    ok = value is not None and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        what = "an integer" if kind is int else "a number"
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        raise argparse.ArgumentTypeError(f"must be {what} {' and '.join(bounds)}, got {text!r}"
                                         + (f" (e.g. {example})" if example else ""))
    return value


def positive_int(text):
    return _number(int, text, 1)


def at_least(n):
    def check(text):
        return _number(int, text, n)
    check.__name__ = f"integer >= {n}"
    return check


def positive_float(text):
    return _number(float, text, 0, low_open=True, example="1e-3")


def nonnegative_float(text):
    return _number(float, text, 0)


def dropout_rate(text):
    return _number(float, text, 0, 1, high_open=True, example="0.5")


def threshold(text):
    return _number(float, text, 0, 1, low_open=True, high_open=True, example="0.5")


def memory_size(text):
    """'auto' (the memory available now), 'none' (no check), or bytes with a unit: 4G, 512M, 2.5GB."""
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    if t in ("auto", ""):
        return None
    if t in ("none", "0", "off"):
        return 0
    units = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
    try:
        value = float(t[:-1]) * units[t[-1]] if t[-1] in units else float(t)
    except (ValueError, IndexError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be 'auto', 'none' or a size such as 4G or 512M, got {text!r}")
    return value


def _human(n):
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


# ------------------------------------------------------------------------------------------- parser
class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default and keeps the descriptions' line breaks."""


def _model_args(p: argparse.ArgumentParser, size=256, base=64):
    p.add_argument("--size", type=positive_int, default=size, help="input height and width (pixels)")
    p.add_argument("--channels", type=positive_int, default=1, help="input channels (1 grey, 3 RGB)")
    p.add_argument("--base-filters", type=positive_int, default=base,
                   help="filters at the first level, doubled at each level down")
    p.add_argument("--depth", type=positive_int, default=4, help="number of poolings")
    p.add_argument("--padding", choices=["same", "valid"], default="same",
                   help="'same' (the article's U-Net) or 'valid' (the paper's, with a 2-class softmax head)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the random inputs")


def fraction(text):
    return _number(float, text, 0, 1, high_open=True, example="0.2")


def _data_args(p: argparse.ArgumentParser, required: bool):
    """Your own images: --images, --masks and how to read them."""
    p.add_argument("--images", required=required, default=None,
                   help="a folder of images (PNG, TIFF, JPEG) or a multi-page TIFF stack")
    p.add_argument("--masks", required=required, default=None,
                   help="their masks: a folder (paired by file name) or a TIFF stack (slice by slice)")
    p.add_argument("--classes", type=at_least(2), default=2,
                   help="classes in the masks: 2 for binary masks (0/1 or 0/255), K for class indices 0..K-1")
    p.add_argument("--foreground", choices=["white", "black"], default="white",
                   help="binary masks: which pixels are the object; 'black' for the ISBI 2012 labels, whose "
                        "membranes are 0")
    p.add_argument("--grayscale", action="store_true", help="convert colour images to grey")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one sub-parser per command, each with its own ``--help``."""
    parser = argparse.ArgumentParser(prog="python -m unet_scratch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of the one-line message")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name, func, text):
        p = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter, parents=[common])
        p.set_defaults(func=func)
        return p

    command("info", cmd_info, "versions of the packages and the backends that work on this machine")
    p = command("summary", cmd_summary, "print the model's layer table and parameter count")
    _model_args(p)
    p = command("compare", cmd_compare, "scratch vs Keras: per-layer outputs and weight gradients "
                                        "(exit status 1 if any row fails)")
    _model_args(p, size=128, base=16)
    p.add_argument("--batch", type=positive_int, default=2, help="images in the random test batch")
    sub.add_parser("bench", help="benchmark the backends against TensorFlow (see bench --help)",
                   description="benchmark the backends against TensorFlow", add_help=False)

    p = command("train", cmd_train, "train a U-Net on a generated data set; a second run with the same --out "
                                    "resumes (bit-exactly) where the first stopped")
    p.add_argument("--dataset", choices=["membranes", "cells"], default=None,
                   help="generated data set: EM-like membranes or touching cells (default membranes, unless "
                        "--images is given)")
    _data_args(p, required=False)
    p.add_argument("--channels", type=positive_int, default=1, help="the model's input channels (1 grey, 3 RGB)")
    p.add_argument("--val-images", default=None, help="validation images (a folder or a TIFF stack); default: "
                                                      "--val-fraction of --images held out")
    p.add_argument("--val-masks", default=None, help="the validation images' masks")
    p.add_argument("--val-fraction", type=fraction, default=0.2,
                   help="with --images and no --val-images: the share of the images held out for validation "
                        "(the last ones by name)")
    p.add_argument("--epochs", type=positive_int, default=60,
                   help="total epochs (a resumed run continues up to this number)")
    p.add_argument("--backend", choices=["numpy", "numba", "cupy"], default="numba",
                   help="which kernels run the ops")
    p.add_argument("--out", required=True,
                   help="run folder: checkpoint.npz, weights.npz, history.json, curves.png, test.json")
    p.add_argument("--size", type=at_least(16), default=128,
                   help="image height and width (pixels); with --images, the size of the random crops (the "
                        "model's tile)")
    p.add_argument("--base-filters", type=positive_int, default=16,
                   help="filters at the first level, doubled at each level down")
    p.add_argument("--depth", type=positive_int, default=3, help="number of poolings")
    p.add_argument("--dropout", type=dropout_rate, default=0.0,
                   help="dropout rate after the deepest encoder block and the bottleneck, in [0, 1)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="images per training step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--loss", choices=["bce", "dice", "bce_dice"], default="bce", help="the training loss")
    p.add_argument("--augment", choices=["none", "flip", "elastic"], default="flip",
                   help="augmentation: none, flips and 90-degree rotations, or those plus elastic deformation")
    p.add_argument("--n-train", type=positive_int, default=64, help="training images to generate")
    p.add_argument("--time-limit", type=nonnegative_float, default=None,
                   help="seconds; stop after the epoch during which the limit passed")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, shuffling, augmentation, dropout")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated data set")
    p.add_argument("--fresh", "--no-resume", dest="fresh", action="store_true",
                   help="start afresh even if --out holds a run (its files are overwritten)")

    p = command("evaluate", cmd_evaluate, "score trained weights on your own images and masks: pixel error, "
                                          "Dice and IoU per class, adapted Rand error, beside the best global "
                                          "threshold of the images (a baseline a model must beat)")
    p.add_argument("--weights", required=True, help="weights.npz or checkpoint.npz written by train")
    _data_args(p, required=True)
    p.add_argument("--regions", choices=["auto", "background", "foreground", "none"], default="auto",
                   help="which class's connected regions the adapted Rand error compares: 'background' when "
                        "the foreground is a boundary (membranes; the ISBI 2012 score), 'foreground' for objects; "
                        "auto: background with --foreground black, else foreground")
    p.add_argument("--threshold", type=threshold, default=0.5, help="foreground where p > threshold, in (0, 1)")
    p.add_argument("--tile", type=positive_int, default=None,
                   help="input tile size in pixels (default: the model's input size)")
    p.add_argument("--json", default=None, help="also write the scores to this JSON file")

    p = command("predict", cmd_predict, "segment an image of any size with trained weights (overlap-tile) "
                                        "and save an 8-bit mask; a folder of images gives a folder of masks")
    p.add_argument("--weights", required=True, help="weights.npz or checkpoint.npz written by train")
    p.add_argument("--input", required=True, help="an image file (PNG, TIFF, JPEG), or a folder of them")
    p.add_argument("--output", required=True, help="mask to write, 0/255 (.png or .tif: lossless); for a folder "
                                                   "--input, a folder that gets one <name>.png per image")
    p.add_argument("--probabilities", default=None,
                   help="also write the probability map as an 8-bit image (.png or .tif)")
    p.add_argument("--overlay", default=None, help="also write the mask over the image as an RGB picture")
    p.add_argument("--tile", type=positive_int, default=None,
                   help="input tile size in pixels (default: the model's input size)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="tiles per forward pass")
    p.add_argument("--threshold", type=threshold, default=0.5, help="foreground where p > threshold, in (0, 1)")
    p.add_argument("--grayscale", action="store_true", help="convert a colour image to grey")
    p.add_argument("--bits", type=int, choices=range(1, 17), metavar="{1..16}", default=None,
                   help="significant bits of integer pixel data (e.g. 12 for a camera's 12-bit data in a 16-bit "
                        "PNG; default: 8 or 16, from the file)")
    p.add_argument("--max-memory", type=memory_size, default=None,
                   help="refuse a prediction that would need more memory: a size such as 4G, 'auto' "
                        "(default: the memory available now) or 'none'")
    return parser


# ------------------------------------------------------------------------------------------ commands
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
    return OK


def _build(args):
    from .model import UNet
    valid = args.padding == "valid"
    return UNet(input_shape=(args.size, args.size, args.channels), base_filters=args.base_filters,
                depth=args.depth, padding=args.padding, out_channels=2 if valid else 1,
                out_activation="softmax" if valid else "sigmoid", seed=args.seed)


def cmd_summary(args) -> int:
    _build(args).summary()
    return OK


def cmd_compare(args) -> int:
    import time

    import numpy as np
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from . import keras_ref
    model = _build(args)
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
    return OK if report.passed else FAILED


# The train settings that change the result: stored in the checkpoint, compared when a run resumes.
RUN_SETTINGS = ("dataset", "size", "base_filters", "depth", "dropout", "lr", "loss", "augment", "n_train",
                "seed", "data_seed", "batch_size", "images", "masks", "val_images", "val_masks", "val_fraction",
                "classes", "foreground", "grayscale", "channels")


def _flag(name):
    return "--" + name.replace("_", "-")


def _prepare_out(out):
    """Create the run folder (or check it), so nothing is computed for a folder that cannot be written."""
    from .serialization import check_writable
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out!r} is a file, not a folder; give a folder name for the run")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out!r}: cannot create the run folder ({err.strerror or err}); "
                        "choose another path") from err
    try:
        check_writable(os.path.join(out, "checkpoint.npz"), "--out")
    except ValueError as err:
        raise UserError(str(err)) from err


def _resume_state(args, settings):
    """The checkpoint's training state if this run resumes one, else None. Refuses changed settings."""
    from . import training
    path = os.path.join(args.out, training.CHECKPOINT)
    if args.fresh or not os.path.exists(path):
        return None
    state = training.read_checkpoint(path)["state"]
    saved = state.get("settings", {}).get("extra", {}).get("cli")
    if saved is not None:
        changed = [k for k in RUN_SETTINGS if k in saved and saved[k] != settings[k]]
        if changed:
            raise UserError(f"{args.out} holds a run started with other settings: "
                            + ", ".join(f"{_flag(k)} {saved[k]} (now {settings[k]})" for k in changed)
                            + ". Resume it with its own settings, start afresh with --fresh (overwrites it), "
                              "or train into a new --out")
    return state


def _plot(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .serialization import atomic_write
    axes = history.plot()
    fig = axes[0].figure
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)


def _load_own(images, masks, args, channels=None, what="--images"):
    """folders.load_folder with the command's options; its ValueErrors are the user's to fix."""
    from .folders import load_folder
    try:
        d = load_folder(images, masks, channels=channels or args.channels, n_classes=args.classes,
                        foreground=args.foreground, grayscale=args.grayscale)
    except (ValueError, FileNotFoundError) as err:
        raise UserError(f"{what}: {err}") from err
    for note in d.notes:
        print(f"note: {note}")
    return d


def _own_data(args):
    """(train, val) FolderData for train --images: --val-images, or the last --val-fraction held out."""
    from .folders import FolderData
    if (args.masks is None) != (args.images is None):
        raise UserError("--images and --masks go together: give both (the masks are what the model learns)")
    if args.dataset is not None:
        raise UserError("--dataset and --images are two sources of training data; give one of them")
    if (args.val_images is None) != (args.val_masks is None):
        raise UserError("--val-images and --val-masks go together; give both, or neither to hold out "
                        "--val-fraction of --images")
    d = _load_own(args.images, args.masks, args)
    if args.val_images is not None:
        return d, _load_own(args.val_images, args.val_masks, args, what="--val-images")
    n_val = int(round(len(d) * args.val_fraction))
    if args.val_fraction > 0:
        n_val = max(n_val, 1)
    if n_val >= len(d):
        raise UserError(f"--images holds {len(d)} image(s): too few to hold out {n_val} for validation; give "
                        "--val-images/--val-masks, or a smaller --val-fraction (0 trains on all, without validation)")

    def part(sl):
        return FolderData(d.images[sl], d.masks[sl], d.names[sl], d.n_classes)
    return part(slice(0, len(d) - n_val)), (part(slice(len(d) - n_val, len(d))) if n_val else None)


def _regions_of(args):
    """The class whose regions the adapted Rand error compares (None: not computed)."""
    choice = getattr(args, "regions", "auto")
    if choice == "auto":
        choice = "background" if args.foreground == "black" else "foreground"
    return {"background": 0, "foreground": 1, "none": None}[choice] if args.classes == 2 else None


def cmd_train(args) -> int:
    import json
    import time

    from . import backend, data, optional, training
    from .model import UNet
    from .serialization import atomic_write_text, clean_orphans
    from .checks import check_unet_size
    try:
        check_unet_size(args.size, args.size, args.depth, "same")
    except ValueError as err:
        raise UserError(f"--size {args.size} with --depth {args.depth}: {err}") from err
    try:
        backend.set_backend(args.backend)
    except (ValueError, RuntimeError, ImportError) as err:
        raise UserError(f"--backend {args.backend}: {err}") from err
    _prepare_out(args.out)
    if (args.masks is None) != (args.images is None):
        raise UserError("--images and --masks go together: give both (the masks are what the model learns)")
    if args.images is None:
        args.dataset = args.dataset or "membranes"
    settings = {k: getattr(args, k) for k in RUN_SETTINGS}
    with training.RunLock(args.out) as lock:
        if lock.note:
            print(f"note: {lock.note}")
        removed = clean_orphans(args.out)
        if removed:
            print(f"note: removed {len(removed)} temporary file(s) left by a run that was killed")
        state = _resume_state(args, settings)
        if state is not None and state["epoch"] >= args.epochs:
            print(f"{args.out} has trained {state['epoch']} of --epochs {args.epochs} already: nothing to train "
                  f"(give a larger --epochs to continue, or --fresh to start over)")
            return OK
        augment = {"none": False, "flip": "flip", "elastic": True}[args.augment]
        own = args.images is not None
        multi = args.classes > 2
        if multi and args.loss != "bce":
            raise UserError(f"--loss {args.loss}: with --classes {args.classes} the model has a softmax head, which "
                            "trains with the (weighted) cross-entropy; leave --loss out")
        if own:
            train_d, val_d = _own_data(args)
            train = (train_d.images, train_d.masks)
            val = None if val_d is None else (val_d.images, val_d.masks)
            source = f"{len(train_d)} image(s) from {args.images}, random {args.size}x{args.size} crops"
        else:
            if multi or args.channels != 1:
                raise UserError("--classes and --channels describe your own images (--images); the generated "
                                "data sets are grey with binary masks")
            train = data.load(args.dataset, "train", n=args.n_train, size=args.size, seed=args.data_seed)[:2]
            val = data.load(args.dataset, "val", size=args.size, seed=args.data_seed)[:2]
            test = data.load(args.dataset, "test", size=args.size, seed=args.data_seed)
            source = f"{args.dataset} {args.size}x{args.size}"
        model = UNet((args.size, args.size, args.channels), base_filters=args.base_filters, depth=args.depth,
                     dropout=args.dropout, kernel_initializer="he_normal", seed=args.seed,
                     **(dict(out_channels=args.classes, out_activation="softmax") if multi else {}))
        print(f"training a U-Net (base {args.base_filters}, depth {args.depth}, {model.count_params():,} "
              f"parameters) on {source}, backend {backend.get_backend()}", flush=True)
        if state is not None:
            print(f"resuming from {os.path.join(args.out, training.CHECKPOINT)} (epoch {state['epoch']}, "
                  f"step {state['step']})", flush=True)
        start = time.perf_counter()
        history = training.fit(model, train, val, epochs=args.epochs, batch_size=args.batch_size,
                               learning_rate=args.lr, loss="weighted_ce" if multi else args.loss, augment=augment,
                               seed=args.seed, checkpoint_dir=args.out, resume=state is not None,
                               time_limit=args.time_limit, verbose=1 if sys.stderr.isatty() else 2,
                               extra_settings={"cli": settings}, crop=args.size if own else None)
        seconds = time.perf_counter() - start
        written = ["checkpoint.npz", "weights.npz"] if os.path.exists(os.path.join(args.out, "checkpoint.npz")) \
            else []
        training.save_history(os.path.join(args.out, "history.json"), history)
        written.append("history.json")
        if history.stop_reason:
            print(f"stopped: {history.stop_reason}", flush=True)
        if history.stop_kind == "diverged":
            raise Failure(f"training diverged (see 'stopped:' above); train again with a lower --lr "
                          f"(e.g. {args.lr / 10:g}) and --fresh or a new --out")
        if history.stop_kind == "interrupted":
            print(f"wrote {args.out}/{', '.join(written)}; run the same command again to resume")
            return INTERRUPTED
        if history.epoch and not optional.available("matplotlib"):
            print(f"curves.png not written: matplotlib is not installed ({optional.install_hint('matplotlib')})")
        elif history.epoch:
            _plot(history, os.path.join(args.out, "curves.png"))
            written.append("curves.png")
        if own:
            if val is None:
                print(f"trained {seconds:.0f} s without validation images (--val-fraction 0); wrote "
                      f"{args.out}/{', '.join(written)}")
                return OK
            from .evaluation import evaluate_images, format_report
            report = evaluate_images(model, val_d.images, val_d.masks, args.classes, _regions_of(args))
            report["train_seconds"] = round(seconds, 1)
            atomic_write_text(os.path.join(args.out, "validation.json"), json.dumps(report, indent=1))
            written.append("validation.json")
            print(f"validation images, whole (overlap-tile), after {seconds:.0f} s of training:")
            print(format_report(report))
            print(f"wrote {args.out}/{', '.join(written)}")
            return OK
        result = training.evaluate(model, test[:2], loss=args.loss, prefix="test_")
        result["train_seconds"] = round(seconds, 1)
        atomic_write_text(os.path.join(args.out, "test.json"), json.dumps(result, indent=1))
        written.append("test.json")
        print(f"test Dice {result['test_dice']:.4f}, test loss {result['test_loss']:.4f} after {seconds:.0f} s; "
              f"wrote {args.out}/{', '.join(written)}")
    return OK


def cmd_evaluate(args) -> int:
    import json

    from . import inference
    from .evaluation import evaluate_images, format_report
    from .serialization import atomic_write_text, check_writable
    if args.json is not None:
        try:
            check_writable(args.json, "--json", (".json",))
        except ValueError as err:
            raise UserError(str(err)) from err
    model = inference.load_model(args.weights)
    classes = model.config["out_channels"] if model.config["out_activation"] == "softmax" else 2
    if classes != args.classes and not (classes == 2 and args.classes == 2):
        raise UserError(f"{args.weights} is a {classes}-class model but --classes is {args.classes}; give "
                        f"--classes {classes}")
    d = _load_own(args.images, args.masks, args, channels=model.input_shape[-1])
    report = evaluate_images(model, d.images, d.masks, classes, _regions_of(args), args.threshold, args.tile)
    print(format_report(report))
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return OK


def _check_outputs(args):
    """Every output path is checked (folder exists, writable, a lossless format for data) before any work."""
    from .images import LOSSLESS
    from .serialization import check_writable
    outputs = [("--output", args.output, LOSSLESS), ("--probabilities", args.probabilities, LOSSLESS),
               ("--overlay", args.overlay, LOSSLESS + (".jpg", ".jpeg"))]
    seen = {}
    for flag, path, extensions in outputs:
        if path is None:
            continue
        try:
            check_writable(path, flag, extensions)
        except ValueError as err:
            raise UserError(str(err)) from err
        real = os.path.realpath(path)
        if real in seen or real == os.path.realpath(args.input):
            other = seen.get(real, "--input")
            raise UserError(f"{flag} {path!r} is the same file as {other}; give each output its own name")
        seen[real] = flag


def _predict_folder(args) -> int:
    """predict with a folder --input: one mask per image in the --output folder (and --probabilities,
    --overlay folders when given), named after the image."""
    import copy
    from pathlib import Path

    from .folders import IMAGE_EXTENSIONS
    files = sorted(f for f in Path(args.input).iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise UserError(f"--input {args.input!r} is a folder with no images ({', '.join(IMAGE_EXTENSIONS)})")
    for flag in ("output", "probabilities", "overlay"):
        folder = getattr(args, flag)
        if folder is None:
            continue
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UserError(f"--{flag} {folder!r} is a file; with a folder --input, --{flag} names a folder "
                            "that gets one <name>.png per image")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise UserError(f"--{flag} {folder!r}: cannot create the folder ({err.strerror or err})") from err
    for f in files:
        one = copy.copy(args)
        one.input = str(f)
        for flag in ("output", "probabilities", "overlay"):
            if getattr(args, flag) is not None:
                setattr(one, flag, os.path.join(getattr(args, flag), f.stem + ".png"))
        cmd_predict(one)
    print(f"segmented {len(files)} image(s) from {args.input} into {args.output}")
    return OK


def cmd_predict(args) -> int:
    from . import images, inference
    from .serialization import clean_orphans
    if os.path.isdir(args.input):
        return _predict_folder(args)
    _check_outputs(args)
    for path in {os.path.dirname(os.path.abspath(p)) for p in (args.output, args.probabilities, args.overlay) if p}:
        clean_orphans(path)                      # temporary files of a predict that was killed mid-write
    model = inference.load_model(args.weights)
    height, width, _ = images.image_info(args.input)
    channels = model.input_shape[-1]
    try:
        inference.tile_plan(model, height, width, args.tile)
    except ValueError as err:
        raise UserError(f"--tile {args.tile or model.input_shape[0]}: {err}") from err
    try:
        inference.check_memory(model, (height, width, channels), args.tile, args.batch_size,
                               max_memory=args.max_memory)
    except inference.NotEnoughMemory as err:
        raise UserError(str(err)) from err
    image = images.read_image(args.input, "grey" if args.grayscale else channels, bits=args.bits)
    p = inference.predict_tiled(model, image, tile=args.tile, batch_size=args.batch_size, max_memory=0)
    p = p[..., 1:2] if p.shape[-1] == 2 else p
    if p.shape[-1] != 1:
        raise UserError(f"{args.weights} is a {p.shape[-1]}-class model; predict writes binary masks only: use "
                        "unet_scratch.inference.predict_tiled in Python for several classes")
    written = [images.save_mask(args.output, p, threshold=args.threshold)]
    if args.probabilities:
        written.append(images.save_probabilities(args.probabilities, p))
    if args.overlay:
        written.append(images.save_overlay(args.overlay, image, p > args.threshold))
    print(f"{args.input} {image.shape[0]}x{image.shape[1]}: foreground {float((p > args.threshold).mean()):.1%}; "
          f"wrote {', '.join(written)}")
    return OK


# --------------------------------------------------------------------------------- errors, main
def _one_line(text) -> str:
    return " ".join(str(text).split())


def classify(err: BaseException) -> tuple[int, str]:
    """(exit status, message) of an exception that ended a command."""
    from .inference import NotEnoughMemory
    from .serialization import is_disk_full
    from .training import DivergedError, RunFolderBusy
    if isinstance(err, (Failure, DivergedError)):
        return FAILED, str(err)
    if isinstance(err, (UserError, RunFolderBusy, NotEnoughMemory)):
        return USAGE, str(err)
    if is_disk_full(err):
        name = f" writing {err.filename}" if getattr(err, "filename", None) else ""
        return FAILED, (f"no space left on the disk{name} ({err.strerror}); free some space and run the same "
                        "command again: files written before are intact")
    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return USAGE, str(err)
    if isinstance(err, (ValueError, TypeError, ImportError)):
        return USAGE, str(err)
    if isinstance(err, MemoryError):
        return FAILED, ("out of memory; use a smaller --tile or --batch-size (predict), or a smaller --size, "
                        "--base-filters or --batch-size (train)")
    if isinstance(err, OSError):
        return FAILED, f"{err}; check the disk and the paths, then run the same command again"
    return FAILED, (f"internal error: {type(err).__name__}: {err}. This is a bug, not your mistake: rerun with "
                    "--debug for the traceback and report it")


def run_command(args) -> int:
    """Run a parsed command: its exit status, and one ``error:`` line on stderr for an error."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        if not sys.warnoptions:                                 # python -W ... takes precedence
            warnings.simplefilter("default")
        warnings.simplefilter("ignore", RuntimeWarning)        # NumPy overflow noise; 'stopped:' says it all
        try:
            return args.func(args)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print("error: interrupted (Ctrl-C); nothing half-written was left behind", file=sys.stderr)
            return INTERRUPTED
        except Exception as err:  # noqa: BLE001 - every error becomes one line (or a traceback with --debug)
            if args.debug:
                raise
            code, message = classify(err)
            print(f"error: {_one_line(message)}", file=sys.stderr)
            return code


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        if argv[:1] == ["bench"]:                 # the benchmark parses its own options
            from .bench import main as bench_main
            return bench_main(argv[1:])
        args = build_parser().parse_args(argv)
    except SystemExit as stop:                    # --help, or argparse's one-line usage error (status 2)
        return stop.code if isinstance(stop.code, int) else (OK if stop.code is None else USAGE)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return INTERRUPTED
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
