"""ScanNet v2's raw layout: the one place that names the files of a download.

``<raw>/scans/<scene>/`` (train and val scenes) or ``<raw>/scans_test/<scene>/`` (test scenes) holds
``<scene>_vh_clean_2.ply`` (mesh), ``<scene>_vh_clean_2.0.010000.segs.json`` (segment per vertex),
``<scene>.aggregation.json`` (objects; annotated scenes only) and ``<scene>.txt`` (metadata), and where the RGB-D stream is there, ``<scene>.sens`` (its frames,
``lgseg.frames.sens``) with ScanNet's 2D projections of the annotation,
``<scene>_2d-label-filt.zip`` (``label-filt/<frame>.png``: 16-bit, the ScanNet label id of each
pixel, 0 none) and ``<scene>_2d-instance-filt.zip`` (``instance-filt/<frame>.png``: 8-bit, the
instance id, 0 none); ``<raw>/scannetv2-labels.combined.tsv`` maps raw categories to ids and
``<raw>/scannetv2_<split>.txt`` lists a split's scenes. The reader (``raw``), the linker (``link``),
the split lists (``splits``), the synthetic generator and the tests build paths only from here.
"""

from __future__ import annotations

from pathlib import Path

from lgseg.errors import InputError
from lgseg.scannet.constants import check_scene_id

SPLIT_NAMES = ("train", "val", "test")  # ScanNet's scene splits (not the head/common/tail class splits)
SCAN_DIRS = ("scans", "scans_test")
LABELS_TSV = "scannetv2-labels.combined.tsv"

_SCENE_FILES = {"mesh": "{scene}_vh_clean_2.ply", "segs": "{scene}_vh_clean_2.0.010000.segs.json",
                "aggregation": "{scene}.aggregation.json", "meta": "{scene}.txt",
                # the RGB-D stream and the annotation's 2D projections: optional (not every download has them)
                "sens": "{scene}.sens", "label_images": "{scene}_2d-label-filt.zip",
                "instance_images": "{scene}_2d-instance-filt.zip"}
FRAME_FILES = ("sens", "label_images", "instance_images")  # what a scene with RGB-D frames adds
LABEL_IMAGE_DIR, INSTANCE_IMAGE_DIR = "label-filt", "instance-filt"  # the folders inside those zips
ANNOTATED_FILES = ("mesh", "segs", "aggregation", "meta")  # what a train or val scene has
TEST_FILES = ("mesh", "meta")  # test scenes come without annotations


def scan_dir(split: str) -> str:
    """``scans`` for train and val scenes, ``scans_test`` for test scenes."""
    return SCAN_DIRS[1] if split == "test" else SCAN_DIRS[0]


def scene_kinds(split: str) -> tuple[str, ...]:
    """The kinds of file (``scene_file_name``) a scene of ``split`` has."""
    return TEST_FILES if split == "test" else ANNOTATED_FILES


def scene_file_name(scene: str, kind: str) -> str:
    """Name of one of a scene's files: kind in {"mesh", "segs", "aggregation", "meta", "sens",
    "label_images", "instance_images"}."""
    return _SCENE_FILES[kind].format(scene=scene)


def scene_file(scene_dir: Path, kind: str) -> Path:
    """Path of one of the files in a scene folder (named by its scene id)."""
    return scene_dir / scene_file_name(scene_dir.name, kind)


def split_list_path(raw_dir: str | Path, split: str) -> Path:
    return Path(raw_dir) / f"scannetv2_{split}.txt"


def find_scene_dir(raw_dir: str | Path, scene: str) -> Path:
    """The folder of ``scene`` under ``scans/`` or ``scans_test/``."""
    check_scene_id(scene)
    raw_dir = Path(raw_dir)
    for sub in SCAN_DIRS:
        if (raw_dir / sub / scene).is_dir():
            return raw_dir / sub / scene
    raise InputError(raw_dir / SCAN_DIRS[0] / scene, "scene folder not found",
                     f"expected it under {raw_dir}/scans/ or {raw_dir}/scans_test/", scene=scene)
