"""Data-layer throughput on the synthetic ScanNet-format set (default: 40 scenes).

First the whole ``lgseg preprocess`` command on one scene (a fresh Python process: start-up and
imports included) beside a process that merely imports numpy and plyfile and reads that scene's
files (the floor; target < 2x). Then preprocessing throughput (vertices/s, 1 and 2 workers) and
its ratio to merely reading the same PLY files with plyfile (target < 2x), and evaluation throughput and its ratio to merely
parsing the same benchmark .txt files (target < 1.5x). Each timing is the best of --repeat runs.

"Merely reading with plyfile" has two honest floors, both printed: plyfile's default read
(``PlyData.read(path)``, which parses the face list one face at a time) and its fastest read
(memory-mapped, triangle faces declared, as lgseg's reader does). A third floor reads every input
a scene has (mesh, segs and aggregation JSON, meta), which preprocessing cannot avoid.

    python benchmarks/bench_data.py [--scenes 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from plyfile import PlyData

from lgseg.evaluation.benchmark import evaluate_dirs, read_benchmark_file, write_benchmark_file
from lgseg.evaluation.ground_truth import export_ground_truth
from lgseg.scannet.constants import VALID_CLASS_IDS
from lgseg.scannet.layout import LABELS_TSV, SPLIT_NAMES, scan_dir, scene_file, scene_kinds, split_list_path
from lgseg.scannet.preprocess import preprocess
from lgseg.scannet.splits import scene_splits
from lgseg.synthetic import generate

# The floor: a fresh process that imports numpy and plyfile and reads one scene's files (argv[1]).
FLOOR = """
import json, sys
from pathlib import Path
import numpy as np
from plyfile import PlyData
mesh, segs, agg, meta = map(Path, sys.argv[1:5])
ply = PlyData.read(str(mesh), known_list_len={"face": {"vertex_indices": 3}})
v = ply["vertex"].data
np.stack([v["x"], v["y"], v["z"]], 1), np.stack([v["red"], v["green"], v["blue"]], 1)
ply["face"].data["vertex_indices"]
json.loads(segs.read_bytes()), json.loads(agg.read_bytes()), meta.read_text()
"""


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def read_plys(paths: list[Path], fast: bool) -> None:
    for p in paths:
        ply = PlyData.read(str(p), known_list_len={"face": {"vertex_indices": 3}}) if fast else PlyData.read(str(p))
        v = ply["vertex"].data
        np.stack([v["x"], v["y"], v["z"]], 1), np.stack([v["red"], v["green"], v["blue"]], 1)
        ply["face"].data["vertex_indices"]


def read_all_inputs(paths: list[Path]) -> None:
    read_plys(paths, fast=True)
    for p in paths:
        for f in p.parent.iterdir():
            if f.suffix == ".json":
                json.loads(f.read_bytes())
            elif f.suffix == ".txt":
                f.read_text()


def one_scene_raw(raw: Path, out: Path) -> tuple[str, list[Path]]:
    """A raw folder holding only the first train scene of ``raw`` (and the labels tsv): its id and files."""
    scene = scene_splits(raw)["train"][0]
    src = raw / scan_dir("train") / scene
    shutil.copytree(src, out / scan_dir("train") / scene)
    shutil.copy(raw / LABELS_TSV, out / LABELS_TSV)
    for split in SPLIT_NAMES:
        split_list_path(out, split).write_text(f"{scene}\n" if split == "train" else "")
    return scene, [scene_file(src, kind) for kind in scene_kinds("train")]


def command_vs_floor(raw: Path, tmp: Path, repeat: int) -> None:
    one = tmp / "one"
    scene, files = one_scene_raw(raw, one)
    command = [sys.executable, "-m", "lgseg.cli", "preprocess", "--raw", str(one), "--out", str(tmp / "one_out")]
    # both sides with cached bytecode, as on a user's machine: numpy and plyfile got theirs when pip
    # installed them; lgseg (installed editable) gets its own at the first run, unless
    # PYTHONDONTWRITEBYTECODE (set in some sandboxes) makes it compile every module at every start
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("(PYTHONDONTWRITEBYTECODE is set here; both processes run without it, so lgseg's bytecode is cached)")
    t_cmd = best_of(repeat, lambda: subprocess.run(command, check=True, capture_output=True, env=env))
    t_floor = best_of(repeat, lambda: subprocess.run([sys.executable, "-c", FLOOR, *map(str, files)], check=True,
                                                     env=env))
    print(f"one scene ({scene}), fresh process each:\n"
          f"    lgseg preprocess (whole command)        {t_cmd:6.2f} s\n"
          f"    import numpy + plyfile, read its files  {t_floor:6.2f} s  (the floor)\n"
          f"    ratio: {t_cmd / t_floor:.2f}x the floor (target < 2x)\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        generate(tmp / "raw", num_scenes=a.scenes, seed=0, workers=2, progress=False)
        print(f"synthetic set: {a.scenes} scenes generated in {time.perf_counter() - t:.1f} s (2 workers)")
        plys = sorted((tmp / "raw").glob("scans*/*/*_vh_clean_2.ply"))
        verts = sum(PlyData.read(str(p))["vertex"].count for p in plys)
        print(f"{len(plys)} meshes, {verts:,} vertices\n")
        command_vs_floor(tmp / "raw", tmp, a.repeat)

        floors = {
            "plyfile default read": best_of(a.repeat, lambda: read_plys(plys, fast=False)),
            "plyfile fastest read": best_of(a.repeat, lambda: read_plys(plys, fast=True)),
            "read all scene inputs": best_of(a.repeat, lambda: read_all_inputs(plys)),
        }
        for name, t in floors.items():
            print(f"{name:26}{verts / t:12,.0f} vertices/s   ({t:.2f} s)")
        for w in (1, 2):
            t_pre = best_of(a.repeat, lambda: preprocess(tmp / "raw", tmp / f"p{w}", workers=w, progress=False))
            ratios = ", ".join(f"{t_pre / t:.2f}x {name}" for name, t in floors.items())
            print(f"preprocess, {w} worker(s)  {verts / t_pre:12,.0f} vertices/s   ({t_pre:.2f} s)\n"
                  f"    ratio (target < 2x): {ratios}")

        gt = tmp / "gt"
        export_ground_truth(tmp / "raw", gt, split="val", progress=False)
        rng = np.random.default_rng(0)
        txts = sorted(gt.glob("*.txt"))
        for p in txts:  # a random prediction per vertex, as a method would submit
            n = len(read_benchmark_file(p))
            write_benchmark_file(tmp / "pred" / p.name, rng.choice(VALID_CLASS_IDS, n))
        points = sum(len(read_benchmark_file(p)) for p in txts)
        files = txts + sorted((tmp / "pred").glob("*.txt"))
        # the baseline is our own (fast, vectorised) parser: evaluation should cost little more
        t_parse = best_of(a.repeat, lambda: [read_benchmark_file(p) for p in files])
        t_eval = best_of(a.repeat, lambda: evaluate_dirs(tmp / "pred", gt, progress=False))
        print(f"\nparse benchmark .txt only {points / t_parse:12,.0f} vertices/s   ({t_parse:.3f} s, "
              f"{len(files)} files)")
        print(f"evaluate (pred vs gt)     {points / t_eval:12,.0f} vertices/s   ({t_eval:.3f} s)  "
              f"ratio to parsing: {t_eval / t_parse:.2f}x (target < 1.5x)")


if __name__ == "__main__":
    main()
