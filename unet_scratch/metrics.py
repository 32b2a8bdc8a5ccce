"""Segmentation metrics.

Binary masks. pred and target may be bool, {0, 1} integers or probabilities: a pixel is foreground when
its value is > 0.5 (so a probability of exactly 0.5 counts as background). Arrays of any shape are treated
as one set of pixels (a batch is pooled; call per image and average for per-image means).

    dice(A, B)        = 2 |A and B| / (|A| + |B|)          both empty -> 1.0
    iou(A, B)         = |A and B| / |A or B|               both empty -> 1.0
    pixel_error(A, B) = fraction of pixels where A != B     (the ISBI 2012 pixel error)

Label images (any integers; each value one segment).

    rand_error = 1 - Rand index. Over all pairs of pixels, the Rand index is the fraction of pairs on which
    the two segmentations agree (same segment in both, or different segments in both). With the
    contingency table n_ij = #pixels in predicted segment i and true segment j, a_i, b_j its row and
    column sums, N the pixel count and C(m) = m (m - 1) / 2 the number of pairs:
        agreeing pairs = C(N) + 2 sum C(n_ij) - sum C(a_i) - sum C(b_j).
    adapted_rand_error = 1 - Rand F-score restricted to the target's foreground (the ISBI 2012 "Rand
    error"; the same definition as skimage.metrics.adapted_rand_error): pixels with target label 0 are
    ignored, precision = sum n_ij (n_ij - 1) / sum a_i (a_i - 1), recall = the same over b_j,
    error = 1 - 2 P R / (P + R). The ISBI score labels membranes 0 and cells 1..K.

Instances. count_separated(pred_mask, instances): connected components of the prediction (4-connected)
matched to true instances with IoU > 0.5. IoU > 0.5 makes the matching one-to-one automatically (two
components cannot both cover more than half of one instance's union), so the count is the number of true
instances whose best component has IoU > 0.5.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def _binary_pair(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} and target shape {target.shape} differ")
    for name, x in (("pred", pred), ("target", target)):
        if x.size and x.dtype != bool and (x.min() < 0 or x.max() > 1):
            raise ValueError(f"{name} has values in [{x.min()}, {x.max()}]; expected a binary mask or "
                             "probabilities in [0, 1] (a 0/255 mask: divide by 255)")
    return pred > 0.5, target > 0.5


def dice(pred, target):
    """Dice coefficient 2|A and B| / (|A| + |B|) of two masks (any equal shapes) -> float; 1.0 if both empty."""
    return dice_from_counts(*dice_counts(pred, target))


def dice_counts(pred, target):
    """(|A and B|, |A| + |B|) as ints: summed over the batches of an epoch, they give one global Dice
    (``dice_from_counts``), as ``training.fit`` reports it."""
    a, b = _binary_pair(pred, target)
    return int(np.logical_and(a, b).sum()), int(a.sum() + b.sum())


def dice_from_counts(intersection, total):
    """2 * intersection / total, 1.0 when total is 0 (both masks empty)."""
    return 1.0 if total == 0 else float(2 * intersection / total)


def iou(pred, target):
    """Intersection over union (Jaccard) of two masks -> float; 1.0 if both empty."""
    a, b = _binary_pair(pred, target)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def pixel_error(pred, target):
    """Fraction of pixels where the binarised masks differ -> float in [0, 1]; 0.0 for empty arrays."""
    a, b = _binary_pair(pred, target)
    return 0.0 if a.size == 0 else float(np.mean(a != b))


def contingency_table(pred_labels, target_labels):
    """n: (number of predicted segments, number of true segments) int64 pixel counts.

    pred_labels, target_labels: integer label arrays of the same shape (any label values).
    """
    p, t = np.asarray(pred_labels), np.asarray(target_labels)
    if p.shape != t.shape:
        raise ValueError(f"pred_labels shape {p.shape} and target_labels shape {t.shape} differ")
    for name, x in (("pred_labels", p), ("target_labels", t)):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
            raise TypeError(f"{name} has dtype {x.dtype}; expected integer labels "
                            "(label a binary mask with scipy.ndimage.label first)")
    _, pi = np.unique(p.ravel(), return_inverse=True)
    _, ti = np.unique(t.ravel(), return_inverse=True)
    rows, cols = (pi.max() + 1, ti.max() + 1) if p.size else (0, 0)
    return np.bincount(pi * cols + ti, minlength=rows * cols).reshape(rows, cols).astype(np.int64)


def _pairs(m):
    m = m.astype(np.float64)
    return m * (m - 1) / 2


def rand_error(pred_labels, target_labels):
    """1 - Rand index over all pixel pairs (label arrays of equal shape) -> float in [0, 1]."""
    n = contingency_table(pred_labels, target_labels)
    total = _pairs(n.sum())
    if total == 0:
        return 0.0
    agree = total + 2 * _pairs(n).sum() - _pairs(n.sum(1)).sum() - _pairs(n.sum(0)).sum()
    return float(1 - agree / total)


def adapted_rand_error(pred_labels, target_labels):
    """ISBI 2012 Rand error: 1 - Rand F-score on the target's foreground (target label != 0) -> float."""
    p, t = np.asarray(pred_labels), np.asarray(target_labels)
    if p.shape != t.shape:
        raise ValueError(f"pred_labels shape {p.shape} and target_labels shape {t.shape} differ")
    keep = t != 0
    if not keep.any():
        raise ValueError("target_labels has no foreground (all 0): the adapted Rand error is undefined")
    n = contingency_table(p[keep], t[keep])
    both = 2 * _pairs(n).sum()
    precision = both / s if (s := 2 * _pairs(n.sum(1)).sum()) else 1.0   # 0/0: all singletons agree
    recall = both / s if (s := 2 * _pairs(n.sum(0)).sum()) else 1.0
    if precision + recall == 0:
        return 1.0
    return float(1 - 2 * precision * recall / (precision + recall))


def count_separated(pred_mask, instances, iou_threshold=0.5):
    """How many true instances are matched one-to-one by a connected component of the prediction.

    pred_mask: (H, W) binary mask or probabilities (> 0.5 = foreground); instances: (H, W) int, 0 =
    background. A component matches an instance when their IoU > iou_threshold (>= 0.5 keeps it one-to-one).
    Returns an int between 0 and the number of instances.
    """
    instances = np.asarray(instances)
    a, _ = _binary_pair(pred_mask, instances > 0)
    if a.ndim != 2:
        raise ValueError(f"pred_mask has shape {a.shape}; expected one (H, W) image")
    if iou_threshold < 0.5:
        raise ValueError(f"iou_threshold = {iou_threshold}: below 0.5 a match is not one-to-one")
    components, _ = ndimage.label(a)
    n = contingency_table(components, instances)      # rows: sorted component ids, cols: sorted instance ids
    rows, cols = np.unique(components) > 0, np.unique(instances) > 0
    sizes_pred, sizes_true = n.sum(1), n.sum(0)       # whole sizes, background included
    n = n[rows][:, cols]
    if n.size == 0:
        return 0
    union = sizes_pred[rows][:, None] + sizes_true[cols][None, :] - n
    return int(np.sum((n / union).max(0) > iou_threshold))


# ------------------------------------------------------------------------ scores as the field reports them
def regions(mask, value=1):
    """The connected regions (4-connected) of the pixels of ``mask`` equal to ``value``, labelled 1..K; 0 elsewhere.

    mask: (H, W) class indices or a boolean mask. For membranes (class 1 = membrane) the regions of value 0
    are the cells that the ISBI 2012 Rand error compares.
    """
    labels, _ = ndimage.label(np.asarray(mask) == value)
    return labels


def per_class_dice(pred, labels, classes):
    """pred, labels: int class indices of the same shape (a batch is pooled) -> [Dice of class c for c in
    0..classes-1], each 2 |P_c and T_c| / (|P_c| + |T_c|), 1.0 where a class is in neither."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape:
        raise ValueError(f"pred shape {pred.shape} and labels shape {labels.shape} differ (pass class indices: "
                         "probabilities.argmax(-1) for a softmax output)")
    return [dice(pred == c, labels == c) for c in range(classes)]


def segmentation_scores(pred, target, n_classes=2, regions_of=None):
    """Pixel error, Dice and IoU per class, and the adapted Rand error of the segmented regions.

    pred, target: (H, W) or (N, H, W) class indices (a binary prediction: probabilities thresholded first).
    regions_of: the class whose connected regions the Rand error compares, per image: 0 when class 1 is a
    boundary (membranes: the regions are the cells), 1 when class 1 is the object (cells, nuclei); None
    skips it. Returns {"pixel_error", "dice": [per class], "iou": [per class], "adapted_rand_error"}.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} and target shape {target.shape} differ")
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    scores = {"pixel_error": float(np.mean(pred != target)) if pred.size else 0.0,
              "dice": per_class_dice(pred, target, n_classes),
              "iou": [iou(pred == k, target == k) for k in range(n_classes)]}
    if regions_of is not None:
        errors = [adapted_rand_error(regions(p, regions_of), regions(t, regions_of))
                  for p, t in zip(pred, target) if np.any(t == regions_of)]
        scores["adapted_rand_error"] = float(np.mean(errors)) if errors else float("nan")
    return scores


def best_threshold_baseline(images, target, regions_of=None, levels=64):
    """The best single global threshold of the raw images, scored like a model: a model must beat this.

    images: (N, H, W) or (N, H, W, 1) grey values in [0, 1]; target: (N, H, W) binary class indices.
    Both directions are tried (foreground = darker or brighter than the threshold: membranes in EM are dark).
    The threshold with the lowest pixel error over all images is chosen. Returns the scores of
    :func:`segmentation_scores` plus "threshold" and "foreground" ("dark" or "bright").
    """
    g = np.asarray(images, np.float64)
    g = g[..., 0] if g.ndim == 4 else g
    t = np.asarray(target)
    if g.shape != t.shape:
        raise ValueError(f"images {g.shape} and targets {t.shape} must have the same (N, H, W)")
    best = None
    for level in np.linspace(0, 1, levels + 1)[1:-1]:
        for side, pred in (("dark", g < level), ("bright", g >= level)):
            err = float(np.mean(pred != (t == 1)))
            if best is None or err < best[0]:
                best = (err, float(level), side)
    _, level, side = best
    pred = ((g < level) if side == "dark" else (g >= level)).astype(np.uint8)
    return {**segmentation_scores(pred, t, 2, regions_of), "threshold": level, "foreground": side}
