"""Two augmented views of one scene with exact voxel matches (CSC pretraining's input)."""

from __future__ import annotations

import numpy as np
import pytest

from lgseg.data import collate
from lgseg.data.dataset import ScanNetDataset
from lgseg.scene_io import write_scene

ALL_ON = {k: True for k in ("elastic", "rotation", "scale", "flip", "auto_contrast", "color_translation",
                            "color_jitter")}
COLOUR_OFF = {**ALL_ON, "auto_contrast": False, "color_translation": False, "color_jitter": False}


@pytest.fixture
def sparse_scene(tmp_path):
    """Points 1 m apart, each with a colour of its own: every voxel holds one vertex in any view."""
    g = np.arange(6, dtype=np.float32)
    coord = np.stack(np.meshgrid(g, g, g[:3], indexing="ij"), -1).reshape(-1, 3)
    color = np.stack([np.arange(len(coord)) % 256, np.arange(len(coord)) // 256, np.full(len(coord), 7)], 1)
    folder = tmp_path / "train" / "scene0000_00"
    folder.mkdir(parents=True)
    write_scene(folder, coord, color.astype(np.uint8), np.zeros(len(coord), np.int16),
                np.zeros(len(coord), np.int32))
    return tmp_path, coord, color


def test_matched_voxels_hold_the_same_vertex_and_its_original_position(sparse_scene):
    root, coord, color = sparse_scene
    ds = ScanNetDataset(root, "train", voxel_size=0.1, train=True, transforms_cfg=COLOUR_OFF, two_views=True,
                        random_translation=10)
    item = ds[0]
    a, b = item["views"]
    m = item["matches"]
    assert len(m) == len(coord) and len(np.unique(m[:, 0])) == len(m)  # one voxel per vertex: a bijection
    feat_a, feat_b = a["feat"][m[:, 0]], b["feat"][m[:, 1]]
    np.testing.assert_array_equal(feat_a, feat_b)  # colour untouched: the same vertex on both sides
    vertex = np.rint((feat_a[:, 0] + 0.5) * 255).astype(int) + 256 * np.rint((feat_a[:, 1] + 0.5) * 255).astype(int)
    np.testing.assert_allclose(item["match_coord"], coord[vertex])  # the original, un-augmented frame
    assert not np.array_equal(a["coord"][m[:, 0]], b["coord"][m[:, 1]])  # the views differ


def test_views_share_the_crop_and_differ_in_everything_else(sparse_scene):
    root, coord, _ = sparse_scene
    ds = ScanNetDataset(root, "train", voxel_size=0.1, train=True, two_views=True,
                        transforms_cfg={**ALL_ON, "crop_points": 40})
    item = ds[0]
    a, b = item["views"]
    assert len(a["coord"]) == len(b["coord"]) == len(item["matches"]) == 40  # one shared crop
    assert not np.allclose(a["feat"][item["matches"][:, 0]], b["feat"][item["matches"][:, 1]])
    again = ds[0]  # reproducible from (seed, epoch, index)
    np.testing.assert_array_equal(again["views"][1]["coord"], b["coord"])


def test_pairs_collate_into_one_batch_with_separate_batch_items(sparse_scene):
    root, _, _ = sparse_scene
    ds = ScanNetDataset(root, "train", voxel_size=0.1, train=True, transforms_cfg=COLOUR_OFF, two_views=True)
    pairs = [ds[0], ds[0]]
    batch = collate(pairs)
    m, scene, bidx = batch["matches"].numpy(), batch["match_scene"].numpy(), batch["coord"][:, 0].numpy()
    assert len(m) == 2 * len(pairs[0]["matches"]) and scene.tolist() == [0] * (len(m) // 2) + [1] * (len(m) // 2)
    assert (bidx[m[:, 0]] == 2 * scene).all() and (bidx[m[:, 1]] == 2 * scene + 1).all()
    np.testing.assert_array_equal(batch["feat"][m[:, 0]].numpy(), batch["feat"][m[:, 1]].numpy())
    assert batch["scenes"] == ["scene0000_00"] * 2 and batch["match_coord"].shape == (len(m), 3)
    small = collate(pairs, max_points=len(pairs[0]["views"][0]["coord"]) * 2)  # whole pairs only
    assert small["match_scene"].max() == 0 and small["coord"][:, 0].max() == 1
