"""The instance benchmark's files: ground-truth encoding and export (raw scans and processed folders
agree), the prediction layout's round trip, and every refusal of the prediction reader as one line
naming the file (and line)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lgseg.errors import InputError
from lgseg.evaluation.ground_truth import export_instance_ground_truth
from lgseg.evaluation.instance_files import (
    InstancePrediction,
    encode_instance_gt,
    instance_gt_from_processed,
    read_instance_gt,
    read_instance_prediction,
    write_instance_gt,
    write_instance_prediction,
)
from lgseg.prepare import prepare
from lgseg.scannet.constants import NAME_TO_INDEX
from lgseg.synthetic import generate

SCENE = "scene0000_00"
CHAIR, TABLE = NAME_TO_INDEX["chair"], NAME_TO_INDEX["table"]  # class indices; raw ids 2 and 4


# ---- ground truth ----------------------------------------------------------------------------------

def test_encoding_by_hand():
    segment = np.array([CHAIR, CHAIR, -1, -1, TABLE, -1, TABLE], dtype=np.int16)
    instance = np.array([0, 0, 4, -1, 7, -1, -1], dtype=np.int32)
    # chair segGroup 0 -> 2 * 1000 + 1; no class but segGroup 4 -> 0 * 1000 + 5 (void); no group -> 0;
    # table segGroup 7 -> 4 * 1000 + 8; a class without an instance -> 0
    assert encode_instance_gt(segment, instance).tolist() == [2001, 2001, 5, 0, 4008, 0, 0]
    assert encode_instance_gt(segment, instance).dtype == np.int64


def test_encoding_holds_999_instances_not_1000():
    assert encode_instance_gt(np.array([CHAIR]), np.array([998])).tolist() == [2999]
    with pytest.raises(ValueError, match=r"instance id 1000 \(segGroup id 999\) does not fit"):
        encode_instance_gt(np.array([CHAIR]), np.array([999]))


def test_encoding_refuses_bad_arrays():
    with pytest.raises(ValueError, match="same length"):
        encode_instance_gt(np.zeros(3, np.int16), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="not class indices"):
        encode_instance_gt(np.array([200]), np.array([0]))


def test_gt_file_round_trip(tmp_path):
    values = np.array([0, 2001, 1191999, 5], dtype=np.int64)
    write_instance_gt(tmp_path / "s.txt", values)
    assert (tmp_path / "s.txt").read_text() == "0\n2001\n1191999\n5\n"
    np.testing.assert_array_equal(read_instance_gt(tmp_path / "s.txt"), values)


def test_bad_gt_file_named_with_its_line(tmp_path):
    (tmp_path / "s.txt").write_text("2001\nchair\n")
    with pytest.raises(InputError, match=r"s.txt: line 2 is not an integer: 'chair'. export the instance ground "
                                         r"truth again"):
        read_instance_gt(tmp_path / "s.txt", scene=SCENE)


def test_export_from_raw_by_hand(tiny_raw, tmp_path):
    # scene0000_00 (conftest): chair group 0 on vertices 0,1; couch (raw 6) group 1; ceiling (raw 12,
    # not one of the 200) group 2 and 'mystery' (not in the tsv) group 3 -> void ids 3 and 4; vertex 5
    # in no group; vertices 6,7 chair then overwritten by table group 4
    assert export_instance_ground_truth(tiny_raw, tmp_path / "gt", split="train", progress=False) == 2
    assert read_instance_gt(tmp_path / "gt" / f"{SCENE}.txt").tolist() == [2001, 2001, 6002, 3, 4, 0, 4005, 4005]


def same_files(a, b) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


@pytest.mark.parametrize("split", ["train", "val"])
def test_export_from_raw_equals_export_from_processed(tiny_raw, tmp_path, split):
    prepare(tiny_raw, tmp_path / "processed", progress=False)
    n_raw = export_instance_ground_truth(tiny_raw, tmp_path / "from_raw", split=split, progress=False)
    n_processed = instance_gt_from_processed(tmp_path / "processed", tmp_path / "from_processed", split=split,
                                             progress=False)
    assert n_raw == n_processed > 0
    assert same_files(tmp_path / "from_raw", tmp_path / "from_processed")


def test_export_equal_on_a_synthetic_world(tmp_path):
    generate(tmp_path / "raw", num_scenes=4, seed=0, workers=1, progress=False)
    prepare(tmp_path / "raw", tmp_path / "processed", progress=False)
    for split in ("train", "val"):
        export_instance_ground_truth(tmp_path / "raw", tmp_path / f"raw_{split}", split=split, progress=False)
        instance_gt_from_processed(tmp_path / "processed", tmp_path / f"proc_{split}", split=split, progress=False)
        assert same_files(tmp_path / f"raw_{split}", tmp_path / f"proc_{split}")
    values = np.concatenate([read_instance_gt(p) for p in (tmp_path / "raw_val").glob("*.txt")])
    assert (values >= 2000).any() and ((values > 0) & (values < 1000)).any()  # classes of the 200 and void ones


def test_export_replaces_the_folder_and_leaves_nothing_half_written(tiny_raw, tmp_path):
    prepare(tiny_raw, tmp_path / "processed", progress=False)
    out = tmp_path / "gt"
    instance_gt_from_processed(tmp_path / "processed", out, split="val", progress=False)
    (out / "scene0099_00.txt").write_text("0\n")  # an earlier export's folder (its mark says so), a scene gone stale
    instance_gt_from_processed(tmp_path / "processed", out, split="train", progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".lgseg-product", "scene0000_00.txt", "scene0001_00.txt"]
    # a broken second scene: the export fails naming it, the previous folder stays as it was
    np.save(tmp_path / "processed/train/scene0001_00/instance.npy", np.array([5000], dtype=np.int32))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InputError, match="scene scene0001_00") as e:
        instance_gt_from_processed(tmp_path / "processed", out, split="train", progress=False)
    assert "\n" not in str(e.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt", "processed", "raw"]  # no temporary left


def test_export_of_test_split_refused(tiny_raw, tmp_path):
    with pytest.raises(ValueError, match="test scenes have no public annotations"):
        export_instance_ground_truth(tiny_raw, tmp_path / "gt", split="test", progress=False)
    with pytest.raises(ValueError, match="test scenes have no public annotations"):
        instance_gt_from_processed(tmp_path, tmp_path / "gt", split="test", progress=False)


def test_export_of_an_empty_split_refused(tmp_path):
    with pytest.raises(InputError, match="no scene folders in the val split"):
        instance_gt_from_processed(tmp_path / "processed", tmp_path / "gt", progress=False)


# ---- predictions: writing and reading back ---------------------------------------------------------

def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    masks = rng.random((4, 500)) < 0.3
    labels = np.array([2, 1191, 1, 3])  # wall and floor are valid input
    scores = np.array([0.1 + 0.2, 1e-300, -3.5, 1 / 3])
    write_instance_prediction(tmp_path, SCENE, masks, labels, scores)
    pred = read_instance_prediction(tmp_path, SCENE, 500)
    np.testing.assert_array_equal(pred.masks, masks)
    np.testing.assert_array_equal(pred.label_ids, labels)
    np.testing.assert_array_equal(pred.scores, scores)  # exactly: the confidences round-trip
    assert pred.mask_files == [f"pred_mask/{SCENE}_{k:03d}.txt" for k in range(4)]
    assert pred.masks.dtype == bool and pred.label_ids.dtype == np.int64 and pred.scores.dtype == np.float64


def test_written_layout(tmp_path):
    masks = np.array([[True, False, True], [False, False, True]])
    write_instance_prediction(tmp_path, SCENE, masks, np.array([2, 4]), np.array([0.9, 0.25]))
    assert (tmp_path / f"{SCENE}.txt").read_text() == (f"pred_mask/{SCENE}_000.txt 2 0.9\n"
                                                       f"pred_mask/{SCENE}_001.txt 4 0.25\n")
    assert (tmp_path / "pred_mask" / f"{SCENE}_000.txt").read_bytes() == b"1\n0\n1\n"
    assert (tmp_path / "pred_mask" / f"{SCENE}_001.txt").read_bytes() == b"0\n0\n1\n"


def test_no_instances(tmp_path):
    write_instance_prediction(tmp_path, SCENE, np.zeros((0, 7), bool), np.zeros(0, np.int64), np.zeros(0))
    assert (tmp_path / f"{SCENE}.txt").read_text() == ""
    pred = read_instance_prediction(tmp_path, SCENE, 7)
    assert pred.masks.shape == (0, 7) and len(pred) == 0


def test_writer_refuses_bad_input(tmp_path):
    masks = np.ones((1, 3), bool)
    with pytest.raises(ValueError, match="bool"):
        write_instance_prediction(tmp_path, SCENE, masks.astype(np.uint8), np.array([2]), np.array([0.5]))
    with pytest.raises(ValueError, match="not ScanNet200 raw ids"):
        write_instance_prediction(tmp_path, SCENE, masks, np.array([12]), np.array([0.5]))
    with pytest.raises(ValueError, match="finite"):
        write_instance_prediction(tmp_path, SCENE, masks, np.array([2]), np.array([np.nan]))
    with pytest.raises(InputError, match="not a ScanNet scene id"):
        write_instance_prediction(tmp_path, "../x", masks, np.array([2]), np.array([0.5]))


def write_pred(folder, lines: str, masks: dict[str, bytes] | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{SCENE}.txt").write_text(lines)
    for rel, data in (masks or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def test_general_mask_text(tmp_path):
    # other integers, CRLF, padding, no final newline: any non-zero value is in the instance
    folder = write_pred(tmp_path, "m/a.txt 2 0.5\r\nm/b.txt 4 1e-3\n",
                        {"m/a.txt": b"2\r\n-1\r\n0\r\n00\r\n", "m/b.txt": b" 1 \n0\n0\n7"})
    pred = read_instance_prediction(folder, SCENE, 4)
    assert pred.masks.tolist() == [[True, True, False, False], [True, False, False, True]]
    assert pred.scores.tolist() == [0.5, 0.001]


# ---- predictions: each refusal, one line naming the file and line ----------------------------------

MASK = "pred_mask/a.txt"
GOOD = b"1\n0\n1\n"


@pytest.mark.parametrize("lines, problem", [
    (f"{MASK} 2\n", "line 1: 2 space-separated fields, not 3"),
    (f"{MASK} 2 0.5 extra\n", "line 1: 4 space-separated fields, not 3"),
    (f"{MASK}  2 0.5\n", "line 1: 4 space-separated fields, not 3"),
    (f"{MASK}\t2 0.5\n", "line 1: 2 space-separated fields, not 3"),
    (f"{MASK} 2 0.5\n\npred_mask/b.txt 2 0.5\n", "line 2: blank line"),
    (f"{MASK} 2 0.5\n\n", "line 2: blank line"),
    (" 2 0.5\n", "line 1: empty mask path"),
    (f"{MASK} 2.0 0.5\n", "line 1: label id '2.0' is not an integer"),
    (f"{MASK} chair 0.5\n", "line 1: label id 'chair' is not an integer"),
    (f"{MASK} 12 0.5\n", "line 1: label id 12 is not one of the 200 ScanNet200 ids"),
    (f"{MASK} 0 0.5\n", "line 1: label id 0 is not one of the 200 ScanNet200 ids"),
    (f"{MASK} 2 nan\n", "line 1: confidence 'nan' is not a finite number"),
    (f"{MASK} 2 -inf\n", "line 1: confidence '-inf' is not a finite number"),
    (f"{MASK} 2 high\n", "line 1: confidence 'high' is not a finite number"),
    (f"{MASK} 2 0.5\npred_mask/b.txt 2 0.5\n{MASK} 4 0.5\n",
     "line 3: mask file 'pred_mask/a.txt' is already listed on line 1"),
    (f"{MASK} 2 0.5\npred_mask/../pred_mask/a.txt 4 0.5\n",
     "line 2: mask file 'pred_mask/../pred_mask/a.txt' is already listed on line 1"),
    (f"{MASK} 2 0.5\npred_mask/c.txt 2 0.5\n", "line 2: mask file 'pred_mask/c.txt' does not exist"),
])
def test_refused_lines(tmp_path, lines, problem):
    folder = write_pred(tmp_path / "pred", lines, {MASK: GOOD, "pred_mask/b.txt": GOOD})
    with pytest.raises(InputError) as e:
        read_instance_prediction(folder, SCENE, 3)
    message = str(e.value)
    assert problem in message and str(folder / f"{SCENE}.txt") in message and "\n" not in message


def test_refused_absolute_mask_path(tmp_path):
    folder = write_pred(tmp_path / "pred", f"{tmp_path / 'pred' / MASK} 2 0.5\n", {MASK: GOOD})
    with pytest.raises(InputError, match=r"scene0000_00.txt: line 1: mask path '/.*' is absolute"):
        read_instance_prediction(folder, SCENE, 3)


def test_refused_mask_outside_the_folder(tmp_path):
    (tmp_path / "outside.txt").write_bytes(GOOD)
    folder = write_pred(tmp_path / "pred", "../outside.txt 2 0.5\n")
    with pytest.raises(InputError, match=r"line 1: mask path '\.\./outside\.txt' leads outside the prediction folder"):
        read_instance_prediction(folder, SCENE, 3)
    # a folder whose name merely starts like the prediction folder's: the official's string prefix
    # test would let it pass
    (tmp_path / "pred2").mkdir()
    (tmp_path / "pred2" / "m.txt").write_bytes(GOOD)
    write_pred(folder, "../pred2/m.txt 2 0.5\n")
    with pytest.raises(InputError, match="leads outside the prediction folder"):
        read_instance_prediction(folder, SCENE, 3)


def test_refused_symlink_out_of_the_folder(tmp_path):
    (tmp_path / "outside.txt").write_bytes(GOOD)
    folder = write_pred(tmp_path / "pred", f"{MASK} 2 0.5\n")
    (folder / "pred_mask").mkdir()
    os.symlink(tmp_path / "outside.txt", folder / MASK)
    with pytest.raises(InputError, match=r"line 1: mask path 'pred_mask/a.txt' leads outside the prediction folder "
                                         r"\(to .*outside.txt\)"):
        read_instance_prediction(folder, SCENE, 3)


def test_symlink_inside_the_folder_is_fine(tmp_path):
    folder = write_pred(tmp_path / "pred", f"{MASK} 2 0.5\n", {"pred_mask/real.txt": GOOD})
    os.symlink("real.txt", folder / MASK)
    assert read_instance_prediction(folder, SCENE, 3).masks.tolist() == [[True, False, True]]


@pytest.mark.parametrize("data, problem", [
    (b"1\n0\n", "2 lines but the mesh has 3 vertices"),
    (b"1\n0\n1\n1\n", "4 lines but the mesh has 3 vertices"),
    (b"1\nx\n0\n", "line 2 is not an integer: 'x'"),
    (b"1\n0.5\n0\n", "line 2 is not an integer: '0.5'"),
    (b"1 0\n1\n", "line 1 is 2 integers: '1 0'; a mask holds one integer per line"),
    (b"1\n\n0\n1\n", "line 2 is blank; a mask holds one integer per line"),
])
def test_refused_masks(tmp_path, data, problem):
    folder = write_pred(tmp_path / "pred", f"{MASK} 2 0.5\n", {MASK: data})
    with pytest.raises(InputError) as e:
        read_instance_prediction(folder, SCENE, 3)
    message = str(e.value)
    assert problem in message and str(folder / MASK) in message and "\n" not in message


def test_mask_that_is_a_directory_refused(tmp_path):
    folder = write_pred(tmp_path / "pred", f"{MASK} 2 0.5\n")
    (folder / MASK).mkdir(parents=True)
    with pytest.raises(InputError, match="not a regular file"):
        read_instance_prediction(folder, SCENE, 3)


def test_missing_prediction_file(tmp_path):
    with pytest.raises(InputError, match="instance prediction file is missing"):
        read_instance_prediction(tmp_path, SCENE, 3)


def test_in_memory_prediction_checks_shapes():
    with pytest.raises(ValueError, match=r"need masks \(P, N\)"):
        InstancePrediction(np.zeros((2, 5), bool), [2], [0.5, 0.4])
    assert InstancePrediction(np.zeros((1, 5), bool), [2], [0.5]).mask_files == []
