"""Instance sampling (paper Sec. 3.2, Fig. 3): paste rare-class instances from the bank into a
training scene, resting on its surfaces and clear of its objects.

Per scene, ``per_scene`` times: draw a class uniformly among the bank's classes, then one of its
instances; rotate it about z and scale it randomly. The scene's height map holds the highest z of
each ``resolution``-sized (x, y) column, its empty columns filled by a ``filter_size`` maximum
filter. Up to ``tries`` centres are drawn uniformly over the scene's (x, y) extent; the instance's
bottom goes on the height map at its centre; a candidate is rejected when its axis-aligned box
overlaps (by more than ``tolerance`` on every axis, so resting on a noisy surface is no collision)
the box of a scene object or of an instance placed before. When every try collides, ``rule``
decides: ``paper`` discards the instance, ``reference`` (the authors' code) inserts it at the last
candidate. Floor and ceiling span the room, so their boxes are surfaces, not obstacles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter

from lgseg.data.instances import InstanceBank
from lgseg.scannet.constants import NAME_TO_INDEX
from lgseg.scannet.instances import instance_groups

RULES = ("paper", "reference")
ROOM_SPANNING = tuple(NAME_TO_INDEX[n] for n in ("floor", "ceiling") if n in NAME_TO_INDEX)


@dataclass
class Placement:
    bank_index: int
    label: int
    box: np.ndarray  # (2, 3) min and max corner
    rows: slice  # the placed points' rows in the augmented scene
    collided: bool  # True only for a reference-rule insertion after every try collided


def object_boxes(coord: np.ndarray, instance: np.ndarray, label: np.ndarray) -> np.ndarray:
    """(K, 2, 3) axis-aligned boxes of the scene's objects (instance ids >= 0), floor and ceiling left out."""
    members, bounds = instance_groups(instance, keep=~np.isin(label, ROOM_SPANNING))
    if not len(members):
        return np.zeros((0, 2, 3))
    pts, starts = coord[members], bounds[:-1]
    return np.stack([np.minimum.reduceat(pts, starts), np.maximum.reduceat(pts, starts)], axis=1)


class HeightMap:
    """Highest z per (x, y) column of ``resolution`` metres; empty columns filled by a maximum filter."""

    def __init__(self, coord: np.ndarray, resolution: float, filter_size: int = 5):
        self.resolution = float(resolution)
        self.origin = coord[:, :2].min(0)
        self.extent = coord[:, :2].max(0)
        cols = self.columns(coord[:, :2])
        shape = tuple(cols.max(0) + 1)
        raw = np.full(shape, coord[:, 2].min())
        np.maximum.at(raw, (cols[:, 0], cols[:, 1]), coord[:, 2])
        self.raw = raw
        self.filled = maximum_filter(raw, size=filter_size, mode="nearest") if filter_size > 1 else raw

    def columns(self, xy: np.ndarray) -> np.ndarray:
        cols = np.floor((np.asarray(xy) - self.origin) / self.resolution).astype(np.int64)
        return np.maximum(cols, 0)

    def height(self, xy: np.ndarray) -> np.ndarray:
        cols = np.minimum(self.columns(xy), np.array(self.filled.shape) - 1)
        return self.filled[cols[..., 0], cols[..., 1]]


def overlaps(box: np.ndarray, boxes: np.ndarray, tolerance: float) -> np.ndarray:
    """Whether ``box`` (2, 3) overlaps each of ``boxes`` (K, 2, 3) by more than ``tolerance`` on all axes."""
    if len(boxes) == 0:
        return np.zeros(0, bool)
    inter = np.minimum(box[1], boxes[:, 1]) - np.maximum(box[0], boxes[:, 0])
    return (inter > tolerance).all(axis=1)


class InstanceSampler:
    def __init__(self, bank: InstanceBank, per_scene: int = 5, tries: int = 50, rule: str = "paper",
                 resolution: float = 0.02, filter_size: int = 5, tolerance: float | None = None,
                 scale: tuple[float, float] = (0.9, 1.1)):
        if rule not in RULES:
            raise ValueError(f"instance sampling rule must be one of {', '.join(RULES)}, not {rule!r}")
        if per_scene < 0 or tries < 1:
            raise ValueError(f"need per_scene >= 0 and tries >= 1, not {per_scene} and {tries}")
        if len(bank) == 0:
            raise ValueError(f"the instance bank {bank.root} is empty: no train instance of its classes")
        self.bank, self.per_scene, self.tries, self.rule = bank, int(per_scene), int(tries), rule
        self.resolution, self.filter_size = float(resolution), int(filter_size)
        self.tolerance = self.resolution if tolerance is None else float(tolerance)
        self.scale = scale
        self.members = {int(c): bank.of_class(int(c)) for c in bank.classes}

    def _draw(self, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray, int]:
        c = int(rng.choice(self.bank.classes))
        i = int(rng.choice(self.members[c]))
        pts, color, label = self.bank.get(i)
        a = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        pts = pts @ rot.T * rng.uniform(*self.scale)
        lo, hi = pts.min(0), pts.max(0)
        pts = pts - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])  # centred, on z = 0
        return i, pts, color, label

    def __call__(self, sample: dict, instance: np.ndarray, rng: np.random.Generator) -> tuple[dict, list]:
        """Add instances to ``sample`` (coord (N,3) metres, color, label); returns it and the placements."""
        coord, label = sample["coord"], sample["label"]
        hmap = HeightMap(coord, self.resolution, self.filter_size)
        obstacles = object_boxes(coord, instance, label)
        parts = {k: [v] for k, v in sample.items()}
        placed, n = [], len(coord)
        for _ in range(self.per_scene):
            i, pts, color, c = self._draw(rng)
            size = pts.max(0) - pts.min(0)
            centres = rng.uniform(hmap.origin, hmap.extent, size=(self.tries, 2))
            bottoms = hmap.height(centres)
            chosen, collided = None, False
            for xy, z in zip(centres, bottoms, strict=True):
                lo = np.array([xy[0] - size[0] / 2, xy[1] - size[1] / 2, z])
                box = np.stack([lo, lo + size])
                others = np.concatenate([obstacles, [p.box for p in placed]]) if placed else obstacles
                if not overlaps(box, others, self.tolerance).any():
                    chosen = (xy, z, box)
                    break
            if chosen is None:
                if self.rule == "paper":
                    continue
                chosen, collided = (xy, z, box), True
            xy, z, box = chosen
            new = pts + np.array([xy[0], xy[1], z])
            parts["coord"].append(new)
            parts["color"].append(np.asarray(color, dtype=sample["color"].dtype))
            parts["label"].append(np.full(len(new), c, dtype=label.dtype))
            placed.append(Placement(i, c, box, slice(n, n + len(new)), collided))
            n += len(new)
        return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}, placed
