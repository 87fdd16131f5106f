"""A vectorised z-buffer triangle rasterizer (numpy only): depth, face id and perspective-correct
barycentric images of a triangle mesh seen by a pinhole camera.  Not ``lgseg.render`` (pictures
of predictions): this module makes the synthetic world's camera images.

Conventions (the image side depends on them):

* Camera frame = OpenCV / ScanNet: x right, y down, z forward; depth is z (metres), not the
  distance along the ray.
* A camera point (x, y, z) projects to u = fx * x / z + cx, v = fy * y / z + cy, and the pixel of
  column i, row j has its centre at (u, v) = (i, j) (what OpenScene's projection assumes when it
  rounds u, v to the nearest integers).  A triangle covers pixel (i, j) when the pixel centre lies
  in the closed projected triangle: centres exactly on an edge are covered, so a centre on an edge
  shared by two faces is covered by at least one of them (see "Watertight edges" below).
* Intrinsics as ScanNet writes them, 4x4 [[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0],
  [0, 0, 0, 1]] (a 3x3 [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] is accepted too); extrinsics as a
  4x4 world -> camera matrix (``Camera.from_pose`` takes ScanNet's camera -> world pose).
* No back-face culling (the synthetic meshes are seen from both sides: walls from inside the
  room, objects with open bottoms) and no clipping: a face with a vertex nearer than ``near``
  (behind the camera included) is dropped whole.  Meshes finer than the distance to the near
  plane lose nothing visible (the demo's 4-6 cm faces, cameras a metre from everything).

Algorithm (``rasterize``; no Python loop over faces or pixels):

1. All vertices to the camera frame and projected; faces with a vertex nearer than ``near``,
   of zero screen area or whose bounding box holds no pixel centre of the image are dropped.
2. Faces are grouped by the size of their pixel bounding box (a few classes per axis,
   1, 2, 3, 4, 6, 8, 12, 16, ...: at most 1.5x padding per axis); each group's candidate pixels
   are one numpy broadcast of (faces, rows, columns), in chunks of at most ``_CHUNK`` candidates,
   so faces as large as the image are handled like the small ones, only in smaller chunks.
3. Inside test with the three edge functions.  The edge function of edge (a, b) at pixel (i, j)
   is evaluated as ``P >= Q`` with P = s * dx * (j - ly), Q = s * dy * (i - lx), where (lx, ly) is
   the edge's endpoint that comes first in (u, v) order, (dx, dy) the other endpoint minus it and
   s = +-1 the face's side of the edge.  Both faces sharing an edge compute bitwise the same
   products (from the same coordinates, in the same order) with opposite signs s, and float
   negation is exact, so a pixel centre is inside the closed half-plane of at least one of them.
   (Watertight edges: a mesh has no cracks along shared edges, whether the two faces share the
   vertex indices or only the coordinates.)
4. 1/z is affine in screen space over a face (perspective-correct depth); each candidate's 1/z
   comes from the face's plane of 1/z, and a z-buffer keeps the largest 1/z per pixel
   (``np.maximum.at``); candidates that cannot win any more are dropped after each chunk.  Among
   equal depths the lowest face id wins (deterministic).
5. Barycentric weights of the winning face at each covered pixel: screen-space weights from the
   same edge functions, made perspective-correct with the vertices' 1/z.

All geometry is float64 (outputs float32).  Cost: about 40 ms per 320x240 frame of a demo room
(~120k triangles) on one core; ``benchmarks/bench_render.py`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# candidate pixels per broadcast chunk: the (faces, rows, columns) boolean temporaries stay at
# 2 MB, the int64 indices of the candidates inside at most 16 MB, whatever the faces' sizes
_CHUNK = 1 << 21
# bounding-box size classes (pixels per axis): consecutive ratios <= 1.5, so a face's candidate
# grid is at most 1.5 x 1.5 its bounding box, and an image of up to 2^16 pixels a side needs
# only 2 classes per doubling
_SIZES = np.array(sorted({1, 2, 3} | {int(m * 2 ** k) for k in range(1, 17) for m in (1, 1.5)}))


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera: ``intrinsic`` (4, 4) or (3, 3) as ScanNet writes it, the image size
    ``width`` x ``height`` in pixels and ``world_to_camera`` (4, 4), to the OpenCV camera frame
    (x right, y down, z forward).  Arrays are stored as read-only float64 (eq=False: compared by
    identity, as arrays have no single truth value)."""

    intrinsic: np.ndarray
    width: int
    height: int
    world_to_camera: np.ndarray

    def __post_init__(self):
        k = np.array(self.intrinsic, dtype=np.float64)
        if k.shape not in ((3, 3), (4, 4)):
            raise ValueError(f"intrinsic must be 3x3 or 4x4, got shape {k.shape}")
        if not (k[0, 0] > 0 and k[1, 1] > 0) or k[0, 1] != 0 or k[1, 0] != 0:
            raise ValueError(f"intrinsic needs fx, fy > 0 and no skew, got {k[:3, :3].tolist()}")
        e = np.array(self.world_to_camera, dtype=np.float64)
        if e.shape != (4, 4) or not np.isfinite(e).all():
            raise ValueError(f"world_to_camera must be a finite 4x4, got shape {e.shape}")
        w, h = int(self.width), int(self.height)
        if w != self.width or h != self.height or w < 1 or h < 1:
            raise ValueError(f"image size must be positive integers, got {self.width} x {self.height}")
        k.setflags(write=False)
        e.setflags(write=False)
        object.__setattr__(self, "intrinsic", k)
        object.__setattr__(self, "world_to_camera", e)
        object.__setattr__(self, "width", w)
        object.__setattr__(self, "height", h)

    @classmethod
    def from_pose(cls, intrinsic, width: int, height: int, camera_to_world) -> "Camera":
        """From a camera -> world pose (ScanNet's ``pose/<frame>.txt``): a rotation and a
        translation, inverted exactly as a rigid motion (R^T, -R^T t)."""
        p = np.asarray(camera_to_world, dtype=np.float64)
        if p.shape != (4, 4):
            raise ValueError(f"camera_to_world must be 4x4, got shape {p.shape}")
        inv = np.eye(4)
        inv[:3, :3] = p[:3, :3].T
        inv[:3, 3] = -p[:3, :3].T @ p[:3, 3]
        return cls(intrinsic, width, height, inv)

    @property
    def fx(self) -> float:
        return float(self.intrinsic[0, 0])

    @property
    def fy(self) -> float:
        return float(self.intrinsic[1, 1])

    @property
    def cx(self) -> float:
        return float(self.intrinsic[0, 2])

    @property
    def cy(self) -> float:
        return float(self.intrinsic[1, 2])


@dataclass(frozen=True, eq=False)
class Raster:
    """One rendered view: ``depth`` (H, W) float32 metres, 0 where no surface; ``face`` (H, W)
    int32 index into the rendered faces, -1 where none; ``bary`` (H, W, 3) float32
    perspective-correct barycentric weights of the face's three vertices (in the face's vertex
    order; 0 where none).  ``stats``: faces kept after culling, candidate pixels tested
    (bounding-box padding included), candidates inside a face, size-class buckets."""

    depth: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    stats: dict = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels that see a surface."""
        return self.face >= 0


def _edges(u: np.ndarray, v: np.ndarray, orient: np.ndarray):
    """Per edge k (rows; opposite vertex k, from vertex k+1 to k+2) and face (columns): the
    canonical endpoint (lx, ly) and the signed direction (sdx, sdy) = s * (other endpoint -
    canonical one), so that the edge function E_k(i, j) = sdx * (j - ly) - sdy * (i - lx) is
    >= 0 on the face's side.  ``u``, ``v`` (3, n) projected vertices; ``orient`` (n,) the sign of
    each face's screen area."""
    a, b = [1, 2, 0], [2, 0, 1]
    ua, va, ub, vb = u[a], v[a], u[b], v[b]
    a_first = (ua < ub) | ((ua == ub) & (va <= vb))  # canonical order of the two endpoints: by (u, v)
    lx, ly = np.where(a_first, ua, ub), np.where(a_first, va, vb)
    hx, hy = np.where(a_first, ub, ua), np.where(a_first, vb, va)
    # E(a -> b) = cross(b - a, p - a) = -cross(a - b, p - b): the canonical form times -1 when
    # the face runs the edge from its second endpoint; times the orientation so inside is >= 0
    s = np.where(a_first, orient, -orient)
    return lx, ly, s * (hx - lx), s * (hy - ly)


def _buckets(bw: np.ndarray, bh: np.ndarray):
    """Faces grouped by bounding-box size class: the order that makes each group contiguous and
    per group (class width, class height, start, stop, whether the class is padded in width,
    in height: classes 1-4 hold one size only)."""
    cw, ch = np.searchsorted(_SIZES, bw), np.searchsorted(_SIZES, bh)
    code = cw * len(_SIZES) + ch
    order = np.argsort(code, kind="stable")
    codes, starts = np.unique(code[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    out = []
    for c, s, e in zip(codes.tolist(), starts.tolist(), ends.tolist()):
        iw, ih = divmod(c, len(_SIZES))
        out.append((int(_SIZES[iw]), int(_SIZES[ih]), s, e, iw > 0 and _SIZES[iw] - _SIZES[iw - 1] > 1,
                    ih > 0 and _SIZES[ih] - _SIZES[ih - 1] > 1))
    return order, out


def rasterize(verts, faces, camera: Camera, near: float = 0.05) -> Raster:
    """Render the triangle mesh ``verts`` (N, 3) world coordinates, ``faces`` (F, 3) vertex
    indices, with ``camera``: per pixel the nearest surface's depth, face id and
    perspective-correct barycentric weights (module docstring: conventions and algorithm).
    Faces with a vertex nearer than ``near`` metres (or behind the camera) are dropped."""
    verts = np.asarray(verts, dtype=np.float64)
    faces = np.asarray(faces)
    if verts.ndim != 2 or verts.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"need verts (N, 3) and faces (F, 3), got {verts.shape} and {faces.shape}")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(verts)):
        raise ValueError(f"face indices must lie in 0..{len(verts) - 1}")
    if not near > 0:
        raise ValueError(f"near must be > 0, got {near}")
    W, H = camera.width, camera.height
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy

    # 1. camera frame, projection, culling (per-face data as (3, n) rows: one row per corner)
    e = camera.world_to_camera
    pc = verts @ e[:3, :3].T + e[:3, 3]
    x, y, z = pc.T
    ok = (z >= near) & np.isfinite(z) & np.isfinite(x) & np.isfinite(y)
    zs = np.where(ok, z, 1.0)
    pu = np.where(ok, fx * x / zs + cx, 0.0)
    pv = np.where(ok, fy * y / zs + cy, 0.0)
    corner = faces.T.astype(np.intp)
    fid = np.flatnonzero(ok[corner[0]] & ok[corner[1]] & ok[corner[2]])
    corner = corner[:, fid]
    u, v = pu[corner], pv[corner]
    # pixel centres in the bounding box, clipped to the image (in floats: no int overflow)
    imin = np.maximum(np.ceil(np.minimum(np.minimum(u[0], u[1]), u[2])), 0)
    imax = np.minimum(np.floor(np.maximum(np.maximum(u[0], u[1]), u[2])), W - 1)
    jmin = np.maximum(np.ceil(np.minimum(np.minimum(v[0], v[1]), v[2])), 0)
    jmax = np.minimum(np.floor(np.maximum(np.maximum(v[0], v[1]), v[2])), H - 1)
    area = (u[1] - u[0]) * (v[2] - v[0]) - (u[2] - u[0]) * (v[1] - v[0])
    keep = np.flatnonzero((imin <= imax) & (jmin <= jmax) & (area != 0))
    # group by bounding-box size class; every per-face array in that order (contiguous groups)
    order, buckets = _buckets((imax[keep] - imin[keep] + 1).astype(np.int64),
                              (jmax[keep] - jmin[keep] + 1).astype(np.int64))
    keep = keep[order]
    fid, corner, u, v, area = fid[keep], corner[:, keep], u[:, keep], v[:, keep], area[keep]
    imin, imax, jmin, jmax = imin[keep], imax[keep], jmin[keep], jmax[keep]
    q = 1.0 / zs[corner]
    n = len(fid)

    # per face: edges (step 3) and the plane of 1/z, w(i, j) = w0 + alpha (i - imin) + beta (j - jmin)
    lx, ly, sdx, sdy = _edges(u, v, np.sign(area))
    du1, du2, dv1, dv2 = u[1] - u[0], u[2] - u[0], v[1] - v[0], v[2] - v[0]
    dq1, dq2 = q[1] - q[0], q[2] - q[0]
    alpha = (dq1 * dv2 - dq2 * dv1) / area
    beta = (du1 * dq2 - du2 * dq1) / area  # alpha = beta = 0 exactly on a fronto-parallel face
    w0 = q[0] + alpha * (imin - u[0]) + beta * (jmin - v[0])
    pix0 = (jmin * W + imin).astype(np.int64)
    ext_w, ext_h = imax - imin, jmax - jmin

    # 2.-4. candidates by size class, inside test, z-buffer on 1/z
    wbuf = np.zeros(H * W)
    kept_pix, kept_w, kept_face = [], [], []
    candidates = inside_count = 0
    for bw_, bh_, start, stop, pad_w, pad_h in buckets:
        di, dj = np.arange(bw_, dtype=np.float64), np.arange(bh_, dtype=np.float64)
        size = bw_ * bh_
        step = max(1, _CHUNK // size)
        for c0 in range(start, stop, step):
            sl = slice(c0, min(c0 + step, stop))
            ii = imin[sl, None] + di  # (nf, BW) pixel columns, as floats (exact integers)
            jj = jmin[sl, None] + dj  # (nf, BH) pixel rows
            inside = None
            for k in range(3):
                P = sdx[k, sl, None] * (jj - ly[k, sl, None])  # (nf, BH)
                Q = sdy[k, sl, None] * (ii - lx[k, sl, None])  # (nf, BW)
                if k == 0 and pad_h:  # the class's rows and columns beyond the face's own box
                    P[dj > ext_h[sl, None]] = -np.inf
                if k == 0 and pad_w:
                    Q[di > ext_w[sl, None]] = np.inf
                t = P[:, :, None] >= Q[:, None, :]
                inside = t if inside is None else np.logical_and(inside, t, out=inside)
            candidates += inside.size
            flat = np.flatnonzero(inside)
            if not len(flat):
                continue
            inside_count += len(flat)
            loc = flat // size
            rem = flat - loc * size
            row = rem // bw_
            col = rem - row * bw_
            loc += c0
            w = w0[loc] + alpha[loc] * col + beta[loc] * row
            pix = pix0[loc] + row * W + col
            np.maximum.at(wbuf, pix, w)
            alive = w >= wbuf[pix]  # the rest is behind a candidate seen already
            kept_pix.append(pix[alive])
            kept_w.append(w[alive])
            kept_face.append(loc[alive])

    stats = {"faces_kept": int(n), "candidates": int(candidates), "inside": int(inside_count),
             "buckets": len(buckets)}
    if not kept_pix:
        return Raster(np.zeros((H, W), np.float32), np.full((H, W), -1, np.int32),
                      np.zeros((H, W, 3), np.float32), stats)
    pix, w, loc = np.concatenate(kept_pix), np.concatenate(kept_w), np.concatenate(kept_face)
    win = (w == wbuf[pix]) & (w > 0)  # (1/z > 0 always, up to rounding on slivers)
    best = np.full(H * W, len(faces), np.int64)
    np.minimum.at(best, pix[win], fid[loc[win]])  # equal depths: the lowest face id
    covered = best < len(faces)
    position = np.zeros(len(faces), np.int64)
    position[fid] = np.arange(n)
    loc = position[np.where(covered, best, fid[0])]  # each pixel's face in the sorted arrays (any if empty)
    face = np.where(covered, best, -1).astype(np.int32)
    depth = np.where(covered, 1.0 / np.where(covered, wbuf, 1.0), 0.0).astype(np.float32)
    # 5. barycentric weights: screen-space from the edge functions, then perspective-correct
    jj = np.repeat(np.arange(H, dtype=np.float64), W)
    ii = np.tile(np.arange(W, dtype=np.float64), H)
    lam = np.empty((3, H * W))
    for k in range(3):  # 1-D gathers per corner: faster than one (P, 15) row gather
        lam[k] = (sdx[k][loc] * (jj - ly[k][loc]) - sdy[k][loc] * (ii - lx[k][loc])) * q[k][loc]
    total = lam[0] + lam[1] + lam[2]
    good = covered & (total > 0)
    lam /= np.where(good, total, 1.0)
    lam[:, covered & ~good] = 1.0 / 3.0  # numerically degenerate face: its centre
    lam[:, ~covered] = 0.0
    bary = np.ascontiguousarray(lam.T, dtype=np.float32)
    return Raster(depth.reshape(H, W), face.reshape(H, W), bary.reshape(H, W, 3), stats)


def interpolate(raster: Raster, faces, values) -> np.ndarray:
    """(H, W, C) float32: per-vertex ``values`` (N, C) or (N,) (e.g. colours) interpolated with
    the raster's perspective-correct barycentric weights; 0 where the raster is empty."""
    values = np.asarray(values)
    table = (values[:, None] if values.ndim == 1 else values).astype(np.float64)
    faces = np.asarray(faces)
    H, W = raster.face.shape
    if not len(faces):
        return np.zeros((H, W, table.shape[1]), np.float32)
    corner = faces[np.maximum(raster.face.ravel(), 0)]  # (H W, 3); empty pixels: face 0, weights 0
    bary = raster.bary.reshape(-1, 3)
    out = np.zeros((H * W, table.shape[1]))
    for k in range(3):
        out += bary[:, k, None] * table[corner[:, k]]
    return out.astype(np.float32).reshape(H, W, -1)


def nearest_vertex(raster: Raster, faces) -> np.ndarray:
    """(H, W) int32: the vertex of each pixel's face with the largest barycentric weight (the
    first of the face's vertices on a tie); -1 where the raster is empty.  Label and instance
    images: each pixel takes its nearest vertex's label."""
    faces = np.asarray(faces)
    out = np.full(raster.face.shape, -1, np.int32)
    m = raster.face >= 0
    k = np.argmax(raster.bary[m], axis=1)
    out[m] = faces[raster.face[m], k]
    return out
