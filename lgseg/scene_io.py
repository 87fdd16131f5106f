"""The processed layout (Pointcept's), its one owner: preprocessing writes it through here, and the
dataset, the instance bank, rendering, querying and the CLI read it through here.

``<processed>/<split>/<scene>/``: ``coord.npy`` (float32 N×3, axis-aligned metres, finite and within
1 km: ``check_coordinates``, the one rule raw scans follow too), ``color.npy`` (uint8
N×3), ``normal.npy`` (float32 N×3, unit vertex normals in coord's frame) and, for annotated scenes,
``segment200.npy`` (int16, 0..199 or -1 ignore) and ``instance.npy`` (int32, -1 none); one row per
mesh vertex in mesh order. These are the arrays Pointcept's ScanNet200 dataset reads (``ARRAYS``), so
Pointcept trains on the folder as it is. ``<processed>/stats.json``: per-class train point and
instance counts.

The other way round, a folder that Pointcept's own preprocessing wrote (labels as int64, coord not
axis-aligned) is read here too: ``processed_scenes`` lists and checks its scenes,
``link_processed`` links it into a folder of ours and ``read_scene_arrays`` reads a scene of it
checked and in the dtypes above.

Scene ids are checked (``check_scene_id``) before they become paths, and only regular files are read
(a FIFO would block ``np.load``). This module sits low, beside ``fileio``: it imports nothing above
``lgseg.scannet``, so preprocessing can write through it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir, check_regular, listed_file, open_regular
from lgseg.scannet.constants import IGNORE_INDEX, NUM_CLASSES, check_scene_id, raw_to_index
from lgseg.scannet.layout import SPLIT_NAMES
from lgseg.scannet.splits import scene_path

# the per-scene arrays, by key: exactly those Pointcept's ScanNet200Dataset reads (its VALID_ASSETS)
ARRAYS = ("coord", "color", "normal", "segment200", "instance")
GEOMETRY = ("coord", "color")  # what every scene has; normal too when lgseg wrote it
LABELS = ("segment200", "instance")  # what every train and val scene has
STATS = "stats.json"
SEARCH_ORDER = ("val", "train", "test")  # where ``scene_dir`` looks for a scene id
PREPROCESS_FIX = "run the preprocess stage again (dvc repro preprocess)"
_BYTES_PER_LABEL = 32  # a benchmark line: one raw id (<= 4 digits) and a line break, ~6 bytes

log = logging.getLogger(__name__)

# Coordinates are metres. A ScanNet room spans at most ~20 m and sits within a few metres of its
# origin; 1 km is far beyond any room (or building) yet keeps every later step exact: float32 still
# resolves 0.1 mm there, and the voxel grid's int64 cell key (``lgseg.data.voxelize``) stays far below
# its 2**62 limit (2 km / 2 cm = 1e5 cells per axis, 1e15 keys; even 2 mm voxels give 1e18). A
# coordinate beyond it is a corrupt file or wrong units (millimetres), never a room.
COORD_LIMIT = 1000.0


def check_coordinates(coord: np.ndarray, path: str | Path, scene: str | None, fix: str, where: str = "") -> None:
    """The one rule for a scene's vertex coordinates, raw (the PLY, then its axis-aligned frame) or
    processed (coord.npy): every coordinate finite and within +-COORD_LIMIT metres. An InputError names
    the file, the first bad vertex (0-based, as the mesh's faces count) and its coordinates; ``where``
    says in which frame (" after this file's axisAlignment")."""
    coord = np.asarray(coord)
    if coord.dtype.kind != "f":  # integers: abs() of the most negative int64 is itself, negative
        coord = coord.astype(np.float64)
    with np.errstate(invalid="ignore"):
        if coord.size == 0 or np.abs(coord).max() <= COORD_LIMIT:  # NaN fails the test: max propagates it
            return
        bad = int(np.flatnonzero(~(np.abs(coord) <= COORD_LIMIT).reshape(len(coord), -1).all(axis=1))[0])
    shown = ", ".join(format(float(v), ".6g") for v in np.ravel(coord[bad]))
    raise InputError(path, f"vertex {bad} is at ({shown}){where}: coordinates must be finite and within "
                     f"+-{COORD_LIMIT:g} m (a room's scale)", fix, scene=scene)


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
                instance: np.ndarray | None = None, normal: np.ndarray | None = None) -> None:
    """Write one scene's arrays into ``folder`` (preprocessing passes its atomic_dir's temporary)."""
    np.save(array_path(folder, "coord"), coord)
    np.save(array_path(folder, "color"), color)
    if normal is not None:
        np.save(array_path(folder, "normal"), normal)
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

    path = listed_file(pred_dir, f"{check_scene_id(scene)}.txt", "prediction file", scene=scene)
    limit = _BYTES_PER_LABEL * num_vertices + 4096
    check_regular(path, "prediction file for this scene",
                  "point --pred at a folder of <scene>.txt files (the evaluate stage writes predictions/)", limit, scene)
    pred = raw_to_index(read_benchmark_file(path, scene, limit=limit)).astype(np.int64)
    if len(pred) != num_vertices:
        raise InputError(path, f"{len(pred)} labels for a mesh of {num_vertices} vertices",
                         "predictions need one raw ScanNet id per mesh vertex, in mesh order", scene=scene)
    return pred


# ---- a processed folder made elsewhere (Pointcept's preprocessing): list, link, read checked ----

PROCESSED_FIX = ("point data.processed_root at a folder in Pointcept's ScanNet200 layout: train/ and val/ "
                 "(and test/) holding one folder per scene (scene0000_00/) with coord.npy, color.npy and, "
                 "for train and val scenes, segment200.npy and instance.npy")
_SPLIT_ENTRY_FIX = "rename or remove it: only scene folders (scene0000_00/) may sit in train/, val/ and test/"
_INT32_MAX = int(np.iinfo(np.int32).max)


def processed_scenes(root: str | Path) -> dict[str, list[str]]:
    """The sorted scene ids of each split (train, val, test) of a processed-layout folder, checked:
    every folder in a split folder is named by a scene id (hidden entries and plain files beside
    the scene folders are left alone), no scene sits in two splits, and train and val have scenes."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder" if not root.exists() else "not a folder", PROCESSED_FIX)
    scenes: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for split in SPLIT_NAMES:
        base = split_dir(root, split)
        entries = sorted(base.iterdir()) if base.is_dir() else []
        scenes[split] = []
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            scene = check_scene_id(entry.name, entry, fix=_SPLIT_ENTRY_FIX)
            if scene in where:
                raise InputError(entry, f"scene {scene} is in both {where[scene]}/ and {split}/",
                                 "keep each scene in one split")
            where[scene] = split
            scenes[split].append(scene)
    for split in ("train", "val"):
        if not scenes[split]:
            base = split_dir(root, split)
            pth = len(list(base.glob("scene*.pth"))) if base.is_dir() else 0
            problem = ("no such folder" if not base.is_dir() else
                       f"no scene folders, but {pth} .pth files: Pointcept's older layout (one .pth per scene); "
                       "run Pointcept's current ScanNet preprocessing" if pth else "no scene folders in it")
            raise InputError(base, f"{problem} (split {split!r})", PROCESSED_FIX)
    return scenes


def link_processed(root: str | Path, out: str | Path) -> dict[str, int]:
    """Symlink the arrays of every scene of the processed-layout folder ``root`` into ``out``, which is
    replaced only once complete; returns the number of scenes per split.

    Only the layout's own names are made in ``out``: split folders, a real folder (never a link into
    ``root``) per checked scene id, and one ``<key>.npy`` link per array of ``ARRAYS`` the scene has,
    each checked first to lead to a regular file. Nothing else of ``root`` (its stats.json, other
    arrays, stray files or links) is taken, so no path built from ``root``'s entries leaves ``out``.
    Every scene has coord and color, train and val scenes also segment200 and instance: a missing
    one is an error naming it, before anything is written.
    """
    root = Path(root).expanduser().resolve()
    scenes = processed_scenes(root)
    plan = []
    for split, ids in scenes.items():
        required = GEOMETRY + (LABELS if split != "test" else ())
        for scene in ids:
            folder = split_dir(root, split) / scene
            keys = [k for k in ARRAYS if k in required or os.path.lexists(array_path(folder, k))]
            for key in keys:
                check_regular(array_path(folder, key), f"{key} array of a {split} scene", PROCESSED_FIX, scene=scene)
            plan.append((split, scene, keys))
    with atomic_dir(out) as tmp:
        for split, scene, keys in plan:
            dst = scene_path(split_dir(tmp, split), scene)
            dst.mkdir(parents=True)
            for key in keys:
                os.symlink(array_path(split_dir(root, split) / scene, key), array_path(dst, key))
    return {split: len(ids) for split, ids in scenes.items()}


def read_scene_arrays(folder: str | Path, scene: str, labels: bool = True,
                      fix: str = PROCESSED_FIX) -> dict[str, np.ndarray]:
    """A scene folder's arrays, checked and in this layout's dtypes: ``coord`` float32 (N, 3), ``color``
    uint8 (N, 3), ``normal`` float32 (N, 3) when the scene has one, and with ``labels`` ``segment200``
    int16 and ``instance`` int32 (N,), required then. What Pointcept's preprocessing writes (int64
    labels) is accepted, and float colours in 0..1 or 0..255 (``_colors``); a wrong shape, a coordinate
    that breaks ``check_coordinates``, a colour outside those ranges, a non-finite normal or a label
    outside -1..199 is an InputError naming the file."""
    folder = Path(folder)
    out = {"coord": _conform(read_array(folder, "coord", scene, fix), "coord", None, folder, scene, fix)}
    n = len(out["coord"])
    keys = ["color"] + (["normal"] if has_array(folder, "normal") else []) + (list(LABELS) if labels else [])
    for key in keys:
        out[key] = _conform(read_array(folder, key, scene, fix), key, n, folder, scene, fix)
    return out


def _conform(arr: np.ndarray, key: str, n: int | None, folder: Path, scene: str, fix: str) -> np.ndarray:
    """``arr`` (the scene's ``key`` array) checked and cast to this layout's dtype; ``n``: coord's length."""
    path = array_path(folder, key)

    def bad(problem: str) -> InputError:
        return InputError(path, problem, fix, scene=scene)

    if key == "coord":
        if arr.ndim != 2 or arr.shape[1] != 3 or len(arr) == 0:
            raise bad(f"shape {arr.shape}, expected (N, 3) with N >= 1 points")
    else:
        want = (n,) if key in LABELS else (n, 3)
        if key in LABELS and arr.shape == (n, 1):  # Pointcept reshapes labels to (N,) on reading
            arr = arr.reshape(n)
        if arr.shape != want:
            raise bad(f"shape {arr.shape}, expected {want} (coord has {n} points)")
    if arr.dtype.kind not in ("iu" if key in LABELS else "iuf"):
        raise bad(f"dtype {arr.dtype}, expected {'integers' if key in LABELS else 'numbers'}")
    if key in LABELS:
        lo, hi, what = ((IGNORE_INDEX, NUM_CLASSES - 1, "class indices 0..199, -1 ignore") if key == "segment200"
                        else (-1, _INT32_MAX, "instance ids >= 0, -1 none"))
        outside = (arr < lo) | (arr > hi)
        if outside.any():
            raise bad(f"value {arr[outside][0]} outside {lo}..{hi} ({what})")
        return arr.astype(np.int16 if key == "segment200" else np.int32)
    if key == "coord":
        check_coordinates(arr, path, scene, fix)
        return arr.astype(np.float32)
    if key == "color":
        return _colors(arr, path, scene, fix)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise bad("holds NaN or infinite values")
    return arr.astype(np.float32)


def _colors(arr: np.ndarray, path: Path, scene: str, fix: str) -> np.ndarray:
    """color.npy as uint8 rgb. Integers must lie in 0..255. Floats are read by their range, never
    truncated (a cast made 0..1 colours {0, 1}: black): all within [0, 1] is the 0..1 convention of
    many exporters (Open3D's), scaled by 255 and rounded, with one logged notice naming the file; all
    within [0, 255] with any value above 1 is 0..255, rounded. (Float colours with no value above 1
    are read as 0..1: as 0..255 they would be black anyway.) Anything else, or a NaN, is an InputError."""
    if arr.dtype == np.uint8:
        return arr
    if arr.size == 0:
        return arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            lo, hi = float(np.min(arr)), float(np.max(arr))  # NaN propagates to both
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError(path, "holds NaN or infinite colour values", fix, scene=scene)
        if lo >= 0 and hi <= 1:
            log.warning("scene %s, %s: float colours in 0..1, scaled to rgb 0..255", scene, path)
            return np.rint(arr.astype(np.float64) * 255).astype(np.uint8)
        if lo >= 0 and hi <= 255:
            return np.rint(arr).astype(np.uint8)
        raise InputError(path, f"float colours {lo:g}..{hi:g}, expected rgb in 0..1 or 0..255", fix, scene=scene)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 255:
        raise InputError(path, f"values {lo}..{hi}, expected rgb in 0..255", fix, scene=scene)
    return arr.astype(np.uint8)
