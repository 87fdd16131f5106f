"""The exported frame folder: its paths, the checked readers of each file, frame_ids and FrameFolder,
on folders written by hand (the exporter's output is tested in test_export_frames)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lgseg.errors import InputError
from lgseg.frames import layout
from lgseg.frames.layout import (FrameFolder, frame_ids, read_color, read_depth, read_instance_image,
                                 read_intrinsic, read_label_image, read_pose)

K = np.array([[20.5, 0, 7.75, 0], [0, 21.25, 5.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def matrix_text(m) -> str:
    return "".join(" ".join(f"{v:f}" for v in row) + "\n" for row in m)  # SensReader's %f


def pose_of(i: int) -> np.ndarray:
    return np.array([[1, 0, 0, 0.5 * i], [0, 0, -1, 1.25], [0, 1, 0, -0.75], [0, 0, 0, 1]], dtype=np.float64)


def depth_of(i: int) -> np.ndarray:
    return (np.arange(48, dtype=np.uint16).reshape(6, 8) * 250 + i)  # up to 11750 mm


def write_folder(scene_dir, ids=(0, 2, 10), labels=True) -> None:
    """A frame folder as SensReader exports it (plus label-filt/, instance-filt/ when ``labels``)."""
    for kind in ("color", "depth", "pose", "intrinsic") + (("label-filt", "instance-filt") if labels else ()):
        (scene_dir / kind).mkdir(parents=True)
    for name in layout.MATRIX_NAMES:
        layout.matrix_path(scene_dir, name).write_text(matrix_text(K if name.startswith("intrinsic") else np.eye(4)))
    for i in ids:
        Image.fromarray(np.full((12, 16, 3), 10 * i, np.uint8)).save(layout.color_path(scene_dir, i))
        Image.fromarray(depth_of(i)).save(layout.depth_path(scene_dir, i))
        layout.pose_path(scene_dir, i).write_text(matrix_text(pose_of(i)))
        if labels:
            Image.fromarray(np.full((12, 16), 1000 + i, np.uint16)).save(layout.label_path(scene_dir, i))
            Image.fromarray(np.full((12, 16), 3 + i, np.uint8)).save(layout.instance_path(scene_dir, i))


def one_line(e) -> str:
    assert "\n" not in str(e.value)
    return str(e.value)


def test_the_paths_are_sensreaders():
    d = layout.scene_frames_dir("/f", "scene0000_00")
    assert str(d) == "/f/scene0000_00"
    assert [str(p.relative_to(d)) for p in (layout.color_path(d, 7), layout.depth_path(d, 7), layout.pose_path(d, 7),
                                            layout.label_path(d, 7), layout.instance_path(d, 7),
                                            layout.matrix_path(d, "intrinsic_depth"))] == \
        ["color/7.jpg", "depth/7.png", "pose/7.txt", "label-filt/7.png", "instance-filt/7.png",
         "intrinsic/intrinsic_depth.txt"]
    assert layout.frame_number("17.png", ".png") == 17
    assert layout.frame_number("017.png", ".png") is None and layout.frame_number("a.png", ".png") is None


def test_frame_ids_sort_by_value(tmp_path):
    write_folder(tmp_path / "s")
    assert frame_ids(tmp_path / "s") == [0, 2, 10]  # not "0", "10", "2"


def test_a_name_that_is_not_a_frame_number_is_refused(tmp_path):
    write_folder(tmp_path / "s")
    (tmp_path / "s" / "pose" / "notes.txt").write_text("x")
    with pytest.raises(InputError) as e:
        frame_ids(tmp_path / "s")
    msg = one_line(e)
    assert str(tmp_path / "s" / "pose") in msg and "'notes.txt'" in msg


@pytest.mark.parametrize("kind, gone, first", [("color", (10, 2), "2.jpg"), ("depth", (0,), "0.png"),
                                               ("label-filt", (10,), "10.png")])
def test_a_folder_shorter_than_pose_is_refused(tmp_path, kind, gone, first):
    d = tmp_path / "s"
    write_folder(d)
    for i in gone:
        layout.frame_file(d, kind, i).unlink()
    with pytest.raises(InputError) as e:
        frame_ids(d)
    msg = one_line(e)
    assert msg.startswith(f"{d / kind}: holds {3 - len(gone)} of the 3 frames pose/ lists: {len(gone)} missing, "
                          f"the first {first}")


def test_a_missing_pose_folder_or_no_pose_is_refused(tmp_path):
    with pytest.raises(InputError, match="the pose folder is missing"):
        frame_ids(tmp_path)
    (tmp_path / "pose").mkdir()
    with pytest.raises(InputError, match="holds no poses"):
        frame_ids(tmp_path)


def test_read_pose(tmp_path):
    write_folder(tmp_path / "s")
    p = read_pose(layout.pose_path(tmp_path / "s", 10))
    assert p.dtype == np.float64
    np.testing.assert_array_equal(p, pose_of(10))


@pytest.mark.parametrize("text, problem", [
    ("1 0 0 0\n0 1 0 0\n0 0 1 0\n", "not a 4x4 of numbers (3 lines)"),
    ("1 0 0 0\n0 1 0\n0 0 1 0\n0 0 0 1\n", "not a 4x4 of numbers (line 2 holds 3 values)"),
    ("1 0 0 0\n0 1 0 0\n0 0 1 x\n0 0 0 1\n", "not a 4x4 of numbers ('x' on line 3)"),
    ("-inf -inf -inf -inf\n" * 4, "holds -inf (row 1, column 1): a camera pose must be finite"),
    ("", "not a 4x4 of numbers (0 lines)"),
])
def test_a_pose_that_is_not_a_4x4_of_numbers_is_refused(tmp_path, text, problem):
    path = tmp_path / "3.txt"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_pose(path)
    assert one_line(e).startswith(f"{path}: {problem}")


def test_an_oversized_or_binary_pose_is_refused(tmp_path):
    path = tmp_path / "3.txt"
    path.write_bytes(b"1 " * 40000)
    with pytest.raises(InputError, match="more than the 65536"):
        read_pose(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not text"):
        read_pose(path)


def test_read_intrinsic_and_zero_focal_length(tmp_path):
    path = tmp_path / "intrinsic_color.txt"
    path.write_text(matrix_text(K))
    np.testing.assert_array_equal(read_intrinsic(path), K)
    zero = K.copy()
    zero[1, 1] = 0
    path.write_text(matrix_text(zero))
    with pytest.raises(InputError) as e:
        read_intrinsic(path)
    assert one_line(e).startswith(f"{path}: focal length fx = 20.5, fy = 0.0: both must be positive")


def test_image_readers(tmp_path):
    d = tmp_path / "s"
    write_folder(d)
    color = read_color(layout.color_path(d, 2))
    assert color.dtype == np.uint8 and color.shape == (12, 16, 3) and np.abs(color.astype(int) - 20).max() <= 1
    depth = read_depth(layout.depth_path(d, 10))
    assert depth.dtype == np.uint16
    np.testing.assert_array_equal(depth, depth_of(10))
    label = read_label_image(layout.label_path(d, 10))
    assert label.dtype == np.uint16 and (label == 1010).all()
    inst = read_instance_image(layout.instance_path(d, 10))
    assert inst.dtype == np.uint8 and (inst == 13).all()


def test_depth_must_be_a_16_bit_single_channel_png(tmp_path):
    p8 = tmp_path / "8bit.png"
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(p8)
    with pytest.raises(InputError) as e:
        read_depth(p8)
    assert one_line(e).startswith(f"{p8}: the depth image is a PNG of mode L: it must be a 16-bit single-channel PNG")
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(rgb)
    with pytest.raises(InputError, match="mode RGB"):
        read_depth(rgb)
    jpg = tmp_path / "d.jpg"
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(jpg)
    with pytest.raises(InputError, match="the depth image does not decode as PNG"):
        read_depth(jpg)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((6, 8), np.uint16)).save(wide)
    with pytest.raises(InputError, match="the instance image is a PNG of mode I;16: it must be an 8-bit"):
        read_instance_image(wide)


def test_an_image_that_does_not_decode_is_named(tmp_path):
    d = tmp_path / "s"
    write_folder(d)
    path = layout.color_path(d, 2)
    path.write_bytes(path.read_bytes()[:200])  # a truncated JPEG
    with pytest.raises(InputError) as e:
        read_color(path)
    msg = one_line(e)
    assert msg.startswith(f"{path}: the colour image does not decode as JPEG (")
    path.write_bytes(b"")
    with pytest.raises(InputError, match="does not decode as JPEG"):
        read_color(path)
    with pytest.raises(InputError, match="not a regular file"):
        read_label_image(d / "label-filt")


def test_frame_folder(tmp_path):
    d = tmp_path / "s"
    write_folder(d)
    folder = FrameFolder.from_dir(d)
    assert folder.ids == [0, 2, 10] and folder.has_labels and folder.has_instances
    np.testing.assert_array_equal(folder.intrinsic_color, K)
    np.testing.assert_array_equal(folder.extrinsic_depth, np.eye(4))
    f = folder.frame(2)
    assert f.index == 2 and f.depth.dtype == np.float32
    np.testing.assert_array_equal(f.depth, depth_of(2).astype(np.float32) / np.float32(1000))
    assert f.depth[5, 7] == np.float32(11.752)  # 11752 mm
    np.testing.assert_array_equal(f.pose, pose_of(2))
    np.testing.assert_array_equal(folder.pose(10), pose_of(10))
    assert f.color.shape == (12, 16, 3) and (f.label == 1002).all() and (f.instance == 5).all()
    with pytest.raises(ValueError, match="has no frame 1"):
        folder.frame(1)


def test_frame_folder_without_projections(tmp_path):
    d = tmp_path / "s"
    write_folder(d, ids=(4,), labels=False)
    folder = FrameFolder.from_dir(d)
    f = folder.frame(4)
    assert not folder.has_labels and f.label is None and f.instance is None


def test_frame_folder_refuses_zero_focal_length(tmp_path):
    d = tmp_path / "s"
    write_folder(d)
    zero = K.copy()
    zero[0, 0] = 0
    path = layout.matrix_path(d, "intrinsic_depth")
    path.write_text(matrix_text(zero))
    with pytest.raises(InputError, match=rf"^{path}: focal length fx = 0.0"):
        FrameFolder.from_dir(d)
