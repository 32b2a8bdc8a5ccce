"""The benchmark's Markdown for the CPU: whole-model and per-layer tables against the faster of TensorFlow and
PyTorch, and the targets of issue 19 with their verdicts. ``unet_scratch.bench.to_markdown`` assembles the
report from these pieces; every number comes from the results dict (no timing happens here).

Ratios: "x/best" is a backend's median time over the faster median of TensorFlow and PyTorch (CPU) in the
same run, so below 1 means faster than both. GFLOP/s count 2 x multiply-adds (backward: 2 x forward), so a
layer done by Winograd can show more than the GEMM peak.
"""
from __future__ import annotations

SCRATCH = ("numpy", "numba", "cupy")
FRAMEWORKS = ("tf", "torch")

# (model, pass, backend, limit): a time ratio to the faster of TensorFlow and PyTorch that must not be exceeded
TARGETS = (("course", "train_step", "numba", 1.0), ("course", "forward", "numba", 1.0),
           ("seed", "train_step", "numba", 0.8), ("seed", "train_step", "numpy", 2.0))


def _ms(stats, name):
    s = stats.get(name)
    return f"{s['median_s'] * 1e3:.1f}" if s else "-"


def _ratio(stats, name, key="ratio_to_best"):
    value = (stats.get(name) or {}).get(key)
    return f"{value:.2f}" if value else "-"


def model_label(m) -> str:
    c = m["config"]
    depth = f" depth {c['depth']}" if "depth" in c else ""
    return (f"{m['name']} {c['input_shape'][0]}x{c['input_shape'][1]}x{c['input_shape'][2]} base "
            f"{c['base_filters']}{depth} batch {c.get('batch', 1)}")


def whole_model_table(results) -> list:
    """Lines of the whole-model table: ms per contender, ratios to TensorFlow and to the best framework,
    GFLOP/s."""
    names = results["meta"]["backends"]
    scratch = [n for n in names if n in SCRATCH]
    has_best = any(n in names for n in FRAMEWORKS)
    rel = [n for n in names if n != "tf"]
    head = (["model", "pass"] + [f"{n} ms" for n in names] + [f"{n}/tf" for n in rel]
            + ([f"{n}/best" for n in scratch] if has_best else []) + [f"{n} GFLOP/s" for n in names])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in results["models"]:
        for part in ("forward", "train_step"):
            st = m[part]
            cells = ([_ms(st, n) for n in names] + [_ratio(st, n, "ratio_to_tf") for n in rel]
                     + ([_ratio(st, n) for n in scratch] if has_best else [])
                     + [f"{st[n]['gflops']:.0f}" if st.get(n, {}).get("gflops") else "-" for n in names])
            lines.append(f"| {model_label(m)} | {part} | " + " | ".join(cells) + " |")
    return lines


def layer_table(rows, names, peak) -> list:
    """Lines of a per-layer table: forward / backward ms per CPU contender, Numba's ratio to the best
    framework, and the fastest scratch backend's GFLOP/s with its fraction of the GEMM peak."""
    cols = [n for n in names if n in SCRATCH or n in FRAMEWORKS]
    scratch = [n for n in cols if n in SCRATCH]
    has_best = any(n in cols for n in FRAMEWORKS) and "numba" in cols
    head = (["layer", "count"] + [f"{n} fwd | {n} bwd" for n in cols]
            + (["numba/best fwd | numba/best bwd"] if has_best else [])
            + ["scratch fwd GFLOP/s (% peak) | scratch bwd GFLOP/s (% peak)"])
    ncols = 2 + 2 * len(cols) + 2 * has_best + 2
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * ncols]
    for row in rows:
        cells = [f"{_ms(row['forward'], n)} | {_ms(row['backward'], n)}" for n in cols]
        if has_best:
            cells.append(f"{_ratio(row['forward'], 'numba')} | {_ratio(row['backward'], 'numba')}")
        for part in ("forward", "backward"):
            g = max(((row[part].get(n) or {}).get("gflops") or 0 for n in scratch), default=0)
            cells.append(f"{g:.0f} ({100 * g / peak:.0f}%)" if g else "-")
        lines.append(f"| {row['label']} | {row['count']} | " + " | ".join(cells) + " |")
    return lines


def targets(results) -> list:
    """Issue 19's targets measured in this run: [{"what", "ratio", "limit", "met"}] for each target whose
    model and contenders were run (time ratios to the faster of TensorFlow and PyTorch), plus the memory
    target (whole-session peak of the Numba backend against TensorFlow's, same model, fresh processes)."""
    models = {m["name"]: m for m in results["models"]}
    out = []
    for model, part, name, limit in TARGETS:
        stats = models.get(model, {}).get(part, {})
        ratio = (stats.get(name) or {}).get("ratio_to_best")
        if ratio is None:
            continue
        out.append({"what": f"{name} {part.replace('_', ' ')}, {model} model", "ratio": ratio,
                    "limit": limit, "met": ratio <= limit})
    for model in ("course", "seed"):
        mem = models.get(model, {}).get("memory") or {}
        numba, tf = (mem.get(n, {}).get("session_peak_mb") for n in ("numba", "tf"))
        if numba is not None and tf is not None and tf > 0:
            out.append({"what": f"numba peak memory / TensorFlow's, {model} model (MB {numba:.0f} / {tf:.0f})",
                        "ratio": numba / tf, "limit": 1.0, "met": numba <= tf})
    return out


def targets_section(results) -> list:
    """Lines of the "Targets" section (empty when none of the targets' models was run, as in --quick)."""
    rows = targets(results)
    if not rows:
        return []
    lines = ["", "## Targets (issue 19)", "",
             "Time ratios to the faster of TensorFlow and PyTorch on the CPU, medians of this run.", "",
             "| target | measured | limit | met |", "|---|---|---|---|"]
    for t in rows:
        lines.append(f"| {t['what']} | {t['ratio']:.2f} | {t['limit']:.2f} | {'yes' if t['met'] else '**no**'} |")
    return lines
