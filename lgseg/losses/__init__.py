"""Losses: language-grounded contrastive pre-training, supervised contrastive pre-training (SupCon,
no text), CSC, 2D-to-3D distillation, (class-balanced) focal and cross entropy, instance offsets."""

# importing a module registers its loss types; focal first, so that error messages list
# fine-tuning's types (ce, focal, cb_focal) before pretraining's (contrastive, supcon)
from lgseg.losses.focal import CrossEntropy, FocalLoss, class_balanced_alpha
from lgseg.losses.contrastive import (
    ContrastiveLanguageLoss,
    cosine_logits,
    nearest_anchor,
    sample_negatives,
)
from lgseg.losses.registry import LOSSES, Registry
from lgseg.losses.supcon import SupConLoss, supcon_loss
from lgseg.losses.csc import CSCLoss, csc_partitions, sample_anchors
from lgseg.losses.distill import DistillLoss
from lgseg.losses.offset import OffsetLoss

__all__ = [
    "CSCLoss",
    "DistillLoss",
    "LOSSES",
    "OffsetLoss",
    "ContrastiveLanguageLoss",
    "CrossEntropy",
    "FocalLoss",
    "Registry",
    "SupConLoss",
    "class_balanced_alpha",
    "cosine_logits",
    "csc_partitions",
    "nearest_anchor",
    "sample_anchors",
    "sample_negatives",
    "supcon_loss",
]
