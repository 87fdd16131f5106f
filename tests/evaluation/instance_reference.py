"""Test oracle and benchmark baseline: ScanNet's instance AP (evaluate_semantic_instance.py with the
198 ScanNet200 instance classes) written as plainly as the official script is structured: a dict per
instance, a loop per (prediction, GT) pair with ``np.count_nonzero(np.logical_and(gt_ids == id,
mask))``, the matching loops as the official nests them, and its AP formula with the guard the
authors' and Mask3D's copies add (no TP/FP entry -> 0). Files are read the official way too
(``splitlines`` and ``np.array(..., dtype=np.int64)``).

Nothing here is shared with ``lgseg.evaluation.instance_ap``, which it checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lgseg.scannet.constants import INSTANCE_CLASS_IDS

OVERLAPS = np.append(np.arange(0.5, 0.95, 0.05), 0.25)
CLASS_IDS = list(INSTANCE_CLASS_IDS)


# ---- reading files, the official way -------------------------------------------------------------

def load_ids(path: str | Path) -> np.ndarray:
    with open(path) as f:
        return np.array(f.read().splitlines(), dtype=np.int64)


def read_predictions(pred_dir: str | Path, scene: str) -> list[dict]:
    """[{"name", "mask", "label_id", "confidence"}] of one scene, in line order."""
    txt = os.path.join(pred_dir, f"{scene}.txt")
    with open(txt) as f:
        lines = f.read().splitlines()
    preds = []
    for line in lines:
        rel, label, conf = line.split(" ")
        name = os.path.abspath(os.path.join(os.path.dirname(txt), rel))
        preds.append({"name": name, "mask": load_ids(name) != 0, "label_id": int(float(label)),
                      "confidence": float(conf)})
    return preds


# ---- one scene: instances and their overlaps ------------------------------------------------------

def gt_instances(gt_ids: np.ndarray) -> dict[int, list[dict]]:
    """Evaluated GT instances per class id, in ascending instance id order."""
    out: dict[int, list[dict]] = {c: [] for c in CLASS_IDS}
    for inst_id in np.unique(gt_ids).tolist():
        if inst_id == 0:
            continue
        label = inst_id // 1000
        if label in out:
            out[label].append({"instance_id": inst_id, "label_id": label,
                               "vert_count": int(np.count_nonzero(gt_ids == inst_id))})
    return out


def assign_scene(gt_ids: np.ndarray, preds: list[dict], min_region_size: int) -> dict:
    """The official per-scene association: {"gt": class -> GT dicts with "matched_pred",
    "pred": class -> prediction dicts with "matched_gt"}."""
    gt2pred = gt_instances(gt_ids)
    for instances in gt2pred.values():
        for gt in instances:
            gt["matched_pred"] = []
    pred2gt: dict[int, list[dict]] = {c: [] for c in CLASS_IDS}
    void = ~np.isin(gt_ids // 1000, CLASS_IDS)
    for pred in preds:
        label = pred["label_id"]
        if label not in pred2gt:
            continue
        mask = np.asarray(pred["mask"]) != 0
        assert len(mask) == len(gt_ids)
        size = int(np.count_nonzero(mask))
        if size < min_region_size:
            continue
        instance = {"name": pred["name"], "vert_count": size, "confidence": pred["confidence"],
                    "void_intersection": int(np.count_nonzero(np.logical_and(void, mask)))}
        matched_gt = []
        for gt in gt2pred[label]:
            inter = int(np.count_nonzero(np.logical_and(gt_ids == gt["instance_id"], mask)))
            if inter > 0:
                matched_gt.append({**{k: v for k, v in gt.items() if k != "matched_pred"}, "intersection": inter})
                gt["matched_pred"].append({**instance, "intersection": inter})
        instance["matched_gt"] = matched_gt
        pred2gt[label].append(instance)
    return {"gt": gt2pred, "pred": pred2gt}


# ---- all scenes: matching and AP ------------------------------------------------------------------

def average_precision(y_true: np.ndarray, y_score: np.ndarray, hard_fn: int) -> float:
    order = np.argsort(y_score)
    y_score, y_true = y_score[order], y_true[order]
    cumsum = np.cumsum(y_true)
    _, unique_idx = np.unique(y_score, return_index=True)
    n_points = len(unique_idx) + 1
    n_examples = len(y_score)
    n_true = cumsum[-1]
    precision, recall = np.zeros(n_points), np.zeros(n_points)
    cumsum = np.append(cumsum, 0)
    for i, idx in enumerate(unique_idx):
        below = cumsum[idx - 1]
        tp = n_true - below
        fp = n_examples - idx - tp
        fn = below + hard_fn
        precision[i] = float(tp) / (tp + fp)
        recall[i] = float(tp) / (tp + fn)
    precision[-1], recall[-1] = 1.0, 0.0
    padded = np.append(np.append(recall[0], recall), 0.0)
    widths = np.convolve(padded, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, widths))


def class_ap(matches: list[dict], label: int, overlap: float, min_region_size: int,
             visited: dict[str, bool]) -> float:
    y_true, y_score = [], []
    hard_fn = 0
    has_gt = has_pred = False
    for scene in matches:
        preds = scene["pred"][label]
        gts = [gt for gt in scene["gt"][label] if gt["instance_id"] >= 1000 and gt["vert_count"] >= min_region_size]
        has_gt = has_gt or bool(gts)
        has_pred = has_pred or bool(preds)
        true = [1.0] * len(gts)
        score = [-float("inf")] * len(gts)
        matched = [False] * len(gts)
        for i, gt in enumerate(gts):
            found = False
            for pred in gt["matched_pred"]:
                if visited[pred["name"]]:
                    continue
                iou = float(pred["intersection"]) / (gt["vert_count"] + pred["vert_count"] - pred["intersection"])
                if iou > overlap:
                    if matched[i]:
                        low, high = min(score[i], pred["confidence"]), max(score[i], pred["confidence"])
                        score[i] = high
                        true.append(0.0)
                        score.append(low)
                        matched.append(True)
                    else:
                        found = True
                        matched[i] = True
                        score[i] = pred["confidence"]
                        visited[pred["name"]] = True
            if not found:
                hard_fn += 1
        true = [t for t, m in zip(true, matched) if m]
        score = [s for s, m in zip(score, matched) if m]
        for pred in preds:
            if any(float(gt["intersection"]) / (gt["vert_count"] + pred["vert_count"] - gt["intersection"]) > overlap
                   for gt in pred["matched_gt"]):
                continue
            ignore = pred["void_intersection"]
            for gt in pred["matched_gt"]:
                if gt["instance_id"] < 1000:
                    ignore += gt["intersection"]
                if gt["vert_count"] < min_region_size:
                    ignore += gt["intersection"]
            if float(ignore) / pred["vert_count"] <= overlap:
                true.append(0.0)
                score.append(pred["confidence"])
        y_true += true
        y_score += score
    if not has_gt:
        return float("nan")
    if not has_pred or not y_true:  # the guard: the official raises IndexError on an empty curve
        return 0.0
    return average_precision(np.array(y_true), np.array(y_score), hard_fn)


def evaluate_matches(matches: list[dict], min_region_size: int = 100) -> np.ndarray:
    """(198, 10) AP per class and overlap."""
    ap = np.zeros((len(CLASS_IDS), len(OVERLAPS)))
    for oi, overlap in enumerate(OVERLAPS):
        visited = {p["name"]: False for scene in matches for preds in scene["pred"].values() for p in preds}
        for li, label in enumerate(CLASS_IDS):
            ap[li, oi] = class_ap(matches, label, overlap, min_region_size, visited)
    return ap


def evaluate(scenes: list[tuple[np.ndarray, list[dict]]], min_region_size: int = 100) -> np.ndarray:
    """(198, 10) AP of scenes given as (gt_ids, [{"name", "mask", "label_id", "confidence"}])."""
    return evaluate_matches([assign_scene(gt, preds, min_region_size) for gt, preds in scenes], min_region_size)


def evaluate_dirs(pred_dir: str | Path, gt_dir: str | Path, scenes: list[str],
                  min_region_size: int = 100) -> np.ndarray:
    matches = [assign_scene(load_ids(os.path.join(gt_dir, f"{s}.txt")), read_predictions(pred_dir, s), min_region_size)
               for s in scenes]
    return evaluate_matches(matches, min_region_size)


def averages(ap: np.ndarray) -> dict:
    """The official compute_averages: all_ap over the nine overlaps, AP50, AP25; per class likewise."""
    but25 = np.flatnonzero(~np.isclose(OVERLAPS, 0.25))
    o50, o25 = np.flatnonzero(np.isclose(OVERLAPS, 0.5)), np.flatnonzero(np.isclose(OVERLAPS, 0.25))
    return {
        "ap": float(np.nanmean(ap[:, but25])), "ap50": float(np.nanmean(ap[:, o50])),
        "ap25": float(np.nanmean(ap[:, o25])),
        "class_ap": np.array([np.average(row[but25]) for row in ap]),
        "class_ap50": ap[:, o50[0]].copy(), "class_ap25": ap[:, o25[0]].copy(),
    }


def in_memory(scene_id: str, masks: np.ndarray, label_ids, scores) -> list[dict]:
    """Predictions held as arrays, named uniquely per scene (the official keys them by file)."""
    return [{"name": f"{scene_id}/{k}", "mask": masks[k], "label_id": int(label), "confidence": float(score)}
            for k, (label, score) in enumerate(zip(label_ids, scores))]
