"""Confusion matrix of the ScanNet200 benchmark, vectorised with one ``np.bincount``.

Rows are ground-truth class indices 0..K-1 (points with ground truth -1 are not counted), columns
are predicted class indices 0..K-1 plus a last column K for "prediction is none of the K classes",
which the benchmark counts as a miss (false negative of the row's class, false positive of nothing).
"""

from __future__ import annotations

import numpy as np

from lgseg.scannet.constants import IGNORE_INDEX, NUM_CLASSES


def _as_int64(name: str, values) -> np.ndarray:
    """Flatten ``values`` to a 1-D int64 array; non-integer input is a caller bug."""
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False).ravel()


def _check_gt_range(gt: np.ndarray, num_classes: int) -> None:
    """Ground truth must be IGNORE_INDEX or a class index: anything else signals a mapping bug."""
    if gt.size == 0:
        return
    lo, hi = int(gt.min()), int(gt.max())
    if lo < IGNORE_INDEX or hi >= num_classes:
        bad = lo if lo < IGNORE_INDEX else hi
        raise ValueError(
            f"ground truth holds class index {bad}; expected {IGNORE_INDEX} (ignored) "
            f"or 0..{num_classes - 1} (map raw ScanNet ids with raw_to_index first)"
        )


def confusion_matrix(gt, pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Count (ground truth, prediction) pairs into an int64 matrix of shape (K, K + 1).

    ``gt`` and ``pred`` are equally long arrays of class indices. Ground truth -1 is ignored;
    a prediction outside 0..K-1 (e.g. -1) is counted in the last column.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    gt = _as_int64("gt", gt)
    pred = _as_int64("pred", pred)
    if gt.shape != pred.shape:
        raise ValueError(
            f"gt and pred must have one entry per point: gt has {gt.size} entries, pred has {pred.size}"
        )
    _check_gt_range(gt, num_classes)
    k = np.uint64(num_classes)
    # Viewed as unsigned, negative values become huge, so one np.minimum sends every value outside
    # 0..K-1 to K: the extra row K collects ignored ground truth, column K collects misses.
    flat = np.minimum(gt.view(np.uint64), k)
    flat *= k + np.uint64(1)  # in place: fewer large temporaries
    flat += np.minimum(pred.view(np.uint64), k)
    counts = np.bincount(flat.view(np.int64), minlength=(num_classes + 1) ** 2)
    return counts.reshape(num_classes + 1, num_classes + 1)[:num_classes].astype(np.int64, copy=True)


def most_confused(conf: np.ndarray, k: int = 20) -> list[dict]:
    """The ``k`` largest off-diagonal cells of a (K, K + 1) confusion matrix, largest first.

    Each: ``gt`` and ``predicted`` class indices (``predicted`` = K: none of the K classes),
    ``points`` and ``share``: the fraction of the ground-truth class's points that went there.
    """
    conf = np.asarray(conf)
    off = conf.astype(np.int64).copy()
    n = min(off.shape)
    off[np.arange(n), np.arange(n)] = 0
    flat = np.argsort(-off, axis=None, kind="stable")[:k]
    totals = conf.sum(1)
    rows = []
    for idx in flat:
        g, p = np.unravel_index(idx, off.shape)
        if off[g, p] == 0:
            break
        rows.append({"gt": int(g), "predicted": int(p), "points": int(off[g, p]),
                     "share": float(off[g, p] / totals[g])})
    return rows
