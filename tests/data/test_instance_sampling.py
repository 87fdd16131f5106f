"""Instance sampling: placed instances rest on a surface, never collide (paper's rule), carry labels."""

import json

import numpy as np
import pytest

from lgseg.data.instance_sampling import HeightMap, InstanceSampler, object_boxes
from lgseg.data.instances import InstanceBank
from lgseg.scannet.constants import NAME_TO_INDEX

FLOOR, TABLE, WALL = NAME_TO_INDEX["floor"], NAME_TO_INDEX["table"], NAME_TO_INDEX["wall"]
TAIL = [NAME_TO_INDEX[n] for n in ("fire extinguisher", "dumbbell")]


def grid(x0, x1, y0, y1, z, step=0.05):
    xs, ys = np.meshgrid(np.arange(x0, x1, step), np.arange(y0, y1, step), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)], 1)


def box_points(lo, hi, step=0.05):
    axes = [np.arange(a, b + 1e-9, step) for a, b in zip(lo, hi, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


@pytest.fixture
def room():
    """A 4 x 3 m floor, a 1 x 1 x 0.75 m table, a wall along x = 0 (instances 0, 1, 2)."""
    parts = [(grid(0, 4, 0, 3, 0.0), FLOOR), (box_points((1.5, 1.0, 0.0), (2.5, 2.0, 0.75)), TABLE),
             (box_points((0.0, 0.0, 0.0), (0.1, 3.0, 2.5)), WALL)]
    coord = np.concatenate([p for p, _ in parts])
    label = np.concatenate([np.full(len(p), c) for p, c in parts])
    instance = np.concatenate([np.full(len(p), i) for i, (p, _) in enumerate(parts)])
    return {"coord": coord, "color": np.full((len(coord), 3), 128.0, np.float32), "label": label}, instance


@pytest.fixture
def bank(tmp_path):
    """Two small cuboid instances of two tail classes, stored as the bank format says."""
    shapes = [box_points((-0.1, -0.1, 0), (0.1, 0.1, 0.3)), box_points((-0.15, -0.05, 0), (0.15, 0.05, 0.1))]
    coord = np.concatenate(shapes).astype(np.float32)
    np.save(tmp_path / "coord.npy", coord)
    np.save(tmp_path / "color.npy", np.full((len(coord), 3), 200, np.uint8))
    np.save(tmp_path / "offset.npy", np.array([0, len(shapes[0]), len(coord)], np.int64))
    np.save(tmp_path / "label.npy", np.array(TAIL, np.int16))
    (tmp_path / "meta.json").write_text(json.dumps({"classes": TAIL}))
    return InstanceBank(tmp_path)


def naive_filled_height(coord, res, size, xy):
    """The filled height map at ``xy``, straight from its definition (loops, no scipy)."""
    origin = coord[:, :2].min(0)
    cols = np.floor((coord[:, :2] - origin) / res).astype(int)
    col = np.floor((xy - origin) / res).astype(int)
    col = np.minimum(col, cols.max(0))
    best = coord[:, 2].min()
    for p, c in zip(coord, cols, strict=True):
        if abs(c[0] - col[0]) <= size // 2 and abs(c[1] - col[1]) <= size // 2:
            best = max(best, p[2])
    return best


def test_height_map_by_definition(room):
    sample, _ = room
    hm = HeightMap(sample["coord"], 0.1, filter_size=3)
    for xy in ([2.0, 1.5], [0.5, 0.5], [3.9, 2.9], [1.45, 1.5]):
        assert hm.height(np.array([xy]))[0] == pytest.approx(naive_filled_height(sample["coord"], 0.1, 3, np.array(xy)))


def test_placed_instances_rest_on_a_surface_never_collide_and_carry_labels(room, bank):
    sample, instance = room
    sampler = InstanceSampler(bank, per_scene=6, tries=50, rule="paper", resolution=0.05, filter_size=3)
    n = len(sample["coord"])
    out, placed = sampler({k: v.copy() for k, v in sample.items()}, instance, np.random.default_rng(0))
    assert len(placed) == 6 and not any(p.collided for p in placed)
    assert len(out["coord"]) == n + sum(p.rows.stop - p.rows.start for p in placed)
    obstacles = [object_boxes(sample["coord"], instance, sample["label"])[i] for i in range(2)]  # table, wall
    for j, p in enumerate(placed):
        pts = out["coord"][p.rows]
        assert (out["label"][p.rows] == p.label).all() and p.label in TAIL
        assert (out["color"][p.rows] == 200).all()
        centre = (pts[:, :2].min(0) + pts[:, :2].max(0)) / 2
        bottom = pts[:, 2].min()
        assert bottom == pytest.approx(naive_filled_height(sample["coord"], 0.05, 3, centre), abs=1e-6)
        assert np.allclose(p.box, [pts.min(0), pts.max(0)])
        for other in obstacles + [q.box for q in placed[:j]]:
            inter = np.minimum(p.box[1], other[1]) - np.maximum(p.box[0], other[0])
            assert not (inter > 0.05).all()  # no overlap beyond the tolerance (one height-map cell)
    assert (out["coord"][:n] == sample["coord"]).all() and (out["label"][:n] == sample["label"]).all()


def test_same_seed_same_scene(room, bank):
    sample, instance = room
    sampler = InstanceSampler(bank, per_scene=3, resolution=0.05)
    a, _ = sampler(dict(sample), instance, np.random.default_rng(5))
    b, _ = sampler(dict(sample), instance, np.random.default_rng(5))
    assert all((a[k] == b[k]).all() for k in a)


def test_when_every_try_collides_the_paper_discards_and_the_reference_inserts(room, bank):
    sample, instance = room
    blocked = instance.copy()  # one object whose box covers the whole room: every candidate collides
    blocked[sample["label"] == FLOOR] = 1
    sample = {**sample, "coord": np.concatenate([sample["coord"], [[0, 0, 5.0], [4, 3, 5.0]]]),
              "color": np.concatenate([sample["color"], np.zeros((2, 3), np.float32)]),
              "label": np.concatenate([sample["label"], [TABLE, TABLE]])}
    blocked = np.concatenate([blocked, [1, 1]])
    paper = InstanceSampler(bank, per_scene=4, tries=5, rule="paper", resolution=0.05)
    out, placed = paper(dict(sample), blocked, np.random.default_rng(0))
    assert placed == [] and len(out["coord"]) == len(sample["coord"])
    ref = InstanceSampler(bank, per_scene=4, tries=5, rule="reference", resolution=0.05)
    out, placed = ref(dict(sample), blocked, np.random.default_rng(0))
    assert len(placed) == 4 and all(p.collided for p in placed)


def test_bad_settings_are_errors(bank):
    with pytest.raises(ValueError, match="rule"):
        InstanceSampler(bank, rule="sometimes")
    with pytest.raises(ValueError, match="tries"):
        InstanceSampler(bank, tries=0)
