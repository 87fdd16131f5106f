"""Triangulated surfaces: mesh primitives (local frames; faces point outward, u x v is the surface
normal) and the object shape of each family (footprint centred on the origin, base at z = 0)."""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

class _Part(NamedTuple):
    verts: np.ndarray   # (N, 3) float64
    faces: np.ndarray   # (F, 3) int64, indices into verts
    seg: np.ndarray     # (N,) local segment ids
    nz: np.ndarray      # (N,) z of the surface normal, for shading
    tone: np.ndarray    # (N,) colour factor (e.g. darker legs)


STRUCTURE_SPACING = 1.5  # walls/floor (and large object faces) are meshed this much coarser,
LARGE_FACE = 0.8         # like ScanNet's decimated planes; faces whose sides all exceed this are "large"


def _grid_faces(nu: int, nv: int) -> np.ndarray:
    """Two triangles per cell of a (nu+1) x (nv+1) vertex grid indexed i * (nv + 1) + j."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = (i * (nv + 1) + j).ravel()
    b, c, d = a + nv + 1, a + nv + 2, a + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


def _chunks(n_cells: int, length: float, seg_size: float) -> np.ndarray:
    """Chunk index of each of the n_cells + 1 grid lines, about seg_size long each."""
    m = max(1, int(round(length / seg_size)))
    return np.minimum(np.arange(n_cells + 1) * m // (n_cells + 1), m - 1)


def _quad(origin, u, v, spacing: float, seg_size: float) -> _Part:
    """Triangulated grid over the parallelogram origin + s u + t v, s, t in [0, 1]."""
    origin, u, v = (np.asarray(x, dtype=np.float64) for x in (origin, u, v))
    lu, lv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    nu, nv = max(1, math.ceil(lu / spacing)), max(1, math.ceil(lv / spacing))
    s, t = np.meshgrid(np.linspace(0, 1, nu + 1), np.linspace(0, 1, nv + 1), indexing="ij")
    verts = origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v
    cu, cv = _chunks(nu, lu, seg_size), _chunks(nv, lv, seg_size)
    seg = (cu[:, None] * (cv.max() + 1) + cv[None, :]).ravel()
    n = np.cross(u, v)
    nz = n[2] / (np.linalg.norm(n) + 1e-12)
    return _Part(verts, _grid_faces(nu, nv), seg, np.full(len(verts), nz), np.ones(len(verts)))


def _merge(parts: Sequence[_Part]) -> _Part:
    """Concatenate parts, keeping their segments apart."""
    faces, segs = [], []
    v_off = s_off = 0
    for p in parts:
        faces.append(p.faces + v_off)
        segs.append(p.seg + s_off)
        v_off += len(p.verts)
        s_off += int(p.seg.max()) + 1
    return _Part(np.concatenate([p.verts for p in parts]), np.concatenate(faces), np.concatenate(segs),
                 np.concatenate([p.nz for p in parts]), np.concatenate([p.tone for p in parts]))


def _face_spacing(u, v, spacing: float) -> float:
    """Large flat faces get a coarser grid, as ScanNet's decimated meshes do on planar regions."""
    return spacing * STRUCTURE_SPACING if min(np.linalg.norm(u), np.linalg.norm(v)) > LARGE_FACE else spacing


def _box(lo, hi, spacing: float, seg_size: float, skip: tuple[str, ...] = (), tone: float = 1.0) -> _Part:
    """Axis-aligned box surface, optionally without some faces (e.g. the hidden bottom)."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    faces = {
        "bottom": ((x0, y0, z0), (0, dy, 0), (dx, 0, 0)),
        "top": ((x0, y0, z1), (dx, 0, 0), (0, dy, 0)),
        "-y": ((x0, y0, z0), (dx, 0, 0), (0, 0, dz)),
        "+y": ((x1, y1, z0), (-dx, 0, 0), (0, 0, dz)),
        "-x": ((x0, y1, z0), (0, -dy, 0), (0, 0, dz)),
        "+x": ((x1, y0, z0), (0, dy, 0), (0, 0, dz)),
    }
    box = _merge([_quad(o, u, v, _face_spacing(u, v, spacing), seg_size)
                  for k, (o, u, v) in faces.items() if k not in skip])
    return box._replace(tone=box.tone * tone)


def _cylinder(radius: float, height: float, spacing: float, seg_size: float) -> _Part:
    """Vertical cylinder side plus a closed top disk (fan around a centre vertex), base at z = 0."""
    n_theta = max(8, math.ceil(2 * math.pi * radius / spacing))
    n_z = max(1, math.ceil(height / spacing))
    theta, z = np.meshgrid(np.linspace(0, 2 * np.pi, n_theta + 1), np.linspace(0, height, n_z + 1), indexing="ij")
    side = np.stack([radius * np.cos(theta), radius * np.sin(theta), z], -1).reshape(-1, 3)
    cu = _chunks(n_theta, 2 * math.pi * radius, seg_size)
    cv = _chunks(n_z, height, seg_size)
    side_seg = (cu[:, None] * (cv.max() + 1) + cv[None, :]).ravel()
    side_part = _Part(side, _grid_faces(n_theta, n_z), side_seg, np.zeros(len(side)), np.ones(len(side)))
    # top: rings i = 1..n_r around a centre vertex; ring index-major so _grid_faces applies
    n_r = max(1, math.ceil(radius / spacing))
    r, th = np.meshgrid(np.linspace(radius / n_r, radius, n_r), np.linspace(0, 2 * np.pi, n_theta + 1), indexing="ij")
    ring = np.stack([r * np.cos(th), r * np.sin(th), np.full_like(r, height)], -1).reshape(-1, 3)
    top = np.concatenate([ring, [[0.0, 0.0, height]]])
    centre = len(ring)
    fan = np.stack([np.full(n_theta, centre), np.arange(n_theta), np.arange(1, n_theta + 1)], 1)
    top_faces = np.concatenate([_grid_faces(n_r - 1, n_theta), fan]) if n_r > 1 else fan
    top_part = _Part(top, top_faces, np.zeros(len(top), np.int64), np.ones(len(top)), np.ones(len(top)))
    return _merge([side_part, top_part])


LEG = 0.045        # leg width (m)
SMALL_OBJECT = 0.35  # objects smaller than this in every dimension form a single segment
OBJECT_SEG = 0.5   # target segment size on object surfaces (m)
STRUCTURE_SEG = 1.0  # target segment size on walls and floor (m)


def _legs(w: float, d: float, top: float, spacing: float) -> list[_Part]:
    ox, oy = w / 2 - LEG / 2 - 0.02, d / 2 - LEG / 2 - 0.02
    return [_box((sx * ox - LEG / 2, sy * oy - LEG / 2, 0), (sx * ox + LEG / 2, sy * oy + LEG / 2, top),
                 spacing, OBJECT_SEG, skip=("top", "bottom"), tone=0.6)
            for sx in (-1, 1) for sy in (-1, 1)]


def _shape(family: str, size: np.ndarray, spacing: float) -> _Part:
    """The surface of one object of ``family`` with the given (jittered) size."""
    w, d, h = (float(x) for x in size)
    lo, hi = (-w / 2, -d / 2, 0.0), (w / 2, d / 2, h)
    if family in ("cylinder", "small_cylinder"):
        part = _cylinder(w / 2, h, spacing, OBJECT_SEG)
    elif family == "table":
        top = _box((-w / 2, -d / 2, h - 0.04), hi, spacing, OBJECT_SEG)
        part = _merge([top, *_legs(w, d, h - 0.04, spacing)])
    elif family == "chair":
        seat_h = min(0.5, max(0.35, 0.5 * h))
        seat = _box((-w / 2, -d / 2, seat_h - 0.06), (w / 2, d / 2, seat_h), spacing, OBJECT_SEG)
        back = _box((-w / 2, d / 2 - 0.06, seat_h), hi, spacing, OBJECT_SEG, skip=("bottom",))
        part = _merge([seat, back, *_legs(w, d, seat_h - 0.06, spacing)])
    elif family == "sofa":
        seat_h = 0.5 * h
        base = _box(lo, (w / 2, d / 2, seat_h), spacing, OBJECT_SEG, skip=("bottom",))
        back = _box((-w / 2, d / 2 - 0.2, seat_h), hi, spacing, OBJECT_SEG, skip=("bottom",))
        arm = min(0.15, w / 6)
        arms = [_box((x0, -d / 2, seat_h), (x0 + arm, d / 2 - 0.2, seat_h + 0.2), spacing, OBJECT_SEG,
                     skip=("bottom",), tone=0.9) for x0 in (-w / 2, w / 2 - arm)]
        part = _merge([base, back, *arms])
    elif family == "panel":  # local y = 0 is the wall plane: the back face is hidden
        part = _box((-w / 2, 0.0, 0.0), (w / 2, d, h), spacing, OBJECT_SEG, skip=("-y",))
    elif family == "ceiling":  # hangs from above: no top face
        part = _box(lo, hi, spacing, OBJECT_SEG, skip=("top",))
    else:  # box, mat, small_box: resting on something, bottom hidden
        part = _box(lo, hi, spacing, OBJECT_SEG, skip=("bottom",))
    if max(w, d, h) < SMALL_OBJECT:  # small props are a single over-segment, as in real scans
        part = part._replace(seg=np.zeros(len(part.verts), np.int64))
    return part
