"""2D-to-3D feature distillation (OpenScene's, Peng et al. CVPR 2023): every voxel that some RGB-D
frame sees is pulled towards the 2D teacher's feature fused onto it (``lgseg.lifting``); no 3D label
is read. Over the voxels V with a target::

    "cosine" (OpenScene's default):  loss = 1/|V| sum_{i in V} (1 - cos(f_i, t_i))
    "l1":                            loss = 1/|V| sum_{i in V} |f_i - t_i|_1 / D

Targets are not normalised for "l1" (the fused mean of unit features is shorter than 1 where views
disagree); the cosine form ignores their norm. A batch without any target gives 0 with a grad_fn.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lgseg.losses.registry import LOSSES

FORMS = ("cosine", "l1")


class DistillLoss(nn.Module):
    """``loss(feats (M, D), targets (M, D), has_target (M,) bool) -> scalar``."""

    def __init__(self, form: str = "cosine") -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
        self.form = form

    def extra_repr(self) -> str:
        return f"form={self.form!r}"

    def forward(self, feats: Tensor, targets: Tensor, has_target: Tensor) -> Tensor:
        if feats.dim() != 2 or feats.shape != targets.shape or has_target.shape != feats.shape[:1]:
            raise ValueError(f"expected feats and targets (M, D) and has_target (M,), got {tuple(feats.shape)}, "
                             f"{tuple(targets.shape)} and {tuple(has_target.shape)}")
        f, t = feats[has_target], targets[has_target].to(feats.dtype)
        if len(f) == 0:
            return feats.reshape(-1)[:0].sum()
        if self.form == "cosine":
            return (1.0 - F.cosine_similarity(f, t, dim=1, eps=1e-8)).mean()
        return (f - t).abs().mean()


@LOSSES.register("distill")
def _build_distill(form: str = "cosine") -> DistillLoss:
    """2D-to-3D distillation pretraining (called with feats, targets, has_target)."""
    return DistillLoss(form=form)
