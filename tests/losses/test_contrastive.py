"""ContrastiveLanguageLoss against values computed by hand on unit vectors with exact cosines."""

from __future__ import annotations

import pytest
import torch

from lgseg.losses.contrastive import (
    ContrastiveLanguageLoss,
    cosine_logits,
    nearest_anchor,
    sample_negatives,
)

# Anchors (any scale): t0 = (1, 0), t1 = (0, 1), t2 = (-1, 0), t3 = (0.6, 0.8).
ANCHORS = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.3, 0.4]])
# f0 = (0.8, 0.6): cos with t0..t3 = 0.8, 0.6, -0.8, 0.96
# f1 = (0, 1):     cos = 0, 1, 0, 0.8
# f2 = (-0.6, 0.8): cos = -0.6, 0.8, 0.6, 0.28
# f3: ignored
FEATS = torch.tensor([[4.0, 3.0], [0.0, 2.0], [-0.6, 0.8], [1.0, 1.0]])
LABELS = torch.tensor([0, 1, 2, -1])
NEGS = torch.tensor([[2, 3], [3, 3], [1, 3], [0, 0]])


def test_reference_form_by_hand():
    loss = ContrastiveLanguageLoss(t_pos=0.1, t_neg=0.6, neg_weight=0.5, form="reference")
    # hinge on the MEAN negative cosine; divide by all 4 points (the ignored one adds 0)
    expected = (
        max(0, 1 - 0.8 - 0.1) + 0.5 * max(0, 0.6 - (1 - (-0.8 + 0.96) / 2))
        + max(0, 1 - 1.0 - 0.1) + 0.5 * max(0, 0.6 - (1 - (0.8 + 0.8) / 2))
        + max(0, 1 - 0.6 - 0.1) + 0.5 * max(0, 0.6 - (1 - (0.8 + 0.28) / 2))
    ) / 4
    assert loss(FEATS, ANCHORS, LABELS, negatives=NEGS).item() == pytest.approx(expected, abs=1e-6)


def test_paper_form_by_hand():
    loss = ContrastiveLanguageLoss(t_pos=0.1, t_neg=0.6, neg_weight=0.5, form="paper")
    # MEAN of per-negative hinges; divide by the 3 labelled points
    expected = (
        max(0, 1 - 0.8 - 0.1) + 0.5 * (max(0, 0.6 - (1 + 0.8)) + max(0, 0.6 - (1 - 0.96))) / 2
        + max(0, 1 - 1.0 - 0.1) + 0.5 * (max(0, 0.6 - (1 - 0.8)) + max(0, 0.6 - (1 - 0.8))) / 2
        + max(0, 1 - 0.6 - 0.1) + 0.5 * (max(0, 0.6 - (1 - 0.8)) + max(0, 0.6 - (1 - 0.28))) / 2
    ) / 3
    assert loss(FEATS, ANCHORS, LABELS, negatives=NEGS).item() == pytest.approx(expected, abs=1e-6)


def test_defaults_are_the_authors():
    loss = ContrastiveLanguageLoss()
    assert (loss.t_pos, loss.t_neg, loss.neg_weight, loss.num_negatives, loss.form) == (0.0, 0.6, 1.0, 3, "reference")
    expected = ((1 - 0.8) + 0.0 + 0.0 + (0.6 - 0.2) + (1 - 0.6) + (0.6 - 0.46)) / 4
    assert loss(FEATS, ANCHORS, LABELS, negatives=NEGS).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("form", ["reference", "paper"])
def test_scale_invariant(form):
    loss = ContrastiveLanguageLoss(form=form)
    base = loss(FEATS, ANCHORS, LABELS, negatives=NEGS)
    scaled = loss(FEATS * torch.tensor([[7.0], [0.01], [3.0], [100.0]]), ANCHORS * 42.0, LABELS, negatives=NEGS)
    assert scaled.item() == pytest.approx(base.item(), abs=1e-6)


def test_sampled_negatives_exclude_positive_and_are_uniform():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (4000,), generator=g)
    neg = sample_negatives(labels, num_classes=5, num_negatives=3, generator=g)
    assert neg.shape == (4000, 3)
    assert not (neg == labels[:, None]).any()
    assert int(neg.min()) >= 0 and int(neg.max()) <= 4
    for y in range(5):  # each other class has probability 1/4: chi-square, 3 dof, p = 0.001 -> 16.27
        drawn = neg[labels == y].reshape(-1)
        counts = torch.bincount(drawn, minlength=5).double()
        assert counts[y] == 0
        others = torch.cat([counts[:y], counts[y + 1:]])
        expected = drawn.numel() / 4
        assert float(((others - expected) ** 2 / expected).sum()) < 16.27


def test_sampling_is_seeded_and_used_by_forward():
    loss = ContrastiveLanguageLoss(num_negatives=4)
    feats, anchors = torch.randn(50, 8), torch.randn(6, 8)
    labels = torch.randint(-1, 6, (50,), generator=torch.Generator().manual_seed(1))
    valid = labels != -1
    neg = torch.zeros(50, 4, dtype=torch.long)
    neg[valid] = sample_negatives(labels[valid], 6, 4, torch.Generator().manual_seed(3))
    sampled = loss(feats, anchors, labels, generator=torch.Generator().manual_seed(3))
    assert sampled.item() == pytest.approx(loss(feats, anchors, labels, negatives=neg).item(), abs=1e-6)
    again = loss(feats, anchors, labels, generator=torch.Generator().manual_seed(3))
    assert again.item() == sampled.item()


def test_gradient_flows_and_skips_ignored_points():
    feats = FEATS.clone().requires_grad_(True)
    ContrastiveLanguageLoss()(feats, ANCHORS, LABELS, negatives=NEGS).backward()
    assert torch.isfinite(feats.grad).all()
    assert feats.grad[0].abs().sum() > 0
    assert torch.equal(feats.grad[3], torch.zeros(2))


@pytest.mark.parametrize("form", ["reference", "paper"])
def test_all_ignored_is_zero_with_grad(form):
    feats = FEATS.clone().requires_grad_(True)
    out = ContrastiveLanguageLoss(form=form)(feats, ANCHORS, torch.full((4,), -1))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(feats.grad, torch.zeros_like(FEATS))


def test_bad_arguments():
    with pytest.raises(ValueError, match="form must be one of reference, paper"):
        ContrastiveLanguageLoss(form="x")
    with pytest.raises(ValueError, match="num_negatives"):
        ContrastiveLanguageLoss(num_negatives=0)
    with pytest.raises(ValueError, match="labels must be"):
        ContrastiveLanguageLoss()(FEATS, ANCHORS, torch.tensor([0, 1, 4, -1]), negatives=NEGS)


def test_cosine_logits_and_nearest_anchor_by_hand():
    cos = cosine_logits(FEATS[:3], ANCHORS)
    expected = torch.tensor([[0.8, 0.6, -0.8, 0.96], [0.0, 1.0, 0.0, 0.8], [-0.6, 0.8, 0.6, 0.28]])
    assert torch.allclose(cos, expected, atol=1e-6)
    assert nearest_anchor(FEATS[:3], ANCHORS).tolist() == [3, 1, 1]


def test_chunked_equals_unchunked():
    g = torch.Generator().manual_seed(0)
    feats, anchors = torch.randn(1001, 16, generator=g), torch.randn(7, 16, generator=g)
    full = cosine_logits(feats, anchors, chunk_rows=10**6)
    assert torch.allclose(cosine_logits(feats, anchors, chunk_rows=64), full, atol=1e-6)
    assert torch.equal(nearest_anchor(feats, anchors, chunk_rows=64), full.argmax(1))
    assert torch.equal(nearest_anchor(feats, anchors, chunk_rows=64), nearest_anchor(feats, anchors))


def test_cosine_logits_is_differentiable():
    feats = torch.randn(5, 3, requires_grad=True)
    cosine_logits(feats, torch.randn(4, 3), chunk_rows=2).sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
