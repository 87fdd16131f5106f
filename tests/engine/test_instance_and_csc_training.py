"""The instance task and CSC pretraining through the real training loop, end to end on tiny data."""

from __future__ import annotations

import csv

import pytest
import torch

from lgseg.engine.checkpoint import load_model
from lgseg.engine.launch import run_training
from lgseg.models import InstanceSegmentationNet

from conftest import train_paths

CSC = {"temperature": 0.4, "num_matches": 256, "inner_radius": 0.05, "outer_radius": 0.5, "partition": "up_down",
       "nbins_xy": 2, "nbins_zy": 2, "weight_inner": False}
OFFSET = {"type": "offset", "norm_weight": 1.0, "direction_weight": 1.0}


def _csv(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_csc_pretraining_runs_without_labels_and_its_backbone_fine_tunes(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg.update(objective="csc", csc=CSC, epochs=2)
    pre = run_training("pretrain", tiny_cfg, train_paths(tiny_data, tmp_path / "pre", embeddings=tiny_data["text"]),
                       progress=False)
    losses = [h["loss"] for h in pre["history"]]
    assert len(losses) == 2 and all(v > 0 for v in losses)
    assert "val_miou" not in pre["history"][-1]  # no labels, no text: no readout to validate
    _, meta = load_model(tmp_path / "pre/model.pt")
    assert meta["kind"] == "pretrain" and meta["text"] is None  # never grounded in the text space

    fine = run_training("finetune", {**tiny_cfg, "epochs": 1},
                        train_paths(tiny_data, tmp_path / "fine", embeddings=tiny_data["text"],
                                    init=tmp_path / "pre/model.pt", stats=tiny_data["stats"]), progress=False)
    assert fine["epochs"] == 1
    pre_net, _ = load_model(tmp_path / "pre/model.pt")
    fine_net, _ = load_model(tmp_path / "fine/model.pt")
    assert set(pre_net.state_dict()) <= set(fine_net.state_dict())  # the whole backbone was carried over


def test_instance_task_trains_logits_and_offsets_from_a_pretrained_backbone(tiny_data, tiny_cfg, tmp_path):
    run_training("pretrain", {**tiny_cfg, "epochs": 1},
                 train_paths(tiny_data, tmp_path / "pre", embeddings=tiny_data["text"]), progress=False)
    tiny_cfg.update(epochs=3, offset_loss=OFFSET, instance_sampling={"enabled": False})
    paths = train_paths(tiny_data, tmp_path / "ins", embeddings=tiny_data["text"], init=tmp_path / "pre/model.pt",
                        stats=tiny_data["stats"])
    r = run_training("insseg", tiny_cfg, paths, progress=False)
    h = r["history"]
    assert all(k in h[0] for k in ("loss_semantic", "loss_offset_norm", "loss_offset_dir", "val_miou"))
    for row in h:  # the total is the semantic term plus the weighted offset terms
        assert row["loss"] == pytest.approx(row["loss_semantic"] + row["loss_offset_norm"] + row["loss_offset_dir"],
                                            rel=1e-5)
    assert [float(x["loss_offset_norm"]) for x in _csv(paths.curve)] == pytest.approx([x["loss_offset_norm"] for x in h])
    net, meta = load_model(paths.model)
    assert isinstance(net, InstanceSegmentationNet) and meta["task"] == "instance" and meta["kind"] == "insseg"
    pre, _ = load_model(tmp_path / "pre/model.pt")
    # the backbone came from pretraining (it moved since, but started there): every backbone tensor loaded
    assert {k for k in pre.state_dict()} <= {k for k in net.state_dict()}
    with torch.no_grad():
        out = net.eval()(torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.int32), torch.zeros(2, 3))
    assert out["logits"].shape == (2, 200) and out["offsets"].shape == (2, 3)


def test_instance_task_learns_its_offsets_when_overfitting(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg.update(epochs=10, val_every=10, offset_loss=OFFSET, instance_sampling={"enabled": False},
                    augment={k: False for k in tiny_cfg["augment"]} | {"random_translation": 0},
                    optimizer={"type": "sgd", "lr": 0.05, "momentum": 0.9}, scheduler={"type": "constant"})
    r = run_training("insseg", tiny_cfg, train_paths(tiny_data, tmp_path, stats=tiny_data["stats"]), progress=False)
    norm = [h["loss_offset_norm"] for h in r["history"]]
    assert norm[-1] < 0.7 * norm[0], norm


def test_predict_instances_from_the_cli_warns_of_a_radius_below_the_voxels(tiny_data, tiny_cfg, tmp_path, caplog):
    """`lgseg predict --task instance` writes the benchmark's files; a radius under half the model's voxel
    size (the mesh-vertex default 0.02 m on a 0.1 m model) is said to fragment instances, a radius of
    1.5 voxels is not."""
    from lgseg.cli import main
    from lgseg.evaluation.instance_files import read_instance_prediction
    from lgseg.scene_io import load_scene

    tiny_cfg.update(epochs=1, offset_loss=OFFSET, instance_sampling={"enabled": False})
    paths = train_paths(tiny_data, tmp_path / "ins", stats=tiny_data["stats"])
    run_training("insseg", tiny_cfg, paths, progress=False)
    common = ["predict", "--task", "instance", "--checkpoint", str(paths.model), "--data", str(tiny_data["processed"]),
              "--split", "val", "--device", "cpu"]
    with caplog.at_level("WARNING", logger="lgseg.engine.predict_instances"):
        assert main([*common, "--out", str(tmp_path / "small")]) == 0
    assert "clustering radius 0.02 m is below half the model's 0.1 m voxels" in caplog.text
    assert "--radius 0.15" in caplog.text
    scene = next((tmp_path / "small").glob("*.txt")).stem  # the files read back as the evaluation reads them
    vertices = len(load_scene(tiny_data["processed"], scene)["coord"])
    pred = read_instance_prediction(tmp_path / "small", scene, vertices)
    assert pred.masks.shape[1] == vertices and len(pred.label_ids) == len(pred.scores) == len(pred.masks)
    caplog.clear()
    with caplog.at_level("WARNING", logger="lgseg.engine.predict_instances"):
        assert main([*common, "--radius", "0.15", "--out", str(tmp_path / "wide")]) == 0
    assert "clustering radius" not in caplog.text
