"""A training stage from its config: build the parts, train (resuming), save the final model.

``run_training("pretrain" | "finetune", cfg, paths)`` is what the pretrain and finetune stages
call; it works the same in one process and under ``torchrun`` (one process per device). Each part
comes from a ``build_*`` function below, every configurable one a registry entry (``MODELS``,
``LOSSES``, ``OPTIMIZERS``, ``SCHEDULERS``, ``TRANSFORMS``, ``HOOKS``) built from the dicts that
``lgseg.config.training_config`` made of params.yaml; the loop is ``Trainer``, everything around
it is a hook.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader, DistributedSampler

from lgseg.config import PRETRAIN_OBJECTIVES, pretrain_loss_cfg
from lgseg.data import CollateFn, ScanNetDataset
from lgseg.data.instance_sampling import InstanceSampler
from lgseg.data.instances import InstanceBank
from lgseg.engine.checkpoint import load_checkpoint, read_weights, save_checkpoint, save_model, seed_everything
from lgseg.engine.distributed import barrier, cleanup, init_distributed
from lgseg.engine.hooks import HOOKS
from lgseg.engine.optim import build_optimizer, build_scheduler
from lgseg.engine.samplers import ShardSampler
from lgseg.engine.tasks import (CSCPretrainTask, DistillPretrainTask, FinetuneTask, InstanceTask, PretrainTask,
                                SupConPretrainTask)
from lgseg.engine.trainer import Trainer
from lgseg.errors import InputError, LgsegError
from lgseg.fileio import DiskFullError, WriteError, remove_stale_temporaries
from lgseg.losses import LOSSES
from lgseg.models import build_model, transfer_weights
from lgseg.scannet.constants import NUM_CLASSES, class_indices
from lgseg.text import load_embeddings
from lgseg.text.embed import check_compatible

log = logging.getLogger("lgseg.train")


KINDS = ("pretrain", "finetune", "insseg")  # insseg: the instance task (semantic logits + offsets)


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
    lifted: Path | None = None  # lifted 2D features (pretraining's distill objective: lgseg.engine.lift)


def run_training(kind: str, cfg: dict, paths: TrainPaths, tracker=None, progress: bool = True,
                 write_outputs: Callable[[dict], None] | None = None) -> dict:
    """Train, resuming from ``paths.checkpoint`` when it holds an unfinished run of the same config;
    ``tracker``: where per-epoch metrics go besides the curve (anything with ``log_metrics``).
    ``write_outputs(result)``: the caller's own outputs (its metrics file), written after the model and
    before the run is marked complete, so a failure there is also finished by a rerun, not retrained."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    dist = init_distributed(cfg.get("device", "auto"))
    if cfg.get("cpu_threads"):
        torch.set_num_threads(int(cfg["cpu_threads"]))
    try:
        seed_everything(cfg["seed"] + dist.rank)
        emb, text_meta = load_embeddings(paths.embeddings) if paths.embeddings else (None, None)
        holdout = holdout_classes(cfg.get("holdout") or []) if kind == "pretrain" else []
        model = wrap_distributed(build_network(kind, cfg, emb, text_meta, paths), dist)
        task = build_task(kind, cfg, emb, paths, holdout)
        objective = cfg.get("objective") if kind == "pretrain" else None
        train_loader, val_loader = build_loaders(cfg, paths, dist, train_ignore=holdout or None,
                                                 instance_targets=kind == "insseg", two_views=objective == "csc",
                                                 lifted=lifted_targets(paths) if objective == "distill" else None)
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
        result = {"history": history, "epochs": trainer.epoch, "steps": trainer.global_step}
        if dist.is_main:
            _save_final(trainer, kind, cfg, text_meta, paths, lambda: write_outputs and write_outputs(result))
        barrier(dist)
        return result
    finally:
        cleanup(dist)


def _fingerprint(kind: str, cfg: dict) -> str:
    return hashlib.sha256(json.dumps([kind, cfg], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _save_final(trainer: Trainer, kind: str, cfg: dict, text_meta, paths: TrainPaths,
                write_outputs: Callable[[], None]) -> None:
    """The model with what rebuilds it and the caller's outputs (the curves are written by their hook
    at the end of ``fit``), then the checkpoint marked complete. Only the checkpoint folder survives
    DVC's rerun of the stage (``persist``): everything else is rewritten from it, so a run whose
    model or metrics write failed (a full disk, no permission) resumes after its last epoch and
    only writes them."""
    meta = {"kind": kind, "task": "instance" if kind == "insseg" else "semantic", "model": cfg["model"],
            "feature_dim": trainer.net.feature_dim,
            "num_classes": None if kind == "pretrain" else NUM_CLASSES,
            # a backbone never pulled towards the text (SupCon, CSC, distilled from a teacher outside the
            # anchors' space) must not pass for a grounded one: only a backbone with a readout keeps it
            "text": text_meta if kind != "pretrain" or getattr(trainer.task, "readout", None) else None,
            "voxel_size": cfg["voxel_size"], "epochs": trainer.epoch, "steps": trainer.global_step}
    try:
        save_model(paths.model, trainer.net, meta)
        write_outputs()
    except (DiskFullError, WriteError) as e:
        raise LgsegError(f"{e}. The training state of all {trainer.epoch} epochs is kept in "
                         f"{paths.checkpoint}: the rerun resumes there and only writes the outputs") from None
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
            log.info("checkpoint %s holds all %d epochs of these settings but its outputs were not all "
                     "written; writing them", path, trainer.epoch)
        else:
            log.info("resuming %s from %s at epoch %d (step %d)", trainer.task.name, path, trainer.epoch,
                     trainer.global_step)


# The parts of a run, each from its config entry. Hooks in calling order: validation first, so the
# others see its val_* keys; tracking does nothing without a tracker.
DEFAULT_HOOKS = ({"type": "validation"}, {"type": "log"}, {"type": "checkpoint"}, {"type": "curve"},
                 {"type": "tracking"})


def holdout_classes(names) -> list[int]:
    """Class indices of ``pretrain.holdout`` (class names), for zero-shot evaluation."""
    try:
        return class_indices(names)
    except ValueError as e:
        raise LgsegError(f"params.yaml: pretrain.holdout: {e}") from None


def build_network(kind: str, cfg: dict, emb, text_meta, paths) -> torch.nn.Module:
    """Pretraining: a feature per voxel, as wide as the text embeddings. Fine-tuning: 200 logits (and
    for the instance task, offsets), from ``paths.init``'s weights when given (with its feature layer
    when there are text embeddings; the heads a checkpoint lacks start fresh)."""
    if kind == "pretrain":
        dim = distill_space(paths)[0] if cfg.get("objective") == "distill" else emb.shape[1]
        return build_model(cfg["model"], feature_dim=dim, num_classes=None)
    feature_dim = emb.shape[1] if (paths.init and emb is not None) else None
    model = build_model(cfg["model"], feature_dim=feature_dim, num_classes=NUM_CLASSES, offsets=kind == "insseg")
    if paths.init:
        state, pre_meta = read_weights(paths.init)
        if text_meta is not None and (pre_meta or {}).get("text") is not None:  # same text space
            check_compatible(pre_meta["text"], text_meta, "pretrained model", "text embeddings")
        transfer_weights(model, state, logger=log)
    return model


def build_task(kind: str, cfg: dict, emb, paths, holdout: list[int]):
    """What the stage optimises and predicts. Pretraining, by ``pretrain.objective``: ``language``, the
    contrastive loss towards the text anchors (read out zero-shot by the nearest anchor; the
    held-out classes as a class group); ``supcon``, supervised contrast among voxels, no text and no
    readout; ``csc``, contrast between two views of each scene, no labels, no text, no readout.
    Fine-tuning: its loss (class counts from stats.json for class-balanced losses); the instance
    task adds the offset loss."""
    if kind == "pretrain":
        objective = cfg.get("objective", "language")
        try:
            loss = LOSSES.build(pretrain_loss_cfg(cfg))
        except ValueError as e:  # a value check-params could not see: one line naming the section
            raise LgsegError(f"params.yaml: pretrain.{PRETRAIN_OBJECTIVES[objective][0]}: {e}") from None
        if objective in ("supcon", "csc"):
            return (SupConPretrainTask if objective == "supcon" else CSCPretrainTask)(loss)
        if objective == "distill":  # read out through the anchors only where the teacher's space is theirs
            dim, text = distill_space(paths)
            anchors_meta = load_embeddings(paths.embeddings)[1] if emb is not None else {}
            readable = text is not None and emb is not None and dim == emb.shape[1] and \
                all(text.get(k) == anchors_meta.get(k) for k in ("encoder", "model", "dim"))
            return DistillPretrainTask(loss, torch.from_numpy(emb) if readable else None)
        return PretrainTask(loss, torch.from_numpy(emb), class_groups={"holdout": holdout} if holdout else None)
    counts = json.loads(Path(paths.stats).read_text())["train_points"] if paths.stats else None
    semantic = LOSSES.build(cfg["loss"], class_counts=counts)
    if kind == "insseg":
        return InstanceTask(semantic, LOSSES.build(cfg["offset_loss"]))
    return FinetuneTask(semantic)


def lifted_targets(paths):
    from lgseg.engine.lift import LiftedTargets

    return LiftedTargets(Path(paths.lifted) / "train")


def distill_space(paths) -> tuple[int, dict | None]:
    """The lifted features' width and text space (None: not the anchors'), from ``paths.lifted``."""
    from lgseg.engine.lift import check_lifted, lifted_meta

    if paths.lifted is None:
        raise LgsegError("pretrain.objective is distill but the stage was given no lifted 2D features")
    check_lifted(paths.lifted, "train")
    meta = lifted_meta(paths.lifted)
    return int(meta["dim"]), meta.get("text")


def build_loaders(cfg: dict, paths, dist, train_ignore=None, instance_targets: bool = False,
                  two_views: bool = False, lifted=None):
    """Train and val loaders; ``train_ignore``: classes whose train labels are hidden (val keeps them);
    ``instance_targets``: training items carry the instance task's targets; ``two_views``: a training
    item is two views of its scene (CSC); ``lifted``: training items carry their lifted 2D features
    (distillation)."""
    augment = dict(cfg["augment"])
    translation = augment.pop("random_translation", 100)
    common = dict(voxel_size=cfg["voxel_size"], seed=cfg["seed"])
    train_set = ScanNetDataset(paths.processed, "train", transforms_cfg=augment, train=True,
                               voxel_point=cfg["voxel_point"],
                               random_translation=translation, instance_sampler=_instance_sampler(cfg, paths),
                               ignore_classes=train_ignore, instance_targets=instance_targets,
                               two_views=two_views, lifted=lifted, **common)
    val_set = ScanNetDataset(paths.processed, "val", train=False, **common)
    sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                 seed=cfg["seed"], drop_last=False)
    workers = cfg["num_workers"]
    # workers are not persistent: each epoch's fresh workers see the dataset's new epoch (augmentation seed)
    train = DataLoader(train_set, batch_size=cfg["batch_size"], sampler=sampler, num_workers=workers,
                       collate_fn=CollateFn(cfg["max_points"]), pin_memory=dist.device.type == "cuda",
                       worker_init_fn=_single_blas_thread)
    val = DataLoader(val_set, batch_size=1, sampler=ShardSampler(len(val_set), dist.rank, dist.world_size),
                     num_workers=workers, collate_fn=CollateFn(None), worker_init_fn=_single_blas_thread)
    return train, val


def _instance_sampler(cfg: dict, paths):
    opts = dict(cfg.get("instance_sampling") or {})
    if not opts.pop("enabled", False):
        return None
    if paths.instances is None:
        raise InputError(None, "instance_sampling.enabled is true but this stage has no instance bank")
    opts.pop("classes", None)  # chose the bank's contents at preprocessing
    bank = InstanceBank(paths.instances)
    try:
        return InstanceSampler(bank, resolution=cfg["voxel_size"], **opts)
    except (TypeError, ValueError) as e:  # unknown key or bad value
        raise LgsegError(f"params.yaml: instance_sampling: {e}") from None


def _single_blas_thread(_worker_id: int) -> None:
    # loader workers run numpy on small arrays; BLAS threads there only fight the training process
    torch.set_num_threads(1)
    threadpool_limits(1)


def wrap_distributed(model: torch.nn.Module, dist) -> torch.nn.Module:
    """On ``dist.device``; under torchrun, DistributedDataParallel (synchronised BNs on GPUs)."""
    model.backbone.backend.check_device(dist.device)
    model = model.to(dist.device)
    if dist.distributed:
        if dist.device.type == "cuda":  # spconv's BNs are torch BatchNorm1d (MinkowskiEngine: CPU only)
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    return model


def build_hooks(cfg: dict, paths, val_loader, tracker=None) -> list:
    """``cfg["hooks"]`` (default ``DEFAULT_HOOKS``) with what they act on: the run's files, the
    validation loader, the tracker."""
    context = dict(loader=val_loader, every=cfg["val_every"], tracker=tracker, val_path=paths.val_curve)
    paths_of = {"checkpoint": paths.checkpoint, "curve": paths.curve}
    return [HOOKS.build(h, path=paths_of.get(h.get("type")), **context) for h in cfg.get("hooks", DEFAULT_HOOKS)]
