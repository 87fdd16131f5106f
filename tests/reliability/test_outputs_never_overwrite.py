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
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=None, num_classes=200, offsets=True)
    save_model(d / "insseg.pt", net, {"kind": "insseg", "task": "instance", "feature_dim": net.feature_dim,
                                      "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "num_classes": 200,
                                      "text": None, "voxel_size": 0.1})
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
    assert {"pred": "holds semantic predictions, not semantic ground truth",
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


def test_a_ground_truth_folder_without_lgseg_mark_is_replaced_only_with_force(world, capsys, tmp_path):
    """Ground truth from ScanNet's or Pointcept's scripts (or copied with ``cp gt/*.txt``) carries no mark
    and reads like predictions: predict refuses it (it would score 100 afterwards), --force replaces it."""
    copy = tmp_path / "copy"
    shutil.copytree(world / "gt", copy)
    (copy / ".lgseg-product").unlink()
    capsys.readouterr()
    argv = ["predict", "--checkpoint", str(world / "model.pt"), "--data", str(world / "processed"),
            "--out", str(copy), "--device", "cpu"]
    for task in ([], ["--task", "instance"]):
        err = refused(capsys, argv + task, copy)
        assert "without lgseg's mark of" in err and "--force" in err
    assert main(argv + ["--force"]) == 0
    assert (copy / ".lgseg-product").read_text().strip() == "semantic predictions"
    assert main(argv) == 0  # now lgseg's own: replaced without --force


@pytest.mark.parametrize("task", ["semantic", "instance"])
@pytest.mark.parametrize("source", ["raw", "processed"])
def test_export_gt_into_its_earlier_output_keeps_what_it_did_not_write(world, capsys, tmp_path, task, source):
    out = tmp_path / "gt"
    argv = ["export-gt", "--task", task, f"--{source}", str(world / source), "--out", str(out)]
    assert main(argv) == 0
    (out / "NOTES.md").write_text("my notes\n")
    (out / "figures").mkdir()
    (out / "figures" / "a.png").write_bytes(b"png")
    capsys.readouterr()
    err = refused(capsys, argv, out)
    assert "also entries it does not consist of (NOTES.md, figures/)" in err
    (out / "NOTES.md").unlink()
    shutil.rmtree(out / "figures")
    assert main(argv) == 0  # only its own files: replaced


def test_predict_and_export_gt_write_through_an_output_folder_that_is_a_link(world, tmp_path, capsys):
    """An output folder linked to another disk: the link's target is replaced, the link kept."""
    argv = ["--data", str(world / "processed"), "--device", "cpu"]
    for name, command in [("pred", ["predict", "--checkpoint", str(world / "model.pt"), *argv]),
                          ("inst", ["predict", "--task", "instance", "--checkpoint", str(world / "insseg.pt"), *argv]),
                          ("gt_inst", ["export-gt", "--task", "instance", "--raw", str(world / "raw")])]:
        target, link = tmp_path / f"{name}_disk", tmp_path / name
        assert main([*command, "--out", str(target)]) == 0  # an earlier output
        link.symlink_to(target, target_is_directory=True)
        assert main([*command, "--out", str(link)]) == 0, capsys.readouterr().err
        assert link.is_symlink() and link.resolve() == target.resolve()
        assert any(target.glob("scene*.txt"))
