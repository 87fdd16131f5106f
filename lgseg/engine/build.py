"""The parts of a training run, each from its config entry: network, task, data loaders, hooks.

``lgseg.engine.launch.run_training`` puts them together; every configurable part is a registry
entry (``MODELS``, ``LOSSES``, ``OPTIMIZERS``, ``SCHEDULERS``, ``TRANSFORMS``, ``HOOKS``) built from
the dicts ``lgseg.config.training_config`` made of params.yaml.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader, DistributedSampler

from lgseg.config import loss_cfg, pretrain_loss_cfg
from lgseg.data import CollateFn, ScanNetDataset
from lgseg.data.instance_sampling import InstanceSampler
from lgseg.data.instances import InstanceBank
from lgseg.engine.checkpoint import read_weights
from lgseg.engine.hooks import HOOKS
from lgseg.engine.samplers import ShardSampler
from lgseg.engine.tasks import FinetuneTask, PretrainTask, SupConPretrainTask
from lgseg.errors import InputError, LgsegError
from lgseg.losses import LOSSES
from lgseg.models import build_model, transfer_weights
from lgseg.scannet.constants import NUM_CLASSES, class_indices
from lgseg.text.embed import check_compatible

log = logging.getLogger("lgseg.train")

# in calling order: validation first, so the others see its val_* keys; tracking does nothing
# without a tracker
DEFAULT_HOOKS = ({"type": "validation"}, {"type": "log"}, {"type": "checkpoint"}, {"type": "curve"},
                 {"type": "tracking"})


def holdout_classes(names) -> list[int]:
    """Class indices of ``pretrain.holdout`` (class names), for zero-shot evaluation."""
    try:
        return class_indices(names)
    except ValueError as e:
        raise LgsegError(f"params.yaml: pretrain.holdout: {e}") from None


def build_network(kind: str, cfg: dict, emb, text_meta, paths) -> torch.nn.Module:
    """Pretraining: a feature per voxel, as wide as the text embeddings. Fine-tuning: 200 logits, from
    ``paths.init``'s weights when given (with its feature layer when there are text embeddings)."""
    if kind == "pretrain":
        return build_model(cfg["model"], feature_dim=emb.shape[1], num_classes=None)
    feature_dim = emb.shape[1] if (paths.init and emb is not None) else None
    model = build_model(cfg["model"], feature_dim=feature_dim, num_classes=NUM_CLASSES)
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
    readout. Fine-tuning: its loss (class counts from stats.json for class-balanced losses)."""
    if kind == "pretrain":
        loss = LOSSES.build(pretrain_loss_cfg(cfg))
        if cfg.get("objective", "language") == "supcon":
            return SupConPretrainTask(loss)
        return PretrainTask(loss, torch.from_numpy(emb), class_groups={"holdout": holdout} if holdout else None)
    counts = json.loads(Path(paths.stats).read_text())["train_points"] if paths.stats else None
    return FinetuneTask(LOSSES.build(loss_cfg(cfg["loss"]), class_counts=counts))


def build_loaders(cfg: dict, paths, dist, train_ignore=None):
    """Train and val loaders; ``train_ignore``: classes whose train labels are hidden (val keeps them)."""
    augment = dict(cfg["augment"])
    translation = augment.pop("random_translation", 100)
    common = dict(voxel_size=cfg["voxel_size"], seed=cfg["seed"])
    train_set = ScanNetDataset(paths.processed, "train", transforms_cfg=augment, train=True,
                               voxel_point=cfg["voxel_point"],
                               random_translation=translation, instance_sampler=_instance_sampler(cfg, paths),
                               ignore_classes=train_ignore, **common)
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
