"""Per-class and split scores checked against values computed by hand."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from lgseg.evaluation.confusion import confusion_matrix
from lgseg.evaluation.metrics import (
    SegmentationMetrics,
    class_scores,
    per_class_rows,
    summarize,
    write_metrics,
)
from lgseg.scannet.constants import CLASS_SPLIT, NAME_TO_INDEX, SPLIT_INDICES, VALID_CLASS_IDS

WALL, CHAIR = NAME_TO_INDEX["wall"], NAME_TO_INDEX["chair"]  # head
CUSHION = NAME_TO_INDEX["cushion"]  # common
PAPER, PLATE = NAME_TO_INDEX["paper"], NAME_TO_INDEX["plate"]  # tail
COUCH = NAME_TO_INDEX["couch"]  # head, never in GT, never predicted
NONE = -1  # a prediction that is none of the 200 classes


def hand_example():
    """(gt, pred) class indices; the confusion entries and scores are worked out in the tests."""
    pairs = (
        [(WALL, WALL)] * 3 + [(WALL, CHAIR)]           # wall: 3 right, 1 as chair
        + [(CHAIR, CHAIR)] * 2 + [(CHAIR, NONE)]       # chair: 2 right, 1 "none of the 200"
        + [(CUSHION, PLATE), (CUSHION, 999)]           # cushion: never right; 999 is outside the 200
        + [(PAPER, PAPER), (PAPER, WALL)]              # paper: 1 right, 1 as wall
        + [(-1, WALL), (-1, CHAIR)]                    # ignored ground truth: not counted at all
    )
    gt, pred = np.array(pairs).T
    return gt, pred


def test_constants_used_by_hand_example():
    assert [CLASS_SPLIT[c] for c in (WALL, CHAIR, COUCH)] == ["head"] * 3
    assert CLASS_SPLIT[CUSHION] == "common"
    assert [CLASS_SPLIT[c] for c in (PAPER, PLATE)] == ["tail"] * 2


def test_hand_example_confusion_matrix():
    conf = confusion_matrix(*hand_example())
    nonzero = {(int(r), int(c)): int(conf[r, c]) for r, c in zip(*np.nonzero(conf))}
    assert nonzero == {
        (WALL, WALL): 3, (WALL, CHAIR): 1,
        (CHAIR, CHAIR): 2, (CHAIR, 200): 1,
        (CUSHION, PLATE): 1, (CUSHION, 200): 1,
        (PAPER, PAPER): 1, (PAPER, WALL): 1,
    }


def test_hand_example_class_scores():
    s = class_scores(confusion_matrix(*hand_example()))
    nan = math.nan
    # class: (tp, fp, fn, iou, precision, recall)
    expected = {
        WALL: (3, 1, 1, 3 / 5, 3 / 4, 3 / 4),     # FP: the paper point predicted as wall
        CHAIR: (2, 1, 1, 2 / 4, 2 / 3, 2 / 3),    # FN: the "none" prediction; FP: the wall point
        CUSHION: (0, 0, 2, 0.0, nan, 0.0),        # never predicted: precision undefined
        PAPER: (1, 0, 1, 1 / 2, 1.0, 1 / 2),
        PLATE: (0, 1, 0, 0.0, 0.0, nan),          # absent from GT but predicted: recall undefined
        COUCH: (0, 0, 0, nan, nan, nan),          # absent and never predicted: all undefined
    }
    for c, (tp, fp, fn, iou, prec, rec) in expected.items():
        assert (s["tp"][c], s["fp"][c], s["fn"][c]) == (tp, fp, fn), c
        np.testing.assert_allclose([s["iou"][c], s["precision"][c], s["recall"][c]], [iou, prec, rec],
                                   equal_nan=True, err_msg=str(c))
    # every miss is one class's FN (11 points - 6 TP = 5), but the 2 predictions outside the 200
    # are nobody's FP: 5 - 2 = 3
    assert s["fn"].sum() == 5
    assert s["fp"].sum() == 3
    assert np.isnan(s["iou"]).sum() == 195


def test_hand_example_summary():
    out = summarize(confusion_matrix(*hand_example()), scenes=2)
    approx = pytest.approx
    assert out["head"] == {"miou": approx(100 * (3 / 5 + 1 / 2) / 2),
                           "precision": approx(100 * (3 / 4 + 2 / 3) / 2),
                           "recall": approx(100 * (3 / 4 + 2 / 3) / 2)}
    # cushion alone: IoU 0, precision undefined -> null, recall 0
    assert out["common"] == {"miou": 0.0, "precision": None, "recall": 0.0}
    assert out["tail"] == {"miou": approx(25.0),           # (1/2 + 0) / 2
                           "precision": approx(50.0),      # paper 1, plate 0
                           "recall": approx(50.0)}         # paper 1/2 (plate undefined)
    assert out["all"] == {"miou": approx(100 * (3 / 5 + 1 / 2 + 0 + 1 / 2 + 0) / 5),   # 32
                          "miou_200": approx(100 * (3 / 5 + 1 / 2 + 1 / 2) / 200),    # 0.8
                          "precision": approx(100 * (3 / 4 + 2 / 3 + 1 + 0) / 4),
                          "recall": approx(100 * (3 / 4 + 2 / 3 + 0 + 1 / 2) / 4)}
    assert out["scenes"] == 2
    assert out["points"] == 11


def test_perfect_prediction_scores_100_where_defined():
    rng = np.random.default_rng(0)
    present = np.array([WALL, CHAIR, CUSHION, PAPER, 150])
    gt = rng.choice(present, 1000)
    out = summarize(confusion_matrix(gt, gt))
    for split in ("head", "common", "tail", "all"):
        for key in ("miou", "precision", "recall"):
            assert out[split][key] == pytest.approx(100.0), (split, key)
    assert out["all"]["miou_200"] == pytest.approx(100.0 * len(present) / 200)
    s = class_scores(confusion_matrix(gt, gt))
    assert np.all(np.isnan(np.delete(s["iou"], present)))


def independent_summary(gt, pred):
    """Scores from per-class point counting, without any confusion matrix."""
    res = {}
    per_class = {}
    for c in range(200):
        tp = int(np.sum((gt == c) & (pred == c)))
        fp = int(np.sum((gt != c) & (gt != -1) & (pred == c)))
        fn = int(np.sum((gt == c) & (pred != c)))
        div = lambda a, b: a / b if b else None  # noqa: E731
        per_class[c] = {"miou": div(tp, tp + fp + fn), "precision": div(tp, tp + fp), "recall": div(tp, tp + fn)}
    for split, idx in list(SPLIT_INDICES.items()) + [("all", range(200))]:
        res[split] = {}
        for key in ("miou", "precision", "recall"):
            vals = [per_class[c][key] for c in idx if per_class[c][key] is not None]
            res[split][key] = 100 * sum(vals) / len(vals) if vals else None
    res["all"]["miou_200"] = 100 * sum(per_class[c]["miou"] or 0.0 for c in range(200)) / 200
    return res


def test_random_predictions_match_independent_computation():
    rng = np.random.default_rng(7)
    # a limited set of classes, so that some are absent, some only predicted
    gt = rng.choice(np.arange(-1, 60), 4000)
    pred = np.where(rng.random(4000) < 0.5, gt, rng.choice(np.arange(-1, 80), 4000))
    out = summarize(confusion_matrix(gt, pred), scenes=3)
    ref = independent_summary(gt, pred)
    for split in ("head", "common", "tail", "all"):
        for key, value in ref[split].items():
            assert out[split][key] == (None if value is None else pytest.approx(value)), (split, key)
    assert out["points"] == int(np.sum(gt >= 0))


def test_accumulator_equals_one_shot():
    gt, pred = hand_example()
    m = SegmentationMetrics()
    m.update(gt[:5], pred[:5])
    m.update(gt[5:], pred[5:])
    np.testing.assert_array_equal(m.confusion, confusion_matrix(gt, pred))
    assert m.scenes == 2
    assert m.summary() == summarize(confusion_matrix(gt, pred), scenes=2)
    other = SegmentationMetrics()
    other.update(gt, pred, scenes=4)
    m.merge(other)
    assert m.confusion.sum() == 22 and m.scenes == 6
    m.reset()
    assert m.confusion.sum() == 0 and m.scenes == 0


def test_per_class_rows_in_class_order():
    rows = per_class_rows(confusion_matrix(*hand_example()))
    assert len(rows) == 200
    assert [r["id"] for r in rows] == list(VALID_CLASS_IDS)
    assert rows[WALL] == {"id": 1, "name": "wall", "split": "head", "iou": pytest.approx(60.0),
                          "precision": pytest.approx(75.0), "recall": pytest.approx(75.0),
                          "tp": 3, "fp": 1, "fn": 1}
    assert rows[PLATE]["recall"] is None and rows[PLATE]["precision"] == 0.0


def _no_nan(token):
    raise AssertionError(f"non-JSON constant {token} in metrics file")


def test_write_metrics_json_and_csv(tmp_path):
    conf = confusion_matrix(*hand_example())
    summary = write_metrics(conf, tmp_path / "m.json", tmp_path / "per_class.csv", scenes=2)
    data = json.loads((tmp_path / "m.json").read_text(), parse_constant=_no_nan)
    assert data == summary
    assert set(data) == {"all", "head", "common", "tail", "scenes", "points"}
    assert set(data["all"]) == {"miou", "miou_200", "precision", "recall"}
    assert data["common"]["precision"] is None
    with open(tmp_path / "per_class.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "name", "split", "iou", "precision", "recall", "tp", "fp", "fn"]
    assert len(rows) == 201
    assert rows[1 + WALL][:3] == ["1", "wall", "head"] and rows[1 + WALL][6:] == ["3", "1", "1"]
    assert float(rows[1 + WALL][3]) == pytest.approx(60.0)
    assert rows[1 + COUCH][3:6] == ["", "", ""]
    assert rows[1 + CUSHION][3:6] == ["0.0", "", "0.0"]
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_bad_confusion_shape_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        class_scores(np.zeros((200, 200)))
    with pytest.raises(ValueError, match="200"):
        summarize(np.zeros((3, 4)))
