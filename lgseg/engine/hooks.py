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
from lgseg.evaluation.metrics import SegmentationMetrics, class_scores, percent_mean
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
    validates its shard; the confusion matrices are summed across ranks."""

    main_only = False

    def __init__(self, *, loader, every: int = 1):
        self.loader, self.every = loader, max(1, every)

    def after_epoch(self, trainer, logs: dict) -> None:
        if self.loader is not None and (trainer.epoch % self.every == 0 or trainer.epoch == trainer.epochs):
            logs.update(self.validate(trainer))

    @torch.no_grad()
    def validate(self, trainer) -> dict:
        trainer.net.eval()
        metrics = SegmentationMetrics()
        for batch in tqdm(self.loader, desc=f"{trainer.task.name} val", unit="scene", disable=not trainer.progress,
                          leave=False):
            coords, feats, labels = trainer.to_device(batch)
            with trainer.autocast():
                # the unwrapped net: DDP's forward broadcasts buffers, a collective that would hang
                # when processes hold different numbers of validation scenes
                out = trainer.net(coords, feats)
            metrics.update(labels.cpu().numpy(), trainer.task.predict(out).cpu().numpy(), scenes=len(batch["scenes"]))
        metrics.confusion = all_reduce_sum(metrics.confusion, trainer.dist)
        s = metrics.summary()
        logs = {"val_miou": s["all"]["miou"], "val_miou_200": s["all"]["miou_200"]}
        for split in ("head", "common", "tail"):
            logs[f"val_miou_{split}"] = s[split]["miou"]
        iou = class_scores(metrics.confusion)["iou"]
        for name, classes in getattr(trainer.task, "class_groups", {}).items():
            logs[f"val_miou_{name}"] = percent_mean(iou[list(classes)])  # classes present in val
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
    """Per-epoch metrics as a CSV (DVC plots), rewritten from the trainer's history each epoch."""

    def __init__(self, *, path: str | Path):
        self.path = Path(path)

    def _write(self, history: list[dict]) -> None:
        keys = list(dict.fromkeys(k for row in history for k in row))
        buf = io.StringIO()
        w = csv.DictWriter(buf, keys, lineterminator="\n")
        w.writeheader()
        w.writerows(history)
        with atomic_file(self.path) as f:
            f.write(buf.getvalue())

    def after_epoch(self, trainer, logs: dict) -> None:
        self._write(trainer.history)


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
