"""Preprocessing as both the preprocess stage and ``lgseg preprocess`` run it: raw ScanNet ->
processed scenes and stats.json (``lgseg.scannet.preprocess``), then, when asked, the instance bank
of the train scenes (``lgseg.data.instances``), and a summary of the result. ``prepare_processed``
starts instead from a folder already in the processed layout (Pointcept's own preprocessing), and
``ground_truth_from_processed`` writes the benchmark's ground truth from such a folder's labels.

Torch is never imported here: the bank's module is imported only when a bank is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from lgseg.evaluation.benchmark import write_benchmark_file
from lgseg.evaluation.folders import SEMANTIC_GT, is_scene_file
from lgseg.fileio import atomic_dir, claim_folder, mark_product
from lgseg.scannet.constants import index_to_raw
from lgseg.scannet.preprocess import PreprocessReport, import_processed, preprocess
from lgseg.scannet.splits import scene_folders, scene_path
from lgseg.scene_io import read_array, read_stats, split_dir, stats_path


@dataclass
class Prepared:
    report: PreprocessReport
    bank: dict | None  # the bank's meta (``export_instance_bank``), None without a bank


def prepare(raw: str | Path, out: str | Path, *, workers: int = 1, keep_going: bool = False,
            annotation: dict | None = None, bank: str | Path | None = None, bank_classes: Sequence[int] = (),
            progress: bool = True) -> Prepared:
    """Preprocess every listed scene of ``raw`` into ``out``; with ``bank``, also export the instances
    of ``bank_classes`` (class indices) found in the train scenes there."""
    _claim(out, bank, raw)
    _mark(out)
    report = preprocess(raw, out, workers=workers, keep_going=keep_going, annotation=annotation, progress=progress)
    return Prepared(report, _bank(out, bank, bank_classes, progress))


def prepare_processed(src: str | Path, out: str | Path, *, workers: int = 1, keep_going: bool = False,
                      annotation: dict | None = None, bank: str | Path | None = None,
                      bank_classes: Sequence[int] = (), progress: bool = True) -> Prepared:
    """``prepare`` from ``src``, a folder in the processed layout (Pointcept's ScanNet200 preprocessing,
    int64 or int16 labels): its scenes checked and copied into ``out`` with the stats.json lgseg
    needs, limited annotations and the instance bank as ``prepare`` makes them."""
    _claim(out, bank, src)
    _mark(out)
    report = import_processed(src, out, workers=workers, keep_going=keep_going, annotation=annotation,
                              progress=progress)
    return Prepared(report, _bank(out, bank, bank_classes, progress))


PROCESSED, BANK = "processed scenes", "an instance bank"  # product marks (lgseg.fileio.claim_folder)


def _claim(out, bank, source) -> None:
    """Refuse a ``--out`` or ``--bank`` that is the source, holds it, or holds another product."""
    claim_folder(out, PROCESSED, inputs=[source], looks_like=lambda d: stats_path(d).is_file())
    if bank is not None:
        claim_folder(bank, BANK, inputs=[source, out], option="--bank",
                     looks_like=lambda d: (Path(d) / "meta.json").is_file())


def _mark(out: str | Path) -> None:
    """Mark ``out`` before the first scene is written (scenes appear one by one, stats.json last): a
    run that fails midway leaves a folder its rerun accepts, not an unmarked one it refuses."""
    Path(out).mkdir(parents=True, exist_ok=True)
    mark_product(out, PROCESSED)


def _bank(out: str | Path, bank: str | Path | None, classes: Sequence[int], progress: bool) -> dict | None:
    if bank is None:
        return None
    from lgseg.data.instances import export_instance_bank  # torch: only when a bank is written

    return export_instance_bank(out, bank, classes, progress=progress)


def ground_truth_from_processed(processed: str | Path, out: str | Path, split: str = "val",
                                progress: bool = True) -> int:
    """``<out>/<scene>.txt`` in the benchmark's format for every scene of ``processed/<split>``: each
    vertex's class index as its raw ScanNet id (one of the 200 valid ids; 0 for ignore), what
    ``lgseg.evaluation.ground_truth.export_ground_truth`` writes from raw scans; the folder is
    replaced as a whole, and only if it holds nothing but earlier ground truth. Returns #scenes."""
    if split == "test":
        raise ValueError("test scenes have no public annotations; export train or val")
    claim_folder(out, SEMANTIC_GT, inputs=[processed], owns=is_scene_file)
    folder = split_dir(processed, split)
    scenes = scene_folders(folder)
    with atomic_dir(out) as tmp:
        for scene in tqdm(scenes, desc=f"export-gt {split}", unit="scene", disable=not progress):
            segment = read_array(folder / scene, "segment200", scene)
            write_benchmark_file(scene_path(tmp, scene, ".txt"), index_to_raw(segment))
        mark_product(tmp, SEMANTIC_GT)
    return len(scenes)


def summary(out: str | Path, bank: dict | None = None) -> dict:
    """What a preprocessed folder holds, from its stats.json (and the bank's meta): the preprocess
    stage's metrics."""
    stats = read_stats(out)
    labelled = sum(stats["train_points"])
    result = {
        "scenes": stats["scenes"],
        "vertices": stats["vertices"],
        "train_labelled_fraction": round(labelled / max(stats["vertices"]["train"], 1), 4),
        "train_classes_present": sum(p > 0 for p in stats["train_points"]),
    }
    if bank is not None:
        result.update(bank_instances=bank["instances"], bank_classes=len(bank["per_class"]))
    return result
