"""The instance bank: class selection, per-instance labels, export of centred train instances."""

import json

import numpy as np
import pytest

from lgseg.data.instances import InstanceBank, export_instance_bank, resolve_classes, scene_instances
from lgseg.scannet.constants import CLASS_SPLIT, NAME_TO_INDEX
from lgseg.scannet.preprocess import preprocess
from lgseg.synthetic import generate


def test_resolve_classes():
    tail = resolve_classes("tail")
    assert len(tail) == 66 and all(CLASS_SPLIT[c] == "tail" for c in tail)
    assert len(resolve_classes("all")) == 200 and len(resolve_classes("head")) == 66
    assert resolve_classes(["wall", "chair", "wall"]) == sorted({NAME_TO_INDEX["wall"], NAME_TO_INDEX["chair"]})
    with pytest.raises(ValueError, match="'tabel'"):
        resolve_classes(["tabel"])
    with pytest.raises(ValueError, match="tail"):
        resolve_classes("rare")


def test_scene_instances_label_by_majority_and_group_all_vertices():
    segment = np.array([5, 5, 7, -1, 9, -1, 9, 5, -1])
    instance = np.array([2, 2, 2, 2, 0, 0, -1, -1, 4])  # instance 4 has no labelled vertex
    ids, labels, groups = scene_instances(segment, instance)
    assert ids.tolist() == [0, 2] and labels.tolist() == [9, 5]
    assert [g.tolist() for g in groups] == [[4, 5], [0, 1, 2, 3]]


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    d = tmp_path_factory.mktemp("bank")
    generate(d / "raw", num_scenes=6, seed=0, workers=1, progress=False)
    preprocess(d / "raw", d / "processed", progress=False)
    return d / "processed"


def test_export_holds_every_train_instance_of_the_classes_centred(processed, tmp_path):
    classes = resolve_classes("tail") + resolve_classes("common")
    meta = export_instance_bank(processed, tmp_path / "bank", classes, min_points=10, progress=False)
    expected = 0
    for scene in (processed / "train").iterdir():
        ids, labels, groups = scene_instances(np.load(scene / "segment200.npy"), np.load(scene / "instance.npy"))
        expected += sum(1 for c, g in zip(labels, groups, strict=True) if c in classes and len(g) >= 10)
    bank = InstanceBank(tmp_path / "bank")
    assert len(bank) == meta["instances"] == expected > 0
    assert json.loads((tmp_path / "bank/meta.json").read_text())["per_class"]
    for i in range(len(bank)):
        pts, color, label = bank.get(i)
        assert label in classes and len(pts) == len(color) >= 10
        lo, hi = pts.min(0), pts.max(0)
        assert np.allclose((lo[:2] + hi[:2]) / 2, 0, atol=1e-5) and abs(lo[2]) < 1e-6  # centred, on z = 0
        scene, inst = meta["source"][i]
        src = processed / "train" / scene
        assert len(pts) == (np.load(src / "instance.npy") == inst).sum()


def test_missing_bank_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="dvc repro preprocess"):
        InstanceBank(tmp_path / "nowhere")


def test_training_scenes_get_bank_instances(processed, tmp_path):
    from lgseg.data import ScanNetDataset
    from lgseg.data.instance_sampling import InstanceSampler

    classes = resolve_classes("tail")
    export_instance_bank(processed, tmp_path / "bank", classes, progress=False)
    bank = InstanceBank(tmp_path / "bank")
    plain = ScanNetDataset(processed, "train", voxel_size=0.05, train=True, seed=1)
    sampled = ScanNetDataset(processed, "train", voxel_size=0.05, train=True, seed=1,
                             instance_sampler=InstanceSampler(bank, per_scene=5, resolution=0.05))
    tail = np.asarray(classes)
    gained = [np.isin(sampled[i]["label"], tail).sum() - np.isin(plain[i]["label"], tail).sum()
              for i in range(len(plain))]
    assert all(g >= 0 for g in gained) and sum(gained) > 0
    val = ScanNetDataset(processed, "val", voxel_size=0.05, instance_sampler=InstanceSampler(bank))
    assert val.instance_sampler is None  # evaluation scenes stay as they are
