"""One scene's arrays for looking at it: points, ground truth, a prediction, the mesh's faces.

Scene ids are checked (``check_scene_id``) before they become paths, and only regular files are read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lgseg.errors import InputError
from lgseg.evaluation.benchmark import read_benchmark_file
from lgseg.scannet.constants import check_scene_id, raw_to_index
from lgseg.fileio import check_regular, open_regular

SPLITS = ("val", "train", "test")
_PREPROCESS_FIX = "run the preprocess stage again (dvc repro preprocess)"
_BYTES_PER_LABEL = 32  # a benchmark line: one raw id (<= 4 digits) and a line break, ~6 bytes


def scene_dir(processed: str | Path, scene: str) -> Path:
    """``processed/<split>/<scene>`` for whichever split holds the scene."""
    check_scene_id(scene)
    for split in SPLITS:
        d = Path(processed) / split / scene
        if d.is_dir():
            return d
    raise InputError(processed, f"no preprocessed scene {scene!r} in {', '.join(SPLITS)}",
                     "check the scene id (e.g. scene0011_00) or run the preprocess stage (dvc repro preprocess)")


def load_scene(processed: str | Path, scene: str) -> dict[str, np.ndarray]:
    """``coord`` (N, 3), ``color`` (N, 3) uint8 and ``gt`` (N,) class indices, or None for test scenes."""
    d = scene_dir(processed, scene)
    seg = d / "segment200.npy"
    return {"coord": _load(d / "coord.npy", scene), "color": _load(d / "color.npy", scene),
            "gt": _load(seg, scene).astype(np.int64) if os.path.lexists(seg) else None}


def _load(path: Path, scene: str) -> np.ndarray:
    with open_regular(path, "preprocessed array", _PREPROCESS_FIX, scene=scene) as f:
        try:
            return np.load(f)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(path, f"not a readable .npy array ({e})", _PREPROCESS_FIX, scene=scene) from None


def load_prediction(pred_dir: str | Path, scene: str, num_vertices: int) -> np.ndarray:
    """Class indices (-1 for ids outside the 200) from ``pred_dir/<scene>.txt`` (benchmark format)."""
    path = Path(pred_dir) / f"{check_scene_id(scene)}.txt"
    check_regular(path, "prediction file for this scene",
                  "point --pred at a folder of <scene>.txt files (the evaluate stage writes predictions/)",
                  _BYTES_PER_LABEL * num_vertices + 4096, scene)
    pred = raw_to_index(read_benchmark_file(path, scene)).astype(np.int64)
    if len(pred) != num_vertices:
        raise InputError(path, f"{len(pred)} labels for a mesh of {num_vertices} vertices",
                         "predictions need one raw ScanNet id per mesh vertex, in mesh order", scene=scene)
    return pred
