"""Batch voxelized scenes into one sparse tensor input (MinkowskiEngine convention)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)
_warned_truncation = False  # warn once per process; later truncations go to debug


def _note_truncation(dropped: int, total: int, kept_points: int, max_points: int) -> None:
    global _warned_truncation
    msg = (f"batch truncated: dropped {dropped} of {total} samples to keep {kept_points} "
           f"<= max_points={max_points} voxels (reference: train_limit_numpoints)")
    if _warned_truncation:
        log.debug(msg)
    else:
        _warned_truncation = True
        log.warning(msg + "; further truncations are logged at debug level")


def collate(samples: Sequence[dict[str, Any]], max_points: int | None = None) -> dict[str, Any]:
    """Concatenate samples from ``ScanNetDataset`` into one batch.

    Returns ``coord`` (sumM, 4) int32 with the batch index in column 0, ``feat`` (sumM, 3)
    float32, ``label`` (sumM,) int64, ``offset`` (B+1,) int64 cumulative voxel counts starting
    at 0, ``scenes`` and ``num_points`` lists, ``inverse`` (list of (N_i,) int64 tensors)
    when every sample has one, and the instance task's ``instance`` (sumM,) int64 and ``offset``
    (sumM, 3) float32 when every sample has them (instance ids stay per scene: with ``offset``
    the loss needs no global ids), and distillation's ``target`` (sumM, D) float32 and ``has_target``
    (sumM,) bool.

    ``max_points``: keep samples in order while the running voxel total stays <= max_points
    (always at least the first), dropping the rest with a warning, as the reference truncates
    batches above ``train_limit_numpoints``.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    samples = list(samples)
    if "views" in samples[0]:
        return _collate_pairs(samples, max_points)
    if max_points is not None:
        sizes = np.cumsum([len(s["coord"]) for s in samples])
        keep = max(1, int(np.searchsorted(sizes, max_points, side="right")))
        if keep < len(samples):
            _note_truncation(len(samples) - keep, len(samples), int(sizes[keep - 1]), max_points)
            samples = samples[:keep]

    counts = [len(s["coord"]) for s in samples]
    coords = [
        np.concatenate([np.full((n, 1), b, dtype=np.int32), np.asarray(s["coord"], dtype=np.int32)], axis=1)
        for b, (s, n) in enumerate(zip(samples, counts))
    ]
    batch: dict[str, Any] = {
        "coord": torch.from_numpy(np.concatenate(coords, axis=0)),
        "feat": torch.from_numpy(np.concatenate([np.asarray(s["feat"], dtype=np.float32) for s in samples])),
        "label": torch.from_numpy(np.concatenate([np.asarray(s["label"], dtype=np.int64) for s in samples])),
        "offset": torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)),
        "scenes": [s["scene"] for s in samples],
        "num_points": [int(s["num_points"]) for s in samples],
    }
    for key, dtype in (("instance", np.int64), ("offset", np.float32),  # the instance task's targets
                       ("has_target", bool)):  # distillation's: whether a voxel has a lifted feature
        if all(key in s for s in samples):
            batch[key] = torch.from_numpy(np.concatenate([np.asarray(s[key], dtype=dtype) for s in samples]))
    if all("target" in s for s in samples):  # the lifted features (scenes without any: zero rows)
        dim = max(s["target"].shape[1] for s in samples)
        batch["target"] = torch.from_numpy(np.concatenate([
            np.asarray(s["target"], dtype=np.float32) if s["target"].shape[1] == dim
            else np.zeros((len(s["target"]), dim), np.float32) for s in samples]))
    if all("inverse" in s for s in samples):
        batch["inverse"] = [torch.from_numpy(np.asarray(s["inverse"], dtype=np.int64)) for s in samples]
    return batch


def _collate_pairs(pairs: list[dict[str, Any]], max_points: int | None) -> dict[str, Any]:
    """Two-view items (``lgseg.data.two_views``) as one batch: view a and view b of scene i are batch
    items 2i and 2i + 1 of one sparse tensor (so they share no voxel), ``matches`` index its rows,
    ``match_scene`` (K,) is each match's scene i. ``max_points`` keeps or drops whole pairs."""
    if max_points is not None:
        sizes = np.cumsum([sum(len(v["coord"]) for v in p["views"]) for p in pairs])
        keep = max(1, int(np.searchsorted(sizes, max_points, side="right")))
        if keep < len(pairs):
            _note_truncation(len(pairs) - keep, len(pairs), int(sizes[keep - 1]), max_points)
            pairs = pairs[:keep]
    views = [{**v, "label": np.full(len(v["coord"]), -1, dtype=np.int64), "scene": p["scene"],
              "num_points": p["num_points"]} for p in pairs for v in p["views"]]
    batch = collate(views)
    offset = batch["offset"].numpy()
    matches = [p["matches"] + offset[[2 * i, 2 * i + 1]] for i, p in enumerate(pairs)]
    batch.update(
        matches=torch.from_numpy(np.concatenate(matches).astype(np.int64)),
        match_coord=torch.from_numpy(np.concatenate([p["match_coord"] for p in pairs]).astype(np.float32)),
        match_scene=torch.from_numpy(np.repeat(np.arange(len(pairs)), [len(m) for m in matches])),
        scenes=[p["scene"] for p in pairs], num_points=[int(p["num_points"]) for p in pairs])
    return batch


class CollateFn:
    """Picklable ``collate`` with a fixed ``max_points``, for DataLoader worker processes."""

    def __init__(self, max_points: int | None = None) -> None:
        if max_points is not None and max_points < 1:
            raise ValueError(f"max_points must be >= 1 or None, not {max_points}")
        self.max_points = max_points

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return collate(samples, self.max_points)

    def __repr__(self) -> str:
        return f"CollateFn(max_points={self.max_points})"
