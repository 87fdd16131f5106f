import json

import numpy as np
import pytest

from lgseg.errors import LgsegError
from lgseg.scannet.constants import NAME_TO_INDEX
from lgseg.scannet.preprocess import preprocess

from scannet_files import tsv_text, write_ply, write_scene


def test_layout_dtypes_and_labels(tiny_raw, tmp_path):
    out = tmp_path / "processed"
    report = preprocess(tiny_raw, out, progress=False)
    assert len(report.done) == 4 and not report.failed
    d = out / "train" / "scene0000_00"
    coord, color, normal = np.load(d / "coord.npy"), np.load(d / "color.npy"), np.load(d / "normal.npy")
    seg, inst = np.load(d / "segment200.npy"), np.load(d / "instance.npy")
    assert (coord.dtype, color.dtype, normal.dtype, seg.dtype, inst.dtype) == (
        np.float32, np.uint8, np.float32, np.int16, np.int32)
    assert coord.shape == (8, 3) and color.shape == (8, 3) and normal.shape == (8, 3)
    np.testing.assert_array_equal(coord, np.arange(24, dtype=np.float32).reshape(8, 3))  # mesh order
    assert seg.tolist() == [1, 1, 5, -1, -1, -1, 3, 3]
    assert inst.tolist() == [0, 0, 1, 2, 3, -1, 4, 4]
    # test scenes: geometry only
    t = out / "test" / "scene0003_00"
    assert sorted(p.name for p in t.iterdir()) == ["color.npy", "coord.npy", "normal.npy"]
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


# ---- Pointcept interop: normal.npy, and the arrays Pointcept's ScanNet200 loader reads ----

POINTCEPT_SCANNET200_ASSETS = {"coord", "color", "normal", "segment200", "instance"}  # its VALID_ASSETS


def _pointcept_style_read(folder):
    """What Pointcept's ScanNet200Dataset.get_data does with a scene folder: every .npy among its
    assets, then coord, color and normal as float32 (a KeyError when normal.npy is missing)."""
    data = {p.stem: np.load(p) for p in sorted(folder.iterdir())
            if p.suffix == ".npy" and p.stem in POINTCEPT_SCANNET200_ASSETS}
    for key in ("coord", "color", "normal"):
        data[key] = data[key].astype(np.float32)
    data["segment"] = data.pop("segment200").reshape(-1).astype(np.int32) if "segment200" in data else None
    return data


def test_every_scene_has_pointcepts_arrays(tiny_raw, tmp_path):
    out = tmp_path / "p"
    preprocess(tiny_raw, out, progress=False)
    for folder in sorted(out.glob("*/scene*")):
        names = {p.stem for p in folder.iterdir()}
        want = POINTCEPT_SCANNET200_ASSETS - ({"segment200", "instance"} if folder.parent.name == "test" else set())
        assert names == want, folder
        data = _pointcept_style_read(folder)
        n = len(data["coord"])
        assert data["normal"].shape == (n, 3) and data["color"].shape == (n, 3)


def _floor_and_wall_scene(root, align=None):
    """A 2 x 1 m floor quad at z = 0 (two triangles wound counter-clockwise seen from above) and a
    1 x 1 m wall quad at x = 3 facing -x, as one annotated train scene."""
    coord = np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0],
                      [3, 0, 0], [3, 0, 1], [3, 1, 1], [3, 1, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], dtype=np.int32)
    d = write_scene(root, "scene0000_00", coord, [1, 1, 1, 1, 2, 2, 2, 2], [(0, "floor", [1]), (1, "wall", [2])],
                    align=align)
    write_ply(d / "scene0000_00_vh_clean_2.ply", coord, np.full((8, 3), 128, np.uint8), faces)
    (root / "scannetv2-labels.combined.tsv").write_text(tsv_text([(1, "wall"), (3, "floor")]))
    for split, scenes in {"train": ["scene0000_00"], "val": [], "test": []}.items():
        (root / f"scannetv2_{split}.txt").write_text("\n".join(scenes) + "\n")


def test_normals_are_unit_and_point_out_of_the_faces(tmp_path):
    _floor_and_wall_scene(tmp_path / "raw")
    preprocess(tmp_path / "raw", tmp_path / "p", progress=False)
    normal = np.load(tmp_path / "p/train/scene0000_00/normal.npy")
    assert normal.dtype == np.float32 and normal.shape == (8, 3)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(normal[:4], [[0, 0, 1]] * 4, atol=1e-6)  # the floor faces up
    np.testing.assert_allclose(normal[4:], [[-1, 0, 0]] * 4, atol=1e-6)  # the wall faces -x


def test_normals_turn_with_axis_alignment_like_coord(tmp_path):
    c, s = np.cos(0.7), np.sin(0.7)
    rot_x = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # a tilted scan: alignment turns it about x
    align = np.eye(4)
    align[:3, :3], align[:3, 3] = rot_x, [5.0, -2.0, 0.5]  # the translation moves coord, not normals
    _floor_and_wall_scene(tmp_path / "raw", align=align)
    preprocess(tmp_path / "raw", tmp_path / "p", progress=False)
    d = tmp_path / "p/train/scene0000_00"
    coord, normal = np.load(d / "coord.npy"), np.load(d / "normal.npy")
    np.testing.assert_allclose(normal[:4], [rot_x @ [0, 0, 1]] * 4, atol=1e-5)
    np.testing.assert_allclose(normal[4:], [rot_x @ [-1, 0, 0]] * 4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1, atol=1e-6)
    # the same frame as coord: the floor's normal is perpendicular to its edges there
    np.testing.assert_allclose(normal[0] @ (coord[1] - coord[0]), 0, atol=1e-5)
    np.testing.assert_allclose(normal[0] @ (coord[3] - coord[0]), 0, atol=1e-5)
