"""The spconv backend on a CUDA GPU: equivalence with the CPU engines, and training throughput
of Res16UNet34C at 2 cm with and without mixed precision.

1. Equivalence. Res16UNet34C (200-class head, eval mode, BatchNorm statistics set to non-trivial
   values) with the same weights on spconv + CUDA and on a CPU reference: MinkowskiEngine when it
   imports (it is CPU-only), else spconv on the CPU. Input: one synthetic room. Prints the max
   abs difference of the logits relative to the reference's scale (max abs logit) and PASS when
   it is <= 1e-3 (fp32; the GPU sums in another order than the CPU).
2. Training. Res16UNet34C, spconv backend, on synthetic rooms of real ScanNet size: a 6 x 6 x 3 m
   room, ~150k random points on the floor, four walls and furniture-like boxes (top and sides),
   one random class (0..199) and colour per surface, voxelised at 2 cm with
   ``lgseg.data.voxelize``; batch 2 (two rooms, ~2 x 135k voxels), SGD as params.yaml's
   fine-tuning, cross-entropy. The batches sit on the GPU beforehand, so this is the network's
   forward + loss + backward + optimiser step, not data loading. For fp32 and for AMP
   (``torch.autocast("cuda", dtype=torch.float16)`` + ``GradScaler``, as lgseg/engine/trainer.py
   does) each: --warmup untimed steps, then --steps timed steps (synchronised clock), capped at
   --mode-budget-s seconds. Prints voxels/s, mean step time, peak GPU memory
   (``torch.cuda.max_memory_allocated``, reset per mode) and the AMP speed-up.

    PYTHONPATH=. python benchmarks/bench_gpu.py [--steps 30] [--warmup 5] [--points 150000]
    PYTHONPATH=. python benchmarks/bench_gpu.py --cpu-check     # the same code on the CPU, tiny rooms

Run on one H200 on 2026-11-27 (51 s with --mode-budget-s 50; numbers in GPU_RESULTS.md beside
this file); the timed steps of each mode stop after --mode-budget-s (120 s) to stay under 8 minutes. Needs torch with CUDA, numpy, scipy,
spconv 2.x (e.g. spconv-cu126 unpacked on PYTHONPATH) and the repo's ``lgseg`` on PYTHONPATH; it
imports only ``lgseg.models`` and ``lgseg.data.voxelize``, so no plyfile, dvc, mlflow,
threadpoolctl or MinkowskiEngine (tests/test_bench_gpu.py runs it with those blocked).
Without CUDA it says so and exits 0, having measured nothing.

``--cpu-check`` runs the same code on the CPU at a tiny size (1.5 x 1.5 x 1 m rooms of 2500
points, Res16UNet14S, 1 thread, 1 + 2 steps; AMP is a no-op there, so its row "amp*" repeats
fp32) so that tests can check the script without a GPU; its numbers are not GPU numbers.
Exit status 1 when the equivalence check FAILs.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lgseg.data.voxelize import voxelize
from lgseg.models.registry import build_model

VOXEL = 0.02
NUM_CLASSES = 200
TOL = 1e-3  # max |diff| / max |reference logit|, fp32
NO_CUDA = "bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); nothing measured"
# params.yaml finetune.optimizer
SGD = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4)


# ---- synthetic rooms ----------------------------------------------------------------------------
def _surfaces(rng: np.random.Generator, size: np.ndarray, boxes: int) -> list[tuple[np.ndarray, ...]]:
    """(origin, u, v) parallelograms: floor, four walls, top and sides of ``boxes`` boxes."""
    w, d, h = size
    ex, ey, ez = np.eye(3)
    out = [(np.zeros(3), w * ex, d * ey),                              # floor
           (np.zeros(3), w * ex, h * ez), (d * ey, w * ex, h * ez),     # walls y = 0, y = d
           (np.zeros(3), d * ey, h * ez), (w * ex, d * ey, h * ez)]     # walls x = 0, x = w
    for _ in range(boxes):
        dims = rng.uniform([0.4, 0.4, 0.4], [2.0, 1.2, 1.5]) * np.minimum(size / [6.0, 6.0, 3.0], 1.0)
        lo = np.array([*rng.uniform(0, size[:2] - dims[:2]), 0.0])
        hi = lo + dims
        out += [(np.array([lo[0], lo[1], hi[2]]), dims[0] * ex, dims[1] * ey),          # top
                (lo, dims[0] * ex, dims[2] * ez), (np.array([lo[0], hi[1], 0]), dims[0] * ex, dims[2] * ez),
                (lo, dims[1] * ey, dims[2] * ez), (np.array([hi[0], lo[1], 0]), dims[1] * ey, dims[2] * ez)]
    return out


def make_room(seed: int, points: int, size=(6.0, 6.0, 3.0), boxes: int = 10):
    """``points`` random points on a room's surfaces (area-proportional, 5 mm scan noise).

    Returns coord (N, 3) float32 metres, colour feature (N, 3) float32 in about [-0.5, 0.5]
    and label (N,) int64 in 0..199 (one random class and colour per surface).
    """
    rng = np.random.default_rng(seed)
    size = np.asarray(size, dtype=np.float64)
    surf = _surfaces(rng, size, boxes)
    area = np.array([np.linalg.norm(np.cross(u, v)) for _, u, v in surf])
    counts = rng.multinomial(points, area / area.sum())
    coord, feat, label = [], [], []
    for (o, u, v), n in zip(surf, counts):
        ab = rng.random((n, 2))
        coord.append(o + ab[:, :1] * u + ab[:, 1:] * v)
        feat.append(rng.uniform(-0.4, 0.4, 3) + rng.normal(0, 0.03, (n, 3)))
        label.append(np.full(n, rng.integers(0, NUM_CLASSES)))
    coord = np.concatenate(coord) + rng.normal(0, 0.005, (points, 3))
    return coord.astype(np.float32), np.concatenate(feat).astype(np.float32), np.concatenate(label)


def voxel_batch(rooms, device: torch.device):
    """Rooms voxelised at 2 cm (first point per voxel) -> (coords (M, 4) int32, feats, labels)."""
    coords, feats, labels = [], [], []
    for b, (coord, feat, label) in enumerate(rooms):
        v = voxelize(coord, VOXEL)
        coords.append(np.concatenate([np.full((len(v.index), 1), b, np.int32), v.voxel_coord], 1))
        feats.append(feat[v.index])
        labels.append(label[v.index])
    return (torch.from_numpy(np.concatenate(coords)).to(device), torch.from_numpy(np.concatenate(feats)).to(device),
            torch.from_numpy(np.concatenate(labels)).to(device))


# ---- 1. equivalence -----------------------------------------------------------------------------
def reference_backend() -> str:
    """minkowski when MinkowskiEngine imports (CPU only), else spconv (on the CPU)."""
    try:
        from lgseg.models.backends import get_backend
        get_backend("minkowski")
        return "minkowski"
    except ImportError:
        return "spconv"


def equivalence(model_name: str, batch, device: torch.device) -> dict:
    ref_backend = reference_backend()
    torch.manual_seed(0)
    ref = build_model({"name": model_name, "backend": ref_backend}, feature_dim=None, num_classes=NUM_CLASSES)
    with torch.no_grad():  # BN statistics that are not the identity, so eval mode checks them too
        for mod in ref.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    test = build_model({"name": model_name, "backend": "spconv"}, feature_dim=None, num_classes=NUM_CLASSES)
    test.load_state_dict(ref.state_dict(), strict=True)
    ref.eval()
    test.eval().to(device)
    coords, feats, _ = batch
    threads = torch.get_num_threads()
    with torch.no_grad(), _no_tf32():
        # one CPU thread for the reference: spconv 2.3.8's CPU convolutions are only right with one
        # torch thread (lgseg's spconv backend sets it for CPU tensors; here it is explicit and
        # undone afterwards, whichever engine is the reference)
        torch.set_num_threads(1)
        try:
            t = time.perf_counter()
            want = ref(coords.cpu(), feats.cpu())
            t_ref = time.perf_counter() - t
        finally:
            torch.set_num_threads(threads)
        got = test(coords, feats).cpu()
    scale = want.abs().max().item()
    diff = (want - got).abs().max().item()
    rel = diff / scale if scale > 0 else math.inf
    del test
    return {"ref": f"{ref_backend}-cpu", "test": f"spconv-{device.type}", "voxels": len(coords),
            "diff": diff, "scale": scale, "rel": rel, "ok": rel <= TOL, "ref_s": t_ref}


@contextlib.contextmanager
def _no_tf32():
    """fp32 products in fp32 (spconv's kernels use no TF32 unless told; torch's matmul neither by default)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---- 2. training throughput ---------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_mode(model_name: str, batches, device: torch.device, amp: bool, warmup: int, steps: int,
               budget_s: float) -> dict:
    """Train a fresh network (seed 0) for ``warmup`` + up to ``steps`` steps; times the latter."""
    cuda = device.type == "cuda"
    label = ("amp" if cuda else "amp*") if amp else "fp32"
    amp = amp and cuda  # autocast to fp16 is a CUDA thing; on the CPU the AMP mode runs fp32 ("amp*")
    torch.manual_seed(0)
    model = build_model({"name": model_name, "backend": "spconv"}, feature_dim=None,
                        num_classes=NUM_CLASSES).to(device).train()
    opt = torch.optim.SGD(model.parameters(), **SGD)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times, voxels, losses = [], 0, []
    for i in range(warmup + steps):
        coords, feats, labels = batches[i % len(batches)]
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext():
            out = model(coords, feats)
        loss = F.cross_entropy(out.float(), labels, ignore_index=-1)  # as FinetuneTask: loss in fp32
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        _sync(device)
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if i >= warmup:
            times.append(dt)
            voxels += len(coords)
            if sum(times) > budget_s:
                break
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else math.nan
    del model, opt
    return {"mode": label, "steps": len(times), "voxels_per_s": voxels / sum(times),
            "step_ms": 1e3 * float(np.mean(times)), "peak_gib": peak, "loss_first": losses[0],
            "loss_last": losses[-1]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-check", action="store_true",
                    help="run everything on the CPU at a tiny size (checks the script, measures nothing useful)")
    ap.add_argument("--model", default=None, help="default Res16UNet34C; --cpu-check Res16UNet14S")
    ap.add_argument("--points", type=int, default=None, help="points per room (default 150000; --cpu-check 2500)")
    ap.add_argument("--batch", type=int, default=2, help="rooms per batch")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per mode (default 30; --cpu-check 2)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; --cpu-check 1)")
    ap.add_argument("--mode-budget-s", type=float, default=120.0,
                    help="stop a mode's timed steps after this many seconds (keeps the run under 8 min)")
    a = ap.parse_args(argv)
    tiny = a.cpu_check
    points = a.points or (2_500 if tiny else 150_000)
    steps = a.steps if a.steps is not None else (2 if tiny else 30)
    warmup = a.warmup if a.warmup is not None else (1 if tiny else 5)
    room_size = (1.5, 1.5, 1.0) if tiny else (6.0, 6.0, 3.0)
    a.model = a.model or ("Res16UNet14S" if tiny else "Res16UNet34C")

    if tiny:
        device = torch.device("cpu")
        torch.set_num_threads(1)  # spconv's CPU convolutions are only right with one thread (see equivalence)
        print("--cpu-check: the GPU code path on the CPU at a tiny size, 1 thread; these are not GPU numbers")
    elif not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    else:
        device = torch.device("cuda")
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}")
    t_start = time.perf_counter()

    rooms = [make_room(seed, points, room_size) for seed in range(2 * a.batch)]  # two different batches
    batches = [voxel_batch(rooms[i:i + a.batch], device) for i in range(0, len(rooms), a.batch)]
    vox = [len(b[0]) for b in batches]
    print(f"rooms: {points:,} points each, {room_size[0]:g} x {room_size[1]:g} x {room_size[2]:g} m, "
          f"{VOXEL * 100:.0f} cm voxels; batch {a.batch}: {' / '.join(f'{v:,}' for v in vox)} voxels")

    eq = equivalence(a.model, voxel_batch(rooms[:1], device), device)
    print(f"equivalence {a.model} eval: {eq['test']} vs {eq['ref']} on {eq['voxels']:,} voxels: "
          f"max |diff| {eq['diff']:.3g}, scale {eq['scale']:.3g}, relative {eq['rel']:.3g} "
          f"(tol {TOL:g}) {'PASS' if eq['ok'] else 'FAIL'}")

    rows = [train_mode(a.model, batches, device, amp, warmup, steps, a.mode_budget_s) for amp in (False, True)]
    print(f"train {a.model} spconv {device.type}, batch {a.batch}, {warmup} warm-up steps:")
    print(f"{'mode':6}{'steps':>6}{'voxels/s':>12}{'step ms':>10}{'peak GiB':>10}{'loss first->last':>20}")
    for r in rows:
        peak = f"{r['peak_gib']:.2f}" if math.isfinite(r["peak_gib"]) else "-"
        print(f"{r['mode']:6}{r['steps']:>6}"
              f"{r['voxels_per_s']:>12,.0f}{r['step_ms']:>10.1f}{peak:>10}"
              f"{r['loss_first']:>10.3f}->{r['loss_last']:<8.3f}")
    speedup = rows[1]["voxels_per_s"] / rows[0]["voxels_per_s"]
    print(f"AMP speed-up: {speedup:.2f}x" + ("" if device.type == "cuda" else
                                             " (amp*: AMP is off on the CPU, so this is fp32 twice)"))
    print(f"total {time.perf_counter() - t_start:.0f}s")
    return 0 if eq["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
