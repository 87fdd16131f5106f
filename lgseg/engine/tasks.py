"""What a training stage optimises and predicts, separate from the loop that runs it.

Pretraining: the network outputs a feature per voxel, trained towards its class's text anchor;
prediction = the nearest anchor by cosine (a zero-shot readout). Distillation: the same features
trained towards the 2D teacher's lifted features, read out the same way where those are in the
anchors' space. SupCon pretraining (Table 1's
baseline): the same features trained by supervised contrast among voxels, no text, so no class
readout (``readout`` None: validation skips it). Fine-tuning: the network outputs class logits;
prediction = argmax. Instance fine-tuning: class logits and offsets; the loss adds the offset
terms to the semantic loss; prediction (validation) = the semantic argmax.

``target_keys``: the batch entries ``loss`` takes as its target (one: that tensor; several: a dict).
A task may leave the epoch's mean of each loss term in ``parts`` after each ``loss`` call.
"""

from __future__ import annotations

import torch
from torch import nn

from lgseg.losses import ContrastiveLanguageLoss, OffsetLoss, nearest_anchor


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


class CSCPretrainTask(SupConPretrainTask):
    """CSC pretraining: both views of each scene go through the network as one batch; the loss
    contrasts matched voxels inside the partitions of each anchor's shape context. No labels, no
    text, so no class readout (validation is skipped)."""

    no_readout = ("csc pretraining learns features without labels or text anchors: the zero-shot readout "
                  "(nearest text anchor) has no meaning for them, so validation is skipped")
    target_keys = ("matches", "match_coord", "match_scene")

    def loss(self, out: torch.Tensor, target: dict) -> torch.Tensor:
        feats = out.float()
        return self.loss_fn(feats, feats, target["matches"], target["match_coord"], target["match_scene"])


class DistillPretrainTask:
    """2D-to-3D distillation (OpenScene's): each voxel a frame saw is pulled towards the 2D teacher's
    feature lifted onto it; no 3D label is read. Where the teacher's features live in the text
    anchors' space (``anchors`` given), the features are read out zero-shot by the nearest anchor,
    as the language objective's are; otherwise there is no readout and validation is skipped."""

    name = "pretrain"
    class_groups: dict = {}
    target_keys = ("target", "has_target")
    no_readout = ("the 2D teacher's features are not in the text anchors' space: the zero-shot readout has no "
                  "meaning for them, so validation is skipped")

    def __init__(self, loss: nn.Module, anchors: torch.Tensor | None):
        self.loss_fn, self.anchors = loss, anchors
        self.readout = "the nearest of the text anchors" if anchors is not None else None

    def to(self, device: torch.device) -> "DistillPretrainTask":
        self.anchors = self.anchors.to(device) if self.anchors is not None else None
        return self

    def loss(self, out: torch.Tensor, target: dict) -> torch.Tensor:
        return self.loss_fn(out.float(), target["target"], target["has_target"])

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        if self.anchors is None:
            raise NotImplementedError(self.no_readout)
        return nearest_anchor(out.float(), self.anchors)


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


class InstanceTask:
    """Semantic logits and offsets (PointGroup / CSC): the configured fine-tuning loss on the logits
    plus the offset loss on the voxels of instances; instances are found by clustering only when
    predicting (``lgseg.instances``)."""

    name = "insseg"
    readout = "argmax of the semantic logits"
    class_groups: dict = {}
    target_keys = ("label", "instance", "offset")

    def __init__(self, semantic: nn.Module, offset: OffsetLoss):
        self.semantic_fn, self.offset_fn = semantic, offset
        self.parts: dict[str, float] = {}

    def to(self, device: torch.device) -> "InstanceTask":
        self.semantic_fn = self.semantic_fn.to(device)
        return self

    def loss(self, out: dict, target: dict) -> torch.Tensor:
        semantic = self.semantic_fn(out["logits"].float(), target["label"])
        offset = self.offset_fn.parts(out["offsets"].float(), target["offset"], target["instance"] >= 0)
        terms = {"loss_semantic": semantic, **{f"loss_{k}": v for k, v in offset.items()}}
        self.parts = dict(zip(terms, torch.stack(list(terms.values())).detach().tolist()))  # one device sync
        return semantic + self.offset_fn.norm_weight * offset["offset_norm"] + \
            self.offset_fn.direction_weight * offset["offset_dir"]

    def predict(self, out: dict) -> torch.Tensor:
        return out["logits"].argmax(dim=1)
