"""A synthetic room recorded the way ScanNet records a real one: a camera walks through the room
(``camera.camera_path``), every frame is rendered from the room's own mesh with a z-buffer
(``render``), and the frames are written in ScanNet's formats beside the mesh files:

- ``<scene>.sens``: colour (JPEG, the mesh's vertex colours interpolated) and depth (millimetres,
  zlib) of every frame, its camera-to-world pose in the scan frame (the frame of the PLY, as
  ScanNet's poses are: lgseg's points are axis-aligned, its projection applies the axisAlignment),
  both cameras' intrinsics (ScanNet's, scaled to the demo's smaller images: the header says their
  sizes), identity extrinsics (ScanNet's colour and depth are registered);
- ``<scene>_2d-label-filt.zip`` / ``<scene>_2d-instance-filt.zip``: ScanNet's 2D projections of the
  annotation, ``label-filt/<frame>.png`` (16-bit, the pixel's ScanNet label id as the labels tsv
  maps its object's label; 0 where no annotated object is seen) and ``instance-filt/<frame>.png``
  (8-bit, the object's segGroup id + 1; 0 none), at the colour image's size. The projections are
  exact (each pixel takes the label of the nearest vertex of the triangle it sees): ScanNet's
  "filtered" images are cleaned projections of the same kind.

The camera path has its own random stream (``np.random.default_rng([seed, i, 2])``), so recording
frames changes none of the scene's bytes: a world with and without frames has the same meshes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from lgseg.frames.sens import SensHeader, write_sens
from lgseg.scannet.labels import LabelTable
from lgseg.scannet.layout import INSTANCE_IMAGE_DIR, LABEL_IMAGE_DIR, scene_file_name
from lgseg.synthetic.camera import camera_path, scannet_intrinsics
from lgseg.synthetic.render import Camera, interpolate, nearest_vertex, rasterize

COLOR_SIZE = (320, 240)  # a quarter of ScanNet's 1296 x 968 colour, at its aspect ratio of the depth camera
DEPTH_SIZE = (160, 120)  # a quarter of ScanNet's 640 x 480 depth
FRAME_INTERVAL_US = 33_333  # ScanNet records at ~30 frames per second; the demo's frames are a sparse walk
MAX_INSTANCE = 255  # the instance images are 8-bit


def label_table(rows) -> LabelTable:
    """The labels tsv's raw category -> id map, as ``LabelTable.read`` builds it (the first row wins)."""
    table: dict[str, int] = {}
    for row in rows:
        table.setdefault(row[1].strip(), int(row[0]))
    return LabelTable(table)


def vertex_annotation(seg_ids: np.ndarray, groups, table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex, the ScanNet label id of its object (0 none) and its instance id (segGroup id + 1,
    0 none), later groups over earlier ones as the aggregation is read."""
    segments, inverse = np.unique(seg_ids, return_inverse=True)
    seg_label = np.zeros(len(segments), dtype=np.int64)
    seg_instance = np.zeros(len(segments), dtype=np.int64)
    for k, (label, segs) in enumerate(groups):
        pos = np.searchsorted(segments, segs)
        seg_label[pos] = table.raw_id(label)
        seg_instance[pos] = k + 1
    if seg_instance.max(initial=0) > MAX_INSTANCE:
        raise ValueError(f"{seg_instance.max()} objects: the 8-bit instance images hold at most {MAX_INSTANCE}")
    return seg_label[inverse.reshape(-1)], seg_instance[inverse.reshape(-1)]


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def record(folder: Path, scene: str, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray, align: np.ndarray,
           labels: np.ndarray | None, instances: np.ndarray | None, num_frames: int, rng: np.random.Generator,
           obstacles: np.ndarray | None = None) -> int:
    """Render ``num_frames`` frames of the mesh (``verts`` in the scan frame, ``align`` its
    axisAlignment) and write ``<scene>.sens`` and, with ``labels``/``instances`` (per vertex), the two
    projection zips into ``folder`` (a scene's temporary folder); ``obstacles``: boxes (in the aligned
    room) the cameras keep clear of. Returns the frames written."""
    room = verts @ align[:3, :3].T + align[:3, 3]  # the axis-aligned room, where the path is planned
    path = camera_path(room.min(0), room.max(0), num_frames, rng, obstacles=obstacles)
    poses = [np.linalg.inv(align) @ p for p in path]
    k_color, k_depth = scannet_intrinsics(*COLOR_SIZE, "color"), scannet_intrinsics(*DEPTH_SIZE, "depth")
    header = SensHeader(sensor_name="lgseg synthetic", intrinsic_color=k_color, extrinsic_color=np.eye(4),
                        intrinsic_depth=k_depth, extrinsic_depth=np.eye(4), color_compression="jpeg",
                        depth_compression="zlib_ushort", color_width=COLOR_SIZE[0], color_height=COLOR_SIZE[1],
                        depth_width=DEPTH_SIZE[0], depth_height=DEPTH_SIZE[1], depth_shift=1000.0,
                        num_frames=len(poses))
    label_images, instance_images = [], []

    def frames():
        for i, pose in enumerate(poses):
            world_to_camera = np.linalg.inv(pose)
            seen = rasterize(verts, faces, Camera(k_color, *COLOR_SIZE, world_to_camera))
            color = np.clip(np.rint(interpolate(seen, faces, colors.astype(np.float32))), 0, 255).astype(np.uint8)
            if labels is not None:
                nearest = nearest_vertex(seen, faces)
                hit = nearest >= 0
                label_images.append(np.where(hit, labels[np.maximum(nearest, 0)], 0).astype(np.uint16))
                instance_images.append(np.where(hit, instances[np.maximum(nearest, 0)], 0).astype(np.uint8))
            depth = rasterize(verts, faces, Camera(k_depth, *DEPTH_SIZE, world_to_camera)).depth
            depth_mm = np.clip(np.rint(depth * 1000.0), 0, 65535).astype(np.uint16)
            yield pose, color, depth_mm, i * FRAME_INTERVAL_US, i * FRAME_INTERVAL_US

    written = write_sens(folder / scene_file_name(scene, "sens"), header, frames())
    if labels is not None:
        for kind, folder_name, images in (("label_images", LABEL_IMAGE_DIR, label_images),
                                          ("instance_images", INSTANCE_IMAGE_DIR, instance_images)):
            with zipfile.ZipFile(folder / scene_file_name(scene, kind), "w", zipfile.ZIP_STORED) as z:
                for i, image in enumerate(images):
                    z.writestr(f"{folder_name}/{i}.png", _png(image))
    return written
