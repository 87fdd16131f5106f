"""The instance task's targets: each voxel's object and the offset to its object's centroid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lgseg.data import collate
from lgseg.data.dataset import ScanNetDataset, instance_targets
from lgseg.scannet.constants import NAME_TO_INDEX
from lgseg.scene_io import write_scene

WALL, FLOOR, CHAIR, TABLE = (NAME_TO_INDEX[n] for n in ("wall", "floor", "chair", "table"))
VOXEL = 0.1
OFF = {k: False for k in ("elastic", "rotation", "scale", "flip", "auto_contrast", "color_translation",
                          "color_jitter")}


def test_offsets_point_from_each_voxel_to_its_objects_centroid_by_hand():
    voxel = np.array([[0, 0, 0], [2, 0, 0], [4, 0, 0], [10, 10, 0], [10, 12, 0], [0, 5, 5], [7, 7, 7]])
    instance = np.array([3, 3, 3, 8, 8, 9, 4])
    label = np.array([CHAIR, CHAIR, CHAIR, TABLE, TABLE, WALL, -1])
    t = instance_targets(voxel, instance, label, voxel_size=0.5)
    # wall (no instance class) and an ignored label have no instance, and a zero offset
    assert t["instance"].tolist() == [3, 3, 3, 8, 8, -1, -1]
    # chair centroid x = 2 voxels: offsets (2 - 0, 2 - 2, 2 - 4) voxels x 0.5 m; table centroid y = 11
    np.testing.assert_allclose(t["offset"], [[1, 0, 0], [0, 0, 0], [-1, 0, 0], [0, 0.5, 0], [0, -0.5, 0],
                                             [0, 0, 0], [0, 0, 0]])
    assert t["offset"].dtype == np.float32 and t["instance"].dtype == np.int64


def _two_object_scene(folder: Path) -> None:
    rng = np.random.default_rng(0)
    parts = [(rng.uniform([0, 0, 0], [0.5, 0.5, 0.8], (300, 3)), CHAIR, 0),
             (rng.uniform([2, 0, 0], [3, 1, 0.7], (300, 3)), TABLE, 1),
             (rng.uniform([0, 0, -0.05], [3, 1, 0], (300, 3)), FLOOR, 2)]
    coord = np.concatenate([p for p, _, _ in parts]).astype(np.float32)
    label = np.concatenate([np.full(len(p), c) for p, c, _ in parts]).astype(np.int16)
    instance = np.concatenate([np.full(len(p), i) for p, _, i in parts]).astype(np.int32)
    folder.mkdir(parents=True)
    write_scene(folder, coord, rng.integers(0, 256, (len(coord), 3), dtype=np.uint8), label, instance)


@pytest.mark.parametrize("augment", [OFF, {k: True for k in OFF}])
def test_dataset_items_carry_targets_whose_offsets_meet_at_the_centroids(tmp_path, augment):
    _two_object_scene(tmp_path / "train" / "scene0000_00")
    ds = ScanNetDataset(tmp_path, "train", voxel_size=VOXEL, train=True, transforms_cfg=augment,
                        instance_targets=True, seed=1, random_translation=10)
    item = ds[0]
    label, inst = item["label"], item["instance"]
    assert set(inst[label == FLOOR]) == {-1} and set(inst[label == CHAIR]) == {0} and set(inst[label == TABLE]) == {1}
    shifted = item["coord"] * VOXEL + item["offset"]  # every voxel of an object lands on one point
    for k in (0, 1):
        pts = shifted[inst == k]
        np.testing.assert_allclose(pts, np.broadcast_to(pts.mean(0), pts.shape), atol=1e-5)
    batch = collate([item, ds[0]])
    assert batch["instance"].shape == (2 * len(inst),) and batch["offset"].shape == (2 * len(inst), 3)


def test_pasted_instances_are_instances_of_their_own_with_offsets_to_their_centroids(tmp_path):
    import json

    from lgseg.data.instance_sampling import InstanceSampler
    from lgseg.data.instances import InstanceBank

    _two_object_scene(tmp_path / "train" / "scene0000_00")
    g = np.arange(-0.1, 0.1001, 0.02)  # a 20 cm cube of a tail class in the bank
    cube = np.stack(np.meshgrid(g, g, g + 0.1, indexing="ij"), -1).reshape(-1, 3).astype(np.float32)
    bank = tmp_path / "bank"
    bank.mkdir()
    np.save(bank / "coord.npy", cube)
    np.save(bank / "color.npy", np.full((len(cube), 3), 200, np.uint8))
    np.save(bank / "offset.npy", np.array([0, len(cube)], np.int64))
    tail = NAME_TO_INDEX["fire extinguisher"]
    np.save(bank / "label.npy", np.array([tail], np.int16))
    (bank / "meta.json").write_text(json.dumps({"classes": [tail]}))
    sampler = InstanceSampler(InstanceBank(bank), per_scene=3, tries=50, resolution=VOXEL)
    ds = ScanNetDataset(tmp_path, "train", voxel_size=VOXEL, train=True, transforms_cfg=OFF, instance_targets=True,
                        instance_sampler=sampler, seed=3, random_translation=0)
    item = ds[0]
    inst, label = item["instance"], item["label"]
    pasted = set(inst[label == tail])
    assert len(pasted) >= 2 and pasted.isdisjoint({0, 1, -1})  # each pasted cube a new instance id
    shifted = item["coord"] * VOXEL + item["offset"]
    for k in pasted:
        pts = shifted[inst == k]
        np.testing.assert_allclose(pts, np.broadcast_to(pts.mean(0), pts.shape), atol=1e-5)
