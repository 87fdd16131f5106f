"""The instance bank for instance sampling (paper Sec. 3.2): every instance of the chosen classes
in the train scenes, centred, in four flat arrays.

``<bank>/coord.npy`` float32 (P, 3): points relative to the instance's centre in x and y and to its
lowest point in z (so it stands on z = 0); ``color.npy`` uint8 (P, 3); ``offset.npy`` int64 (K + 1):
instance ``i`` is rows ``offset[i]:offset[i + 1]``; ``label.npy`` int16 (K): its class index;
``meta.json``: classes, counts per class, source scene and instance id of each instance.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir
from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT, NUM_CLASSES, SPLITS, class_indices
from lgseg.scannet.instances import instance_groups
from lgseg.scannet.splits import scene_folders
from lgseg.scene_io import read_array, split_dir


def resolve_classes(spec: str | Sequence[str]) -> list[int]:
    """Class indices from ``"tail"`` / ``"common"`` / ``"head"`` / ``"all"`` or a list of class names."""
    if isinstance(spec, str):
        if spec == "all":
            return list(range(NUM_CLASSES))
        if spec in SPLITS:
            return [c for c in range(NUM_CLASSES) if CLASS_SPLIT[c] == spec]
        raise ValueError(f"instance classes must be one of head, common, tail, all or a list of class "
                         f"names, not {spec!r}")
    return class_indices(spec)


def scene_instances(segment: np.ndarray, instance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labelled instances of a scene: (ids, class of each, vertex order grouping them).

    An instance's class is the most frequent label among its labelled vertices (with limited
    annotations, one annotated vertex names the whole object). Returns ``ids`` (K,), ``labels`` (K,)
    and ``groups``: a list-like of vertex index arrays, one per id.
    """
    has = (instance >= 0) & (segment >= 0)
    if not has.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    pair = instance[has].astype(np.int64) * NUM_CLASSES + segment[has]
    pairs, counts = np.unique(pair, return_counts=True)
    inst, cls = pairs // NUM_CLASSES, pairs % NUM_CLASSES
    # per instance, the class with most votes (np.unique sorts by instance, then class)
    order = np.lexsort((-counts, inst))
    first = np.ones(len(order), bool)
    first[1:] = inst[order][1:] != inst[order][:-1]
    ids, labels = inst[order][first], cls[order][first]
    members, _ = instance_groups(instance)
    starts = np.searchsorted(instance[members], ids)
    ends = np.searchsorted(instance[members], ids, side="right")
    return ids, labels, [members[s:e] for s, e in zip(starts, ends, strict=True)]


def export_instance_bank(processed: str | Path, out: str | Path, classes: Sequence[int],
                         min_points: int = 10, progress: bool = True) -> dict:
    """Write the bank of the train scenes' instances of ``classes`` (with >= ``min_points`` points)."""
    train = split_dir(processed, "train")
    scenes = scene_folders(train)
    if not scenes:
        raise InputError(train, "no preprocessed train scenes", "run dvc repro preprocess (or lgseg preprocess) first")
    wanted = np.zeros(NUM_CLASSES, bool)
    wanted[list(classes)] = True
    coords, colors, labels, sources = [], [], [], []
    for scene in tqdm(scenes, desc="instance bank", unit="scene", disable=not progress):
        coord, color, segment, instance = (read_array(train / scene, key, scene)
                                           for key in ("coord", "color", "segment200", "instance"))
        ids, cls, groups = scene_instances(segment, instance)
        for inst_id, c, idx in zip(ids, cls, groups, strict=True):
            if not wanted[c] or len(idx) < min_points:
                continue
            pts = coord[idx].astype(np.float64)
            lo, hi = pts.min(0), pts.max(0)
            centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
            coords.append((pts - centre).astype(np.float32))
            colors.append(color[idx])
            labels.append(int(c))
            sources.append([scene, int(inst_id)])
    offset = np.concatenate([[0], np.cumsum([len(c) for c in coords])]).astype(np.int64)
    counts = np.bincount(np.asarray(labels, np.int64), minlength=NUM_CLASSES)
    meta = {"classes": [int(c) for c in classes], "instances": len(labels), "points": int(offset[-1]),
            "per_class": {CLASS_NAMES[c]: int(counts[c]) for c in np.flatnonzero(counts)},
            "min_points": min_points, "source": sources}
    with atomic_dir(out) as tmp:
        np.save(tmp / "coord.npy", np.concatenate(coords) if coords else np.zeros((0, 3), np.float32))
        np.save(tmp / "color.npy", np.concatenate(colors) if colors else np.zeros((0, 3), np.uint8))
        np.save(tmp / "offset.npy", offset)
        np.save(tmp / "label.npy", np.asarray(labels, np.int16))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


class InstanceBank:
    """Read access to an exported bank (memory-mapped; cheap to open in every loader worker)."""

    FILES = ("coord.npy", "color.npy", "offset.npy", "label.npy")

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for name in self.FILES:
            if not (self.root / name).is_file():
                raise InputError(self.root / name, "instance bank file missing",
                                 "run the preprocess stage with instance sampling on (dvc repro preprocess)")
        self.coord = np.load(self.root / "coord.npy", mmap_mode="r")
        self.color = np.load(self.root / "color.npy", mmap_mode="r")
        self.offset = np.load(self.root / "offset.npy")
        self.label = np.load(self.root / "label.npy").astype(np.int64)
        if len(self.offset) != len(self.label) + 1 or self.offset[-1] != len(self.coord):
            raise InputError(self.root, "offset.npy, label.npy and coord.npy disagree",
                             "export the bank again (dvc repro preprocess)")
        self.classes = np.unique(self.label)

    def __len__(self) -> int:
        return len(self.label)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray, int]:
        s, e = self.offset[i], self.offset[i + 1]
        return np.asarray(self.coord[s:e], np.float64), np.asarray(self.color[s:e]), int(self.label[i])

    def of_class(self, c: int) -> np.ndarray:
        return np.flatnonzero(self.label == c)
