"""Optimiser and learning-rate schedule from params (the reference: SGD + MultiStepLR per epoch)."""

from __future__ import annotations

from typing import Iterable

import torch


def build_optimizer(cfg: dict, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``{"type": "sgd", "lr", "momentum", "dampening", "weight_decay", "nesterov"}``."""
    cfg = dict(cfg)
    kind = cfg.pop("type", "sgd")
    if kind == "sgd":
        allowed = {"lr", "momentum", "dampening", "weight_decay", "nesterov"}
    elif kind == "adamw":
        allowed = {"lr", "weight_decay", "betas"}
    else:
        raise ValueError(f"optimizer.type must be one of sgd, adamw, not {kind!r}")
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(f"optimizer keys {sorted(unknown)} are not valid for {kind}; allowed: {sorted(allowed)}")
    return torch.optim.SGD(params, **cfg) if kind == "sgd" else torch.optim.AdamW(params, **cfg)


def build_scheduler(cfg: dict, optimizer: torch.optim.Optimizer, epochs: int):
    """Stepped once per epoch. ``multistep``: milestones (epochs) and gamma; ``poly``: power."""
    cfg = dict(cfg)
    kind = cfg.pop("type", "multistep")
    if kind == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.get("milestones", [])),
                                                    gamma=float(cfg.get("gamma", 0.1)))
    if kind == "poly":
        power = float(cfg.get("power", 0.9))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: max(0.0, 1 - e / max(epochs, 1)) ** power)
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    raise ValueError(f"scheduler.type must be one of multistep, poly, constant, not {kind!r}")
