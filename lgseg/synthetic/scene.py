"""One room assembled: walls, floor and placed objects meshed, coloured and segmented the way
ScanNet's are, then moved into the "scan" frame that the written ``axisAlignment`` undoes.

Surfaces a scanner cannot see are not meshed: the floor under objects with a closed bottom, a
support's top under the props on it, the wall behind objects hanging flat on it (so such an
object's voxels are its own, not shared with the floor, support or wall they touch) and the wall
behind furniture standing against it."""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from lgseg.synthetic.appearance import Appearance, label_appearance
from lgseg.synthetic.layout import CLOSED_BOTTOM, LIFTING_PARTS, _draw_objects, _Placed, _Room, wall_coordinates
from lgseg.synthetic.mesh import STRUCTURE_SEG, STRUCTURE_SPACING, _Part, _quad, _shape, cut


class _Scene(NamedTuple):
    verts: np.ndarray      # (N, 3) float32, scan frame
    colors: np.ndarray     # (N, 3) uint8
    faces: np.ndarray      # (F, 3) int32
    seg_ids: np.ndarray    # (N,) segment id of each vertex
    groups: list           # [(label, [segment ids])]
    align: np.ndarray      # (4, 4) axisAlignment as written (rounded)
    objects: list          # placed objects


def _hides_floor(o: _Placed) -> bool:
    a = o.appearance
    return (o.center[2] == 0 and a.placement != "panel" and a.family in CLOSED_BOTTOM
            and not set(a.parts) & set(LIFTING_PARTS))


def _floor(room: _Room, spacing: float, objects: Sequence[_Placed]) -> _Part:
    part = _quad((0, 0, 0), (room.width, 0, 0), (0, room.depth, 0), spacing, STRUCTURE_SEG)
    hidden = np.zeros(len(part.verts), bool)
    for o in objects:
        if _hides_floor(o):
            c, s = math.cos(o.yaw), math.sin(o.yaw)
            rel = part.verts[:, :2] - o.center[:2]
            lx, ly = rel @ np.array([c, s]), rel @ np.array([-s, c])  # room -> object frame
            hidden |= (np.abs(lx) < o.size[0] / 2 - 0.02) & (np.abs(ly) < o.size[1] / 2 - 0.02)
    return cut(part, hidden) if hidden.any() else part


def _walls(room: _Room, spacing: float, objects: Sequence[_Placed]) -> list[_Part]:
    W, D, H = room.width, room.depth, room.height
    # wall k (as in layout._wall_frame): origin and along-wall vector, meshed facing into the room
    walls = [((W, 0, 0), (-W, 0, 0)), ((W, D, 0), (0, -D, 0)), ((0, D, 0), (W, 0, 0)), ((0, 0, 0), (0, D, 0))]
    out = []
    for k, (o, u) in enumerate(walls):
        part = _quad(o, u, (0, 0, H), spacing, STRUCTURE_SEG)
        along = wall_coordinates(room, k, part.verts[:, :2])
        z = part.verts[:, 2]
        hidden = np.zeros(len(part.verts), bool)
        for obj in objects:
            if obj.wall != k or obj.appearance.family == "rod":  # a rod only touches it with its brackets
                continue
            u0, u1, _, z1 = obj.span
            if obj.appearance.placement == "panel":  # flat against the wall
                z0 = obj.center[2]
                hidden |= (along > u0 + 0.02) & (along < u1 - 0.02) & (z > z0 + 0.02) & (z < z1 - 0.02)
            else:  # furniture with its back to the wall: the wall behind it is out of a scanner's sight
                hidden |= (along > u0 + 0.1) & (along < u1 - 0.1) & (z < z1 - 0.1)
        out.append(cut(part, hidden) if hidden.any() else part)
    return out


def _under_props(part: _Part, support: _Placed, props: Sequence[_Placed]) -> _Part:
    """``part`` (the support's mesh, in its local frame) without its top surface under the props
    standing on it."""
    if not props:
        return part
    hidden = np.zeros(len(part.verts), bool)
    c, s = math.cos(-support.yaw), math.sin(-support.yaw)
    for p in props:
        rel = p.center[:2] - support.center[:2]
        px, py = c * rel[0] - s * rel[1], s * rel[0] + c * rel[1]  # the prop's centre, support frame
        turn = p.yaw - support.yaw
        dx, dy = part.verts[:, 0] - px, part.verts[:, 1] - py
        lx, ly = math.cos(turn) * dx + math.sin(turn) * dy, -math.sin(turn) * dx + math.cos(turn) * dy
        hidden |= ((np.abs(part.verts[:, 2] - p.center[2]) < 1e-6) & (np.abs(lx) < p.size[0] / 2 - 0.02)
                   & (np.abs(ly) < p.size[1] / 2 - 0.02))
    return cut(part, hidden) if hidden.any() else part


def _axis_alignment(rng: np.random.Generator) -> np.ndarray:
    """A rotation about z by an angle well away from multiples of 90°, plus a translation,
    rounded to the 6 decimals written to the .txt file."""
    angle = rng.integers(4) * (math.pi / 2) + rng.uniform(math.radians(10), math.radians(80))
    c, s = math.cos(angle), math.sin(angle)
    t = rng.uniform(-4, 4, 3) * np.array([1, 1, 0.1])
    a = np.array([[c, -s, 0, t[0]], [s, c, 0, t[1]], [0, 0, 1, t[2]], [0, 0, 0, 1]])
    return np.round(a, 6)


def _instance_color(rng: np.random.Generator, color: Sequence[int]) -> np.ndarray:
    """Per-instance colour jitter: an overall gain and a small per-channel offset."""
    return np.asarray(color, float) * rng.uniform(0.97, 1.03) + rng.normal(0, 3, 3)


def _build_scene(rng: np.random.Generator, spacing: float, noise_std: float,
                 classes: Sequence[tuple[int, bool]]) -> _Scene:
    room, objects = _draw_objects(rng, classes)

    s = spacing * STRUCTURE_SPACING
    pieces: list[tuple[str | None, _Part, np.ndarray, np.ndarray]] = []  # (group label, part, rgb, accent rgb)
    for part in _walls(room, s, objects):
        color = _instance_color(rng, label_appearance("wall").color)
        pieces.append(("wall", part, color, color))
    color = _instance_color(rng, label_appearance("floor").color)
    pieces.append(("floor", _floor(room, s, objects), color, color))
    for o in objects:
        app: Appearance = o.appearance
        part = _shape(app.family, o.size, spacing, app.parts, mounted=app.placement == "panel",
                      elevation=float(o.center[2]))
        part = _under_props(part, o, [p for p in objects if p.support is o])
        c, s_ = math.cos(o.yaw), math.sin(o.yaw)
        rot = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
        part = part._replace(verts=part.verts @ rot.T + o.center)
        pieces.append((o.label if o.labelled else None, part, _instance_color(rng, app.color),
                       _instance_color(rng, app.accent)))

    # Concatenate with scene-unique segment numbers; record groups.
    verts, faces, seg, rgb, shade = [], [], [], [], []
    groups: list[tuple[str, list[int]]] = []
    v_off = s_off = 0
    for label, part, color, accent in pieces:
        n = len(part.verts)
        verts.append(part.verts)
        faces.append(part.faces + v_off)
        seg.append(part.seg + s_off)
        rgb.append(np.where(part.accent[:, None] > 0.5, accent, color))
        shade.append((0.94 + 0.06 * part.nz) * part.tone)  # brighter tops, darker sides and insides
        n_seg = int(part.seg.max()) + 1
        if label is not None:
            groups.append((label, list(range(s_off, s_off + n_seg))))
        v_off += n
        s_off += n_seg
    verts, faces, seg = np.concatenate(verts), np.concatenate(faces), np.concatenate(seg)
    rgb, shade = np.concatenate(rgb), np.concatenate(shade)

    # Sensor-like noise and per-scene lighting (brightness and a slight colour cast), mild enough
    # that the shades of a colour family stay apart (appearance: they differ mostly in lightness).
    verts = verts + rng.normal(0, noise_std, verts.shape)
    light = rng.uniform(0.95, 1.05) * rng.uniform(0.98, 1.02, 3)
    colors = np.clip(rgb * shade[:, None] * light + rng.normal(0, 4, rgb.shape), 0, 255).round().astype(np.uint8)

    # ScanNet segment ids are the index of some vertex of the segment: large and sparse.
    order = rng.permutation(len(seg))
    used, first = np.unique(seg[order], return_index=True)
    assert len(used) == s_off, "every segment number must own vertices"
    seg_id_of = order[first]  # a random member vertex of each segment
    groups = [(label, sorted(int(seg_id_of[k]) for k in segs)) for label, segs in groups]

    align = _axis_alignment(rng)
    inv = np.linalg.inv(align)  # exact inverse of the written matrix: applying it restores the room
    scan = verts @ inv[:3, :3].T + inv[:3, 3]
    return _Scene(scan.astype(np.float32), colors, faces.astype(np.int32), seg_id_of[seg], groups, align, objects)
