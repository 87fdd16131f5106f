"""The demo's pretrain -> fine-tune -> evaluate through lgseg's own code on a CUDA GPU (spconv backend).

What the training stages and the evaluate stage run (``lgseg.engine.launch.run_training``,
``lgseg.engine.predict.evaluate_model``), with params.yaml's demo settings except: backend spconv,
device cuda (AMP on, as params.yaml's ``train.amp``), ``--epochs`` per stage, and DataLoader workers
``--workers``. Then the fine-tuned model file predicts the same val scenes on the CPU (spconv, one
thread) and the script prints how many voxel labels the CPU and the GPU predictions share, plus both
mIoUs: the same weights must give (nearly) the same labels on both devices (GPU sums in another
order; AMP is off at prediction time). Prints one summary table, writes everything under --out.

    PYTHONPATH=. python benchmarks/gpu_pipeline.py --data DIR --out DIR [--epochs 10]

DIR holds processed/ (train/, val/ and stats.json as the preprocess stage writes them), text/ (the
text-embed stage's output) and gt/val/ (the benchmark ground truth). Needs no MLflow, DVC, plyfile,
MinkowskiEngine or pydantic (the GPU machines have none of them). Without CUDA it says so and exits 0,
unless --device cpu (used by the tests to check the script on a tiny budget).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lgseg.config import training_config
from lgseg.engine.launch import TrainPaths, run_training
from lgseg.engine.predict import evaluate_model

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = "gpu_pipeline.py needs a CUDA GPU (torch.cuda.is_available() is False); nothing measured"


def demo_params(device: str, epochs: int, workers: int) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["backend"] = "spconv"
    params["train"].update(device=device, num_workers=workers)
    for stage in ("pretrain", "finetune"):
        s = params[stage]
        s["epochs"] = epochs
        s["val_every"] = max(1, epochs // 2)
        s["scheduler"]["milestones"] = [max(1, round(m * epochs / 30)) for m in s["scheduler"]["milestones"]]
    return params


def train(kind: str, params: dict, data: Path, out: Path, init: Path | None = None) -> tuple[dict, float]:
    paths = TrainPaths(processed=data / "processed", checkpoint=out / f"{kind}.ckpt", model=out / f"{kind}.pt",
                       curve=out / f"{kind}_curve.csv", embeddings=data / "text",
                       stats=data / "processed" / "stats.json" if kind == "finetune" else None, init=init)
    t = time.perf_counter()
    result = run_training(kind, training_config(params, kind), paths, progress=False)
    return result, time.perf_counter() - t


def evaluate(model: Path, data: Path, out: Path, tag: str, device: str) -> tuple[dict, float]:
    t = time.perf_counter()
    s = evaluate_model(model, data / "processed", data / "gt" / "val", out / f"pred_{tag}", out / f"eval_{tag}.json",
                       out / f"per_class_{tag}.csv", split="val", device=device, progress=False, backend="spconv")
    return s, time.perf_counter() - t


def agreement(out: Path) -> tuple[float, int]:
    """Share of mesh-vertex labels on which the two prediction folders agree, and the vertex count."""
    same = total = 0
    for gpu in sorted((out / "pred_gpu").glob("*.txt")):
        a, b = np.loadtxt(gpu, dtype=np.int64), np.loadtxt(out / "pred_cpu" / gpu.name, dtype=np.int64)
        same += int((a == b).sum())
        total += len(a)
    return same / max(total, 1), total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder with processed/, text/ and gt/val/")
    ap.add_argument("--out", type=Path, required=True, help="where models, curves and predictions go")
    ap.add_argument("--epochs", type=int, default=10, help="epochs per training stage (demo: 30)")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader worker processes")
    ap.add_argument("--scratch", action="store_true",
                    help="also fine-tune from scratch (Table 1's Scratch row) and evaluate it on the device")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: check the script without a GPU (its numbers are not GPU numbers)")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    if a.device == "cuda":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    a.out.mkdir(parents=True, exist_ok=True)
    params = demo_params(a.device, a.epochs, a.workers)
    rows = []
    pre, t_pre = train("pretrain", params, a.data, a.out)
    rows.append(("pretrain", t_pre, pre["history"][-1]))
    fine, t_fine = train("finetune", copy.deepcopy(params), a.data, a.out, init=a.out / "pretrain.pt")
    rows.append(("finetune", t_fine, fine["history"][-1]))
    s_gpu, t_gpu = evaluate(a.out / "finetune.pt", a.data, a.out, "gpu", a.device)
    s_cpu, t_cpu = evaluate(a.out / "finetune.pt", a.data, a.out, "cpu", "cpu")
    share, vertices = agreement(a.out)
    if a.scratch:
        scratch = a.out / "scratch"
        scratch.mkdir(exist_ok=True)
        sc, t_sc = train("finetune", copy.deepcopy(params), a.data, scratch)
        rows.append(("scratch", t_sc, sc["history"][-1]))
        s_sc, _ = evaluate(scratch / "finetune.pt", a.data, scratch, "gpu", a.device)

    print(f"\n{'stage':10}{'seconds':>9}  last epoch's logged metrics")
    for name, secs, last in rows:
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in last.items()}
        print(f"{name:10}{secs:>9.1f}  {json.dumps(shown)}")
    print(f"evaluate  {t_gpu:>9.1f}  {a.device}: val mIoU {s_gpu['all']['miou']:.2f}, head {s_gpu['head']['miou']:.2f}")
    print(f"evaluate  {t_cpu:>9.1f}  cpu:  val mIoU {s_cpu['all']['miou']:.2f}, head {s_cpu['head']['miou']:.2f}")
    for name, s in [("pretrained", s_gpu)] + ([("scratch", s_sc)] if a.scratch else []):
        print(f"{name:10} val mIoU all / head / common / tail: "
              + " / ".join("n/a" if s[k]["miou"] is None else f"{s[k]['miou']:.2f}" for k in ("all", "head", "common", "tail")))
    print(f"{a.device} vs cpu predictions of the same model file: {100 * share:.3f}% of {vertices:,} vertex labels agree")
    json.dump({"rows": [{"stage": n, "seconds": s, "last": last} for n, s, last in rows],
               "eval": {a.device: s_gpu["all"], "cpu": s_cpu["all"]}, "agree": share, "vertices": vertices},
              open(a.out / "summary.json", "w"), indent=1, default=float)
    return 0 if share >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
