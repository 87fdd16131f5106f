"""What a training stage optimises and predicts, separate from the loop that runs it.

Pretraining: the network outputs a feature per voxel, trained towards its class's text anchor;
prediction = the nearest anchor by cosine (a zero-shot readout). Fine-tuning: the network outputs
class logits; prediction = argmax.
"""

from __future__ import annotations

import torch
from torch import nn

from lgseg.losses import ContrastiveLanguageLoss, nearest_anchor


class PretrainTask:
    name = "pretrain"

    def __init__(self, loss: ContrastiveLanguageLoss, anchors: torch.Tensor):
        self.loss_fn, self.anchors = loss, anchors

    def to(self, device: torch.device) -> "PretrainTask":
        self.anchors = self.anchors.to(device)
        return self

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out.float(), self.anchors, labels)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return nearest_anchor(out.float(), self.anchors)


class FinetuneTask:
    name = "finetune"

    def __init__(self, loss: nn.Module):
        self.loss_fn = loss

    def to(self, device: torch.device) -> "FinetuneTask":
        self.loss_fn = self.loss_fn.to(device)
        return self

    def loss(self, out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(out.float(), labels)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=1)
