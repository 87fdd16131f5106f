import json

import numpy as np
import pytest

from lgseg.errors import InputError
from lgseg.scannet.raw import read_scene

from scannet_files import write_scene


def test_reads_mesh_in_vertex_order(tiny_raw):
    s = read_scene(tiny_raw, "scene0000_00")
    assert s.coord.dtype == np.float32 and s.coord.shape == (8, 3)
    assert s.color.dtype == np.uint8 and s.faces.shape == (8, 3)
    np.testing.assert_array_equal(s.coord, np.arange(24, dtype=np.float32).reshape(8, 3))
    assert s.meta["sceneType"] == "Living room / Lounge"  # non-numeric metadata is tolerated
    assert s.axis_alignment is None


def test_axis_alignment_is_applied(tmp_path):
    c, s_ = np.cos(0.3), np.sin(0.3)
    align = np.array([[c, -s_, 0, 1.5], [s_, c, 0, -2.0], [0, 0, 1, 0.25], [0, 0, 0, 1]])
    pts = np.array([[0, 0, 0], [1, 2, 3], [-1, 0.5, 2]], dtype=np.float32)
    write_scene(tmp_path, "scene0000_00", pts, [1, 1, 1], [(0, "wall", [1])], align=align)
    s = read_scene(tmp_path, "scene0000_00")
    expected = pts @ align[:3, :3].T + align[:3, 3]
    np.testing.assert_allclose(s.coord, expected, atol=1e-5)
    np.testing.assert_allclose(s.axis_alignment, align, atol=1e-6)


def test_test_scene_geometry_only(tiny_raw):
    s = read_scene(tiny_raw, "scene0003_00", annotations=False)
    assert s.seg_groups is None and s.num_vertices == 5


def test_missing_scene_and_missing_file(tiny_raw):
    with pytest.raises(InputError, match="scene scene0999_00.*scene folder not found"):
        read_scene(tiny_raw, "scene0999_00")
    (tiny_raw / "scans/scene0001_00/scene0001_00.aggregation.json").unlink()
    with pytest.raises(InputError, match=r"scene scene0001_00, .*scene0001_00\.aggregation\.json: aggregation file is missing"):
        read_scene(tiny_raw, "scene0001_00")


def test_truncated_ply(tiny_raw):
    ply = tiny_raw / "scans/scene0001_00/scene0001_00_vh_clean_2.ply"
    ply.write_bytes(ply.read_bytes()[:-20])
    with pytest.raises(InputError, match=r"scene0001_00_vh_clean_2\.ply: truncated or corrupt PLY"):
        read_scene(tiny_raw, "scene0001_00")


def test_garbage_ply(tiny_raw):
    ply = tiny_raw / "scans/scene0001_00/scene0001_00_vh_clean_2.ply"
    ply.write_bytes(b"this is not a ply file\n" * 10)
    with pytest.raises(InputError, match="truncated or corrupt PLY"):
        read_scene(tiny_raw, "scene0001_00")


def test_segs_vertex_count_mismatch(tiny_raw):
    p = tiny_raw / "scans/scene0001_00/scene0001_00_vh_clean_2.0.010000.segs.json"
    p.write_text(json.dumps({"segIndices": [1, 1, 2]}))
    with pytest.raises(InputError, match="segIndices has 3 entries but the mesh has 4 vertices"):
        read_scene(tiny_raw, "scene0001_00")


def test_aggregation_names_unknown_segments(tiny_raw):
    p = tiny_raw / "scans/scene0001_00/scene0001_00.aggregation.json"
    agg = json.loads(p.read_text())
    agg["segGroups"][0]["segments"] = [1, 777]
    p.write_text(json.dumps(agg))
    with pytest.raises(InputError, match=r"aggregation\.json: segGroup 0 \('wall'\) names 1 segment\(s\) absent"):
        read_scene(tiny_raw, "scene0001_00")


def test_bad_axis_alignment(tiny_raw):
    p = tiny_raw / "scans/scene0001_00/scene0001_00.txt"
    p.write_text("axisAlignment = 1 0 0\n")
    with pytest.raises(InputError, match="axisAlignment must hold 16 numbers"):
        read_scene(tiny_raw, "scene0001_00")


def test_non_triangle_faces_are_rejected(tmp_path):
    from plyfile import PlyData, PlyElement

    d = tmp_path / "scans" / "scene0000_00"
    d.mkdir(parents=True)
    v = np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    f = np.empty(1, dtype=[("vertex_indices", "O")])
    f["vertex_indices"][0] = np.array([0, 1, 2, 3], dtype=np.int32)  # a quad
    PlyData([PlyElement.describe(v, "vertex"), PlyElement.describe(f, "face")]).write(str(d / "scene0000_00_vh_clean_2.ply"))
    (d / "scene0000_00.txt").write_text("sceneType = Office\n")
    with pytest.raises(InputError, match="faces that are not triangles"):
        read_scene(tmp_path, "scene0000_00", annotations=False)


def test_vertex_normals_weigh_faces_by_area():
    from lgseg.scannet.raw import vertex_normals

    # vertex 0 is on a 2 m^2 face facing +z (winding 0-1-2 counter-clockwise from above) and on a
    # 0.5 m^2 face facing +x; vertex 5 is on no face; faces 6-7-8 are degenerate (collinear)
    coord = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 1], [0, 1, 0], [9, 9, 9],
                      [1, 1, 1], [2, 2, 2], [3, 3, 3]], dtype=np.float32)
    faces = np.array([[0, 1, 2], [0, 4, 3], [6, 7, 8]])
    n = vertex_normals(coord, faces)
    assert n.shape == (9, 3)
    np.testing.assert_allclose(n[0], np.array([0.5, 0, 2]) / np.hypot(0.5, 2), rtol=1e-6)
    assert n.dtype == np.float32
    np.testing.assert_allclose(n[1], [0, 0, 1])
    np.testing.assert_allclose(n[3], [1, 0, 0])
    np.testing.assert_array_equal(n[5], [0, 0, 0])  # on no face: no direction (Pointcept: 0 too)
    np.testing.assert_array_equal(n[6:], 0)
    np.testing.assert_allclose(vertex_normals(coord, faces[:, ::-1])[1], [0, 0, -1])  # winding sets the side
    np.testing.assert_array_equal(vertex_normals(coord, np.zeros((0, 3), np.int32)), 0)
    c, s_ = np.cos(1.1), np.sin(1.1)
    rot = np.array([[c, 0, s_], [0, 1, 0], [-s_, 0, c]])  # a rotation turns the normals with it
    np.testing.assert_allclose(vertex_normals(coord, faces, rot)[:4], (n[:4].astype(np.float64) @ rot.T), atol=1e-6)


def test_read_scene_normals_are_in_coords_frame(tmp_path):
    from scannet_files import write_ply

    c, s_ = np.cos(0.3), np.sin(0.3)
    align = np.array([[c, -s_, 0, 1.5], [s_, c, 0, -2.0], [0, 0, 1, 0.25], [0, 0, 0, 1]])
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)  # a triangle in the x-z plane
    d = write_scene(tmp_path, "scene0000_00", pts, [1, 1, 1], [(0, "wall", [1])], align=align)
    write_ply(d / "scene0000_00_vh_clean_2.ply", pts, np.zeros((3, 3), np.uint8), np.array([[0, 1, 2]]))
    assert read_scene(tmp_path, "scene0000_00").normal is None  # only when asked (preprocessing asks)
    scene = read_scene(tmp_path, "scene0000_00", normals=True)
    assert scene.normal.dtype == np.float32 and scene.normal.shape == (3, 3)
    np.testing.assert_allclose(scene.normal, [align[:3, :3] @ [0, -1, 0]] * 3, atol=1e-6)
