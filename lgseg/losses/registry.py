"""Build a loss from its params.yaml section, e.g. ``{"type": "cb_focal", "gamma": 2.0}``.

The generic ``Registry`` lives in ``lgseg.registry``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lgseg.losses.contrastive import ContrastiveLanguageLoss
from lgseg.losses.focal import CrossEntropy, FocalLoss, class_balanced_alpha
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


def build_loss(cfg: Mapping[str, Any], class_counts: Sequence[int] | None = None) -> nn.Module:
    """The loss described by ``cfg`` (params.yaml); ``class_counts`` is needed by "cb_focal".

    One params.yaml section serves every type, so the options of other loss types (``gamma`` when
    the type is ``ce``) are left unused; a key that no loss type takes is still an error.
    """
    if isinstance(cfg, Mapping) and cfg.get("type") in LOSSES.keys():
        accepted = set(LOSSES.cfg_keys(cfg["type"]))
        others = {k for t in LOSSES.keys() for k in LOSSES.cfg_keys(t)} - accepted
        cfg = {k: v for k, v in cfg.items() if k not in others}
    return LOSSES.build(cfg, class_counts=class_counts)
