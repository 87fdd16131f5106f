"""The exported frame folder, ScanNet SensReader's export layout: the one place that names its files
and reads them.

``<frames>/<scene>/`` holds, for each exported frame ``<i>`` (its index in the ``.sens`` stream,
written without leading zeros)::

    color/<i>.jpg          colour, JPEG, RGB
    depth/<i>.png          depth, 16-bit single-channel PNG, millimetres (0: no depth)
    pose/<i>.txt           4x4 camera-to-world, 4 lines of 4 numbers, in the raw scan's frame: NOT
                           axis-aligned (lgseg's points are; project with axisAlignment @ pose)
    label-filt/<i>.png     ScanNet's 2D label projection, 16-bit PNG, ScanNet label id (0 none)  [optional]
    instance-filt/<i>.png  ScanNet's 2D instance projection, 8-bit PNG, instance id (0 none)   [optional]

and ``intrinsic/{intrinsic,extrinsic}_{color,depth}.txt`` (4x4 each; ScanNet's colour and depth are
registered, so the extrinsics are identity and are not applied). lgseg adds one file, so that the
folder alone projects lgseg's points: ``axis_alignment.txt``, the scene's 4x4 ``axisAlignment`` from
its ``<scene>.txt`` (identity when the scene has none). The pipeline's folder (``data/frames``)
holds one such folder per scene under its split: ``<frames>/<split>/<scene>/``. ``frame_ids`` lists the frames (from
``pose/``, checked that the image folders hold every one), the ``read_*`` functions read one file
each, checked, and :class:`FrameFolder` gives one frame's arrays for projecting points into it.
Every problem is a one-line :class:`InputError` naming the file; only regular files are read, each
within a bound on its size.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lgseg.errors import InputError, one_line
from lgseg.fileio import read_regular
from lgseg.scannet.layout import INSTANCE_IMAGE_DIR, LABEL_IMAGE_DIR

COLOR_DIR, DEPTH_DIR, POSE_DIR, INTRINSIC_DIR = "color", "depth", "pose", "intrinsic"
LABEL_DIR, INSTANCE_DIR = LABEL_IMAGE_DIR, INSTANCE_IMAGE_DIR  # as in ScanNet's 2D projection zips
MATRIX_NAMES = ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth")
AXIS_ALIGNMENT = "axis_alignment.txt"  # lgseg's: the scene's axisAlignment (points are aligned, poses are not)
FRAME_ENTRIES = (COLOR_DIR, DEPTH_DIR, POSE_DIR, INTRINSIC_DIR, LABEL_DIR, INSTANCE_DIR, AXIS_ALIGNMENT)
_SUFFIX = {COLOR_DIR: ".jpg", DEPTH_DIR: ".png", POSE_DIR: ".txt", LABEL_DIR: ".png", INSTANCE_DIR: ".png"}

KiB, MiB = 1 << 10, 1 << 20
TEXT_LIMIT = 64 * KiB  # a 4x4 matrix file: ~200 bytes
IMAGE_LIMIT = 64 * MiB  # one frame's image (ScanNet's: ~0.2 MB colour JPEG, ~0.4 MB depth PNG)
PIXEL_LIMIT = 1 << 26  # 67 Mpx: checked before an image is decoded (ScanNet's colour is 1.25 Mpx)
DEPTH_MODES = ("I;16", "I;16L", "I;16B")  # Pillow's modes of a 16-bit single-channel PNG
FIX = "export the scene's frames again (lgseg.frames.export.export_frames)"
_NUMBER = r"(0|[1-9][0-9]*)"


def scene_frames_dir(frames_root: str | Path, scene: str) -> Path:
    """``<frames>/<scene>``: one scene's frame folder."""
    return Path(frames_root) / scene


def frame_file(scene_dir: str | Path, kind: str, index: int) -> Path:
    """The file of frame ``index`` of a kind in FRAME_ENTRIES other than intrinsic."""
    return Path(scene_dir) / kind / f"{int(index)}{_SUFFIX[kind]}"


def color_path(scene_dir: str | Path, index: int) -> Path:
    return frame_file(scene_dir, COLOR_DIR, index)


def depth_path(scene_dir: str | Path, index: int) -> Path:
    return frame_file(scene_dir, DEPTH_DIR, index)


def pose_path(scene_dir: str | Path, index: int) -> Path:
    return frame_file(scene_dir, POSE_DIR, index)


def label_path(scene_dir: str | Path, index: int) -> Path:
    return frame_file(scene_dir, LABEL_DIR, index)


def instance_path(scene_dir: str | Path, index: int) -> Path:
    return frame_file(scene_dir, INSTANCE_DIR, index)


def matrix_path(scene_dir: str | Path, name: str) -> Path:
    """``intrinsic/<name>.txt``, name one of MATRIX_NAMES."""
    if name not in MATRIX_NAMES:
        raise ValueError(f"{name!r} is none of {MATRIX_NAMES}")
    return Path(scene_dir) / INTRINSIC_DIR / f"{name}.txt"


def frame_number(name: str, suffix: str) -> int | None:
    """``"17.png"`` -> 17 for suffix ``.png``; None for any other name (leading zeros included)."""
    m = re.fullmatch(_NUMBER + re.escape(suffix), name)
    return int(m.group(1)) if m else None


def frame_ids(scene_dir: str | Path) -> list[int]:
    """The frame ids of a frame folder, from ``pose/``, sorted by value; ``color/`` and ``depth/`` (and
    ``label-filt/``, ``instance-filt/`` where present) must hold every one."""
    scene_dir = Path(scene_dir)
    pose_dir = scene_dir / POSE_DIR
    if not pose_dir.is_dir():
        raise InputError(pose_dir, "the pose folder is missing: not a frame folder",
                         f"pass a <frames>/<scene> folder, or {FIX}")
    names = sorted(os.listdir(pose_dir))
    bad = [n for n in names if frame_number(n, ".txt") is None]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(pose_dir, f"holds {bad[0]!r}{more}: the pose folder holds only <frame>.txt files, <frame> "
                         "an integer without leading zeros", "remove what is not a pose, or " + FIX)
    ids = sorted(frame_number(n, ".txt") for n in names)
    if not ids:
        raise InputError(pose_dir, "holds no poses: the frame folder has no frames", FIX)
    for kind in (COLOR_DIR, DEPTH_DIR, LABEL_DIR, INSTANCE_DIR):
        folder = scene_dir / kind
        if kind in (LABEL_DIR, INSTANCE_DIR) and not folder.exists():
            continue  # ScanNet's 2D projections are optional
        if not folder.is_dir():
            raise InputError(folder, f"the {kind} folder is missing ({len(ids)} frames in pose/)", FIX)
        present = set(os.listdir(folder))
        missing = [i for i in ids if f"{i}{_SUFFIX[kind]}" not in present]
        if missing:
            raise InputError(folder, f"holds {len(ids) - len(missing)} of the {len(ids)} frames pose/ lists: "
                             f"{len(missing)} missing, the first {missing[0]}{_SUFFIX[kind]}", FIX)
    return ids


# ---- one file each -----------------------------------------------------------------------------

def _read_matrix(path: str | Path, what: str) -> np.ndarray:
    data = read_regular(path, what, FIX, TEXT_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, f"not a 4x4 of numbers: not text ({e.reason} at byte {e.start})", FIX) from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) != 4 or any(len(r) != 4 for r in rows):
        shape = f"{len(rows)} lines" if len(rows) != 4 else \
            next(f"line {k + 1} holds {len(r)} values" for k, r in enumerate(rows) if len(r) != 4)
        raise InputError(path, f"not a 4x4 of numbers ({shape}): a {what} is 4 lines of 4 numbers", FIX)
    values = np.empty((4, 4), dtype=np.float64)
    for r, row in enumerate(rows):
        for c, token in enumerate(row):
            try:
                values[r, c] = float(token)
            except ValueError:
                raise InputError(path, f"not a 4x4 of numbers ({token!r} on line {r + 1})", FIX) from None
            if not np.isfinite(values[r, c]):
                raise InputError(path, f"holds {token} (row {r + 1}, column {c + 1}): a {what} must be finite", FIX)
    return values


def read_pose(path: str | Path) -> np.ndarray:
    """A frame's camera-to-world matrix, (4, 4) float64, in the raw scan's frame (not axis-aligned)."""
    return _read_matrix(path, "camera pose")


def check_intrinsic(K: np.ndarray, path: str | Path | None) -> None:
    """Refuse a camera matrix whose focal lengths (K[0,0], K[1,1]) are not positive or whose principal
    point (K[0,2], K[1,2]) is not finite; ``path`` is named in the error."""
    K = np.asarray(K, dtype=np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (np.isfinite(fx) and np.isfinite(fy) and fx > 0 and fy > 0):
        raise InputError(path, f"focal length fx = {fx}, fy = {fy}: both must be positive (K[0,0] and K[1,1] of "
                         "[[fx,0,cx,0],[0,fy,cy,0],[0,0,1,0],[0,0,0,1]])", FIX)
    if not (np.isfinite(cx) and np.isfinite(cy)):
        raise InputError(path, f"principal point ({cx}, {cy}) is not finite", FIX)


def read_intrinsic(path: str | Path) -> np.ndarray:
    """A camera matrix, (4, 4) float64, ``[[fx,0,cx,0],[0,fy,cy,0],[0,0,1,0],[0,0,0,1]]`` in pixels of
    the folder's images; focal lengths positive."""
    K = _read_matrix(path, "camera intrinsic matrix")
    check_intrinsic(K, path)
    return K


def read_extrinsic(path: str | Path) -> np.ndarray:
    """An extrinsic matrix, (4, 4) float64 (identity in ScanNet: colour and depth are registered)."""
    return _read_matrix(path, "camera extrinsic matrix")


def read_axis_alignment(scene_dir: str | Path) -> np.ndarray:
    """The scene's axisAlignment, (4, 4) float64: processed point = A @ raw point (poses are raw)."""
    return _read_matrix(Path(scene_dir) / AXIS_ALIGNMENT, "scene axisAlignment")


def decode_image(data: bytes, where: str | Path, what: str, fmt: str, modes: tuple[str, ...]) -> np.ndarray:
    """Decode ``data`` as a ``fmt`` ("JPEG" or "PNG") image of one of Pillow's ``modes``; ``where``
    (a file, or ``zip:member``) is named in the error. The size is checked before decoding."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            if im.width * im.height > PIXEL_LIMIT:
                raise InputError(where, f"the {what} is {im.width}x{im.height}, more than the {PIXEL_LIMIT} pixels "
                                 "lgseg decodes", FIX)
            if im.mode not in modes:
                raise InputError(where, f"the {what} is a {fmt} of mode {im.mode}: it must be {_MODE_NAMES[modes]}",
                                 FIX)
            return np.array(im)
    except InputError:
        raise
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ... on bad bytes
        raise InputError(where, f"the {what} does not decode as {fmt} ({one_line(e)})", FIX) from None


COLOR_MODES, LABEL_MODES, INSTANCE_MODES = ("RGB",), DEPTH_MODES + ("L",), ("L",)
_MODE_NAMES = {COLOR_MODES: "RGB", DEPTH_MODES: "a 16-bit single-channel PNG",
               LABEL_MODES: "a single-channel 16-bit (or 8-bit) PNG", INSTANCE_MODES: "an 8-bit single-channel PNG"}


def decode_label_image(data: bytes, where: str | Path) -> np.ndarray:
    """ScanNet label ids per pixel, (H, W) uint16, from PNG bytes (16-bit; 8-bit accepted)."""
    return decode_image(data, where, "label image", "PNG", LABEL_MODES).astype(np.uint16)


def decode_instance_image(data: bytes, where: str | Path) -> np.ndarray:
    """Instance ids per pixel, (H, W) uint8, from 8-bit PNG bytes."""
    return decode_image(data, where, "instance image", "PNG", INSTANCE_MODES).astype(np.uint8)


def read_color(path: str | Path) -> np.ndarray:
    """A colour frame, (H, W, 3) uint8, from its JPEG."""
    return decode_image(read_regular(path, "colour image", FIX, IMAGE_LIMIT), path, "colour image", "JPEG",
                        COLOR_MODES)


def read_depth(path: str | Path) -> np.ndarray:
    """A depth frame, (H, W) uint16 millimetres (0: no depth), from its 16-bit single-channel PNG."""
    data = read_regular(path, "depth image", FIX, IMAGE_LIMIT)
    return decode_image(data, path, "depth image", "PNG", DEPTH_MODES).astype(np.uint16)


def read_label_image(path: str | Path) -> np.ndarray:
    """ScanNet's 2D label projection of a frame, (H, W) uint16 ScanNet label ids (0: none)."""
    return decode_label_image(read_regular(path, "label image", FIX, IMAGE_LIMIT), path)


def read_instance_image(path: str | Path) -> np.ndarray:
    """ScanNet's 2D instance projection of a frame, (H, W) uint8 instance ids (0: none)."""
    return decode_instance_image(read_regular(path, "instance image", FIX, IMAGE_LIMIT), path)


# ---- a scene's frame folder --------------------------------------------------------------------

@dataclass
class Frame:
    """One frame's arrays, as :meth:`FrameFolder.frame` returns them."""

    index: int
    color: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (h, w) float32 metres (mm / 1000), 0 where the sensor had no depth
    pose: np.ndarray  # (4, 4) float64 camera-to-world, raw scan frame (not axis-aligned)
    label: np.ndarray | None = None  # (H', W') uint16 ScanNet label ids, where the folder has label-filt/
    instance: np.ndarray | None = None  # (H', W') uint8 instance ids, where it has instance-filt/


@dataclass
class FrameFolder:
    """A scene's frame folder: its frame ids and camera matrices, read once, and one frame on request."""

    path: Path
    ids: list[int]
    intrinsic_color: np.ndarray  # (4, 4), pixels of color/ images
    intrinsic_depth: np.ndarray  # (4, 4), pixels of depth/ images
    extrinsic_color: np.ndarray
    extrinsic_depth: np.ndarray
    has_labels: bool = False
    has_instances: bool = False
    axis_alignment: np.ndarray | None = None  # (4, 4), where the folder has axis_alignment.txt
    _id_set: frozenset = field(default=frozenset(), repr=False)

    @classmethod
    def from_dir(cls, scene_dir: str | Path) -> "FrameFolder":
        scene_dir = Path(scene_dir)
        ids = frame_ids(scene_dir)
        mats = {name: (read_intrinsic if name.startswith("intrinsic") else read_extrinsic)(matrix_path(scene_dir, name))
                for name in MATRIX_NAMES}
        align = read_axis_alignment(scene_dir) if (scene_dir / AXIS_ALIGNMENT).exists() else None
        return cls(scene_dir, ids, mats["intrinsic_color"], mats["intrinsic_depth"], mats["extrinsic_color"],
                   mats["extrinsic_depth"], (scene_dir / LABEL_DIR).is_dir(), (scene_dir / INSTANCE_DIR).is_dir(),
                   align, frozenset(ids))

    def _check(self, index: int) -> None:
        if index not in self._id_set:
            raise ValueError(f"{self.path} has no frame {index}")

    def pose(self, index: int) -> np.ndarray:
        """Frame ``index``'s camera-to-world matrix (raw scan frame), without reading its images."""
        self._check(index)
        return read_pose(pose_path(self.path, index))

    def frame(self, index: int) -> Frame:
        """Frame ``index``'s colour, depth in metres, pose, and label/instance images where present."""
        self._check(index)
        depth = read_depth(depth_path(self.path, index)).astype(np.float32) / np.float32(1000.0)
        return Frame(index, read_color(color_path(self.path, index)), depth, read_pose(pose_path(self.path, index)),
                     read_label_image(label_path(self.path, index)) if self.has_labels else None,
                     read_instance_image(instance_path(self.path, index)) if self.has_instances else None)
