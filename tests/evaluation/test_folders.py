"""Benchmark folders, read as a hostile user would hand them over (issue 26, items 4, 6, 10, 11): the
other task's ground truth, a scene file linked out of its folder, files far larger than a scene can
hold, a FIFO or a folder in place of a file, and ground truth of the wrong length."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from lgseg.cli import main
from lgseg.evaluation.instance_files import MAX_PREDICTED_INSTANCES


@pytest.fixture
def folders(tiny_raw, tmp_path):
    """Semantic and instance ground truth of tiny_raw's val scene (scene0002_00, 4 vertices: two
    instances, chair and table) and a perfect prediction of each."""
    gt, gt_instance = tmp_path / "gt", tmp_path / "gt_instance"
    assert main(["export-gt", "--raw", str(tiny_raw), "--out", str(gt)]) == 0
    assert main(["export-gt", "--task", "instance", "--raw", str(tiny_raw), "--out", str(gt_instance)]) == 0
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(gt / "scene0002_00.txt", pred)
    pred_instance = tmp_path / "pred_instance"
    (pred_instance / "pred_mask").mkdir(parents=True)
    (pred_instance / "pred_mask" / "a.txt").write_text("1\n1\n0\n0\n")
    (pred_instance / "scene0002_00.txt").write_text("pred_mask/a.txt 2 0.9\n")
    return {"gt": gt, "gt_instance": gt_instance, "pred": pred, "pred_instance": pred_instance, "tmp": tmp_path}


def evaluate(f, *args, task="semantic", pred=None, gt=None) -> list[str]:
    pred = pred or f["pred" if task == "semantic" else "pred_instance"]
    gt = gt or f["gt" if task == "semantic" else "gt_instance"]
    small = ["--min-region", "1"] if task == "instance" else []  # tiny_raw's instances have 1 or 2 vertices
    return ["evaluate", "--task", task, "--pred", str(pred), "--gt", str(gt), "--out", str(f["tmp"] / "m.json"),
            *small, *args]


def one_line_error(capsys, argv) -> str:
    """The command's error: one line (beside its progress bars), no traceback."""
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_the_other_tasks_ground_truth_is_refused_by_its_mark(folders, capsys):
    err = one_line_error(capsys, evaluate(folders, task="instance", gt=folders["gt"]))
    assert "holds semantic ground truth, not the instance ground truth --gt takes here" in err
    err = one_line_error(capsys, evaluate(folders, gt=folders["gt_instance"]))
    assert "holds instance ground truth, not the semantic ground truth --gt takes here" in err


@pytest.mark.parametrize("task", ["semantic", "instance"])
def test_unmarked_ground_truth_of_the_other_task_scores_no_class_and_is_refused(folders, capsys, task):
    other = folders["gt_instance" if task == "semantic" else "gt"]
    (other / ".lgseg-product").unlink()  # as ScanNet's scripts write it
    err = one_line_error(capsys, evaluate(folders, "--min-region", "100", task=task, gt=other))
    assert "nothing to score" in err
    assert not (folders["tmp"] / "m.json").exists()


@pytest.mark.parametrize("task", ["semantic", "instance"])
def test_a_scene_file_linked_out_of_its_folder_is_not_read_nor_quoted(folders, capsys, task, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for role in ("gt", "pred"):
        key = role if task == "semantic" else f"{role}_instance"
        victim = folders[key] / "scene0002_00.txt"
        saved = victim.read_bytes()
        victim.unlink()
        victim.symlink_to(secret)
        err = one_line_error(capsys, evaluate(folders, task=task))
        assert "leads outside its folder" in err and "root:x" not in err, err
        victim.unlink()
        victim.write_bytes(saved)
    assert main(evaluate(folders, task=task)) == 0


def test_render_does_not_read_a_prediction_linked_out_of_its_folder(folders, tiny_raw, capsys, tmp_path):
    processed = tmp_path / "processed"
    assert main(["preprocess", "--raw", str(tiny_raw), "--out", str(processed)]) == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    victim = folders["pred"] / "scene0002_00.txt"
    victim.unlink()
    victim.symlink_to(secret)
    err = one_line_error(capsys, ["render", "--scene", "scene0002_00", "--processed", str(processed),
                                  "--pred", str(folders["pred"]), "--out", str(tmp_path / "r.png")])
    assert "leads outside its folder" in err and "root:x" not in err


@pytest.mark.parametrize("task,role", [("semantic", "gt"), ("semantic", "pred"), ("instance", "gt"),
                                       ("instance", "pred")])
def test_a_30_gb_file_is_refused_by_its_size_without_reading_it(folders, capsys, task, role):
    key = role if task == "semantic" else f"{role}_instance"
    victim = folders[key] / "scene0002_00.txt"
    with open(victim, "r+b") as f:
        f.truncate(30 * 1024**3)  # sparse: no disk used
    start = time.perf_counter()
    err = one_line_error(capsys, evaluate(folders, task=task))
    assert time.perf_counter() - start < 10  # reading it would take minutes and 30 GB of memory
    assert "bytes, more than the" in err and "scene0002_00.txt" in err


def test_an_instance_summary_of_a_million_lines_is_refused_before_parsing(folders, capsys):
    summary = folders["pred_instance"] / "scene0002_00.txt"
    summary.write_text("pred_mask/missing.txt 2 0.5\n" * 1_000_000)
    start = time.perf_counter()
    err = one_line_error(capsys, evaluate(folders, task="instance"))
    assert time.perf_counter() - start < 10
    assert "bytes, more than the" in err or f"at most {MAX_PREDICTED_INSTANCES} instances" in err
    summary.write_text("pred_mask/missing.txt 2 0.5\n" * (MAX_PREDICTED_INSTANCES + 1))
    err = one_line_error(capsys, evaluate(folders, task="instance"))
    assert f"{MAX_PREDICTED_INSTANCES + 1} lines: at most {MAX_PREDICTED_INSTANCES} instances" in err


def test_a_missing_mask_is_found_before_the_masks_are_allocated(folders, capsys, monkeypatch):
    import numpy as np

    lines = "".join(f"pred_mask/m{k}.txt 2 0.5\n" for k in range(MAX_PREDICTED_INSTANCES))
    (folders["pred_instance"] / "scene0002_00.txt").write_text(lines)
    zeros = np.zeros
    monkeypatch.setattr(np, "zeros", lambda shape, *a, **k: pytest.fail(f"allocated {shape}")
                        if isinstance(shape, tuple) and shape[0] == MAX_PREDICTED_INSTANCES else zeros(shape, *a, **k))
    err = one_line_error(capsys, evaluate(folders, task="instance"))
    assert "line 1: mask file 'pred_mask/m0.txt' does not exist" in err


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("task", ["semantic", "instance"])
def test_a_fifo_or_a_folder_in_place_of_a_prediction_is_named_as_such(folders, capsys, kind, task):
    victim = folders["pred" if task == "semantic" else "pred_instance"] / "scene0002_00.txt"
    victim.unlink()
    os.mkfifo(victim) if kind == "fifo" else victim.mkdir()
    err = one_line_error(capsys, evaluate(folders, task=task))
    assert f"prediction file {'a FIFO' if kind == 'fifo' else 'a folder'}, not a file" in err
    assert "missing" not in err


def test_ground_truth_of_the_wrong_length_is_named_beside_the_mask(folders, capsys):
    gt = folders["gt_instance"] / "scene0002_00.txt"
    gt.write_text(gt.read_text() + "0\n0\n")  # 6 lines for a 4-vertex mesh
    err = one_line_error(capsys, evaluate(folders, task="instance"))
    assert f"4 lines but the ground truth {gt} has 6 lines" in err and "one of the two is not of this scene's mesh" in err
