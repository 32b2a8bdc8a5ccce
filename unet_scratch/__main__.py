"""Command line: ``python -m unet_scratch <command>``.

    info                       versions and the backends that work on this machine
    summary [--size 256] ...   the model's layer table and parameter count
    compare [--size 128] ...   scratch vs Keras, layer by layer; exit status 1 if any row fails
    bench [--quick] ...        NumPy and Numba backends against TensorFlow, in one run
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
