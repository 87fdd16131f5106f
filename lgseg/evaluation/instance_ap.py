"""ScanNet200 3D instance segmentation AP, exactly as ScanNet's evaluate_semantic_instance.py scores
the 198 instance classes (the 200 without wall and floor; ceiling included), vectorised.

Protocol (the official script's code, which the notes' section 1 spells out):

- Overlaps ``np.append(np.arange(0.5, 0.95, 0.05), 0.25)``: nine thresholds 0.50..0.90 and 0.25.
  The benchmark page says AP[0.5:0.95:0.05], but ``arange`` stops before 0.95, so the code (followed
  here) never uses 0.95.
- Per scene: GT instances are the non-zero ids whose ``id // 1000`` is an evaluated class; void
  vertices are those whose ``id // 1000`` is not (wall, floor, unannotated, labels outside the 200).
  A prediction is dropped if its label is not evaluated or its mask has fewer than
  ``min_region_size`` vertices. Intersections count only between a prediction and GT of its class.
- Per overlap and class, over all scenes: GT kept if ``vert_count >= min_region_size`` (the
  official's "group" test, id < 1000, never fires: such ids have label 0, never evaluated). Greedy
  matching in GT order (ascending id) then prediction order (the lines of the scene's file), skipping
  predictions already matched at this overlap, IoU strictly above the threshold. A further matching
  prediction of a matched GT adds one FP at the lower of the two scores, the GT keeps the higher; that
  duplicate is not marked matched, so (at 0.25) it may still match a later GT, as in the official.
  A prediction with no same-class GT above the threshold (small GT included) is an FP unless
  (void intersection + intersection with small same-class GT) / its size > the threshold.
- AP per class: scores sorted ascending, one precision/recall point per unique score, an artificial
  point (precision 1, recall 0), step widths from convolving the recall with [-0.5, 0, 0.5], their dot
  product with the precision (no interpolation). GT but no prediction: 0; no GT: NaN. GT and
  predictions but no TP/FP entry (every prediction ignored): 0 -- the official raises IndexError
  there; the authors' (LG) and Mask3D's copies guard it to 0.
- Averages: AP = nanmean over classes x the nine overlaps 0.50..0.90, AP50 and AP25 over classes; a
  class's ap is the mean of its nine (NaN if undefined). Head / common / tail: nanmean of each
  split's evaluated classes' ap / ap50 / ap25 (Mask3D overwrites its split AP with AP25; not here).
  Reported in percent.

Per-vertex work is numpy (one bincount over the vertices of all masks per scene); only the greedy
matching loops, over candidate (GT, prediction) pairs above the threshold.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.evaluation.folders import INSTANCE_GT, INSTANCE_PRED, check_folder_holds, entry_problem
from lgseg.evaluation.instance_files import InstancePrediction, read_instance_gt, read_instance_prediction
from lgseg.fileio import atomic_file, listed_file, write_json
from lgseg.scannet.constants import (
    CLASS_NAMES,
    CLASS_SPLIT,
    INSTANCE_CLASS_IDS,
    IS_INSTANCE_CLASS,
    SPLITS,
    check_scene_id,
    is_scene_id,
)

log = logging.getLogger(__name__)

#: the official thresholds, by the official expression (0.5, 0.55, ..., 0.9, 0.25: no 0.95)
OVERLAPS: np.ndarray = np.append(np.arange(0.5, 0.95, 0.05), 0.25)
OVERLAPS.setflags(write=False)
AP_OVERLAPS = np.flatnonzero(~np.isclose(OVERLAPS, 0.25))  # the nine averaged into "AP"
AP50 = int(np.flatnonzero(np.isclose(OVERLAPS, 0.5))[0])
AP25 = int(np.flatnonzero(np.isclose(OVERLAPS, 0.25))[0])
MIN_REGION_SIZE = 100  # vertices
LABEL_FACTOR = 1000
_LOOKUP_LIMIT = 1 << 21  # GT ids below this are numbered by a lookup table (1191 * 1000 + 999 fits)

NUM_INSTANCE_CLASSES = len(INSTANCE_CLASS_IDS)  # 198
_CLASS_INDEX = np.flatnonzero(IS_INSTANCE_CLASS)  # instance class -> index among the 200
_CLASS_OF_RAW = np.full(max(INSTANCE_CLASS_IDS) + 2, -1, dtype=np.int64)  # last entry: any larger id
_CLASS_OF_RAW[list(INSTANCE_CLASS_IDS)] = np.arange(NUM_INSTANCE_CLASSES)
CSV_COLUMNS = ("id", "name", "split", "ap", "ap50", "ap25", "gt_instances", "predictions")


def instance_class(raw_ids) -> np.ndarray:
    """Index among the 198 instance classes of raw ScanNet ids; -1 for any other id."""
    raw = np.asarray(raw_ids, dtype=np.int64)
    return np.where(raw >= 0, _CLASS_OF_RAW[np.clip(raw, 0, len(_CLASS_OF_RAW) - 1)], -1)


# ---- per scene: sizes and intersections, vectorised ----------------------------------------------

@dataclass
class _SceneCounts:
    """What matching needs of one scene: evaluated GT instances (ascending id), kept predictions (file
    order) and their same-class intersections; nothing per vertex."""

    gt_class: np.ndarray  # (G,) instance class index
    gt_size: np.ndarray  # (G,) vertices
    pred_class: np.ndarray  # (P,)
    pred_size: np.ndarray  # (P,)
    pred_score: np.ndarray  # (P,) float64
    pred_void: np.ndarray  # (P,) vertices on void
    inter: np.ndarray  # (P, G) vertices in both; 0 for GT of another class
    iou: np.ndarray  # (P, G) float64, as the official computes it


def _dense_ids(gt_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(gt_ids, return_inverse=True): the sorted distinct ids and each vertex's index among
    them. Benchmark ids (label * 1000 + instance, at most 1191999) go through a lookup table, several
    times faster than the sort np.unique needs; anything else is sorted."""
    if gt_ids.size and gt_ids.min() >= 0 and gt_ids.max() < _LOOKUP_LIMIT:
        present = np.bincount(gt_ids) > 0
        ids = np.flatnonzero(present)
        lookup = np.zeros(len(present), dtype=np.int64)
        lookup[ids] = np.arange(len(ids))
        return ids, lookup[gt_ids]
    ids, column = np.unique(gt_ids, return_inverse=True)
    return ids, column.reshape(-1)


def _mask_counts(masks: np.ndarray, column: np.ndarray, columns: int, chunk_vertices: int = 1 << 23) -> np.ndarray:
    """(P, columns) counts of each mask's vertices per ``column`` value (a vertex's GT id, densely
    numbered): one bincount over combined (mask, column) keys of the masks' vertices, in chunks of
    masks bounding the index arrays."""
    p, n = masks.shape
    out = np.zeros((p, columns), dtype=np.int64)
    rows_per_chunk = max(1, chunk_vertices // max(n, 1))
    for start in range(0, p, rows_per_chunk):
        block = masks[start:start + rows_per_chunk]  # a view: rows of a C-contiguous array
        row, vertex = np.divmod(np.flatnonzero(block), n)
        keys = row * columns + column[vertex]
        out[start:start + len(block)] = np.bincount(keys, minlength=len(block) * columns).reshape(len(block), columns)
    return out


def _scene_counts(gt_ids, pred: InstancePrediction, min_region_size: int) -> _SceneCounts:
    gt_ids = np.asarray(gt_ids, dtype=np.int64)
    if gt_ids.ndim != 1 or pred.masks.shape[1] != gt_ids.size:
        raise ValueError(f"masks cover {pred.masks.shape[1]} vertices, the ground truth {gt_ids.size}")
    ids, column = _dense_ids(gt_ids)
    id_class = instance_class(ids // LABEL_FACTOR)  # 0 (unannotated) is no class: void like wall/floor
    is_gt = (id_class >= 0) & (ids != 0)
    counts = _mask_counts(np.ascontiguousarray(pred.masks), column, len(ids))
    pred_class = instance_class(pred.label_ids)
    pred_size = counts.sum(axis=1)  # every vertex has one column
    keep = (pred_class >= 0) & (pred_size >= min_region_size)
    counts, pred_class, pred_size = counts[keep], pred_class[keep], pred_size[keep]
    gt_class = id_class[is_gt]
    inter = counts[:, is_gt]
    inter[pred_class[:, None] != gt_class[None, :]] = 0
    gt_size = np.bincount(column, minlength=len(ids))[is_gt]
    with np.errstate(invalid="ignore"):  # no P or no G: empty
        iou = inter / (gt_size[None, :] + pred_size[:, None] - inter)
    return _SceneCounts(gt_class, gt_size, pred_class, pred_size, pred.scores[keep],
                        counts[:, ~is_gt].sum(axis=1), inter, iou)


# ---- per overlap: greedy matching ----------------------------------------------------------------

@dataclass
class _Entries:
    """Scored TP/FP entries (class, score, 1/0) and hard false negatives per class at one overlap."""

    cls: list[np.ndarray]
    score: list[np.ndarray]
    true: list[np.ndarray]
    hard_fn: np.ndarray  # (198,)

    def add(self, cls, score, true: float) -> None:
        cls = np.asarray(cls, dtype=np.int64)
        self.cls.append(cls)
        self.score.append(np.asarray(score, dtype=np.float64))
        self.true.append(np.full(len(cls), true))


def _match_scene(s: _SceneCounts, overlap: float, min_region_size: int, out: _Entries) -> None:
    kept_gt = s.gt_size >= min_region_size
    above = s.iou > overlap  # (P, G); only same-class pairs can be above (others have IoU 0)
    # candidate pairs in GT order, then prediction order: the order the official visits them
    gt_of, pred_of = np.nonzero((above & kept_gt[None, :]).T)
    scores = s.pred_score.tolist()
    matched = [False] * len(s.gt_size)
    best = [-math.inf] * len(s.gt_size)
    visited = [False] * len(s.pred_size)
    dup_gt, dup_score = [], []
    for g, p in zip(gt_of.tolist(), pred_of.tolist()):
        if visited[p]:
            continue
        if matched[g]:  # a second prediction of this GT: the lower score becomes a false positive
            dup_gt.append(g)
            dup_score.append(min(best[g], scores[p]))
            best[g] = max(best[g], scores[p])
        else:
            matched[g], best[g], visited[p] = True, scores[p], True
    is_matched = np.array(matched, dtype=bool)
    out.add(s.gt_class[is_matched], np.array(best)[is_matched], 1.0)
    out.add(s.gt_class[np.array(dup_gt, dtype=np.int64)], dup_score, 0.0)
    out.hard_fn += np.bincount(s.gt_class[kept_gt & ~is_matched], minlength=NUM_INSTANCE_CLASSES)
    # a prediction above the threshold with no same-class GT (small ones included) is an FP unless its
    # void and small-GT vertices make up more than the threshold of it
    unmatched = ~above.any(axis=1)
    ignored = s.pred_void + (s.inter * ~kept_gt[None, :]).sum(axis=1)
    # max(size, 1): only with min_region_size 0 can a mask be empty (the official divides by zero there)
    false_pos = unmatched & (ignored / np.maximum(s.pred_size, 1) <= overlap)
    out.add(s.pred_class[false_pos], s.pred_score[false_pos], 0.0)


def average_precision(scores: np.ndarray, true: np.ndarray, hard_false_negatives: int) -> float:
    """The official AP of one class at one overlap from its TP (1) / FP (0) entries; needs >= 1 entry."""
    order = np.argsort(scores, kind="stable")  # ties: the curve depends only on counts below a score
    scores, true = scores[order], true[order]
    cumsum = np.append(np.cumsum(true), 0)  # [-1] = 0: nothing lies below the lowest score
    _, first = np.unique(scores, return_index=True)
    below = cumsum[first - 1]
    tp = cumsum[-2] - below
    fp = len(scores) - first - tp
    fn = below + hard_false_negatives
    precision = np.append(tp / (tp + fp), 1.0)  # the artificial first point: precision 1 at recall 0
    recall = np.append(tp / (tp + fn), 0.0)
    step_widths = np.convolve(np.concatenate([recall[:1], recall, [0.0]]), [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, step_widths))


def _class_aps(entries: _Entries, has_gt: np.ndarray, has_pred: np.ndarray) -> np.ndarray:
    cls, score, true = (np.concatenate(e) for e in (entries.cls, entries.score, entries.true))
    order = np.argsort(cls, kind="stable")
    cls, score, true = cls[order], score[order], true[order]
    bounds = np.searchsorted(cls, np.arange(NUM_INSTANCE_CLASSES + 1))
    ap = np.full(NUM_INSTANCE_CLASSES, np.nan)
    ap[has_gt] = 0.0  # GT without predictions, or every prediction ignored (the official's IndexError)
    for c in np.flatnonzero(has_gt & has_pred & (bounds[1:] > bounds[:-1])).tolist():
        lo, hi = bounds[c], bounds[c + 1]
        ap[c] = average_precision(score[lo:hi], true[lo:hi], int(entries.hard_fn[c]))
    return ap


# ---- results ------------------------------------------------------------------------------------

def _nanmean(values: np.ndarray) -> float:
    """np.nanmean (the official's, summed in the same order), NaN without numpy's warning when no
    value is defined."""
    return float(np.nanmean(values)) if (~np.isnan(values)).any() else math.nan


def _percent(value: float) -> float | None:
    return None if math.isnan(value) else float(value * 100.0)


@dataclass
class InstanceResult:
    """AP per instance class (198, in INSTANCE_CLASS_IDS order) and overlap (OVERLAPS order), as
    fractions, NaN where undefined; GT instances evaluated (>= min_region_size vertices) and
    predictions evaluated (evaluated label, >= min_region_size vertices) per class."""

    ap: np.ndarray  # (198, 10)
    gt_instances: np.ndarray  # (198,) int64
    predictions: np.ndarray  # (198,) int64
    scenes: int = 0
    min_region_size: int = MIN_REGION_SIZE

    def class_ap(self) -> np.ndarray:
        """(198,) mean over the nine overlaps 0.50..0.90, NaN for a class without GT."""
        return np.array([np.mean(row) for row in self.ap[:, AP_OVERLAPS]])  # row by row, as the official

    def averages(self) -> dict[str, float]:
        """The official all_ap / all_ap_50% / all_ap_25% (fractions, NaN if no class has GT)."""
        # overlaps outer, classes inner: the (1, 9, 198) C-ordered array the official's
        # aps[0, :, (overlaps,)] makes, so the float sum is the same to the last bit
        ap = _nanmean(np.ascontiguousarray(self.ap[:, AP_OVERLAPS].T).reshape(-1))
        return {"ap": ap, "ap50": _nanmean(self.ap[:, AP50]), "ap25": _nanmean(self.ap[:, AP25])}

    def summary(self) -> dict:
        """``{"all" | "head" | "common" | "tail": {"ap", "ap50", "ap25"}}`` in percent, None if undefined,
        and ``classes``: how many of the 198 have ground truth (the classes averaged)."""
        out: dict = {"all": {k: _percent(v) for k, v in self.averages().items()}}
        per_class = {"ap": self.class_ap(), "ap50": self.ap[:, AP50], "ap25": self.ap[:, AP25]}
        split_of = np.array([CLASS_SPLIT[i] for i in _CLASS_INDEX])
        for split in SPLITS:
            members = split_of == split
            out[split] = {k: _percent(_nanmean(v[members])) for k, v in per_class.items()}
        out["classes"] = int(np.count_nonzero(self.gt_instances))
        return out

    def per_class_rows(self) -> list[dict]:
        """One dict per instance class (CSV_COLUMNS), scores in percent, None if undefined."""
        class_ap = self.class_ap()
        return [
            {
                "id": INSTANCE_CLASS_IDS[c],
                "name": CLASS_NAMES[i],
                "split": CLASS_SPLIT[i],
                "ap": _percent(float(class_ap[c])),
                "ap50": _percent(float(self.ap[c, AP50])),
                "ap25": _percent(float(self.ap[c, AP25])),
                "gt_instances": int(self.gt_instances[c]),
                "predictions": int(self.predictions[c]),
            }
            for c, i in enumerate(_CLASS_INDEX.tolist())
        ]


def evaluate_instances(scenes: Iterable[tuple[np.ndarray, InstancePrediction]],
                       min_region_size: int = MIN_REGION_SIZE) -> InstanceResult:
    """Score scenes given in memory: (encoded GT ids per vertex, that scene's predictions) pairs."""
    if isinstance(min_region_size, bool) or not isinstance(min_region_size, (int, np.integer)) or min_region_size < 0:
        raise ValueError(f"min_region_size must be a non-negative integer, got {min_region_size!r}")
    counts = [_scene_counts(gt, pred, min_region_size) for gt, pred in scenes]
    gt_instances = np.zeros(NUM_INSTANCE_CLASSES, dtype=np.int64)
    predictions = np.zeros(NUM_INSTANCE_CLASSES, dtype=np.int64)
    for s in counts:
        gt_instances += np.bincount(s.gt_class[s.gt_size >= min_region_size], minlength=NUM_INSTANCE_CLASSES)
        predictions += np.bincount(s.pred_class, minlength=NUM_INSTANCE_CLASSES)
    ap = np.empty((NUM_INSTANCE_CLASSES, len(OVERLAPS)))
    for oi, overlap in enumerate(OVERLAPS.tolist()):
        entries = _Entries([], [], [], np.zeros(NUM_INSTANCE_CLASSES, dtype=np.int64))
        for s in counts:
            _match_scene(s, overlap, min_region_size, entries)
        ap[:, oi] = _class_aps(entries, gt_instances > 0, predictions > 0)
    return InstanceResult(ap, gt_instances, predictions, scenes=len(counts), min_region_size=int(min_region_size))


# ---- folders of files ---------------------------------------------------------------------------

def _listed_scenes(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.txt") if is_scene_id(p.stem) and p.is_file())


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _scenes_to_evaluate(pred_dir: Path, gt_dir: Path, scenes: Iterable[str] | None) -> list[str]:
    for kind, folder in (("ground-truth", gt_dir), ("prediction", pred_dir)):
        if not folder.is_dir():
            raise InputError(folder, f"{kind} folder does not exist", "pass the folder of <scene>.txt files")
    if pred_dir.resolve() == gt_dir.resolve():
        raise InputError(pred_dir, "the prediction folder is the ground-truth folder",
                         "pass the folder the instance predictions were written to")
    check_folder_holds(gt_dir, INSTANCE_GT, "--gt")
    check_folder_holds(pred_dir, INSTANCE_PRED, "--pred")
    gt_scenes = _listed_scenes(gt_dir)
    names = gt_scenes if scenes is None else [check_scene_id(s) for s in scenes]
    if not names:
        raise InputError(gt_dir, "no ground-truth <scene>.txt files to evaluate",
                         "export the instance ground truth into this folder or pass the right one")
    for kind, folder in (("ground-truth", gt_dir), ("prediction", pred_dir)):
        bad = {s: k for s in names if (k := entry_problem(folder / f"{s}.txt")) is not None}
        if bad:
            first = next(iter(bad))
            raise InputError(folder / f"{first}.txt", f"{kind} file {bad[first]}; {len(bad)} of {len(names)} "
                             f"scene(s) have none ({_shown(list(bad))})",
                             f"write one <scene>.txt file per scene into {folder}", scene=first)
        for scene in names:
            listed_file(folder, f"{scene}.txt", f"{kind} file", scene=scene)
    extra = sorted(set(_listed_scenes(pred_dir)) - set(gt_scenes))
    if extra:
        log.warning("%s: %d prediction file(s) for scenes without ground truth in %s, not evaluated: %s",
                    pred_dir, len(extra), gt_dir, _shown(extra))
    return names


def evaluate_instance_dirs(pred_dir: str | Path, gt_dir: str | Path, scenes: Iterable[str] | None = None,
                           min_region_size: int = MIN_REGION_SIZE, progress: bool = True) -> InstanceResult:
    """Score the official prediction layout in ``pred_dir`` against ``gt_dir/<scene>.txt``.

    ``scenes`` defaults to every ``<scene>.txt`` in ``gt_dir``; every one must have a prediction file
    (checked before any is read); prediction files of scenes not in ``gt_dir`` are logged, unscored.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    names = _scenes_to_evaluate(pred_dir, gt_dir, scenes)

    def pairs() -> Iterator[tuple[np.ndarray, InstancePrediction]]:
        for scene in tqdm(names, desc="evaluate instances", unit="scene", disable=not progress):
            gt_file = gt_dir / f"{scene}.txt"
            gt = read_instance_gt(gt_file, scene=scene)
            yield gt, read_instance_prediction(pred_dir, scene, gt.size, against=f"the ground truth {gt_file} has {{n}} lines")

    result = evaluate_instances(pairs(), min_region_size)
    if not result.gt_instances.any():
        raise InputError(gt_dir, f"no instance of the 198 evaluated classes with at least {min_region_size} vertices "
                         f"in its {len(names)} scene(s): nothing to score (semantic ground truth, a raw id per "
                         "vertex, reads so)", "pass the instance ground truth (lgseg export-gt --task instance)")
    return result


def write_instance_metrics(result: InstanceResult, metrics_json: str | Path,
                           per_class_csv: str | Path | None = None, extra: dict | None = None,
                           counts: bool = True) -> dict:
    """Write the summary JSON (and the per-class CSV, empty cells where undefined) atomically;
    return the summary. ``extra`` adds scores: a dict under a key the summary has updates that
    part (e.g. ``{"all": {"miou": ...}}``), anything else is added as it is. ``counts=False``
    leaves ``classes`` out (a DVC metrics file holds the scores alone)."""
    summary = result.summary()
    if not counts:
        summary.pop("classes")
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(summary.get(key), dict):
            summary[key].update(value)
        else:
            summary[key] = value
    write_json(metrics_json, summary)
    if per_class_csv is not None:
        with atomic_file(per_class_csv) as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for row in result.per_class_rows():
                writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return summary
