"""Benchmark folders, what each holds: semantic and instance ground truth and predictions read
alike (integers per line), so a product mark (``lgseg.fileio``) tells them apart, and this module
says which entries each consists of and which folder a command may write its predictions into.
Torch-free: ``lgseg predict`` checks its ``--out`` here before the model loads."""

from __future__ import annotations

import os
from pathlib import Path

from lgseg.errors import InputError
from lgseg.fileio import PRODUCT_MARK, check_not_an_input, product_of
from lgseg.scannet.constants import is_scene_id
from lgseg.scannet.splits import scene_folders

SEMANTIC_GT, INSTANCE_GT = "semantic ground truth", "instance ground truth"
SEMANTIC_PRED, INSTANCE_PRED = "semantic predictions", "instance predictions"
GT_OF = {"semantic": SEMANTIC_GT, "instance": INSTANCE_GT}
PRED_OF = {"semantic": SEMANTIC_PRED, "instance": INSTANCE_PRED}
PRED_MASK_DIR = "pred_mask"  # the subfolder lgseg (like ScanNet's export_instance_ids_for_eval) writes masks to


def is_scene_file(entry: Path) -> bool:
    """Whether ``entry`` of a benchmark folder is one of the files it consists of: ``<scene id>.txt``."""
    return entry.suffix == ".txt" and is_scene_id(entry.stem) and entry.is_file()


def entry_problem(path: Path) -> str | None:
    """None when ``path`` is a regular file (links followed), else what is wrong: "missing", or what
    stands there instead ("a folder, not a file", "a FIFO, not a file", ...)."""
    if not os.path.lexists(path):
        return "missing"
    if not path.exists():
        return "missing (a link to nothing)"
    if path.is_file():
        return None
    return ("a folder" if path.is_dir() else "a FIFO" if path.is_fifo() else "a special file") + ", not a file"


def check_folder_holds(folder: Path, product: str, option: str) -> None:
    """Refuse a folder whose mark says it holds another product than ``product`` (the other task's
    ground truth, predictions given as ground truth, ...); an unmarked folder is not judged here."""
    found = product_of(folder)
    if found is not None and found != product:
        task = "instance" if product in (INSTANCE_GT, INSTANCE_PRED) else "semantic"
        raise InputError(folder, f"holds {found}, not the {product} {option} takes here",
                         f"pass the folder of {product} (--task {task}), or the --task its files are for")


def claim_predictions(out_dir: str | Path, processed: str | Path, split: str, task: str = "semantic",
                      force: bool = False) -> None:
    """Before predicting ``split`` of ``processed`` into ``out_dir``: refuse a folder that is or holds
    an input, holds another product (ground truth, the other task's predictions: their marks),
    holds entries other than this split's prediction files, or holds prediction files without
    lgseg's mark (ground truth written by ScanNet's or Pointcept's scripts, or copied without its
    mark, reads like predictions): those are replaced only with ``force``."""
    out_dir = Path(out_dir)
    product = PRED_OF[task]
    check_not_an_input(out_dir, [processed])
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "not a folder", f"pass a folder for the {product}")
    if not out_dir.is_dir():
        return
    found = product_of(out_dir)
    if found is not None and found != product:
        raise InputError(out_dir, f"holds {found}: writing predictions there would replace it",
                         "pass another --out for the predictions")
    ours = {f"{s}.txt" for s in scene_folders(Path(processed) / split)}
    entries = sorted(out_dir.iterdir())
    others = [p.name for p in entries if not ((p.name in ours and p.is_file()) or p.name == PRODUCT_MARK
                                              or (task == "instance" and p.name == PRED_MASK_DIR and p.is_dir()))]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        what = "predictions" if task == "semantic" else product
        raise InputError(out_dir, f"holds entries other than the {split} split's {what} ({shown})",
                         f"pass a new or empty folder: it must end up holding exactly the split's {what}")
    if found is None and entries and not force:
        raise InputError(out_dir, f"holds {len(entries)} file(s) of this split's scenes without lgseg's mark of "
                         f"{product} (ground truth from ScanNet's or Pointcept's scripts, or copied?): writing there "
                         "would replace them", "pass a new or empty --out, or --force if they may be replaced")
