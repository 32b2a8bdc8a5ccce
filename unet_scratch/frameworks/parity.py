"""Scratch vs Keras, layer by layer: the parity report and lockstep training.

``compare`` runs the same input through both networks, records every layer's output on each side, and
takes the gradient of the same loss with respect to every weight (Keras's through ``tf.GradientTape``).
``lockstep`` trains both from identical weights on identical batches and compares the loss curves.
Both are re-exported by :mod:`unet_scratch.keras_ref`, with the rest of the Keras side. Layers are paired by
structure (:mod:`.keras_structure`), so the Keras model may be the article's function with Keras's own names;
report rows carry the scratch names. :func:`parity_report` is the framework-neutral core, shared with the
PyTorch comparison (:mod:`.torch_parity`); the recording machinery lives in :mod:`.recording`.

Why the gradients are compared "teacher-forced". In float32 two values of a pooling window can differ by
one rounding step on one side and be equal, or ordered the other way, on the other. Both frameworks then
route that window's gradient to the first maximum correctly, but to different pixels, and one such window
among thousands moves a weight gradient by ~1e-3 relative. That is rounding luck, not a bug, so the
backward pass is checked with every scratch layer fed Keras's own activations (each layer computes its
forward from Keras's input, and hands Keras's output on), which makes every routing decision and ReLU mask
identical on both sides; the windows whose first maximum differs in the free-running pass are counted and
reported as ``near_ties``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..optional import require
from .imports import import_keras
from .keras_structure import read_keras_unet
from .keras_transfer import to_keras
from .recording import near_ties, record_outputs, rel, teacher_forced_backward
from .tolerances import FORWARD_ATOL, FORWARD_RTOL, GRAD_RTOL, OUTPUT_ATOL, WEIGHT_RTOL


@dataclass
class Row:
    """One line of the report: a layer's output ("forward") or a weight's gradient ("gradient")."""
    name: str
    kind: str
    shape: tuple
    max_abs: float
    rel: float
    passed: bool


class ParityReport:
    """Per-layer forward errors and per-weight gradient errors, each marked pass/fail.

    framework: the other side's name ("Keras", "PyTorch"); ``loss_keras`` is that side's loss whatever
    the framework (also readable as ``loss_framework``).
    """

    def __init__(self, rows, loss_scratch=None, loss_keras=None, near_ties=None, framework="Keras"):
        self.rows = list(rows)
        self.loss_scratch, self.loss_keras = loss_scratch, loss_keras
        self.near_ties = dict(near_ties or {})     # pool layer -> windows routed differently (float32)
        self.framework = framework

    @property
    def loss_framework(self):
        return self.loss_keras

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def failures(self):
        return [r for r in self.rows if not r.passed]

    def verdict(self) -> str:
        fwd = [r for r in self.rows if r.kind == "forward"]
        grd = [r for r in self.rows if r.kind == "gradient"]
        worst_f = max(fwd, key=lambda r: r.max_abs)
        text = (f"{len(fwd)} layer outputs (worst max abs error {worst_f.max_abs:.1e} at {worst_f.name})")
        if grd:
            worst_g = max(grd, key=lambda r: r.rel)
            text += f", {len(grd)} weight gradients (worst rel error {worst_g.rel:.1e} at {worst_g.name})"
        if self.near_ties:
            total = sum(self.near_ties.values())
            text += f"; {total} float32 near-tie pooling window{'s' * (total != 1)} in the free-running pass"
        bad = self.failures()
        if not bad:
            return "PASS: " + text
        return f"FAIL: {len(bad)} of {len(self.rows)} rows out of tolerance, first {bad[0].name}; " + text

    def __str__(self):
        head = f"{'':3}{'name':<28}{'kind':<10}{'shape':<22}{'max abs':>10}{'rel':>10}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            mark = "ok " if r.passed else "XX "
            lines.append(f"{mark}{r.name:<28}{r.kind:<10}{str(r.shape):<22}{r.max_abs:>10.1e}{r.rel:>10.1e}")
        lines += ["-" * len(head),
                  f"tolerances: forward rtol = atol = {FORWARD_RTOL:g} (output atol {OUTPUT_ATOL:g}), "
                  f"gradients rel <= {GRAD_RTOL:g}", self.verdict()]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain Python types only (no pandas): {"passed", "verdict", "rows": [...]}."""
        rows = [{**asdict(r), "shape": list(r.shape)} for r in self.rows]
        return {"passed": self.passed, "verdict": self.verdict(), "rows": rows,
                "near_ties": dict(self.near_ties),
                "tolerances": {"forward_rtol": FORWARD_RTOL, "forward_atol": FORWARD_ATOL,
                               "output_atol": OUTPUT_ATOL, "grad_rtol": GRAD_RTOL}}

    def plot(self, ax=None):
        """Per-layer errors on a log scale with the tolerance lines; returns the matplotlib Axes."""
        plt = require("matplotlib.pyplot", "plotting a parity report")
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
        fwd = [r for r in self.rows if r.kind == "forward"]
        grd = [r for r in self.rows if r.kind == "gradient" and r.name.endswith("/kernel")]
        floor = 1e-12
        ax.semilogy(range(len(fwd)), [max(r.max_abs, floor) for r in fwd], "o-", ms=4,
                    label="layer output: max abs error")
        xs = [next(i for i, f in enumerate(fwd) if f.name == r.name.split("/")[0]) for r in grd]
        ax.semilogy(xs, [max(r.rel, floor) for r in grd], "s", ms=5, color="tab:orange",
                    label="kernel gradient: relative error")
        ax.axhline(FORWARD_ATOL, color="tab:blue", ls="--", lw=1, label=f"forward tolerance {FORWARD_ATOL:g}")
        ax.axhline(GRAD_RTOL, color="tab:orange", ls=":", lw=1, label=f"gradient tolerance {GRAD_RTOL:g}")
        ax.set_xticks(range(len(fwd)))
        ax.set_xticklabels([r.name for r in fwd], rotation=90, fontsize=7)
        ax.set_ylabel("error (log; exact 0 drawn at 1e-12)", fontsize=8)
        ax.set_title(f"Scratch vs {self.framework}: every layer agrees far below the tolerance lines")
        ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
        ax.figure.tight_layout()
        return ax


def _loss_and_grad(y_pred, y_true, g):
    """Scratch side: BCE against y_true for a sigmoid head, else the projection loss mean(y * g)."""
    if y_true is not None:
        from ..ops.losses import binary_crossentropy
        return binary_crossentropy(y_pred, y_true)
    return float(np.mean(y_pred * g)), (g / g.size).astype(y_pred.dtype)


def parity_report(model, x, y, seed, run_framework, framework="Keras") -> ParityReport:
    """The framework-neutral core of :func:`compare`: record, teacher-force, and tabulate.

    run_framework(x, y, g) runs the other framework once and returns (names, outputs, grads, loss):
    names, the scratch layer names in the framework's layer order; outputs, {scratch layer name: NHWC
    array}; grads, [(scratch parameter name, gradient in the scratch layout)] in the framework's variable
    order; loss, the framework's loss (BCE against y, or mean(output * g) without y).
    """
    if y is not None and model.config["out_activation"] != "sigmoid":
        raise ValueError("compare(y=...) uses binary cross-entropy and needs a sigmoid head; "
                         "leave y out to use a random projection loss instead")
    x = np.asarray(x, dtype=model.dtype)
    y_s, outs_s = record_outputs(model, x)
    g = np.random.default_rng(seed).standard_normal(y_s.shape).astype(model.dtype)
    names, outs_f, grads_f, loss_f = run_framework(x, y, g)
    outs_f["__input__"] = outs_s["__input__"] = x
    loss_s, dy = _loss_and_grad(y_s, y, g)
    _, dy_forced = _loss_and_grad(outs_f["head"], y, g)
    teacher_forced_backward(model, outs_f, dy_forced)

    rows = []
    for name in names:
        a, b = outs_s[name], outs_f[name]
        if a.shape != b.shape:
            rows.append(Row(name, "forward", tuple(a.shape[1:]), np.inf, np.inf, False))
            continue
        max_abs = float(np.max(np.abs(a - b)))
        ok = np.allclose(a, b, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        if name == "head":
            ok = ok and max_abs <= OUTPUT_ATOL
        rows.append(Row(name, "forward", tuple(a.shape[1:]), max_abs, rel(a, b), bool(ok)))
    for pname, gf in grads_f:
        gs = model.grads[pname]
        r = rel(gs, gf)
        rows.append(Row(pname, "gradient", tuple(gs.shape), float(np.max(np.abs(gs - gf))), r,
                        bool(r <= GRAD_RTOL)))
    return ParityReport(rows, float(loss_s), float(loss_f), near_ties(model, outs_s, outs_f), framework)


def keras_to_scratch_names(keras_model) -> dict:
    """Keras layer name -> scratch layer name, by structure; a Keras model that :func:`read_keras_unet`
    cannot read is paired by name (how compare worked before structures)."""
    try:
        return read_keras_unet(keras_model).scratch_names()
    except ValueError:
        return {l.name: l.name for l in keras_model.layers}


def _scratch_param(var, names) -> str:
    layer, weight = var.path.rsplit("/", 1)
    return f"{names.get(layer, layer)}/{weight}"


def compare(model, keras_model, x, y=None, seed=0) -> ParityReport:
    """Forward every layer and backpropagate one loss through both models; returns a ParityReport.

    x: (N, H, W, C) input. y: optional target for a sigmoid head (binary cross-entropy); without it the
    loss is mean(output * g) for a fixed random g, which exercises every gradient. Dropout runs in
    inference mode on both sides. The Keras gradients come from ``tf.GradientTape`` (TensorFlow backend).
    The Keras model may use any layer names (layers are paired by structure); rows use the scratch names.
    """
    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("compare() takes Keras gradients with tf.GradientTape: "
                           "set KERAS_BACKEND=tensorflow")
    import tensorflow as tf
    to_scratch = keras_to_scratch_names(keras_model)

    def run_keras(x, y, g):
        layers = [l for l in keras_model.layers if to_scratch.get(l.name) in model_layers]
        names = [to_scratch[l.name] for l in layers]
        probe = keras.Model(keras_model.inputs, [l.output for l in layers])
        variables = keras_model.trainable_variables
        with tf.GradientTape() as tape:
            outs = probe([x], training=False)
            y_k = outs[names.index("head")]
            if y is not None:
                loss_k = keras.losses.BinaryCrossentropy()(y.astype(model.dtype), y_k)
            else:
                loss_k = tf.reduce_mean(y_k * g)
        grads = tape.gradient(loss_k, variables)
        outs = {name: np.asarray(o) for name, o in zip(names, outs)}
        grads = [(_scratch_param(v, to_scratch), np.asarray(gk)) for v, gk in zip(variables, grads)]
        return names, outs, grads, loss_k

    model_layers = {l.name for l in model.layers}
    return parity_report(model, x, y, seed, run_keras, "Keras")


@dataclass
class LockstepResult:
    """Loss curves of the scratch and Keras models trained side by side, and their relative gap.

    framework: the other side ("Keras", or "PyTorch" for ``lockstep_torch``, whose losses are then in
    ``keras_losses``, also readable as ``framework_losses``).
    """
    scratch_losses: list
    keras_losses: list
    rel_diff: list
    weight_rel_diff: float
    optimizer: str
    framework: str = "Keras"

    @property
    def framework_losses(self) -> list:
        return self.keras_losses

    @property
    def max_rel_diff(self) -> float:
        return float(max(self.rel_diff))

    @property
    def passed(self) -> bool:
        """Every step's loss within GRAD_RTOL and every weight at the end within WEIGHT_RTOL."""
        return self.max_rel_diff <= GRAD_RTOL and self.weight_rel_diff <= WEIGHT_RTOL

    def plot(self, ax=None):
        plt = require("matplotlib.pyplot", "plotting a lockstep result")
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
        steps = np.arange(1, len(self.rel_diff) + 1)
        ax[0].plot(steps, self.scratch_losses, "o-", ms=3, label="scratch (NumPy)")
        ax[0].plot(steps, self.keras_losses, "--", label=self.framework)
        ax[0].set(xlabel="step", ylabel="loss", title=f"{self.optimizer}: the two curves overlap")
        ax[0].legend()
        ax[1].semilogy(steps, np.maximum(self.rel_diff, 1e-12), "o-", ms=3)
        ax[1].axhline(GRAD_RTOL, color="gray", ls="--", label=f"tolerance {GRAD_RTOL:g}")
        other = "loss_" + self.framework.lower()
        ax[1].set(xlabel="step", ylabel=f"|loss_scratch - {other}| / {other}",
                  title="relative gap per step (exact 0 drawn at 1e-12)")
        ax[1].legend()
        ax[0].figure.tight_layout()
        return ax


def lockstep(model, keras_model, batches, optimizer="sgd", steps=20, learning_rate=None,
             momentum=0.9) -> LockstepResult:
    """Train both models from the scratch model's weights on the same batches; compare every step.

    batches: a list of (x, y) with y in {0, 1} for the sigmoid head (binary cross-entropy), reused
    cyclically. optimizer: "sgd" (with ``momentum``) or "adam". Dropout is off on both sides.

    A detail worth knowing: Keras's sigmoid attaches its logits to its output (``_keras_logits``) and
    BinaryCrossentropy then quietly computes the loss from the logits, without clipping. The scratch side
    uses the probability form with Keras's clipping; away from p = 0 or 1 the two agree to rounding.
    """
    keras = import_keras()
    import tensorflow as tf
    from ..ops.losses import binary_crossentropy
    from ..optimizers import SGD, Adam
    if model.config["out_activation"] != "sigmoid":
        raise ValueError("lockstep trains with binary cross-entropy: build the models with a sigmoid head")
    to_keras(model, keras_model)
    if optimizer == "sgd":
        lr = 0.01 if learning_rate is None else learning_rate
        opt_s, opt_k = SGD(lr, momentum=momentum), keras.optimizers.SGD(lr, momentum=momentum)
    elif optimizer == "adam":
        lr = 1e-3 if learning_rate is None else learning_rate
        opt_s, opt_k = Adam(lr), keras.optimizers.Adam(lr)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    bce = keras.losses.BinaryCrossentropy()
    variables = keras_model.trainable_variables
    losses_s, losses_k = [], []
    for step in range(steps):
        x, y = batches[step % len(batches)]
        x, y = np.asarray(x, model.dtype), np.asarray(y, model.dtype)
        loss, dp = binary_crossentropy(model.forward(x, training=False), y)
        model.backward(dp)
        opt_s.apply(model.params, model.grads)
        with tf.GradientTape() as tape:
            loss_k = bce(y, keras_model([x], training=False))
        opt_k.apply_gradients(zip(tape.gradient(loss_k, variables), variables))
        losses_s.append(float(loss))
        losses_k.append(float(loss_k))
    gaps = [abs(a - b) / abs(b) for a, b in zip(losses_s, losses_k)]
    to_scratch = keras_to_scratch_names(keras_model)
    w_rel = max(rel(model.params[_scratch_param(v, to_scratch)], v.numpy()) for v in variables)
    return LockstepResult(losses_s, losses_k, gaps, float(w_rel), optimizer)
