"""How the package is put together: every module imports alone, nothing reaches into another module's
private names, and a NumPy + SciPy install (the core) works and says what to install for the rest."""
import ast
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import unet_scratch

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "unet_scratch"
# modules that need an optional package by design, and the extra their ImportError must name
NEEDS_EXTRA = {"unet_scratch.kernels.cupy_ops": ("cupy", ".[gpu-cuda"),
               "unet_scratch.frameworks.torch_model": ("torch", ".[torch]")}


def _modules():
    return sorted(m.name for m in pkgutil.walk_packages(unet_scratch.__path__, "unet_scratch."))


def _import_alone(module):
    """Import ``module`` in a fresh interpreter; returns (module, returncode, last line of stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    lines = proc.stderr.strip().splitlines()
    return module, proc.returncode, lines[-1] if lines else ""


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """An import cycle shows only when a module is imported first: import each one in its own process."""
    modules = _modules()
    assert len(modules) > 40 and "unet_scratch.frameworks.parity" in modules
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_import_alone, modules))
    failures = []
    for module, code, last in results:
        if module in NEEDS_EXTRA and code != 0:
            package, extra = NEEDS_EXTRA[module]
            if last.startswith("ImportError") and extra in last:
                continue                        # CuPy missing here, and the error names the extra
        if code != 0:
            failures.append(f"{module}: {last}")
    assert not failures, "modules that fail to import alone:\n" + "\n".join(failures)


# ------------------------------------------------------------------------------------ private names
def _private_definitions(tree) -> set:
    """Private names a module defines itself: functions, classes, assignments, and self._x attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_uses(source: str, where: str) -> list:
    """Places where ``source`` uses another module's private name.

    Flags ``from <unet_scratch module> import _name`` (relative imports too), ``module._name`` on a name bound
    to an imported module, and ``obj._name`` on any other object when this file does not define ``_name``
    itself (a class may touch its own kind's private state; other modules' objects are off limits).
    """
    tree = ast.parse(source, where)
    own = _private_definitions(tree)
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            ours = node.level > 0 or (node.module or "").split(".")[0] == "unet_scratch"
            for alias in node.names:
                if ours and alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{where}:{node.lineno}: imports private {alias.name!r}")
                if ours:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "unet_scratch":
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or attr.startswith("__"):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in ("self", "cls"):
            continue
        if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
            continue
        if isinstance(base, ast.Name) and base.id in modules:
            found.append(f"{where}:{node.lineno}: uses private {base.id}.{attr}")
        elif attr not in own:
            label = ast.unparse(base)
            found.append(f"{where}:{node.lineno}: uses another object's private {label}.{attr}")
    return found


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = []
    for cell in cells:
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            # IPython magics and shell escapes are not Python
            code.append("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
    return "\n\n".join(code)


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text()
    for folder in ("tools", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, path.read_text()
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in path.parts:
            yield path, _notebook_code(path)


def test_no_module_chapter_or_tool_uses_a_private_name_of_another_module():
    found = []
    for path, source in _sources():
        found += private_uses(source, str(path.relative_to(ROOT)))
    assert not found, "private names used across modules:\n" + "\n".join(found)


@pytest.mark.parametrize("snippet,expected", [
    ("from unet_scratch.keras_ref import _keras", "imports private '_keras'"),
    ("from .base import _call", "imports private '_call'"),
    ("from unet_scratch import training\ntraining._dice(1)", "uses private training._dice"),
    ("def f(layer):\n    return layer._cache", "uses another object's private layer._cache"),
])
def test_the_private_name_check_can_fail(snippet, expected):
    found = private_uses(snippet, "example.py")
    assert found and expected in found[0], found


def test_the_private_name_check_allows_a_class_its_own_state():
    snippet = textwrap.dedent("""
        class Layer:
            def __init__(self):
                self._cache = None
            def same(self, other):
                return other._cache is self._cache
        """)
    assert private_uses(snippet, "example.py") == []


# ------------------------------------------------------------------------------ the core install
CORE_ONLY = textwrap.dedent("""
    import importlib.abc, json, sys
    HIDDEN = {"tensorflow", "keras", "numba", "llvmlite", "cupy", "matplotlib", "tqdm", "PIL", "torch"}

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ImportError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    import numpy as np
    import unet_scratch as us
    from unet_scratch import UNet, data, images, inference, keras_ref, metrics, training

    out = {}
    model = UNet((32, 32, 1), base_filters=4, depth=2, seed=0)
    train = data.load("membranes", "train", n=4, size=32)
    history = training.fit(model, train, epochs=1, batch_size=2, verbose=1)   # verbose=1 wants tqdm
    out["fit"] = len(history.epoch)
    p = inference.predict(model, train[0][:1])
    out["predict"] = list(p.shape)
    out["dice"] = 0.0 <= metrics.dice(p, train[1][:1]) <= 1.0
    attempts = {
        "keras": lambda: keras_ref.build_keras_unet(),
        "numba": lambda: us.set_backend("numba"),
        "plot": lambda: history.plot(),
        "png": lambda: images.save_mask("never-written.png", np.zeros((4, 4))),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            out[name] = "worked"
        except (ImportError, RuntimeError) as err:
            out[name] = str(err)
    print(json.dumps(out))
    """)


def test_a_numpy_and_scipy_install_trains_predicts_and_names_the_extra_for_the_rest(tmp_path):
    """The optional packages hidden (as if never installed): the core works, the rest says what to install."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CORE_ONLY], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fit"] == 1 and out["predict"] == [1, 32, 32, 1] and out["dice"]
    assert "pip install -e '.[keras]'" in out["keras"]
    assert "pip install -e '.[numba]'" in out["numba"]
    assert "matplotlib" in out["plot"] and "pip install -e '.[notebooks]'" in out["plot"]
    assert "pillow" in out["png"] and "pip install -e '.[notebooks]'" in out["png"]
    assert not (tmp_path / "never-written.png").exists()
