"""Limited annotations on a full-size ScanNet-like scene: farthest-point sampling per object.

A scene with ScanNet's proportions (default 150,000 vertices: a floor of 40,000, four walls of
10,000 and 60 objects of 300-3,000 vertices, like a mid-sized ScanNet room) is annotated at 5, 10
and 50 % under both rules. Prints seconds per scene and the projected time for ScanNet's 1,201
train scenes on --workers processes, and, for scale, the speed of the vectorised FPS against a
plain numpy loop (norm of every difference per pick) on one object.

    python benchmarks/bench_annotation.py [--vertices 150000] [--workers 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lgseg.scannet.annotation import annotated_points, farthest_point_sampling


def scene(vertices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    sizes = [int(vertices * 0.27)] + [int(vertices * 0.067)] * 4
    rest = vertices - sum(sizes)
    objects = rng.integers(300, 3000, size=200)
    objects = objects[np.cumsum(objects) <= rest]
    sizes += objects.tolist()
    instance = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    instance = np.concatenate([instance, np.full(vertices - len(instance), -1)])
    centres = rng.uniform(0, 6, size=(len(sizes), 3))
    coord = np.where(instance[:, None] >= 0, centres[np.maximum(instance, 0)], 0) + rng.normal(0, 0.4, (vertices, 3))
    order = rng.permutation(vertices)  # objects interleaved in mesh order, as in a real mesh
    return coord[order].astype(np.float32), instance[order]


def plain_fps(points: np.ndarray, k: int) -> list[int]:
    chosen, dist = [0], np.full(len(points), np.inf)
    for _ in range(1, k):
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[-1]], axis=1))
        chosen.append(int(np.argmax(dist)))
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vertices", type=int, default=150_000)
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    coord, instance = scene(a.vertices, rng)
    largest = np.bincount(instance[instance >= 0]).max()
    print(f"scene: {a.vertices:,} vertices, {instance.max() + 1} objects, largest {largest:,}")
    print(f"{'rule':10}{'fraction':>9}{'kept':>10}{'s/scene':>9}{'1,201 scenes':>16}")
    for rule in ("paper", "reference"):
        for fraction in (0.05, 0.1, 0.5):
            t = time.perf_counter()
            keep = annotated_points(coord, instance, fraction, rule, np.random.default_rng(1))
            dt = time.perf_counter() - t
            total = dt * 1201 / a.workers
            print(f"{rule:10}{fraction:>9.0%}{keep.sum():>10,}{dt:>9.2f}{total / 60:>10.1f} min / {a.workers} proc")
    obj = coord[instance == 0]
    k = 2000
    t = time.perf_counter()
    fast = farthest_point_sampling(obj, k)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = plain_fps(obj.astype(np.float64), k)
    t_slow = time.perf_counter() - t
    agree = np.mean(np.asarray(slow) == fast)
    print(f"FPS of {k:,} of {len(obj):,} points: vectorised {t_fast:.2f} s, plain numpy loop {t_slow:.2f} s "
          f"({t_slow / t_fast:.1f}x); same picks: {agree:.0%} (float32 vs float64 ties aside)")


if __name__ == "__main__":
    main()
