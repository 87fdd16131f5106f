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
    # blank lines are no vertices (this read as an empty file before: a blank line anywhere was skipped)
    for text in ("\n  \n", "\n", "\r\n"):
        with pytest.raises(InputError, match=r"w\.txt: line 1 is blank"):
            read_benchmark_file(write(tmp_path / "w.txt", text))


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


# ---- one integer per line, exactly (input-handling review, item 9) -------------------------------

@pytest.mark.parametrize("text, problem", [
    ("1\n\n2\n", r"line 2 is blank"),
    ("1\n2\n\n", r"line 3 is blank"),  # one final line end is optional, a second one is a blank line
    ("\n1\n2\n", r"line 1 is blank"),
    ("1\r\n\r\n2\r\n", r"line 2 is blank"),
    ("1\n \t \n2\n", r"line 2 is blank"),
    ("1\n2 3\n4\n", r"line 2 is 2 integers: '2 3'"),
    ("1\t2\t3\n", r"line 1 is 3 integers: '1\\t2\\t3'"),
    ("1\n2\r3\n", r"line 2 is 2 integers: '2\\r3'"),  # a lone CR is no line end
    ("1\r\r\n2\n", r"line 1 is not an integer: '1\\r'"),
    ("1\n-\n3\n", r"line 2 is not an integer: '-'"),  # np.fromstring reads a lone sign as 0
    ("1\n+\n", r"line 2 is not an integer: '\+'"),
    ("1\n2-\n", r"line 2 is not an integer: '2-'"),
    ("1\n2\x003\n", r"line 2 is not an integer"),
    ("1\n" + "0" * 30 + "1" + "9" * 19 + "\n", r"line 2 is out of the int64 range"),
])
def test_a_line_that_is_not_one_integer_is_named(tmp_path, text, problem):
    path = write(tmp_path / "scene0000_00.txt", text)
    with pytest.raises(InputError, match=rf"^scene scene0000_00, {path}: {problem}"):
        read_benchmark_file(path, scene="scene0000_00")


def test_spaces_around_the_number_and_leading_zeros_are_tolerated(tmp_path):
    path = write(tmp_path / "s.txt", " 1\n2 \r\n\t3\t\n-0004\n+5")
    np.testing.assert_array_equal(read_benchmark_file(path), [1, 2, 3, -4, 5])
    zeros = write(tmp_path / "z.txt", "0" * 40 + "7\n")
    np.testing.assert_array_equal(read_benchmark_file(zeros), [7])


def test_the_fast_path_takes_only_the_exact_layout():
    """Whatever the vectorised parser accepts, the line-by-line one reads the same; on the rest it
    declines. Random short texts over the bytes that matter (signs, CR, spaces, int64's bounds)."""
    import random

    from lgseg.evaluation.benchmark import _parse_fast, _parse_strict

    rng = random.Random(0)
    pieces = [b"0", b"7", b"12", b"-", b"+", b"\n", b"\r", b"\r\n", b" ", b"\t", b"\x00", b"x",
              b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808"]
    taken = 0
    for _ in range(20000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 7)))
        fast = _parse_fast(data)
        try:
            strict = _parse_strict(None, data, None)
        except InputError:
            strict = None
        if fast is not None:
            taken += 1
            assert strict is not None and fast.tolist() == strict.tolist(), data
    assert taken > 1000
    exact = b"1\n-2\n1191\n0\n+3"
    assert _parse_fast(exact).tolist() == [1, -2, 1191, 0, 3]
    assert _parse_fast(exact.replace(b"\n", b"\r\n") + b"\r\n").tolist() == [1, -2, 1191, 0, 3]


def test_a_blank_line_in_a_prediction_is_named_not_a_vertex_count(tmp_path):
    pred_dir, gt_dir = make_dirs(tmp_path, {"scene0005_00": [WALL, WALL, CHAIR]}, {})
    write(pred_dir / "scene0005_00.txt", "1\n\n1\n2\n")  # 4 lines, the second blank
    with pytest.raises(InputError, match=r"scene scene0005_00, .*pred/scene0005_00\.txt: line 2 is blank"):
        evaluate_dirs(pred_dir, gt_dir, progress=False)
    write(pred_dir / "scene0005_00.txt", "1\n1 2\n")  # 3 numbers on 2 lines
    with pytest.raises(InputError, match=r"line 2 is 2 integers: '1 2'"):
        evaluate_dirs(pred_dir, gt_dir, progress=False)


# ---- the prediction folder is not the ground truth (input-handling review, item 9) --------------

def _gt(tmp_path, scenes=("scene0001_00", "scene0002_00")):
    for s in scenes:
        write_benchmark_file(tmp_path / "gt" / f"{s}.txt", np.array([WALL, CHAIR]))
    return tmp_path / "gt"


def test_the_ground_truth_folder_as_prediction_is_refused(tmp_path):
    gt = _gt(tmp_path)
    (tmp_path / "link").symlink_to(gt)
    for pred in (gt, tmp_path / "gt/.", tmp_path / "gt/../gt", tmp_path / "link"):
        with pytest.raises(InputError) as e:
            evaluate_dirs(pred, gt, progress=False)
        assert str(e.value).startswith(f"{pred}: the prediction folder is the ground-truth folder"), str(e.value)
        assert str(e.value).endswith(". pass the folder the predictions were written to (lgseg predict --out)")
    with pytest.raises(InputError, match=rf"link: the prediction folder is the ground-truth folder \({gt}\)"):
        evaluate_dirs(tmp_path / "link", gt, progress=False)


def test_a_prediction_folder_inside_the_ground_truth_or_around_it_is_refused(tmp_path):
    gt = _gt(tmp_path / "data")
    for s in ("scene0001_00", "scene0002_00"):
        write_benchmark_file(gt / "pred" / f"{s}.txt", np.array([WALL, WALL]))
    with pytest.raises(InputError, match=rf"pred: the prediction folder is inside the ground-truth folder {gt}\. "):
        evaluate_dirs(gt / "pred", gt, progress=False)
    for s in ("scene0001_00", "scene0002_00"):
        write_benchmark_file(tmp_path / "data" / f"{s}.txt", np.array([WALL, WALL]))
    with pytest.raises(InputError, match=rf"data: the prediction folder holds the ground-truth folder {gt}\. "):
        evaluate_dirs(tmp_path / "data", gt, progress=False)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_prediction_file_that_is_the_ground_truth_file_is_refused(tmp_path, link):
    gt = _gt(tmp_path)
    pred = tmp_path / "pred"
    pred.mkdir()
    write_benchmark_file(pred / "scene0001_00.txt", np.array([WALL, WALL]))
    target = pred / "scene0002_00.txt"
    target.symlink_to(gt / "scene0002_00.txt") if link == "symlink" else target.hardlink_to(gt / "scene0002_00.txt")
    with pytest.raises(InputError, match=rf"^scene scene0002_00, {target}: the prediction file is the ground-truth "
                                         rf"file {gt / 'scene0002_00.txt'}\. "):
        evaluate_dirs(pred, gt, progress=False)


def test_extra_prediction_files_are_one_warning_naming_them(tmp_path, caplog):
    gt = _gt(tmp_path, ["scene0001_00"])
    extra = [f"scene{i:04d}_00" for i in range(10, 17)]
    for s in ["scene0001_00"] + extra:
        write_benchmark_file(tmp_path / "pred" / f"{s}.txt", np.array([WALL, CHAIR]))
    with caplog.at_level("WARNING", logger="lgseg.evaluation.benchmark"):
        conf, n = evaluate_dirs(tmp_path / "pred", gt, progress=False)
    assert n == 1 and np.trace(conf) == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'pred'}: 7 prediction file(s) for scenes without ground truth in {gt}, not evaluated: "
        "scene0010_00, scene0011_00, scene0012_00, scene0013_00, scene0014_00 and 2 more"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="lgseg.evaluation.benchmark"):
        evaluate_dirs(tmp_path / "pred", gt, scenes=["scene0001_00"], progress=False)
    assert len(caplog.records) == 1  # a scene list changes what is scored, not what is extra
    for s in extra:
        (tmp_path / "pred" / f"{s}.txt").unlink()
    caplog.clear()
    with caplog.at_level("WARNING", logger="lgseg.evaluation.benchmark"):
        evaluate_dirs(tmp_path / "pred", gt, progress=False)
    assert not caplog.records
