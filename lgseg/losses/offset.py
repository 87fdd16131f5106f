"""The instance task's offset loss (PointGroup's, which CSC and the authors' instance code use).

Every voxel of an object predicts a vector towards the centroid of its object's voxels (metres).
Over the valid voxels V (those of an instance; wall, floor and unlabelled voxels have none)::

    norm      = sum_{i in V} |pred_i - gt_i|_1 / (|V| + 1e-6)
    direction = sum_{i in V} -cos(pred_i, gt_i) / (|V| + 1e-6),  cos = <p, g> / ((|p| + 1e-8)(|g| + 1e-8))
    loss      = norm_weight * norm + direction_weight * direction

The epsilons are PointGroup's. The semantic term of the task (the configured fine-tuning loss) is
added by the task, not here.
"""

from __future__ import annotations

from torch import Tensor, nn

from lgseg.losses.registry import LOSSES


def _weight(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


@LOSSES.register("offset")
class OffsetLoss(nn.Module):
    """``loss(pred (M, 3), target (M, 3), valid (M,) bool) -> scalar``; ``parts(...)`` gives the two terms."""

    def __init__(self, norm_weight: float = 1.0, direction_weight: float = 1.0) -> None:
        super().__init__()
        self.norm_weight = _weight("norm_weight", norm_weight)
        self.direction_weight = _weight("direction_weight", direction_weight)

    def parts(self, pred: Tensor, target: Tensor, valid: Tensor) -> dict[str, Tensor]:
        if pred.shape != target.shape or pred.dim() != 2 or pred.shape[1] != 3 or valid.shape != pred.shape[:1]:
            raise ValueError(f"expected pred and target (M, 3) and valid (M,), got {tuple(pred.shape)}, "
                             f"{tuple(target.shape)} and {tuple(valid.shape)}")
        w = valid.to(pred.dtype)
        count = w.sum() + 1e-6
        norm = ((pred - target).abs().sum(dim=1) * w).sum() / count
        unit_pred = pred / (pred.norm(dim=1, keepdim=True) + 1e-8)
        unit_target = target / (target.norm(dim=1, keepdim=True) + 1e-8)
        direction = (-(unit_pred * unit_target).sum(dim=1) * w).sum() / count
        return {"offset_norm": norm, "offset_dir": direction}

    def forward(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        p = self.parts(pred, target, valid)
        return self.norm_weight * p["offset_norm"] + self.direction_weight * p["offset_dir"]
