"""The ``LOSSES`` registry: each loss type's builder, its arguments the type's params keys, e.g.
``LOSSES.build({"type": "cb_focal", "gamma": 2.0}, class_counts=...)``.

The generic ``Registry`` lives in ``lgseg.registry``; params.yaml's section becomes a cfg in
``lgseg.config.loss_cfg``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lgseg.config import loss_cfg
from lgseg.losses.contrastive import ContrastiveLanguageLoss
from lgseg.losses.focal import CrossEntropy, FocalLoss, class_balanced_alpha
from lgseg.losses.supcon import SupConLoss
from lgseg.registry import Registry


LOSSES = Registry("loss")


@LOSSES.register("ce")
def _build_ce() -> CrossEntropy:
    """Unweighted cross entropy (the authors' fine-tuning default)."""
    return CrossEntropy()


@LOSSES.register("focal")
def _build_focal(gamma: float = 2.0) -> FocalLoss:
    """Focal loss without class weights."""
    return FocalLoss(gamma=gamma)


@LOSSES.register("cb_focal")
def _build_cb_focal(gamma: float = 2.0, alpha_norm: str = "sum", *,
                    class_counts: Sequence[int] | None = None) -> FocalLoss:
    """Class-balanced focal loss: alpha from paper eq. 5 on the train point counts.

    ``alpha_norm="sum"``: the weights sum to 1 as eq. 5 writes them, which makes the loss about
    1/C of cross entropy (like dividing the learning rate by C). ``"mean"``: the same relative
    weights scaled to average 1, keeping the loss on cross entropy's scale. The paper does not
    say which scale it trained with (the authors' weights came from a file not in their repo).
    """
    if class_counts is None:
        raise ValueError("needs class_counts (per-class train point counts, stats.json 'train_points')")
    if alpha_norm not in ("sum", "mean"):
        raise ValueError(f"alpha_norm must be one of sum, mean, not {alpha_norm!r}")
    alpha = class_balanced_alpha(class_counts)
    return FocalLoss(gamma=gamma, alpha=alpha * len(alpha) if alpha_norm == "mean" else alpha)


@LOSSES.register("contrastive")
def _build_contrastive(t_pos: float = 0.0, t_neg: float = 0.6, neg_weight: float = 1.0,
                       num_negatives: int = 3, form: str = "reference") -> ContrastiveLanguageLoss:
    """Language-grounded pre-training loss (called with feats, anchors, labels)."""
    return ContrastiveLanguageLoss(t_pos=t_pos, t_neg=t_neg, neg_weight=neg_weight,
                                   num_negatives=num_negatives, form=form)


@LOSSES.register("supcon")
def _build_supcon(temperature: float = 0.1, samples: int = 2048, sampling: str = "uniform") -> SupConLoss:
    """Supervised contrastive pre-training without text (called with feats, labels): Table 1's SupCon."""
    return SupConLoss(temperature=temperature, samples=samples, sampling=sampling)


def build_loss(cfg: Mapping[str, Any], class_counts: Sequence[int] | None = None) -> nn.Module:
    """The loss of params.yaml's ``loss`` section (or a ``LOSSES`` cfg); ``class_counts`` is needed by
    "cb_focal". The section keeps the other types' options (``gamma`` when the type is ``ce``):
    ``lgseg.config.loss_cfg`` drops them; a key that no loss type takes is still an error.
    """
    return LOSSES.build(loss_cfg(cfg), class_counts=class_counts)
