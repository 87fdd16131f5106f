"""Hooks own what happens around the loop (checkpoints, curves, logging), Pointcept-style.

A hook implements any of ``before_train(trainer)``, ``after_epoch(trainer, logs)``,
``after_train(trainer)`` and ``on_exception(trainer, exc)``. Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from lgseg.engine.checkpoint import save_checkpoint
from lgseg.fileio import atomic_file

log = logging.getLogger("lgseg.train")


class Hook:
    def before_train(self, trainer) -> None: ...
    def after_epoch(self, trainer, logs: dict) -> None: ...
    def after_train(self, trainer) -> None: ...
    def on_exception(self, trainer, exc: BaseException) -> None: ...


class CheckpointHook(Hook):
    """Save the full training state after every epoch (atomically), so a rerun resumes. Whoever writes
    the run's final outputs marks it complete afterwards (``state_dict(complete=True)``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def after_epoch(self, trainer, logs: dict) -> None:
        if trainer.dist.is_main:
            save_checkpoint(self.path, trainer.state_dict())


class CurveHook(Hook):
    """Per-epoch metrics as a CSV (DVC plots), rewritten from the trainer's history each epoch."""

    def __init__(self, path: str | Path):
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
        if trainer.dist.is_main:
            self._write(trainer.history)


class LogHook(Hook):
    """One line per epoch in the log."""

    def after_epoch(self, trainer, logs: dict) -> None:
        if trainer.dist.is_main:
            parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items()]
            log.info("%s epoch %d/%d: %s", trainer.task.name, logs["epoch"], trainer.epochs, " ".join(parts[1:]))


class TrackingHook(Hook):
    """Per-epoch metrics to an experiment tracker (anything with ``log_metrics(dict, step)``), the
    epoch as the step. A resumed run sends its earlier epochs first, so its curves are whole."""

    def __init__(self, tracker):
        self.tracker = tracker

    def _log(self, logs: dict) -> None:
        self.tracker.log_metrics({k: v for k, v in logs.items() if k != "epoch"}, step=logs["epoch"])

    def before_train(self, trainer) -> None:
        if trainer.dist.is_main:
            for logs in trainer.history:
                self._log(logs)

    def after_epoch(self, trainer, logs: dict) -> None:
        if trainer.dist.is_main:
            self._log(logs)
