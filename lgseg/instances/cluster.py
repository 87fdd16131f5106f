"""Instance proposals from per-point semantic logits and centre offsets (CSC / LG clustering).

The authors' test-time clustering (LG downstream/insseg lib/bfs/bfs.py, PointGroup's CUDA ball query
and BFS): label = argmax of the logits; wall and floor points are dropped; the kept points are shifted
by their offsets; two points are linked when they share the label and their shifted positions are
closer than ``radius`` (the kernel's test is ``d2 < radius2``, strict); connected components with at
least ``min_points`` points are kept, then those with more than ``propose_points`` points; confidence
is the mean or median of the raw logit of the proposal's label. No ScoreNet, no NMS.

Here the components are those of the exact radius graph, found on a grid of cells (see
:func:`radius_components`), so a scene of 150k points takes a fraction of a second on one core
however tightly the shifted points clump. Two differences from the authors' kernel, both on purpose:
distances are float64 (theirs float32, which can flip pairs within ~1e-7 of the radius), and no
neighbour is lost (their kernel keeps at most 1000 neighbours per point, the first by index, of any
label; where points have more than 1000 neighbours, as in a tightly clumped object, their BFS can
miss points, so their masks depend on point order).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from lgseg.scannet.constants import IS_INSTANCE_CLASS, NUM_CLASSES

SCORES = ("mean", "median")
#: PointGroup's test-time NMS threshold (TEST_NMS_THRESH), used by the dual set
DUAL_SET_NMS_IOU = 0.3

# A cell's side is radius/sqrt(3) shrunk by this much, so that any two points of one cell are closer
# than radius also after float64 rounding (rounding is ~1e-10 relative even at 1e6 cells per axis).
_CELL_MARGIN = 1e-6
# Candidate searches (k-d tree, cell boxes) are widened by this much relative and then decided with
# the exact test, so rounding inside scipy never loses an edge.
_SEARCH_SLACK = 1e-7
# Point pairs compared per vectorised batch of cell pairs (memory ~ 10 arrays of this length); a
# single cell pair above it is decided with a k-d tree instead of all its point pairs.
_PAIR_BUDGET = 1 << 20


@dataclass(frozen=True)
class ClusterConfig:
    """Clustering parameters; the defaults are the authors' mesh-vertex benchmark setting.

    - Mesh vertices (``evaluate_benchmark``, benchmark files): radius 0.02 m, min_points 50,
      propose_points 250, score "median" -- the defaults, :meth:`mesh_vertex`.
    - Voxels (training-time validation): 1.5 voxels, min_points 50, propose_points 100, score
      "mean" -- :meth:`voxel_level` (radius in metres for voxel centres in metres; the authors pass
      voxel units and 1.5, the same graph).

    ``score_threshold``: drop proposals whose score is not above it (None keeps all, as the authors).
    ``dual_set``: PointGroup's dual set -- also cluster the original (unshifted) coordinates with
    ``dual_radius`` (default 0.03 m, PointGroup's cluster_radius; same min_points, propose_points and
    score), pool both sets' proposals and remove duplicates with PointGroup's mask-IoU NMS at 0.3 by
    score; PointGroup's ScoreNet is not used, the score stays the logit statistic. (The authors' own switch instead used 0.05 m and kept
    three hard-coded ScanNet20 classes from the unshifted set.)
    """

    radius: float = 0.02
    min_points: int = 50
    propose_points: int = 250
    score: str = "median"
    score_threshold: float | None = None
    dual_set: bool = False
    dual_radius: float = 0.03

    def __post_init__(self):
        for name in ("radius", "dual_radius"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        for name in ("min_points", "propose_points"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {self.score!r}")
        t = self.score_threshold
        if t is not None and (isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t)):
            raise ValueError(f"score_threshold must be None or a finite number, got {t!r}")
        if not isinstance(self.dual_set, bool):
            raise ValueError(f"dual_set must be True or False, got {self.dual_set!r}")

    @classmethod
    def mesh_vertex(cls, **changes) -> "ClusterConfig":
        """The authors' setting for mesh vertices (benchmark files): 0.02 m, 50, 250, median."""
        return cls(**changes)

    @classmethod
    def voxel_level(cls, voxel_size: float = 0.02, **changes) -> "ClusterConfig":
        """The authors' voxel-level validation setting: 1.5 voxels, 50, 100, mean."""
        base = dict(radius=1.5 * voxel_size, min_points=50, propose_points=100, score="mean")
        return cls(**{**base, **changes})


@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly
class Proposals:
    """Instance proposals of one scene, by descending score.

    ``masks[i]``: ascending indices (int64) of proposal i's points among the ``num_points`` input
    points (index arrays, not a (P, N) array: P ~ 300 dense masks of 150k points would be 45 MB);
    ``labels`` (P,) class index 0..199; ``scores`` (P,) float64.
    """

    masks: tuple[np.ndarray, ...]
    labels: np.ndarray
    scores: np.ndarray
    num_points: int

    def __len__(self) -> int:
        return len(self.masks)

    def dense(self) -> np.ndarray:
        """(P, num_points) bool masks."""
        out = np.zeros((len(self.masks), self.num_points), dtype=bool)
        for i, m in enumerate(self.masks):
            out[i, m] = True
        return out


def _d2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances of row pairs, in one fixed order of operations (the exact test is d2 < r*r)."""
    d = a - b
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]


def _check_points(points, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} has non-finite values")
    return p


def _merge(comp: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component id per cell after linking cells a[i]-b[i]; ids need not be consecutive."""
    if len(a) == 0:
        return comp
    k = int(comp.max()) + 1
    g = sparse.csr_matrix((np.ones(len(a), dtype=np.int8), (comp[a], comp[b])), shape=(k, k))
    return connected_components(g, directed=False)[1][comp]


def _any_pair_within(pa: np.ndarray, pb: np.ndarray, r2: float, radius: float) -> bool:
    """Whether some point of pa and some point of pb are closer than radius (exact test)."""
    if len(pa) > len(pb):
        pa, pb = pb, pa
    tree = cKDTree(pb, balanced_tree=False, compact_nodes=False)  # unbalanced: builds 2x faster
    dist, idx = tree.query(pa, k=1, distance_upper_bound=radius * (1 + _SEARCH_SLACK))
    near = np.isfinite(dist)
    if not near.any():
        return False
    if (_d2(pa[near], pb[idx[near]]) < r2).any():
        return True
    # Only rounding could make the tree's nearest fail the test while another point passes it: those
    # few points of pa sit at the radius; compare them with every point of pb.
    amb = pa[near]
    step = max(1, _PAIR_BUDGET // len(pb))
    return any((_d2(amb[i:i + step, None, :], pb[None, :, :]) < r2).any() for i in range(0, len(amb), step))


def radius_components(points, labels, radius: float) -> np.ndarray:
    """Connected components of the graph linking points of equal label closer than ``radius``.

    Exact for the test ``d2 < radius**2`` with d2 the float64 squared distance (the authors' kernel
    uses ``<`` too, in float32). Returns (N,) int64 ids 0..K-1, numbered in order of each
    component's first point (the order the authors' BFS finds them).

    Method: points are binned into cells of side radius/sqrt(3) (minus a margin), keyed by label and
    cell, so every point pair within a cell is an edge and a cell is one node. Edges between cells:
    (1) the cells' first points within radius (a k-d tree over one point per cell; this decides every
    pair of one-point cells); (2) for the cell pairs still in different components, with a cell of
    several points, within +-2 cells (the only ones that can hold points within radius) and whose
    point boxes come within radius, every point pair is compared, closest boxes first, merging
    components after each batch so that pairs joined meanwhile are skipped (a k-d tree decides a
    pair of two big cells). Clumped points thus cost one node per cell, not their pairs.
    """
    pts = _check_points(points, "points")
    lab = np.asarray(labels)
    if lab.shape != (len(pts),) or not (lab.size == 0 or np.issubdtype(lab.dtype, np.integer)):
        raise ValueError(f"labels must be (N,) integers for N={len(pts)} points, got {lab.shape} {lab.dtype}")
    if isinstance(radius, bool) or not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be a finite number > 0, got {radius!r}")
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    radius = float(radius)
    r2 = radius * radius
    lab = lab.astype(np.int64) - int(lab.min())
    if int(lab.max()) >= n:  # sparse label values: make them 0..L-1 to keep the cell keys small
        lab = np.unique(lab, return_inverse=True)[1].reshape(-1)

    # -- cells: integer coordinates padded by 2 so that neighbour keys (+-2 per axis) never wrap
    side = radius / math.sqrt(3.0) * (1.0 - _CELL_MARGIN)
    origin = pts.min(axis=0)
    extent = (pts.max(axis=0) - origin) / side
    if (int(lab.max()) + 1) * float(np.prod(extent + 5)) >= 2.0**62:
        raise ValueError(f"points span {np.ptp(pts, axis=0)}: too many cells of side radius/sqrt(3) "
                         f"(radius {radius}) to index")
    ijk = np.floor((pts - origin) / side).astype(np.int64) + 2
    dims = [int(d) + 3 for d in ijk.max(axis=0)]
    key = ((lab * dims[0] + ijk[:, 0]) * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]
    order = np.argsort(key, kind="stable")
    skey = key[order]
    sp = pts[order]  # points sorted by cell: cell c holds sp[first[c]:first[c] + count[c]]
    first = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
    count = np.diff(np.r_[first, n])
    ckey = skey[first]
    ncell = len(first)
    clab = lab[order][first]
    reps = sp[first]

    # -- (1) first points of cells within radius: exact edges, and every edge between one-point cells
    tree = cKDTree(reps, balanced_tree=False, compact_nodes=False)  # unbalanced: builds 2x faster
    pairs = tree.query_pairs(radius * (1 + _SEARCH_SLACK), output_type="ndarray")
    a, b = pairs[:, 0], pairs[:, 1]
    ok = clab[a] == clab[b]
    a, b = a[ok], b[ok]
    ok = _d2(reps[a], reps[b]) < r2
    comp = _merge(np.arange(ncell), a[ok], b[ok])

    # -- (2) cell pairs within +-2 cells, one of them with several points, still apart
    small = count == 1
    multi = np.flatnonzero(~small)
    if len(multi):
        # per (dx, dy) the cells at dz = lo..hi form one run of keys: two binary searches per run
        if 2 * len(multi) < ncell:  # from the many-point cells, all directions
            src = multi
            runs = [(dx, dy, -2, 2) for dx in range(-2, 3) for dy in range(-2, 3) if (dx, dy) != (0, 0)]
            runs += [(0, 0, 1, 2), (0, 0, -2, -1)]
        else:  # from every cell, half the directions (the other half is the same pairs reversed)
            src = np.arange(ncell)
            runs = [(dx, dy, -2, 2) for dx in range(-2, 3) for dy in range(-2, 3) if (dx, dy) > (0, 0)]
            runs += [(0, 0, 1, 2)]
        lo, hi = np.minimum.reduceat(sp, first, axis=0), np.maximum.reduceat(sp, first, axis=0)
        # only cells meeting the source's point box grown by radius can hold a partner: per source
        # and axis, the span of cell steps (same cell formula, so rounding keeps it a superset)
        own = ijk[order][first[src]]
        grow = radius * (1 + _SEARCH_SLACK)
        span_lo = np.floor((lo[src] - grow - origin) / side).astype(np.int64) + 2 - own
        span_hi = np.floor((hi[src] + grow - origin) / side).astype(np.int64) + 2 - own
        skeys = ckey[src]
        found_a, found_b = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for dx, dy, dz0, dz1 in runs:
            sel = np.flatnonzero((span_lo[:, 0] <= dx) & (dx <= span_hi[:, 0])
                                 & (span_lo[:, 1] <= dy) & (dy <= span_hi[:, 1]))
            base = skeys[sel] + (dx * dims[1] + dy) * dims[2]
            j0 = np.searchsorted(ckey, base + np.maximum(dz0, span_lo[sel, 2]), side="left")
            j1 = np.searchsorted(ckey, base + np.minimum(dz1, span_hi[sel, 2]), side="right")
            m = j1 - j0
            has = np.flatnonzero(m > 0)
            if len(has) == 0:
                continue
            m = m[has]
            ca = np.repeat(src[sel[has]], m)
            cb = np.repeat(j0[has] - np.cumsum(m) + m, m) + np.arange(int(m.sum()))
            keep = comp[ca] != comp[cb]
            if src is multi:  # both cells with several points: found from both sides, keep one
                keep &= small[cb] | (ca < cb)
            else:
                keep &= ~(small[ca] & small[cb])
            found_a.append(ca[keep])
            found_b.append(cb[keep])
        ca, cb = np.concatenate(found_a), np.concatenate(found_b)
        gap = np.maximum(0.0, np.maximum(lo[cb] - hi[ca], lo[ca] - hi[cb]))
        g2 = (gap * gap).sum(axis=1)
        ok = g2 < r2 * (1 + _SEARCH_SLACK)
        ca, cb = ca[ok], cb[ok]
        o = np.argsort(g2[ok], kind="stable")  # closest boxes first: the likeliest links
        ca, cb = ca[o], cb[o]
        comp = _link_cell_pairs(ca, cb, comp, sp, first, count, r2, radius)

    # number components by their first point: order is ascending within a cell (stable sort)
    first_point = np.full(ncell, n, dtype=np.int64)
    np.minimum.at(first_point, comp, order[first])
    used = np.flatnonzero(first_point < n)
    rank = np.empty(ncell, dtype=np.int64)
    rank[used[np.argsort(first_point[used], kind="stable")]] = np.arange(len(used))
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(rank[comp], count)
    return out


def _link_cell_pairs(ca, cb, comp, sp, first, count, r2, radius):
    """Merge the components of cell pairs (ca[i], cb[i]) holding a point pair closer than radius."""
    cost = count[ca] * count[cb]
    heavy = cost > _PAIR_BUDGET
    la, lb, lcost = ca[~heavy], cb[~heavy], cost[~heavy]
    ends = np.cumsum(lcost)
    start = 0
    while start < len(la):
        done = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, done + _PAIR_BUDGET, side="right")))
        a, b = la[start:stop], lb[start:stop]
        start = stop
        live = comp[a] != comp[b]  # joined meanwhile by an earlier batch: nothing to check
        a, b = a[live], b[live]
        if len(a) == 0:
            continue
        na, nb = count[a], count[b]
        c = na * nb
        pair = np.repeat(np.arange(len(a)), c)
        local = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        ia = first[a][pair] + local // nb[pair]
        ib = first[b][pair] + local % nb[pair]
        linked = np.zeros(len(a), dtype=bool)
        linked[pair[_d2(sp[ia], sp[ib]) < r2]] = True
        comp = _merge(comp, a[linked], b[linked])
    for a, b in zip(ca[heavy], cb[heavy]):  # rare: two big cells side by side, still apart
        if comp[a] != comp[b] and _any_pair_within(sp[first[a]:first[a] + count[a]],
                                                    sp[first[b]:first[b] + count[b]], r2, radius):
            comp = _merge(comp, np.array([a]), np.array([b]))
    return comp


def _set_proposals(points, idx, lab, val, radius, cfg):
    """(masks, labels, scores) of one point set: ``idx`` input indices of the kept points, ``lab``
    their labels, ``val`` their logit of their own label."""
    comp = radius_components(points, lab, radius)
    size = np.bincount(comp)
    good = (size >= cfg.min_points) & (size > cfg.propose_points)
    sel = np.flatnonzero(good)
    if len(sel) == 0:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0)
    inside = good[comp]
    c, i, v = comp[inside], idx[inside], val[inside]
    o = np.lexsort((v, c))  # by component, then value: medians are positions; kept idx stay ascending
    c, i, v = c[o], i[o], v[o]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    n = size[sel]
    if cfg.score == "mean":
        scores = np.add.reduceat(v, starts) / n
    else:  # the lower median, as torch.median (the authors' score) gives for an even count
        scores = v[starts + (n - 1) // 2]
    masks = [np.sort(m) for m in np.split(i, starts[1:])]
    # a component's label is that of any of its points (all share it)
    return masks, lab[np.searchsorted(idx, [m[0] for m in masks])], scores


def mask_nms(masks, scores, iou_threshold: float = DUAL_SET_NMS_IOU) -> np.ndarray:
    """Greedy mask NMS (PointGroup's): indices of the kept masks, by descending score.

    Take the best remaining mask, drop every remaining one whose IoU with it is above
    ``iou_threshold``, repeat; class-agnostic; ties in score keep the earlier mask first.
    ``masks``: point-index arrays (distinct indices each).
    """
    scores = np.asarray(scores, dtype=np.float64)
    p = len(masks)
    if len(scores) != p:
        raise ValueError(f"{p} masks but {len(scores)} scores")
    if p == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = np.array([len(m) for m in masks], dtype=np.int64)
    cols = np.concatenate([np.asarray(m, dtype=np.int64) for m in masks])
    rows = np.repeat(np.arange(p), sizes)
    ncol = int(cols.max()) + 1 if len(cols) else 1
    m = sparse.csr_matrix((np.ones(len(cols), dtype=np.int32), (rows, cols)), shape=(p, ncol))
    inter = (m @ m.T).toarray().astype(np.float64)
    union = sizes[:, None] + sizes[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(p, dtype=bool)
    keep = []
    for i in order:  # over proposals (a few hundred), not points
        if alive[i]:
            keep.append(i)
            alive &= ~(iou[i] > iou_threshold)
    return np.array(keep, dtype=np.int64)


def cluster_instances(coord, offset, logits, cfg: ClusterConfig | None = None) -> Proposals:
    """Instance proposals of one scene (see the module docstring and :class:`ClusterConfig`).

    ``coord`` (N, 3) and ``offset`` (N, 3): point positions and predicted offsets to their object's
    centre, in the same unit as ``cfg.radius``; ``logits`` (N, 200) raw semantic logits.
    """
    cfg = ClusterConfig() if cfg is None else cfg
    coord = _check_points(coord, "coord")
    offset = _check_points(offset, "offset")
    logits = np.asarray(logits)
    n = len(coord)
    if offset.shape != coord.shape:
        raise ValueError(f"offset has shape {offset.shape}, coord {coord.shape}")
    if logits.shape != (n, NUM_CLASSES):
        raise ValueError(f"logits must have shape ({n}, {NUM_CLASSES}), got {logits.shape}")
    if n == 0:
        return Proposals((), np.zeros(0, dtype=np.int64), np.zeros(0), 0)
    label = np.argmax(logits, axis=1)
    idx = np.flatnonzero(IS_INSTANCE_CLASS[label])
    lab = label[idx]
    val = logits[idx, lab].astype(np.float64)

    masks, labels, scores = _set_proposals(coord[idx] + offset[idx], idx, lab, val, cfg.radius, cfg)
    if cfg.dual_set:
        m2, l2, s2 = _set_proposals(coord[idx], idx, lab, val, cfg.dual_radius, cfg)
        masks, labels, scores = masks + m2, np.r_[labels, l2], np.r_[scores, s2]
    if cfg.score_threshold is not None:
        ok = scores > cfg.score_threshold
        masks, labels, scores = [m for m, k in zip(masks, ok) if k], labels[ok], scores[ok]
    if cfg.dual_set:
        o = mask_nms(masks, scores)
    else:
        o = np.argsort(-scores, kind="stable")
    return Proposals(tuple(masks[i] for i in o), labels[o].astype(np.int64), scores[o].astype(np.float64), n)
