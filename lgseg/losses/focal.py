"""Classification losses for fine-tuning, all called as ``loss(logits (N, C), labels (N,)) -> scalar``.

Focal loss as in the authors' code (paper eq. 4 plus the class weights of eq. 5), per labelled point::

    p_i    = softmax(logits_i)[y_i]
    loss_i = -alpha[y_i] * (1 - p_i)^gamma * log p_i
    loss   = mean over labelled points (not divided by sum(alpha))

Class-balanced weights (paper eq. 5): alpha_i = log(n_i) / sum_j log(n_j), n_i = train points of
class i. The authors' code loaded alpha from an external pickle (scannet200_category_weights.pkl)
whose formula is not in their repository; we implement the formula the paper states.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lgseg.losses.registry import LOSSES
from lgseg.scannet.constants import IGNORE_INDEX

ALPHA_MODES = ("paper", "uniform")


def _zero_with_grad(x: Tensor) -> Tensor:
    """A scalar 0 whose grad_fn reaches ``x``, for batches without labelled points."""
    return x.reshape(-1)[:0].sum()


def _check_inputs(logits: Tensor, labels: Tensor, ignore_index: int) -> Tensor:
    """Validate shapes/ranges; return the mask of labelled points."""
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    valid = labels != ignore_index
    y = labels[valid]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= logits.shape[1]):
        raise ValueError(f"labels must be {ignore_index} or 0..{logits.shape[1] - 1}")
    return valid


def _as_weight(name: str, weight) -> Tensor | None:
    """Class weights as a 1-D float32 tensor (None stays None)."""
    if weight is None:
        return None
    if isinstance(weight, Tensor):
        w = weight.detach().float()
    else:
        w = torch.tensor(np.asarray(weight, dtype=np.float32))
    if w.dim() != 1 or not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{name} must be a 1-D sequence of finite weights >= 0")
    return w


def class_balanced_alpha(counts: Sequence[int] | np.ndarray | Tensor, mode: str = "paper") -> Tensor:
    """Per-class focal weights (C,) float32 from per-class train point counts.

    ``"paper"``: eq. 5, alpha_i = log(n_i) / sum_j log(n_j), summing to 1. As written, frequent
    classes get the *larger* weights (log grows with n); we keep that. ``"uniform"``: all ones.

    n_i = 0 or 1 would give log(n_i) = -inf or 0; we use log(max(n_i, 1)), i.e. weight 0. Such a
    class has (at most one) training point, so no choice could teach it anything; 0 keeps every
    weight finite and >= 0 and the others exactly as eq. 5 computes them.
    """
    if mode not in ALPHA_MODES:
        raise ValueError(f"alpha mode must be one of {', '.join(ALPHA_MODES)}, not {mode!r}")
    n = torch.as_tensor(np.asarray(counts.cpu() if isinstance(counts, Tensor) else counts, dtype=np.float64))
    if n.dim() != 1 or n.numel() == 0:
        raise ValueError(f"class counts must be a non-empty 1-D list, got shape {tuple(n.shape)}")
    if not torch.isfinite(n).all() or (n < 0).any():
        raise ValueError("class counts must be finite and >= 0")
    if mode == "uniform":
        return torch.ones(n.numel(), dtype=torch.float32)
    logs = torch.log(torch.clamp(n, min=1.0))
    total = float(logs.sum())
    if total <= 0.0:
        raise ValueError("class counts must have at least one class with more than 1 point")
    return (logs / total).float()


class FocalLoss(nn.Module):
    """Focal loss with optional per-class alpha; formulas in the module docstring.

    gamma = 0 and alpha = None give plain (mean) cross entropy. Stable: uses log_softmax and
    p = exp(log p). All points ignored -> 0 with a grad_fn.
    """

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | Tensor | None = None,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        bad = isinstance(gamma, bool) or not isinstance(gamma, numbers.Real)
        if bad or not math.isfinite(gamma) or gamma < 0:
            raise ValueError(f"gamma must be a number >= 0, not {gamma!r}")
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.register_buffer("alpha", _as_weight("alpha", alpha))

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={'None' if self.alpha is None else f'({self.alpha.numel()},)'}"

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        valid = _check_inputs(logits, labels, self.ignore_index)
        if self.alpha is not None and self.alpha.numel() != logits.shape[1]:
            raise ValueError(
                f"alpha has {self.alpha.numel()} entries but logits have {logits.shape[1]} classes"
            )
        y = labels[valid].long()
        if y.numel() == 0:
            return _zero_with_grad(logits)
        logp = F.log_softmax(logits[valid], dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
        ce = -logp if self.alpha is None else -self.alpha.to(logp.dtype)[y] * logp
        if self.gamma == 0.0:  # skip (1 - p)^0: its gradient at p = 1 would be 0 * inf
            return ce.mean()
        return ((1.0 - logp.exp()).clamp(min=0.0).pow(self.gamma) * ce).mean()


class CrossEntropy(nn.Module):
    """``F.cross_entropy`` with ignore_index -1 and optional class weights, same call as FocalLoss.

    With weights, torch's mean divides by the summed weights of the labelled points (the usual
    weighted CE). All points ignored -> 0 with a grad_fn (torch would return nan).
    """

    def __init__(
        self, weight: Sequence[float] | Tensor | None = None, ignore_index: int = IGNORE_INDEX
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("weight", _as_weight("weight", weight))

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        valid = _check_inputs(logits, labels, self.ignore_index)
        if not bool(valid.any()):
            return _zero_with_grad(logits)
        weight = None if self.weight is None else self.weight.to(logits.dtype)
        return F.cross_entropy(logits, labels.long(), weight=weight, ignore_index=self.ignore_index)


# params.yaml's loss types; a builder's arguments are the type's keys (lgseg.registry)
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
