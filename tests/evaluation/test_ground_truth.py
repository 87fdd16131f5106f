import shutil

import pytest

from lgseg.evaluation.benchmark import evaluate_dirs, read_benchmark_file
from lgseg.evaluation.ground_truth import export_ground_truth
from lgseg.evaluation.metrics import summarize


def test_export_gt_writes_raw_ids_per_vertex(tiny_raw, tmp_path):
    n = export_ground_truth(tiny_raw, tmp_path / "gt", split="train", progress=False)
    assert n == 2
    gt = read_benchmark_file(tmp_path / "gt" / "scene0000_00.txt")
    # chair(2) chair, sofa->couch(6), ceiling id 12 is not one of the 200 -> 0, not in tsv -> 0,
    # no group -> 0, table (4) overwrote chair
    assert gt.tolist() == [2, 2, 6, 0, 0, 0, 4, 4]


def test_gt_scored_against_itself_is_perfect(tiny_raw, tmp_path):
    export_ground_truth(tiny_raw, tmp_path / "gt", split="train", progress=False)
    shutil.copytree(tmp_path / "gt", tmp_path / "pred")  # a folder scored against itself is refused
    (tmp_path / "pred" / ".lgseg-product").unlink()  # and so is one marked as ground truth
    conf, scenes = evaluate_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)
    s = summarize(conf, scenes)
    assert scenes == 2 and s["points"] == 9
    assert s["all"]["miou"] == s["all"]["precision"] == s["all"]["recall"] == 100.0
    assert s["all"]["miou_200"] == pytest.approx(100.0 * 5 / 200)  # 5 classes present


def test_export_test_split_refused(tiny_raw, tmp_path):
    with pytest.raises(ValueError, match="test scenes have no public annotations"):
        export_ground_truth(tiny_raw, tmp_path / "gt", split="test", progress=False)
