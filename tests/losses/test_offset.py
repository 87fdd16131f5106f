"""The instance task's offset loss (PointGroup's) against values worked out by hand."""

import pytest
import torch

from lgseg.losses import LOSSES, OffsetLoss


def test_norm_and_direction_terms_by_hand():
    pred = torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 0, 0]], requires_grad=True)
    target = torch.tensor([[2.0, 0, 0], [0, 0, -1], [5, 5, 5]])
    valid = torch.tensor([True, True, False])  # the third voxel belongs to no instance: left out
    parts = OffsetLoss().parts(pred, target, valid)
    # L1: |1 - 2| = 1 and |0| + |2| + |1| = 3, over 2 valid voxels (+1e-6)
    assert parts["offset_norm"].item() == pytest.approx(4 / (2 + 1e-6), rel=1e-7)
    # cosines 1 (same direction) and 0 (orthogonal): -(1 + 0) / 2
    assert parts["offset_dir"].item() == pytest.approx(-0.5, rel=1e-6)
    loss = OffsetLoss(norm_weight=2.0, direction_weight=3.0)(pred, target, valid)
    assert loss.item() == pytest.approx(2 * 4 / 2 + 3 * -0.5, rel=1e-6)
    loss.backward()
    assert torch.all(pred.grad[2] == 0) and torch.isfinite(pred.grad).all()  # no gradient outside instances


def test_no_instance_voxel_gives_zero_and_a_zero_offset_no_nan():
    pred = torch.zeros(4, 3, requires_grad=True)
    parts = OffsetLoss().parts(pred, torch.zeros(4, 3), torch.zeros(4, dtype=torch.bool))
    assert parts["offset_norm"].item() == 0 and parts["offset_dir"].item() == 0
    valid = torch.ones(4, dtype=torch.bool)  # a voxel at its own centroid: direction undefined, counted as 0
    loss = OffsetLoss()(pred, torch.zeros(4, 3), valid)
    loss.backward()
    assert loss.item() == 0 and torch.isfinite(pred.grad).all()


def test_registry_builds_it_and_refuses_bad_weights():
    loss = LOSSES.build({"type": "offset", "norm_weight": 0.5, "direction_weight": 1.0})
    assert isinstance(loss, OffsetLoss) and loss.norm_weight == 0.5
    for bad in (-1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="norm_weight"):
            OffsetLoss(norm_weight=bad)
    with pytest.raises(ValueError, match="expected pred and target"):
        OffsetLoss()(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(3, dtype=torch.bool))
