"""ScanNetDataset on tiny npy scenes: eval mapping, train reproducibility, labels, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from lgseg.data.dataset import ScanNetDataset
from lgseg.errors import InputError
from lgseg.scene_io import write_scene

VOXEL = 0.1
OFF = {k: False for k in ("elastic", "rotation", "scale", "flip", "auto_contrast",
                          "color_translation", "color_jitter")}


def _write_scene(folder: Path, seed: int, n: int = 400, labelled: bool = True,
                 cell_labels: bool = False) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    coord = rng.uniform(-0.4, 0.6, size=(n, 3)).astype(np.float32)  # ~1000 cells of 0.1 m: collisions
    color = rng.integers(0, 256, size=(n, 3), dtype=np.uint8)
    label = None
    if labelled:
        if cell_labels:  # one label per voxel cell, so every point agrees with its voxel
            label = (np.floor(coord[:, 0] / VOXEL).astype(np.int64) % 7) - 1
        else:
            label = rng.integers(-1, 6, size=n)
        label = label.astype(np.int16)
    write_scene(folder, coord, color, label, np.full(n, -1, dtype=np.int32))


@pytest.fixture
def root(tmp_path) -> Path:
    _write_scene(tmp_path / "train" / "scene0000_00", seed=0)
    _write_scene(tmp_path / "train" / "scene0001_00", seed=1, n=250)
    _write_scene(tmp_path / "val" / "scene0002_00", seed=2)
    _write_scene(tmp_path / "val" / "scene0003_00", seed=3, cell_labels=True)
    _write_scene(tmp_path / "test" / "scene0004_00", seed=4, labelled=False)
    return tmp_path


def _scene(root: Path, split: str, scene: str) -> dict[str, np.ndarray]:
    folder = root / split / scene
    return {k: np.load(folder / f"{k}.npy") for k in ("coord", "color", "segment200")}


def test_eval_item_maps_back_to_every_point(root):
    ds = ScanNetDataset(root, "val", voxel_size=VOXEL)
    item = ds[0]
    raw = _scene(root, "val", "scene0002_00")
    inv = item["inverse"]
    assert item["scene"] == "scene0002_00" and item["num_points"] == len(raw["coord"]) == len(inv)
    assert item["coord"].dtype == np.int32 and item["feat"].dtype == np.float32
    assert item["label"].dtype == np.int64 and inv.dtype == np.int64
    np.testing.assert_array_equal(item["coord"][inv], np.floor(raw["coord"] / VOXEL))  # no translation
    _, rep = np.unique(inv, return_index=True)  # representative = first point of each voxel
    assert len(rep) == len(item["coord"]) < item["num_points"]
    np.testing.assert_array_equal(item["label"][inv[rep]], raw["segment200"][rep])
    np.testing.assert_allclose(item["feat"][inv[rep]], raw["color"][rep] / 255.0 - 0.5, atol=1e-6)


def test_eval_labels_consistent_when_voxels_are_pure(root):
    item = ScanNetDataset(root, "val", voxel_size=VOXEL)[1]
    raw = _scene(root, "val", "scene0003_00")
    np.testing.assert_array_equal(item["label"][item["inverse"]], raw["segment200"])


def test_train_is_reproducible_per_seed_epoch_index(root):
    ds = ScanNetDataset(root, "train", voxel_size=VOXEL, train=True, seed=5)
    a, b = ds[0], ds[0]
    assert "inverse" not in a
    for k in ("coord", "feat", "label"):
        np.testing.assert_array_equal(a[k], b[k])
    # a fresh copy (as in a DataLoader worker process) draws the same sample
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[0]["coord"], a["coord"])
    ds.set_epoch(1)
    assert not np.array_equal(ds[0]["coord"], a["coord"])
    other = ScanNetDataset(root, "train", voxel_size=VOXEL, train=True, seed=6)
    assert not np.array_equal(other[0]["coord"], a["coord"])
    raw = _scene(root, "train", "scene0000_00")
    assert set(np.unique(a["label"])) <= set(np.unique(raw["segment200"]).tolist())
    assert a["feat"].min() >= -0.5 and a["feat"].max() <= 0.5


def test_train_translation_is_one_integer_shift(root):
    plain = ScanNetDataset(root, "val", voxel_size=VOXEL)[0]["coord"]
    cells = {tuple(c) for c in plain}
    shifts = []
    for epoch in range(4):
        ds = ScanNetDataset(root, "val", voxel_size=VOXEL, transforms_cfg=OFF, train=True,
                            random_translation=100)
        ds.set_epoch(epoch)
        coord = ds[0]["coord"]
        shift = coord.min(0) - plain.min(0)
        assert {tuple(c) for c in coord - shift} == cells  # same voxels, moved as a whole
        assert ((shift >= 0) & (shift < 100)).all()
        shifts.append(tuple(shift))
    assert len(set(shifts)) > 1
    no_shift = ScanNetDataset(root, "val", voxel_size=VOXEL, transforms_cfg=OFF, train=True,
                              random_translation=0)[0]["coord"]
    assert {tuple(c) for c in no_shift} == cells


def test_test_split_without_labels_is_all_ignore(root):
    item = ScanNetDataset(root, "test", voxel_size=VOXEL)[0]
    assert (item["label"] == -1).all() and len(item["inverse"]) == item["num_points"]


def test_ignore_classes_become_ignore(root):
    full = ScanNetDataset(root, "val", voxel_size=VOXEL)[0]["label"]
    held = ScanNetDataset(root, "val", voxel_size=VOXEL, ignore_classes=[1, 2])[0]["label"]
    assert np.isin(full, [1, 2]).any()  # the hold-out does remove something here
    assert not np.isin(held, [1, 2]).any()
    keep = ~np.isin(full, [1, 2])
    np.testing.assert_array_equal(held[keep], full[keep])
    assert (held[~keep] == -1).all()


def test_loop_and_scene_selection(root):
    ds = ScanNetDataset(root, "train", voxel_size=VOXEL, loop=3)
    assert len(ds) == 6 and ds[2]["scene"] == "scene0000_00" and ds[3]["scene"] == "scene0001_00"
    only = ScanNetDataset(root, "train", voxel_size=VOXEL, scenes=["scene0001_00"])
    assert only.scenes == ["scene0001_00"] and len(only) == 1
    with pytest.raises(InputError, match="scene9999_00"):
        ScanNetDataset(root, "train", scenes=["scene9999_00"])


def test_missing_or_empty_split_dir(root):
    with pytest.raises(InputError, match="preprocess") as err:
        ScanNetDataset(root, "nosuch")
    assert "nosuch" in str(err.value)
    (root / "empty").mkdir()
    with pytest.raises(InputError, match="no scene folders"):
        ScanNetDataset(root, "empty")


def test_missing_colour_file_is_named(root):
    (root / "train" / "scene0001_00" / "color.npy").unlink()
    ds = ScanNetDataset(root, "train")
    with pytest.raises(InputError, match="color.npy"):
        ds[1]


@pytest.mark.parametrize("voxel_point", ["first", "random"])
def test_training_voxel_takes_its_first_point_or_a_random_one(root, voxel_point):
    """voxel_point first (the authors' code): each training voxel carries the label and colour of
    its first point in file order, every epoch; random: some voxel carries another point's."""
    raw = _scene(root, "train", "scene0000_00")
    cells = np.floor(raw["coord"] / VOXEL).astype(np.int64)
    _, first, counts = np.unique(cells, axis=0, return_index=True, return_counts=True)
    ds = ScanNetDataset(root, "train", voxel_size=VOXEL, transforms_cfg=OFF, train=True,
                        random_translation=0, voxel_point=voxel_point)
    expected = sorted(zip(raw["segment200"][first].tolist(), raw["color"][first, 0].tolist()))
    assert (counts > 1).sum() > 20  # voxels with a choice to make
    picks = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        item = ds[0]
        red = np.rint((item["feat"][:, 0] + 0.5) * 255).astype(int).tolist()
        picks.append(sorted(zip(item["label"].tolist(), red)))
    if voxel_point == "first":
        assert all(p == expected for p in picks)
    else:
        assert any(p != expected for p in picks)


def test_unknown_voxel_point_is_refused(root):
    with pytest.raises(ValueError, match="voxel_point must be one of random, first"):
        ScanNetDataset(root, "train", voxel_size=VOXEL, train=True, voxel_point="mean")
