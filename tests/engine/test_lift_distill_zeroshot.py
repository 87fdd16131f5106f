"""The image side end to end on a tiny world with frames: the lift stage's fusion of a teacher's
features onto the points, 2D-to-3D distillation pretraining (no 3D label read), and the zero-shot
readouts (the 3D model, the 2D fusion, OpenScene's ensemble) against hand-built cases."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lgseg import synthetic
from lgseg.engine.checkpoint import save_model
from lgseg.engine.launch import TrainPaths, run_training
from lgseg.engine.lift import LiftedTargets, lift_all, lifted_meta
from lgseg.engine.zeroshot import zeroshot
from lgseg.errors import InputError
from lgseg.frames.export import export_scenes
from lgseg.lifting import Fused, load_fused, save_fused
from lgseg.models import build_model
from lgseg.scannet.constants import NUM_CLASSES, SPLIT_INDICES
from lgseg.scannet.preprocess import preprocess
from lgseg.teachers import build_teacher
from lgseg.teachers.lseg_demo import PixelTextNet, save_teacher
from lgseg.text.embed import save_embeddings

pytestmark = pytest.mark.usefixtures("one_thread")
DIM = 16
LIFT = {"rule": "mean", "border": 2, "occlusion": 0.25, "occlusion_mode": "relative"}
TEXT = {"encoder": "random", "model": "test", "prompt": "{}", "dim": DIM}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("imageside")
    synthetic.generate(d / "raw", 6, seed=5, progress=False, frames=3, objects={"train": 12, "val": 12, "test": 6},
                       train_min={"head": 0, "common": 0, "tail": 0}, val_min=0)
    preprocess(d / "raw", d / "processed", progress=False)
    export_scenes(d / "raw", d / "frames", progress=False)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(NUM_CLASSES, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    save_embeddings(d / "text", emb, TEXT)
    torch.manual_seed(0)
    save_teacher(d / "teacher.pt", PixelTextNet(DIM, 4), {"text": TEXT})  # untrained: its features are what they are
    summary = lift_all(lambda: build_teacher({"type": "lseg_demo"}, demo_weights=d / "teacher.pt"), d / "frames",
                       d / "processed", d / "lifted", LIFT, progress=False)
    return {"dir": d, "summary": summary, "emb": emb}


def test_lift_fuses_the_teachers_features_onto_the_points_frames_see(world):
    d, s = world["dir"], world["summary"]
    assert s["train"]["scenes"] == 4 and s["val"]["scenes"] == 1 and s["test"]["scenes"] == 1
    assert 0 < s["train"]["seen_fraction"] < 1 and s["train"]["bytes"] > 0
    assert lifted_meta(d / "lifted") == {"teacher": "lseg_demo", "dim": DIM, "text": TEXT}
    n = len(np.load(d / "processed/val/scene0004_00/coord.npy"))
    fused = load_fused(d / "lifted/val/scene0004_00", num_points=n)
    assert fused.features.dtype == np.float16 and fused.features.shape[1] == DIM
    norms = np.linalg.norm(fused.features.astype(np.float32), axis=1)
    assert (norms <= 1.001).all() and (norms > 0).all()  # means of the teacher's unit features
    rows, feats = LiftedTargets(d / "lifted/val")("scene0004_00", n)
    assert (rows >= 0).sum() == len(fused.point_index) and np.array_equal(feats, fused.features)
    assert LiftedTargets(d / "lifted/val")("scene0999_00", n) is None


def _distill_cfg(tiny_cfg: dict) -> dict:
    return {**tiny_cfg, "epochs": 2, "objective": "distill", "distill": {"form": "cosine"},
            "optimizer": {"type": "sgd", "lr": 0.5, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.0}}


def test_distillation_pretraining_learns_the_lifted_features_and_reads_them_out(world, tiny_cfg, tmp_path):
    d = world["dir"]
    paths = TrainPaths(processed=d / "processed", checkpoint=tmp_path / "c/state.pt", model=tmp_path / "m.pt",
                       curve=tmp_path / "curve.csv", embeddings=d / "text", lifted=d / "lifted")
    r = run_training("pretrain", {**_distill_cfg(tiny_cfg), "epochs": 6}, paths, progress=False)
    losses = [h["loss"] for h in r["history"]]
    assert losses[-1] < losses[0] and 0 < losses[-1] < 2  # 1 - cos lies in [0, 2]
    assert "val_miou" in r["history"][-1]  # the teacher is in the anchors' space: a zero-shot readout
    meta = torch.load(tmp_path / "m.pt", weights_only=True)["meta"]
    assert meta["feature_dim"] == DIM and {k: meta["text"][k] for k in TEXT} == TEXT  # the anchors' space


def test_distillation_reads_no_3d_label(world, tiny_cfg, tmp_path):
    """The train scenes' labels removed (every point ignored): the same weights, bit for bit."""
    d = world["dir"]
    blind = tmp_path / "processed"
    shutil.copytree(d / "processed", blind)
    for seg in (blind / "train").rglob("segment200.npy"):
        np.save(seg, np.full(np.load(seg).shape, -1, dtype=np.int16))
    weights = []
    for processed, out in ((d / "processed", tmp_path / "a"), (blind, tmp_path / "b")):
        paths = TrainPaths(processed=processed, checkpoint=out / "c/state.pt", model=out / "m.pt",
                           curve=out / "curve.csv", embeddings=d / "text", lifted=d / "lifted")
        run_training("pretrain", {**_distill_cfg(tiny_cfg), "val_every": 100}, paths, progress=False)
        weights.append(torch.load(out / "m.pt", weights_only=True)["state_dict"])
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_distillation_without_lifted_features_says_why(world, tiny_cfg, tmp_path):
    (tmp_path / "lifted/train").mkdir(parents=True)
    paths = TrainPaths(processed=world["dir"] / "processed", checkpoint=tmp_path / "c/state.pt",
                       model=tmp_path / "m.pt", curve=tmp_path / "curve.csv", embeddings=world["dir"] / "text",
                       lifted=tmp_path / "lifted")
    with pytest.raises(InputError, match="no lifted 2D features of any train scene: the scenes have no RGB-D frames"):
        run_training("pretrain", _distill_cfg(tiny_cfg), paths, progress=False)


# ---- zero-shot readouts, hand-built -------------------------------------------------------------------

def _hand_scene(tmp_path, emb):
    """One val scene of 4 points: classes 0 (head), 0, 1, and an ignored point; a pretrained model whose
    output is given per voxel through a linear layer (the features: exact anchors)."""
    from lgseg.scene_io import write_scene

    proc = tmp_path / "processed"
    for split in ("train", "val"):
        folder = proc / split / ("scene0000_00" if split == "train" else "scene0001_00")
        folder.mkdir(parents=True)
        coord = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]], dtype=np.float32)
        write_scene(folder, coord, np.zeros((4, 3), np.uint8), np.array([0, 0, 1, -1], np.int16),
                    np.zeros(4, np.int32))
    return proc


def test_zeroshot_readouts_by_hand(world, tmp_path, monkeypatch):
    """3D features: point 0 reads class 0, points 1 and 2 class 1 (so point 1 is wrong); the 2D fusion
    saw points 1 and 2 only, with their true classes; the ensemble takes for each vertex the feature
    nearer to an anchor: the 2D ones (exact anchors) where seen, the 3D one elsewhere."""
    import lgseg.engine.zeroshot as zs

    emb = world["emb"]
    proc = _hand_scene(tmp_path, emb)
    save_embeddings(tmp_path / "text", emb, TEXT)
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=DIM, num_classes=None)
    save_model(tmp_path / "m.pt", net, {"kind": "pretrain", "task": "semantic", "feature_dim": DIM, "num_classes": None,
                                       "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "text": TEXT,
                                       "voxel_size": 0.5})
    three_d = torch.from_numpy(np.stack([emb[0], 0.6 * emb[1] + 0.4 * emb[0], emb[1], emb[1]]))

    def outputs(net, dataset, device, progress):  # the voxels are the points here (one point per voxel)
        yield "scene0001_00", three_d, np.arange(4)

    monkeypatch.setattr(zs, "voxel_outputs", outputs)
    lifted = tmp_path / "lifted"
    save_fused(lifted / "val/scene0001_00", Fused(np.stack([emb[0], emb[1]]).astype(np.float16),
                                                  np.array([1, 2], np.int32), np.array([0, 1, 1, 0], np.int32)))
    (lifted / "meta.json").write_text(json.dumps({"teacher": "t", "dim": DIM, "text": TEXT}))
    r = zeroshot(tmp_path / "m.pt", proc, lifted, tmp_path / "text", progress=False)
    # classes 0 (head: "wall") and 1 (head: "chair"): IoU = TP / (TP + FP + FN)
    assert 0 in SPLIT_INDICES["head"] and 1 in SPLIT_INDICES["head"]
    assert r["model"]["all"]["miou"] == pytest.approx(100 * (1 / 2 + 1 / 2) / 2)  # 0: 1/(1+0+1); 1: 1/(1+1+0)
    assert r["fusion"]["all"]["miou"] == pytest.approx(100 * (1 / 2 + 1) / 2)  # point 0 unseen: a miss of class 0
    assert r["ensemble"]["all"]["miou"] == pytest.approx(100.0)
    assert r["seen_fraction"] == pytest.approx(0.5)


def test_zeroshot_of_a_backbone_outside_the_text_space_has_no_model_readout(world, tmp_path):
    d = world["dir"]
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=DIM, num_classes=None)
    save_model(tmp_path / "m.pt", net, {"kind": "pretrain", "task": "semantic", "feature_dim": DIM, "num_classes": None,
                                       "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "text": None,
                                       "voxel_size": 0.1})
    r = zeroshot(tmp_path / "m.pt", d / "processed", d / "lifted", d / "text", progress=False)
    assert r["model"] is None and r["ensemble"] is None and r["fusion"] is not None
    assert 0 < r["seen_fraction"] < 1
