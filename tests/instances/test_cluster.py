"""Instance clustering: exact radius-graph components (against brute force) and proposal rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.csgraph import connected_components

import lgseg.instances.cluster as cluster_mod
from lgseg.instances import ClusterConfig, Proposals, cluster_instances, mask_nms, radius_components
from lgseg.scannet.constants import IS_INSTANCE_CLASS, NAME_TO_INDEX, NUM_CLASSES

R = 0.02
CHAIR, TABLE, LAMP = NAME_TO_INDEX["chair"], NAME_TO_INDEX["table"], NAME_TO_INDEX["lamp"]
WALL, FLOOR = NAME_TO_INDEX["wall"], NAME_TO_INDEX["floor"]


# ---------------------------------------------------------------- exact components vs brute force

def brute_components(points, labels, radius):
    """Components of the full pairwise graph (same test: float64 d2 < radius**2, same label),
    numbered by first point."""
    p = np.asarray(points, dtype=np.float64)
    d2 = sum((p[:, None, k] - p[None, :, k]) * (p[:, None, k] - p[None, :, k]) for k in range(3))
    adj = (d2 < radius * radius) & (labels[:, None] == labels[None, :])
    comp = connected_components(sparse.csr_matrix(adj), directed=False)[1]
    _, first, inv = np.unique(comp, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inv.reshape(-1)]


def random_cloud(rng):
    """Clumps of all tightnesses, chains just below/at/above the radius, duplicates, mixed labels."""
    parts, labs = [], []
    for _ in range(rng.integers(2, 9)):
        m = int(rng.integers(1, 300))
        spread = rng.choice([0.0, 0.001, 0.004, 0.01, 0.02, 0.05])
        parts.append(rng.uniform(-0.08, 0.08, 3) + rng.normal(0, spread, (m, 3)))
        mixed = rng.random() < 0.4  # several labels side by side in one clump
        labs.append(rng.integers(0, 3, m) if mixed else np.full(m, rng.integers(0, 3)))
    for factor in (1 - 1e-9, 1.0, 1 + 1e-9, 0.999, 1.001):
        m = int(rng.integers(2, 25))
        step = rng.normal(size=3)
        step *= R * factor / np.linalg.norm(step)
        parts.append(rng.uniform(-0.08, 0.08, 3) + np.arange(m)[:, None] * step)
        labs.append(np.full(m, rng.integers(0, 3)))
    p, lab = np.concatenate(parts), np.concatenate(labs)
    dup = rng.integers(0, len(p), rng.integers(0, 60))  # exact duplicates
    p, lab = np.concatenate([p, p[dup]]), np.concatenate([lab, lab[dup]])
    perm = rng.permutation(len(p))
    return p[perm], lab[perm]


@pytest.mark.parametrize("seed", range(40))
def test_components_equal_brute_force(seed):
    p, lab = random_cloud(np.random.default_rng(seed))
    np.testing.assert_array_equal(radius_components(p, lab, R), brute_components(p, lab, R))


@pytest.mark.parametrize("budget", [1, 7, 200])
@pytest.mark.parametrize("seed", range(8))
def test_components_exact_in_small_batches_and_kdtree_path(monkeypatch, seed, budget):
    # a tiny pair budget sends most cell pairs through many batches, or the per-pair k-d tree path
    monkeypatch.setattr(cluster_mod, "_PAIR_BUDGET", budget)
    p, lab = random_cloud(np.random.default_rng(100 + seed))
    np.testing.assert_array_equal(radius_components(p, lab, R), brute_components(p, lab, R))


@pytest.mark.parametrize("seed", range(6))
def test_components_exact_sparse_and_dense_uniform(seed):
    rng = np.random.default_rng(200 + seed)
    n = 1200
    box = rng.choice([0.05, 0.15, 0.4])  # dense (all cells crowded) to sparse (mostly one per cell)
    p = rng.uniform(0, box, (n, 3))
    lab = rng.integers(0, 2, n)
    np.testing.assert_array_equal(radius_components(p, lab, R), brute_components(p, lab, R))


def test_threshold_is_strict_as_the_authors_kernel():
    p = np.array([[0.0, 0, 0], [R, 0, 0], [5.0, 0, 0], [5.0 + np.nextafter(R, 0), 0, 0]])
    comp = radius_components(p, np.zeros(4, dtype=int), R)
    assert comp[0] != comp[1]  # exactly radius apart: d2 == r2 is not < r2
    assert comp[2] == comp[3]  # a hair closer: linked


def test_big_cells_linked_only_through_points_other_than_their_first(monkeypatch):
    # two crowded face-neighbour cells, their points in opposite corners (all cross pairs > radius,
    # first points far apart) but for one pair (pa, pb) just within or just beyond the radius:
    # decided in a batch of point pairs, and with a tiny budget by the k-d tree path
    side = R / math.sqrt(3) * (1 - 1e-6)  # the cell side radius_components uses
    rng = np.random.default_rng(0)
    a = np.r_[[[0.0, 0, 0]], rng.uniform(0, 0.1, (300, 3))] * side
    b = np.r_[[[1.99, 0.99, 0.99]], rng.uniform([1.9, 0.9, 0.9], [1.99, 0.99, 0.99], (300, 3))] * side
    pa = np.array([[0.3, 0.05, 0.05]]) * side
    u = np.array([1.0, 0.7, 0.7]) / np.linalg.norm([1.0, 0.7, 0.7])
    for gap, linked in ((0.999 * R, True), (1.001 * R, False)):
        pb = pa + gap * u
        pts = np.concatenate([a, pa, b, pb])
        lab = np.zeros(len(pts), dtype=int)
        ref = brute_components(pts, lab, R)
        assert (ref.max() == 0) == linked  # the construction does what it says
        for budget in (1 << 20, 50):
            monkeypatch.setattr(cluster_mod, "_PAIR_BUDGET", budget)
            np.testing.assert_array_equal(radius_components(pts, lab, R), ref)


def test_any_pair_within_matches_brute_force_and_handles_the_boundary():
    rng = np.random.default_rng(1)
    for _ in range(20):
        pa, pb = rng.uniform(0, 0.1, (40, 3)), rng.uniform(0.05, 0.15, (60, 3))
        d2 = ((pa[:, None] - pb[None]) ** 2).sum(-1)
        assert cluster_mod._any_pair_within(pa, pb, R * R, R) == bool((d2 < R * R).any())
    # nearest exactly at the radius: the tree finds it, the exact test rejects it
    assert not cluster_mod._any_pair_within(np.zeros((1, 3)), np.array([[R, 0, 0]]), R * R, R)


def test_components_numbered_by_first_point_and_labels_arbitrary():
    p = np.array([[1.0, 0, 0], [0, 0, 0], [1.001, 0, 0], [0.001, 0, 0], [0.0005, 0, 0]])
    lab = np.array([-7, 10**9, -7, 10**9, 3])
    np.testing.assert_array_equal(radius_components(p, lab, R), [0, 1, 0, 1, 2])


def test_components_empty_and_bad_input():
    assert radius_components(np.zeros((0, 3)), np.zeros(0, dtype=int), R).shape == (0,)
    with pytest.raises(ValueError, match="radius"):
        radius_components(np.zeros((2, 3)), np.zeros(2, dtype=int), 0.0)
    with pytest.raises(ValueError, match="labels"):
        radius_components(np.zeros((2, 3)), np.zeros(3, dtype=int), R)
    with pytest.raises(ValueError, match="points"):
        radius_components(np.full((2, 3), np.nan), np.zeros(2, dtype=int), R)
    with pytest.raises(ValueError, match="points"):
        radius_components(np.zeros((2, 2)), np.zeros(2, dtype=int), R)
    with pytest.raises(ValueError, match="too many cells"):  # 1e9 m wide at 2 cm: keys would overflow
        radius_components(np.array([[0.0, 0, 0], [1e9, 1e9, 1e9]]), np.zeros(2, dtype=int), R)


# ---------------------------------------------------------------- proposals

def sphere_object(centre, n, label, rng, size=0.2, offset_noise=0.0, logit=5.0):
    """(coord, offset, logits) of n points on a sphere around centre with offsets to the centre."""
    d = rng.normal(size=(n, 3))
    coord = np.asarray(centre) + size * d / np.linalg.norm(d, axis=1, keepdims=True)
    offset = np.asarray(centre) - coord + rng.normal(0, offset_noise, (n, 3))
    logits = np.zeros((n, NUM_CLASSES), dtype=np.float32)
    logits[:, label] = logit
    return coord, offset, logits


def scene(*objects):
    return tuple(np.concatenate(x) for x in zip(*objects))


def as_sets(props: Proposals, inverse=None):
    inverse = np.arange(props.num_points) if inverse is None else inverse
    return {(frozenset(inverse[m].tolist()), int(lab), float(s))
            for m, lab, s in zip(props.masks, props.labels, props.scores)}


def test_two_objects_of_one_class_10cm_apart():
    rng = np.random.default_rng(0)
    props = cluster_instances(*scene(sphere_object([1, 1, 1], 400, CHAIR, rng),
                                     sphere_object([1.1, 1, 1], 300, CHAIR, rng)))
    assert len(props) == 2
    assert sorted(map(len, props.masks)) == [300, 400]
    assert {tuple(m[[0, -1]]) for m in props.masks} == {(0, 399), (400, 699)}
    assert props.labels.tolist() == [CHAIR, CHAIR]


def test_touching_objects_of_different_classes_stay_apart():
    rng = np.random.default_rng(1)
    coord, offset, logits = scene(sphere_object([1, 1, 1], 400, CHAIR, rng),
                                  sphere_object([1.01, 1, 1], 300, TABLE, rng))
    props = cluster_instances(coord, offset, logits)
    assert len(props) == 2 and sorted(props.labels.tolist()) == sorted([CHAIR, TABLE])
    # the same points under one class: one instance
    logits[:, [CHAIR, TABLE]] = logits[:, [CHAIR, TABLE]].max(axis=1, keepdims=True) * [1, 0]
    assert len(cluster_instances(coord, offset, logits)) == 1


def test_wall_and_floor_never_form_instances():
    assert not IS_INSTANCE_CLASS[WALL] and not IS_INSTANCE_CLASS[FLOOR]
    rng = np.random.default_rng(2)
    props = cluster_instances(*scene(sphere_object([0, 0, 0], 500, WALL, rng),
                                     sphere_object([2, 0, 0], 500, FLOOR, rng)))
    assert len(props) == 0


def test_min_points_drops_a_49_point_component():
    rng = np.random.default_rng(3)
    cfg = ClusterConfig(min_points=50, propose_points=10)
    small = cluster_instances(*sphere_object([0, 0, 0], 49, CHAIR, rng), cfg)
    assert len(small) == 0
    assert len(cluster_instances(*sphere_object([0, 0, 0], 50, CHAIR, rng), cfg)) == 1


def test_propose_points_is_strict():
    rng = np.random.default_rng(4)
    assert len(cluster_instances(*sphere_object([0, 0, 0], 250, CHAIR, rng))) == 0
    props = cluster_instances(*sphere_object([0, 0, 0], 251, CHAIR, rng))
    assert len(props) == 1 and len(props.masks[0]) == 251


def test_mean_and_lower_median_scores_by_hand():
    rng = np.random.default_rng(5)
    coord, offset, logits = sphere_object([0, 0, 0], 300, LAMP, rng)
    v = np.r_[np.full(149, 1.0), np.full(1, 2.0), np.full(150, 4.0)]  # 300 values
    logits[:, LAMP] = rng.permutation(v)
    mean = cluster_instances(coord, offset, logits, ClusterConfig(score="mean"))
    median = cluster_instances(coord, offset, logits, ClusterConfig(score="median"))
    assert mean.scores.tolist() == [pytest.approx((149 + 2 + 600) / 300)]
    # an even count: torch.median's lower median, the 150th smallest value (2), not (2 + 4) / 2
    assert median.scores.tolist() == [2.0]


def test_label_is_the_argmax_and_other_points_leave_the_mask():
    rng = np.random.default_rng(6)
    coord, offset, logits = sphere_object([0, 0, 0], 400, LAMP, rng, logit=0.0)
    logits += rng.normal(0, 0.1, logits.shape).astype(np.float32)
    logits[:, TABLE] = 3.0  # the largest logit: table, not lamp
    logits[:20, CHAIR] = 9.0  # these 20 points are chairs (too few for an instance)
    props = cluster_instances(coord, offset, logits)
    assert props.labels.tolist() == [TABLE]
    np.testing.assert_array_equal(props.masks[0], np.arange(20, 400))
    assert props.scores.tolist() == [3.0]  # raw logit of the label, not a softmax


def test_score_threshold_and_descending_order():
    rng = np.random.default_rng(7)
    objs = scene(sphere_object([0, 0, 0], 300, CHAIR, rng, logit=3.0),
                 sphere_object([1, 0, 0], 300, TABLE, rng, logit=5.0))
    props = cluster_instances(*objs)
    assert props.scores.tolist() == [5.0, 3.0] and props.labels.tolist() == [TABLE, CHAIR]
    assert cluster_instances(*objs, ClusterConfig(score_threshold=4.0)).labels.tolist() == [TABLE]
    assert len(cluster_instances(*objs, ClusterConfig(score_threshold=5.0))) == 0  # above, strictly


def test_dual_set_recovers_bad_offsets_and_nms_removes_the_duplicate():
    rng = np.random.default_rng(8)
    good = sphere_object([0, 0, 0], 400, CHAIR, rng, size=0.05)  # ~1 cm spacing on its surface
    bad = sphere_object([1, 0, 0], 400, TABLE, rng, size=0.05)
    bad[1][:] = rng.uniform(-3, 3, (400, 3))  # garbage offsets: shifted points scattered
    coord, offset, logits = scene(good, bad)
    single = cluster_instances(coord, offset, logits)
    assert single.labels.tolist() == [CHAIR]
    dual = cluster_instances(coord, offset, logits, ClusterConfig(dual_set=True))
    # chair found by both sets (identical masks, IoU 1): NMS keeps one; table only by the original set
    assert len(dual) == 2 and sorted(dual.labels.tolist()) == sorted([CHAIR, TABLE])
    assert sorted(tuple(m[[0, -1]]) for m in dual.masks) == [(0, 399), (400, 799)]
    assert np.all(np.diff(dual.scores) <= 0)


def test_mask_nms_by_hand():
    masks = [np.arange(10), np.arange(8), np.arange(20, 30), np.arange(4, 10), np.arange(20, 27)]
    scores = [1.0, 2.0, 0.5, 0.1, 0.4]
    # IoU(1, 0) = 0.8 > 0.3: 0 goes; IoU(1, 3) = 4/10 > 0.3: 3 goes; IoU(2, 4) = 0.7: 4 goes
    assert mask_nms(masks, scores).tolist() == [1, 2]
    # IoU exactly 0.3 (3 shared of 10) is not above the threshold: both stay
    assert mask_nms([np.arange(7), np.arange(4, 10)], [1.0, 0.9]).tolist() == [0, 1]
    assert mask_nms([], []).tolist() == []
    with pytest.raises(ValueError):
        mask_nms([np.arange(3)], [1.0, 2.0])


def test_permuting_the_points_gives_the_same_proposals():
    rng = np.random.default_rng(9)
    coord, offset, logits = scene(*(sphere_object(rng.uniform(0, 2, 3), int(rng.integers(260, 900)),
                                                  int(rng.choice([CHAIR, TABLE, LAMP])), rng,
                                                  offset_noise=0.01) for _ in range(6)))
    logits += rng.normal(0, 1, logits.shape).astype(np.float32)
    for cfg in (ClusterConfig(), ClusterConfig(score="mean"), ClusterConfig(dual_set=True)):
        base = cluster_instances(coord, offset, logits, cfg)
        assert len(base) >= 3
        perm = rng.permutation(len(coord))
        other = cluster_instances(coord[perm], offset[perm], logits[perm], cfg)
        assert as_sets(other, perm) == as_sets(base)


def test_empty_and_all_ignored_input():
    props = cluster_instances(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, NUM_CLASSES)))
    assert len(props) == 0 and props.num_points == 0 and props.dense().shape == (0, 0)
    rng = np.random.default_rng(10)
    coord, offset, logits = sphere_object([0, 0, 0], 600, WALL, rng)
    for cfg in (ClusterConfig(), ClusterConfig(dual_set=True)):
        props = cluster_instances(coord, offset, logits, cfg)
        assert len(props) == 0 and props.labels.shape == (0,) and props.scores.shape == (0,)


def test_dense_masks():
    rng = np.random.default_rng(11)
    props = cluster_instances(*sphere_object([0, 0, 0], 300, CHAIR, rng))
    dense = props.dense()
    assert dense.shape == (1, 300) and dense.all()


def test_bad_inputs_name_the_array():
    with pytest.raises(ValueError, match="logits"):
        cluster_instances(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 20)))
    with pytest.raises(ValueError, match="offset"):
        cluster_instances(np.zeros((3, 3)), np.zeros((2, 3)), np.zeros((3, NUM_CLASSES)))


# ---------------------------------------------------------------- config

def test_presets():
    assert ClusterConfig() == ClusterConfig.mesh_vertex()
    mesh = ClusterConfig.mesh_vertex()
    assert (mesh.radius, mesh.min_points, mesh.propose_points, mesh.score) == (0.02, 50, 250, "median")
    assert (mesh.score_threshold, mesh.dual_set, mesh.dual_radius) == (None, False, 0.03)
    vox = ClusterConfig.voxel_level(0.02)
    assert (vox.radius, vox.min_points, vox.propose_points, vox.score) == (pytest.approx(0.03), 50, 100, "mean")
    assert ClusterConfig.voxel_level(1.0).radius == 1.5  # voxel units, as the authors pass them


@pytest.mark.parametrize("field, value", [
    ("radius", 0.0), ("radius", -1.0), ("radius", float("nan")), ("radius", float("inf")), ("radius", "2"),
    ("dual_radius", 0), ("min_points", 0), ("min_points", 1.5), ("min_points", True),
    ("propose_points", -3), ("score", "max"), ("score_threshold", float("nan")), ("dual_set", 1),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ClusterConfig(**{field: value})
