"""One room assembled: walls, floor and placed objects meshed, coloured and segmented the way
ScanNet's are, then moved into the "scan" frame that the written ``axisAlignment`` undoes."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from lgseg.synthetic.appearance import Appearance, label_appearance
from lgseg.synthetic.layout import _draw_objects, _Room
from lgseg.synthetic.mesh import STRUCTURE_SEG, STRUCTURE_SPACING, _Part, _quad, _shape

class _Scene(NamedTuple):
    verts: np.ndarray      # (N, 3) float32, scan frame
    colors: np.ndarray     # (N, 3) uint8
    faces: np.ndarray      # (F, 3) int32
    seg_ids: np.ndarray    # (N,) segment id of each vertex
    groups: list           # [(label, [segment ids])]
    align: np.ndarray      # (4, 4) axisAlignment as written (rounded)
    objects: list          # placed objects


def _structure(room: _Room, spacing: float) -> list[tuple[str, _Part]]:
    W, D, H = room.width, room.depth, room.height
    s = spacing * STRUCTURE_SPACING
    walls = [((W, 0, 0), (-W, 0, 0)), ((W, D, 0), (0, -D, 0)), ((0, D, 0), (W, 0, 0)), ((0, 0, 0), (0, D, 0))]
    parts = [("wall", _quad(o, u, (0, 0, H), s, STRUCTURE_SEG)) for o, u in walls]
    parts.append(("floor", _quad((0, 0, 0), (W, 0, 0), (0, D, 0), s, STRUCTURE_SEG)))
    return parts


def _axis_alignment(rng: np.random.Generator) -> np.ndarray:
    """A rotation about z by an angle well away from multiples of 90°, plus a translation,
    rounded to the 6 decimals written to the .txt file."""
    angle = rng.integers(4) * (math.pi / 2) + rng.uniform(math.radians(10), math.radians(80))
    c, s = math.cos(angle), math.sin(angle)
    t = rng.uniform(-4, 4, 3) * np.array([1, 1, 0.1])
    a = np.array([[c, -s, 0, t[0]], [s, c, 0, t[1]], [0, 0, 1, t[2]], [0, 0, 0, 1]])
    return np.round(a, 6)


def _instance_color(rng: np.random.Generator, app: Appearance) -> np.ndarray:
    """Per-instance colour jitter: an overall gain and a small per-channel offset."""
    return np.asarray(app.color, float) * rng.uniform(0.95, 1.05) + rng.normal(0, 4, 3)


def _build_scene(rng: np.random.Generator, spacing: float, noise_std: float) -> _Scene:
    room = _Room(float(rng.uniform(3, 8)), float(rng.uniform(3, 8)), float(rng.uniform(2.4, 2.8)))
    objects = _draw_objects(rng, room)

    pieces: list[tuple[str | None, _Part, np.ndarray]] = []  # (group label or None, part in room frame, rgb)
    for label, part in _structure(room, spacing):
        pieces.append((label, part, _instance_color(rng, label_appearance(label))))
    for o in objects:
        part = _shape(o.appearance.family, o.size, spacing)
        c, s = math.cos(o.yaw), math.sin(o.yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        part = part._replace(verts=part.verts @ rot.T + o.center)
        pieces.append((o.label if o.labelled else None, part, _instance_color(rng, o.appearance)))

    # Concatenate with scene-unique segment numbers; record groups.
    verts, faces, seg, rgb, shade = [], [], [], [], []
    groups: list[tuple[str, list[int]]] = []
    v_off = s_off = 0
    for label, part, color in pieces:
        n = len(part.verts)
        verts.append(part.verts)
        faces.append(part.faces + v_off)
        seg.append(part.seg + s_off)
        rgb.append(np.broadcast_to(color, (n, 3)))
        shade.append((0.92 + 0.08 * part.nz) * part.tone)  # brighter tops, darker sides/legs
        n_seg = int(part.seg.max()) + 1
        if label is not None:
            groups.append((label, list(range(s_off, s_off + n_seg))))
        v_off += n
        s_off += n_seg
    verts, faces, seg = np.concatenate(verts), np.concatenate(faces), np.concatenate(seg)
    rgb, shade = np.concatenate(rgb), np.concatenate(shade)

    # Sensor-like noise and per-scene lighting (brightness and a slight colour cast).
    verts = verts + rng.normal(0, noise_std, verts.shape)
    light = rng.uniform(0.88, 1.1) * rng.uniform(0.97, 1.03, 3)
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
