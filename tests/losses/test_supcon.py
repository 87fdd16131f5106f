"""SupConLoss (Table 1's SupCon baseline) against values computed by hand on unit vectors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from lgseg.config import pretrain_loss_cfg
from lgseg.losses import LOSSES, SupConLoss, supcon_loss
from lgseg.losses.supcon import sample_voxels


def loop_reference(feats, labels, t):
    """Khosla's L^sup_out written out point by point (the module's formula, no vectorisation)."""
    z = [f / f.norm() for f in feats.double()]
    total, anchors = 0.0, 0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        pos = [p for p in others if labels[p] == labels[i]]
        if not pos:
            continue
        denom = sum(math.exp(float(z[i] @ z[a]) / t) for a in others)
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


def test_two_pairs_by_hand():
    # two classes, each a pair of parallel features (any scale): every anchor sees cos 1 to its
    # positive and cos 0 to both negatives: loss_i = -log(e^(1/T) / (e^(1/T) + 2))
    feats = torch.tensor([[2.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 0.5]])
    labels = torch.tensor([0, 0, 1, 1])
    assert supcon_loss(feats, labels, 1.0).item() == pytest.approx(math.log(1 + 2 / math.e), abs=1e-6)  # 0.5514
    assert supcon_loss(feats, labels, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), abs=1e-6)


def test_an_anchor_without_positive_only_serves_as_negative():
    # f0 = (1, 0), f1 = (0.6, 0.8), f2 = (0, 1): cos01 = 0.6, cos02 = 0, cos12 = 0.8; f3 ignored
    feats = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 5.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, -1])
    # anchor 0: -log(e^.6 / (e^.6 + e^0)); anchor 1: -log(e^.6 / (e^.6 + e^.8)); anchor 2: no positive
    expected = (math.log(1 + math.exp(-0.6)) + math.log(1 + math.exp(0.2))) / 2  # 0.617813
    loss = SupConLoss(temperature=1.0, samples=100)
    assert loss(feats, labels).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.617813, abs=1e-6)


def test_several_positives_are_averaged():
    # (1,0), (0,1), (-1,0) of class 0 and (0,-1) of class 1; T = 1. Each class-0 anchor's
    # denominator is 2 + e^-1; anchors 0 and 2 have a positive at cos -1, anchor 1 none:
    # loss = log(2 + e^-1) + (0.5 + 0 + 0.5) / 3
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 0, 1])
    expected = math.log(2 + math.exp(-1)) + 1 / 3  # 1.195328
    assert supcon_loss(feats, labels, 1.0).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(1.195328, abs=1e-6)


def test_matches_the_pointwise_formula_on_random_features():
    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(40, 8, generator=g), torch.randint(0, 5, (40,), generator=g)
    for t in (0.07, 0.1, 1.0):
        assert supcon_loss(feats, labels, t).item() == pytest.approx(loop_reference(feats, labels, t), rel=1e-5)


def test_nothing_to_contrast_is_zero_with_a_gradient():
    feats = torch.randn(3, 4, requires_grad=True)
    for labels in (torch.tensor([-1, -1, -1]), torch.tensor([0, -1, -1]), torch.tensor([0, 1, 2])):
        out = SupConLoss()(feats, labels)
        assert out.item() == 0.0
        out.backward()  # a grad_fn, all-zero gradients


def test_at_most_samples_voxels_are_compared():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(1000, 4, requires_grad=True)
    labels = torch.randint(0, 3, (1000,), generator=g)
    labels[:100] = -1
    SupConLoss(samples=64)(feats, labels, generator=g).backward()
    touched = (feats.grad.abs().sum(dim=1) > 0).nonzero().squeeze(1)
    assert 0 < touched.numel() <= 64 and bool((touched >= 100).all())  # ignored voxels never drawn
    # with the cap above the labelled count every labelled voxel takes part: the unsampled loss
    assert SupConLoss(samples=5000)(feats, labels).item() == pytest.approx(
        supcon_loss(feats[100:], labels[100:], 0.1).item(), rel=1e-6)


def test_balanced_sampling_draws_rare_classes():
    labels = torch.cat([torch.zeros(990, dtype=torch.long), torch.ones(10, dtype=torch.long)])
    rare = {s: sum(int(labels[sample_voxels(labels, 20, s, torch.Generator().manual_seed(k))].sum())
                   for k in range(10)) for s in ("uniform", "balanced")}
    # 10 draws of 20: uniform expects 0.2 rare voxels each, balanced about 10 (all ten, mostly)
    assert rare["uniform"] <= 10 and rare["balanced"] >= 70
    idx = sample_voxels(labels, 20, "balanced", torch.Generator().manual_seed(0))
    assert idx.unique().numel() == 20  # without replacement
    assert torch.equal(sample_voxels(labels, 5000, "uniform"), torch.arange(1000))


def test_bad_options():
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        SupConLoss(temperature=0)
    with pytest.raises(ValueError, match="samples must be an integer >= 2"):
        SupConLoss(samples=1)
    with pytest.raises(ValueError, match="sampling must be one of uniform, balanced"):
        SupConLoss(sampling="x")
    with pytest.raises(ValueError, match=r"expected feats \(N, D\) and labels \(N,\)"):
        SupConLoss()(torch.randn(3, 2), torch.tensor([0, 1]))


def test_the_pretrain_objective_picks_the_loss():
    section = {"objective": "supcon", "supcon": {"temperature": 0.2, "samples": 512, "sampling": "balanced"},
               "contrastive": {"t_pos": 0.0, "t_neg": 0.6, "neg_weight": 1.0, "num_negatives": 3, "form": "reference"}}
    loss = LOSSES.build(pretrain_loss_cfg(section))
    assert isinstance(loss, SupConLoss) and (loss.temperature, loss.samples, loss.sampling) == (0.2, 512, "balanced")
    assert type(LOSSES.build(pretrain_loss_cfg({**section, "objective": "language"}))).__name__ == \
        "ContrastiveLanguageLoss"
    no_objective = {k: v for k, v in section.items() if k != "objective"}  # older configs: language
    assert pretrain_loss_cfg(no_objective)["type"] == "contrastive"
    with pytest.raises(ValueError, match="pretrain.objective must be one of language, supcon, csc, distill, not 'text'"):
        pretrain_loss_cfg({**section, "objective": "text"})


def test_each_pretrain_objective_may_have_its_own_learning_rate():
    from lgseg.config import training_config

    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    pre = params["pretrain"]
    pre["optimizer"]["lr"], pre["contrastive"]["lr"], pre["supcon"]["lr"] = 0.1, 2.0, None
    cfg = training_config(params, "pretrain")
    assert cfg["optimizer"]["lr"] == 2.0 and pretrain_loss_cfg(cfg) == {
        **{k: v for k, v in pre["contrastive"].items() if k != "lr"}, "type": "contrastive"}
    pre["objective"] = "supcon"  # null: the optimizer's own
    cfg = training_config(params, "pretrain")
    assert cfg["optimizer"]["lr"] == 0.1 and "lr" not in pretrain_loss_cfg(cfg)
    pre["supcon"]["lr"] = 0.3
    assert training_config(params, "pretrain")["optimizer"]["lr"] == 0.3
    assert params["pretrain"]["optimizer"]["lr"] == 0.1  # params themselves untouched
