"""Fig. 7's scores of a feature space against hand-built spaces: the balanced sample, leave-one-out
k-NN accuracy, silhouette, and the t-SNE's shape."""

import numpy as np
import pytest

from lgseg.evaluation.feature_space import _even_quota, balanced_sample, knn_predictions, structure_scores, tsne
from lgseg.scannet.constants import CLASS_SPLIT, NAME_TO_INDEX

WALL, CHAIR, TAIL = NAME_TO_INDEX["wall"], NAME_TO_INDEX["chair"], next(c for c, s in enumerate(CLASS_SPLIT) if s == "tail")
COMMON = next(c for c, s in enumerate(CLASS_SPLIT) if s == "common")


def test_even_quota_fills_small_bins_and_shares_the_rest():
    assert _even_quota([1, 10, 10], 9) == [1, 4, 4]
    assert _even_quota([2, 2], 10) == [2, 2]  # fewer voxels than asked: all of them
    assert _even_quota([5, 5, 5], 3) == [1, 1, 1]
    assert sum(_even_quota([3, 100, 7, 50], 40)) == 40


def test_balanced_sample_takes_each_group_alike_and_each_class_evenly():
    rng = np.random.default_rng(0)
    # head: wall (many voxels) and chair (few); common: one class; tail: one class; -1 ignored
    labels = [rng.permutation(np.r_[np.full(500, WALL), np.full(12, CHAIR), np.full(40, COMMON), np.full(30, TAIL),
                                    np.full(50, -1)]) for _ in range(2)]
    picks = balanced_sample(labels, per_group=20, seed=3)
    taken = np.concatenate([lab[p] for lab, p in zip(labels, picks)])
    assert (taken >= 0).all()
    assert {c: int((taken == c).sum()) for c in (WALL, CHAIR, COMMON, TAIL)} == {WALL: 10, CHAIR: 10, COMMON: 20,
                                                                                   TAIL: 20}
    assert all(np.all(np.diff(p) > 0) for p in picks)  # sorted, no voxel twice
    again = balanced_sample(labels, per_group=20, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(picks, again))  # from the labels and the seed alone


def test_knn_leaves_the_voxel_itself_out_and_breaks_ties_towards_the_nearer_class():
    feats = np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1], [0.7, 0.72]])
    labels = np.array([0, 0, 1, 1, 0])
    # row 0's neighbours (k=1): row 1 (class 0); row 4 sits between: its single nearest is row 3 (class 1)
    assert knn_predictions(feats, labels, k=1).tolist() == [0, 0, 1, 1, 1]
    # k=2 for row 4: rows 3 and 1 (one vote each): the nearer of the two, row 3, decides
    assert knn_predictions(feats, labels, k=2)[4] == 1


def test_scores_of_a_perfectly_clustered_space_and_of_noise():
    rng = np.random.default_rng(1)
    classes = np.repeat([WALL, COMMON, TAIL], 30)
    centres = np.eye(8)[[0, 3, 6]]
    tight = centres[np.repeat([0, 1, 2], 30)] + rng.normal(0, 0.01, (90, 8))
    s = structure_scores(tight, classes, k=5)
    assert s["knn_accuracy"] == {"all": 100.0, "head": 100.0, "common": 100.0, "tail": 100.0}
    assert s["silhouette"] > 0.95 and (s["samples"], s["classes"], s["k"]) == (90, 3, 5)
    noise = structure_scores(rng.normal(size=(90, 8)), classes, k=5)
    assert noise["knn_accuracy"]["all"] < 60 and abs(noise["silhouette"]) < 0.1


def test_ignored_labels_are_refused():
    with pytest.raises(ValueError, match="not ignore"):
        structure_scores(np.eye(3), np.array([0, 1, -1]))


def test_tsne_keeps_clusters_apart():
    rng = np.random.default_rng(2)
    feats = np.r_[rng.normal(0, 0.01, (20, 5)) + np.eye(5)[0], rng.normal(0, 0.01, (20, 5)) + np.eye(5)[1]]
    xy = tsne(feats, perplexity=5, seed=0)
    assert xy.shape == (40, 2) and xy.dtype == np.float32
    a, b = xy[:20].mean(0), xy[20:].mean(0)
    assert np.linalg.norm(a - b) > 3 * max(xy[:20].std(0).max(), xy[20:].std(0).max())
    np.testing.assert_array_equal(xy, tsne(feats, perplexity=5, seed=0))  # seeded
