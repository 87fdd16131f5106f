"""Hooks own what happens around the loop (validation, checkpoints, curves, logging), Pointcept-style.

A hook implements any of ``before_train(trainer)``, ``after_epoch(trainer, logs)``,
``after_train(trainer)`` and ``on_exception(trainer, exc)``; the trainer calls them in list order
(validation first, so the others see its ``val_*`` keys). A hook whose ``main_only`` is true runs on
rank 0 alone: it writes files or talks to a tracker; one that takes part in collectives sets it false.

Hooks are ``HOOKS`` entries built from ``{"type": ...}``; what they act on (paths, the validation
loader, a tracker) is run-time context passed to ``HOOKS.build``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import torch
from tqdm import tqdm

from lgseg.engine.checkpoint import save_checkpoint
from lgseg.engine.distributed import all_reduce_sum
from lgseg.evaluation.metrics import SegmentationMetrics, chance_iou, class_scores, percent_mean
from lgseg.fileio import atomic_file
from lgseg.registry import Registry

log = logging.getLogger("lgseg.train")

HOOKS = Registry("hook")


class Hook:
    main_only = True

    def before_train(self, trainer) -> None: ...
    def after_epoch(self, trainer, logs: dict) -> None: ...
    def after_train(self, trainer) -> None: ...
    def on_exception(self, trainer, exc: BaseException) -> None: ...


@HOOKS.register("validation")
class ValidationHook(Hook):
    """Every ``every`` epochs and after the last: mIoU on the validation loader (all, 200-class,
    head/common/tail, and the task's ``class_groups``) added to the epoch's logs. Every rank
    validates its shard; the confusion matrices are summed across ranks.

    A class group ``<name>`` (e.g. the classes held out of pretraining) logs ``val_miou_<name>``,
    the mean IoU of its classes present in val, and ``val_miou_<name>_chance``, the same mean for a
    readout picking uniformly among all classes on the same voxels (``chance_iou``). A task without
    a class readout (``readout`` None: SupCon pretraining) is not validated; the log says why."""

    main_only = False

    def __init__(self, *, loader, every: int = 1):
        self.loader, self.every = loader, max(1, every)

    def before_train(self, trainer) -> None:
        if self.loader is not None and getattr(trainer.task, "readout", "") is None:
            log.info("%s: no validation: %s", trainer.task.name, getattr(trainer.task, "no_readout", "no readout"))

    def after_epoch(self, trainer, logs: dict) -> None:
        if getattr(trainer.task, "readout", "") is None:
            return
        if self.loader is not None and (trainer.epoch % self.every == 0 or trainer.epoch == trainer.epochs):
            logs.update(self.validate(trainer))

    @torch.no_grad()
    def validate(self, trainer) -> dict:
        trainer.net.eval()
        metrics = SegmentationMetrics()
        for batch in tqdm(self.loader, desc=f"{trainer.task.name} val", unit="scene", disable=not trainer.progress,
                          leave=False):
            coords, feats = trainer.inputs(batch)
            with trainer.autocast():
                # the unwrapped net: DDP's forward broadcasts buffers, a collective that would hang
                # when processes hold different numbers of validation scenes
                out = trainer.net(coords, feats)
            metrics.update(batch["label"].numpy(), trainer.task.predict(out).cpu().numpy(), scenes=len(batch["scenes"]))
        metrics.confusion = all_reduce_sum(metrics.confusion, trainer.dist)
        s = metrics.summary()
        logs = {"val_miou": s["all"]["miou"], "val_miou_200": s["all"]["miou_200"]}
        for split in ("head", "common", "tail"):
            logs[f"val_miou_{split}"] = s[split]["miou"]
        iou, chance = class_scores(metrics.confusion)["iou"], chance_iou(metrics.confusion)
        present = metrics.confusion.sum(axis=1) > 0
        for name, classes in getattr(trainer.task, "class_groups", {}).items():
            in_val = [c for c in classes if present[c]]  # both means over the group's classes present in val
            logs[f"val_miou_{name}"] = percent_mean(iou[in_val])
            logs[f"val_miou_{name}_chance"] = percent_mean(chance[in_val])
        return {k: (math.nan if v is None else v) for k, v in logs.items()}


@HOOKS.register("checkpoint")
class CheckpointHook(Hook):
    """Save the full training state after every epoch (atomically), so a rerun resumes. Whoever writes
    the run's final outputs marks it complete afterwards (``state_dict(complete=True)``)."""

    def __init__(self, *, path: str | Path):
        self.path = Path(path)

    def after_epoch(self, trainer, logs: dict) -> None:
        save_checkpoint(self.path, trainer.state_dict())


@HOOKS.register("curve")
class CurveHook(Hook):
    """Per-epoch metrics as CSV files (DVC plots), rewritten from the trainer's history each epoch.

    With ``val_path``: ``path`` holds every epoch's training numbers (loss, lr, steps, throughput)
    and ``val_path`` the validated epochs alone with their ``val_*`` numbers, so that no plot of
    either draws an epoch without validation (an empty cell, which charts read as 0). Without it,
    ``path`` holds everything, validation cells empty in the epochs between validations."""

    def __init__(self, *, path: str | Path, val_path: str | Path | None = None):
        self.path, self.val_path = Path(path), (Path(val_path) if val_path is not None else None)

    @staticmethod
    def _write(path: Path, rows: list[dict], first: tuple[str, ...] = ("epoch",)) -> None:
        keys = list(dict.fromkeys([*first, *(k for row in rows for k in row)]))
        buf = io.StringIO()
        w = csv.DictWriter(buf, keys, lineterminator="\n")
        w.writeheader()
        w.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
        with atomic_file(path) as f:
            f.write(buf.getvalue())

    def after_epoch(self, trainer, logs: dict) -> None:
        self.write(trainer)

    def after_train(self, trainer) -> None:
        # again at the end: a run resumed after its last epoch (its model write had failed) has no
        # epoch left, and DVC deleted the curves before rerunning the stage
        self.write(trainer)

    def write(self, trainer) -> None:
        if self.val_path is None:
            self._write(self.path, trainer.history)
            return
        self._write(self.path, [{k: v for k, v in h.items() if not k.startswith("val_")} for h in trainer.history])
        self._write(self.val_path, [{k: v for k, v in h.items() if k == "epoch" or k.startswith("val_")}
                                    for h in trainer.history if _defined(h.get("val_miou"))], ("epoch", "val_miou"))


def _defined(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _cell(v):
    """An undefined number (NaN: e.g. a class group absent from val) as an empty cell."""
    return v if _defined(v) else ""


@HOOKS.register("log")
class LogHook(Hook):
    """One line per epoch in the log."""

    def after_epoch(self, trainer, logs: dict) -> None:
        parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items()]
        log.info("%s epoch %d/%d: %s", trainer.task.name, logs["epoch"], trainer.epochs, " ".join(parts[1:]))


@HOOKS.register("tracking")
class TrackingHook(Hook):
    """Per-epoch metrics to an experiment tracker (anything with ``log_metrics(dict, step)``), the
    epoch as the step. A resumed run sends its earlier epochs first, so its curves are whole."""

    def __init__(self, *, tracker=None):
        self.tracker = tracker  # None: no tracker for this run, nothing to do

    def _log(self, logs: dict) -> None:
        if self.tracker is not None:
            self.tracker.log_metrics({k: v for k, v in logs.items() if k != "epoch"}, step=logs["epoch"])

    def before_train(self, trainer) -> None:
        for logs in trainer.history:
            self._log(logs)

    def after_epoch(self, trainer, logs: dict) -> None:
        self._log(logs)
