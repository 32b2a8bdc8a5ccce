"""Run the unet-scratch benchmark: NumPy and Numba backends against TensorFlow (and PyTorch if installed).

    python benchmarks/bench.py            # full: seed model at 256 x 256 and a small model, every layer
    python benchmarks/bench.py --quick    # small shapes, 2 repeats: a smoke test (under a minute)

Writes benchmarks/results/bench-full.{json,md} (or bench-quick.*). See benchmarks/README.md for the method
and the numbers measured on the course's 2-core machine. The code lives in ``unet_scratch/bench.py``.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from unet_scratch.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
