"""Preprocessing as both the preprocess stage and ``lgseg preprocess`` run it: raw ScanNet ->
processed scenes and stats.json (``lgseg.scannet.preprocess``), then, when asked, the instance bank
of the train scenes (``lgseg.data.instances``), and a summary of the result.

Torch is never imported here: the bank's module is imported only when a bank is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lgseg.scannet.preprocess import PreprocessReport, preprocess
from lgseg.scene_io import read_stats


@dataclass
class Prepared:
    report: PreprocessReport
    bank: dict | None  # the bank's meta (``export_instance_bank``), None without a bank


def prepare(raw: str | Path, out: str | Path, *, workers: int = 1, keep_going: bool = False,
            annotation: dict | None = None, bank: str | Path | None = None, bank_classes: Sequence[int] = (),
            progress: bool = True) -> Prepared:
    """Preprocess every listed scene of ``raw`` into ``out``; with ``bank``, also export the instances
    of ``bank_classes`` (class indices) found in the train scenes there."""
    report = preprocess(raw, out, workers=workers, keep_going=keep_going, annotation=annotation, progress=progress)
    meta = None
    if bank is not None:
        from lgseg.data.instances import export_instance_bank

        meta = export_instance_bank(out, bank, bank_classes, progress=progress)
    return Prepared(report, meta)


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
