"""One scene's arrays for looking at it: points, ground truth, a prediction, the mesh's faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgseg.errors import InputError
from lgseg.evaluation.benchmark import read_benchmark_file
from lgseg.scannet.constants import raw_to_index

SPLITS = ("val", "train", "test")


def scene_dir(processed: str | Path, scene: str) -> Path:
    """``processed/<split>/<scene>`` for whichever split holds the scene."""
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
    return {"coord": np.load(d / "coord.npy"), "color": np.load(d / "color.npy"),
            "gt": np.load(seg).astype(np.int64) if seg.is_file() else None}


def load_prediction(pred_dir: str | Path, scene: str, num_vertices: int) -> np.ndarray:
    """Class indices (-1 for ids outside the 200) from ``pred_dir/<scene>.txt`` (benchmark format)."""
    path = Path(pred_dir) / f"{scene}.txt"
    if not path.is_file():
        raise InputError(path, "no prediction file for this scene",
                         "point --pred at a folder of <scene>.txt files (the evaluate stage writes predictions/)")
    pred = raw_to_index(read_benchmark_file(path, scene)).astype(np.int64)
    if len(pred) != num_vertices:
        raise InputError(path, f"{len(pred)} labels for a mesh of {num_vertices} vertices",
                         "predictions need one raw ScanNet id per mesh vertex, in mesh order", scene=scene)
    return pred
