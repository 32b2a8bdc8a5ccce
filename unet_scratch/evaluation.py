"""Scoring a model on whole images the way the field reports it, next to the baseline it must beat.

    report = evaluate_images(model, data.images, data.masks, regions_of=0)
    report["model"]["pixel_error"], report["model"]["dice"], report["model"]["adapted_rand_error"]
    report["baseline"]: the same scores for the best single global threshold of the raw images

Each image is predicted whole with the paper's overlap-tile strategy (``inference.predict_tiled``), so
images of any size are scored as they are, not as crops.
"""
from __future__ import annotations

import numpy as np

from .inference import predict_tiled
from .metrics import best_threshold_baseline, segmentation_scores


def predict_classes(model, image, threshold=0.5, tile=None):
    """(H, W) class indices for one (H, W, C) image: p > threshold for a sigmoid head, argmax for softmax."""
    p = predict_tiled(model, image, tile=tile)
    if p.shape[-1] == 1:
        return (p[..., 0] > threshold).astype(np.uint8)
    return p.argmax(-1).astype(np.uint8)


def evaluate_images(model, images, masks, n_classes=2, regions_of=None, threshold=0.5, tile=None):
    """Scores of ``model`` on whole images, and of the best global threshold of the images themselves.

    images: list of (H, W, C) float arrays in [0, 1]; masks: list of (H, W) class indices (e.g.
    ``folders.load_folder``'s). regions_of: the class whose connected regions the adapted Rand error compares
    (0 when class 1 is a boundary such as membranes, 1 for objects; None skips it). Returns
    {"model": scores, "baseline": scores or None (multi-class or colour images), "images": N}; scores are
    :func:`metrics.segmentation_scores` pooled over all images (Rand error: the mean over images).
    """
    if len(images) == 0 or len(images) != len(masks):
        raise ValueError(f"need the same non-zero number of images and masks, got {len(images)} and {len(masks)}")
    preds = [predict_classes(model, im, threshold, tile) for im in images]
    flat_p = np.concatenate([p.ravel() for p in preds])
    flat_t = np.concatenate([np.asarray(m).ravel() for m in masks])
    scores = segmentation_scores(flat_p, flat_t, n_classes)
    if regions_of is not None:
        per_image = [segmentation_scores(p, m, n_classes, regions_of)["adapted_rand_error"]
                     for p, m in zip(preds, masks)]
        per_image = [e for e in per_image if np.isfinite(e)]
        scores["adapted_rand_error"] = float(np.mean(per_image)) if per_image else float("nan")
    baseline = None
    if n_classes == 2 and all(im.shape[-1] == 1 for im in images):
        grey = np.concatenate([im[..., 0].ravel() for im in images])[None]
        baseline = best_threshold_baseline(grey, flat_t[None])
        if regions_of is not None:
            errors = []
            for im, m in zip(images, masks):
                g = im[..., 0]
                b = (g < baseline["threshold"]) if baseline["foreground"] == "dark" else (g >= baseline["threshold"])
                e = segmentation_scores(b.astype(np.uint8), m, 2, regions_of)["adapted_rand_error"]
                if np.isfinite(e):
                    errors.append(e)
            baseline["adapted_rand_error"] = float(np.mean(errors)) if errors else float("nan")
    return {"model": scores, "baseline": baseline, "images": len(images)}


def format_report(report, class_names=None) -> str:
    """The report as a small table: one row per score, the model beside the baseline."""
    model, base = report["model"], report["baseline"]
    k = len(model["dice"])
    names = class_names or [f"class {i}" for i in range(k)]
    rows = [("pixel error", model["pixel_error"], base and base["pixel_error"])]
    rows += [(f"Dice {names[i]}", model["dice"][i], base and base["dice"][i]) for i in range(k)]
    rows += [(f"IoU {names[i]}", model["iou"][i], base and base["iou"][i]) for i in range(k)]
    if "adapted_rand_error" in model:
        rows.append(("adapted Rand error", model["adapted_rand_error"], base and base.get("adapted_rand_error")))
    head = f"{'score':<22}{'model':>10}{'threshold baseline':>22}"
    lines = [f"{report['images']} image(s)", head, "-" * len(head)]
    for name, a, b in rows:
        lines.append(f"{name:<22}{a:>10.4f}{'' if b is None else f'{b:>22.4f}'}")
    if base is not None:
        lines.append(f"(baseline: foreground where the image is {base['foreground']} of {base['threshold']:.3f}, "
                     "the best single global threshold; a model should beat it)")
    return "\n".join(lines)
