"""Rasterizer speed on one core (lgseg.synthetic.render.rasterize) for one demo-size scene.

One synthetic room built as ``lgseg synth`` builds it (``write.deal`` + ``scene._build_scene``,
spacing 4 cm, noise 4 mm); by default the largest of the demo world (params.yaml: 40 scenes,
seed 0; scene 8: 74,819 vertices, 119,321 triangles; the mean is 96k), seen from the frames of its
camera path (``camera.camera_path``, cameras clear of the furniture) with ScanNet's depth
intrinsics scaled to 160x120, 320x240 and 640x480.  Per resolution, side by side in one run:
milliseconds per frame (mean over the frames, best of --repeats passes; wall and CPU time of the
process), the candidate pixels tested per frame (bounding-box padding included), those inside a
face, the faces left after culling, the pixels covered, and the time of the per-pixel colour and
label look-ups (``interpolate`` + ``nearest_vertex``) on top.  Pinned to one CPU with one
BLAS/OpenMP thread.  Target: 320x240 well under 300 ms per frame.

    python benchmarks/bench_render.py [--frames 8] [--repeats 3] [--scenes 40] [--seed 0] [--scene 8] [--json]
"""

from __future__ import annotations

import os

# one thread before numpy loads its thread pools (threadpoolctl below as well)
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from lgseg.synthetic import write  # noqa: E402
from lgseg.synthetic.camera import camera_path, scannet_intrinsics  # noqa: E402
from lgseg.synthetic.render import Camera, interpolate, nearest_vertex, rasterize  # noqa: E402
from lgseg.synthetic.scene import _build_scene  # noqa: E402
from timing import one_core  # noqa: E402  (benchmarks/timing.py)

RESOLUTIONS = ((160, 120), (320, 240), (640, 480))


def demo_scene(scenes: int = 40, seed: int = 0, index: int = 8):
    """(scan-frame scene, axis-aligned vertices, obstacle boxes) of scene ``index`` of a world of
    ``scenes`` scenes for ``seed``, built exactly as ``write.generate`` builds it."""
    dealt = write.deal(scenes, seed, write.OBJECTS, write.TRAIN_MIN, write.VAL_MIN)
    sc = _build_scene(np.random.default_rng([seed, index]), 0.04, 0.004, dealt[index])
    room = sc.verts.astype(np.float64) @ sc.align[:3, :3].T + sc.align[:3, 3]
    boxes = []
    for o in sc.objects:  # each object's axis-aligned box in the room frame
        c, s = abs(math.cos(o.yaw)), abs(math.sin(o.yaw))
        half = np.array([c * o.size[0] + s * o.size[1], s * o.size[0] + c * o.size[1]]) / 2
        boxes.append([[*(o.center[:2] - half), o.center[2]], [*(o.center[:2] + half), o.center[2] + o.size[2]]])
    return sc, room, np.array(boxes)


def bench_render(frames: int = 8, repeats: int = 3, scenes: int = 40, seed: int = 0, index: int = 8) -> dict:
    sc, room, boxes = demo_scene(scenes, seed, index)
    poses = camera_path(room.min(axis=0), room.max(axis=0), frames, np.random.default_rng([seed, index, 7]),
                        obstacles=boxes)
    result = {"vertices": len(sc.verts), "faces": len(sc.faces), "frames": frames, "repeats": repeats,
              "resolutions": {}}
    inv_align = np.linalg.inv(sc.align)
    with one_core():
        for w, h in RESOLUTIONS:
            k = scannet_intrinsics(w, h, "depth")
            cams = [Camera.from_pose(k, w, h, inv_align @ p) for p in poses]  # scan-frame poses, as ScanNet's
            rasterize(sc.verts, sc.faces, cams[0])  # warm-up
            wall, cpu, look = [], [], []
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                rasters = [rasterize(sc.verts, sc.faces, cam) for cam in cams]
                wall.append((time.perf_counter() - t) / frames)
                cpu.append((time.process_time() - c) / frames)
                t = time.perf_counter()
                for r in rasters:
                    interpolate(r, sc.faces, sc.colors)
                    nearest_vertex(r, sc.faces)
                look.append((time.perf_counter() - t) / frames)
            stats = [r.stats for r in rasters]
            result["resolutions"][f"{w}x{h}"] = {
                "ms_per_frame": 1000 * min(wall), "cpu_ms_per_frame": 1000 * min(cpu),
                "lookup_ms_per_frame": 1000 * min(look),
                "candidates_per_frame": float(np.mean([s["candidates"] for s in stats])),
                "inside_per_frame": float(np.mean([s["inside"] for s in stats])),
                "faces_kept_per_frame": float(np.mean([s["faces_kept"] for s in stats])),
                "buckets_per_frame": float(np.mean([s["buckets"] for s in stats])),
                "covered": float(np.mean([r.mask.mean() for r in rasters])),
            }
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenes", type=int, default=40, help="scenes of the world (the classes dealt depend on it)")
    ap.add_argument("--seed", type=int, default=0, help="the world's seed")
    ap.add_argument("--scene", type=int, default=8, help="which scene of that world")
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = ap.parse_args(argv)
    r = bench_render(args.frames, args.repeats, args.scenes, args.seed, args.scene)
    print(f"rasterize, one core, scene {args.scene} of {args.scenes} (seed {args.seed}): "
          f"{r['vertices']} vertices, {r['faces']} triangles; mean over {r['frames']} camera-path frames, "
          f"best of {r['repeats']} passes")
    for name, row in r["resolutions"].items():
        print(f"  {name:>7s}: {row['ms_per_frame']:6.1f} ms/frame ({row['cpu_ms_per_frame']:.1f} ms CPU), "
              f"{row['candidates_per_frame'] / 1e6:5.2f} M candidates/frame "
              f"({row['inside_per_frame'] / 1e6:.2f} M inside), {row['faces_kept_per_frame']:.0f} faces kept, "
              f"{row['buckets_per_frame']:.0f} buckets, {100 * row['covered']:.1f} % covered; "
              f"+ {row['lookup_ms_per_frame']:.1f} ms colours and labels")
    if args.json:
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
