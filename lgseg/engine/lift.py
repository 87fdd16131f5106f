"""The lift stage's work: a 2D teacher run on every frame of a scene, its per-pixel features fused
onto the scene's points (``lgseg.lifting``: OpenScene's projection, border, occlusion test and
fusion rules), and stored per scene as fp16 features of the points some frame sees.

``data/lifted/<split>/<scene>/`` holds what ``lgseg.lifting.save_fused`` writes (``feat.npy``,
``point.npy``, ``count.npy``): the points are the processed scene's (``coord.npy``, axis-aligned),
projected through the frame folder's poses with its ``axis_alignment.txt``. A scene without frames
gets no folder; the summary counts it. Frames are read and their features computed one at a time
(``fuse`` takes a callable), so memory does not grow with the number of frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir, mark_product
from lgseg.frames.layout import FrameFolder, color_path, depth_path, read_color, read_depth, scene_frames_dir
from lgseg.lifting import View, fuse, save_fused
from lgseg.scannet.splits import scene_folders
from lgseg.scene_io import read_array, split_dir

LIFTED = "lifted 2D features"  # the product mark of data/lifted
SPLITS = ("train", "val", "test")


def lift_scene(teacher, folder: FrameFolder, coord: np.ndarray, lift: dict):
    """The teacher's features of every frame of ``folder`` fused onto ``coord`` (lgseg.lifting.fuse):
    the views (pose, depth) first, then one frame's colour and features at a time."""
    views = [View(folder.pose(i), folder.intrinsic_depth,
                  read_depth(depth_path(folder.path, i)).astype(np.float32) / np.float32(1000.0)) for i in folder.ids]

    def features(k: int) -> np.ndarray:
        return teacher.features(read_color(color_path(folder.path, folder.ids[k])))

    align = folder.axis_alignment if folder.axis_alignment is not None else np.eye(4)
    return fuse(coord, views, features, axis_alignment=align, rule=lift["rule"], border=lift["border"],
                occlusion=lift["occlusion"], occlusion_mode=lift["occlusion_mode"])


META = "meta.json"  # which teacher's features: its name, width and text space (None: not a text space)


def lift_all(teacher, frames_root: str | Path, processed: str | Path, out: str | Path, lift: dict,
             progress: bool = True) -> dict:
    """Lift every split's scenes that have a frame folder into ``out/<split>/<scene>/``; ``out`` is
    replaced as a whole once complete. ``teacher``: a callable returning the teacher (built on first
    use, so that a download without frames needs none). ``out/meta.json`` says whose features they
    are (``teacher.meta()``). Returns per split the scenes lifted, those without frames, the share of
    their points some frame sees and the bytes stored."""
    from lgseg.fileio import write_json

    frames_root, processed = Path(frames_root), Path(processed)
    summary, built = {}, []

    def get():
        if not built:
            built.append(teacher())
        return built[0]

    with atomic_dir(out) as tmp:
        for split in SPLITS:
            scenes = scene_folders(split_dir(processed, split))
            lifted, without, seen, points, stored = 0, 0, 0, 0, 0
            for scene in tqdm(scenes, desc=f"lift {split}", unit="scene", disable=not progress):
                fdir = scene_frames_dir(frames_root / split, scene)
                if not fdir.is_dir():
                    without += 1
                    continue
                coord = read_array(split_dir(processed, split) / scene, "coord", scene)
                fused = lift_scene(get(), FrameFolder.from_dir(fdir), np.asarray(coord, dtype=np.float64), lift)
                target = split_dir(tmp, split) / scene
                save_fused(target, fused)
                lifted += 1
                seen += len(fused.point_index)
                points += len(coord)
                stored += sum(p.stat().st_size for p in target.iterdir())
            summary[split] = {"scenes": lifted, "without_frames": without,
                              "seen_fraction": round(seen / points, 4) if points else None, "bytes": stored}
        write_json(tmp / META, built[0].meta() if built else {"teacher": None, "dim": None, "text": None})
        mark_product(tmp, LIFTED)
    return summary


def lifted_meta(lifted: str | Path) -> dict:
    """``lifted/meta.json``: the teacher, the features' width and their text space (or None)."""
    import json

    path = Path(lifted) / META
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot read the lifted features' description ({e})",
                         "run the lift stage again (dvc repro lift)") from None


def check_lifted(lifted: str | Path, split: str) -> Path:
    """``lifted/<split>``, refused in one line when it holds no scene (no frames to lift from)."""
    base = Path(lifted) / split
    if not scene_folders(base):
        raise InputError(base, f"no lifted 2D features of any {split} scene: the scenes have no RGB-D frames (the "
                         "frames stage exports <scene>.sens; a meshes-only download has none)",
                         "use a download with .sens files, or another pretrain.objective")
    return base


class LiftedTargets:
    """A split's lifted features as a dataset's distillation targets (``ScanNetDataset(lifted=...)``):
    ``(scene, num_points)`` -> (each point's row of the scene's features or -1, the features (V, D)
    float16), None for a scene without a folder (no frames). Read and checked per item (load_fused),
    so worker processes need nothing but the folder's path."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __call__(self, scene: str, num_points: int):
        from lgseg.lifting import load_fused

        folder = self.folder / scene
        if not folder.is_dir():
            return None
        fused = load_fused(folder, num_points=num_points)
        rows = np.full(num_points, -1, dtype=np.int64)
        rows[fused.point_index] = np.arange(len(fused.point_index))
        return rows, fused.features
