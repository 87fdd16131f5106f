"""Lifting 2D onto 3D, its one owner: projecting points into RGB-D frames, deciding which frames see
which point, fusing per-pixel features over those frames, and lifting 2D mask ids onto points.
Every method that uses images goes through here, so every one of them projects, rounds, culls and
tests occlusion the same way, and that way is OpenScene's (``PointCloudToImageMapper`` in its
``fusion_util.py``; docs: image-side notes section 4.3), written out below.

Conventions
-----------
* Camera frame: x right, y down, z forward (OpenCV / ScanNet). A :class:`View` holds the depth
  camera's ``camera_to_world`` (4x4, ScanNet's pose file), its intrinsic (ScanNet's 4x4
  ``[[fx,0,cx,0],[0,fy,cy,0],[0,0,1,0],[0,0,0,1]]``, or the 3x3 block) **for the depth image's own
  resolution** (``scale_intrinsic`` turns ScanNet's 640x480 values into OpenScene's 320x240 ones), and
  the depth image in metres (float32, 0 = no measurement).
* Frames. ScanNet's poses are camera-to-world in the RAW scan frame; lgseg's processed points are
  axis-aligned, ``p = A . p_raw`` with the scene's 4x4 ``axisAlignment`` A. Every function takes
  ``axis_alignment=A`` for such points and then projects with ``world_to_camera = inv(A . camera_to_world)``;
  ``axis_alignment=None`` means the points are in the poses' frame (OpenScene's case: it never aligns).
* Projection: ``p_cam = world_to_camera . [x, y, z, 1]``, ``u = x fx / z + cx``, ``v = y fy / z + cy``
  in float64, rounded to integers with ``numpy.rint``, which rounds halves to even (10.5 -> 10, 11.5 ->
  12), exactly as OpenScene's ``np.round``. Pixel (column i, row j) has its centre at (u, v) = (i, j).
  A point with z <= 0 (behind or in the camera's plane) gets u = v = -1, in no image; huge u, v are
  clipped to +-2**31, still outside every image.
* Visibility of a point in a view: ``border <= u < W - border`` and ``border <= v < H - border``
  (OpenScene's ``cut_bound``, 10 by default), z > 0, and the occlusion test against the depth d at
  (v, u): ``|d - z| <= occlusion * d`` ("relative", OpenScene's, 0.25 by default) or
  ``|d - z| <= occlusion`` metres ("absolute"). A pixel without depth (0, negative, NaN or inf) fails.
* Feature maps and mask images may have another resolution than the depth image (a 2D network's
  stride). They must cover the depth image's field of view (ScanNet's colour and depth are registered
  once resized to one size), channels last, ``(H', W', D)``. Depth pixel (u, v) reads map pixel
  ``(floor((u + 0.5) W'/W), floor((v + 0.5) H'/H))``: the map pixel whose footprint holds the depth
  pixel's centre (half-pixel-aligned nearest, torch's ``interpolate(mode="nearest-exact")``); computed
  in integers, so equal sizes read the same pixel. A ``(D, H', W')`` map (torch's layout) can be passed
  as ``numpy.moveaxis(m, 0, -1)``, a view without a copy. OpenScene resizes its maps to the depth size
  first; pass maps of that size to match it bit for bit.

Fusion (``fuse``) runs in two passes, both per view and vectorised (no per-point Python loop):
pass 1 tests visibility in every view and keeps, per view, the visible points and their pixels
(two int32 per visible (point, view) pair); pass 2 reads each view's feature map once, in view order,
and accumulates the features of its visible points into a float32 array of the V points seen at
least once (the visible points of one view are unique, so ``acc[rows] += features`` is exact), in
blocks of about 4 MB of rows. Memory is V x D float32 (plus the float16 result) plus the pairs, never
N x views x D, and never all the feature maps at once: ``feature_maps`` may be a callable loading map
i on demand. Rules:

* ``"mean"``: OpenScene's default, the plain mean over the views that see the point (sum / count);
* ``"nearest"``: the feature of the view in which the point is nearest the camera (smallest z);
* ``"center"``: the feature of the view in which the point projects nearest the image centre
  ((W-1)/2, (H-1)/2), the distance taken on the unrounded projection in units of the image's
  half-diagonal (so views of different sizes compare fairly).

Ties in "nearest" and "center" go to the earliest view. Points never seen are dropped (OpenScene
drops them from distillation); the result stores the V seen points' features in float16 (OpenScene's
storage type) with their indices, and every point's view count. ``save_fused`` / ``load_fused`` keep
it as ``feat.npy`` (float16 V x D), ``point.npy`` (int32 V, sorted) and ``count.npy`` (int32 N).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir, claim_folder, mark_product, open_regular

RULES = ("mean", "nearest", "center")
OCCLUSION_MODES = ("relative", "absolute")
BORDER = 10  # OpenScene's cut_bound
OCCLUSION = 0.25  # OpenScene's visibility_threshold (relative)
CHUNK = 1 << 15  # points projected at once (and at most this many feature rows gathered at once)
_GATHER_BYTES = 4 << 20  # feature rows gathered at once: ~4 MB of float32 (cache-sized; 2048 rows at 512-d)
FILES = ("feat.npy", "point.npy", "count.npy")
PRODUCT = "fused 2D features"
FUSED_FIX = "fuse the scene's features again (lgseg.lifting.fuse, then save_fused)"
_BEHIND = -1  # u, v of a point with z <= 0
_CLIP = float(2**31)  # |u|, |v| beyond this are clipped (still outside every image)
_INT32_MAX = np.iinfo(np.int32).max
_F16_LIMIT = 65520.0  # float32 values below this in magnitude round to a finite float16 (max 65504)


def _matrix(m, name: str, shapes=((4, 4),)) -> np.ndarray:
    a = np.asarray(m, dtype=np.float64)
    if a.shape not in shapes:
        raise ValueError(f"{name} has shape {a.shape}, expected " + " or ".join(f"{s[0]}x{s[1]}" for s in shapes))
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite values (ScanNet marks an invalid pose with -inf): skip that frame")
    return a


def _affine(m, name: str) -> np.ndarray:
    """A finite, invertible 4x4 whose last row is [0, 0, 0, 1] (a rigid or affine transform)."""
    a = _matrix(m, name)
    if not np.allclose(a[3], (0.0, 0.0, 0.0, 1.0), rtol=0, atol=1e-6):
        raise ValueError(f"{name} has last row {a[3].tolist()}, expected [0, 0, 0, 1] (an affine transform)")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"{name} is singular (its 3x3 block has determinant ~0)")
    return a


@dataclass(frozen=True)
class View:
    """One RGB-D frame as lifting needs it: the depth camera's ``camera_to_world`` (4x4, raw scan
    frame), its ``intrinsic`` (4x4 or 3x3, for the depth image's resolution) and ``depth`` (H, W)
    metres, 0 where nothing was measured. Checked on construction (ValueError): a non-finite pose
    (ScanNet's invalid frames are all -inf) is refused, so callers skip such frames."""

    camera_to_world: np.ndarray
    intrinsic: np.ndarray
    depth: np.ndarray

    def __post_init__(self):
        c2w = _affine(self.camera_to_world, "camera_to_world")
        k = _matrix(self.intrinsic, "intrinsic", ((4, 4), (3, 3)))
        fx, fy = k[0, 0], k[1, 1]
        if not (fx > 0 and fy > 0):
            raise ValueError(f"intrinsic has fx={fx:g}, fy={fy:g}; both must be > 0")
        if k[0, 1] != 0 or k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
            raise ValueError("intrinsic is not of the form [[fx,0,cx],[0,fy,cy],[0,0,1]] (skew or a bad last row)")
        depth = np.asarray(self.depth)
        if depth.ndim != 2 or depth.shape[0] < 1 or depth.shape[1] < 1:
            raise ValueError(f"depth has shape {depth.shape}, expected (H, W)")
        if depth.dtype.kind != "f":  # ScanNet's PNGs hold uint16 millimetres: divide by depthShift first
            raise ValueError(f"depth has dtype {depth.dtype}, expected float metres (ScanNet's depth PNG / 1000)")
        object.__setattr__(self, "camera_to_world", c2w)
        object.__setattr__(self, "intrinsic", k)
        object.__setattr__(self, "depth", depth.astype(np.float32, copy=False))

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the depth image."""
        return self.depth.shape[1], self.depth.shape[0]


def scale_intrinsic(intrinsic, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """The 4x4 intrinsic for an image resized from ``from_size`` (W, H) to ``to_size``: ``fx *= W'/W``,
    ``fy *= H'/H`` and the principal point kept at the same place of the picture under the pixel-centre
    convention, ``cx' = (cx + 0.5) W'/W - 0.5``. ScanNet's 640x480 depth intrinsic (cx 319.5, cy 239.5)
    becomes OpenScene's 320x240 one (cx 159.5, cy 119.5); OpenScene's own formula,
    ``cx (W'-1)/(W-1)``, gives the same value whenever cx = (W-1)/2, as in ScanNet."""
    k = _matrix(intrinsic, "intrinsic", ((4, 4), (3, 3)))
    (w, h), (w2, h2) = from_size, to_size
    if min(w, h, w2, h2) <= 0:
        raise ValueError(f"sizes must be positive, got {from_size} -> {to_size}")
    out = np.eye(4)
    sx, sy = w2 / w, h2 / h
    out[0, 0], out[1, 1] = k[0, 0] * sx, k[1, 1] * sy
    out[0, 2], out[1, 2] = (k[0, 2] + 0.5) * sx - 0.5, (k[1, 2] + 0.5) * sy - 0.5
    return out


def world_to_camera(camera_to_world, axis_alignment=None) -> np.ndarray:
    """The 4x4 taking points (axis-aligned by ``axis_alignment`` A when given) to the camera frame:
    ``inv(camera_to_world)``, or ``inv(A . camera_to_world)`` for points ``p = A . p_raw``."""
    c2w = _affine(camera_to_world, "camera_to_world")
    if axis_alignment is not None:
        c2w = _affine(axis_alignment, "axis_alignment") @ c2w
    return np.linalg.inv(c2w)


def _points(points) -> np.ndarray:
    p = np.asarray(points)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points have shape {p.shape}, expected (N, 3)")
    if p.dtype.kind not in "fiu":
        raise ValueError(f"points have dtype {p.dtype}, expected float coordinates")
    p = p.astype(np.float64, copy=False)
    if not np.isfinite(p).all():
        raise ValueError("points hold non-finite coordinates")
    return p


def _camera(p64: np.ndarray, w2c: np.ndarray, k: np.ndarray):
    """(uf, vf, z): the unrounded projection ``x fx / z + cx`` (OpenScene's order of operations, so
    halves round as there; NaN where z <= 0) and the depth z along the optical axis."""
    cam = p64 @ w2c[:3, :3].T
    cam += w2c[:3, 3]
    z = cam[:, 2]
    behind = ~(z > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        uf = cam[:, 0] * k[0, 0]
        uf /= z
        uf += k[0, 2]
        vf = cam[:, 1] * k[1, 1]
        vf /= z
        vf += k[1, 2]
    uf[behind] = np.nan
    vf[behind] = np.nan
    return uf, vf, z


def _round(f: np.ndarray) -> np.ndarray:
    """Half-to-even rounding to int64 (OpenScene's np.round); NaN (behind the camera) -> -1."""
    out = np.rint(np.clip(f, -_CLIP, _CLIP))
    out[np.isnan(out)] = _BEHIND
    return out.astype(np.int64)


def project(points, view: View, axis_alignment=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, z) of every point in ``view``: int64 pixel columns and rows (rounded half to even, as
    OpenScene; -1 for z <= 0) and float64 z, the depth along the optical axis in metres."""
    uf, vf, z = _camera(_points(points), world_to_camera(view.camera_to_world, axis_alignment), view.intrinsic)
    return _round(uf), _round(vf), z


def _check_test(border, occlusion, occlusion_mode) -> None:
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise ValueError(f"border must be an integer >= 0, got {border!r}")
    if not (np.isfinite(occlusion) and occlusion >= 0):
        raise ValueError(f"occlusion must be a finite number >= 0, got {occlusion!r}")
    if occlusion_mode not in OCCLUSION_MODES:
        raise ValueError(f"occlusion_mode must be one of {OCCLUSION_MODES}, got {occlusion_mode!r}")


def _passes(u, v, z, depth: np.ndarray, border: int, occlusion: float, mode: str) -> np.ndarray:
    """The visibility test on rounded pixels (u, v) and depths z; a bool mask."""
    h, w = depth.shape
    ok = (u >= border) & (u < w - border) & (v >= border) & (v < h - border) & (z > 0)
    idx = np.flatnonzero(ok)
    d = depth[v[idx], u[idx]].astype(np.float64)
    with np.errstate(invalid="ignore"):
        tol = occlusion * d if mode == "relative" else occlusion
        good = (d > 0) & np.isfinite(d) & (np.abs(d - z[idx]) <= tol)
    ok[idx[~good]] = False
    return ok


def visible(points, view: View, axis_alignment=None, border: int = BORDER, occlusion: float = OCCLUSION,
            occlusion_mode: str = "relative") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask (N,) bool, u, v): which points ``view`` sees (inside the image less ``border`` pixels on
    every side, z > 0, and passing the depth test, see the module docstring), with every point's
    rounded pixel from :func:`project`."""
    _check_test(border, occlusion, occlusion_mode)
    u, v, z = project(points, view, axis_alignment)
    return _passes(u, v, z, view.depth, border, occlusion, occlusion_mode), u, v


def _visible_in(p64, view: View, axis_alignment, border, occlusion, mode, chunk, keep_float=False):
    """The points ``view`` sees, chunk by chunk: (index int64 sorted, u, v int64, uf, vf, z float64 of
    those points; the last three None unless ``keep_float``)."""
    w2c = world_to_camera(view.camera_to_world, axis_alignment)
    w, h = view.size
    parts = []
    for start in range(0, len(p64), chunk):
        uf, vf, z = _camera(p64[start:start + chunk], w2c, view.intrinsic)
        # a loose float pre-test (a superset: rint(uf) >= border needs uf >= border - 0.5; NaN, behind the
        # camera, fails), then the exact test on the few candidates
        with np.errstate(invalid="ignore"):
            cand = np.flatnonzero((uf >= border - 1) & (uf <= w - border) & (vf >= border - 1) & (vf <= h - border))
        uf, vf, z = uf[cand], vf[cand], z[cand]
        u, v = _round(uf), _round(vf)
        sel = np.flatnonzero(_passes(u, v, z, view.depth, border, occlusion, mode))
        parts.append((cand[sel] + start, u[sel], v[sel]) + ((uf[sel], vf[sel], z[sel]) if keep_float else ()))
    if not parts:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        return (empty_i, empty_i, empty_i) + ((empty_f,) * 3 if keep_float else (None,) * 3)
    out = tuple(np.concatenate(c) for c in zip(*parts))
    return out if keep_float else out + (None, None, None)


def _map_pixel(u, v, depth_shape, map_shape):
    """(row, column) in a (H', W') map of depth pixels (u, v): half-pixel-aligned nearest, in integers."""
    h, w = depth_shape
    h2, w2 = map_shape
    if (h2, w2) == (h, w):
        return v, u
    return (np.minimum(((2 * v + 1) * h2) // (2 * h), h2 - 1), np.minimum(((2 * u + 1) * w2) // (2 * w), w2 - 1))


def _gather(image: np.ndarray, rows, cols) -> np.ndarray:
    """image[rows, cols] (a pixel per entry, channels kept), through one flat index where the image is
    C-contiguous (faster), else by 2-D fancy indexing (no copy of a strided map, e.g. a moved-axis view)."""
    if image.flags.c_contiguous:
        flat = image.reshape(image.shape[0] * image.shape[1], *image.shape[2:])
        return flat.take(rows * image.shape[1] + cols, axis=0)
    return image[rows, cols]


def _finite16(a: np.ndarray, block: int = 1 << 20) -> bool:
    """Whether a float16 array holds no NaN/inf: an exponent field of all ones marks both (bit test in
    blocks: numpy's isfinite is slow on float16)."""
    bits = np.ascontiguousarray(a).reshape(-1).view(np.uint16)
    return all((bits[s:s + block] & 0x7C00).max() != 0x7C00 for s in range(0, bits.size, block))


def _getter(maps, n_views: int, what: str) -> Callable[[int], np.ndarray]:
    if callable(maps):
        return maps
    if not hasattr(maps, "__getitem__") or not hasattr(maps, "__len__"):
        raise ValueError(f"{what} must be a sequence with one entry per view, or a callable i -> map")
    if len(maps) != n_views:
        raise ValueError(f"{len(maps)} {what} for {n_views} views")
    return maps.__getitem__


def _check_common(views, chunk):
    views = list(views)
    for i, view in enumerate(views):
        if not isinstance(view, View):
            raise ValueError(f"views[{i}] is a {type(view).__name__}, expected a lgseg.lifting.View")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    return views


@dataclass(frozen=True)
class Fused:
    """Per-point 2D features fused over views: ``features`` (V, D) float16 of the V points seen at
    least once, ``point_index`` (V,) int32 sorted (which points those are), ``view_count`` (N,) int32
    (how many views saw each point; > 0 exactly at ``point_index``)."""

    features: np.ndarray
    point_index: np.ndarray
    view_count: np.ndarray

    def __post_init__(self):
        problem = _fused_problem(self.features, self.point_index, self.view_count)
        if problem:
            raise ValueError(problem[1])

    @property
    def num_points(self) -> int:
        return len(self.view_count)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    def dense(self, dtype=np.float16) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, D) in ``dtype``, zero for unseen points; seen (N,) bool)."""
        out = np.zeros((self.num_points, self.dim), dtype=dtype)
        out[self.point_index] = self.features
        seen = np.zeros(self.num_points, dtype=bool)
        seen[self.point_index] = True
        return out, seen


def _fused_problem(feat, point, count) -> tuple[str, str] | None:
    """(file, problem) of the first thing wrong with fused arrays, or None."""
    if not isinstance(feat, np.ndarray) or feat.dtype != np.float16 or feat.ndim != 2:
        return "feat.npy", f"features must be a (V, D) float16 array, got {_describe(feat)}"
    if not isinstance(point, np.ndarray) or point.dtype != np.int32 or point.ndim != 1:
        return "point.npy", f"point indices must be a (V,) int32 array, got {_describe(point)}"
    if not isinstance(count, np.ndarray) or count.dtype != np.int32 or count.ndim != 1:
        return "count.npy", f"view counts must be an (N,) int32 array, got {_describe(count)}"
    if len(point) != len(feat):
        return "point.npy", f"{len(point)} point indices for the {len(feat)} feature rows of feat.npy"
    if len(point) and (point[0] < 0 or point[-1] >= len(count)):
        return "point.npy", f"point indices {point.min()}..{point.max()} outside 0..{len(count) - 1} (N={len(count)})"
    if len(point) > 1 and not (np.diff(point) > 0).all():
        return "point.npy", "point indices are not strictly increasing"
    if len(count) and count.min() < 0:
        return "count.npy", f"a negative view count ({count.min()})"
    seen = np.flatnonzero(count > 0)
    if len(seen) != len(point) or not np.array_equal(seen, point):
        return "count.npy", (f"{len(seen)} points have a view count > 0 but {len(point)} are stored: counts and "
                             "point indices disagree")
    if not _finite16(feat):
        return "feat.npy", "features hold NaN or inf"
    return None


def _describe(a) -> str:
    return f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__


def fuse(points, views: Sequence[View], feature_maps, axis_alignment=None, rule: str = "mean",
         border: int = BORDER, occlusion: float = OCCLUSION, occlusion_mode: str = "relative",
         chunk: int = CHUNK) -> Fused:
    """Fuse per-pixel features over the views that see each point (rules and memory: module docstring).

    ``feature_maps``: one (H', W', D) array per view, any float dtype, as a sequence (a list, a stacked
    array or memmap) or a callable ``i -> map`` that loads map i; each map is read once, in view order,
    and only for views that contribute (a view seeing no point is not loaded). ``chunk`` bounds the
    points projected at once and the feature rows gathered at once (at most ~4 MB of them anyway).
    Returns :class:`Fused` (float16 features; ValueError if a fused value is not finite in float16:
    NaN/inf in a map, or beyond +-65504)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    _check_test(border, occlusion, occlusion_mode)
    views = _check_common(views, chunk)
    if not views:
        raise ValueError("fuse needs at least one view (the feature dimension comes from the maps)")
    get = _getter(feature_maps, len(views), "feature maps")
    p64 = _points(points)
    n = len(p64)

    # pass 1: visibility in every view; per view the visible points and their depth pixels
    count = np.zeros(n, dtype=np.int32)
    per_view = []
    if rule != "mean":
        best_key = np.full(n, np.inf)
        best_view = np.full(n, -1, dtype=np.int32)
    for i, view in enumerate(views):
        idx, u, v, uf, vf, z = _visible_in(p64, view, axis_alignment, border, occlusion, occlusion_mode, chunk,
                                           keep_float=rule != "mean")
        count[idx] += 1
        per_view.append((idx.astype(np.int32), u.astype(np.int32), v.astype(np.int32)))
        if rule != "mean":
            if rule == "nearest":
                key = z
            else:
                w, h = view.size
                key = np.hypot(uf - (w - 1) / 2, vf - (h - 1) / 2) / np.hypot(w / 2, h / 2)
            better = key < best_key[idx]  # strict: ties stay with the earlier view
            best_key[idx[better]] = key[better]
            best_view[idx[better]] = i
    point_index = np.flatnonzero(count > 0).astype(np.int32)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[point_index] = np.arange(len(point_index))

    # pass 2: read each contributing view's map once and accumulate (or copy) its visible points' rows
    out = None
    dim = None
    for i, (idx, u, v) in enumerate(per_view):
        if rule != "mean":
            keep = best_view[idx] == i
            idx, u, v = idx[keep], u[keep], v[keep]
        if len(idx) == 0 and not (i == len(views) - 1 and out is None):
            continue
        fmap = np.asarray(get(i))
        if fmap.ndim != 3 or fmap.shape[0] < 1 or fmap.shape[1] < 1 or fmap.dtype.kind not in "fiu":
            raise ValueError(f"feature map {i} is {_describe(fmap)}, expected a numeric (H', W', D) array "
                             "(channels last: pass numpy.moveaxis(m, 0, -1) for a (D, H', W') map)")
        if dim is None:
            dim = fmap.shape[2]
            out = np.zeros((len(point_index), dim), dtype=np.float32 if rule == "mean" else np.float16)
        elif fmap.shape[2] != dim:
            raise ValueError(f"feature map {i} has {fmap.shape[2]} channels, earlier maps {dim}")
        mv, mu = _map_pixel(u.astype(np.int64), v.astype(np.int64), views[i].depth.shape, fmap.shape[:2])
        rows = row_of[idx]
        step = min(chunk, max(64, _GATHER_BYTES // (4 * max(dim, 1))))
        for s in range(0, len(rows), step):
            r, g = rows[s:s + step], _gather(fmap, mv[s:s + step], mu[s:s + step])
            if rule == "mean":  # rows of one view are unique: take, add, put back (faster than out[r] += g)
                acc = out.take(r, axis=0)
                acc += g
                out[r] = acc
            else:
                with np.errstate(over="ignore", invalid="ignore"):  # beyond float16: refused below
                    out[r] = g
    if rule == "mean":  # divide and convert block by block: no V x D float32 temporary
        acc, out = out, np.empty(out.shape, np.float16)
        per = count[point_index].astype(np.float32)[:, None]
        step = min(chunk, max(64, _GATHER_BYTES // (4 * max(dim, 1))))
        for s in range(0, len(acc), step):
            block = acc[s:s + step]
            block /= per[s:s + step]
            if block.size and not (block.max() < _F16_LIMIT and block.min() > -_F16_LIMIT):  # NaN fails too
                out = None
                break
            out[s:s + step] = block
        del acc
    if out is None or not _finite16(out):
        raise ValueError("fused features are not finite in float16: a feature map holds NaN/inf at a visible "
                         "pixel, or values beyond +-65504")
    return Fused(out, point_index, count)


def lift_mask_ids(points, views: Sequence[View], masks, axis_alignment=None, border: int = BORDER,
                  occlusion: float = OCCLUSION, occlusion_mode: str = "relative",
                  chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which 2D region each point falls in, per frame: (point (K,), view (K,), mask_id (K,)) int32, one
    entry for every (point, view) where the view sees the point (the test of :func:`visible`) and its
    mask image has a region there (id != 0). Ordered by view, then point. ``masks``: one (H', W')
    integer image per view (0 = no region, ids >= 0 and within int32; sampled like feature maps), as a
    sequence or a callable ``i -> mask``; a mask is loaded only for views that see a point."""
    _check_test(border, occlusion, occlusion_mode)
    views = _check_common(views, chunk)
    get = _getter(masks, len(views), "masks")
    p64 = _points(points)
    pts, vws, ids = [], [], []
    for i, view in enumerate(views):
        idx, u, v, *_ = _visible_in(p64, view, axis_alignment, border, occlusion, occlusion_mode, chunk)
        if len(idx) == 0:
            continue
        mask = np.asarray(get(i))
        if mask.ndim != 2 or mask.shape[0] < 1 or mask.shape[1] < 1 or mask.dtype.kind not in "iub":
            raise ValueError(f"mask {i} is {_describe(mask)}, expected an integer (H', W') image")
        got = _gather(mask, *_map_pixel(u, v, view.depth.shape, mask.shape))
        if got.dtype.kind == "i" and len(got) and got.min() < 0:
            raise ValueError(f"mask {i} holds negative ids ({got.min()}) at visible pixels; 0 marks no region")
        if len(got) and got.max() > _INT32_MAX:
            raise ValueError(f"mask {i} holds ids beyond int32 ({got.max()})")
        keep = got != 0
        pts.append(idx[keep].astype(np.int32))
        vws.append(np.full(int(keep.sum()), i, dtype=np.int32))
        ids.append(got[keep].astype(np.int32))
    if not pts:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(pts), np.concatenate(vws), np.concatenate(ids)


def save_fused(folder: str | Path, fused: Fused) -> None:
    """Write ``fused`` into ``folder`` as feat.npy (float16 V x D), point.npy (int32 V) and count.npy
    (int32 N), atomically (the folder appears complete or not at all). A folder holding anything
    else than an earlier run's fused features is refused (InputError), not replaced."""
    if not isinstance(fused, Fused):
        raise ValueError(f"save_fused takes a Fused, got {type(fused).__name__}")
    claim_folder(folder, PRODUCT, owns=lambda p: p.name in FILES, option="folder")
    with atomic_dir(folder) as tmp:
        for name, arr in zip(FILES, (fused.features, fused.point_index, fused.view_count)):
            np.save(tmp / name, arr, allow_pickle=False)
        mark_product(tmp, PRODUCT)


def _load(path: Path, what: str) -> np.ndarray:
    with open_regular(path, what, FUSED_FIX) as f:
        try:
            return np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(path, f"not a readable .npy array ({e})", FUSED_FIX) from None


def load_fused(folder: str | Path, num_points: int | None = None, dense: bool = False):
    """Read a folder written by :func:`save_fused`, checked: dtypes and shapes, point indices sorted,
    unique and within the N of count.npy, counts agreeing with them, features finite, and N equal to
    ``num_points`` when given (the scene's point count). Any fault is a one-line InputError naming the
    file. Returns :class:`Fused`, or with ``dense=True`` (features (N, D) float16, zero where unseen;
    seen (N,) bool)."""
    folder = Path(folder)
    feat = _load(folder / "feat.npy", "fused feature file")
    point = _load(folder / "point.npy", "fused point index file")
    count = _load(folder / "count.npy", "fused view count file")
    problem = _fused_problem(feat, point, count)
    if problem is None and num_points is not None and len(count) != num_points:
        problem = "count.npy", f"{len(count)} points, but the scene has {num_points}"
    if problem:
        raise InputError(folder / problem[0], problem[1], FUSED_FIX)
    fused = Fused(feat, point, count)
    return fused.dense() if dense else fused
