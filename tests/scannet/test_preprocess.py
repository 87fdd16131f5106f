import json

import numpy as np
import pytest

from lgseg.errors import LgsegError
from lgseg.scannet.constants import NAME_TO_INDEX
from lgseg.scannet.preprocess import preprocess


def test_layout_dtypes_and_labels(tiny_raw, tmp_path):
    out = tmp_path / "processed"
    report = preprocess(tiny_raw, out, progress=False)
    assert len(report.done) == 4 and not report.failed
    d = out / "train" / "scene0000_00"
    coord, color = np.load(d / "coord.npy"), np.load(d / "color.npy")
    seg, inst = np.load(d / "segment200.npy"), np.load(d / "instance.npy")
    assert (coord.dtype, color.dtype, seg.dtype, inst.dtype) == (np.float32, np.uint8, np.int16, np.int32)
    assert coord.shape == (8, 3) and color.shape == (8, 3)
    np.testing.assert_array_equal(coord, np.arange(24, dtype=np.float32).reshape(8, 3))  # mesh order
    assert seg.tolist() == [1, 1, 5, -1, -1, -1, 3, 3]
    assert inst.tolist() == [0, 0, 1, 2, 3, -1, 4, 4]
    # test scenes: geometry only
    t = out / "test" / "scene0003_00"
    assert sorted(p.name for p in t.iterdir()) == ["color.npy", "coord.npy"]
    assert (out / "val" / "scene0002_00" / "segment200.npy").is_file()


def test_stats_count_train_points_and_instances(tiny_raw, tmp_path):
    preprocess(tiny_raw, tmp_path / "p", progress=False)
    stats = json.loads((tmp_path / "p" / "stats.json").read_text())
    pts, ins = np.array(stats["train_points"]), np.array(stats["train_instances"])
    i = NAME_TO_INDEX
    # train = scene0000_00 (chair 2 pts/1 inst, couch 1/1, table 2/1) + scene0001_00 (wall 2/1, floor 2/1)
    assert pts[i["chair"]] == 2 and pts[i["couch"]] == 1 and pts[i["table"]] == 2
    assert pts[i["wall"]] == 2 and pts[i["floor"]] == 2 and pts.sum() == 9
    assert ins[i["chair"]] == 1 and ins[i["table"]] == 1 and ins.sum() == 5
    assert stats["scenes"] == {"train": 2, "val": 1, "test": 1}
    assert stats["class_names"][0] == "wall" and len(stats["class_ids"]) == 200


def test_parallel_equals_serial(tiny_raw, tmp_path):
    preprocess(tiny_raw, tmp_path / "a", workers=1, progress=False)
    preprocess(tiny_raw, tmp_path / "b", workers=2, progress=False)
    for f in sorted((tmp_path / "a").rglob("*.npy")):
        np.testing.assert_array_equal(np.load(f), np.load(tmp_path / "b" / f.relative_to(tmp_path / "a")))
    assert (tmp_path / "a/stats.json").read_text() == (tmp_path / "b/stats.json").read_text()


def _corrupt(tiny_raw):
    ply = tiny_raw / "scans/scene0001_00/scene0001_00_vh_clean_2.ply"
    ply.write_bytes(ply.read_bytes()[:60])


def test_failure_stops_and_leaves_no_partial_scene(tiny_raw, tmp_path):
    _corrupt(tiny_raw)
    out = tmp_path / "p"
    with pytest.raises(LgsegError, match=r"scene scene0001_00, .*_vh_clean_2\.ply: truncated or corrupt PLY"):
        preprocess(tiny_raw, out, progress=False)
    assert not (out / "train" / "scene0001_00").exists()
    assert not list(out.rglob(".*tmp*"))  # no temporary leftovers


def test_keep_going_finishes_others_and_lists_failures(tiny_raw, tmp_path):
    _corrupt(tiny_raw)
    (tiny_raw / "scans/scene0002_00/scene0002_00.aggregation.json").unlink()
    out = tmp_path / "p"
    with pytest.raises(LgsegError) as e:
        preprocess(tiny_raw, out, workers=2, keep_going=True, progress=False)
    msg = str(e.value)
    assert "2 of 4 scene(s) failed" in msg and "scene0001_00" in msg and "scene0002_00" in msg
    assert (out / "train" / "scene0000_00" / "segment200.npy").is_file()
    assert (out / "test" / "scene0003_00" / "coord.npy").is_file()
    assert not (out / "train" / "scene0001_00").exists() and not (out / "val" / "scene0002_00").exists()


def test_official_lists_used_when_dir_has_none(tiny_raw, tmp_path):
    for f in tiny_raw.glob("scannetv2_*.txt"):
        f.unlink()
    with pytest.raises(LgsegError, match="scene scene0191_00.*scene folder not found"):
        preprocess(tiny_raw, tmp_path / "p", progress=False)  # first official train scene
