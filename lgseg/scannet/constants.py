"""ScanNet200 facts carried as package data (official benchmark scripts; see meta/).

Class *index* i in 0..199 is the position of a raw ScanNet id in the ascending VALID_CLASS_IDS;
-1 (IGNORE_INDEX) marks points that are none of the 200 classes.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import numpy as np

from lgseg.errors import InputError

IGNORE_INDEX = -1
NUM_CLASSES = 200
SPLITS = ("head", "common", "tail")

#: a ScanNet scene id, ``scene<space: 4 digits>_<scan: 2 digits>`` (ASCII digits only, not \d)
SCENE_ID = re.compile(r"scene[0-9]{4}_[0-9]{2}")
SCENE_ID_FIX = "give a ScanNet scene id such as scene0011_00"


def _meta(name: str):
    return json.loads(resources.files("lgseg.scannet").joinpath("meta", name).read_text())


_c = _meta("scannet200_constants.json")
VALID_CLASS_IDS: tuple[int, ...] = tuple(_c["valid_class_ids"])
CLASS_NAMES: tuple[str, ...] = tuple(_c["class_labels"])
SPLIT_CLASS_NAMES: dict[str, tuple[str, ...]] = {s: tuple(_c[s]) for s in SPLITS}
_p = _meta("scannet200_val_presence.json")
VAL_PRESENT_CLASS_IDS: tuple[int, ...] = tuple(_p["val_present_class_ids"])
TRAIN_ONLY_CLASS_IDS: tuple[int, ...] = tuple(_p["train_only_class_ids"])
del _c, _p

NAME_TO_INDEX: dict[str, int] = {n: i for i, n in enumerate(CLASS_NAMES)}
ID_TO_INDEX: dict[int, int] = {cid: i for i, cid in enumerate(VALID_CLASS_IDS)}
#: split name ("head"/"common"/"tail") of each class index
CLASS_SPLIT: tuple[str, ...] = tuple(
    next(s for s in SPLITS if n in SPLIT_CLASS_NAMES[s]) for n in CLASS_NAMES
)
#: class indices of each split, ascending
SPLIT_INDICES: dict[str, np.ndarray] = {
    s: np.array([i for i, sp in enumerate(CLASS_SPLIT) if sp == s], dtype=np.int64) for s in SPLITS
}

#: wall and floor never form instances: ScanNet200's instance benchmark evaluates the other 198
#: classes (ceiling included), as the authors' and Mask3D's evaluations do
NO_INSTANCE_CLASS_IDS: tuple[int, ...] = (1, 3)
INSTANCE_CLASS_IDS: tuple[int, ...] = tuple(c for c in VALID_CLASS_IDS if c not in NO_INSTANCE_CLASS_IDS)
#: whether class index i is one of the 198 instance classes
IS_INSTANCE_CLASS: np.ndarray = np.array([c not in NO_INSTANCE_CLASS_IDS for c in VALID_CLASS_IDS])
IS_INSTANCE_CLASS.setflags(write=False)

# Lookup table raw ScanNet id -> class index (or IGNORE_INDEX), for vectorised mapping.
_RAW_TO_INDEX = np.full(max(VALID_CLASS_IDS) + 1, IGNORE_INDEX, dtype=np.int16)
_RAW_TO_INDEX[list(VALID_CLASS_IDS)] = np.arange(NUM_CLASSES)
_INDEX_TO_RAW = np.asarray(VALID_CLASS_IDS, dtype=np.int32)


def raw_to_index(raw_ids: np.ndarray) -> np.ndarray:
    """Map raw ScanNet ids to class indices 0..199; any other id (0, unknown, negative) -> -1."""
    raw_ids = np.asarray(raw_ids)
    out = np.full(raw_ids.shape, IGNORE_INDEX, dtype=np.int16)
    ok = (raw_ids >= 0) & (raw_ids < len(_RAW_TO_INDEX))
    out[ok] = _RAW_TO_INDEX[raw_ids[ok]]
    return out


def index_to_raw(indices: np.ndarray) -> np.ndarray:
    """Map class indices 0..199 to raw ScanNet ids; -1 (ignore) -> 0."""
    indices = np.asarray(indices)
    out = np.zeros(indices.shape, dtype=np.int32)
    ok = (indices >= 0) & (indices < NUM_CLASSES)
    out[ok] = _INDEX_TO_RAW[indices[ok]]
    return out


def class_indices(names) -> list[int]:
    """Sorted distinct class indices of ScanNet200 class ``names``; ValueError naming the unknown ones."""
    unknown = [n for n in names if n not in NAME_TO_INDEX]
    if unknown:
        raise ValueError(f"unknown ScanNet200 class name(s): {', '.join(map(repr, unknown))}")
    return sorted({NAME_TO_INDEX[n] for n in names})


def is_scene_id(name: str) -> bool:
    return SCENE_ID.fullmatch(name) is not None


def check_scene_id(scene: str, path: str | Path | None = None, line: int | None = None,
                   fix: str = SCENE_ID_FIX) -> str:
    """Return ``scene`` if it is a ScanNet scene id, else raise InputError naming ``path`` and ``line``.

    Only ``scene[0-9]{4}_[0-9]{2}`` passes, nothing else: every ScanNet v2 scene has such an id, and
    so does every synthetic one (lgseg.synthetic numbers them scene0000_00, scene0001_00, ...).
    Ids become file and folder names, so anything looser (a path, '..', '') could leave its folder.
    """
    if isinstance(scene, str) and is_scene_id(scene):
        return scene
    where = f"line {line}: " if line is not None else ""
    raise InputError(path, f"{where}{scene!r} is not a ScanNet scene id (scene, 4 digits, _, 2 digits)", fix)


def official_scene_list(split: str) -> list[str]:
    """The official ScanNet v2 scene list of ``split`` (train: 1201, val: 312, test: 100)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; expected train, val or test")
    text = resources.files("lgseg.scannet").joinpath("meta", f"scannetv2_{split}.txt").read_text()
    where = f"lgseg/scannet/meta/scannetv2_{split}.txt"
    return [check_scene_id(line.strip(), where, n, "reinstall lgseg (./install.sh)")
            for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
