"""confusion_matrix against hand-written counts and a naive per-point loop."""

from __future__ import annotations

import numpy as np
import pytest

from lgseg.evaluation.confusion import confusion_matrix

K = 200


def naive_confusion(gt, pred, k):
    """Independent reference: one Python step per point."""
    conf = np.zeros((k, k + 1), dtype=np.int64)
    for g, p in zip(gt.tolist(), pred.tolist()):
        if g == -1:
            continue
        conf[g, p if 0 <= p < k else k] += 1
    return conf


def test_hand_written_counts():
    # wall(0) x4: 3 right, 1 as chair; chair(1) x3: 2 right, 1 predicted "none" (-1);
    # class 33 x2: 1 as class 75, 1 predicted id 200 (outside); ignored points x2
    gt = np.array([0, 0, 0, 0, 1, 1, 1, 33, 33, -1, -1])
    pred = np.array([0, 0, 0, 1, 1, 1, -1, 75, 200, 0, 1])
    conf = confusion_matrix(gt, pred)
    expected = np.zeros((K, K + 1), dtype=np.int64)
    expected[0, 0] = 3
    expected[0, 1] = 1
    expected[1, 1] = 2
    expected[1, K] = 1
    expected[33, 75] = 1
    expected[33, K] = 1
    assert conf.shape == (200, 201)
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(conf, expected)
    assert conf.sum() == 9  # the two ignored points are not counted


def test_predictions_outside_classes_go_to_last_column():
    gt = np.array([2, 2, 2, 2, 2])
    pred = np.array([-1, -7, 200, 10**12, 2])
    conf = confusion_matrix(gt, pred)
    assert conf[2, K] == 4
    assert conf[2, 2] == 1
    assert conf.sum() == 5


@pytest.mark.parametrize("k", [3, 200])
def test_matches_naive_loop_on_random_data(k):
    rng = np.random.default_rng(k)
    gt = rng.integers(-1, k, 3000)
    pred = rng.integers(-3, k + 3, 3000)
    np.testing.assert_array_equal(confusion_matrix(gt, pred, num_classes=k), naive_confusion(gt, pred, k))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8])
def test_integer_dtypes_agree(dtype):
    rng = np.random.default_rng(1)
    gt = rng.integers(-1, 100, 500)
    pred = rng.integers(-1, 120, 500)
    if dtype == np.uint8:  # no -1 in unsigned input
        gt, pred = np.abs(gt), np.abs(pred)
    expected = naive_confusion(gt, pred, K)
    np.testing.assert_array_equal(confusion_matrix(gt.astype(dtype), pred.astype(dtype)), expected)


def test_multidimensional_inputs_are_flattened():
    gt = np.array([[0, 1], [1, -1]])
    pred = np.array([[0, 0], [1, 5]])
    conf = confusion_matrix(gt, pred)
    assert conf[0, 0] == 1 and conf[1, 0] == 1 and conf[1, 1] == 1
    assert conf.sum() == 3


def test_empty_input_gives_zero_matrix():
    conf = confusion_matrix(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert conf.shape == (200, 201)
    assert conf.sum() == 0


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="gt has 3 entries, pred has 2"):
        confusion_matrix(np.array([0, 1, 2]), np.array([0, 1]))


@pytest.mark.parametrize("bad", [200, -2])
def test_ground_truth_outside_classes_is_rejected(bad):
    with pytest.raises(ValueError, match=f"class index {bad}"):
        confusion_matrix(np.array([0, bad]), np.array([0, 0]))


def test_float_input_is_rejected():
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(np.array([0.0, 1.0]), np.array([0, 1]))


def test_most_confused_pairs_by_hand():
    from lgseg.evaluation.confusion import most_confused

    conf = np.zeros((3, 4), np.int64)
    conf[0] = [10, 4, 0, 6]  # class 0: 4 -> class 1, 6 -> none of the classes
    conf[1] = [1, 20, 2, 0]
    conf[2] = [0, 0, 5, 0]
    rows = most_confused(conf, k=10)
    assert [(r["gt"], r["predicted"], r["points"]) for r in rows] == [(0, 3, 6), (0, 1, 4), (1, 2, 2), (1, 0, 1)]
    assert rows[0]["share"] == pytest.approx(6 / 20) and rows[2]["share"] == pytest.approx(2 / 23)
    assert len(most_confused(conf, k=2)) == 2 and most_confused(np.eye(3, 4, dtype=int)) == []
