"""The processed layout (Pointcept's), its one owner: preprocessing writes it through here, and the
dataset, the instance bank, rendering, querying and the CLI read it through here.

``<processed>/<split>/<scene>/``: ``coord.npy`` (float32 N×3, axis-aligned), ``color.npy`` (uint8
N×3) and, for annotated scenes, ``segment200.npy`` (int16, 0..199 or -1 ignore) and ``instance.npy``
(int32, -1 none); one row per mesh vertex in mesh order. ``<processed>/stats.json``: per-class
train point and instance counts.

Scene ids are checked (``check_scene_id``) before they become paths, and only regular files are read
(a FIFO would block ``np.load``). This module sits low, beside ``fileio``: it imports nothing above
``lgseg.scannet``, so preprocessing can write through it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lgseg.errors import InputError
from lgseg.fileio import check_regular, open_regular
from lgseg.scannet.constants import check_scene_id, raw_to_index

ARRAYS = ("coord", "color", "segment200", "instance")  # the per-scene arrays, by key
STATS = "stats.json"
SEARCH_ORDER = ("val", "train", "test")  # where ``scene_dir`` looks for a scene id
PREPROCESS_FIX = "run the preprocess stage again (dvc repro preprocess)"
_BYTES_PER_LABEL = 32  # a benchmark line: one raw id (<= 4 digits) and a line break, ~6 bytes


def split_dir(processed: str | Path, split: str) -> Path:
    return Path(processed) / split


def stats_path(processed: str | Path) -> Path:
    return Path(processed) / STATS


def read_stats(processed: str | Path) -> dict:
    """The parsed stats.json of a processed folder."""
    path = stats_path(processed)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "missing", PREPROCESS_FIX) from None


def array_path(folder: str | Path, key: str) -> Path:
    """``folder/<key>.npy`` for one of ``ARRAYS``."""
    if key not in ARRAYS:
        raise ValueError(f"unknown processed array {key!r}: one of {', '.join(ARRAYS)}")
    return Path(folder) / f"{key}.npy"


def has_array(folder: str | Path, key: str) -> bool:
    """Whether the scene has ``key`` (test scenes have no segment200/instance); a dangling link counts,
    so reading it then fails naming the file rather than the array being silently absent."""
    return os.path.lexists(array_path(folder, key))


def write_scene(folder: str | Path, coord: np.ndarray, color: np.ndarray, segment: np.ndarray | None = None,
                instance: np.ndarray | None = None) -> None:
    """Write one scene's arrays into ``folder`` (preprocessing passes its atomic_dir's temporary)."""
    np.save(array_path(folder, "coord"), coord)
    np.save(array_path(folder, "color"), color)
    if segment is not None:
        np.save(array_path(folder, "segment200"), segment)
    if instance is not None:
        np.save(array_path(folder, "instance"), instance)


def read_array(folder: str | Path, key: str, scene: str, fix: str = PREPROCESS_FIX, mmap: bool = False,
               what: str = "preprocessed array") -> np.ndarray:
    """One array of a scene folder, checked to be a regular file; ``mmap`` maps it read-only."""
    path = array_path(folder, key)
    if mmap:
        check_regular(path, what, fix, scene=scene)
        return np.load(path, mmap_mode="r")
    with open_regular(path, what, fix, scene=scene) as f:
        try:
            return np.load(f)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(path, f"not a readable .npy array ({e})", fix, scene=scene) from None


def scene_dir(processed: str | Path, scene: str) -> Path:
    """``processed/<split>/<scene>`` for whichever split holds the scene."""
    check_scene_id(scene)
    for split in SEARCH_ORDER:
        d = split_dir(processed, split) / scene
        if d.is_dir():
            return d
    raise InputError(processed, f"no preprocessed scene {scene!r} in {', '.join(SEARCH_ORDER)}",
                     "check the scene id (e.g. scene0011_00) or run the preprocess stage (dvc repro preprocess)")


def load_scene(processed: str | Path, scene: str) -> dict[str, np.ndarray]:
    """``coord`` (N, 3), ``color`` (N, 3) uint8 and ``gt`` (N,) class indices, or None for test scenes."""
    d = scene_dir(processed, scene)
    return {"coord": read_array(d, "coord", scene), "color": read_array(d, "color", scene),
            "gt": read_array(d, "segment200", scene).astype(np.int64) if has_array(d, "segment200") else None}


def load_prediction(pred_dir: str | Path, scene: str, num_vertices: int) -> np.ndarray:
    """Class indices (-1 for ids outside the 200) from ``pred_dir/<scene>.txt`` (benchmark format)."""
    from lgseg.evaluation.benchmark import read_benchmark_file  # evaluation's format; keeps this module low

    path = Path(pred_dir) / f"{check_scene_id(scene)}.txt"
    check_regular(path, "prediction file for this scene",
                  "point --pred at a folder of <scene>.txt files (the evaluate stage writes predictions/)",
                  _BYTES_PER_LABEL * num_vertices + 4096, scene)
    pred = raw_to_index(read_benchmark_file(path, scene)).astype(np.int64)
    if len(pred) != num_vertices:
        raise InputError(path, f"{len(pred)} labels for a mesh of {num_vertices} vertices",
                         "predictions need one raw ScanNet id per mesh vertex, in mesh order", scene=scene)
    return pred
