"""What a training stage optimises and predicts, separate from the loop that runs it.

Pretraining: the network outputs a feature per voxel, trained towards its class's text anchor;
prediction = the nearest anchor by cosine (a zero-shot readout). SupCon pretraining (Table 1's
baseline): the same features trained by supervised contrast among voxels, no text, so no class
readout (``readout`` None: validation skips it). Fine-tuning: the network outputs class logits;
prediction = argmax.
"""

from __future__ import annotations

import torch
from torch import nn

from lgseg.losses import ContrastiveLanguageLoss, nearest_anchor


class PretrainTask:
    """``class_groups``: named class sets whose mean IoU validation also reports (``val_miou_<name>``),
    e.g. the classes held out of pretraining, read out zero-shot through their text anchors."""

    name = "pretrain"
    readout = "the nearest of the text anchors"

    def __init__(self, loss: ContrastiveLanguageLoss, anchors: torch.Tensor, class_groups: dict | None = None):
        self.loss_fn, self.anchors = loss, anchors
        self.class_groups = dict(class_groups or {})

    def to(self, device: torch.device) -> "PretrainTask":
        self.anchors = self.anchors.to(device)
        return self

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out.float(), self.anchors, labels)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return nearest_anchor(out.float(), self.anchors)


class SupConPretrainTask:
    """Supervised contrastive pretraining: no text anchors, so nothing to read classes out with."""

    name = "pretrain"
    readout = None
    no_readout = ("supcon pretraining learns features without text anchors: the zero-shot readout "
                  "(nearest text anchor) has no meaning for them, so validation is skipped")
    class_groups: dict = {}

    def __init__(self, loss: nn.Module):
        self.loss_fn = loss

    def to(self, device: torch.device) -> "SupConPretrainTask":
        return self

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out.float(), labels)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(self.no_readout)


class FinetuneTask:
    name = "finetune"
    readout = "argmax of the class logits"
    class_groups: dict = {}

    def __init__(self, loss: nn.Module):
        self.loss_fn = loss

    def to(self, device: torch.device) -> "FinetuneTask":
        self.loss_fn = self.loss_fn.to(device)
        return self

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out.float(), labels)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=1)
