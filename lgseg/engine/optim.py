"""Optimisers and learning-rate schedules, registry entries built from ``{"type": ..., **options}``.

The reference: SGD + MultiStepLR stepped once per epoch. Defaults are torch's own, so a cfg that
leaves a key out gets what ``torch.optim`` would give.
"""

from __future__ import annotations

from typing import Iterable

import torch

from lgseg.registry import Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")


@OPTIMIZERS.register("sgd")
def _sgd(lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
         nesterov: bool = False, *, params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                           nesterov=nesterov)


@OPTIMIZERS.register("adamw")
def _adamw(lr: float = 1e-3, weight_decay: float = 1e-2, betas=(0.9, 0.999), *, params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))


@SCHEDULERS.register("multistep")
def _multistep(milestones=(), gamma: float = 0.1, *, optimizer, epochs: int):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=float(gamma))


@SCHEDULERS.register("poly")
def _poly(power: float = 0.9, *, optimizer, epochs: int):
    power = float(power)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: max(0.0, 1 - e / max(epochs, 1)) ** power)


@SCHEDULERS.register("constant")
def _constant(*, optimizer, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)


def build_optimizer(cfg: dict, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``{"type": "sgd" (default) | "adamw", **options}`` over ``params``."""
    return OPTIMIZERS.build({"type": "sgd", **cfg}, params=params)


def build_scheduler(cfg: dict, optimizer: torch.optim.Optimizer, epochs: int):
    """Stepped once per epoch: ``multistep`` (default; milestones in epochs, gamma), ``poly`` (power),
    ``constant``."""
    return SCHEDULERS.build({"type": "multistep", **cfg}, optimizer=optimizer, epochs=epochs)
