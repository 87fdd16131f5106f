"""Lifting 2D onto 3D (lgseg.lifting) on one ScanNet-size scene, on one core.

The scene: a 6 x 5 x 3 m room with 8 boxes of furniture, 150,000 points on its walls, floor, ceiling
and the boxes' faces (spread by area, as mesh vertices), given axis-aligned with an axisAlignment A
(rotation about z + translation; the poses are in the raw frame, as ScanNet's). 100 views of 320 x 240
depth (OpenScene's export size, intrinsics fx = fy = 288.935, cx 159.5, cy 119.5) from inside the
room, the depth ray-cast from the same room and boxes, so points behind a box are occluded. Feature
maps are 512-d float32 at 320 x 240 (LSeg's dimension; a pool of 4 distinct maps read in turn, as 100
such maps would take 15.7 GB); mask images are 320 x 240 int32, blocks of random region ids.

Timed (median of --repeats, wall and CPU seconds, one core, one BLAS thread), side by side in one run:
- visibility alone: ``visible`` for every view;
- ``fuse`` with each rule ("mean" is OpenScene's, and includes its own visibility pass);
- ``lift_mask_ids``;
- ``save_fused`` of the mean, and the bytes it stores (visible points x 512 x 2 + the indices and
  counts), projected to ScanNet's 1,513 scans beside OpenScene's 175.8 GB of fused LSeg features;
- a naive per-view fusion written here (OpenScene's loop: gather every point's feature from every
  view, add the visible ones into an N x D float64 sum), on the first --naive-views views, beside
  ``fuse`` on the same views; the ratio and the largest difference of their float16 results.

    python benchmarks/bench_lifting.py [--points 150000] [--views 100] [--repeats 3] [--naive-views 10] [--json]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads its pools
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lgseg.lifting import View, fuse, lift_mask_ids, save_fused, visible  # noqa: E402
from timing import one_core, timed  # noqa: E402  (benchmarks/timing.py)

ROOM = np.array([6.0, 5.0, 3.0])  # metres
W, H, DIM = 320, 240, 512
K = np.array([[288.935, 0, 159.5, 0], [0, 288.935, 119.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
SCANNET_SCANS = 1513
OPENSCENE_LSEG_BYTES = 175.8e9  # OpenScene README: fused LSeg features for ScanNet


def _boxes(rng, n=8):
    """(lo, hi) corners of n furniture boxes standing on the floor."""
    size = np.c_[rng.uniform(0.4, 1.6, (n, 2)), rng.uniform(0.4, 1.2, n)]
    lo = np.c_[rng.uniform(0.2, ROOM[0] - 0.2 - size[:, 0]), rng.uniform(0.2, ROOM[1] - 0.2 - size[:, 1]), np.zeros(n)]
    return lo, lo + size


def _faces(lo, hi):
    """The six faces of a box as (axis, value, lo, hi)."""
    return [(a, v, lo, hi) for a in range(3) for v in (lo[a], hi[a])]


def make_points(points: int, boxes, rng) -> np.ndarray:
    """Points spread by area over the room's six faces and the boxes' five visible faces."""
    faces = _faces(np.zeros(3), ROOM) + [f for lo, hi in zip(*boxes) for f in _faces(lo, hi) if not (f[0] == 2
                                                                                                     and f[1] == 0)]
    area = np.array([np.prod(np.delete(hi - lo, a)) for a, _, lo, hi in faces])
    which = rng.choice(len(faces), points, p=area / area.sum())
    out = np.empty((points, 3))
    for i, (a, v, lo, hi) in enumerate(faces):
        sel = which == i
        out[sel] = rng.uniform(lo, hi, (sel.sum(), 3))
        out[sel, a] = v
    return out.astype(np.float32)


def look_at(eye, target) -> np.ndarray:
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = r, np.cross(f, r), f, eye
    return m


def render_depth(c2w, boxes) -> np.ndarray:
    """Camera z of the first surface (room from inside, boxes from outside) at every pixel centre."""
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)  # camera z = 1
    d = rays @ c2w[:3, :3].T
    o = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t = np.where(d > 0, (ROOM - o) * inv, -o * inv).min(-1)  # leaving the room
        for lo, hi in zip(*boxes):
            t1, t2 = (lo - o) * inv, (hi - o) * inv
            near, far = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
            hit = (near <= far) & (near > 0)
            t = np.where(hit, np.minimum(t, near), t)
    return t.astype(np.float32)


def make_scene(points=150_000, views=100, seed=0):
    rng = np.random.default_rng(seed)
    boxes = _boxes(rng)
    coord = make_points(points, boxes, rng)
    a = np.radians(23.0)
    align = np.array([[np.cos(a), -np.sin(a), 0, 1.3], [np.sin(a), np.cos(a), 0, -0.4], [0, 0, 1, 0.05], [0, 0, 0, 1]])
    frames = []
    for _ in range(views):
        eye = np.r_[rng.uniform(0.5, ROOM[0] - 0.5), rng.uniform(0.5, ROOM[1] - 0.5), rng.uniform(1.2, 1.8)]
        target = np.r_[rng.uniform(0, ROOM[0]), rng.uniform(0, ROOM[1]), rng.uniform(0, 1.5)]
        c2w_aligned = look_at(eye, target)
        depth = render_depth(c2w_aligned, boxes)
        frames.append(View(np.linalg.inv(align) @ c2w_aligned, K, depth))  # the pose in the raw frame
    pool = [rng.standard_normal((H, W, DIM), dtype=np.float32) for _ in range(4)]
    masks = [np.kron(rng.integers(0, 40, (H // 20, W // 20)), np.ones((20, 20), np.int32)).astype(np.int32)
             for _ in range(views)]
    return coord, align, frames, pool, masks


def naive_fuse(points, views, feature_map, align, border=10, occlusion=0.25):
    """OpenScene's loop, written plainly: per view, project every point, gather every point's feature
    (N x D) and add the visible ones into an N x D float64 sum; then the mean of the seen points."""
    n = len(points)
    total = np.zeros((n, DIM), np.float64)
    count = np.zeros(n, np.int64)
    hom = np.c_[points.astype(np.float64), np.ones(n)].T
    for i, view in enumerate(views):
        p = np.linalg.inv(align @ view.camera_to_world) @ hom
        k = view.intrinsic
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.round(p[0] * k[0, 0] / p[2] + k[0, 2])
            v = np.round(p[1] * k[1, 1] / p[2] + k[1, 2])
        inside = (u >= border) & (v >= border) & (u < W - border) & (v < H - border) & (p[2] > 0)
        ui, vi = np.where(inside, u, 0).astype(np.int64), np.where(inside, v, 0).astype(np.int64)
        d = view.depth[vi, ui].astype(np.float64)
        mask = inside & (d > 0) & (np.abs(d - p[2]) <= occlusion * d)
        feat = feature_map(i)[vi, ui]  # every point's feature, N x D
        total[mask] += feat[mask]
        count += mask
    seen = np.flatnonzero(count)
    return seen, (total[seen] / count[seen, None]).astype(np.float16)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def bench(points=150_000, views=100, repeats=3, naive_views=10) -> dict:
    t = time.perf_counter()
    coord, align, frames, pool, masks = make_scene(points, views)
    feature_map = pool.__getitem__ if len(pool) == views else (lambda i: pool[i % len(pool)])
    r = {"points": points, "views": views, "repeats": repeats, "dim": DIM, "size": [W, H],
         "scene_seconds": time.perf_counter() - t}
    with one_core():
        s, c, masks_seen = timed(lambda: [visible(coord, v, align)[0] for v in frames], repeats)
        seen_per_view = np.array([m.sum() for m in masks_seen])
        r["visible"] = {"seconds": s, "cpu_seconds": c, "mean_visible_per_view": float(seen_per_view.mean())}
        for rule in ("mean", "nearest", "center"):
            s, c, fused = timed(lambda: fuse(coord, frames, feature_map, align, rule=rule), repeats)
            r[f"fuse_{rule}"] = {"seconds": s, "cpu_seconds": c}
            if rule == "mean":
                mean = fused
        r["seen_points"] = len(mean.point_index)
        r["pairs"] = int(mean.view_count.sum())
        s, c, lifted = timed(lambda: lift_mask_ids(coord, frames, masks, align), repeats)
        r["lift_mask_ids"] = {"seconds": s, "cpu_seconds": c, "entries": len(lifted[0])}
        with tempfile.TemporaryDirectory() as tmp:
            s, c, _ = timed(lambda: save_fused(Path(tmp) / "fused", mean), repeats)
            files = {p.name: p.stat().st_size for p in (Path(tmp) / "fused").iterdir() if p.suffix == ".npy"}
        r["save_fused"] = {"seconds": s, "cpu_seconds": c, "bytes": files}
        stored = sum(files.values())
        r["bytes_per_scene"] = stored
        r["scannet_projected_bytes"] = stored * SCANNET_SCANS
        nv = min(naive_views, views)
        sub = frames[:nv]
        s, c, ours = timed(lambda: fuse(coord, sub, feature_map, align), repeats)
        s_naive, c_naive, (seen, naive) = timed(lambda: naive_fuse(coord, sub, feature_map, align), 1)
        same_points = np.array_equal(seen, ours.point_index)
        diff = float(np.abs(naive.astype(np.float32) - ours.features.astype(np.float32)).max()) if same_points else None
        r["naive"] = {"views": nv, "fuse_seconds": s, "fuse_cpu_seconds": c, "naive_seconds": s_naive,
                      "naive_cpu_seconds": c_naive, "ratio": s_naive / s, "same_points": bool(same_points),
                      "max_abs_diff_fp16": diff}
    return r


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=150_000)
    ap.add_argument("--views", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-views", type=int, default=10, help="views the naive fusion is timed on (default 10)")
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    print(f"{_cpu_model()}, {os.cpu_count()} cores, timed on one; load average at start {load0:.2f}; "
          f"python {platform.python_version()}, numpy {np.__version__}")
    r = bench(args.points, args.views, args.repeats, args.naive_views)
    gb = 1e9
    print(f"scene: {r['points']} points, {r['views']} views of {W}x{H} depth, {DIM}-d float32 maps "
          f"(built in {r['scene_seconds']:.1f} s); {r['visible']['mean_visible_per_view']:.0f} points visible "
          f"per view on average, {r['seen_points']} points seen at least once, {r['pairs']} (point, view) pairs")
    print(f"one core, median of {r['repeats']} (wall s / CPU s):")
    row = r["visible"]
    print(f"  visibility alone, {r['views']} views      {row['seconds']:7.3f} / {row['cpu_seconds']:.3f}")
    for rule in ("mean", "nearest", "center"):
        row = r[f"fuse_{rule}"]
        print(f"  fuse rule={rule:8s}                {row['seconds']:7.3f} / {row['cpu_seconds']:.3f}")
    row = r["lift_mask_ids"]
    print(f"  lift_mask_ids                      {row['seconds']:7.3f} / {row['cpu_seconds']:.3f} "
          f"({row['entries']} entries)")
    row = r["save_fused"]
    print(f"  save_fused (mean)                  {row['seconds']:7.3f} / {row['cpu_seconds']:.3f}")
    total = r["fuse_mean"]["seconds"] + r["lift_mask_ids"]["seconds"]
    print(f"  whole lift (fuse mean + lift_mask_ids): {total:.2f} s")
    b = r["save_fused"]["bytes"]
    print(f"stored fp16: {r['bytes_per_scene'] / 1e6:.1f} MB per scene (feat.npy {b['feat.npy'] / 1e6:.1f} MB = "
          f"{r['seen_points']} x {DIM} x 2 + header, point.npy {b['point.npy'] / 1e3:.0f} kB, count.npy "
          f"{b['count.npy'] / 1e3:.0f} kB); x {SCANNET_SCANS} scans = {r['scannet_projected_bytes'] / gb:.1f} GB, "
          f"beside OpenScene's {OPENSCENE_LSEG_BYTES / gb:.1f} GB of fused LSeg features")
    n = r["naive"]
    diff = "different point sets" if n["max_abs_diff_fp16"] is None else f"max |diff| {n['max_abs_diff_fp16']:.2g}"
    print(f"naive per-view fusion (N x D gather and float64 N x D sum per view) on {n['views']} views: "
          f"{n['naive_seconds']:.2f} s ({n['naive_cpu_seconds']:.2f} CPU) against fuse's {n['fuse_seconds']:.3f} s "
          f"({n['fuse_cpu_seconds']:.3f} CPU): {n['ratio']:.1f}x; same points {n['same_points']}, {diff}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
