"""Use a user's ScanNet v2 download in place: check it is complete, then link what we read."""

from __future__ import annotations

import os
from pathlib import Path

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir
from lgseg.scannet.constants import official_scene_list
from lgseg.scannet.layout import (FRAME_FILES, LABELS_TSV, SPLIT_NAMES, scan_dir, scene_file, scene_kinds,
                                  split_list_path)


def expected_files(root: Path) -> dict[str, list[Path]]:
    """Every file the pipeline reads, per split, for the official scene lists."""
    out = {}
    for split in SPLIT_NAMES:
        out[split] = [scene_file(root / scan_dir(split) / s, k)
                      for s in official_scene_list(split) for k in scene_kinds(split)]
    return out


def link_scannet(root: str | Path, out: str | Path) -> int:
    """Symlink the needed files of every official scene from ``root`` into ``out``; returns #files.

    A scene's RGB-D stream and 2D projections (``FRAME_FILES``) are linked too where the download has
    them (the image side reads them; most downloads leave out the 1.2 TB of streams). Raises InputError
    listing what is missing, before anything is written.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputError(root, "ScanNet root does not exist",
                         "set data.scannet_root in params.yaml to the folder that holds scans/")
    files = expected_files(root)
    wanted = [root / LABELS_TSV] + [f for fs in files.values() for f in fs]
    missing = [f for f in wanted if not f.is_file()]
    if missing:
        shown = "\n".join(f"  {f}" for f in missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(root, f"{len(missing)} of {len(wanted)} required files are missing",
                         "Download them with ScanNet's download script (file types _vh_clean_2.ply, "
                         "_vh_clean_2.0.010000.segs.json, .aggregation.json, .txt, and the label tsv). "
                         f"Missing:\n{shown}{more}")
    optional = [f for split in SPLIT_NAMES for s in official_scene_list(split)
                for f in (scene_file(root / scan_dir(split) / s, k) for k in FRAME_FILES) if f.is_file()]
    wanted += optional
    with atomic_dir(out) as tmp:
        for f in wanted:
            link = tmp / f.relative_to(root)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(f, link)
        for split in SPLIT_NAMES:
            split_list_path(tmp, split).write_text("\n".join(official_scene_list(split)) + "\n")
    return len(wanted)
