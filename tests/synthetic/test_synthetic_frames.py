"""The demo world's camera: every scene recorded as ScanNet records a room (a real .sens, ScanNet's 2D
label and instance projections), the frames read by the one reader real ScanNet goes through, and
each pixel showing the point that projects onto it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from lgseg import synthetic
from lgseg.frames.export import export_scenes
from lgseg.frames.layout import FrameFolder, read_axis_alignment
from lgseg.frames.sens import decode_color, decode_depth, iter_frames, read_header
from lgseg.lifting import View, project
from lgseg.scannet.constants import raw_to_index
from lgseg.scannet.labels import LabelTable, vertex_labels
from lgseg.scannet.layout import LABELS_TSV, find_scene_dir, scene_file
from lgseg.scannet.raw import read_scene
from lgseg.synthetic.frames import COLOR_SIZE, DEPTH_SIZE

FRAMES = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    synthetic.generate(root / "raw", 4, seed=1, progress=False, frames=FRAMES)  # 2 train, 1 val, 1 test
    export_scenes(root / "raw", root / "frames", progress=False)
    return root


def test_every_scene_has_a_real_sens_file_with_scannets_cameras(world):
    for scene in ("scene0000_00", "scene0002_00", "scene0003_00"):
        sens = scene_file(find_scene_dir(world / "raw", scene), "sens")
        header = read_header(sens)
        assert (header.color_width, header.color_height) == COLOR_SIZE and (header.depth_width,
                                                                             header.depth_height) == DEPTH_SIZE
        assert header.num_frames == FRAMES and header.color_compression == "jpeg" and header.depth_shift == 1000
        # ScanNet's example calibration, scaled to the demo's quarter-size images
        assert header.intrinsic_depth[0, 0] == pytest.approx(571.623718 * 160 / 640, rel=1e-6)
        assert header.intrinsic_color[0, 2] == pytest.approx(647.75 * 320 / 1296, rel=1e-6)
        frames = list(iter_frames(sens))
        assert all(f.valid_pose for f in frames)
        depth = decode_depth(frames[0], header)
        assert depth.dtype == np.uint16 and (depth > 0).mean() > 0.9 and depth.max() < 10_000  # mm inside a room
        assert decode_color(frames[0], header).shape == (COLOR_SIZE[1], COLOR_SIZE[0], 3)


def test_train_and_val_scenes_carry_the_2d_projections_and_test_scenes_do_not(world):
    for scene, annotated in (("scene0000_00", True), ("scene0002_00", True), ("scene0003_00", False)):
        folder = find_scene_dir(world / "raw", scene)
        for kind, inner in (("label_images", "label-filt"), ("instance_images", "instance-filt")):
            path = scene_file(folder, kind)
            assert path.exists() == annotated
            if annotated:
                assert sorted(zipfile.ZipFile(path).namelist()) == sorted(f"{inner}/{i}.png" for i in range(FRAMES))
    assert not FrameFolder.from_dir(world / "frames/test/scene0003_00").has_labels


def test_frames_change_no_byte_of_the_scenes(world, tmp_path):
    synthetic.generate(tmp_path / "raw", 4, seed=1, progress=False, frames=0)
    for scene in ("scene0000_00", "scene0003_00"):
        a, b = find_scene_dir(world / "raw", scene), find_scene_dir(tmp_path / "raw", scene)
        assert not scene_file(b, "sens").exists()
        for kind in ("mesh", "segs", "meta"):
            assert scene_file(a, kind).read_bytes() == scene_file(b, kind).read_bytes(), kind


def test_a_pixels_label_is_the_label_of_the_point_projecting_onto_it(world):
    """The mesh read by lgseg's raw reader (axis-aligned), its vertices projected through the exported
    frame folder's pose, intrinsics and axis alignment (lgseg.lifting): where a vertex is the surface a
    colour pixel shows (its depth matches), the label image says that vertex's label."""
    scene = "scene0000_00"
    raw = read_scene(world / "raw", scene)
    raw_ids, _ = vertex_labels(raw, LabelTable.read(world / "raw" / LABELS_TSV))
    folder = FrameFolder.from_dir(world / "frames/train" / scene)
    np.testing.assert_allclose(folder.axis_alignment, raw.axis_alignment)
    assert np.array_equal(read_axis_alignment(folder.path), folder.axis_alignment)
    agree = checked = 0
    for i in folder.ids:
        frame = folder.frame(i)
        h, w = frame.label.shape
        # the colour camera's intrinsics, a depth image at colour size from the scene's own depth
        depth = np.kron(frame.depth, np.ones((2, 2), dtype=np.float32))[:h, :w]
        view = View(frame.pose, folder.intrinsic_color, depth)
        u, v, z = project(raw.coord, view, axis_alignment=folder.axis_alignment)
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (z > 0)
        on_surface = inside.copy()
        on_surface[inside] = np.abs(depth[v[inside], u[inside]] - z[inside]) < 0.01
        # away from the edges of what a pixel shows (its 3 x 3 neighbourhood one label), where a vertex
        # and its pixel's nearest vertex may belong to two objects
        pad = np.pad(frame.label, 1, mode="edge")
        uniform = np.all([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] == frame.label for dy in (-1, 0, 1)
                          for dx in (-1, 0, 1)], axis=0)
        labelled = on_surface & (raw_ids > 0)
        labelled[labelled] = uniform[v[labelled], u[labelled]]
        agree += int((frame.label[v[labelled], u[labelled]] == raw_ids[labelled]).sum())
        checked += int(labelled.sum())
    assert checked > 1000
    assert agree / checked > 0.98  # the rest: where the depth pixel (2 x 2 colour pixels) straddles two surfaces


def test_label_images_hold_scannet_label_ids_of_the_200_classes(world):
    frame = FrameFolder.from_dir(world / "frames/train/scene0000_00").frame(0)
    ids = np.unique(frame.label)
    assert 0 in ids or len(ids) > 3
    classes = raw_to_index(ids[ids > 0].astype(np.int64))
    assert (classes >= 0).mean() > 0.5  # most labels are of the 200 (the rest: the world's label traps)
    assert frame.instance.dtype == np.uint8 and frame.instance.max() > 1
