"""lgseg.export: coloured meshes as binary PLY, read back with plyfile."""

import numpy as np
import pytest
from plyfile import PlyData

from lgseg.export import write_colored_ply


def test_round_trip_with_faces_and_quality(tmp_path):
    coord = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    colors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    write_colored_ply(tmp_path / "m.ply", coord, colors, faces, quality=np.array([0.1, 0.2, -0.3, 1.0]))
    ply = PlyData.read(tmp_path / "m.ply")
    v = ply["vertex"].data
    assert np.allclose(np.stack([v["x"], v["y"], v["z"]], 1), coord)
    assert v["red"].tolist() == [255, 0, 0, 128] and v["blue"].tolist() == [0, 0, 255, 128]
    assert np.allclose(v["quality"], [0.1, 0.2, -0.3, 1.0])
    assert np.stack(ply["face"].data["vertex_indices"]).tolist() == faces.tolist()


def test_points_only_and_length_checks(tmp_path):
    coord = np.zeros((3, 3))
    write_colored_ply(tmp_path / "p.ply", coord, np.zeros((3, 3), np.uint8))
    assert [e.name for e in PlyData.read(tmp_path / "p.ply").elements] == ["vertex"]
    with pytest.raises(ValueError, match="3 vertices but 2 colours"):
        write_colored_ply(tmp_path / "bad.ply", coord, np.zeros((2, 3)))
    assert not (tmp_path / "bad.ply").exists()
