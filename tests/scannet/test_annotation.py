"""Limited annotations: farthest-point sampling and the paper's / the reference's per-object rules."""

import json

import numpy as np
import pytest

from lgseg.scannet.annotation import annotated_points, farthest_point_sampling, limit_annotations
from lgseg.scannet.preprocess import preprocess
from lgseg.synthetic import generate


def naive_fps(points, k, start):
    chosen = [start]
    while len(chosen) < k:
        d = [min(np.linalg.norm(p - points[c]) for c in chosen) for p in points]
        chosen.append(int(np.argmax(d)))
    return chosen


def test_fps_by_hand_on_a_line():
    pts = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0]], float)
    # from 0: farthest is 10 (index 3); then min distances are 1 (pt 1) and 2 (pt 2) -> 2; then 1
    assert farthest_point_sampling(pts, 4, start=0).tolist() == [0, 3, 2, 1]
    assert farthest_point_sampling(pts, 2, start=3).tolist() == [3, 0]
    assert farthest_point_sampling(pts, 9).tolist() == [0, 3, 2, 1]  # k capped at n
    assert farthest_point_sampling(pts, 0).tolist() == []


def test_fps_matches_the_definition():
    pts = np.random.default_rng(0).normal(size=(200, 3))
    assert farthest_point_sampling(pts, 25, start=7).tolist() == naive_fps(pts, 25, 7)


def objects(sizes):
    """Objects of the given sizes, interleaved in mesh order, plus 3 vertices in no object."""
    instance = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)] + [np.full(3, -1)])
    order = np.random.default_rng(1).permutation(len(instance))
    instance = instance[order]
    coord = np.random.default_rng(2).uniform(0, 5, size=(len(instance), 3))
    return coord, instance


@pytest.mark.parametrize("rule, minimum", [("paper", 1), ("reference", 5)])
@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.5])
def test_points_per_object_follow_the_rule(rule, minimum, fraction):
    sizes = [3, 10, 40, 200, 1000]
    coord, instance = objects(sizes)
    keep = annotated_points(coord, instance, fraction, rule, np.random.default_rng(0))
    for i, n in enumerate(sizes):
        assert keep[instance == i].sum() == min(n, max(minimum, round(fraction * n)))
    assert not keep[instance < 0].any()


def test_reference_rule_starts_at_the_first_vertex_and_paper_rule_at_a_random_one():
    coord, instance = objects([300])
    first = np.flatnonzero(instance == 0)[0]
    ref = [annotated_points(coord, instance, 0.01, "reference", np.random.default_rng(s)) for s in (0, 1)]
    assert ref[0][first] and (ref[0] == ref[1]).all()  # no randomness in the reference rule
    paper = [annotated_points(coord, instance, 0.01, "paper", np.random.default_rng(s)) for s in (0, 1)]
    assert (paper[0] != paper[1]).any()


def test_limit_annotations_is_deterministic_per_seed_and_scene():
    coord, instance = objects([50, 80])
    segment = np.where(instance >= 0, instance + 3, -1).astype(np.int16)
    a = limit_annotations(segment, coord, instance, 0.1, "paper", seed=0, scene="scene0000_00")
    b = limit_annotations(segment, coord, instance, 0.1, "paper", seed=0, scene="scene0000_00")
    c = limit_annotations(segment, coord, instance, 0.1, "paper", seed=0, scene="scene0001_00")
    assert (a == b).all() and (a != c).any()
    kept = a >= 0
    assert (a[kept] == segment[kept]).all() and kept.sum() == 5 + 8
    assert (limit_annotations(segment, coord, instance, 1.0, "paper", 0, "s") == segment).all()
    with pytest.raises(ValueError, match="fraction"):
        annotated_points(coord, instance, 0.0)
    with pytest.raises(ValueError, match="rule"):
        annotated_points(coord, instance, 0.5, "random")


def test_preprocess_limits_train_labels_only(tmp_path):
    generate(tmp_path / "raw", num_scenes=4, seed=0, workers=1, progress=False)
    preprocess(tmp_path / "raw", tmp_path / "full", progress=False)
    preprocess(tmp_path / "raw", tmp_path / "ten", progress=False,
               annotation={"fraction": 0.1, "rule": "paper", "seed": 3})
    full, ten = (json.loads((tmp_path / d / "stats.json").read_text()) for d in ("full", "ten"))
    assert ten["annotation"] == {"fraction": 0.1, "rule": "paper", "seed": 3}
    assert 0.08 < sum(ten["train_points"]) / sum(full["train_points"]) < 0.13
    for split in ("train", "val"):
        for scene in (tmp_path / "full" / split).iterdir():
            f = np.load(scene / "segment200.npy")
            t = np.load(tmp_path / "ten" / split / scene.name / "segment200.npy")
            if split == "val":
                assert (f == t).all()
            else:
                assert (t[t >= 0] == f[t >= 0]).all() and (t >= 0).sum() < (f >= 0).sum()
                same = np.load(tmp_path / "ten/train" / scene.name / "coord.npy")
                assert (np.load(scene / "coord.npy") == same).all()
