"""Files of the course repository, found from any working directory.

The chapters read precomputed results (``benchmarks/results/*.json``) and other files of the repository. A path
like ``"../benchmarks/results/skips.json"`` works only from ``notebooks/``; the Chinese edition runs in
``notebooks/zh/``, a student copy in ``student/``, a script anywhere. :func:`repo_path` resolves a path relative
to the repository's root from this package's own location (``unet_scratch/`` lies in the root of a checkout,
installed editable with ``pip install -e .``), so the same code cell works in every edition::

    from unet_scratch.resources import repo_path
    with open(repo_path("benchmarks/results/skips.json")) as f:
        ...
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["repo_root", "repo_path"]


def repo_root() -> Path:
    """The folder that holds ``unet_scratch/`` (the repository's root in a checkout)."""
    return Path(__file__).resolve().parent.parent


def repo_path(relative: str | Path, must_exist: bool = True) -> Path:
    """``relative`` (a path inside the repository, e.g. ``"benchmarks/results/skips.json"``) as an absolute path.

    When the repository does not hold the file (the package installed from a wheel), a copy at the same
    relative path under the current working directory is used: that is where ``make nbgrader`` ships the files
    a chapter reads. Raises ValueError for an absolute path or one that leaves the repository (``..``), and
    FileNotFoundError,
    saying what to do, when ``must_exist`` and the file is not there (the package was installed from a wheel
    rather than used from a checkout, or the file was never made).
    """
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"repo_path takes a path inside the repository such as 'benchmarks/results/x.json', "
                         f"got {str(relative)!r}")
    root = repo_root()
    path = root / rel
    beside = Path.cwd() / rel        # shipped next to the notebook (an nbgrader release, a copied folder)
    if not path.exists() and beside.exists():
        return beside
    if must_exist and not path.exists():
        raise FileNotFoundError(
            f"{rel.as_posix()} is not in {root}: the course's files are found next to the unet_scratch package of "
            f"a checkout (install it with `pip install -e .` from the repository's root); if the file is a "
            f"precomputed result, the benchmark script under benchmarks/ that writes it makes it again")
    return path
