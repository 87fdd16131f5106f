"""Which scenes belong to train / val / test, and the paths built from scene ids."""

from __future__ import annotations

import os
from pathlib import Path

from lgseg.errors import InputError
from lgseg.fileio import read_regular
from lgseg.scannet.constants import check_scene_id, is_scene_id, official_scene_list
from lgseg.scannet.layout import SPLIT_NAMES, split_list_path

LIST_LIMIT = 1 << 20  # scannetv2_<split>.txt: at most 1,513 ids of 13 bytes
_LIST_FIX = "fix the list (one scene id per line) or recreate data/raw (dvc repro download)"


def scene_splits(raw_dir: str | Path) -> dict[str, list[str]]:
    """The split lists found in ``raw_dir`` (synthetic data brings its own), else the official ones.

    Every id is checked (``check_scene_id``); a list that exists but is no regular file is an error,
    not a missing list.
    """
    local = {s: split_list_path(raw_dir, s) for s in SPLIT_NAMES}
    present = {s: os.path.lexists(p) for s, p in local.items()}
    if any(present.values()):
        return {s: _read_list(p) if present[s] else [] for s, p in local.items()}
    return {s: official_scene_list(s) for s in SPLIT_NAMES}


def _read_list(path: Path) -> list[str]:
    try:
        text = read_regular(path, "split list", _LIST_FIX, LIST_LIMIT).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, f"not UTF-8 text ({e.reason} at byte {e.start})", _LIST_FIX) from None
    return [check_scene_id(line.strip(), path, n, _LIST_FIX)
            for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def scene_folders(parent: str | Path) -> list[str]:
    """Sorted names of the scene folders in ``parent``: only folders named by a scene id, so a
    killed run's ``.<scene>.tmp-*`` leftover (or any other folder) is never taken for a scene."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    return sorted(p.name for p in parent.iterdir() if is_scene_id(p.name) and p.is_dir())


def scene_path(base: str | Path, scene: str, suffix: str = "") -> Path:
    """``base/<scene><suffix>`` for a valid scene id; refused if it resolves outside ``base`` (a symlink)."""
    check_scene_id(scene)
    base = Path(base)
    path = base / f"{scene}{suffix}"
    if path.resolve().parent != base.resolve():
        raise InputError(path, f"leads outside {base} (a symbolic link to {path.resolve()})",
                         "remove the link: outputs are written only inside their own folder")
    return path
