"""build_loss from params.yaml-style dicts, and the generic Registry's error messages."""

from __future__ import annotations

import math

import pytest
import torch

from lgseg.config import build_loss
from lgseg.losses import (
    ContrastiveLanguageLoss,
    CrossEntropy,
    FocalLoss,
    Registry,
    class_balanced_alpha,
)

COUNTS = [10, 100, 1000]


def test_builds_each_type():
    assert isinstance(build_loss({"type": "ce"}), CrossEntropy)
    focal = build_loss({"type": "focal", "gamma": 2})
    assert isinstance(focal, FocalLoss) and focal.gamma == 2.0 and focal.alpha is None
    cb = build_loss({"type": "cb_focal", "gamma": 1.5}, class_counts=COUNTS)
    assert cb.gamma == 1.5 and torch.equal(cb.alpha, class_balanced_alpha(COUNTS))
    cfg = {"type": "contrastive", "t_pos": 0.1, "t_neg": 0.5, "neg_weight": 2.0, "num_negatives": 4, "form": "paper"}
    c = build_loss(cfg)
    assert isinstance(c, ContrastiveLanguageLoss)
    assert (c.t_pos, c.t_neg, c.neg_weight, c.num_negatives, c.form) == (0.1, 0.5, 2.0, 4, "paper")
    assert cfg["type"] == "contrastive"  # the caller's dict is not consumed


def test_built_losses_run():
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, -1, 0, 1])
    for cfg in ({"type": "ce"}, {"type": "focal"}, {"type": "cb_focal"}):
        assert torch.isfinite(build_loss(cfg, class_counts=COUNTS)(logits, labels))


def test_bad_type_lists_allowed():
    with pytest.raises(ValueError) as e:
        build_loss({"type": "foo"})
    assert str(e.value) == "loss.type must be one of ce, focal, cb_focal, contrastive, supcon, csc, distill, offset, not 'foo'"
    with pytest.raises(ValueError, match="loss.type is missing"):
        build_loss({"gamma": 2})


def test_bad_key_names_key_and_allowed():
    with pytest.raises(ValueError) as e:
        build_loss({"type": "focal", "gama": 2})
    assert "loss.gama" in str(e.value) and "allowed keys: type, gamma" in str(e.value)
    with pytest.raises(ValueError, match="loss.class_counts is not a key"):  # context, not a cfg key
        build_loss({"type": "cb_focal", "class_counts": COUNTS})
    with pytest.raises(ValueError, match="loss.gama is not a key of loss type 'ce'"):
        build_loss({"type": "ce", "gama": 2})


def test_one_section_serves_every_type():
    # params.yaml keeps gamma and alpha_norm when `-S loss.type=ce` switches to cross entropy
    section = {"type": "cb_focal", "gamma": 2.0, "alpha_norm": "mean"}
    assert isinstance(build_loss({**section, "type": "ce"}), CrossEntropy)
    assert build_loss({**section, "type": "focal"}).gamma == 2.0
    assert build_loss(section, class_counts=COUNTS).gamma == 2.0


def test_bad_values():
    with pytest.raises(ValueError, match="form must be one of reference, paper, not 'x'"):
        build_loss({"type": "contrastive", "form": "x"})
    with pytest.raises(ValueError, match="gamma must be a number >= 0"):
        build_loss({"type": "focal", "gamma": "2"})
    with pytest.raises(ValueError, match="needs class_counts"):
        build_loss({"type": "cb_focal"})


def test_generic_registry():
    reg = Registry("model")

    @reg.register("a")
    def build_a(x: int = 1, *, ctx=None):
        return (x, ctx)

    assert reg.keys() == ("a",)
    assert reg.build({"type": "a", "x": 5}, ctx="c", unused="u") == (5, "c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(build_a)
    with pytest.raises(ValueError, match="model.type must be one of a, not 'b'"):
        reg.get("b")


def test_cb_focal_alpha_norm_mean_scales_eq5_weights_to_average_one():
    counts = [10, 100, 1000]
    by_sum = build_loss({"type": "cb_focal", "gamma": 2.0}, class_counts=counts)
    by_mean = build_loss({"type": "cb_focal", "gamma": 2.0, "alpha_norm": "mean"}, class_counts=counts)
    logs = [math.log(10), math.log(100), math.log(1000)]
    expected = torch.tensor([v / sum(logs) for v in logs])
    torch.testing.assert_close(by_sum.alpha, expected)
    torch.testing.assert_close(by_mean.alpha, expected * 3)
    assert float(by_mean.alpha.mean()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="alpha_norm must be one of sum, mean"):
        build_loss({"type": "cb_focal", "alpha_norm": "max"}, class_counts=counts)
