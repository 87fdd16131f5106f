"""Ground truth in the official ScanNet200 benchmark format, straight from the raw scans."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from lgseg.evaluation.benchmark import write_benchmark_file
from lgseg.scannet.constants import index_to_raw, raw_to_index
from lgseg.scannet.labels import LabelTable, vertex_labels
from lgseg.scannet.layout import LABELS_TSV
from lgseg.scannet.raw import read_scene
from lgseg.scannet.splits import scene_splits


def export_ground_truth(raw_dir: str | Path, out_dir: str | Path, split: str = "val",
                        progress: bool = True) -> int:
    """Write ``<out>/<scene>.txt`` (raw id per mesh vertex, 0 = not one of the 200); returns #scenes."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if split == "test":
        raise ValueError("test scenes have no public annotations; export train or val")
    table = LabelTable.read(raw_dir / LABELS_TSV)
    scenes = scene_splits(raw_dir)[split]
    for scene in tqdm(scenes, desc=f"export-gt {split}", unit="scene", disable=not progress):
        raw_ids, _ = vertex_labels(read_scene(raw_dir, scene), table)
        write_benchmark_file(out_dir / f"{scene}.txt", index_to_raw(raw_to_index(raw_ids)))
    return len(scenes)
