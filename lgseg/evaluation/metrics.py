"""ScanNet200 scores from a confusion matrix: per class, per split (head/common/tail) and overall.

Per class c: TP = C[c, c], FP = column c summed over the K ground-truth rows minus TP, FN = row c
summed over all K + 1 columns minus TP; IoU, precision and recall are NaN where their denominator
is 0. A split's score is the mean over its classes with a defined value; ``miou_200`` instead counts
an undefined IoU as 0 (the reference code's convention). Reported scores are percentages.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from lgseg.evaluation.confusion import confusion_matrix, most_confused
from lgseg.fileio import atomic_file, write_json
from lgseg.scannet.constants import (
    CLASS_NAMES,
    CLASS_SPLIT,
    NUM_CLASSES,
    SPLIT_INDICES,
    SPLITS,
    VALID_CLASS_IDS,
)

SCORES = ("iou", "precision", "recall")
CSV_COLUMNS = ("id", "name", "split", "iou", "precision", "recall", "tp", "fp", "fn")


def _check_confusion(conf) -> np.ndarray:
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[1] != conf.shape[0] + 1:
        raise ValueError(f"confusion matrix must have shape (K, K + 1), got {conf.shape}")
    return conf.astype(np.int64, copy=False)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float, NaN where den == 0 (the score is undefined, not zero)."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def class_scores(conf) -> dict[str, np.ndarray]:
    """Per-class arrays ``tp``, ``fp``, ``fn`` (int64) and ``iou``, ``precision``, ``recall``
    (fractions in 0..1, NaN where undefined) of a (K, K + 1) confusion matrix."""
    conf = _check_confusion(conf)
    k = conf.shape[0]
    tp = np.diagonal(conf[:, :k]).copy()
    fp = conf[:, :k].sum(axis=0) - tp  # column K ("none of the classes") is nobody's false positive
    fn = conf.sum(axis=1) - tp
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
    }


def _percent_mean(values: np.ndarray) -> float | None:
    """Mean of the defined values in percent; None (JSON null) when no value is defined."""
    defined = values[~np.isnan(values)]
    return float(defined.mean() * 100.0) if defined.size else None


percent_mean = _percent_mean  # public: the mIoU of a class group during training validation


def chance_iou(conf, num_choices: int = NUM_CLASSES) -> np.ndarray:
    """Per-class IoU (K,) of a readout that picks one of ``num_choices`` classes uniformly at random
    for every labelled voxel of ``conf`` (the same voxels, the same ground truth): the chance level of
    a zero-shot readout among the 200 text anchors.

    With n_c ground-truth voxels of class c among N labelled ones and m = ``num_choices``:
    E[TP] = n_c / m, E[FP] = (N - n_c) / m, E[FN] = n_c - n_c / m, so

        IoU_c = E[TP] / (E[TP] + E[FP] + E[FN]) = n_c / (N + (m - 1) n_c)

    (the ratio of the expected counts; the counts are sums of N independent draws, so the expected
    IoU itself differs by O(1/N)). 0 for a class with no voxel (every pick of it is a false
    positive); NaN when there are no labelled voxels at all.
    """
    conf = _check_confusion(conf)
    if num_choices < 1:
        raise ValueError(f"num_choices must be >= 1, got {num_choices}")
    n = conf.sum(axis=1).astype(np.float64)
    return _ratio(n, np.full(n.shape, n.sum()) + (num_choices - 1) * n)


def _percent(value: float) -> float | None:
    return None if math.isnan(value) else float(value * 100.0)


def summarize(conf, scenes: int = 0) -> dict:
    """Split and overall scores in the evaluator's JSON schema (percent; None where undefined)."""
    conf = _check_confusion(conf)
    if conf.shape[0] != NUM_CLASSES:
        raise ValueError(f"summarize needs the {NUM_CLASSES} ScanNet200 classes, got {conf.shape[0]}")
    s = class_scores(conf)
    out: dict = {
        "all": {  # miou_200 last: `dvc exp show` lists the columns in this order
            "miou": _percent_mean(s["iou"]),
            "precision": _percent_mean(s["precision"]),
            "recall": _percent_mean(s["recall"]),
            "miou_200": float(np.nan_to_num(s["iou"], nan=0.0).mean() * 100.0),
        }
    }
    for split in SPLITS:
        idx = SPLIT_INDICES[split]
        out[split] = {
            "miou": _percent_mean(s["iou"][idx]),
            "precision": _percent_mean(s["precision"][idx]),
            "recall": _percent_mean(s["recall"][idx]),
        }
    out["scenes"] = int(scenes)
    out["points"] = int(conf.sum())
    return out


def per_class_rows(conf) -> list[dict]:
    """One dict per class in class order with the CSV columns (scores in percent, None if undefined)."""
    conf = _check_confusion(conf)
    if conf.shape[0] != NUM_CLASSES:
        raise ValueError(f"per_class_rows needs the {NUM_CLASSES} ScanNet200 classes, got {conf.shape[0]}")
    s = class_scores(conf)
    return [
        {
            "id": VALID_CLASS_IDS[c],
            "name": CLASS_NAMES[c],
            "split": CLASS_SPLIT[c],
            **{name: _percent(float(s[name][c])) for name in SCORES},
            "tp": int(s["tp"][c]),
            "fp": int(s["fp"][c]),
            "fn": int(s["fn"][c]),
        }
        for c in range(NUM_CLASSES)
    ]


def write_per_class_csv(conf, csv_path: str | Path, train_points=None) -> None:
    """Write the per-class table atomically; undefined scores are empty cells.

    ``train_points`` (200 counts, e.g. stats.json's) adds a column for the long-tail view.
    """
    rows = per_class_rows(conf)
    columns = CSV_COLUMNS
    if train_points is not None:
        if len(train_points) != NUM_CLASSES:
            raise ValueError(f"train_points needs {NUM_CLASSES} counts, got {len(train_points)}")
        columns += ("train_points",)
        for row, n in zip(rows, train_points, strict=True):
            row["train_points"] = int(n)
    with atomic_file(csv_path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[col] is None else row[col] for col in columns])


def write_confusion_csv(conf, csv_path: str | Path, k: int = 20) -> list[dict]:
    """The ``k`` most confused (ground truth, prediction) class pairs as a CSV, largest first."""
    rows = most_confused(conf, k)
    none = "(none of the 200)"
    with atomic_file(csv_path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["pair", "gt", "predicted", "points", "share"])
        for r in rows:
            gt, pred = CLASS_NAMES[r["gt"]], CLASS_NAMES[r["predicted"]] if r["predicted"] < NUM_CLASSES else none
            writer.writerow([f"{gt} → {pred}", gt, pred, r["points"], round(r["share"], 4)])
    return rows


COUNTS = ("scenes", "points")  # bookkeeping of a summary, not scores


def write_metrics(conf, json_path: str | Path, csv_path: str | Path | None = None, scenes: int = 0,
                  train_points=None, confusion_csv: str | Path | None = None,
                  counts_json: str | Path | None = None) -> dict:
    """Write the summary JSON (and the per-class CSV if ``csv_path``, the most confused class pairs if
    ``confusion_csv``) atomically; return the summary.

    With ``counts_json`` the summary's counts (``scenes``, ``points``) go to that file and
    ``json_path`` holds the scores alone (the pipeline's DVC metrics file: only numbers to compare);
    without it ``json_path`` holds both."""
    summary = summarize(conf, scenes=scenes)
    if counts_json is None:
        write_json(json_path, summary)
    else:
        write_json(json_path, {k: v for k, v in summary.items() if k not in COUNTS})
        write_json(counts_json, {k: summary[k] for k in COUNTS})
    if csv_path is not None:
        write_per_class_csv(conf, csv_path, train_points)
    if confusion_csv is not None:
        write_confusion_csv(conf, confusion_csv)
    return summary


class SegmentationMetrics:
    """Accumulates a confusion matrix over scenes or batches, e.g. inside a training loop.

    Pass numpy arrays of class indices (for torch tensors: ``t.cpu().numpy()``).
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
        self.scenes = 0

    def update(self, gt, pred, scenes: int = 1) -> None:
        """Add the points of ``scenes`` scene(s) (one scene per call unless told otherwise)."""
        self.confusion += confusion_matrix(gt, pred, self.num_classes)
        self.scenes += scenes

    def merge(self, other: "SegmentationMetrics") -> None:
        """Add another accumulator's counts (e.g. from a worker process)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class metrics into {self.num_classes}-class ones")
        self.confusion += other.confusion
        self.scenes += other.scenes

    def reset(self) -> None:
        self.confusion[:] = 0
        self.scenes = 0

    def class_scores(self) -> dict[str, np.ndarray]:
        return class_scores(self.confusion)

    def summary(self) -> dict:
        return summarize(self.confusion, scenes=self.scenes)

    def write(self, json_path: str | Path, csv_path: str | Path | None = None) -> dict:
        return write_metrics(self.confusion, json_path, csv_path, scenes=self.scenes)
