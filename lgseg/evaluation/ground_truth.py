"""Ground truth in the official ScanNet200 benchmark formats, straight from the raw scans: semantic
(a raw id per vertex) and instance (label id * 1000 + instance id per vertex,
``lgseg.evaluation.instance_files``)."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.evaluation.benchmark import write_benchmark_file
from lgseg.evaluation.folders import INSTANCE_GT, SEMANTIC_GT, is_scene_file
from lgseg.evaluation.instance_files import encode_instance_gt, write_instance_gt
from lgseg.fileio import atomic_dir, claim_folder, mark_product
from lgseg.scannet.constants import index_to_raw, raw_to_index
from lgseg.scannet.labels import LabelTable, vertex_labels
from lgseg.scannet.layout import LABELS_TSV, find_scene_dir, scene_file
from lgseg.scannet.raw import read_scene
from lgseg.scannet.splits import scene_splits


def export_ground_truth(raw_dir: str | Path, out_dir: str | Path, split: str = "val",
                        progress: bool = True) -> int:
    """Write ``<out>/<scene>.txt`` (raw id per mesh vertex, 0 = not one of the 200); the folder is
    replaced as a whole, and only if it holds nothing but earlier ground truth. Returns #scenes."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if split == "test":
        raise ValueError("test scenes have no public annotations; export train or val")
    claim_folder(out_dir, SEMANTIC_GT, inputs=[raw_dir], owns=is_scene_file)
    table = LabelTable.read(raw_dir / LABELS_TSV)
    scenes = scene_splits(raw_dir)[split]
    with atomic_dir(out_dir) as tmp:
        for scene in tqdm(scenes, desc=f"export-gt {split}", unit="scene", disable=not progress):
            raw_ids, _ = vertex_labels(read_scene(raw_dir, scene), table)
            write_benchmark_file(tmp / f"{scene}.txt", index_to_raw(raw_to_index(raw_ids)))
        mark_product(tmp, SEMANTIC_GT)
    return len(scenes)


def export_instance_ground_truth(raw_dir: str | Path, out_dir: str | Path, split: str = "val",
                                 progress: bool = True) -> int:
    """``<out_dir>/<scene>.txt`` for every scene of the split list, from the raw scans' segments and
    aggregation (what ``lgseg.evaluation.instance_files.instance_gt_from_processed`` writes from
    their preprocessed folders); the folder is replaced as a whole, and only if it holds nothing but
    earlier instance ground truth. Returns #scenes."""
    if split == "test":
        raise ValueError("test scenes have no public annotations; export train or val")
    raw_dir = Path(raw_dir)
    claim_folder(out_dir, INSTANCE_GT, inputs=[raw_dir], owns=is_scene_file)
    table = LabelTable.read(raw_dir / LABELS_TSV)
    scenes = scene_splits(raw_dir)[split]
    with atomic_dir(out_dir) as tmp:
        mark_product(tmp, INSTANCE_GT)
        for scene in tqdm(scenes, desc=f"export-instance-gt {split}", unit="scene", disable=not progress):
            raw_ids, instance = vertex_labels(read_scene(raw_dir, scene), table)
            try:
                values = encode_instance_gt(raw_to_index(raw_ids), instance)
            except ValueError as e:
                aggregation = scene_file(find_scene_dir(raw_dir, scene), "aggregation")
                raise InputError(aggregation, str(e), "the benchmark format cannot hold this scene",
                                 scene=scene) from None
            write_instance_gt(tmp / f"{scene}.txt", values)
    return len(scenes)
