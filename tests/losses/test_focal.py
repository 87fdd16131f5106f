"""FocalLoss / CrossEntropy / class_balanced_alpha against hand-computed softmax values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lgseg.losses.focal import CrossEntropy, FocalLoss, class_balanced_alpha

LOGITS = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [5.0, 5.0, 5.0]])
LABELS = torch.tensor([0, 2, -1])


def test_focal_by_hand_with_alpha_and_gamma():
    alpha = [0.2, 0.3, 0.5]
    p0 = math.exp(1) / (math.exp(1) + math.exp(0) + math.exp(-1))
    p1 = math.exp(0) / (math.exp(0) + math.exp(2) + math.exp(0))
    l0 = (1 - p0) ** 2 * -0.2 * math.log(p0)
    l1 = (1 - p1) ** 2 * -0.5 * math.log(p1)
    expected = (l0 + l1) / 2  # mean over the 2 labelled points, not divided by sum(alpha)
    got = FocalLoss(gamma=2.0, alpha=alpha)(LOGITS, LABELS)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_focal_gamma_half_no_alpha_by_hand():
    p0 = math.exp(1) / (math.exp(1) + 1 + math.exp(-1))
    expected = (1 - p0) ** 0.5 * -math.log(p0)
    assert FocalLoss(gamma=0.5)(LOGITS[:1], LABELS[:1]).item() == pytest.approx(expected, rel=1e-6)


def test_gamma_zero_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 5, generator=g)
    labels = torch.randint(-1, 5, (20,), generator=g)
    got = FocalLoss(gamma=0.0)(logits, labels)
    assert got.item() == pytest.approx(F.cross_entropy(logits, labels, ignore_index=-1).item(), rel=1e-6)


def test_focal_is_stable_for_extreme_logits():
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0]], requires_grad=True)
    out = FocalLoss(gamma=2.0)(logits, torch.tensor([0, 2]))
    out.backward()
    assert out.item() == pytest.approx(2000.0 / 2, rel=1e-6)  # point 0: 0; point 1: p ~ 0 -> 1 * 2000
    assert torch.isfinite(logits.grad).all()


def test_all_ignored_is_zero_with_grad():
    for loss in (FocalLoss(), CrossEntropy()):
        logits = LOGITS.clone().requires_grad_(True)
        out = loss(logits, torch.full((3,), -1))
        assert out.item() == 0.0 and out.requires_grad
        out.backward()
        assert torch.equal(logits.grad, torch.zeros_like(LOGITS))


def test_cross_entropy_wrapper_matches_torch():
    w = [1.0, 2.0, 0.5]
    got = CrossEntropy(weight=w)(LOGITS, LABELS)
    p0 = math.exp(1) / (math.exp(1) + 1 + math.exp(-1))
    p1 = 1 / (2 + math.exp(2))
    expected = (-1.0 * math.log(p0) - 0.5 * math.log(p1)) / (1.0 + 0.5)  # torch: / summed weights
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert CrossEntropy()(LOGITS, LABELS).item() == pytest.approx(
        F.cross_entropy(LOGITS, LABELS, ignore_index=-1).item(), rel=1e-6)


def test_alpha_length_must_match_classes():
    with pytest.raises(ValueError, match="alpha has 2 entries"):
        FocalLoss(alpha=[1.0, 1.0])(LOGITS, LABELS)
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1)


def test_class_balanced_alpha_paper_formula():
    got = class_balanced_alpha([10, 100, 1000])
    s = math.log(10) + math.log(100) + math.log(1000)
    assert torch.allclose(got, torch.tensor([math.log(10) / s, math.log(100) / s, math.log(1000) / s]))
    assert got.dtype == torch.float32 and got.sum().item() == pytest.approx(1.0)


def test_class_balanced_alpha_rare_counts_give_zero():
    assert class_balanced_alpha([0, 1, 100]).tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="more than 1 point"):
        class_balanced_alpha([0, 1])
    with pytest.raises(ValueError, match=">= 0"):
        class_balanced_alpha([5, -2])


def test_class_balanced_alpha_uniform_and_bad_mode():
    assert class_balanced_alpha([3, 4, 5], mode="uniform").tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="paper, uniform"):
        class_balanced_alpha([3, 4], mode="inverse")
