"""Instance clustering speed on one core (lgseg.instances.cluster_instances, mesh-vertex defaults).

A synthetic 150k-point scene: floor and walls (never instances) and ~80 boxes of a few hundred to a
few thousand surface points each, every object point with an offset to its box centre plus noise.
Timed per scene (median of --repeats), pinned to one CPU with one BLAS/OpenMP thread:
- tight offsets (noise 1 cm per axis: each object's shifted points clump within a few cm),
- loose offsets (noise 5 cm per axis: spread ~5-10 cm),
- tight offsets with the dual set (original coordinates clustered too, then NMS).
Beside each, the number of point pairs within the radius among the shifted kept points (all labels,
as scipy's cKDTree.query_pairs would list them): the pairs of a 10 % random subsample times 100
(pair counts grow with the square of the points), because listing all of them can take minutes and
gigabytes when the points clump; this is why the clustering does not start from query_pairs.

    python benchmarks/bench_cluster.py [--points 150000] [--repeats 5]
"""

from __future__ import annotations

import os

# one thread before numpy/scipy load their thread pools (threadpoolctl below as well, if present)
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from lgseg.instances import ClusterConfig, cluster_instances  # noqa: E402
from lgseg.scannet.constants import IS_INSTANCE_CLASS, NAME_TO_INDEX, NUM_CLASSES  # noqa: E402
from timing import one_core, timed  # noqa: E402  (benchmarks/timing.py)

ROOM = np.array([8.0, 6.0, 2.6])  # metres
SURFACE_DENSITY = 2500.0  # object surface points per m^2 (~2 cm spacing, as ScanNet mesh vertices)


def _box_surface(centre, side, n, rng):
    """n points uniform on the surface of an axis-aligned cube."""
    face = rng.integers(0, 6, n)
    p = rng.uniform(-0.5, 0.5, (n, 3))
    axis = face % 3
    p[np.arange(n), axis] = np.where(face < 3, -0.5, 0.5)
    return centre + p * side


def make_scene(points: int = 150_000, noise: float = 0.01, objects: int = 80, seed: int = 0):
    """(coord, offset, logits float32 (N, 200), true label, true instance) of a synthetic scene."""
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(np.log(300), np.log(5000), objects))
    sizes = np.maximum(100, (sizes / sizes.sum() * 0.7 * points).astype(np.int64))
    classes = rng.choice(np.flatnonzero(IS_INSTANCE_CLASS), objects)
    coord, centre_of, label, inst = [], [], [], []
    for k, (n, c) in enumerate(zip(sizes, classes)):
        side = np.sqrt(n / SURFACE_DENSITY / 6)
        centre = np.r_[rng.uniform(side, ROOM[:2] - side), rng.uniform(side / 2, 1.5)]
        coord.append(_box_surface(centre, side, n, rng))
        centre_of.append(np.broadcast_to(centre, (n, 3)))
        label.append(np.full(n, c))
        inst.append(np.full(n, k))
    rest = points - int(sizes.sum())  # floor and four walls
    on = rng.integers(0, 5, rest)
    p = rng.uniform(0, 1, (rest, 3)) * ROOM
    p[on == 0, 2] = 0.0
    p[on == 1, 0], p[on == 2, 0] = 0.0, ROOM[0]
    p[on == 3, 1], p[on == 4, 1] = 0.0, ROOM[1]
    coord.append(p)
    centre_of.append(p)  # no offset target
    label.append(np.where(on == 0, NAME_TO_INDEX["floor"], NAME_TO_INDEX["wall"]))
    inst.append(np.full(rest, -1))
    coord, centre_of = np.concatenate(coord), np.concatenate(centre_of)
    label, inst = np.concatenate(label), np.concatenate(inst)
    offset = centre_of - coord + rng.normal(0, noise, coord.shape)
    logits = rng.normal(0, 1, (len(coord), NUM_CLASSES)).astype(np.float32)
    logits[np.arange(len(coord)), label] += 6.0
    wrong = rng.random(len(coord)) < 0.03  # some semantic noise
    logits[np.flatnonzero(wrong), rng.integers(0, NUM_CLASSES, wrong.sum())] += 9.0
    return coord, offset, logits, label, inst


def naive_pair_estimate(points: np.ndarray, radius: float, fraction: float = 0.1, seed: int = 0) -> dict:
    """Pairs within radius, estimated from a random subsample (pairs scale as fraction**2)."""
    sub = points[np.random.default_rng(seed).random(len(points)) < fraction]
    t = time.perf_counter()
    n = len(cKDTree(sub).query_pairs(radius, output_type="ndarray"))
    return {"subsample_points": len(sub), "subsample_pairs": n, "subsample_seconds": time.perf_counter() - t,
            "estimated_pairs": int(round(n / fraction**2))}


def bench_clustering(points: int = 150_000, repeats: int = 5) -> dict:
    """Seconds per scene (median of ``repeats``; wall and CPU) of cluster_instances on one core, in
    three settings (tight, loose, dual_set), with the naive pair-count estimates."""
    cfg = ClusterConfig.mesh_vertex()
    result = {"points": points, "repeats": repeats, "radius": cfg.radius, "config": "mesh_vertex"}
    with one_core():
        for name, noise, dual in (("tight", 0.01, False), ("loose", 0.05, False), ("dual_set", 0.01, True)):
            coord, offset, logits, label, inst = make_scene(points, noise)
            run_cfg = ClusterConfig.mesh_vertex(dual_set=dual)
            cluster_instances(coord, offset, logits, run_cfg)  # warm-up (page faults, imports)
            seconds, cpu, props = timed(lambda: cluster_instances(coord, offset, logits, run_cfg), repeats)
            kept = IS_INSTANCE_CLASS[np.argmax(logits, axis=1)]
            row = {"offset_noise_m": noise, "seconds": seconds, "cpu_seconds": cpu, "proposals": len(props),
                   "objects": int(inst.max()) + 1, "kept_points": int(kept.sum())}
            if not dual:
                row["naive_query_pairs"] = naive_pair_estimate((coord + offset)[kept], cfg.radius)
            result[name] = row
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=150_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = ap.parse_args(argv)
    r = bench_clustering(args.points, args.repeats)
    print(f"cluster_instances, mesh-vertex defaults (radius {r['radius']} m), one core, "
          f"median of {r['repeats']} runs, {r['points']} points per scene")
    for name in ("tight", "loose", "dual_set"):
        row = r[name]
        print(f"  {name:8s} offset noise {row['offset_noise_m'] * 100:.0f} cm: {row['seconds'] * 1000:6.1f} ms/scene "
              f"({row['cpu_seconds'] * 1000:.1f} ms CPU), {row['kept_points']} kept points, "
              f"{row['proposals']} proposals ({row['objects']} objects)")
        if "naive_query_pairs" in row:
            q = row["naive_query_pairs"]
            print(f"           naive cKDTree.query_pairs would list ~{q['estimated_pairs']:,} pairs "
                  f"({q['subsample_pairs']:,} on a 10 % subsample x 100, {q['subsample_seconds'] * 1000:.0f} ms)")
    if args.json:
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
