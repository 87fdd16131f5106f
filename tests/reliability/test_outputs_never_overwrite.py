"""No command writes over one of its inputs or over another command's product (ground truth,
predictions, processed scenes, raw scans): it says what it found and how to go on, and the files
stay as they were."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lgseg.cli import main


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("world")
    assert main(["synth", "--out", str(d / "raw"), "--scenes", "5", "--seed", "2"]) == 0
    assert main(["preprocess", "--raw", str(d / "raw"), "--out", str(d / "processed")]) == 0
    assert main(["export-gt", "--raw", str(d / "raw"), "--out", str(d / "gt")]) == 0
    assert main(["export-gt", "--task", "instance", "--raw", str(d / "raw"), "--out", str(d / "gt_instance")]) == 0
    from lgseg.engine.checkpoint import save_model
    from lgseg.models import build_model

    torch.manual_seed(0)
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=None, num_classes=200)
    save_model(d / "model.pt", net, {"kind": "finetune", "model": {"name": "Res16UNet14S", "backend": "minkowski"},
                                     "feature_dim": net.feature_dim, "num_classes": 200, "text": None,
                                     "voxel_size": 0.1})
    assert main(["predict", "--checkpoint", str(d / "model.pt"), "--data", str(d / "processed"),
                 "--out", str(d / "pred"), "--device", "cpu"]) == 0
    return d


def refused(capsys, argv: list[str], *folders: Path) -> str:
    before = [snapshot(f) if f.is_dir() else f.read_bytes() for f in folders]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert [snapshot(f) if f.is_dir() else f.read_bytes() for f in folders] == before  # nothing touched
    return err


def test_predict_over_ground_truth_is_refused(world, capsys):
    err = refused(capsys, ["predict", "--checkpoint", str(world / "model.pt"), "--data", str(world / "processed"),
                           "--out", str(world / "gt"), "--device", "cpu"], world / "gt")
    assert "holds semantic ground truth: writing predictions there would replace it" in err


@pytest.mark.parametrize("into", ["pred", "processed", "gt_instance"])
def test_export_gt_over_predictions_processed_scenes_or_other_ground_truth_is_refused(world, capsys, into):
    err = refused(capsys, ["export-gt", "--raw", str(world / "raw"), "--out", str(world / into)], world / into)
    assert {"pred": "holds files lgseg did not write as semantic ground truth",
            "processed": "holds processed scenes, not semantic ground truth",
            "gt_instance": "holds instance ground truth, not semantic ground truth"}[into] in err


def test_export_gt_over_its_own_earlier_output_replaces_it(world):
    assert main(["export-gt", "--raw", str(world / "raw"), "--out", str(world / "gt")]) == 0


def test_export_gt_into_its_input_is_refused(world, capsys):
    err = refused(capsys, ["export-gt", "--processed", str(world / "processed"), "--out",
                           str(world / "processed" / "val")], world / "processed")
    assert "lies inside" in err and "an input of this command" in err


def test_evaluate_writes_over_no_input_and_no_file_it_did_not_write(world, capsys, tmp_path):
    scene_file = next((world / "gt").glob("*.txt"))
    base = ["evaluate", "--pred", str(world / "pred"), "--gt", str(world / "gt")]
    err = refused(capsys, [*base, "--out", str(scene_file)], world / "gt")
    assert "lies inside" in err
    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps(["my", "notes"]))
    err = refused(capsys, [*base, "--out", str(tmp_path / "m.json"), "--per-class", str(notes)], notes)
    assert "exists and is not a per-class CSV lgseg wrote" in err
    assert main([*base, "--out", str(tmp_path / "m.json")]) == 0
    assert main([*base, "--out", str(tmp_path / "m.json")]) == 0  # its own earlier metrics: replaced


def test_preprocess_and_synth_refuse_each_others_folders(world, capsys):
    err = refused(capsys, ["preprocess", "--raw", str(world / "raw"), "--out", str(world / "raw")], world / "raw")
    assert "is " in err and "an input of this command" in err
    err = refused(capsys, ["synth", "--out", str(world / "processed"), "--scenes", "3"], world / "processed")
    assert "holds processed scenes, not raw scans" in err
    err = refused(capsys, ["preprocess", "--raw", str(world / "raw"), "--out", str(world / "gt")], world / "gt")
    assert "holds semantic ground truth, not processed scenes" in err


def test_render_never_writes_into_its_inputs(world, capsys):
    scene = sorted(p.name for p in (world / "processed" / "val").iterdir())[0]
    target = world / "processed" / "val" / scene / "coord.npy"
    err = refused(capsys, ["render", "--scene", scene, "--processed", str(world / "processed"),
                           "--out", str(target)], world / "processed")
    assert "lies inside" in err


def test_a_copied_ground_truth_folder_without_its_mark_is_still_no_prediction_folder(world, capsys, tmp_path):
    """Ground truth and predictions read alike: only the mark tells them apart, so an unmarked folder of
    <scene>.txt files is a prediction folder to predict (it replaces exactly those files)."""
    copy = tmp_path / "copy"
    shutil.copytree(world / "gt", copy)
    (copy / ".lgseg-product").unlink()
    assert main(["predict", "--checkpoint", str(world / "model.pt"), "--data", str(world / "processed"),
                 "--out", str(copy), "--device", "cpu"]) == 0
