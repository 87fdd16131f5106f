"""Room layout: a room sized for the objects it was dealt, and where each object stands: free on
the floor, with its back to a wall, on a wall, below the ceiling or on top of a support (a table,
a low cabinet, a counter, a bed, a sofa's seat or a shelf board), without overlaps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES
from lgseg.synthetic.appearance import SIZE_JITTER, Appearance, class_appearance, demo_length, label_appearance
from lgseg.synthetic.labels import ALIASES, IGNORED_LABELS, UNKNOWN_LABELS
from lgseg.synthetic.mesh import shelf_levels

WALL_MARGIN = 0.12  # objects against a wall keep this gap to it (wall objects are <= 0.1 m deep there)
FREE_MARGIN = 0.25  # free-standing objects keep this far from the walls (clear of every wall object)
GAP = 0.03          # minimum gap between footprints
CLEARANCE = 0.15    # room sizing: a floor object takes its footprint grown by this (m) in each direction
WALL_STEP = 0.1     # grid of positions along the walls that wall placement tries
FLOOR_STEP = 0.1    # grid of floor positions that free placement tries when random tries fail
FLOOR_FILL = 0.7    # share of the floor that the floor objects' footprints (plus clearance) take
WALL_FILL = 0.85    # share of the walls' area that wall objects take
ROOM_GROWTH = 1.08  # a room whose objects do not all fit is enlarged by this and furnished again
MAX_TRIES = 25      # attempts at furnishing one room (the room grows after each failure)
#: families whose bottom hides the floor below them (cut from the floor mesh) unless a part lifts them
CLOSED_BOTTOM = ("box", "sofa", "basin", "cylinder", "mat", "plant", "shelf")
LIFTING_PARTS = ("legs", "rungs", "wheels", "stall", "pedestal", "posts")


@dataclass
class _Placed:
    label: str              # raw category written to the aggregation
    class_index: int        # ScanNet200 index, -1 for ignored / unknown labels
    appearance: Appearance
    size: np.ndarray        # jittered (w, d, h)
    center: np.ndarray      # (x, y, z of the base) in the aligned room frame
    yaw: float
    labelled: bool = True   # False: no segGroup at all
    guaranteed: bool = False  # one of the split's guaranteed instances (always labelled)
    wall: int = -1          # the wall it stands against / hangs on, else -1
    span: tuple = ()        # (u0, u1, z0, z1) on that wall
    support: "_Placed | None" = None  # the object it stands on (props)


@dataclass
class _Room:
    width: float
    depth: float
    height: float
    floor_rects: list = field(default_factory=list)    # AABBs (x0, y0, x1, y1) of floor objects
    floor_tops: list = field(default_factory=list)     # their top heights, same order
    ceiling_rects: list = field(default_factory=list)
    wall_spans: list = field(default_factory=lambda: [[] for _ in range(4)])  # per wall: (u0, u1, z0, z1)
    supports: list = field(default_factory=list)       # surfaces that take props (see _add_supports)

    def wall_length(self, k: int) -> float:
        return self.width if k % 2 == 0 else self.depth


def _rect_free(rects: list, r: tuple) -> bool:
    return all(r[2] + GAP <= q[0] or q[2] + GAP <= r[0] or r[3] + GAP <= q[1] or q[3] + GAP <= r[1] for q in rects)


def _span_free(spans: list, s: tuple) -> bool:
    return all(s[1] + GAP <= t[0] or t[1] + GAP <= s[0] or s[3] <= t[2] or t[3] <= s[2] for t in spans)


def _half_extents(w: float, d: float, yaw: float) -> tuple[float, float]:
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * w / 2 + s * d / 2, s * w / 2 + c * d / 2


def _random_yaw(rng: np.random.Generator) -> float:
    """Mostly wall-aligned (as furniture is), sometimes arbitrary."""
    if rng.random() < 0.7:
        return float(rng.integers(4) * (math.pi / 2) + rng.normal(0, 0.05))
    return float(rng.uniform(0, 2 * math.pi))


# Wall k: (yaw mapping local +y to the inward normal, origin of the along-wall coordinate u,
# direction of u).  Walls: 0 at y = 0, 1 at x = W, 2 at y = D, 3 at x = 0.
def _wall_frame(room: _Room, k: int) -> tuple[float, np.ndarray, np.ndarray]:
    W, D = room.width, room.depth
    return [(0.0, np.array([0.0, 0.0]), np.array([1.0, 0.0])),
            (math.pi / 2, np.array([W, 0.0]), np.array([0.0, 1.0])),
            (math.pi, np.array([W, D]), np.array([-1.0, 0.0])),
            (-math.pi / 2, np.array([0.0, D]), np.array([0.0, -1.0]))][k]


def wall_coordinates(room: _Room, k: int, xy: np.ndarray) -> np.ndarray:
    """Along-wall coordinate u of room points ``xy`` (N, 2) on wall k."""
    _, origin, direction = _wall_frame(room, k)
    return (np.asarray(xy) - origin) @ direction


def _on_wall(room: _Room, k: int, u: float, offset: float) -> tuple[np.ndarray, float]:
    """Room xy of the point ``offset`` m in front of wall k at u, and the yaw that turns an
    object's back (+y) to that wall."""
    yaw, origin, direction = _wall_frame(room, k)
    inward = np.array([-math.sin(yaw), math.cos(yaw)])
    return origin + u * direction + offset * inward, yaw + math.pi


def _free_mask(rects: Sequence, x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Which candidate rects (arrays of their bounds) overlap none of ``rects`` (with GAP)."""
    if not len(rects):
        return np.ones(len(x0), bool)
    q = np.asarray(rects, float)
    clear = ((x1[:, None] + GAP <= q[None, :, 0]) | (q[None, :, 2] + GAP <= x0[:, None])
             | (y1[:, None] + GAP <= q[None, :, 1]) | (q[None, :, 3] + GAP <= y0[:, None]))
    return clear.all(1)


def _place_free(rng, room: _Room, size, rects: list, blockers: Sequence = (), margin: float = FREE_MARGIN,
                tries: int = 10) -> tuple[np.ndarray, float] | None:
    """A footprint inside the room (``margin`` from the walls) that overlaps no rect of ``rects``
    (to which it is added) nor of ``blockers``: a few random tries, then a random one of all the
    free positions on a FLOOR_STEP grid (wall-aligned), None only when there is none."""
    for _ in range(tries):
        yaw = _random_yaw(rng)
        ex, ey = _half_extents(size[0], size[1], yaw)
        lo_x, hi_x = margin + ex, room.width - margin - ex
        lo_y, hi_y = margin + ey, room.depth - margin - ey
        if lo_x > hi_x or lo_y > hi_y:
            continue
        x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        r = (x - ex, y - ey, x + ex, y + ey)
        if _rect_free(rects, r) and _rect_free(blockers, r):
            rects.append(r)
            return np.array([x, y, 0.0]), yaw
    for quarter in rng.permutation(2):  # exhaustive: both wall-aligned orientations
        yaw = float(quarter * math.pi / 2 + rng.integers(2) * math.pi)
        ex, ey = _half_extents(size[0], size[1], yaw)
        xs = np.arange(margin + ex, room.width - margin - ex + 1e-9, FLOOR_STEP)
        ys = np.arange(margin + ey, room.depth - margin - ey + 1e-9, FLOOR_STEP)
        if not len(xs) or not len(ys):
            continue
        x, y = (a.ravel() for a in np.meshgrid(xs, ys, indexing="ij"))
        ok = _free_mask(rects, x - ex, y - ey, x + ex, y + ey) & _free_mask(blockers, x - ex, y - ey, x + ex, y + ey)
        if ok.any():
            i = int(rng.choice(np.flatnonzero(ok)))
            rects.append((x[i] - ex, y[i] - ey, x[i] + ex, y[i] + ey))
            return np.array([x[i], y[i], 0.0]), yaw
    return None


def _wall_slots(rng, room: _Room, w: float, end_gap: float) -> list[tuple[int, float]]:
    """Every (wall, u) where an object of width w fits along a wall with ``end_gap`` to the
    corners, on a WALL_STEP grid, in random order: placement tries them all before giving up."""
    slots = [(k, float(u)) for k in range(4)
             for u in np.arange(end_gap + w / 2, room.wall_length(k) - end_gap - w / 2 + 1e-9, WALL_STEP)]
    return [slots[i] for i in rng.permutation(len(slots))]


def _place_against_wall(rng, room: _Room, obj: _Placed) -> bool:
    """Stand ``obj`` on the floor with its back WALL_MARGIN from a wall, clear of the other floor
    objects and of the wall objects hanging at its heights."""
    w, d, h = (float(x) for x in obj.size)
    for k, u in _wall_slots(rng, room, w, WALL_MARGIN):
        xy, yaw = _on_wall(room, k, u, WALL_MARGIN + d / 2)
        ex, ey = (w / 2, d / 2) if k % 2 == 0 else (d / 2, w / 2)
        r = (xy[0] - ex, xy[1] - ey, xy[0] + ex, xy[1] + ey)
        span = (u - w / 2, u + w / 2, 0.0, h)
        if _rect_free(room.floor_rects, r) and _span_free(room.wall_spans[k], span):
            room.floor_rects.append(r)
            room.floor_tops.append(h)
            room.wall_spans[k].append(span)
            obj.center, obj.yaw, obj.wall, obj.span = np.array([xy[0], xy[1], 0.0]), yaw, k, span
            return True
    return False


def _place_panel(rng, room: _Room, obj: _Placed) -> bool:
    """Hang ``obj`` flat on a wall with its bottom near its class's elevation."""
    app = obj.appearance
    w, d, h = (float(x) for x in obj.size)
    z0 = 0.0 if app.elevation == 0 else app.elevation * rng.uniform(0.9, 1.1)
    z0 = max(0.0, min(z0, room.height - 0.05 - h))
    h = min(h, room.height - 0.05 - z0)  # tall wall objects stop below the wall's top
    obj.size[2] = h
    posts = "posts" in app.parts  # a stair rail's posts reach the floor
    for k, u in _wall_slots(rng, room, w, 0.1):
        span = (u - w / 2, u + w / 2, 0.0 if posts else z0, z0 + h)
        if _span_free(room.wall_spans[k], span):
            room.wall_spans[k].append(span)
            xy, yaw = _on_wall(room, k, u, d / 2)
            obj.center, obj.yaw, obj.wall, obj.span = np.array([xy[0], xy[1], z0]), yaw, k, span
            return True
    return False


def _place_on_support(rng, room: _Room, size, tries: int = 14) -> tuple[np.ndarray, float, "_Placed"] | None:
    """Put a prop on a support surface with room above it, inside the surface, clear of other props."""
    fits = [s for s in room.supports if s["clear"] >= size[2] + 0.02
            and min(s["size"]) >= min(size[0], size[1]) + 0.04 and max(s["size"]) >= max(size[0], size[1]) + 0.04]
    if not fits:
        return None
    for _ in range(tries):
        sup = fits[int(rng.integers(len(fits)))]
        sw, sd = sup["size"]
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
            ox, oy = sup["offset"][0] + lx, sup["offset"][1] + ly
            x, y = sup["center"][0] + c * ox - s * oy, sup["center"][1] + s * ox + c * oy
            return np.array([x, y, sup["top"]]), sup["yaw"] + turn, sup["owner"]
    return None


def _add_supports(room: _Room, obj: _Placed) -> None:
    """Register the surfaces of a placed floor object that props can stand on."""
    app, (w, d, h) = obj.appearance, (float(x) for x in obj.size)
    parts = set(app.parts)
    above = room.height - 0.3

    def add(top, offset, size):
        if size[0] > 0.2 and size[1] > 0.2 and above - top > 0.1:
            room.supports.append({"center": obj.center, "yaw": obj.yaw, "offset": offset, "size": size,
                                  "top": float(top), "clear": float(above - top), "rects": [], "owner": obj})

    if app.family == "table":
        add(h, (0.0, 0.0), (w, d))
    elif app.family == "box" and h <= 1.3 and not parts & {"steps", "rungs", "wheels", "stall", "screen", "laptop"}:
        back = 0.08 if "headboard" in parts else 0.0
        add(h, (0.0, -back / 2), (w, d - back))
    elif app.family == "sofa":
        back = 0.0 if "noback" in parts else min(0.2, 0.25 * d)
        arm = 0.0 if "noarms" in parts else min(0.15, w / 6)
        add(0.5 * h + (0.1 if "cushions" in parts else 0.0), (0.0, -back / 2), (w - 2 * arm, d - back))
    elif app.family == "shelf":
        levels = shelf_levels(h)
        for z, z_next in zip(levels, levels[1:] + [above + 0.04]):  # a board's clearance: up to the next one
            if z_next - z - 0.04 > 0.1:
                room.supports.append({"center": obj.center, "yaw": obj.yaw, "offset": (0.0, 0.0),
                                      "size": (w - 0.1, d - 0.04), "top": float(z), "clear": float(z_next - z - 0.04),
                                      "rects": [], "owner": obj})


def _place(rng, room: _Room, obj: _Placed) -> bool:
    """Find a position for ``obj`` by its placement; False when the room has no space left for it."""
    app, size = obj.appearance, obj.size
    obj.wall, obj.span, obj.support = -1, (), None  # (from an earlier attempt in a smaller room)
    if app.placement == "panel":
        return _place_panel(rng, room, obj)
    if app.placement == "ceiling":  # hangs down to z = height - h: avoid floor objects reaching that high
        bottom = room.height - size[2]
        tall = [r for r, top in zip(room.floor_rects, room.floor_tops) if top > bottom - 0.05]
        pose = _place_free(rng, room, size, room.ceiling_rects, tall, margin=WALL_MARGIN)
        if pose is None:
            return False
        obj.center, obj.yaw = pose
        obj.center[2] = bottom
        return True
    if app.category == "column":
        size[2] = room.height  # columns, pillars and pipes reach the top of the walls
    else:
        size[2] = min(size[2], room.height - 0.3)  # keep clear of the wall tops and ceiling items
    if app.placement == "wall" and _place_against_wall(rng, room, obj):
        ok = True
    else:  # free-standing (and wall furniture when the walls are full: a kitchen island, a bed in the middle)
        pose = None
        if app.placement == "prop":
            pose = _place_on_support(rng, room, size)
            if pose is not None:
                obj.center, obj.yaw, obj.support = pose
                return True
        pose = _place_free(rng, room, size, room.floor_rects)
        ok = pose is not None
        if ok:
            room.floor_tops.append(float(size[2]))
            obj.center, obj.yaw = pose
    if ok and app.placement != "prop":
        _add_supports(room, obj)
    return ok


# Placement order: wall objects first (the largest first: a room is sized for them, and
# furniture that then finds no wall space stands free), then furniture (it provides supports),
# the ceiling's objects, props last; within a rank the largest first.
_RANK = {"panel": 0, "wall": 1, "floor": 1, "ceiling": 2, "prop": 3}


def _rank(o: _Placed) -> tuple[int, float]:
    return _RANK[o.appearance.placement], -float(o.size[0] * max(o.size[1], o.size[2]))


def _room_for(rng: np.random.Generator, objs: list[_Placed]) -> tuple[float, float, float]:
    """A room (width, depth, height) with floor and wall space for ``objs``: the floor objects'
    footprints (plus clearance) take FLOOR_FILL of the floor, the faces of the objects on the
    walls WALL_FILL of the walls (furniture that finds no wall space stands free)."""
    height = demo_length(float(rng.uniform(2.4, 2.7)))
    floor = sum((o.size[0] + CLEARANCE) * (o.size[1] + CLEARANCE) for o in objs
                if o.appearance.placement in ("floor", "wall"))
    wall = sum((o.size[0] + 0.15) * (o.size[2] + 0.1) for o in objs if o.appearance.placement == "panel")
    area = max(9.0, floor / FLOOR_FILL)
    aspect = rng.uniform(1.0, 1.5)
    width, depth = math.sqrt(area * aspect), math.sqrt(area / aspect)
    perimeter = 2 * (width + depth)
    if wall / WALL_FILL > perimeter * height:
        scale = wall / WALL_FILL / (perimeter * height)
        width, depth = width * scale, depth * scale
    return width, depth, height


def _furnish(rng: np.random.Generator, objs: list[_Placed]) -> tuple[_Room, list[_Placed]]:
    """Size a room for ``objs`` and place all of them, enlarging the room until every one fits
    (after MAX_TRIES, the objects that still do not fit are left out)."""
    width, depth, height = _room_for(rng, objs)
    order = sorted(objs, key=_rank)
    for attempt in range(MAX_TRIES):
        room = _Room(width, depth, height)
        placed = [o for o in order if _place(rng, room, o)]
        if len(placed) == len(order) or attempt == MAX_TRIES - 1:
            return room, placed
        width, depth = width * ROOM_GROWTH, depth * ROOM_GROWTH
    raise AssertionError("unreachable")


def _draw_objects(rng: np.random.Generator, classes: Sequence[tuple[int, bool]]) -> tuple[_Room, list[_Placed]]:
    """The room of one scene: its dealt objects (``labels.allocate``) plus the label traps, each
    with a jittered size, placed in a room sized for them."""
    objs: list[_Placed] = []
    for c, sure in classes:
        name = CLASS_NAMES[c]
        aliases = [a for a, target in ALIASES.items() if target == name]
        label = str(rng.choice(aliases)) if aliases and rng.random() < 0.4 else name
        objs.append(_Placed(label, int(c), class_appearance(int(c)), None, None, 0.0, guaranteed=sure))
    # Label traps: labels outside the 200 (via the tsv, and sometimes missing from it).
    extra = [str(rng.choice(list(IGNORED_LABELS))) for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.5:
        extra.append(str(rng.choice(UNKNOWN_LABELS)))
    objs += [_Placed(lab, -1, label_appearance(lab), None, None, 0.0) for lab in extra]
    # and one object that nobody annotated (no segGroup), besides the ~5 % below
    objs.append(_Placed("clutter", -1, label_appearance("clutter"), None, None, 0.0, labelled=False))
    for o in objs:  # per-instance size jitter; round footprints stay round
        j = rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER, 3)
        if o.appearance.family == "cylinder" and "square" not in o.appearance.parts:
            j[1] = j[0]
        o.size = np.asarray(o.appearance.size) * j
    room, placed = _furnish(rng, objs)
    # ~5 % of the objects beyond the guaranteed ones carry no annotation at all.
    free = [o for o in placed if not o.guaranteed and o.class_index >= 0]
    for o, u in zip(free, rng.random(len(free)) < 0.05):
        o.labelled = not bool(u)
    return room, placed
