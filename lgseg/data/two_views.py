"""Two views of one scene with known point correspondences, for CSC pretraining.

CSC (Hou et al. 2021) pairs two overlapping RGB-D frames of a ScanNet scan, matched by their
registration. lgseg has reconstructed scenes only (ScanNet meshes, the synthetic rooms), so a pair is
two independent augmentations of one scene, as Pointcept's Masked Scene Contrast builds them: the
crop (``augment.crop_points``) is drawn once and shared, then each view gets its own elastic
distortion, rotation, scale, flip and colour changes, its own voxelization and random translation.
Two voxels match when they hold the same mesh vertex (their correspondence is exact, not a nearest
neighbour within a radius as for registered frames); the loss keeps one match per view-a voxel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lgseg.data.transforms import Compose, RandomCrop
from lgseg.data.voxelize import voxelize


def split_crop(transforms: Compose) -> tuple[list, Compose]:
    """``(shared, per_view)``: the crop, drawn once for both views, and the other transforms."""
    ts = list(transforms.transforms)
    shared = [t for t in ts if isinstance(t, RandomCrop)]
    return shared, Compose([t for t in ts if not isinstance(t, RandomCrop)])


def two_views(sample: dict, shared: list, per_view: Compose, voxel_size: float, rngs: tuple,
              random_translation: int = 0, random_point: bool = True) -> dict[str, Any]:
    """Two augmented, voxelized views of ``sample`` (coord metres, color, label) and their matches.

    ``rngs``: three generators, for the shared crop and for each view. Returns ``views`` (two dicts
    with ``coord`` (M, 3) int32 and ``feat`` (M, 3) float32, as a dataset item has them),
    ``matches`` (K, 2) int64 (a voxel of view a, a voxel of view b: the same vertex), one row per
    distinct voxel pair, and ``match_coord`` (K, 3) float32, the matched vertex in the scene's own
    (un-augmented) frame, which the partitions of CSC's shape context are measured in.
    """
    n = len(sample["coord"])
    base = {**sample, "point": np.arange(n)}
    for t in shared:
        base = t(base, rngs[0])
    views, point_voxel = [], []
    for rng in rngs[1:]:
        s = per_view(base, rng)
        vox = voxelize(s["coord"], voxel_size, rng if random_point else None)
        coord = vox.voxel_coord
        if random_translation > 0:
            coord = coord + rng.integers(0, random_translation, size=3).astype(np.int32)
        views.append({"coord": coord.astype(np.int32, copy=False),
                      "feat": np.ascontiguousarray(s["color"][vox.index], dtype=np.float32)})
        point_voxel.append(vox.inverse)  # both views keep every point of base, in its order
    pairs = np.stack(point_voxel, axis=1)
    _, first = np.unique(pairs[:, 0] * (int(pairs[:, 1].max(initial=0)) + 1) + pairs[:, 1], return_index=True)
    return {"views": views, "matches": pairs[first].astype(np.int64),
            "match_coord": np.asarray(sample["coord"], dtype=np.float32)[base["point"][first]]}
