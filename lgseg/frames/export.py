"""Export a scene's ``.sens`` stream (and ScanNet's 2D label/instance projections) to a frame folder.

``export_frames`` writes the layout ``lgseg.frames.layout`` names, as ScanNet's SensReader exports
it (every ``frame_step``-th frame, optionally resized with nearest neighbour), with three deviations,
each so that the folder can be trusted as it is:

- frames whose pose is not finite (ScanNet stores a lost pose as all -inf) are skipped and counted;
  SensReader exports them as they are, leaving pose files of ``-inf`` that project nowhere;
- with ``image_size`` the intrinsics written are scaled to the new size (fx, cx by width / old width,
  fy, cy by height / old height), so they match the folder's images; SensReader writes the original
  intrinsics even when it resizes;
- resizing samples each output pixel's centre (OpenCV's INTER_NEAREST_EXACT, Pillow's NEAREST), which
  matches the scaled intrinsics; SensReader's INTER_NEAREST samples its top-left corner (pixels may
  differ by one source pixel).

Depth is written in millimetres whatever the file's depth shift. The folder appears complete or not
at all (``atomic_dir``); it is marked as lgseg's, and an existing folder is only replaced when it is
an earlier export (``claim_folder``). The zips' members are checked by name (exactly
``label-filt/<frame>.png`` or ``instance-filt/<frame>.png``: no other folder, no ``..``, no absolute
path) and size before any is read, and only the exported frames' members are extracted.
"""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir, claim_folder, mark_product, open_regular
from lgseg.frames import layout
from lgseg.frames.layout import check_intrinsic
from lgseg.frames.sens import SIDE_LIMIT, SensHeader, decode_color, decode_depth, iter_frames, read_header

PRODUCT = "RGB-D frames"
JPEG_QUALITY = 95  # resized colour, re-encoded with full-resolution chroma (unresized JPEG is copied as stored)
ZIP_LIMIT = 1 << 34  # a scene's 2D projection zip: ScanNet's are tens to hundreds of MB
ZIP_FIX = "re-download the scene's {name} (ScanNet's download script, --type {suffix})"


def scale_intrinsic(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """A camera matrix for images resized from ``from_size`` to ``to_size`` (each (width, height)):
    the first row (fx, cx) times width ratio, the second (fy, cy) times height ratio."""
    K = np.array(K, dtype=np.float64)
    K[0, :3] *= to_size[0] / from_size[0]
    K[1, :3] *= to_size[1] / from_size[1]
    return K


def resize_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` ((H, W) or (H, W, C)) resized to ``size`` = (width, height) by nearest neighbour,
    each output pixel taking the source pixel under its centre."""
    w, h = size
    H, W = image.shape[:2]
    if (w, h) == (W, H):
        return image
    rows = np.minimum(((np.arange(h) + 0.5) * (H / h)).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * (W / w)).astype(np.int64), W - 1)
    return image[rows[:, None], cols]


def _matrix_text(m: np.ndarray) -> str:
    """4 lines of 4 numbers, each the shortest text that reads back as the same float32/float64."""
    return "".join(" ".join(str(v) for v in row) + "\n" for row in m)


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4
    return buf.getvalue()


def _depth_mm(depth: np.ndarray, shift: float) -> np.ndarray:
    if shift == 1000.0:
        return depth
    mm = np.rint(depth.astype(np.float64) * (1000.0 / shift))
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)  # beyond 65.535 m saturates


class _ProjectionZip:
    """One of ScanNet's 2D projection zips: members ``<folder>/<frame>.png``, checked on opening."""

    def __init__(self, path: str | Path, folder: str, suffix: str):
        self.path, self.folder = Path(path), folder
        self.fix = ZIP_FIX.format(name=self.path.name, suffix=suffix)
        self.file = open_regular(self.path, f"2D projection zip ({folder})", self.fix, ZIP_LIMIT)
        try:
            self.zip = zipfile.ZipFile(self.file)
            self.members = self._index()
        except zipfile.BadZipFile as e:
            self.close()
            raise InputError(self.path, f"not a readable zip ({e})", self.fix) from None
        except BaseException:
            self.close()
            raise

    def _index(self) -> dict[int, zipfile.ZipInfo]:
        members = {}
        pattern = re.compile(re.escape(self.folder) + r"/(0|[1-9][0-9]*)\.png")
        for info in self.zip.infolist():
            if info.filename == self.folder + "/" and info.is_dir():
                continue  # the folder's own entry
            m = pattern.fullmatch(info.filename)
            if not m:
                raise InputError(self.path, f"holds the member {info.filename!r}: a {self.folder} zip holds only "
                                 f"{self.folder}/<frame>.png (no other folder, no '..', no absolute path); not "
                                 "extracted", self.fix)
            if info.flag_bits & 0x1:
                raise InputError(self.path, f"{info.filename} is encrypted", self.fix)
            if info.file_size > layout.IMAGE_LIMIT:
                raise InputError(self.path, f"{info.filename} is {info.file_size} bytes, more than the "
                                 f"{layout.IMAGE_LIMIT} a frame's image can hold", self.fix)
            index = int(m.group(1))
            if index in members:
                raise InputError(self.path, f"holds {info.filename} twice", self.fix)
            members[index] = info
        return members

    def read(self, index: int) -> tuple[bytes, str]:
        """The bytes of frame ``index``'s image, and its name for errors (``zip:member``)."""
        name = f"{self.folder}/{index}.png"
        where = f"{self.path}:{name}"
        info = self.members.get(index)
        if info is None:
            raise InputError(self.path, f"has no {name}: frame {index} is exported and needs its image", self.fix)
        try:
            with self.zip.open(info) as f:
                data = f.read(layout.IMAGE_LIMIT + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
            raise InputError(where, f"does not extract ({type(e).__name__}: {e})", self.fix) from None
        if len(data) > layout.IMAGE_LIMIT:
            raise InputError(where, f"more than the {layout.IMAGE_LIMIT} bytes a frame's image can hold", self.fix)
        return data, where

    def close(self) -> None:
        self.file.close()


def _check_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        w, h = (int(v) for v in image_size)
        ok = (w, h) == tuple(image_size) and 1 <= w <= SIDE_LIMIT and 1 <= h <= SIDE_LIMIT
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"image_size must be (width, height), each 1..{SIDE_LIMIT}, got {image_size!r}")
    return w, h


def _looks_like_frames(folder: Path) -> bool:  # a SensReader export, or lgseg's before it was marked
    return (folder / layout.POSE_DIR).is_dir() and (folder / layout.INTRINSIC_DIR).is_dir()


def _write_matrices(tmp: Path, header: SensHeader, size: tuple[int, int] | None) -> dict[str, np.ndarray]:
    mats = {"intrinsic_color": header.intrinsic_color, "extrinsic_color": header.extrinsic_color,
            "intrinsic_depth": header.intrinsic_depth, "extrinsic_depth": header.extrinsic_depth}
    for name in ("intrinsic_color", "intrinsic_depth"):
        check_intrinsic(mats[name], header.path)  # the folder's reader would refuse them
    out = {name: m.astype(np.float32) for name, m in mats.items()}  # as stored: exact float32 text
    if size is not None:
        color, depth = (header.color_width, header.color_height), (header.depth_width, header.depth_height)
        out["intrinsic_color"] = scale_intrinsic(mats["intrinsic_color"], color, size)
        out["intrinsic_depth"] = scale_intrinsic(mats["intrinsic_depth"], depth, size)
    (tmp / layout.INTRINSIC_DIR).mkdir()
    for name, m in out.items():
        layout.matrix_path(tmp, name).write_text(_matrix_text(m))
    return out


def export_frames(sens_path: str | Path, out_dir: str | Path, frame_step: int = 1,
                  image_size: tuple[int, int] | None = None, label_zip: str | Path | None = None,
                  instance_zip: str | Path | None = None, progress: bool = True,
                  axis_alignment: np.ndarray | None = None) -> dict:
    """Export ``sens_path`` to the frame folder ``out_dir`` (one scene's: ``<frames>/<scene>``).

    Frames 0, frame_step, 2*frame_step, ... (by index in the stream) are exported under their index;
    those among them with a non-finite pose are skipped and counted (ScanNet's SensReader exports
    them as they are). ``image_size`` = (width, height) resizes colour, depth and the label/instance
    images by nearest neighbour and scales the intrinsics written to match (SensReader keeps the
    original intrinsics when resizing: a deviation). Depth is written in millimetres (converted when
    the file's depth shift is not 1000). ``label_zip`` / ``instance_zip``: the scene's
    ``_2d-label-filt.zip`` / ``_2d-instance-filt.zip``, whose exported frames' images are written to
    ``label-filt/`` / ``instance-filt/``; every exported frame must have one. ``axis_alignment``: the
    scene's 4x4 axisAlignment, written as ``axis_alignment.txt`` (lgseg's addition to the layout).

    Returns a summary: frames in the file, frames selected, written, skipped for an invalid pose,
    and the colour and depth sizes written ((width, height)).
    """
    if not isinstance(frame_step, (int, np.integer)) or frame_step < 1:
        raise ValueError(f"frame_step must be an integer >= 1, got {frame_step!r}")
    size = _check_size(image_size)
    sens_path, out_dir = Path(sens_path), Path(out_dir)
    header = read_header(sens_path)
    claim_folder(out_dir, PRODUCT, inputs=(sens_path, label_zip, instance_zip), option="frame folder",
                 looks_like=_looks_like_frames, owns=lambda p: p.name in layout.FRAME_ENTRIES)
    color_size = size or (header.color_width, header.color_height)
    depth_size = size or (header.depth_width, header.depth_height)
    selected = len(range(0, header.num_frames, frame_step))
    zips: dict[str, _ProjectionZip] = {}
    written = skipped = 0
    try:
        if label_zip is not None:
            zips[layout.LABEL_DIR] = _ProjectionZip(label_zip, layout.LABEL_DIR, "_2d-label-filt.zip")
        if instance_zip is not None:
            zips[layout.INSTANCE_DIR] = _ProjectionZip(instance_zip, layout.INSTANCE_DIR, "_2d-instance-filt.zip")
        with atomic_dir(out_dir) as tmp:
            _write_matrices(tmp, header, size)
            if axis_alignment is not None:
                (tmp / layout.AXIS_ALIGNMENT).write_text(_matrix_text(np.asarray(axis_alignment, dtype=np.float64)))
            for kind in (layout.COLOR_DIR, layout.DEPTH_DIR, layout.POSE_DIR, *zips):
                (tmp / kind).mkdir()
            frames = iter_frames(sens_path, frame_step)
            with contextlib.closing(frames), tqdm(frames, total=selected, desc=f"export frames {sens_path.name}",
                                                  unit="frame", disable=not progress) as bar:
                for frame in bar:
                    if not frame.valid_pose:
                        skipped += 1
                        continue
                    i = frame.index
                    color = decode_color(frame, header)
                    if size is None and header.color_compression == "jpeg":
                        color_bytes = frame.color_data  # as stored: no second JPEG loss
                    else:
                        color_bytes = _jpeg(resize_nearest(color, color_size))
                    layout.color_path(tmp, i).write_bytes(color_bytes)
                    depth = _depth_mm(decode_depth(frame, header), header.depth_shift)
                    layout.depth_path(tmp, i).write_bytes(_png(resize_nearest(depth, depth_size)))
                    layout.pose_path(tmp, i).write_text(_matrix_text(frame.camera_to_world.astype(np.float32)))
                    for kind, z in zips.items():
                        data, where = z.read(i)
                        decode = layout.decode_label_image if kind == layout.LABEL_DIR else layout.decode_instance_image
                        image = decode(data, where)
                        if size is not None:
                            image = resize_nearest(image, size)
                        layout.frame_file(tmp, kind, i).write_bytes(_png(image))
                    written += 1
            if written == 0:
                raise InputError(sens_path, f"none of the {selected} frames selected (frame_step {frame_step} of "
                                 f"{header.num_frames} frames) has a valid pose: nothing to export",
                                 "pass a smaller frame_step, or leave this scene out")
            mark_product(tmp, PRODUCT)
    finally:
        for z in zips.values():
            z.close()
    return {"sens": str(sens_path), "frames_in_sens": header.num_frames, "frame_step": int(frame_step),
            "frames_selected": selected, "frames_written": written, "frames_skipped_invalid_pose": skipped,
            "color_size": list(color_size), "depth_size": list(depth_size),
            "labels": layout.LABEL_DIR in zips, "instances": layout.INSTANCE_DIR in zips}


FRAMES = "RGB-D frames of every scene"  # the product mark of a whole frames folder (data/frames)


def export_scenes(raw: str | Path, out: str | Path, frame_step: int = 1, image_size: tuple[int, int] | None = None,
                  progress: bool = True) -> dict:
    """Every scene of ``raw``'s split lists that has a ``<scene>.sens``, exported to
    ``out/<split>/<scene>/`` (``export_frames``) with its 2D projections where the scene has them and
    its axisAlignment; ``out`` is replaced as a whole, once complete. A scene without a ``.sens`` is
    left out and counted (meshes-only downloads are common: ScanNet's streams are ~1.2 TB), so a folder
    with no scene at all is a valid result that the image stages report as such. Returns per split the
    scenes exported, those without frames, and the frames written."""
    from lgseg.scannet.layout import find_scene_dir, scene_file
    from lgseg.scannet.raw import read_meta
    from lgseg.scannet.splits import scene_splits

    raw, out = Path(raw), Path(out)
    claim_folder(out, FRAMES, inputs=[raw])
    splits = scene_splits(raw)
    summary = {}
    with atomic_dir(out) as tmp:
        for split, scenes in splits.items():
            (tmp / split).mkdir()
            done, without, frames = [], [], 0
            for scene in tqdm(scenes, desc=f"frames {split}", unit="scene", disable=not progress):
                folder = find_scene_dir(raw, scene)
                sens = scene_file(folder, "sens")
                if not sens.exists():
                    without.append(scene)
                    continue
                _, align = read_meta(scene_file(folder, "meta"), scene)
                zips = {kind: p if (p := scene_file(folder, kind)).exists() else None
                        for kind in ("label_images", "instance_images")}
                r = export_frames(sens, layout.scene_frames_dir(tmp / split, scene), frame_step, image_size,
                                  zips["label_images"], zips["instance_images"], progress=False,
                                  axis_alignment=np.eye(4) if align is None else align)
                done.append(scene)
                frames += r["frames_written"]
            summary[split] = {"scenes": len(done), "without_frames": len(without), "frames": frames}
        mark_product(tmp, FRAMES)
    return summary
