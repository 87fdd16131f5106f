"""Benchmark-format files and evaluate_dirs on small temporary folders."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lgseg.errors import InputError
from lgseg.evaluation.benchmark import evaluate_dirs, read_benchmark_file, scene_confusion, write_benchmark_file
from lgseg.evaluation.confusion import confusion_matrix
from lgseg.evaluation.metrics import summarize, write_metrics
from lgseg.scannet.constants import NAME_TO_INDEX, VALID_CLASS_IDS, raw_to_index

# raw ScanNet ids of the classes used below
WALL, CHAIR, CUSHION, PAPER, MATTRESS = 1, 2, 39, 79, 1191


def idx(raw_id: int) -> int:
    return VALID_CLASS_IDS.index(raw_id)


def test_raw_ids_used_here():
    assert [idx(r) for r in (WALL, CHAIR, CUSHION, PAPER, MATTRESS)] == [
        NAME_TO_INDEX[n] for n in ("wall", "chair", "cushion", "paper", "mattress")
    ]


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_write_format_and_round_trip(tmp_path):
    ids = np.array([1, 1191, 0, -5, 2**40], dtype=np.int64)
    write_benchmark_file(tmp_path / "s.txt", ids)
    assert (tmp_path / "s.txt").read_text() == f"1\n1191\n0\n-5\n{2**40}\n"
    back = read_benchmark_file(tmp_path / "s.txt")
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, ids)


def test_round_trip_large_random(tmp_path):
    ids = np.random.default_rng(0).integers(0, 1200, 20000).astype(np.int32)
    write_benchmark_file(tmp_path / "s.txt", ids)
    np.testing.assert_array_equal(read_benchmark_file(tmp_path / "s.txt"), ids)


def test_empty_and_whitespace_only_files(tmp_path):
    write_benchmark_file(tmp_path / "e.txt", np.array([], dtype=np.int64))
    assert read_benchmark_file(tmp_path / "e.txt").size == 0
    assert read_benchmark_file(write(tmp_path / "w.txt", "\n  \n")).size == 0


def test_tolerates_crlf_and_missing_final_newline(tmp_path):
    np.testing.assert_array_equal(read_benchmark_file(write(tmp_path / "a.txt", "3\r\n 4\r\n5")), [3, 4, 5])


@pytest.mark.parametrize("bad", ["2.5", "abc", "1e3", "99999999999999999999999"])
def test_non_integer_line_names_file_and_line(tmp_path, bad):
    path = write(tmp_path / "scene0000_00.txt", f"1\n2\n{bad}\n4\n")
    with pytest.raises(InputError) as e:
        read_benchmark_file(path, scene="scene0000_00")
    msg = str(e.value)
    assert "line 3" in msg and bad in msg and str(path) in msg and "scene0000_00" in msg
    assert e.value.path == path


def test_unreadable_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_benchmark_file(tmp_path / "nope.txt")


def test_write_rejects_non_integer_ids(tmp_path):
    with pytest.raises(ValueError, match="integer"):
        write_benchmark_file(tmp_path / "x.txt", np.array([1.5]))
    assert not (tmp_path / "x.txt").exists()


def make_dirs(tmp_path, gt: dict, pred: dict):
    for scene, ids in gt.items():
        write_benchmark_file(tmp_path / "gt" / f"{scene}.txt", np.array(ids))
    for scene, ids in pred.items():
        write_benchmark_file(tmp_path / "pred" / f"{scene}.txt", np.array(ids))
    (tmp_path / "pred").mkdir(exist_ok=True)
    return tmp_path / "pred", tmp_path / "gt"


def test_identical_predictions_score_100(tmp_path):
    rng = np.random.default_rng(3)
    gt = {f"scene{i:04d}_00": rng.choice([0, WALL, CHAIR, CUSHION, PAPER, MATTRESS], 300) for i in range(3)}
    pred_dir, gt_dir = make_dirs(tmp_path, gt, gt)
    conf, n = evaluate_dirs(pred_dir, gt_dir, progress=False)
    out = summarize(conf, scenes=n)
    assert n == 3
    assert out["all"]["miou"] == pytest.approx(100.0)
    assert out["all"]["precision"] == pytest.approx(100.0) and out["all"]["recall"] == pytest.approx(100.0)
    assert out["all"]["miou_200"] == pytest.approx(100.0 * 5 / 200)
    assert out["points"] == sum(int(np.sum(v != 0)) for v in gt.values())


def test_raw_ids_mapped_like_the_benchmark(tmp_path):
    # GT 0 and unknown ids are ignored; predictions 0 / unknown / negative / huge are misses
    gt = {"scene0001_00": [WALL, WALL, CHAIR, 0, 12345],
          "scene0002_00": [CHAIR, CUSHION, CUSHION, PAPER]}
    pred = {"scene0001_00": [WALL, CHAIR, 0, WALL, CHAIR],
            "scene0002_00": [CHAIR, -3, 2**40, WALL]}
    pred_dir, gt_dir = make_dirs(tmp_path, gt, pred)
    conf, n = evaluate_dirs(pred_dir, gt_dir, progress=False)
    nonzero = {(int(r), int(c)): int(conf[r, c]) for r, c in zip(*np.nonzero(conf))}
    assert nonzero == {
        (idx(WALL), idx(WALL)): 1, (idx(WALL), idx(CHAIR)): 1,
        (idx(CHAIR), 200): 1, (idx(CHAIR), idx(CHAIR)): 1,
        (idx(CUSHION), 200): 2, (idx(PAPER), idx(WALL)): 1,
    }
    assert n == 2
    out = summarize(conf, scenes=n)
    # wall: TP 1, FP 1 (paper), FN 1 -> 1/3; chair: TP 1, FP 1 (wall), FN 1 -> 1/3; cushion, paper: 0
    assert out["head"]["miou"] == pytest.approx(100 / 3)
    assert out["common"]["miou"] == 0.0 and out["tail"]["miou"] == 0.0
    assert out["all"]["miou"] == pytest.approx(100 * (2 / 3) / 4)


def test_fast_raw_path_equals_raw_to_index_then_confusion():
    rng = np.random.default_rng(5)
    pool = np.concatenate([VALID_CLASS_IDS, [0, -1, -3, 1192, 5000, 2**40, -(2**62)]])
    gt, pred = rng.choice(pool, 5000), rng.choice(pool, 5000)
    expected = confusion_matrix(raw_to_index(gt), raw_to_index(pred))
    assert expected[:, 200].sum() > 0 and expected.sum() < 5000  # both kinds of non-200 ids occur
    np.testing.assert_array_equal(scene_confusion(gt, pred), expected)
    gt32, pred32 = np.clip(gt, -5, 3000).astype(np.int32), np.clip(pred, -5, 3000).astype(np.int32)
    np.testing.assert_array_equal(scene_confusion(gt32, pred32),
                                  confusion_matrix(raw_to_index(gt32), raw_to_index(pred32)))


def test_scene_subset(tmp_path):
    gt = {"a": [WALL, WALL], "b": [CHAIR]}
    pred_dir, gt_dir = make_dirs(tmp_path, gt, {"a": [WALL, 0]})
    conf, n = evaluate_dirs(pred_dir, gt_dir, scenes=["a"], progress=False)
    assert n == 1 and conf.sum() == 2 and conf[idx(WALL), 200] == 1


def test_missing_predictions_reported_before_reading(tmp_path):
    gt = {"scene0001_00": [WALL], "scene0002_00": [WALL], "scene0003_00": [WALL]}
    pred_dir, gt_dir = make_dirs(tmp_path, gt, {})
    write(pred_dir / "scene0001_00.txt", "not a number\n")  # would fail if it were read first
    with pytest.raises(InputError) as e:
        evaluate_dirs(pred_dir, gt_dir, progress=False)
    msg = str(e.value)
    assert "scene0002_00" in msg and str(pred_dir / "scene0002_00.txt") in msg
    assert "2 of 3" in msg and "scene0003_00" in msg
    assert e.value.scene == "scene0002_00"


def test_vertex_count_mismatch_names_scene_counts_and_files(tmp_path):
    pred_dir, gt_dir = make_dirs(tmp_path, {"scene0007_00": [WALL] * 4}, {"scene0007_00": [WALL] * 3})
    with pytest.raises(InputError) as e:
        evaluate_dirs(pred_dir, gt_dir, progress=False)
    msg = str(e.value)
    assert "scene0007_00" in msg and "3 predicted" in msg and "has 4" in msg
    assert str(pred_dir / "scene0007_00.txt") in msg and str(gt_dir / "scene0007_00.txt") in msg


def test_bad_line_during_evaluation_names_scene(tmp_path):
    pred_dir, gt_dir = make_dirs(tmp_path, {"scene0009_00": [WALL, WALL]}, {})
    write(pred_dir / "scene0009_00.txt", "1\nwall\n")
    with pytest.raises(InputError, match=r"scene scene0009_00, .*line 2 is not an integer"):
        evaluate_dirs(pred_dir, gt_dir, progress=False)


def test_empty_or_missing_gt_dir(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    with pytest.raises(InputError, match="no ground-truth"):
        evaluate_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        evaluate_dirs(tmp_path / "pred", tmp_path / "absent", progress=False)


def test_missing_pred_dir(tmp_path):
    pred_dir, gt_dir = make_dirs(tmp_path, {"a": [WALL]}, {})
    pred_dir.rmdir()
    with pytest.raises(InputError, match="prediction directory does not exist"):
        evaluate_dirs(pred_dir, gt_dir, progress=False)


def _no_nan(token):
    raise AssertionError(f"non-JSON constant {token}")


def test_end_to_end_outputs(tmp_path, capsys):
    # only head classes present: common and tail have no defined class -> null in the JSON
    pred_dir, gt_dir = make_dirs(tmp_path, {"s": [WALL, CHAIR, 0]}, {"s": [WALL, WALL, CHAIR]})
    conf, n = evaluate_dirs(pred_dir, gt_dir, progress=True)
    assert "evaluate" in capsys.readouterr().err  # the tqdm bar
    write_metrics(conf, tmp_path / "out" / "metrics.json", tmp_path / "out" / "per_class.csv", scenes=n)
    data = json.loads((tmp_path / "out" / "metrics.json").read_text(), parse_constant=_no_nan)
    assert data == {
        "all": {"miou": pytest.approx(25.0), "miou_200": pytest.approx(0.25),
                "precision": pytest.approx(50.0), "recall": pytest.approx(50.0)},
        "head": {"miou": pytest.approx(25.0), "precision": pytest.approx(50.0), "recall": pytest.approx(50.0)},
        "common": {"miou": None, "precision": None, "recall": None},
        "tail": {"miou": None, "precision": None, "recall": None},
        "scenes": 1, "points": 2,
    }
    with open(tmp_path / "out" / "per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 200
    assert list(rows[0]) == ["id", "name", "split", "iou", "precision", "recall", "tp", "fp", "fn"]
    assert rows[0]["name"] == "wall" and float(rows[0]["iou"]) == pytest.approx(50.0)
    assert rows[1]["name"] == "chair" and rows[1]["iou"] == "0.0" and rows[1]["precision"] == ""
    assert rows[2]["iou"] == ""
