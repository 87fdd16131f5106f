"""The instance AP evaluator: hand-computed cases, then equivalence with the plain per-instance loops
of ``instance_reference`` on random multi-scene cases, then the folder API and metrics files.

How the hand values come about (the official formula): entries (score, TP 1 / FP 0) are sorted, one
point per unique score s: precision = TP / (TP + FP) and recall = TP / #GT over the entries scoring
>= s; points in decreasing recall r1 >= r2 >= ... >= rk, then the artificial (recall 0, precision 1).
Each point's precision is weighted by half the recall gap between its two neighbours (the first
point's left neighbour is itself, the last ones' right neighbour is 0):
AP = p1 (r1 - r2) / 2 + sum_i p_i (r_{i-1} - r_{i+1}) / 2 + 1 * rk / 2.
One perfect TP: p1 = r1 = 1 -> 1/2 + 1/2 = 1.
"""

from __future__ import annotations

import csv
import json
import logging

import instance_reference as reference
import numpy as np
import pytest

from lgseg.errors import InputError
from lgseg.evaluation.instance_ap import (
    AP25,
    AP50,
    AP_OVERLAPS,
    NUM_INSTANCE_CLASSES,
    OVERLAPS,
    _mask_counts,
    evaluate_instance_dirs,
    evaluate_instances,
    write_instance_metrics,
)
from lgseg.evaluation.instance_files import InstancePrediction, write_instance_gt, write_instance_prediction
from lgseg.scannet.constants import INSTANCE_CLASS_IDS

# raw ScanNet ids: head chair, table; common cushion; tail paper; wall and floor (not evaluated)
CHAIR, TABLE, CUSHION, PAPER, WALL, FLOOR = 2, 4, 39, 79, 1, 3
N = 1000  # vertices of the hand-made scenes


def cls(raw_id: int) -> int:
    return INSTANCE_CLASS_IDS.index(raw_id)


def gt_scene(*objects: tuple[int, int, int, int], n: int = N) -> np.ndarray:
    """Encoded GT from (first vertex, end vertex, raw label, instance id); the rest unannotated (0)."""
    gt = np.zeros(n, dtype=np.int64)
    for lo, hi, label, inst in objects:
        gt[lo:hi] = label * 1000 + inst
    return gt


def preds(*instances: tuple[list[tuple[int, int]], int, float], n: int = N) -> InstancePrediction:
    """Predictions from (vertex ranges, raw label, score), in this order (the file's line order)."""
    masks = np.zeros((len(instances), n), dtype=bool)
    for k, (ranges, _, _) in enumerate(instances):
        for lo, hi in ranges:
            masks[k, lo:hi] = True
    return InstancePrediction(masks, [i[1] for i in instances], [i[2] for i in instances])


def score(gt, pred, **kw):
    return evaluate_instances([(gt, pred)], **kw)


def row(result, raw_id: int) -> np.ndarray:
    """The class's AP at the ten overlaps (0.50 .. 0.90, then 0.25)."""
    return result.ap[cls(raw_id)]


# ---- the protocol's constants ---------------------------------------------------------------------

def test_overlaps_are_the_official_list_without_095():
    assert len(OVERLAPS) == 10
    np.testing.assert_array_equal(OVERLAPS, np.append(np.arange(0.5, 0.95, 0.05), 0.25))
    np.testing.assert_allclose(OVERLAPS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.25])
    assert not np.isclose(OVERLAPS, 0.95).any()
    assert AP_OVERLAPS.tolist() == list(range(9)) and AP50 == 0 and AP25 == 9


def test_198_classes_without_wall_and_floor():
    assert NUM_INSTANCE_CLASSES == len(INSTANCE_CLASS_IDS) == 198
    assert WALL not in INSTANCE_CLASS_IDS and FLOOR not in INSTANCE_CLASS_IDS and 41 in INSTANCE_CLASS_IDS


# ---- hand-computed cases --------------------------------------------------------------------------

def test_perfect_prediction_is_100():
    gt = gt_scene((0, 200, CHAIR, 1), (200, 350, TABLE, 2))
    result = score(gt, preds(([(0, 200)], CHAIR, 0.9), ([(200, 350)], TABLE, 0.4)))
    assert result.summary()["all"] == {"ap": 100.0, "ap50": 100.0, "ap25": 100.0}
    assert result.summary()["head"] == {"ap": 100.0, "ap50": 100.0, "ap25": 100.0}
    assert result.summary()["tail"] == {"ap": None, "ap50": None, "ap25": None}  # no tail GT


def test_prediction_split_in_two_halves():
    # GT 200 vertices, two predictions of 100 each: IoU = 100 / 200 = 0.5 for both.
    # 0.50..0.90: 0.5 is not > 0.5, so no match: two FPs (nothing ignored), the GT a hard FN: TP = 0,
    #   every precision 0 and recall 0 -> AP = 1 * 0 / 2 = 0.
    # 0.25: the first (0.9) is a TP; the second matches the matched GT -> FP at min(0.9, 0.8) = 0.8.
    #   points: s=0.8: p=1/2, r=1; s=0.9: p=1, r=1; then (0, 1):
    #   AP = 1/2 (1 - 1)/2 + 1 (1 - 0)/2 + 1 * 1/2 = 1 -> AP25 = 100 (a duplicate below the TP costs nothing)
    gt = gt_scene((0, 200, CHAIR, 1))
    result = score(gt, preds(([(0, 100)], CHAIR, 0.9), ([(100, 200)], CHAIR, 0.8)))
    np.testing.assert_array_equal(row(result, CHAIR), [0.0] * 9 + [1.0])
    assert result.summary()["all"] == {"ap": 0.0, "ap50": 0.0, "ap25": 100.0}


def test_second_prediction_of_an_object_is_a_false_positive_at_the_lower_score():
    # GT1 predicted twice (first line 0.6, a later line 0.9), GT2 once (0.5). GT1 keeps 0.9, the
    # duplicate is an FP at 0.6: entries (0.9 TP) (0.6 FP) (0.5 TP), 2 GT.
    # s=0.5: p=2/3, r=1; s=0.6: p=1/2, r=1/2; s=0.9: p=1, r=1/2; then (0, 1)
    # AP = 2/3 (1 - 1/2)/2 + 1/2 (1 - 1/2)/2 + 1 (1/2 - 0)/2 + 1 * (1/2)/2 = 1/6 + 1/8 + 1/4 + 1/4 = 19/24
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, CHAIR, 2))
    result = score(gt, preds(([(0, 200)], CHAIR, 0.6), ([(0, 200)], CHAIR, 0.9), ([(200, 400)], CHAIR, 0.5)))
    np.testing.assert_allclose(row(result, CHAIR), 19 / 24, rtol=0, atol=1e-15)
    # had the GT kept the first (lower) score, the FP would sit at 0.9: (0.9 FP) (0.6 TP) (0.5 TP)
    # -> p = 2/3, 1/2, 0 at r = 1, 1/2, 0: AP = 1/6 + 1/8 + 0 + 0 = 7/24; without the duplicate AP = 1
    without = score(gt, preds(([(0, 200)], CHAIR, 0.6), ([(200, 400)], CHAIR, 0.5)))
    np.testing.assert_array_equal(row(without, CHAIR), 1.0)


def test_wrong_label_is_a_false_positive_for_the_predicted_class_and_a_miss_for_the_true_one():
    # chair: GT, no prediction -> 0. table: its own object found at 0.5, the chair called table at 0.9
    # is an FP (chair vertices are no void): s=0.5: p=1/2, r=1; s=0.9: p=0, r=0; then (0, 1)
    # AP = 1/2 (1 - 0)/2 + 0 + 1 * 0/2 = 1/4. Mean over the two classes: 12.5.
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, TABLE, 2))
    result = score(gt, preds(([(0, 200)], TABLE, 0.9), ([(200, 400)], TABLE, 0.5)))
    np.testing.assert_array_equal(row(result, CHAIR), 0.0)
    np.testing.assert_array_equal(row(result, TABLE), 0.25)
    assert result.summary()["all"] == {"ap": 12.5, "ap50": 12.5, "ap25": 12.5}


@pytest.mark.parametrize("fp_score, expected", [
    # 3 GT found at 0.9, 0.8, 0.7 and one FP (a chair called on the table's vertices):
    # FP on top (0.95): points (r, p) = (1, 3/4) (2/3, 2/3) (1/3, 1/2) (0, 0), then (0, 1):
    #   AP = 3/4 (1 - 2/3)/2 + 2/3 (1 - 1/3)/2 + 1/2 (2/3 - 0)/2 + 0 + 1 * 0 = 1/8 + 2/9 + 1/6 = 37/72
    (0.95, 37 / 72),
    # FP third (0.75): (1, 3/4) (2/3, 2/3) (2/3, 1) (1/3, 1), then (0, 1):
    #   AP = 3/4 (1/3)/2 + 2/3 (1/3)/2 + 1 (1/3)/2 + 1 (2/3)/2 + 1 (1/3)/2 = 1/8 + 1/9 + 1/6 + 1/3 + 1/6 = 65/72
    (0.75, 65 / 72),
    # FP last (0.5): its point (1, 3/4) weighs (1 - 1)/2 = 0 -> AP = 1
    (0.5, 1.0),
])
def test_rank_of_a_false_positive_changes_ap(fp_score, expected):
    gt = gt_scene((0, 150, CHAIR, 1), (150, 300, CHAIR, 2), (300, 450, CHAIR, 3), (450, 600, TABLE, 4))
    result = score(gt, preds(([(0, 150)], CHAIR, 0.9), ([(150, 300)], CHAIR, 0.8), ([(300, 450)], CHAIR, 0.7),
                             ([(450, 600)], CHAIR, fp_score)))
    np.testing.assert_allclose(row(result, CHAIR), expected, rtol=0, atol=1e-15)


def test_class_without_ground_truth_is_nan_and_left_out_of_the_means():
    gt = gt_scene((0, 200, CHAIR, 1))
    result = score(gt, preds(([(0, 200)], CHAIR, 0.9), ([(300, 500)], TABLE, 0.8)))
    assert np.isnan(row(result, TABLE)).all()
    assert result.summary()["all"] == {"ap": 100.0, "ap50": 100.0, "ap25": 100.0}
    table = next(r for r in result.per_class_rows() if r["id"] == TABLE)
    assert table == {"id": TABLE, "name": "table", "split": "head", "ap": None, "ap50": None, "ap25": None,
                     "gt_instances": 0, "predictions": 1}


def test_prediction_on_void_only_is_no_false_positive():
    # wall, floor, unannotated and a label outside the 200 are void: a chair there is ignored (void
    # share 1 > every threshold). Counted as an FP at 0.9 it would give 1/4 (as the wrong-label case).
    gt = gt_scene((0, 200, CHAIR, 1), (200, 300, WALL, 2), (300, 400, FLOOR, 3), (500, 550, 0, 5))
    result = score(gt, preds(([(0, 200)], CHAIR, 0.5), ([(200, 550)], CHAIR, 0.9)))
    np.testing.assert_array_equal(row(result, CHAIR), 1.0)


def test_prediction_half_on_void_is_a_false_positive_up_to_its_void_share():
    # 100 wall + 100 table vertices called chair: void share 100/200 = 0.5. FP where 0.5 <= threshold
    # (0.50..0.90: AP 1/4 as in the wrong-label case), ignored at 0.25 (AP 1).
    gt = gt_scene((0, 200, CHAIR, 1), (200, 300, WALL, 2), (600, 700, TABLE, 3))
    result = score(gt, preds(([(0, 200)], CHAIR, 0.5), ([(200, 300), (600, 700)], CHAIR, 0.9)))
    np.testing.assert_array_equal(row(result, CHAIR), [0.25] * 9 + [1.0])


def test_every_prediction_ignored_gives_zero_not_an_error():
    # GT and a prediction, but the prediction is ignored (void) and matches nothing: no curve at all.
    # The official raises IndexError here; the authors' and Mask3D's copies return 0.
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, WALL, 2))
    result = score(gt, preds(([(200, 400)], CHAIR, 0.9)))
    np.testing.assert_array_equal(row(result, CHAIR), 0.0)


def test_small_ground_truth_is_not_counted_and_a_prediction_on_it_is_ignored():
    # chair GT of 80 vertices (< 100): not a GT to find. A 120-vertex prediction on it (80 of it + 40
    # unannotated) is no FP: IoU 80/120 = 0.67 matches the small GT below 0.67, and above, its ignored
    # share (40 void + 80 small GT) / 120 = 1. The exact 80-vertex prediction is too small to count.
    gt = gt_scene((0, 80, CHAIR, 1), (100, 300, CHAIR, 2))
    pred = preds(([(100, 300)], CHAIR, 0.5), ([(0, 80), (400, 440)], CHAIR, 0.9), ([(0, 80)], CHAIR, 0.95))
    result = score(gt, pred)
    np.testing.assert_array_equal(row(result, CHAIR), 1.0)
    assert result.gt_instances[cls(CHAIR)] == 1 and result.predictions[cls(CHAIR)] == 2
    # min_region_size 50 counts the small GT; the exact prediction would then find it, so drop it.
    # The 120-vertex one finds it at 0.50..0.65 (IoU 0.67): AP 1. At 0.70..0.90 it is an FP at 0.9
    # (ignored share 40/120 only) and the small GT a miss: (r, p) = (1/2, 1/2) (0, 0), then (0, 1):
    # AP = 1/2 (1/2 - 0)/2 + 0 + 0 = 1/8.
    result = score(gt, preds(*pred_lines(pred)[:2]), min_region_size=50)
    np.testing.assert_allclose(row(result, CHAIR), [1, 1, 1, 1, 1 / 8, 1 / 8, 1 / 8, 1 / 8, 1 / 8, 1], atol=1e-15)
    assert result.gt_instances[cls(CHAIR)] == 2


def pred_lines(pred: InstancePrediction) -> list[tuple[list[tuple[int, int]], int, float]]:
    """``preds`` arguments back from an InstancePrediction (its masks as vertex ranges)."""
    out = []
    for mask, label, s in zip(pred.masks, pred.label_ids.tolist(), pred.scores.tolist()):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
        out.append((list(zip(edges[::2].tolist(), edges[1::2].tolist())), label, s))
    return out


def test_duplicate_stays_unmatched_and_may_find_a_later_object_at_025():
    # A = GT1 exactly (0.9); B covers half of GT1 and half of GT2 (IoU 100/300 = 1/3 with each, 0.8).
    # 0.25: GT1 takes A, B is its duplicate (FP 0.8) but stays unmatched, so GT2 then takes B (TP 0.8):
    #   entries (0.9 TP) (0.8 FP) (0.8 TP): (r, p) = (1, 2/3) (1/2, 1), then (0, 1):
    #   AP = 2/3 (1 - 1/2)/2 + 1 (1 - 0)/2 + 1 (1/2)/2 = 1/6 + 1/2 + 1/4 = 11/12
    # 0.50..0.90: B matches nothing -> FP 0.8, GT2 missed: (r, p) = (1/2, 1/2) (1/2, 1), then (0, 1):
    #   AP = 1/2 * 0 + 1 (1/2)/2 + 1 (1/2)/2 = 1/2
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, CHAIR, 2))
    result = score(gt, preds(([(0, 200)], CHAIR, 0.9), ([(100, 300)], CHAIR, 0.8)))
    np.testing.assert_allclose(row(result, CHAIR), [0.5] * 9 + [11 / 12], rtol=0, atol=1e-15)


def test_split_means_use_each_splits_own_ap():
    # head: chair (split in halves: ap 0, ap50 0, ap25 1) and table (perfect) -> 50 / 50 / 100;
    # common: cushion perfect -> 100; tail: no GT -> None. Mask3D would report head AP as its AP25 (100).
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, TABLE, 2), (400, 600, CUSHION, 3))
    result = score(gt, preds(([(0, 100)], CHAIR, 0.9), ([(100, 200)], CHAIR, 0.8), ([(200, 400)], TABLE, 0.7),
                             ([(400, 600)], CUSHION, 0.6)))
    s = result.summary()
    assert s["head"] == {"ap": 50.0, "ap50": 50.0, "ap25": 100.0}
    assert s["common"] == {"ap": 100.0, "ap50": 100.0, "ap25": 100.0}
    assert s["tail"] == {"ap": None, "ap50": None, "ap25": None}
    assert s["all"] == pytest.approx({"ap": 200 / 3, "ap50": 200 / 3, "ap25": 100.0}, abs=1e-12)


def test_scenes_are_matched_separately_and_pooled_per_class():
    # the same chair in two scenes: found in one (0.9), missed in the other, an FP there at 0.8:
    # (r, p) = (1/2, 1/2) (1/2, 1), then (0, 1) -> AP = 0 + 1/4 + 1/4 = 1/2
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, TABLE, 2))
    result = evaluate_instances([(gt, preds(([(0, 200)], CHAIR, 0.9))),
                                 (gt, preds(([(200, 400)], CHAIR, 0.8)))])
    np.testing.assert_array_equal(row(result, CHAIR), 0.5)
    assert result.scenes == 2 and result.gt_instances[cls(CHAIR)] == 2


def test_mask_length_must_match_the_ground_truth():
    with pytest.raises(ValueError, match="masks cover 999 vertices, the ground truth 1000"):
        score(gt_scene((0, 200, CHAIR, 1)), preds(([(0, 200)], CHAIR, 0.9), n=999))


# ---- equivalence with the per-instance loops, random cases ----------------------------------------

LABELS = [CHAIR, TABLE, CUSHION, PAPER, WALL, FLOOR]


def random_gt(rng: np.random.Generator, n: int) -> np.ndarray:
    """Instances of random sizes (some below 100) and classes, incl. wall/floor, labels outside the
    200 (0 and 12) and unannotated vertices, scattered over the vertex order."""
    gt = np.zeros(n, dtype=np.int64)
    pieces = np.split(rng.permutation(n), np.sort(rng.choice(np.arange(1, n), rng.integers(4, 16), replace=False)))
    for inst, piece in enumerate(pieces, start=1):
        if rng.random() < 0.1:
            continue
        label = rng.choice(LABELS + [0, 12]) if rng.random() < 0.3 else rng.choice(LABELS[:4])
        gt[piece] = label * 1000 + inst
    return gt


def random_predictions(rng: np.random.Generator, gt: np.ndarray) -> InstancePrediction:
    """Noisy copies of GT instances (right and wrong labels, duplicates, unions of two), random blobs
    and tiny ones; scores from a coarse grid, so ties are common."""
    n = len(gt)
    ids = [i for i in np.unique(gt).tolist() if i]
    masks, labels = [], []
    for inst in ids:
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            mask = gt == inst
            if rng.random() < 0.3:
                mask |= gt == rng.choice(ids)
            mask &= rng.random(n) > rng.uniform(0, 0.6)  # drop some of its vertices
            mask |= rng.random(n) < rng.uniform(0, 0.1)  # and add others
            masks.append(mask)
            labels.append(inst // 1000 if rng.random() < 0.7 and inst // 1000 in INSTANCE_CLASS_IDS + (1, 3)
                          else rng.choice(LABELS))
    for _ in range(rng.integers(0, 4)):
        masks.append(rng.random(n) < rng.uniform(0.01, 0.3))
        labels.append(rng.choice(LABELS))
    masks = np.array(masks, dtype=bool).reshape(-1, n)
    scores = np.round(rng.random(len(masks)), 1)
    return InstancePrediction(masks, np.array(labels, dtype=np.int64), scores)


def random_case(seed: int, scenes: int = 3, n: int = 1200) -> list[tuple[np.ndarray, InstancePrediction]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(scenes):
        gt = random_gt(rng, n)
        out.append((gt, random_predictions(rng, gt)))
    return out


def reference_ap(case, min_region_size: int = 100) -> np.ndarray:
    return reference.evaluate([(gt, reference.in_memory(f"s{i}", p.masks, p.label_ids, p.scores))
                               for i, (gt, p) in enumerate(case)], min_region_size)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("min_region_size", [100, 30])
def test_equals_the_per_instance_loops(seed, min_region_size):
    case = random_case(seed)
    result = evaluate_instances(case, min_region_size=min_region_size)
    expected = reference_ap(case, min_region_size)
    np.testing.assert_allclose(result.ap, expected, rtol=0, atol=1e-12, equal_nan=True)
    ref = reference.averages(expected)
    got = result.averages()
    assert got == pytest.approx({k: ref[k] for k in ("ap", "ap50", "ap25")}, abs=1e-12)
    np.testing.assert_allclose(result.class_ap(), ref["class_ap"], rtol=0, atol=1e-12, equal_nan=True)


def test_ids_outside_the_encoding_are_void_too():
    # negative and huge ids (not label * 1000 + instance) take np.unique's path instead of the lookup
    case = random_case(11)
    for gt, _ in case:
        gt[:150] = -7
        gt[150:300] = 5 * 10**9
    np.testing.assert_allclose(evaluate_instances(case).ap, reference_ap(case), rtol=0, atol=1e-12, equal_nan=True)


def test_mask_counts_in_chunks_equal_one_pass():
    rng = np.random.default_rng(0)
    masks, column = rng.random((7, 50)) < 0.4, rng.integers(0, 5, 50)
    np.testing.assert_array_equal(_mask_counts(masks, column, 5, chunk_vertices=1), _mask_counts(masks, column, 5))
    np.testing.assert_array_equal(_mask_counts(masks, column, 5)[:, 2], (masks & (column == 2)).sum(axis=1))


def test_random_cases_are_not_trivial():
    """The random cases reach the interesting parts: partial APs, NaN classes, small GT, ties."""
    values = np.concatenate([evaluate_instances(random_case(seed)).ap[[cls(c) for c in LABELS[:4]]].ravel()
                             for seed in range(8)])
    defined = values[~np.isnan(values)]
    assert ((defined > 0) & (defined < 1)).mean() > 0.3 and (defined == 0).any() and np.isnan(values).any()


# ---- folders ---------------------------------------------------------------------------------------

def write_case(tmp_path, case):
    scenes = [f"scene{i:04d}_00" for i in range(len(case))]
    for scene, (gt, pred) in zip(scenes, case):
        write_instance_gt(tmp_path / "gt" / f"{scene}.txt", gt)
        write_instance_prediction(tmp_path / "pred", scene, pred.masks, pred.label_ids, pred.scores)
    return scenes


def test_folders_score_as_in_memory_and_as_the_reference(tmp_path):
    case = random_case(42, scenes=4)
    scenes = write_case(tmp_path, case)
    result = evaluate_instance_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)
    np.testing.assert_array_equal(result.ap, evaluate_instances(case).ap)
    expected = reference.evaluate_dirs(tmp_path / "pred", tmp_path / "gt", scenes)
    np.testing.assert_allclose(result.ap, expected, rtol=0, atol=1e-12, equal_nan=True)
    assert result.scenes == 4


def test_subset_of_scenes(tmp_path):
    case = random_case(3, scenes=3)
    scenes = write_case(tmp_path, case)
    result = evaluate_instance_dirs(tmp_path / "pred", tmp_path / "gt", scenes=scenes[1:], progress=False)
    np.testing.assert_array_equal(result.ap, evaluate_instances(case[1:]).ap)


def test_missing_predictions_named_before_any_is_read(tmp_path):
    scenes = write_case(tmp_path, random_case(1, scenes=3))
    (tmp_path / "pred" / f"{scenes[0]}.txt").write_text("garbage line\n")  # would fail if parsed first
    for scene in scenes[1:]:
        (tmp_path / "pred" / f"{scene}.txt").unlink()
    with pytest.raises(InputError, match=r"prediction file missing; 2 of 3 scene\(s\) have none "
                                         r"\(scene0001_00, scene0002_00\)") as e:
        evaluate_instance_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)
    assert "\n" not in str(e.value)


def test_predictions_without_ground_truth_are_logged(tmp_path, caplog):
    write_case(tmp_path, random_case(2, scenes=2))
    case = random_case(5, scenes=1)
    write_instance_prediction(tmp_path / "pred", "scene0100_00", case[0][1].masks, case[0][1].label_ids,
                              case[0][1].scores)
    with caplog.at_level(logging.WARNING):
        result = evaluate_instance_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)
    assert result.scenes == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "scene0100_00" in warnings[0] and "1 prediction file(s)" in warnings[0]


def test_prediction_folder_must_not_be_the_ground_truth_folder(tmp_path):
    write_case(tmp_path, random_case(2, scenes=1))
    with pytest.raises(InputError, match="the prediction folder is the ground-truth folder"):
        evaluate_instance_dirs(tmp_path / "gt", tmp_path / "gt/.", progress=False)


def test_empty_ground_truth_folder_refused(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    with pytest.raises(InputError, match="no ground-truth <scene>.txt files"):
        evaluate_instance_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)


def test_metrics_files(tmp_path):
    gt = gt_scene((0, 200, CHAIR, 1), (200, 400, TABLE, 2))
    result = score(gt, preds(([(0, 200)], TABLE, 0.9), ([(200, 400)], TABLE, 0.5)))
    summary = write_instance_metrics(result, tmp_path / "m.json", tmp_path / "c.csv")
    assert json.loads((tmp_path / "m.json").read_text()) == summary == result.summary()
    assert summary["all"] == {"ap": 12.5, "ap50": 12.5, "ap25": 12.5} and summary["tail"]["ap"] is None
    assert summary["classes"] == 2  # chair and table have ground truth
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert len(rows) == 198 and list(rows[0]) == ["id", "name", "split", "ap", "ap50", "ap25", "gt_instances",
                                                  "predictions"]
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[TABLE]["ap"] == "25.0" and by_id[TABLE]["predictions"] == "2" and by_id[TABLE]["gt_instances"] == "1"
    assert by_id[CHAIR]["ap50"] == "0.0"
    assert by_id[PAPER]["ap"] == "" and by_id[PAPER]["gt_instances"] == "0"  # undefined: empty cell


def test_metrics_with_extra_scores(tmp_path):
    result = score(gt_scene((0, 200, CHAIR, 1)), preds(([(0, 200)], CHAIR, 0.9)))
    summary = write_instance_metrics(result, tmp_path / "m.json", extra={"all": {"miou": 40.0}, "scenes": 1})
    assert summary["all"] == {"ap": 100.0, "ap50": 100.0, "ap25": 100.0, "miou": 40.0} and summary["scenes"] == 1
    assert json.loads((tmp_path / "m.json").read_text()) == summary
