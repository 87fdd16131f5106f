"""Losses: language-grounded contrastive pre-training, (class-balanced) focal and cross entropy."""

from lgseg.losses.contrastive import (
    ContrastiveLanguageLoss,
    cosine_logits,
    nearest_anchor,
    sample_negatives,
)
from lgseg.losses.focal import CrossEntropy, FocalLoss, class_balanced_alpha
from lgseg.losses.registry import LOSSES, Registry, build_loss

__all__ = [
    "LOSSES",
    "ContrastiveLanguageLoss",
    "CrossEntropy",
    "FocalLoss",
    "Registry",
    "build_loss",
    "class_balanced_alpha",
    "cosine_logits",
    "nearest_anchor",
    "sample_negatives",
]
