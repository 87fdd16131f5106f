"""A training stage from its config: build the parts, train (resuming), save the final model.

``run_training("pretrain" | "finetune", cfg, paths)`` is what the pretrain and finetune stages
call; it works the same in one process and under ``torchrun`` (one process per device). The parts
come from ``lgseg.engine.build``; the loop is ``Trainer``, everything around it is a hook.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from lgseg.engine.build import build_hooks, build_loaders, build_network, build_task, holdout_classes, wrap_distributed
from lgseg.engine.checkpoint import load_checkpoint, save_checkpoint, save_model, seed_everything
from lgseg.engine.distributed import barrier, cleanup, init_distributed
from lgseg.engine.optim import build_optimizer, build_scheduler
from lgseg.engine.trainer import Trainer
from lgseg.errors import InputError
from lgseg.fileio import remove_stale_temporaries
from lgseg.scannet.constants import NUM_CLASSES
from lgseg.text import load_embeddings

log = logging.getLogger("lgseg.train")


@dataclass
class TrainPaths:
    processed: Path  # preprocessed scenes (train/ and val/)
    checkpoint: Path  # resumable training state, kept across interrupted runs
    model: Path  # final weights + what is needed to rebuild the network
    curve: Path  # per-epoch metrics (CSV)
    embeddings: Path | None = None  # text embeddings dir (pretraining; fine-tune head-free init)
    init: Path | None = None  # weights to start fine-tuning from: an lgseg model or the authors' checkpoint
    stats: Path | None = None  # stats.json (class counts for class-balanced losses)
    instances: Path | None = None  # instance bank (instance sampling while fine-tuning)
    val_curve: Path | None = None  # the validated epochs' metrics (CSV); None: they stay in ``curve``


def run_training(kind: str, cfg: dict, paths: TrainPaths, tracker=None, progress: bool = True) -> dict:
    """Train, resuming from ``paths.checkpoint`` when it holds an unfinished run of the same config;
    ``tracker``: where per-epoch metrics go besides the curve (anything with ``log_metrics``)."""
    if kind not in ("pretrain", "finetune"):
        raise ValueError(f"kind must be pretrain or finetune, not {kind!r}")
    dist = init_distributed(cfg.get("device", "auto"))
    if cfg.get("cpu_threads"):
        torch.set_num_threads(int(cfg["cpu_threads"]))
    try:
        seed_everything(cfg["seed"] + dist.rank)
        emb, text_meta = load_embeddings(paths.embeddings) if paths.embeddings else (None, None)
        holdout = holdout_classes(cfg.get("holdout") or []) if kind == "pretrain" else []
        model = wrap_distributed(build_network(kind, cfg, emb, text_meta, paths), dist)
        task = build_task(kind, cfg, emb, paths, holdout)
        train_loader, val_loader = build_loaders(cfg, paths, dist, train_ignore=holdout or None)
        optimizer = build_optimizer(cfg["optimizer"], model.parameters())
        scheduler = build_scheduler(cfg["scheduler"], optimizer, cfg["epochs"])
        fp = _fingerprint(kind, cfg)
        trainer = Trainer(model, task, optimizer, scheduler, train_loader, epochs=cfg["epochs"], dist=dist,
                          amp=cfg.get("amp", True), hooks=build_hooks(cfg, paths, val_loader, tracker),
                          fingerprint=fp, progress=progress)
        if dist.is_main:  # no other process writes them now
            _remove_stale_temporaries(paths)
        _maybe_resume(trainer, paths.checkpoint, fp)
        history = trainer.fit()
        if dist.is_main:
            _save_final(trainer, kind, cfg, text_meta, paths)
        barrier(dist)
        return {"history": history, "epochs": trainer.epoch, "steps": trainer.global_step}
    finally:
        cleanup(dist)


def _fingerprint(kind: str, cfg: dict) -> str:
    return hashlib.sha256(json.dumps([kind, cfg], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _save_final(trainer: Trainer, kind: str, cfg: dict, text_meta, paths: TrainPaths) -> None:
    """The model with what rebuilds it, then the checkpoint marked complete: only once the model is
    written, so a run whose model write failed (a full disk) resumes after its last epoch and just
    writes the model."""
    meta = {"kind": kind, "model": cfg["model"], "feature_dim": trainer.net.feature_dim,
            "num_classes": None if kind == "pretrain" else NUM_CLASSES,
            # a SupCon backbone was never pulled towards the text: it must not pass for a grounded one
            "text": None if cfg.get("objective", "language") != "language" and kind == "pretrain" else text_meta,
            "voxel_size": cfg["voxel_size"], "epochs": trainer.epoch, "steps": trainer.global_step}
    save_model(paths.model, trainer.net, meta)
    save_checkpoint(paths.checkpoint, trainer.state_dict(complete=True))


def _remove_stale_temporaries(paths: TrainPaths) -> None:
    """Half-written checkpoints and models of a killed earlier run; DVC would otherwise cache the ones
    in the checkpoint folder (a ``persist`` output) and restore them forever."""
    for final in (paths.checkpoint, paths.model):
        for p in remove_stale_temporaries(final):
            log.info("removed %s, left by a write killed midway", p)


def _maybe_resume(trainer: Trainer, path: Path, fingerprint: str) -> None:
    """Resume an unfinished run of the same settings. A finished run (its model written) starts anew:
    DVC deletes the model before it reruns a stage whose inputs changed, which the settings miss."""
    if not Path(path).is_file():
        return
    try:
        state = load_checkpoint(path)
    except InputError as e:
        log.warning("ignoring unreadable checkpoint (%s); starting from scratch", e)
        return
    if state.get("complete"):
        log.info("checkpoint %s is of a finished run; starting a new run", path)
    elif state.get("fingerprint") != fingerprint:
        log.info("checkpoint %s belongs to other settings; starting a new run", path)
    else:
        trainer.resume(state)
        if trainer.epoch >= trainer.epochs:
            log.info("checkpoint %s holds all %d epochs of these settings but no model was written; "
                     "writing it", path, trainer.epoch)
        else:
            log.info("resuming %s from %s at epoch %d (step %d)", trainer.task.name, path, trainer.epoch,
                     trainer.global_step)
