"""Predicting a split into benchmark files, from lgseg models and the authors' checkpoints, on both engines."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from lgseg.cli import main
from lgseg.data import ScanNetDataset
from lgseg.engine.checkpoint import load_model
from lgseg.engine.launch import run_training
from lgseg.engine.predict import predict_split, predict_vertices
from lgseg.errors import InputError, LgsegError
from lgseg.evaluation.benchmark import read_benchmark_file
from lgseg.models import build_model
from lgseg.scannet.constants import index_to_raw

from conftest import train_paths
from test_checkpoint import lightning_checkpoint


pytestmark = pytest.mark.usefixtures("one_thread")


def net(name: str = "Res16UNet14S", backend: str = "spconv", num_classes: int | None = 200, seed: int = 0):
    torch.manual_seed(seed)
    return build_model({"name": name, "backend": backend}, feature_dim=None, num_classes=num_classes)


def scenes_of(processed, split: str) -> list[str]:
    return sorted(p.name for p in (processed / split).iterdir() if p.is_dir())


def read_dir(folder) -> dict[str, np.ndarray]:
    return {p.stem: read_benchmark_file(p) for p in sorted(folder.glob("*.txt"))}


def test_predict_split_writes_every_vertex_of_every_scene(tiny_data, tmp_path):
    processed = tiny_data["processed"]
    scenes = predict_split(net(), processed, "val", 0.1, tmp_path / "val", progress=False)
    assert scenes == scenes_of(processed, "val") and sorted(p.stem for p in (tmp_path / "val").glob("*.txt")) == scenes
    # besides the submission's files, only lgseg's hidden mark (the official scripts read *.txt alone)
    assert sorted(p.name for p in (tmp_path / "val").iterdir() if p.suffix != ".txt") == [".lgseg-product"]
    for scene in scenes:
        n = len(np.load(processed / "val" / scene / "coord.npy"))
        assert len(read_benchmark_file(tmp_path / "val" / f"{scene}.txt")) == n


def test_out_folder_with_other_files_is_refused_and_kept(tiny_data, tmp_path):
    out = tmp_path / "sub"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    with pytest.raises(InputError, match=r"sub: holds entries other than the test split's predictions \(notes\.md\)"):
        predict_split(net(), tiny_data["processed"], "test", 0.1, out, progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.md"]


def test_an_earlier_run_of_the_split_is_replaced(tiny_data, tmp_path):
    (scene,) = scenes_of(tiny_data["processed"], "test")
    out = tmp_path / "sub"
    predict_split(net(), tiny_data["processed"], "test", 0.1, out, progress=False)
    (out / f"{scene}.txt").write_text("1\n")
    predict_split(net(), tiny_data["processed"], "test", 0.1, out, progress=False)
    assert len(read_benchmark_file(out / f"{scene}.txt")) > 1
    assert sorted(p.name for p in out.iterdir()) == [".lgseg-product", f"{scene}.txt"]


def test_unmarked_files_of_the_split_are_replaced_only_with_force(tiny_data, tmp_path):
    """They read like predictions but may be ground truth from other scripts (issue 26, item 3)."""
    (scene,) = scenes_of(tiny_data["processed"], "test")
    out = tmp_path / "sub"
    out.mkdir()
    (out / f"{scene}.txt").write_text("1\n")
    with pytest.raises(InputError, match="without lgseg's mark of semantic predictions"):
        predict_split(net(), tiny_data["processed"], "test", 0.1, out, progress=False)
    assert (out / f"{scene}.txt").read_text() == "1\n"
    predict_split(net(), tiny_data["processed"], "test", 0.1, out, progress=False, force=True)
    assert len(read_benchmark_file(out / f"{scene}.txt")) > 1


def test_backbone_without_classifier_and_missing_split_are_errors(tiny_data, tmp_path):
    with pytest.raises(LgsegError, match="has no classifier"):
        predict_split(net(num_classes=None), tiny_data["processed"], "val", 0.1, tmp_path / "o", progress=False)
    with pytest.raises(InputError, match=r"nowhere/val: no such folder"):
        predict_split(net(), tmp_path / "nowhere", "val", 0.1, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_cli_errors_are_one_line(tiny_data, tmp_path, capsys):
    ckpt = lightning_checkpoint(net(), tmp_path / "authors.ckpt")
    rc = main(["predict", "--checkpoint", str(ckpt), "--data", str(tiny_data["processed"]), "--out",
               str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and str(ckpt) in err and "--model NAME --voxel-size V" in err
    rc = main(["predict", "--checkpoint", str(ckpt), "--data", str(tiny_data["processed"]), "--out",
               str(tmp_path / "o"), "--model", "Res16UNet99", "--voxel-size", "0.1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "model.name must be one of" in err
    backbone = lightning_checkpoint(net(num_classes=None), tmp_path / "backbone.ckpt")
    rc = main(["predict", "--checkpoint", str(backbone), "--data", str(tiny_data["processed"]), "--out",
               str(tmp_path / "o"), "--model", "Res16UNet14S", "--voxel-size", "0.1", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 1 and f"{backbone}: a backbone without classifier (pretrained)" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


VOXEL = 0.3  # the 34-layer U-Nets on 2 CPU cores: a few thousand voxels per scene


@pytest.fixture
def one_scene_splits(tiny_data, tmp_path):
    """The smallest train scene and the val and test scenes, linked: the least a 34-layer U-Net runs on."""
    src, dst = tiny_data["processed"], tmp_path / "processed"
    for split in ("train", "val", "test"):
        smallest = min((src / split / s for s in scenes_of(src, split)), key=lambda p: (p / "coord.npy").stat().st_size)
        (dst / split).mkdir(parents=True)
        (dst / split / smallest.name).symlink_to(smallest)
    return dst


def test_authors_finetuned_checkpoint_predicts_like_its_source_network(one_scene_splits, tmp_path, capsys):
    src = net("Res16UNet34C", backend="minkowski", seed=3)
    ckpt = lightning_checkpoint(src, tmp_path / "authors_34c.ckpt", sgd_step=False)
    for split in ("val", "test"):
        out = tmp_path / split
        assert main(["predict", "--checkpoint", str(ckpt), "--data", str(one_scene_splits), "--split", split,
                     "--out", str(out), "--model", "Res16UNet34C", "--voxel-size", str(VOXEL), "--device", "cpu"]) == 0
        assert f"{split} prediction file(s) to {out} (Res16UNet34C, minkowski on cpu" in capsys.readouterr().out
        assert sorted(p.name for p in out.glob("*.txt")) == [f"{s}.txt" for s in scenes_of(one_scene_splits, split)]
        dataset = ScanNetDataset(one_scene_splits, split, voxel_size=VOXEL)
        for scene, pred in predict_vertices(src, dataset, lambda o: o.argmax(1), progress=False):
            np.testing.assert_array_equal(read_benchmark_file(out / f"{scene}.txt"), index_to_raw(pred))


@pytest.mark.slow
def test_finetune_from_authors_34d_then_predict_on_both_backends(one_scene_splits, tiny_cfg, tmp_path, caplog):
    """The authors' pretrain checkpoint (34D, no ``final``) -> finetune -> ``lgseg predict`` on each engine."""
    pretrain = lightning_checkpoint(net("Res16UNet34D", backend="minkowski", num_classes=None),
                                    tmp_path / "pretrain.ckpt", sgd_step=False)
    tiny_cfg.update(epochs=1, voxel_size=VOXEL)
    tiny_cfg["model"] = {"name": "Res16UNet34D", "backend": "minkowski"}
    with caplog.at_level(logging.INFO):
        run_training("finetune", tiny_cfg, train_paths({"processed": one_scene_splits}, tmp_path, init=pretrain),
                     progress=False)
    assert "weights into Res16UNet34D: loaded 372/374 tensors; new in model: 2 (classifier.*)" in caplog.text
    model = tmp_path / "model.pt"
    _, meta = load_model(model)
    assert meta["feature_dim"] == 512 and meta["num_classes"] == 200

    preds = {}
    for backend in ("minkowski", "spconv"):
        out = tmp_path / f"pred_{backend}"
        assert main(["predict", "--checkpoint", str(model), "--data", str(one_scene_splits), "--split", "val",
                     "--out", str(out), "--backend", backend, "--device", "cpu"]) == 0
        preds[backend] = read_dir(out)
    assert list(preds["minkowski"]) == list(preds["spconv"]) == scenes_of(one_scene_splits, "val")
    a = np.concatenate(list(preds["minkowski"].values()))
    b = np.concatenate(list(preds["spconv"].values()))
    assert a.shape == b.shape and np.mean(a == b) >= 0.999


def test_evaluate_model_on_another_backend(tiny_data, tmp_path):
    from lgseg.engine.checkpoint import save_model
    from lgseg.engine.predict import evaluate_model
    from lgseg.evaluation.ground_truth import export_ground_truth

    export_ground_truth(tiny_data["processed"].parent / "raw", tmp_path / "gt", split="val")
    meta = {"kind": "finetune", "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "feature_dim": 32,
            "num_classes": 200, "text": None, "voxel_size": 0.1}
    save_model(tmp_path / "finetune.pt", net(backend="minkowski"), meta)
    m = evaluate_model(tmp_path / "finetune.pt", tiny_data["processed"], tmp_path / "gt", tmp_path / "pred",
                       tmp_path / "m.json", tmp_path / "pc.csv", device="cpu", progress=False, backend="spconv")
    assert m["scenes"] == 1 and m["points"] > 0
    assert [p.stem for p in (tmp_path / "pred").glob("*.txt")] == scenes_of(tiny_data["processed"], "val")
