"""Triangulated surfaces: mesh primitives and the object shape of every family with its parts.

An object's local frame: footprint centred on the origin, base at z = 0, front towards -y and back
towards +y (the back faces the wall for objects against or on a wall).  Primitives' faces point
outward (u x v is the surface normal).  Every vertex carries ``accent``: 1 where it belongs to a
part drawn in the category's accent colour, else 0.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple, Sequence

import numpy as np


class _Part(NamedTuple):
    verts: np.ndarray   # (N, 3) float64
    faces: np.ndarray   # (F, 3) int64, indices into verts
    seg: np.ndarray     # (N,) local segment ids
    nz: np.ndarray      # (N,) z of the surface normal, for shading
    tone: np.ndarray    # (N,) brightness factor (e.g. the darker inside of a basin)
    accent: np.ndarray  # (N,) 1.0 where the vertex takes the accent colour


STRUCTURE_SPACING = 1.5  # walls/floor (and large object faces) are meshed this much coarser,
LARGE_FACE = 0.8         # like ScanNet's decimated planes; faces whose sides all exceed this are "large"
LEG = 0.06               # leg / post width (m)
SMALL_OBJECT = 0.35      # objects smaller than this in every dimension form a single segment
OBJECT_SEG = 0.5         # target segment size on object surfaces (m)
STRUCTURE_SEG = 1.0      # target segment size on walls and floor (m)
STRIPE = 0.12            # height of the stripes of "drawers" / "stripes" parts and of bands


@lru_cache(maxsize=4096)
def _grid_faces(nu: int, nv: int) -> np.ndarray:
    """Two triangles per cell of a (nu+1) x (nv+1) vertex grid indexed i * (nv + 1) + j (cached:
    treat as read-only)."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = (i * (nv + 1) + j).ravel()
    b, c, d = a + nv + 1, a + nv + 2, a + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


@lru_cache(maxsize=4096)
def _chunks(n_cells: int, length: float, seg_size: float) -> np.ndarray:
    """Chunk index of each of the n_cells + 1 grid lines, about seg_size long each (cached)."""
    m = max(1, int(round(length / seg_size)))
    return np.minimum(np.arange(n_cells + 1) * m // (n_cells + 1), m - 1)


@lru_cache(maxsize=4096)
def _grid_st(nu: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid parameters s, t in [0, 1] of the (nu+1) x (nv+1) vertices, vertex i * (nv + 1) + j (cached)."""
    return np.repeat(np.linspace(0, 1, nu + 1), nv + 1), np.tile(np.linspace(0, 1, nv + 1), nu + 1)


def _quad(origin, u, v, spacing: float, seg_size: float, accent: float = 0.0) -> _Part:
    """Triangulated grid over the parallelogram origin + s u + t v, s, t in [0, 1]."""
    (ox, oy, oz), (ux, uy, uz), (vx, vy, vz) = (map(float, x) for x in (origin, u, v))
    lu, lv = math.sqrt(ux * ux + uy * uy + uz * uz), math.sqrt(vx * vx + vy * vy + vz * vz)
    nu, nv = max(1, math.ceil(lu / spacing)), max(1, math.ceil(lv / spacing))
    s, t = _grid_st(nu, nv)
    k = len(s)
    verts = np.empty((k, 3))
    verts[:, 0] = ox + s * ux + t * vx
    verts[:, 1] = oy + s * uy + t * vy
    verts[:, 2] = oz + s * uz + t * vz
    cu, cv = _chunks(nu, round(lu, 6), seg_size), _chunks(nv, round(lv, 6), seg_size)
    seg = (cu[:, None] * (int(cv[-1]) + 1) + cv[None, :]).ravel()
    cx, cy, cz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    nz = cz / (math.sqrt(cx * cx + cy * cy + cz * cz) + 1e-12)
    return _Part(verts, _grid_faces(nu, nv), seg, np.full(k, nz), np.ones(k), np.full(k, float(accent)))


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
                 np.concatenate([p.nz for p in parts]), np.concatenate([p.tone for p in parts]),
                 np.concatenate([p.accent for p in parts]))


def _face_spacing(u, v, spacing: float) -> float:
    """Large flat faces get a coarser grid, as ScanNet's decimated meshes do on planar regions."""
    small = min(math.sqrt(sum(float(x) ** 2 for x in u)), math.sqrt(sum(float(x) ** 2 for x in v)))
    return spacing * STRUCTURE_SPACING if small > LARGE_FACE else spacing


def _box_faces(lo, hi) -> dict[str, tuple]:
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    return {
        "bottom": ((x0, y0, z0), (0, dy, 0), (dx, 0, 0)),
        "top": ((x0, y0, z1), (dx, 0, 0), (0, dy, 0)),
        "-y": ((x0, y0, z0), (dx, 0, 0), (0, 0, dz)),
        "+y": ((x1, y1, z0), (-dx, 0, 0), (0, 0, dz)),
        "-x": ((x0, y1, z0), (0, -dy, 0), (0, 0, dz)),
        "+x": ((x1, y0, z0), (0, dy, 0), (0, 0, dz)),
    }


def _box(lo, hi, spacing: float, seg_size: float = OBJECT_SEG, skip: tuple[str, ...] = (),
         accent: bool = False, tone: float = 1.0) -> _Part:
    """Axis-aligned box surface, optionally without some faces (e.g. the hidden bottom)."""
    box = _merge([_quad(o, u, v, _face_spacing(u, v, spacing), seg_size, float(accent))
                  for k, (o, u, v) in _box_faces(lo, hi).items() if k not in skip])
    return box._replace(tone=box.tone * tone)


def _cylinder(radius: float, height: float, spacing: float, seg_size: float = OBJECT_SEG, z0: float = 0.0,
              top: bool = True, accent: bool = False, tone: float = 1.0) -> _Part:
    """Vertical cylinder side from z0 to z0 + height, with a closed top disk unless ``top`` is False."""
    n_theta = max(8, math.ceil(2 * math.pi * radius / spacing))
    n_z = max(1, math.ceil(height / spacing))
    theta, z = np.meshgrid(np.linspace(0, 2 * np.pi, n_theta + 1), np.linspace(z0, z0 + height, n_z + 1),
                           indexing="ij")
    side = np.stack([radius * np.cos(theta), radius * np.sin(theta), z], -1).reshape(-1, 3)
    cu = _chunks(n_theta, 2 * math.pi * radius, seg_size)
    cv = _chunks(n_z, height, seg_size)
    side_seg = (cu[:, None] * (cv.max() + 1) + cv[None, :]).ravel()
    n = len(side)
    parts = [_Part(side, _grid_faces(n_theta, n_z), side_seg, np.zeros(n), np.full(n, tone),
                   np.full(n, float(accent)))]
    if top:
        parts.append(_disk(radius, z0 + height, spacing, n_theta, accent=accent, tone=tone))
    return _merge(parts)


def _disk(radius: float, z: float, spacing: float, n_theta: int | None = None, accent: bool = False,
          tone: float = 1.0) -> _Part:
    """Horizontal disk facing up: rings around a centre vertex, ring index-major so _grid_faces applies."""
    n_theta = n_theta or max(8, math.ceil(2 * math.pi * radius / spacing))
    n_r = max(1, math.ceil(radius / spacing))
    r, th = np.meshgrid(np.linspace(radius / n_r, radius, n_r), np.linspace(0, 2 * np.pi, n_theta + 1), indexing="ij")
    ring = np.stack([r * np.cos(th), r * np.sin(th), np.full_like(r, z)], -1).reshape(-1, 3)
    verts = np.concatenate([ring, [[0.0, 0.0, z]]])
    centre = len(ring)
    fan = np.stack([np.full(n_theta, centre), np.arange(n_theta), np.arange(1, n_theta + 1)], 1)
    faces = np.concatenate([_grid_faces(n_r - 1, n_theta), fan]) if n_r > 1 else fan
    n = len(verts)
    return _Part(verts, faces, np.zeros(n, np.int64), np.ones(n), np.full(n, tone), np.full(n, float(accent)))


def _moved(p: _Part, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> _Part:
    return p._replace(verts=p.verts + np.array([dx, dy, dz]))


def _bands(x0, x1, z0, z1, y, spacing, pattern: Sequence[tuple[float, float, float, float, bool]],
           facing: str = "-y") -> list[_Part]:
    """A vertical face at y (facing -y or +y) tiled by rectangles (xa, xb, za, zb, accent)."""
    out = []
    for xa, xb, za, zb, acc in pattern:
        xa, xb, za, zb = max(xa, x0), min(xb, x1), max(za, z0), min(zb, z1)
        if xb - xa < 1e-6 or zb - za < 1e-6:
            continue
        if facing == "-y":
            out.append(_quad((xa, y, za), (xb - xa, 0, 0), (0, 0, zb - za), spacing, OBJECT_SEG, float(acc)))
        else:
            out.append(_quad((xb, y, za), (xa - xb, 0, 0), (0, 0, zb - za), spacing, OBJECT_SEG, float(acc)))
    return out


def _stripes(z0: float, z1: float) -> list[tuple[float, float, bool]]:
    """Alternating (za, zb, accent) stripes of height STRIPE from z0 to z1, main colour first."""
    n = max(3, int(round((z1 - z0) / STRIPE)))
    edges = np.linspace(z0, z1, n + 1)
    return [(float(edges[i]), float(edges[i + 1]), i % 2 == 1) for i in range(n)]


def _front_pattern(parts: tuple[str, ...], x0, x1, z0, z1) -> list[tuple[float, float, float, float, bool]]:
    """How the front face of a box-like body is tiled (main colour unless a part says otherwise)."""
    w, h = x1 - x0, z1 - z0
    if "front" in parts:
        return [(x0, x1, z0, z1, True)]
    if "drawers" in parts:
        return [(x0, x1, a, b, acc) for a, b, acc in _stripes(z0, z1)]
    if "doors" in parts:
        mid = (x0 + x1) / 2
        return [(x0, mid - 0.05, z0, z1, False), (mid - 0.05, mid + 0.05, z0, z1, True), (mid + 0.05, x1, z0, z1, False)]
    if "opening" in parts:
        ox0, ox1, oz1 = x0 + 0.2 * w, x1 - 0.2 * w, z0 + 0.65 * h
        return [(x0, ox0, z0, z1, False), (ox1, x1, z0, z1, False), (ox0, ox1, oz1, z1, False),
                (ox0, ox1, z0, oz1, True)]
    return [(x0, x1, z0, z1, False)]


def _body(x0, y0, z0, x1, y1, z1, spacing, parts: tuple[str, ...], skip: tuple[str, ...] = ()) -> list[_Part]:
    """A box body whose height is split into accent bands (band, lid, mattress) and whose front
    face is tiled by _front_pattern; ``skip`` names hidden faces ("bottom", "+y")."""
    h = z1 - z0
    layers = [(z0, z1, False)]
    if "lid" in parts:
        layers = [(z0, z1 - 0.3 * h, False), (z1 - 0.3 * h, z1, True)]
    elif "mattress" in parts:
        layers = [(z0, z0 + 0.55 * h, False), (z0 + 0.55 * h, z1, True)]
    elif "band" in parts and h > 2 * STRIPE:
        zc = z0 + 0.6 * h
        layers = [(z0, zc - STRIPE / 2, False), (zc - STRIPE / 2, zc + STRIPE / 2, True), (zc + STRIPE / 2, z1, False)]
    out = []
    for i, (za, zb, acc) in enumerate(layers):
        hide = {"-y"} | set(skip) | ({"bottom"} if i > 0 else set()) | ({"top"} if i < len(layers) - 1 else set())
        out.append(_box((x0, y0, za), (x1, y1, zb), spacing, skip=tuple(hide), accent=acc))
        if "-y" not in skip:
            pattern = _front_pattern(parts, x0, x1, za, zb) if not acc else [(x0, x1, za, zb, True)]
            out += _bands(x0, x1, za, zb, y0, spacing, pattern)
    return out


def _legs(x0, y0, x1, y1, top: float, spacing: float, width: float = LEG, accent: bool = True) -> list[_Part]:
    return [_box((x - width / 2, y - width / 2, 0), (x + width / 2, y + width / 2, top), spacing,
                 skip=("top", "bottom"), accent=accent)
            for x in (x0 + width / 2, x1 - width / 2) for y in (y0 + width / 2, y1 - width / 2)]


# ---------------------------------------------------------------- families


def _box_family(w, d, h, parts, spacing, mounted: bool) -> list[_Part]:
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    back = ("+y",) if mounted else ()
    out: list[_Part] = []
    if "steps" in parts:  # stairs: steps rise towards the back
        n = max(3, int(round(h / 0.2)))
        for k in range(n):
            ya, yb = y0 + k * d / n, y0 + (k + 1) * d / n
            out.append(_box((x0, ya, 0), (x1, yb, (k + 1) * h / n), spacing, skip=("bottom",), accent=k % 2 == 1))
        return out
    if "rungs" in parts:  # ladder: two side rails and accent rungs
        out += [_box((x, y0, 0), (x + LEG, y1, h), spacing, skip=("bottom",)) for x in (x0, x1 - LEG)]
        out += [_box((x0 + LEG, y0, z), (x1 - LEG, y1, z + LEG), spacing, accent=True)
                for z in np.arange(0.25, h - 0.1, 0.3)]
        return out
    if "wheels" in parts:  # bicycle: two accent wheels, a frame bar, saddle and handlebar
        r = min(0.33, h / 3)
        out += [_box((x - r, -0.04, 0), (x + r, 0.04, 2 * r), spacing, accent=True) for x in (x0 + r, x1 - r)]
        out.append(_box((x0 + r, -0.04, 2 * r), (x1 - r, 0.04, 2 * r + 0.08), spacing))
        out.append(_box((x0 + 0.35 * w, -0.06, 2 * r), (x0 + 0.35 * w + 0.1, 0.06, h - 0.1), spacing))
        out.append(_box((x1 - r - 0.06, y0, h - 0.08), (x1 - r + 0.06, y1, h), spacing))
        return out
    if "stall" in parts:  # an enclosure: two side walls and a back wall, open at the front
        t = 0.06
        out += [_box((x, y0, 0), (x + t, y1, h), spacing, skip=("bottom",)) for x in (x0, x1 - t)]
        out.append(_box((x0 + t, y1 - t, 0), (x1 - t, y1, h), spacing, skip=("bottom",), accent=True))
        return out
    if "laptop" in parts:  # a base and an open lid
        out.append(_box((x0, y0, 0), (x1, y1, 0.04), spacing, skip=("bottom",)))
        out.append(_box((x0, y1 - 0.04, 0.04), (x1, y1, h), spacing, accent=True))
        return out
    if "screen" in parts:  # a low accent base, a screen block on its back half
        zb = max(0.04, 0.15 * h)
        out.append(_box((x0, y0, 0), (x1, y1, zb), spacing, skip=("bottom",), accent=True))
        out.append(_box((x0, 0.0, zb), (x1, y1, h), spacing, skip=("bottom",) + back))
        return out
    z0, z1 = 0.0, h
    if "legs" in parts:
        lh = min(0.16, 0.3 * h)
        out += _legs(x0 + 0.03, y0 + 0.03, x1 - 0.03, y1 - 0.03, lh, spacing)
        z0 = lh
    if "plinth" in parts:
        out.append(_box((x0 + 0.05, y0 + 0.05, 0), (x1 - 0.05, y1 - 0.05, 0.1), spacing, skip=("bottom", "top") + back,
                        accent=True))
        z0 = 0.1
    if "top" in parts:
        out.append(_box((x0 - 0.02, y0 - 0.03, h - 0.08), (x1 + 0.02, y1, h), spacing, skip=back, accent=True))
        z1 = h - 0.08
    if "headboard" in parts:
        out.append(_box((x0, y1 - 0.08, 0), (x1, y1, h + 0.45), spacing, skip=("bottom",) + back, accent=True))
        y1 -= 0.08
    if "handle" in parts:
        out.append(_box((-w / 4, -0.03, h), (w / 4, 0.03, h + 0.08), spacing, skip=("bottom",), accent=True))
    skip = ("bottom",) + back if z0 == 0 else back
    if z0 > 0 and z0 >= 0.1 and "legs" not in parts:
        skip = ("bottom",) + back  # a plinth hides the bottom
    out += _body(x0, y0, z0, x1, y1, z1, spacing, parts, skip=skip)
    return out


def _table(w, d, h, parts, spacing) -> list[_Part]:
    t = 0.06
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    out = [_box((x0, y0, h - t), (x1, y1, h), spacing)]
    if "pedestal" in parts:
        out.append(_box((-LEG, -LEG, 0.04), (LEG, LEG, h - t), spacing, skip=("top", "bottom"), accent=True))
        out.append(_box((-0.3 * w, -0.3 * d, 0), (0.3 * w, 0.3 * d, 0.04), spacing, skip=("bottom",), accent=True))
    else:
        out += _legs(x0, y0, x1, y1, h - t, spacing)
    if "shelf" in parts:
        out.append(_box((x0 + LEG, y0 + LEG, 0.2 * h), (x1 - LEG, y1 - LEG, 0.2 * h + 0.04), spacing))
    if "drawers" in parts:
        out.append(_box((x1 - LEG - 0.35 * w, y0 + LEG, h - t - 0.2), (x1 - LEG, y1 - LEG, h - t), spacing,
                        skip=("top",), accent=True))
    if "front" in parts:
        out.append(_box((x0, y0, 0), (x1, y0 + 0.04, h - t), spacing, skip=("bottom", "top"), accent=True))
    return out


def _chair(w, d, h, parts, spacing) -> list[_Part]:
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    if "folded" in parts:  # a folded chair: a flat slab on accent feet
        return [_box((x0, y0, 0.1), (x1, y1, h), spacing), _box((x0, y0, 0), (x1, y1, 0.1), spacing,
                                                                 skip=("bottom",), accent=True)]
    sh = min(0.5, max(0.35, 0.5 * h)) if "noback" not in parts else h
    out = [_box((x0, y0, sh - 0.06), (x1, y1, sh), spacing)]
    if "noback" not in parts:
        out.append(_box((x0, y1 - 0.06, sh), (x1, y1, h), spacing, skip=("bottom",)))
    if "pedestal" in parts:
        out.append(_box((-LEG, -LEG, 0.05), (LEG, LEG, sh - 0.06), spacing, skip=("top", "bottom"), accent=True))
        out.append(_box((x0, -LEG / 2, 0), (x1, LEG / 2, 0.05), spacing, skip=("bottom",), accent=True))
        out.append(_box((-LEG / 2, y0, 0), (LEG / 2, y1, 0.05), spacing, skip=("bottom",), accent=True))
    else:
        out += _legs(x0, y0, x1, y1, sh - 0.06, spacing)
    if "arms" in parts:
        out += [_box((x, y0 + 0.1 * d, sh + 0.17), (x + LEG, y1 - 0.06, sh + 0.23), spacing, accent=True)
                for x in (x0, x1 - LEG)]
    return out


def _sofa(w, d, h, parts, spacing) -> list[_Part]:
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    sh = 0.5 * h
    back = 0.0 if "noback" in parts else min(0.2, 0.25 * d)
    arm = 0.0 if "noarms" in parts else min(0.15, w / 6)
    out = [_box((x0, y0, 0), (x1, y1, sh), spacing, skip=("bottom",))]
    if back:
        out.append(_box((x0, y1 - back, sh), (x1, y1, h), spacing, skip=("bottom",)))
    if arm:
        out += [_box((x, y0, sh), (x + arm, y1 - back, sh + 0.2), spacing, skip=("bottom",), tone=0.9)
                for x in (x0, x1 - arm)]
    if "cushions" in parts:
        out.append(_box((x0 + arm, y0, sh), (x1 - arm, y1 - back, sh + 0.1), spacing, skip=("bottom",), accent=True))
    return out


def shelf_levels(h: float) -> list[float]:
    """Heights of a shelf's boards (the lowest at 0.1 m, then every ~0.38 m, the top one at h)."""
    n = max(2, int(round((h - 0.1) / 0.38)) + 1)
    return [float(z) for z in np.linspace(0.1, h, n)]


def _shelf(w, d, h, parts, spacing) -> list[_Part]:
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    t = 0.04
    out = []
    if "posts" in parts:
        out += _legs(x0, y0, x1, y1, h, spacing)
    else:
        out += [_box((x, y0, 0), (x + t, y1, h), spacing, skip=("bottom",)) for x in (x0, x1 - t)]
    if "back" in parts:
        out.append(_box((x0 + t, y1 - 0.02, 0), (x1 - t, y1, h), spacing, skip=("bottom", "+y"), accent=True))
    out += [_box((x0 + t, y0, z - t), (x1 - t, y1, z), spacing, skip=("+y",) if "back" in parts else ())
            for z in shelf_levels(h)]
    return out


def _panel(w, d, h, parts, spacing, elevation: float) -> list[_Part]:
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    b = min(0.08, w / 4, h / 4)  # border width
    if "open" in parts:  # a frame around an opening (doorframe)
        return [_box((x0, y0, 0), (x0 + 2 * b, y1, h), spacing, skip=("+y",)),
                _box((x1 - 2 * b, y0, 0), (x1, y1, h), spacing, skip=("+y",)),
                _box((x0 + 2 * b, y0, h - 2 * b), (x1 - 2 * b, y1, h), spacing, skip=("+y",))]
    out = [_box((x0, y0, 0), (x1, y1, h), spacing, skip=("+y", "-y"))]
    if "frame" in parts or "cross" in parts:
        pattern = [(x0, x1, 0, b, True), (x0, x1, h - b, h, True), (x0, x0 + b, b, h - b, True),
                   (x1 - b, x1, b, h - b, True)]
        inner = [(x0 + b, x1 - b, b, h - b, False)]
        if "cross" in parts:
            inner = [(x0 + b, -b / 2, b, h / 2 - b / 2, False), (b / 2, x1 - b, b, h / 2 - b / 2, False),
                     (x0 + b, -b / 2, h / 2 + b / 2, h - b, False), (b / 2, x1 - b, h / 2 + b / 2, h - b, False),
                     (-b / 2, b / 2, b, h - b, True), (x0 + b, -b / 2, h / 2 - b / 2, h / 2 + b / 2, True),
                     (b / 2, x1 - b, h / 2 - b / 2, h / 2 + b / 2, True)]
        pattern += inner
    elif "stripes" in parts:
        pattern = [(x0, x1, a, c, acc) for a, c, acc in _stripes(0, h)]
    elif "band" in parts:
        zc = 0.7 * h
        pattern = [(x0, x1, 0, zc - STRIPE / 2, False), (x0, x1, zc - STRIPE / 2, min(h, zc + STRIPE / 2), True),
                   (x0, x1, min(h, zc + STRIPE / 2), h, False)]
    else:
        pattern = [(x0, x1, 0, h, False)]
    out += _bands(x0, x1, 0, h, y0, spacing, pattern)
    if "knob" in parts:
        out.append(_box((x1 - 0.2, y0 - 0.06, 1.0 - 0.05), (x1 - 0.1, y0, 1.0 + 0.05), spacing, skip=("+y",),
                        accent=True))
    return out


def _rod(w, d, h, parts, spacing, elevation: float) -> list[_Part]:
    """A horizontal bar along x (diameter h) at the front of its depth d; local z = 0 is its bottom."""
    r = h / 2
    bar = _cylinder(r, w, spacing, top=True)
    # (x, y, z) of the vertical cylinder -> (z, x, y): a cyclic permutation, i.e. a rotation
    verts = bar.verts[:, [2, 0, 1]] + np.array([-w / 2, -d / 2 + r, r])
    out = [bar._replace(verts=verts, nz=np.zeros(len(verts)))]
    if "brackets" in parts:
        out += [_box((x - 0.04, -d / 2 + r, 0), (x + 0.04, d / 2, h), spacing, skip=("+y",), accent=True)
                for x in (-w / 2 + 0.1, w / 2 - 0.1)]
    if "posts" in parts:
        xs = np.linspace(-w / 2 + 0.1, w / 2 - 0.1, max(2, int(round(w / 0.6)) + 1))
        out += [_box((x - 0.03, -d / 2 + r - 0.03, -elevation), (x + 0.03, -d / 2 + r + 0.03, 0), spacing,
                     skip=("bottom", "top"), accent=True) for x in xs]
    return out


def _basin(w, d, h, parts, spacing) -> list[_Part]:
    """A box whose top is a rim around a recess (toilet, sink, bathtub, shower tray)."""
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    out: list[_Part] = []
    if "tank" in parts:
        out.append(_box((x0, y1 - 0.2, 0), (x1, y1, h + 0.3), spacing, skip=("bottom",), accent=True))
        y1 -= 0.2
    zb = 0.0
    if "pedestal" in parts:
        zb = max(0.0, h - 0.25)
        out.append(_box((-0.1, -0.1, 0), (0.1, 0.1, zb), spacing, skip=("top", "bottom")))
    top = h
    if "walls" in parts:
        top = 0.15
        out.append(_box((x0, y1 - 0.05, top), (x1, y1, h), spacing, skip=("bottom",), accent=True))
        out.append(_box((x0, y0, top), (x0 + 0.05, y1 - 0.05, h), spacing, skip=("bottom",), accent=True))
    rim = min(0.1, (x1 - x0) / 4, (y1 - y0) / 4)
    depth = min(0.3, 0.5 * (top - zb))
    out.append(_box((x0, y0, zb), (x1, y1, top), spacing, skip=("top", "bottom") if zb == 0 else ("top",)))
    ix0, ix1, iy0, iy1 = x0 + rim, x1 - rim, y0 + rim, y1 - rim
    for o, u, v in (((x0, y0, top), (x1 - x0, 0, 0), (0, rim, 0)), ((x0, iy1, top), (x1 - x0, 0, 0), (0, rim, 0)),
                    ((x0, iy0, top), (rim, 0, 0), (0, iy1 - iy0, 0)), ((ix1, iy0, top), (rim, 0, 0), (0, iy1 - iy0, 0))):
        out.append(_quad(o, u, v, spacing, OBJECT_SEG))
    inner = _box((ix0, iy0, top - depth), (ix1, iy1, top), spacing, skip=("top",), tone=0.8)
    out.append(inner)
    return out


def _cylinder_family(w, d, h, parts, spacing) -> list[_Part]:
    if "square" in parts:  # the same parts on a box-shaped body
        return _box_family(w, d, h, tuple(p for p in parts if p != "square"), spacing, False)
    r = w / 2
    layers = [(0.0, h, False, r)]
    if "lid" in parts:
        layers = [(0.0, 0.75 * h, False, r), (0.75 * h, h, True, r)]
    elif "cap" in parts:
        layers = [(0.0, 0.75 * h, False, r), (0.75 * h, h, True, 0.7 * r)]
    elif "head" in parts:
        layers = [(0.0, 0.85 * h, False, r), (0.85 * h, h, True, 0.6 * r)]
    elif "rim" in parts:
        layers = [(0.0, h - 0.08, False, r), (h - 0.08, h, True, r)]
    elif "base" in parts:
        layers = [(0.0, 0.1, True, r), (0.1, h, False, r)]
    elif "band" in parts and h > 2 * STRIPE:
        zc = 0.55 * h
        layers = [(0.0, zc - STRIPE / 2, False, r), (zc - STRIPE / 2, zc + STRIPE / 2, True, r), (zc + STRIPE / 2, h, False, r)]
    out = []
    for i, (za, zb, acc, rr) in enumerate(layers):
        last = i == len(layers) - 1
        closed = last and "open" not in parts
        out.append(_cylinder(rr, zb - za, spacing, z0=za, top=closed or (rr < layers[min(i + 1, len(layers) - 1)][3] * 0.99),
                             accent=acc))
        if not last and layers[i + 1][3] < rr * 0.99:  # a narrower layer above: the shoulder is visible
            out.append(_disk(rr, zb, spacing, accent=acc))
    if "open" in parts:
        out.append(_disk(0.9 * r, 0.05, spacing, tone=0.7))
    return out


def _pole(w, d, h, parts, spacing) -> list[_Part]:
    out = [_cylinder(0.3 * min(w, d), 0.04, spacing, accent=True)]
    z_pole0, z_pole1 = 0.04, h
    if "brush" in parts:
        out.append(_box((-w / 2, -d / 2, 0), (w / 2, d / 2, 0.15), spacing, skip=("bottom",)))
        z_pole0 = 0.15
    elif "cup" in parts:
        out.append(_cylinder(w / 2, 0.12, spacing))
        z_pole0 = 0.12
    elif "body" in parts:
        out.append(_box((-w / 2, -d / 2, 0), (w / 2, d / 2, 0.4 * h), spacing, skip=("bottom",)))
        z_pole0 = 0.4 * h
    if "shade" in parts:
        out.append(_cylinder(w / 2, 0.3, spacing, z0=h - 0.3))
        z_pole1 = h - 0.3
    elif "disc" in parts:
        out.append(_cylinder(w / 2, 0.1, spacing, z0=h - 0.2))
        z_pole1 = h - 0.2
    elif "hooks" in parts:
        out.append(_box((-w / 2, -0.03, h - 0.08), (w / 2, 0.03, h - 0.02), spacing))
        out.append(_box((-0.03, -d / 2, h - 0.16), (0.03, d / 2, h - 0.1), spacing))
    out.append(_box((-0.03, -0.03, z_pole0), (0.03, 0.03, z_pole1), spacing, skip=("top", "bottom"), accent=True))
    return out


def _plant(w, d, h, parts, spacing) -> list[_Part]:
    pot = 0.35 * h
    return [_cylinder(0.35 * w, pot, spacing, accent=True),
            _cylinder(w / 2, h - pot, spacing, z0=pot)]


def _mat(w, d, h, parts, spacing) -> list[_Part]:
    x0, x1, y0, y1 = -w / 2, w / 2, -d / 2, d / 2
    out = [_box((x0, y0, 0), (x1, y1, h), spacing, skip=("bottom", "top"))]
    b = 0.1
    if "border" in parts:
        rects = [(x0, x1, y0, y0 + b, True), (x0, x1, y1 - b, y1, True), (x0, x0 + b, y0 + b, y1 - b, True),
                 (x1 - b, x1, y0 + b, y1 - b, True), (x0 + b, x1 - b, y0 + b, y1 - b, False)]
    else:
        rects = [(x0, x1, y0, y1, False)]
    out += [_quad((a, c, h), (bb - a, 0, 0), (0, e - c, 0), spacing, OBJECT_SEG, float(acc)) for a, bb, c, e, acc in rects]
    return out


def _ceiling(w, d, h, parts, spacing) -> list[_Part]:
    lo, hi = (-w / 2, -d / 2, 0.0), (w / 2, d / 2, h)
    if "rim" in parts:
        return [_box(lo, hi, spacing, skip=("top", "bottom"), accent=True),
                _quad((w / 2, -d / 2, 0), (-w, 0, 0), (0, d, 0), spacing, OBJECT_SEG)]
    return [_box(lo, hi, spacing, skip=("top",))]


def _shape(family: str, size: np.ndarray, spacing: float, parts: tuple[str, ...] = (), mounted: bool = False,
           elevation: float = 0.0) -> _Part:
    """The surface of one object of ``family`` with its parts and (jittered) size; ``mounted``: it
    hangs on a wall, so its back face (+y) is hidden."""
    w, d, h = (float(x) for x in size)
    if family == "box":
        pieces = _box_family(w, d, h, parts, spacing, mounted)
    elif family == "table":
        pieces = _table(w, d, h, parts, spacing)
    elif family == "chair":
        pieces = _chair(w, d, h, parts, spacing)
    elif family == "sofa":
        pieces = _sofa(w, d, h, parts, spacing)
    elif family == "shelf":
        pieces = _shelf(w, d, h, parts, spacing)
    elif family == "panel":
        pieces = _panel(w, d, h, parts, spacing, elevation)
    elif family == "rod":
        pieces = _rod(w, d, h, parts, spacing, elevation)
    elif family == "basin":
        pieces = _basin(w, d, h, parts, spacing)
    elif family == "cylinder":
        pieces = _cylinder_family(w, d, h, parts, spacing)
    elif family == "pole":
        pieces = _pole(w, d, h, parts, spacing)
    elif family == "plant":
        pieces = _plant(w, d, h, parts, spacing)
    elif family == "mat":
        pieces = _mat(w, d, h, parts, spacing)
    elif family == "ceiling":
        pieces = _ceiling(w, d, h, parts, spacing)
    else:
        raise ValueError(f"unknown shape family {family!r}")
    part = _merge(pieces)
    if max(w, d, h) < SMALL_OBJECT:  # small props are a single over-segment, as in real scans
        part = part._replace(seg=np.zeros(len(part.verts), np.int64))
    return part


def cut(part: _Part, remove: np.ndarray) -> _Part:
    """``part`` without the vertices flagged in ``remove``, the faces that use them and any vertex
    left in no face; segment ids are renumbered 0..K-1 in order."""
    keep = ~np.asarray(remove, bool)
    faces = part.faces[keep[part.faces].all(1)]
    used = np.zeros(len(part.verts), bool)
    used[faces.ravel()] = True
    new_index = np.cumsum(used) - 1
    _, seg = np.unique(part.seg[used], return_inverse=True)
    return _Part(part.verts[used], new_index[faces], seg.astype(np.int64), part.nz[used], part.tone[used],
                 part.accent[used])
