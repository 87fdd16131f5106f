"""The feature-space stage's engine (Fig. 7): every model is read on the same sampled voxels, and the
features are the network's own output at those voxels."""

import csv
import json

import numpy as np
import pytest
import torch

from lgseg.data import ScanNetDataset, collate
from lgseg.engine.checkpoint import save_model
from lgseg.engine.features import TSNE_COLUMNS, feature_space, sampled_features
from lgseg.evaluation.feature_space import balanced_sample
from lgseg.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def backbone(path, seed: int):
    torch.manual_seed(seed)
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=16, num_classes=None)
    save_model(path, net, {"kind": "pretrain", "task": "semantic", "model": {"name": "Res16UNet14S",
               "backend": "minkowski"}, "feature_dim": 16, "num_classes": None, "text": None, "voxel_size": 0.1})
    return net


def test_features_are_the_networks_output_at_the_sampled_voxels(tiny_data, tmp_path):
    net = backbone(tmp_path / "m.pt", 0).eval()
    dataset = ScanNetDataset(tiny_data["processed"], "val", voxel_size=0.1)
    picks = balanced_sample([dataset[i]["label"] for i in range(len(dataset))], per_group=20, seed=0)
    feats, labels, scenes = sampled_features(net, dataset, picks, progress=False)
    batch = collate([dataset[0]])
    with torch.no_grad():
        whole = net(batch["coord"], batch["feat"]).numpy()
    np.testing.assert_array_equal(feats, whole[picks[0]])
    np.testing.assert_array_equal(labels, batch["label"].numpy()[picks[0]])
    assert set(scenes) == set(dataset.scenes) and (labels >= 0).all()


def test_two_models_are_scored_on_the_same_voxels_and_the_files_say_what_they_hold(tiny_data, tmp_path):
    for seed in (0, 1):
        backbone(tmp_path / f"m{seed}.pt", seed)
        feature_space(tmp_path / f"m{seed}.pt", tiny_data["processed"], tmp_path / f"f{seed}.json",
                      tmp_path / f"t{seed}.csv", tmp_path / f"c{seed}.json", per_group=30, seed=0, k=5, perplexity=5,
                      progress=False)
    rows = [list(csv.DictReader(open(tmp_path / f"t{seed}.csv"))) for seed in (0, 1)]
    assert list(rows[0][0]) == list(TSNE_COLUMNS)
    assert [(r["class"], r["scene"]) for r in rows[0]] == [(r["class"], r["scene"]) for r in rows[1]]
    assert [r["x"] for r in rows[0]] != [r["x"] for r in rows[1]]  # two networks, two pictures
    scores = json.loads((tmp_path / "f0.json").read_text())
    assert set(scores) == {"knn_accuracy", "silhouette"} and 0 <= scores["knn_accuracy"]["all"] <= 100
    counts = json.loads((tmp_path / "c0.json").read_text())
    assert counts["samples"] == len(rows[0]) and counts["k"] == 5 and counts["feature_dim"] == 16
    assert counts["classes"] == len({r["class"] for r in rows[0]})
