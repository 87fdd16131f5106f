"""What CSC's objective costs in a pretraining step of the demo (Res16UNet14S, one CPU thread).

Two steps side by side on the same batches (two views of each of the demo's train scenes, as
``pretrain.objective: csc`` trains on them): the CSC step (network forward, CSC loss, backward,
SGD step) and the same step with a loss that costs nothing (a fixed linear function of the
features: its backward is the network's alone). The objective's share of the step is

    (t_csc - t_plain) / t_csc

and it covers all the loss does on the step's path: sampling the matches, the partitions, the
similarities, the InfoNCE terms and their backward. Times are CPU seconds of the process on one
thread (so other work on a shared machine does not stretch them). Matching the two views' voxels happens in the
data loader (its worker processes, beside the step, not in it); its cost is printed too, as the
time to make a two-view item against a one-view item of the same scene. Target: under 15 % of a step.

    python benchmarks/bench_csc.py [--scenes data/processed] [--steps 12] [--repeat 3] [--num-matches N]

Reads data/processed (dvc repro preprocess); where it does not exist, the demo's synthetic scenes
are generated first (bench_train's helper). Each timing is the median over all steps
of ``--repeat`` passes over the batches, the two steps interleaved batch by batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import processed_scenes  # noqa: E402

from lgseg.config import augment_cfgs, pretrain_loss_cfg, training_config  # noqa: E402,F401
from lgseg.data import CollateFn, ScanNetDataset  # noqa: E402
from lgseg.losses import LOSSES  # noqa: E402
from lgseg.models import build_model  # noqa: E402


def batches(cfg: dict, scenes: Path, two_views: bool, steps: int) -> list[dict]:
    augment = dict(cfg["augment"])
    translation = augment.pop("random_translation", 100)
    ds = ScanNetDataset(scenes, "train", voxel_size=cfg["voxel_size"], transforms_cfg=augment, train=True,
                        random_translation=translation, seed=cfg["seed"], two_views=two_views)
    collate = CollateFn(cfg["max_points"])
    b = cfg["batch_size"]
    return [collate([ds[(i * b + j) % len(ds)] for j in range(b)]) for i in range(steps)]


def step_times(net, loss_of, data: list[dict], opt) -> list[float]:
    """CPU seconds of each step (one thread: its compute time, which other work on the machine does not
    stretch as it stretches wall time)."""
    times = []
    for batch in data:
        t0 = time.process_time()
        out = net(batch["coord"], batch["feat"])
        loss = loss_of(out, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.process_time() - t0)
    return times


def item_times(cfg: dict, scenes: Path, n: int) -> dict[str, float]:
    out = {}
    for name, two in (("one view", False), ("two views", True)):
        augment = dict(cfg["augment"])
        translation = augment.pop("random_translation", 100)
        ds = ScanNetDataset(scenes, "train", voxel_size=cfg["voxel_size"], transforms_cfg=augment, train=True,
                            random_translation=translation, seed=cfg["seed"], two_views=two)
        t = []
        for i in range(n):
            t0 = time.perf_counter()
            ds[i % len(ds)]
            t.append(time.perf_counter() - t0)
        out[name] = statistics.median(t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=Path, default=Path("data/processed"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--num-matches", type=int, help="pretrain.csc.num_matches (default: params.yaml's)")
    a = ap.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["pretrain"]["objective"] = "csc"
    if a.num_matches:
        params["pretrain"]["csc"]["num_matches"] = a.num_matches
    cfg = training_config(params, "pretrain")
    torch.set_num_threads(1)
    with processed_scenes(a.scenes, params) as scenes, threadpool_limits(1):
        data = batches(cfg, scenes, True, a.steps)
        voxels = statistics.mean(len(b["coord"]) for b in data)
        matches = statistics.mean(len(b["matches"]) for b in data)
        csc = LOSSES.build(pretrain_loss_cfg(cfg))
        torch.manual_seed(0)
        net = build_model({**cfg["model"], "name": cfg["model"]["name"]}, feature_dim=384, num_classes=None)
        net.train()
        weights = torch.randn(384, generator=torch.Generator().manual_seed(1))

        def csc_loss(out, b):
            return csc(out, out, b["matches"], b["match_coord"], b["match_scene"])

        def plain_loss(out, b):  # the same backward through the network, nothing of its own
            return (out @ weights).mean()

        # interleaved, batch by batch (plain, csc, csc, plain, ...): both see the same load, which on a
        # shared machine drifts by more than the objective costs; the share is the median of the
        # per-batch differences over the median CSC step
        opt = torch.optim.SGD(net.parameters(), lr=1e-4)
        times = {"csc": [], "plain": []}
        for r in range(a.repeat):
            for i, batch in enumerate(data):
                order = (("plain", plain_loss), ("csc", csc_loss))
                for name, fn in (order if (i + r) % 2 == 0 else order[::-1]):
                    times[name] += step_times(net, fn, [batch], opt)
        best = {k: statistics.median(v) for k, v in times.items()}
        share = statistics.median(c - p for c, p in zip(times["csc"], times["plain"])) / best["csc"]
        items = item_times(cfg, scenes, 2 * a.steps)
    print(f"\ndemo CSC pretraining step: {cfg['model']['name']} at {cfg['voxel_size']} m, batch {cfg['batch_size']} "
          f"(x2 views), {voxels:,.0f} voxels and {matches:,.0f} matches per batch "
          f"(num_matches {cfg['csc']['num_matches']} per scene), one thread")
    print(f"  step with the CSC loss       {best['csc'] * 1000:8.1f} ms CPU")
    print(f"  step with a free loss        {best['plain'] * 1000:8.1f} ms CPU")
    print(f"  CSC objective's share        {share:8.1%}   (target < 15 %)")
    print(f"  data loader, per item: one view {items['one view'] * 1000:.1f} ms, two views with matches "
          f"{items['two views'] * 1000:.1f} ms (in the loader's worker processes, beside the step)")


if __name__ == "__main__":
    main()
