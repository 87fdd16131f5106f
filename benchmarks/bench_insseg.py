"""Instance segmentation throughput, measured side by side in one run.

Section "clustering": ``cluster_instances`` on one 150,000-point scene (about 80 objects whose
points a good offset head moved to within a few cm of their centres, 1 cm and 5 cm of offset
noise, and with PointGroup's dual set), one core, the mesh-vertex defaults; beside it how many
pairs a plain ``cKDTree.query_pairs`` at the same radius would list (why it is not used). The
scenes and timing are benchmarks/bench_cluster.py's.

Section "evaluation": a val-like set of instance benchmark files (default 20 scenes x 150,000
vertices, 40 GT instances of random ScanNet200 classes per scene on a floor and walls, about 50
predicted instances per scene: noisy copies of the objects, some with a wrong label, a few stray
blobs; written in the official layout, one mask file per instance). ``evaluate_instance_dirs`` is
timed against the plain per-instance loops of ``tests/evaluation/instance_reference.py`` on the same
files (the official script's structure and file reading), results asserted equal; then both on the
same arrays in memory (matching and AP without file parsing), and lgseg's evaluation against merely
parsing its files with lgseg's readers (the floor). The reference runs once (it is slow), lgseg's
timings are the best of --repeat.

    python benchmarks/bench_insseg.py [--scenes 20] [--vertices 150000] [--instances 40] [--repeat 3]

Sections are functions taking (args, tmp); ``SECTIONS`` lists them, ``--sections`` picks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lgseg.evaluation.instance_ap import evaluate_instance_dirs, evaluate_instances
from lgseg.evaluation.instance_files import (
    read_instance_gt,
    read_instance_prediction,
    write_instance_gt,
    write_instance_prediction,
)
from lgseg.fileio import atomic_dir
from lgseg.scannet.constants import INSTANCE_CLASS_IDS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_cluster
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluation"))
import instance_reference as reference  # the tests' oracle is the baseline

WALL, FLOOR = 1, 3
# long-tailed like ScanNet200 (its classes are listed roughly by frequency): chairs repeat, most classes are rare
CLASS_FREQUENCY = 1 / np.arange(1, len(INSTANCE_CLASS_IDS) + 1)
CLASS_FREQUENCY /= CLASS_FREQUENCY.sum()


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


# ---- a val-like set of files ------------------------------------------------------------------------

def val_like_scene(rng: np.random.Generator, vertices: int, instances: int) -> np.ndarray:
    """Encoded GT: a floor and 4 walls (40% of the vertices), ``instances`` objects of long-tailed random
    classes (sizes log-uniform 50..8000 vertices, some below the 100-vertex minimum), the rest unannotated.
    Vertices of an object are contiguous runs of a shuffled order (scattered over the mesh)."""
    order = rng.permutation(vertices)
    sizes = np.exp(rng.uniform(np.log(50), np.log(8000), instances)).astype(np.int64)
    structure = int(0.4 * vertices)
    sizes = np.minimum(sizes, (vertices - structure) // instances)
    gt = np.zeros(vertices, dtype=np.int64)
    cuts = np.cumsum([structure // 5] * 5)
    for k, (lo, hi) in enumerate(zip(np.r_[0, cuts[:-1]], cuts), start=1):
        gt[order[lo:hi]] = (FLOOR if k == 1 else WALL) * 1000 + k
    start = structure
    labels = rng.choice(INSTANCE_CLASS_IDS, instances, p=CLASS_FREQUENCY)
    for k, (size, label) in enumerate(zip(sizes, labels), start=6):
        gt[order[start:start + size]] = label * 1000 + k
        start += size
    return gt


def val_like_predictions(rng: np.random.Generator, gt: np.ndarray):
    """About 1.2 noisy copies per object (10-40% of its vertices dropped, a few stray ones added), 15% of
    them with a random label, plus 4 stray blobs; random confidences."""
    n = len(gt)
    objects = [i for i in np.unique(gt).tolist() if i // 1000 not in (0, WALL, FLOOR)]
    masks, labels = [], []
    for inst in objects:
        for _ in range(rng.choice([0, 1, 1, 1, 2, 2])):
            mask = (gt == inst) & (rng.random(n) > rng.uniform(0.1, 0.4))
            mask[rng.integers(0, n, int(mask.sum() * 0.05))] = True
            masks.append(mask)
            labels.append(inst // 1000 if rng.random() < 0.85 else rng.choice(INSTANCE_CLASS_IDS))
    for _ in range(4):
        mask = np.zeros(n, dtype=bool)
        mask[rng.integers(0, n, rng.integers(100, 3000))] = True
        masks.append(mask)
        labels.append(rng.choice(INSTANCE_CLASS_IDS))
    return np.array(masks), np.array(labels, dtype=np.int64), rng.random(len(masks))


def write_val_like(folder: Path, scenes: int, vertices: int, instances: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = [f"scene{i:04d}_00" for i in range(scenes)]
    with atomic_dir(folder / "gt") as gt_dir, atomic_dir(folder / "pred") as pred_dir:
        for scene in names:
            gt = val_like_scene(rng, vertices, instances)
            write_instance_gt(gt_dir / f"{scene}.txt", gt)
            write_instance_prediction(pred_dir, scene, *val_like_predictions(rng, gt))
    return names


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ---- sections ---------------------------------------------------------------------------------------

def evaluation(a: argparse.Namespace, tmp: Path) -> None:
    t = time.perf_counter()
    scenes = write_val_like(tmp, a.scenes, a.vertices, a.instances)
    gt_dir, pred_dir = tmp / "gt", tmp / "pred"
    masks = len(list((pred_dir / "pred_mask").iterdir()))
    print(f"evaluation: {a.scenes} scenes x {a.vertices:,} vertices, {masks} predicted instances "
          f"({masks / a.scenes:.0f} per scene), {folder_size(tmp) / 2**20:.0f} MiB of files, "
          f"written in {time.perf_counter() - t:.1f} s")

    def parse() -> list:
        out = []
        for s in scenes:
            gt = read_instance_gt(gt_dir / f"{s}.txt", s)
            out.append((gt, read_instance_prediction(pred_dir, s, gt.size)))
        return out

    t_ref, ap_ref = best_of(1, lambda: reference.evaluate_dirs(pred_dir, gt_dir, scenes))
    t_ours, result = best_of(a.repeat, lambda: evaluate_instance_dirs(pred_dir, gt_dir, progress=False))
    np.testing.assert_allclose(result.ap, ap_ref, rtol=0, atol=1e-12, equal_nan=True)
    t_parse, arrays = best_of(a.repeat, parse)
    in_memory = [(gt, reference.in_memory(s, p.masks, p.label_ids, p.scores)) for s, (gt, p) in zip(scenes, arrays)]
    t_ref_mem, ap_ref_mem = best_of(1, lambda: reference.evaluate(in_memory))
    t_mem, result_mem = best_of(a.repeat, lambda: evaluate_instances(arrays))
    np.testing.assert_array_equal(result_mem.ap, result.ap)
    np.testing.assert_allclose(ap_ref_mem, ap_ref, rtol=0, atol=0, equal_nan=True)
    s = result.summary()["all"]
    print(f"    (AP {s['ap']:.2f}, AP50 {s['ap50']:.2f}, AP25 {s['ap25']:.2f}; identical per class and overlap)")
    print(f"    files -> AP, reference loops (official reading)  {t_ref:8.2f} s\n"
          f"    files -> AP, evaluate_instance_dirs              {t_ours:8.2f} s   {t_ref / t_ours:6.1f}x faster")
    print(f"    arrays -> AP, reference loops                    {t_ref_mem:8.2f} s\n"
          f"    arrays -> AP, evaluate_instances                 {t_mem:8.2f} s   {t_ref_mem / t_mem:6.1f}x faster")
    print(f"    parse the files only (lgseg's readers)           {t_parse:8.2f} s   evaluate_instance_dirs is "
          f"{t_ours / t_parse:.2f}x the parsing\n")


def clustering(a: argparse.Namespace, tmp: Path) -> None:
    """Clustering one 150k-point scene on one core (benchmarks/bench_cluster.py's scenes and timing)."""
    from bench_cluster import main as cluster_main

    cluster_main(["--points", str(a.vertices), "--repeats", str(max(a.repeat, 3))])
    print()


# the benchmark's sections in the order they run
SECTIONS = {"clustering": clustering, "evaluation": evaluation}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--vertices", type=int, default=150_000)
    ap.add_argument("--instances", type=int, default=40, help="GT objects per scene")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    for name in a.sections:
        with tempfile.TemporaryDirectory(prefix=f"bench_insseg_{name}_") as tmp:
            SECTIONS[name](a, Path(tmp))


if __name__ == "__main__":
    main()
