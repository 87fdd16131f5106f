"""Room layout: which objects a room gets and where each stands (on the floor, on a wall, below
the ceiling or on a table top), without overlaps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES
from lgseg.synthetic.appearance import SMALL_FAMILIES, Appearance, class_appearance, label_appearance
from lgseg.synthetic.labels import ALIASES, IGNORED_LABELS, UNKNOWN_LABELS, sample_classes

WALL_MARGIN = 0.12  # floor objects keep clear of the walls, so wall panels (<= 0.1 m deep + 15 %) never touch them
GAP = 0.03          # minimum gap between footprints


@dataclass
class _Placed:
    label: str              # raw category written to the aggregation
    class_index: int        # ScanNet200 index, -1 for ignored / unknown labels
    appearance: Appearance
    size: np.ndarray        # jittered (w, d, h)
    center: np.ndarray      # (x, y, z of the base) in the aligned room frame
    yaw: float
    labelled: bool = True   # False: no segGroup at all


@dataclass
class _Room:
    width: float
    depth: float
    height: float
    floor_rects: list = field(default_factory=list)    # AABBs (x0, y0, x1, y1) of floor objects
    floor_tops: list = field(default_factory=list)     # their top heights, same order
    ceiling_rects: list = field(default_factory=list)
    wall_spans: list = field(default_factory=lambda: [[] for _ in range(4)])  # per wall: (u0, u1, z0, z1)
    supports: list = field(default_factory=list)       # tables/low boxes whose top takes small objects

    def wall_length(self, k: int) -> float:
        return self.width if k % 2 == 0 else self.depth


def _rect_free(rects: list, r: tuple) -> bool:
    return all(r[2] + GAP <= q[0] or q[2] + GAP <= r[0] or r[3] + GAP <= q[1] or q[3] + GAP <= r[1] for q in rects)


def _half_extents(w: float, d: float, yaw: float) -> tuple[float, float]:
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * w / 2 + s * d / 2, s * w / 2 + c * d / 2


def _random_yaw(rng: np.random.Generator) -> float:
    """Mostly wall-aligned (as furniture is), sometimes arbitrary."""
    if rng.random() < 0.7:
        return float(rng.integers(4) * (math.pi / 2) + rng.normal(0, 0.05))
    return float(rng.uniform(0, 2 * math.pi))


def _place_floor(rng, room: _Room, size, rects: list, blockers: Sequence = (),
                 tries: int = 25) -> tuple[np.ndarray, float] | None:
    """Rejection-sample a footprint inside the room that overlaps no rect of ``rects`` (to which
    it is added) nor of ``blockers``."""
    for _ in range(tries):
        yaw = _random_yaw(rng)
        ex, ey = _half_extents(size[0], size[1], yaw)
        lo_x, hi_x = WALL_MARGIN + ex, room.width - WALL_MARGIN - ex
        lo_y, hi_y = WALL_MARGIN + ey, room.depth - WALL_MARGIN - ey
        if lo_x > hi_x or lo_y > hi_y:
            return None
        x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        r = (x - ex, y - ey, x + ex, y + ey)
        if _rect_free(rects, r) and _rect_free(blockers, r):
            rects.append(r)
            return np.array([x, y, 0.0]), yaw
    return None


# Wall k: (yaw mapping local +y to the inward normal, origin of the along-wall coordinate u,
# direction of u).  Walls: 0 at y = 0, 1 at x = W, 2 at y = D, 3 at x = 0.
def _wall_frame(room: _Room, k: int) -> tuple[float, np.ndarray, np.ndarray]:
    W, D = room.width, room.depth
    return [(0.0, np.array([0.0, 0.0]), np.array([1.0, 0.0])),
            (math.pi / 2, np.array([W, 0.0]), np.array([0.0, 1.0])),
            (math.pi, np.array([W, D]), np.array([-1.0, 0.0])),
            (-math.pi / 2, np.array([0.0, D]), np.array([0.0, -1.0]))][k]


def _place_panel(rng, room: _Room, app: Appearance, size) -> tuple[np.ndarray, float] | None:
    w, h = float(size[0]), float(size[2])
    z0 = min(app.elevation * rng.uniform(0.9, 1.1), room.height - 0.05 - h)
    if z0 < 0:
        return None
    for _ in range(15):
        k = int(rng.integers(4))
        length = room.wall_length(k)
        if w + 0.2 > length:
            continue
        u = rng.uniform(0.1 + w / 2, length - 0.1 - w / 2)
        span = (u - w / 2, u + w / 2, z0, z0 + h)
        if all(span[1] + GAP <= s[0] or s[1] + GAP <= span[0] or span[3] <= s[2] or s[3] <= span[2]
               for s in room.wall_spans[k]):
            room.wall_spans[k].append(span)
            yaw, origin, direction = _wall_frame(room, k)
            xy = origin + u * direction
            return np.array([xy[0], xy[1], z0]), yaw
    return None


def _place_on_support(rng, room: _Room, size) -> tuple[np.ndarray, float] | None:
    """Put a small object on top of a table or low box, inside its top, clear of other props."""
    if not room.supports:
        return None
    for _ in range(10):
        sup = room.supports[int(rng.integers(len(room.supports)))]
        sw, sd = sup["size"][0], sup["size"][1]
        turn = float(rng.integers(2)) * math.pi / 2 + rng.normal(0, 0.05)  # relative to the support
        ex, ey = _half_extents(size[0], size[1], turn)
        if 2 * ex > sw - 0.04 or 2 * ey > sd - 0.04:
            continue
        lx = rng.uniform(-sw / 2 + ex + 0.02, sw / 2 - ex - 0.02)
        ly = rng.uniform(-sd / 2 + ey + 0.02, sd / 2 - ey - 0.02)
        r = (lx - ex, ly - ey, lx + ex, ly + ey)
        if _rect_free(sup["rects"], r):
            sup["rects"].append(r)
            c, s = math.cos(sup["yaw"]), math.sin(sup["yaw"])
            x, y = sup["center"][0] + c * lx - s * ly, sup["center"][1] + s * lx + c * ly
            return np.array([x, y, sup["top"]]), sup["yaw"] + turn
    return None


def _place(rng, room: _Room, obj: _Placed) -> bool:
    """Find a position for ``obj`` by its family; False when the room has no space left for it."""
    fam, size = obj.appearance.family, obj.size
    if fam == "panel":
        pose = _place_panel(rng, room, obj.appearance, size)
    elif fam == "ceiling":  # hangs down to z = height - h: avoid floor objects reaching that high
        bottom = room.height - size[2]
        tall = [r for r, top in zip(room.floor_rects, room.floor_tops) if top > bottom - 0.05]
        pose = _place_floor(rng, room, size, room.ceiling_rects, tall)
        if pose is not None:
            pose[0][2] = bottom
    else:
        size[2] = min(size[2], room.height - 0.3)  # keep clear of the wall tops and ceiling items
        pose = None
        if fam in SMALL_FAMILIES and rng.random() < 0.8:
            pose = _place_on_support(rng, room, size)
        if pose is None:
            pose = _place_floor(rng, room, size, room.floor_rects)
            if pose is not None:
                room.floor_tops.append(float(size[2]))
        if pose is not None and (fam == "table" or (fam == "box" and size[2] <= 1.2)):
            room.supports.append({"center": pose[0], "yaw": pose[1], "size": size, "top": float(size[2]), "rects": []})
    if pose is None:
        return False
    obj.center, obj.yaw = pose
    return True


# Placement order: big floor furniture first (it provides supports), then the rest.
_ORDER = {"sofa": 0, "table": 0, "box": 0, "chair": 1, "cylinder": 1, "mat": 2, "panel": 3,
          "ceiling": 3, "small_box": 4, "small_cylinder": 4}


def _draw_objects(rng: np.random.Generator, room: _Room) -> list[_Placed]:
    """Draw the scene's object list (classes, label traps) and place each object; unplaceable ones are dropped."""
    area = room.width * room.depth
    n = int(np.clip(round(8 + 0.4 * area * rng.uniform(0.8, 1.2)), 15, 40))
    objs: list[_Placed] = []
    for c in sample_classes(rng, n):
        name = CLASS_NAMES[c]
        aliases = [a for a, target in ALIASES.items() if target == name]
        label = str(rng.choice(aliases)) if aliases and rng.random() < 0.4 else name
        objs.append(_Placed(label, int(c), class_appearance(int(c)), None, None, 0.0))
    # Label traps: labels outside the 200 (via the tsv, and sometimes missing from it).
    extra = [str(rng.choice(list(IGNORED_LABELS))) for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.5:
        extra.append(str(rng.choice(UNKNOWN_LABELS)))
    objs += [_Placed(lab, -1, label_appearance(lab), None, None, 0.0) for lab in extra]
    for o in objs:  # per-instance size jitter ±15 %; round footprints stay round
        j = rng.uniform(0.85, 1.15, 3)
        if o.appearance.family in ("cylinder", "small_cylinder"):
            j[1] = j[0]
        o.size = np.asarray(o.appearance.size) * j
    objs.sort(key=lambda o: _ORDER[o.appearance.family])  # stable: keeps the draw order within a rank
    placed = [o for o in objs if _place(rng, room, o)]
    # ~5 % of the objects carry no annotation at all (at least one per scene).
    unlabelled = rng.random(len(placed)) < 0.05
    if placed and not unlabelled.any():
        unlabelled[int(rng.integers(len(placed)))] = True
    for o, u in zip(placed, unlabelled):
        o.labelled = not bool(u)
    return placed
