"""Voxelized ScanNet200 scenes from ``data/processed/<split>/<scene>/`` (the layout: ``lgseg.scene_io``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from lgseg.data.transforms import build_transforms
from lgseg.data.two_views import split_crop, two_views
from lgseg.data.voxelize import check_voxel_size, voxelize
from lgseg.errors import InputError
from lgseg.scannet.constants import IGNORE_INDEX, IS_INSTANCE_CLASS
from lgseg.scannet.splits import scene_folders
from lgseg.scene_io import array_path, has_array, read_array, split_dir

VOXEL_POINTS = ("random", "first")
_PREPROCESS_FIX = "Run the preprocess stage first (dvc repro preprocess, or lgseg preprocess)"


class ScanNetDataset(Dataset):
    """One item per scene (times ``loop``): voxel coordinates, features and labels.

    An item is a dict with ``coord`` (M, 3) int32 voxel coordinates, ``feat`` (M, 3) float32
    colour (rgb/255 - 0.5), ``label`` (M,) int64 (-1 ignore), ``scene``, ``num_points`` (N) and,
    when not training, ``inverse`` (N,) int64 voxel of each mesh vertex (to map predictions back).

    Training applies the augmentations of ``transforms_cfg`` (see ``build_transforms``) in
    metres, picks the representative point of each voxel (``voxel_point``: ``random``, a new one
    every epoch, or ``first`` in file order, as the authors' code) and adds a random integer translation
    in ``[0, random_translation)`` voxels per axis (the reference's ``rand(3) * 100``; 0 = off).
    The randomness of item ``index`` comes from ``np.random.default_rng([seed, epoch, index])``,
    so it is the same in any worker process and changes with ``set_epoch``. (With persistent
    DataLoader workers, ``set_epoch`` does not reach the workers' copies: use non-persistent ones.)

    ``ignore_classes``: class indices whose labels become -1 (e.g. held-out classes).
    ``instance_sampler``: training only, pastes instances into each scene before the augmentations
    (``lgseg.data.instance_sampling.InstanceSampler``).
    ``instance_targets``: items also carry the instance task's targets (``instance_targets``).
    ``two_views``: training only, an item is two augmented views of the scene and their matched voxels
    (``lgseg.data.two_views``, for CSC pretraining) instead of one.
    ``lifted``: ``lifted(scene, num_points)`` -> (each point's row of the scene's lifted 2D features or
    -1, those features (V, D)), or None for a scene without any (``lgseg.engine.lift.LiftedTargets``):
    items also carry ``target`` (M, D) float16, the feature of each voxel's point, and ``has_target``
    (M,) bool, whether some frame saw it (2D-to-3D distillation).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        voxel_size: float = 0.02,
        transforms_cfg: Mapping[str, Any] | None = None,
        train: bool = False,
        loop: int = 1,
        scenes: Sequence[str] | None = None,
        random_translation: int = 100,
        seed: int = 0,
        ignore_classes: Sequence[int] | None = None,
        instance_sampler=None,
        voxel_point: str = "random",
        instance_targets: bool = False,
        two_views: bool = False,
        lifted=None,
    ) -> None:
        voxel_size = check_voxel_size(voxel_size)
        if loop < 1:
            raise ValueError(f"loop must be >= 1, not {loop}")
        if voxel_point not in VOXEL_POINTS:
            raise ValueError(f"voxel_point must be one of {', '.join(VOXEL_POINTS)}, not {voxel_point!r}")
        if random_translation < 0:
            raise ValueError(f"random_translation must be >= 0, not {random_translation}")
        self.split_dir = split_dir(root, split)
        self.split = split
        self.voxel_size = float(voxel_size)
        self.train = bool(train)
        self.loop = int(loop)
        self.random_translation = int(random_translation)
        self.seed = int(seed)
        self.voxel_point = voxel_point
        self.epoch = 0
        self.transforms = build_transforms(transforms_cfg, train=self.train)
        self.ignore_classes = (None if ignore_classes is None
                               else np.asarray(sorted(ignore_classes), dtype=np.int64))
        self.scenes = self._find_scenes(scenes)
        self.instance_sampler = instance_sampler if self.train else None
        self.instance_targets = bool(instance_targets)
        self.two_views = bool(two_views) and self.train
        if self.two_views:
            self._shared, self._per_view = split_crop(self.transforms)
        self.lifted = lifted
        if self.lifted is not None and (self.instance_sampler is not None or self.two_views):
            raise ValueError("lifted targets go with plain items: no instance sampling, no two views")

    def _find_scenes(self, wanted: Sequence[str] | None) -> list[str]:
        found = scene_folders(self.split_dir)  # never a killed run's .<scene>.tmp-* folder
        if not found:
            problem = "no such folder" if not self.split_dir.is_dir() else "no scene folders in it"
            raise InputError(self.split_dir, f"{problem} (split {self.split!r})", _PREPROCESS_FIX)
        if wanted is None:
            return found
        missing = sorted(set(wanted) - set(found))
        if missing:
            raise InputError(self.split_dir, f"scenes not found: {', '.join(missing)}", _PREPROCESS_FIX)
        return list(wanted)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream (call before each epoch's iteration)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.scenes) * self.loop

    def load_scene(self, scene: str) -> dict[str, np.ndarray]:
        """The scene's arrays as stored: coord (N,3) float32, color (N,3) uint8, label (N,) int64."""
        folder = self.split_dir / scene
        arrays = {key: read_array(folder, key, scene, _PREPROCESS_FIX, mmap=True) for key in ("coord", "color")}
        n = len(arrays["coord"])
        if n == 0:
            raise InputError(array_path(folder, "coord"), "scene has no points", _PREPROCESS_FIX, scene=scene)
        if has_array(folder, "segment200"):
            label = read_array(folder, "segment200", scene, _PREPROCESS_FIX).astype(np.int64)
        else:  # test scenes have no annotation
            label = np.full(n, IGNORE_INDEX, dtype=np.int64)
        arrays["label"] = label
        for key, arr in arrays.items():
            want = (n, 3) if key != "label" else (n,)
            if arr.shape != want:
                raise InputError(folder, f"{key} has shape {arr.shape}, expected {want} "
                                 f"(coord has {n} points)", _PREPROCESS_FIX, scene=scene)
        if self.ignore_classes is not None:
            label[np.isin(label, self.ignore_classes)] = IGNORE_INDEX
        return arrays

    def _instances(self, scene: str, n: int) -> np.ndarray:
        path = array_path(self.split_dir / scene, "instance")
        instance = read_array(path.parent, "instance", scene, _PREPROCESS_FIX,
                              what="instance array (instance sampling needs the scene's objects)")
        if instance.shape != (n,):
            raise InputError(path, f"shape {instance.shape}, expected ({n},)", _PREPROCESS_FIX, scene=scene)
        return instance

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.scenes[index % len(self.scenes)]
        data = self.load_scene(scene)
        num_points = len(data["coord"])
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None

        sample = {"coord": np.asarray(data["coord"], dtype=np.float64),
                  "color": np.asarray(data["color"], dtype=np.float32), "label": data["label"]}
        lifted = self.lifted(scene, num_points) if self.lifted is not None else None
        if lifted is not None:  # each point's row of the lifted features, carried through crops
            sample["lifted_row"] = lifted[0]
        if self.two_views:
            rngs = tuple(np.random.default_rng([self.seed, self.epoch, index, k]) for k in range(3))
            pair = two_views(sample, self._shared, self._per_view, self.voxel_size, rngs,
                             self.random_translation, self.voxel_point == "random")
            return {**pair, "scene": scene, "num_points": num_points}
        instance = self._instances(scene, num_points) if self.instance_sampler or self.instance_targets else None
        if self.instance_sampler is not None:
            sample, placed = self.instance_sampler(sample, instance, rng)
            if self.instance_targets:  # each pasted object is an instance of its own
                sample["instance"] = _with_placed(instance, placed, len(sample["coord"]))
        elif self.instance_targets:
            sample["instance"] = np.asarray(instance)
        sample = self.transforms(sample, rng)
        vox = voxelize(sample["coord"], self.voxel_size, rng if self.voxel_point == "random" else None)

        coord = vox.voxel_coord
        if self.train and self.random_translation > 0:
            coord = coord + rng.integers(0, self.random_translation, size=3).astype(np.int32)
        item = {
            "coord": coord.astype(np.int32, copy=False),
            "feat": np.ascontiguousarray(sample["color"][vox.index], dtype=np.float32),
            "label": sample["label"][vox.index].astype(np.int64),
            "scene": scene,
            "num_points": num_points,
        }
        if self.instance_targets:
            item.update(instance_targets(vox.voxel_coord, sample["instance"][vox.index], item["label"],
                                         self.voxel_size))
        if self.lifted is not None:
            rows = sample["lifted_row"][vox.index] if lifted is not None else np.full(len(coord), -1)
            item["has_target"] = rows >= 0
            item["target"] = (lifted[1][np.maximum(rows, 0)] if lifted is not None
                              else np.zeros((len(coord), 0), dtype=np.float16))
        if not self.train:
            item["inverse"] = vox.inverse
        return item


def instance_targets(voxel_coord: np.ndarray, instance: np.ndarray, label: np.ndarray,
                     voxel_size: float) -> dict[str, np.ndarray]:
    """The instance task's targets of one scene's voxels, as the authors' code makes them:
    ``instance`` (M,) int64, the voxel's object, -1 where none or where its label is ignored or is
    no instance class (wall, floor); ``offset`` (M, 3) float32 metres from the voxel to the centroid
    of its object's voxels (in the augmented frame the network sees; 0 where no instance)."""
    instance = np.where((label >= 0) & IS_INSTANCE_CLASS[np.maximum(label, 0)], instance, -1).astype(np.int64)
    offset = np.zeros((len(instance), 3), dtype=np.float32)
    valid = instance >= 0
    if valid.any():
        ids, which = np.unique(instance[valid], return_inverse=True)
        pos = voxel_coord[valid].astype(np.float64)
        counts = np.bincount(which, minlength=len(ids))[:, None]
        centroid = np.stack([np.bincount(which, pos[:, a], len(ids)) for a in range(3)], axis=1) / counts
        offset[valid] = (centroid[which] - pos) * voxel_size
    return {"instance": instance, "offset": offset}


def _with_placed(instance: np.ndarray, placed, n: int) -> np.ndarray:
    """The scene's instance ids followed by a new id for each pasted object (its ``rows``)."""
    out = np.full(n, -1, dtype=np.int64)
    out[: len(instance)] = instance
    first = int(instance.max(initial=-1)) + 1
    for k, p in enumerate(placed):
        out[p.rows] = first + k
    return out
