"""Lenient weight transfer between pre-training and fine-tuning models."""

from __future__ import annotations

import logging

import pytest
import torch

from lgseg.models.res16unet import Res16UNet14A, Res16UNet14S, SegmentationNet
from lgseg.models.weights import transfer_weights


def pretrain_model(feature_dim: int | None = 48) -> SegmentationNet:
    torch.manual_seed(1)
    return SegmentationNet(Res16UNet14S(feature_dim=feature_dim), num_classes=None)


def finetune_model(feature_dim: int | None = 48, num_classes: int = 200) -> SegmentationNet:
    torch.manual_seed(2)
    return SegmentationNet(Res16UNet14S(feature_dim=feature_dim), num_classes=num_classes)


def assert_backbone_equal(a: SegmentationNet, b: SegmentationNet) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    for name, value in sa.items():
        if name.startswith("backbone."):
            torch.testing.assert_close(sb[name], value, msg=name)


def test_pretrain_to_finetune_loads_backbone_and_reports_new_head(caplog):
    src, dst = pretrain_model(), finetune_model()
    assert not torch.equal(src.backbone.conv0p1s1.kernel, dst.backbone.conv0p1s1.kernel)
    with caplog.at_level(logging.DEBUG, logger="lgseg.models.weights"):
        report = transfer_weights(dst, src.state_dict())
    backbone_keys = [k for k in dst.state_dict() if k.startswith("backbone.")]
    assert sorted(report["loaded"]) == sorted(backbone_keys)
    assert report["new"] == ["classifier.kernel", "classifier.bias"]
    assert report["mismatched"] == {} and report["unused"] == []
    assert_backbone_equal(src, dst)
    summary = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(summary) == 1
    assert f"loaded {len(backbone_keys)}/{len(backbone_keys) + 2}" in summary[0]
    assert "new in model: 2 (classifier.*)" in summary[0]
    assert any("classifier.kernel" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_lightning_and_ddp_prefixes_are_stripped():
    src, dst = pretrain_model(), finetune_model()
    ckpt = {"state_dict": {"module.model." + k: v for k, v in src.state_dict().items()}, "epoch": 3}
    report = transfer_weights(dst, ckpt)
    assert report["unused"] == [] and len(report["loaded"]) == len(src.state_dict())
    assert_backbone_equal(src, dst)


def test_reference_layout_maps_onto_backbone_and_classifier():
    """Reference checkpoints: backbone at top level, head named ``final``, Lightning prefix ``model.``."""
    src, dst = finetune_model(num_classes=5), finetune_model(num_classes=5)
    ref = {"model." + (k.replace("classifier.", "final.") if k.startswith("classifier.") else k[len("backbone."):]): v
           for k, v in src.state_dict().items()}
    report = transfer_weights(dst, ref)
    assert report["new"] == [] and report["unused"] == []
    torch.testing.assert_close(dst.classifier.kernel, src.classifier.kernel)
    assert_backbone_equal(src, dst)


def test_mismatched_feature_dim_is_reported_and_skipped(caplog):
    src, dst = pretrain_model(feature_dim=48), finetune_model(feature_dim=24)
    before = dst.backbone.projection[0].kernel.clone()
    with caplog.at_level(logging.INFO, logger="lgseg.models.weights"):
        report = transfer_weights(dst, src.state_dict())
    assert report["mismatched"] == {
        "backbone.projection.0.kernel": ((32, 48), (32, 24)),
        "backbone.projection.1.bn.weight": ((48,), (24,)),
        "backbone.projection.1.bn.bias": ((48,), (24,)),
        "backbone.projection.1.bn.running_mean": ((48,), (24,)),
        "backbone.projection.1.bn.running_var": ((48,), (24,)),
    }
    assert "backbone.projection.0.kernel" not in report["loaded"]
    assert torch.equal(dst.backbone.projection[0].kernel, before)  # left as initialised
    torch.testing.assert_close(dst.backbone.block8[0].conv2.kernel, src.backbone.block8[0].conv2.kernel)
    assert "shape mismatch: 5 (backbone.projection.0.*, backbone.projection.1.bn.*)" in caplog.records[-1].getMessage()


def test_unused_checkpoint_keys_are_reported():
    src, dst = finetune_model(num_classes=7), pretrain_model()
    report = transfer_weights(dst, src.state_dict())
    assert report["unused"] == ["classifier.kernel", "classifier.bias"]
    assert report["new"] == []


def test_nothing_matching_raises():
    small = SegmentationNet(Res16UNet14S())
    other = SegmentationNet(Res16UNet14A())  # other widths everywhere; only BN counters share shapes
    with pytest.raises(ValueError, match=r"checkpoint \(Res16UNet14S\) does not fit the model \(Res16UNet14A\)"):
        transfer_weights(other, {"state_dict": small.state_dict(), "arch": small.arch})
    with pytest.raises(ValueError, match="does not fit"):
        transfer_weights(other, {"encoder.weight": torch.zeros(3, 3)})
