"""Limited annotations (paper Sec. 4, Fig. 5): keep the labels of a fraction of each object's points.

Two rules, per object (aggregation instance) of a train scene:

- ``paper``: one randomly chosen point, then farthest-point sampling from it up to
  ``max(1, round(fraction * n))`` points (the paper's "a randomly sampled annotated point per
  object, and any additional points annotated based on farthest point sampling");
- ``reference``: ``max(5, round(fraction * n))`` farthest points starting from the object's first
  vertex (the authors' ``scannet_long.py``), at most ``n``.

All other vertices lose their label (-1); geometry and colour stay, so training sees the whole scene.
Deterministic for a seed: scene ``s`` draws from ``default_rng([seed, crc32(s)])``.
"""

from __future__ import annotations

import zlib

import numpy as np

from lgseg.scannet.constants import IGNORE_INDEX
from lgseg.scannet.instances import instance_groups

RULES = ("paper", "reference")


def farthest_point_sampling(points: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """Indices of ``k`` points, each the farthest (Euclidean) from those chosen before; ``start`` first.

    O(n k) with one vectorised pass over the points per pick (the pointnet2 algorithm, on the CPU).
    """
    n = len(points)
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, np.int64)
    p = np.ascontiguousarray(np.asarray(points, np.float32).T)  # (3, n): one contiguous row per axis
    chosen = np.empty(k, np.int64)
    chosen[0] = start
    dist = np.full(n, np.inf, np.float32)
    tmp, d = np.empty(n, np.float32), np.empty(n, np.float32)
    for j in range(1, k):
        q = p[:, chosen[j - 1]]
        np.subtract(p[0], q[0], out=d)
        np.square(d, out=d)
        for axis in (1, 2):
            np.subtract(p[axis], q[axis], out=tmp)
            np.square(tmp, out=tmp)
            d += tmp
        np.minimum(dist, d, out=dist)
        chosen[j] = int(np.argmax(dist))
    return chosen


def annotated_points(coord: np.ndarray, instance: np.ndarray, fraction: float, rule: str = "paper",
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """Boolean mask of the vertices that keep their label under ``fraction`` (0 < fraction <= 1)."""
    if rule not in RULES:
        raise ValueError(f"annotation rule must be one of {', '.join(RULES)}, not {rule!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"annotation fraction must be in (0, 1], not {fraction}")
    if fraction == 1:
        return np.ones(len(coord), bool)
    keep = np.zeros(len(coord), bool)
    rng = rng or np.random.default_rng(0)
    members, bounds = instance_groups(instance)  # mesh order within an object
    for s, e in zip(bounds[:-1], bounds[1:]):
        idx = members[s:e]
        n = len(idx)
        if rule == "paper":
            k, start = max(1, round(fraction * n)), int(rng.integers(n))
        else:
            k, start = max(5, round(fraction * n)), 0
        keep[idx[farthest_point_sampling(coord[idx], k, start)]] = True
    return keep


def limit_annotations(segment: np.ndarray, coord: np.ndarray, instance: np.ndarray, fraction: float,
                      rule: str, seed: int, scene: str) -> np.ndarray:
    """``segment`` with the labels outside the annotated points set to -1 (a copy)."""
    rng = np.random.default_rng([int(seed), zlib.crc32(scene.encode())])
    out = segment.copy()
    out[~annotated_points(coord, instance, fraction, rule, rng)] = IGNORE_INDEX
    return out
