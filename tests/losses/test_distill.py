"""The 2D-to-3D distillation loss against hand-computed values."""

import math

import pytest
import torch

from lgseg.losses import LOSSES, DistillLoss


def test_cosine_form_by_hand():
    feats = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 1.0], [0.0, -1.0], [9.0, 9.0]])
    has = torch.tensor([True, True, False])  # the third voxel is seen by no frame
    loss = DistillLoss()(feats, targets, has)
    # 1 - cos: (1 - 1/sqrt(2)) and (1 - (-1)) = 2, averaged over the two voxels with a target
    assert loss.item() == pytest.approx(((1 - 1 / math.sqrt(2)) + 2.0) / 2)
    loss.backward()
    assert torch.equal(feats.grad[2], torch.zeros(2))  # no target, no gradient


def test_l1_form_by_hand_and_the_scale_of_features_counts():
    feats = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([[0.5, 0.5], [0.0, 0.0]])
    loss = LOSSES.build({"type": "distill", "form": "l1"})(feats, targets, torch.tensor([True, True]))
    assert loss.item() == pytest.approx((0.5 + 0.5 + 0.0 + 2.0) / 4)
    assert DistillLoss()(2 * feats, targets, torch.tensor([True, True])).item() == pytest.approx(
        DistillLoss()(feats, targets, torch.tensor([True, True])).item())  # cosine ignores the norm


def test_no_target_is_zero_with_grad_and_bad_inputs_are_refused():
    feats = torch.randn(3, 4, requires_grad=True)
    loss = DistillLoss()(feats, torch.randn(3, 4), torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match="expected feats and targets"):
        DistillLoss()(feats, torch.randn(3, 5), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="form must be one of cosine, l1"):
        DistillLoss("mse")
