"""Training throughput of the Res16UNet variants on a synthetic room at 2 cm (CPU).

A room-like scene (floor, walls, a few boxes: surfaces only, like a ScanNet scan) is voxelised at
2 cm to about --voxels voxels. For each model: parameter count, then one warm-up iteration and
--iters timed iterations of forward + cross-entropy backward (train mode, 200-class head); prints
ms per forward, ms per backward and voxels/s for forward + backward.

    python benchmarks/bench_model.py [--voxels 50000] [--iters 3] [--models Res16UNet14S,Res16UNet34C]
                                     [--threads N]

fwd/bwd ms are wall-clock means; cpu ms is the process CPU time of one forward + backward (all
threads together), which tells the work apart from waiting when other jobs share the cores.

--threads sets both torch's and BLAS's (MinkowskiEngine's CPU convolutions call OpenBLAS) thread
counts; on a loaded machine 1 thread can beat 2, since pool threads wait on descheduled peers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from lgseg.models.registry import MODELS, build_model
from lgseg.models.res16unet import count_parameters

VOXEL = 0.02


def _box_surface(lo: np.ndarray, hi: np.ndarray, step: float, rng: np.random.Generator) -> np.ndarray:
    """Points on the 5 visible faces of an axis-aligned box (no bottom face)."""
    pts = []
    for axis in range(3):
        for side in (lo, hi):
            if axis == 2 and side is lo:
                continue
            u, v = [a for a in range(3) if a != axis]
            gu = np.arange(lo[u], hi[u], step)
            gv = np.arange(lo[v], hi[v], step)
            uu, vv = np.meshgrid(gu, gv, indexing="ij")
            face = np.empty((uu.size, 3))
            face[:, axis], face[:, u], face[:, v] = side[axis], uu.ravel(), vv.ravel()
            pts.append(face)
    pts = np.concatenate(pts)
    return pts + rng.normal(scale=step / 4, size=pts.shape)  # scan noise


def room_points(scale: float, rng: np.random.Generator) -> np.ndarray:
    """Floor + walls of a (6 x 4.5 x 2.6 m) * scale room with furniture-sized boxes."""
    step = VOXEL / 2  # sample densely so every surface voxel is hit
    size = np.array([6.0, 4.5, 2.6]) * scale
    walls = _box_surface(np.zeros(3), size, step, rng)
    walls = walls[walls[:, 2] < size[2] - step]  # drop the ceiling (open top, like many scans)
    parts = [walls]
    for _ in range(8):  # tables, cabinets, beds
        dims = rng.uniform([0.4, 0.4, 0.4], [1.6, 1.0, 1.1]) * scale
        lo = np.append(rng.uniform(0, size[:2] - dims[:2]), 0.0)
        parts.append(_box_surface(lo, lo + dims, step, rng))
    return np.concatenate(parts)


def synthetic_scene(target_voxels: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(coords (M, 4) int32 with batch 0, feats (M, 3) in [-0.5, 0.5]) with M close to the target."""
    scale = 1.0
    for _ in range(4):  # surface area ~ scale^2, so rescale by the square root of the ratio
        rng = np.random.default_rng(seed)
        vox = np.unique(np.floor(room_points(scale, rng) / VOXEL).astype(np.int32), axis=0)
        scale *= np.sqrt(target_voxels / len(vox))
    coords = np.concatenate([np.zeros((len(vox), 1), np.int32), vox], 1)
    feats = rng.uniform(-0.5, 0.5, size=(len(vox), 3)).astype(np.float32)
    return torch.from_numpy(coords), torch.from_numpy(feats)


def bench(name: str, coords: torch.Tensor, feats: torch.Tensor, iters: int) -> dict:
    torch.manual_seed(0)
    model = build_model({"name": name}, feature_dim=None, num_classes=200).train()
    labels = torch.randint(0, 200, (len(coords),))
    fwd, bwd, cpu = [], [], []
    for it in range(iters + 1):  # iteration 0 is the warm-up
        model.zero_grad(set_to_none=True)
        c0, t0 = time.process_time(), time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(coords, feats), labels)
        t1 = time.perf_counter()
        loss.backward()
        t2, c2 = time.perf_counter(), time.process_time()
        if it:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            cpu.append(c2 - c0)
    f, b = float(np.mean(fwd)), float(np.mean(bwd))
    return {"params": count_parameters(model), "fwd_ms": 1e3 * f, "bwd_ms": 1e3 * b,
            "cpu_ms": 1e3 * float(np.mean(cpu)), "voxels_per_s": len(coords) / (f + b)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voxels", type=int, default=50_000)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--models", default="Res16UNet14S,Res16UNet14A,Res16UNet34C",
                    help=f"comma-separated, from {', '.join(MODELS.keys())}")
    ap.add_argument("--threads", type=int, default=0, help="torch and BLAS threads (0: library defaults)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    coords, feats = synthetic_scene(args.voxels)
    blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    print(f"scene: {len(coords)} voxels at {VOXEL * 100:.0f} cm; threads: torch {torch.get_num_threads()}, "
          f"BLAS {max(blas, default='?')}")
    print(f"{'model':14s} {'params':>11s} {'fwd ms':>8s} {'bwd ms':>8s} {'cpu ms':>8s} {'voxels/s':>10s}")
    for name in args.models.split(","):
        r = bench(name.strip(), coords, feats, args.iters)
        print(f"{name:14s} {r['params']:11,d} {r['fwd_ms']:8.0f} {r['bwd_ms']:8.0f} {r['cpu_ms']:8.0f} "
              f"{r['voxels_per_s']:10,.0f}")


if __name__ == "__main__":
    main()
