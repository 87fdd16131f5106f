"""Which scenes belong to train / val / test."""

from __future__ import annotations

from pathlib import Path

from lgseg.scannet.constants import official_scene_list

SPLIT_NAMES = ("train", "val", "test")


def split_list_path(raw_dir: str | Path, split: str) -> Path:
    return Path(raw_dir) / f"scannetv2_{split}.txt"


def scene_splits(raw_dir: str | Path) -> dict[str, list[str]]:
    """The split lists found in ``raw_dir`` (synthetic data brings its own), else the official ones."""
    local = {s: split_list_path(raw_dir, s) for s in SPLIT_NAMES}
    if any(p.is_file() for p in local.values()):
        return {s: _read_list(p) if p.is_file() else [] for s, p in local.items()}
    return {s: official_scene_list(s) for s in SPLIT_NAMES}


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
