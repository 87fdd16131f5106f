"""Language-grounded pre-training loss: pull point features onto their class's text anchor.

Every point i with label y_i (not ignored) is compared by cosine similarity with the text
embedding (anchor) t_{y_i} of its class and with M anchors t_{n_i1..n_iM} of other classes,
sampled uniformly with replacement from the C - 1 classes != y_i (paper Sec. 3.1, eqs. 1-3)::

    pos_i = max(0, 1 - cos(f_i, t_{y_i}) - t_pos)
    "reference":  neg_i = max(0, t_neg - (1 - mean_j cos(f_i, t_{n_ij})))   # authors' code
    "paper":      neg_i = mean_j max(0, t_neg - (1 - cos(f_i, t_{n_ij})))   # paper's eq. 2
    loss_i = pos_i + neg_weight * neg_i

"reference" averages over all N points (ignored ones count as 0, as the authors' code did);
"paper" averages over the labelled points only. Features and anchors are L2-normalised here,
so their scale never matters. Zero-shot readout: the class of the most similar anchor.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lgseg.losses.registry import LOSSES
from lgseg.scannet.constants import IGNORE_INDEX

FORMS = ("reference", "paper")
#: rows per chunk in cosine_logits / nearest_anchor: bounds temporaries at N=1M points
CHUNK_ROWS = 65536


def _zero_with_grad(x: Tensor) -> Tensor:
    """A scalar 0 whose grad_fn reaches ``x`` (summing an empty slice: no 0 * inf = nan risk)."""
    return x.reshape(-1)[:0].sum()


def _check_pair(feats: Tensor, anchors: Tensor) -> None:
    if feats.dim() != 2 or anchors.dim() != 2 or feats.shape[1] != anchors.shape[1]:
        raise ValueError(
            f"feats must be (N, D) and anchors (C, D) with the same D, "
            f"got {tuple(feats.shape)} and {tuple(anchors.shape)}"
        )


def cosine_logits(feats: Tensor, anchors: Tensor, chunk_rows: int = CHUNK_ROWS) -> Tensor:
    """Cosine similarity matrix (N, C): ``cos(f_i, t_c)``, computed ``chunk_rows`` rows at a time.

    Only one chunk of normalised features exists at once; the (N, C) result is the only full-size
    allocation. Differentiable (slice writes are recorded by autograd).
    """
    _check_pair(feats, anchors)
    t = F.normalize(anchors, dim=1)
    dtype = torch.promote_types(feats.dtype, t.dtype)
    out = feats.new_empty((feats.shape[0], t.shape[0]), dtype=dtype)
    for s in range(0, feats.shape[0], chunk_rows):
        out[s : s + chunk_rows] = F.normalize(feats[s : s + chunk_rows], dim=1).to(dtype) @ t.T.to(dtype)
    return out


@torch.no_grad()
def nearest_anchor(feats: Tensor, anchors: Tensor, chunk_rows: int = CHUNK_ROWS) -> Tensor:
    """Zero-shot prediction (N,) int64: index of the anchor most cosine-similar to each feature.

    Chunked: never holds more than ``chunk_rows`` x C similarities. Feature norms do not change
    the argmax, so only anchors are normalised (an all-zero feature predicts class 0).
    """
    _check_pair(feats, anchors)
    t = F.normalize(anchors, dim=1).T.to(feats.dtype)
    out = torch.empty(feats.shape[0], dtype=torch.long, device=feats.device)
    for s in range(0, feats.shape[0], chunk_rows):
        out[s : s + chunk_rows] = (feats[s : s + chunk_rows] @ t).argmax(dim=1)
    return out


def sample_negatives(
    labels: Tensor, num_classes: int, num_negatives: int, generator: torch.Generator | None = None
) -> Tensor:
    """(N, M) class indices drawn uniformly with replacement from the C - 1 classes != labels[i].

    Draw r in 0..C-2 and shift r >= y up by one: a bijection onto {0..C-1} minus {y}, so every
    other class has probability 1 / (C - 1), independently per point and per draw.
    """
    if num_classes < 2:
        raise ValueError(f"negative sampling needs at least 2 classes, got {num_classes}")
    r = torch.randint(
        0, num_classes - 1, (labels.shape[0], num_negatives), generator=generator, device=labels.device
    )
    return r + (r >= labels.unsqueeze(1)).long()


class ContrastiveLanguageLoss(nn.Module):
    """Cosine hinge loss between point features (N, D) and class text anchors (C, D).

    Formulas in the module docstring. Defaults are the authors' (t_pos 0, t_neg 0.6, lambda 1,
    M 3, form "reference").
    """

    def __init__(
        self,
        t_pos: float = 0.0,
        t_neg: float = 0.6,
        neg_weight: float = 1.0,
        num_negatives: int = 3,
        form: str = "reference",
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        for name, value in (("t_pos", t_pos), ("t_neg", t_neg), ("neg_weight", neg_weight)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, not {value!r}")
        if neg_weight < 0:
            raise ValueError(f"neg_weight must be >= 0, not {neg_weight!r}")
        if (isinstance(num_negatives, bool) or not isinstance(num_negatives, numbers.Integral)
                or num_negatives < 1):
            raise ValueError(f"num_negatives must be an integer >= 1, not {num_negatives!r}")
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
        self.t_pos, self.t_neg, self.neg_weight = float(t_pos), float(t_neg), float(neg_weight)
        self.num_negatives, self.form, self.ignore_index = int(num_negatives), form, ignore_index

    def extra_repr(self) -> str:
        return (f"t_pos={self.t_pos}, t_neg={self.t_neg}, neg_weight={self.neg_weight}, "
                f"num_negatives={self.num_negatives}, form={self.form!r}")

    def forward(
        self,
        feats: Tensor,
        anchors: Tensor,
        labels: Tensor,
        negatives: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Scalar loss. ``negatives`` (N, M) fixes the negative classes (rows of ignored points are
        not read); otherwise they are sampled with ``generator``."""
        _check_pair(feats, anchors)
        if labels.shape != (feats.shape[0],):
            raise ValueError(f"labels must be (N,) = ({feats.shape[0]},), got {tuple(labels.shape)}")
        num_classes = anchors.shape[0]
        valid = labels != self.ignore_index
        y = labels[valid].long()
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(f"labels must be {self.ignore_index} or 0..{num_classes - 1}")
        if y.numel() == 0:
            return _zero_with_grad(feats)
        if negatives is None:
            neg = sample_negatives(y, num_classes, self.num_negatives, generator)
        else:
            if negatives.dim() != 2 or negatives.shape[0] != feats.shape[0]:
                raise ValueError(f"negatives must be (N, M), got {tuple(negatives.shape)}")
            neg = negatives[valid].long()

        # One (n, C) similarity matrix, then gathers: cheaper than (n, M, D) anchor copies when
        # C (200) < M * D (3 * 512).
        sims = F.normalize(feats[valid], dim=1) @ F.normalize(anchors, dim=1).T.to(feats.dtype)
        cos_pos = sims.gather(1, y.unsqueeze(1)).squeeze(1)
        cos_neg = sims.gather(1, neg)  # (n, M)
        pos = torch.clamp(1.0 - cos_pos - self.t_pos, min=0.0)
        if self.form == "reference":
            neg_term = torch.clamp(self.t_neg - (1.0 - cos_neg.mean(dim=1)), min=0.0)
            denom = feats.shape[0]  # ignored points dilute the mean, as in the authors' code
        else:
            neg_term = torch.clamp(self.t_neg - (1.0 - cos_neg), min=0.0).mean(dim=1)
            denom = y.numel()
        return (pos + self.neg_weight * neg_term).sum() / denom


@LOSSES.register("contrastive")
def _build_contrastive(t_pos: float = 0.0, t_neg: float = 0.6, neg_weight: float = 1.0,
                       num_negatives: int = 3, form: str = "reference") -> ContrastiveLanguageLoss:
    """Language-grounded pre-training loss (called with feats, anchors, labels)."""
    return ContrastiveLanguageLoss(t_pos=t_pos, t_neg=t_neg, neg_weight=neg_weight,
                                   num_negatives=num_negatives, form=form)
