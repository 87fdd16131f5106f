"""Where a real training step spends its time, on the preprocessed demo data (CPU).

Runs the real fine-tuning loop (DataLoader workers, augmentations, collate, loss, SGD) for one
epoch per configuration and prints voxels/s (forward + backward, whole loop), the share of the
wall time spent waiting for batches, and the share spent outside the network's forward, backward
and optimiser step (loading, collate, transfer, loss; target < 15 %):

  demo     the demo profile as params.yaml sets it (small U-Net, crops, demo voxel size)
  34C      Res16UNet34C at 2 cm on whole scenes (~50k voxels each), batch 1, no crops

    python benchmarks/bench_train.py [--scenes DIR] [--configs demo,34C] [--epochs 1]

Needs data/processed (dvc repro preprocess). Pure forward/backward speed per model on a synthetic
room: benchmarks/bench_model.py.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import yaml

from lgseg.config import training_config
from lgseg.engine.launch import TrainPaths, run_training


def configs(params: dict) -> dict[str, dict]:
    demo = training_config(params, "finetune")
    big = copy.deepcopy(demo)
    big.update(model="Res16UNet34C", voxel_size=0.02, batch_size=1)
    big["augment"] = {k: v for k, v in big["augment"].items() if k != "crop_points"}
    return {"demo": demo, "34C": big}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=Path, default=Path("data/processed"))
    ap.add_argument("--configs", default="demo,34C")
    ap.add_argument("--epochs", type=int, default=1)
    a = ap.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    all_cfgs = configs(params)
    print(f"{'config':8}{'model':>14}{'voxel':>7}{'vox/s':>10}{'data wait':>11}{'outside net':>13}{'time':>8}")
    for name in a.configs.split(","):
        cfg = dict(all_cfgs[name], epochs=a.epochs, val_every=10**6, loss={"type": "ce"})
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            r = run_training("finetune", cfg, TrainPaths(a.scenes, Path(tmp, "ck.pt"), Path(tmp, "m.pt"),
                                                         Path(tmp, "c.csv")), progress=False)
            h = r["history"][-1]
            print(f"{name:8}{cfg['model']:>14}{cfg['voxel_size']:>7.2f}{h['voxels_per_s']:>10,.0f}"
                  f"{h['data_share']:>10.1%}{h['outside_share']:>12.1%}{time.perf_counter() - t:>7.0f}s")


if __name__ == "__main__":
    main()
