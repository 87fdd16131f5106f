"""Training throughput of the two sparse-conv backends, side by side, in the real loop (CPU).

Runs the real fine-tuning loop (DataLoader workers, augmentations, collate, loss, SGD) for one
epoch per configuration and backend, and prints for each configuration the voxels/s of
MinkowskiEngine and of spconv (forward + backward over the whole loop), their ratio
spconv / minkowski, and for each backend the share of the wall time spent waiting for batches
and the share spent outside the network's forward, backward and optimiser step (loading,
collate, transfer, loss; target < 15 %):

  demo     the demo profile as params.yaml sets it (small U-Net, crops, demo voxel size)
  34C      Res16UNet34C at 2 cm on whole scenes (~50k voxels each), batch 1, no crops

Both backends of a configuration see the same scenes in the same order with the same
augmentations (same seed), and the same config except ``model.backend``; everything runs on the
CPU (``train.device: cpu``) whatever the machine has. Validation (run once by the loop at the
last epoch, not measured) sees only the first val scene, to save time.

Threads: torch runs ``train.cpu_threads`` threads (the loop sets it). MinkowskiEngine's CPU
convolutions also call OpenBLAS, which the loop leaves at its default (one thread per core);
this script holds BLAS to train.cpu_threads too (--blas-threads; 0: the library default, as the
training stages run today), so that both engines compute on the same number of threads.

Timings on a machine that other work shares vary from run to run: on this project's 2-core
machine, with other jobs on it, identical demo runs gave MinkowskiEngine 3,950 to 38,451 vox/s
(its CPU time per epoch tripled under contention) and spconv 12,602 to 34,442, so the ratio
swung from 0.9x to 5x. The progress lines give each run's wall and CPU time; use --repeat and
report the load.

    python benchmarks/bench_train.py [--scenes DIR] [--configs demo,34C] [--backends minkowski,spconv]
                                     [--epochs 1] [--scenes-limit 34C=8] [--repeat 1] [--blas-threads N]

--repeat N runs each backend N times, alternating (m, s, m, s, ...), and the table shows each
backend's best run (the least slowed by other work on the machine, as timeit takes the minimum);
every run's number is printed as it finishes. On a shared machine use --repeat 2 or more.

--scenes-limit bounds the train scenes (the first N, sorted by name) per configuration:
``34C=8`` (the default: 8 scenes took 2-4 min per backend and run on 2 CPU cores, all 28 demo
train scenes would take 7-15 min), ``8`` for every configuration, ``0`` for all scenes everywhere.

Reads data/processed (dvc repro preprocess); where it does not exist, the demo's synthetic
scenes (params.yaml data.synthetic) are generated and preprocessed into a temporary folder first
(a few seconds). The project's performance target: spconv on the CPU >= 1.8x MinkowskiEngine on
Res16UNet34C (the ratio of the 34C row). The demo profile's ``model.backend`` should be the
backend that the demo row measures faster. Pure forward/backward speed per model on a synthetic
room: benchmarks/bench_model.py; the GPU (spconv, AMP): benchmarks/bench_gpu.py.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import tempfile
import time
from pathlib import Path

import yaml
from threadpoolctl import threadpool_info, threadpool_limits

from lgseg.config import training_config
from lgseg.engine.launch import TrainPaths, run_training
from lgseg.models.backends import get_backend

BACKENDS = ("minkowski", "spconv")
TARGET_34C = 1.8  # spconv / minkowski voxels/s on Res16UNet34C, CPU


def configs(params: dict) -> dict[str, dict]:
    demo = training_config(params, "finetune")
    big = copy.deepcopy(demo)
    big.update(model={**demo["model"], "name": "Res16UNet34C"}, voxel_size=0.02, batch_size=1)
    big["augment"] = {k: v for k, v in big["augment"].items() if k != "crop_points"}
    return {"demo": demo, "34C": big}


def parse_limits(text: str, names: list[str]) -> dict[str, int]:
    """``"8"`` -> every config 8; ``"34C=8,demo=0"`` -> per config (0 or absent: all scenes)."""
    text = text.strip()
    if not text or "=" not in text:
        return dict.fromkeys(names, int(text or 0))
    limits = dict.fromkeys(names, 0)
    for part in text.split(","):
        name, _, n = part.partition("=")
        limits[name.strip()] = int(n)
    return limits


@contextlib.contextmanager
def processed_scenes(scenes: Path, params: dict):
    """``scenes`` if it holds preprocessed data, else the demo's scenes made in a temp folder."""
    if (scenes / "train").is_dir():
        yield scenes
        return
    from lgseg.scannet.preprocess import preprocess
    from lgseg.synthetic import generate

    syn = params["data"]["synthetic"]
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        print(f"{scenes} has no train/ (dvc repro preprocess makes it): generating the demo's "
              f"{syn['scenes']} synthetic scenes (seed {syn['seed']}) in {tmp}", flush=True)
        raw, out = Path(tmp, "raw"), Path(tmp, "processed")
        workers = params["data"].get("workers", 1)
        generate(raw, num_scenes=syn["scenes"], seed=syn["seed"], workers=workers, progress=False)
        preprocess(raw, out, workers=workers, progress=False, annotation=params.get("annotation"))
        yield out


def scene_view(src: Path, dst: Path, train_limit: int, val_limit: int = 1) -> int:
    """A processed-data folder of links to the first scenes of ``src``; returns the train count."""
    counts = {}
    for split, limit in (("train", train_limit), ("val", val_limit)):
        names = sorted(p.name for p in (src / split).iterdir() if p.is_dir())
        names = names[:limit] if limit else names
        (dst / split).mkdir(parents=True)
        for name in names:
            (dst / split / name).symlink_to((src / split / name).resolve(), target_is_directory=True)
        counts[split] = len(names)
    return counts["train"]


def train_once(cfg: dict, scenes: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_train_run_") as tmp:
        t, cpu = time.perf_counter(), time.process_time()
        r = run_training("finetune", cfg, TrainPaths(scenes, Path(tmp, "ck.pt"), Path(tmp, "m.pt"),
                                                     Path(tmp, "c.csv")), progress=False)
        return {**r["history"][-1], "time": time.perf_counter() - t, "cpu": time.process_time() - cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=Path, default=Path("data/processed"))
    ap.add_argument("--configs", default="demo,34C")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, from minkowski,spconv")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--scenes-limit", default="34C=8",
                    help="train scenes per config: N (all configs) or CONFIG=N,...; 0 = all (default: 34C=8)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per backend, alternating; the table shows each backend's best run")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="BLAS threads of the training process (default: params.yaml train.cpu_threads, "
                         "like torch's; 0: the library default)")
    a = ap.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    all_cfgs = configs(params)
    names = [n.strip() for n in a.configs.split(",") if n.strip()]
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    unknown = [n for n in names if n not in all_cfgs] + [b for b in backends if b not in BACKENDS]
    if a.repeat < 1 or a.epochs < 1:
        ap.error("--repeat and --epochs must be >= 1")
    if unknown or not names or not backends:
        ap.error(f"unknown config or backend {unknown}; configs: {', '.join(all_cfgs)}; "
                 f"backends: {', '.join(BACKENDS)}")
    limits = parse_limits(a.scenes_limit, names)
    start = time.perf_counter()
    for b in backends:  # load the engines (and MinkowskiEngine's OpenBLAS) before limiting BLAS threads
        get_backend(b)
    torch_threads = params["train"].get("cpu_threads") or 0
    blas_threads = torch_threads if a.blas_threads is None else a.blas_threads
    blas = contextlib.nullcontext() if not blas_threads else threadpool_limits(blas_threads, user_api="blas")
    print(f"CPU, {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}; "
          f"params.yaml model.backend: {params['model']['backend']}", flush=True)

    rows = {}
    with processed_scenes(a.scenes, params) as scenes, blas:
        n_blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default="?")
        print(f"threads: torch {torch_threads or 'default'} (train.cpu_threads), BLAS {n_blas}, "
              f"loader workers {params['train']['num_workers']}", flush=True)
        for name in names:
            base = dict(all_cfgs[name], epochs=a.epochs, val_every=10**6, loss={"type": "ce"}, device="cpu")
            with tempfile.TemporaryDirectory(prefix="bench_train_view_") as view:
                n_train = scene_view(scenes, Path(view), limits.get(name, 0))
                res = {}
                for rep in range(a.repeat):  # backends alternate, so slow spells of other work hit both
                    for backend in backends:
                        cfg = copy.deepcopy(base)
                        cfg["model"]["backend"] = backend
                        r = train_once(cfg, Path(view))
                        print(f"  {name} {backend} run {rep + 1}: {r['voxels_per_s']:,.0f} vox/s over {n_train} "
                              f"scenes; {r['time']:.0f}s wall, {r['cpu']:.0f}s CPU (training process)", flush=True)
                        if backend not in res or r["voxels_per_s"] > res[backend]["voxels_per_s"]:
                            res[backend] = r  # the best run: the one least slowed by other work
            rows[name] = (base, n_train, res)

    def cell(res, b, key, fmt):
        return format(res[b][key], fmt) if b in res else "-"

    def pair(res, key, fmt, unit=""):  # minkowski/spconv
        return f"{cell(res, 'minkowski', key, fmt)}/{cell(res, 'spconv', key, fmt)}{unit}"

    print()
    print(f"{'config':7}{'model':>14}{'voxel':>6}{'scenes':>7}{'minkowski vox/s':>17}{'spconv vox/s':>14}"
          f"{'ratio':>7}{'data wait m/s':>15}{'outside m/s':>13}{'time m/s':>11}")
    for name, (cfg, n_train, res) in rows.items():
        ratio = (f"{res['spconv']['voxels_per_s'] / res['minkowski']['voxels_per_s']:.2f}x"
                 if len(res) == 2 else "-")
        print(f"{name:7}{cfg['model']['name']:>14}{cfg['voxel_size']:>6.2f}{n_train:>7}"
              f"{cell(res, 'minkowski', 'voxels_per_s', ',.0f'):>17}{cell(res, 'spconv', 'voxels_per_s', ',.0f'):>14}"
              f"{ratio:>7}{pair(res, 'data_share', '.0%'):>15}{pair(res, 'outside_share', '.0%'):>13}"
              f"{pair(res, 'time', '.0f', 's'):>11}")
    if a.repeat > 1:
        print(f"(each backend's best of {a.repeat} runs)")
    print()
    for name, (cfg, _, res) in rows.items():
        if len(res) < 2:
            continue
        r = res["spconv"]["voxels_per_s"] / res["minkowski"]["voxels_per_s"]
        faster = "spconv" if r > 1 else "minkowski"
        if name == "demo":
            print(f"demo profile ({cfg['model']['name']}): {faster} is faster here ({r:.2f}x spconv/minkowski); "
                  f"params.yaml model.backend is {params['model']['backend']}")
        if cfg["model"]["name"] == "Res16UNet34C":
            verdict = "met" if r >= TARGET_34C else "NOT met"
            print(f"target spconv on the CPU >= {TARGET_34C}x MinkowskiEngine on Res16UNet34C ({name}): "
                  f"{r:.2f}x, {verdict}")
    print(f"total {time.perf_counter() - start:.0f}s; load average at end {os.getloadavg()[0]:.2f} "
          "(other work on the cores lowers every number)")


if __name__ == "__main__":
    main()
