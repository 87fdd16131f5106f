"""Supervised contrastive pre-training (SupCon, Khosla et al. 2020): the paper's Table 1 baseline that
learns from the same labelled voxels as the language-grounded loss, but without text.

Per batch, S labelled voxels are drawn (at most ``samples``: the loss compares all S^2 pairs, so the
cap bounds memory and time), their features L2-normalised to z_i, and for every drawn voxel i (the
"anchor") with at least one other drawn voxel of its class (Khosla's L^sup_out, their eq. 2)::

    A(i)   = the other drawn voxels,  P(i) = { p in A(i) : y_p = y_i }
    loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p / T) / sum_{a in A(i)} exp(z_i.z_a / T) )
    loss   = mean of loss_i over the anchors with |P(i)| >= 1

T is the temperature. Voxels whose class is drawn once have no positive and take part only as
negatives of the others. The features are those of the network's output layer, as wide as the text
embeddings (the same network as language-grounded pre-training, so fine-tuning starts from the
same architecture); Khosla et al. add a projection head that is discarded after pre-training, this
baseline compares the output layer directly.

Sampling: ``uniform`` draws the S voxels uniformly without replacement from the batch's labelled
voxels (every voxel counts alike, as in the language-grounded loss's mean over points);
``balanced`` draws each voxel with probability proportional to 1 / (its class's voxels in the
batch), so every class present is about equally represented (rare classes get positives).

The paper's own SupCon setting is only described in words ("we sample 5 positive and 5 negative
candidates from the training scene for each source point", Sec. 5); its temperature is not given.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lgseg.losses.registry import LOSSES
from lgseg.scannet.constants import IGNORE_INDEX

SAMPLINGS = ("uniform", "balanced")


def _zero_with_grad(x: Tensor) -> Tensor:
    """A scalar 0 whose grad_fn reaches ``x`` (nothing to contrast in this batch)."""
    return x.reshape(-1)[:0].sum()


def sample_voxels(labels: Tensor, samples: int, sampling: str = "uniform",
                  generator: torch.Generator | None = None) -> Tensor:
    """Indices (S,) into ``labels`` (labelled entries only; labels >= 0), S = min(samples, labelled),
    without replacement; ``sampling`` as in the module docstring."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, not {sampling!r}")
    idx = torch.nonzero(labels >= 0, as_tuple=False).squeeze(1)
    if idx.numel() <= samples:
        return idx
    if sampling == "uniform":
        perm = torch.randperm(idx.numel(), generator=generator, device="cpu")[:samples]
        return idx[perm.to(idx.device)]
    y = labels[idx].long()
    counts = torch.bincount(y)
    weights = (1.0 / counts[y].double()).cpu()
    pick = torch.multinomial(weights, samples, replacement=False, generator=generator)
    return idx[pick.to(idx.device)]


def supcon_loss(feats: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Khosla's L^sup_out over all given voxels (no sampling, no ignore label): ``feats`` (S, D),
    ``labels`` (S,) class indices. 0 with a grad_fn when no voxel has a positive.

    Computed as loss_i = logsumexp_{a != i}(z_i.z_a / T) - (1/|P(i)|) sum_{p in P(i)} z_i.z_p / T,
    the positives' sum through class sums (z_i . (sum of its class's z) - z_i . z_i): only the
    log-sum-exp needs the S x S similarities.
    """
    z = F.normalize(feats.float(), dim=1)
    sims = (z @ z.T) / temperature
    self_mask = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    lse = torch.logsumexp(sims.masked_fill(self_mask, float("-inf")), dim=1)  # over A(i): i excluded
    _, inv = torch.unique(labels, return_inverse=True)
    class_sum = z.new_zeros((int(inv.max()) + 1 if inv.numel() else 0, z.shape[1])).index_add(0, inv, z)
    n_pos = torch.bincount(inv)[inv] - 1
    pos_sum = ((z * class_sum[inv]).sum(dim=1) - (z * z).sum(dim=1)) / temperature
    anchors = n_pos > 0
    if not bool(anchors.any()):
        return _zero_with_grad(feats)
    return (lse[anchors] - pos_sum[anchors] / n_pos[anchors]).mean()


class SupConLoss(nn.Module):
    """SupCon on at most ``samples`` labelled voxels per batch; formulas in the module docstring.

    Called as ``loss(feats (N, D), labels (N,))``; ``labels == ignore_index`` are never drawn.
    """

    def __init__(self, temperature: float = 0.1, samples: int = 2048, sampling: str = "uniform",
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
            raise ValueError(f"temperature must be a number > 0, not {temperature!r}")
        if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 2:
            raise ValueError(f"samples must be an integer >= 2, not {samples!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, not {sampling!r}")
        self.temperature, self.samples, self.sampling = float(temperature), int(samples), sampling
        self.ignore_index = ignore_index

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, samples={self.samples}, sampling={self.sampling!r}"

    def forward(self, feats: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if feats.dim() != 2 or labels.shape != (feats.shape[0],):
            raise ValueError(f"expected feats (N, D) and labels (N,), got {tuple(feats.shape)} and "
                             f"{tuple(labels.shape)}")
        valid = labels != self.ignore_index
        if bool(valid.any()) and int(labels[valid].min()) < 0:
            raise ValueError(f"labels must be {self.ignore_index} or class indices >= 0")
        masked = torch.where(valid, labels, torch.full_like(labels, -1))
        idx = sample_voxels(masked, self.samples, self.sampling, generator)
        if idx.numel() < 2:
            return _zero_with_grad(feats)
        return supcon_loss(feats[idx], labels[idx].long(), self.temperature)


@LOSSES.register("supcon")
def _build_supcon(temperature: float = 0.1, samples: int = 2048, sampling: str = "uniform") -> SupConLoss:
    """Supervised contrastive pre-training without text (called with feats, labels): Table 1's SupCon."""
    return SupConLoss(temperature=temperature, samples=samples, sampling=sampling)
