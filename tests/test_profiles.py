"""profiles/paper.yaml: the paper's configuration parses, matches the authors' hyperparameters and
params.yaml's keys, and builds its text encoder (CLIP ViT-B/32, random weights) and its models."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from lgseg.config import training_config
from lgseg.models import build_model, transfer_weights
from lgseg.scannet.constants import CLASS_NAMES, NUM_CLASSES
from lgseg.config import build_text_encoder
from lgseg.text import class_embeddings
from lgseg.text.clip_text import clip_model_module

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "profiles/paper.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "params.yaml").read_text())
REF = json.loads((ROOT / "profiles/reference_hparams.json").read_text())


def key_tree(d):
    return {k: key_tree(v) if isinstance(v, dict) else None for k, v in d.items()}


def test_paper_profile_has_the_demo_profiles_keys():
    assert key_tree(PAPER) == key_tree(DEMO)


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_paper_profile_is_the_reference_setting(stage):
    common, ref = REF["common"], REF[stage]
    cfg = training_config(PAPER, stage)
    assert cfg["voxel_size"] == common["voxel_size_m"] and cfg["seed"] == common["seed"]
    assert cfg["epochs"] == common["max_epoch"] and cfg["max_points"] == ref["train_limit_numpoints"]
    opt = common["optimizer"]
    assert cfg["optimizer"] == {"type": "sgd", "lr": opt["lr"], "momentum": opt["momentum"],
                                "dampening": opt["dampening"], "weight_decay": opt["weight_decay"]}
    sched = common["scheduler"]
    assert cfg["scheduler"] == {"type": "multistep", "milestones": sched["milestones_epochs"], "gamma": sched["gamma"]}
    assert all(cfg["augment"][k] is True for k in ("elastic", "rotation", "scale", "flip", "auto_contrast",
                                                   "color_translation", "color_jitter"))
    assert cfg["augment"]["crop_points"] == 0 and cfg["augment"]["random_translation"] == 100
    if stage == "pretrain":
        assert cfg["model"]["name"] == ref["model"] and cfg["contrastive"] == {
            "t_pos": ref["t_pos"], "t_neg": ref["t_neg"], "neg_weight": ref["lambda_neg"],
            "num_negatives": ref["num_negatives"], "form": "reference", "lr": None}  # lr: the optimizer's
    else:
        assert cfg["loss"]["type"] == "cb_focal" and cfg["loss"]["gamma"] == ref["focal_gamma"]
    # the authors' model's training-time details (reference-notes 1.12) and today's GPU engine
    assert cfg["model"] == {"name": cfg["model"]["name"], "backend": "spconv", "block_bn_momentum": 0.1,
                            "init": "minkowski"}
    assert cfg["voxel_point"] == "first"
    assert PAPER["data"]["source"] == "scannet" and PAPER["text"]["encoder"] == "clip"
    assert PAPER["text"]["clip_model"] == "ViT-B/32" and PAPER["text"]["prompt"] == "{}"


@pytest.fixture(scope="module")
def clip_embeddings(tmp_path_factory):
    """The profile's text encoder with CLIP ViT-B/32's real architecture and random weights."""
    path = tmp_path_factory.mktemp("clip") / "ViT-B-32.pt"
    torch.manual_seed(0)
    clip = clip_model_module()
    vit_b32 = clip.CLIP(  # ViT-B/32's published shapes, fp16 like the published file
        embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
        context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)
    clip.convert_weights(vit_b32)
    torch.save(vit_b32.state_dict(), path)
    encoder = build_text_encoder({**PAPER["text"], "clip_weights": str(path)})
    return class_embeddings(encoder, prompt=PAPER["text"]["prompt"])


def test_paper_profile_builds_its_models(clip_embeddings):
    assert clip_embeddings.shape == (len(CLASS_NAMES), REF["pretrain"]["feature_dim"])
    pre_cfg, ft_cfg = training_config(PAPER, "pretrain"), training_config(PAPER, "finetune")
    pretrain = build_model(pre_cfg["model"], feature_dim=clip_embeddings.shape[1], num_classes=None).eval()
    assert pretrain.backend == "spconv"
    xyz = torch.unique(torch.randint(0, 16, (64, 3), dtype=torch.int32), dim=0)  # unique voxels
    coords = torch.cat([torch.zeros(len(xyz), 1, dtype=torch.int32), xyz], 1)  # batch index 0
    with torch.no_grad():
        out = pretrain(coords, torch.rand(len(coords), 3) - 0.5)
    assert out.shape == (len(coords), 512) and pretrain.feature_dim == 512
    # 34D's last block already has the text width: no projection layer, as in the reference
    assert not any("projection" in name for name, _ in pretrain.named_parameters())

    finetune = build_model(ft_cfg["model"], feature_dim=512, num_classes=NUM_CLASSES)
    report = transfer_weights(finetune, pretrain.state_dict())
    assert report["new"] and all(k.startswith("classifier.") for k in report["new"])
    assert not report["mismatched"] and not report["unused"]
    scratch = build_model({"name": "Res16UNet34C"}, feature_dim=None, num_classes=NUM_CLASSES)
    assert sum(p.numel() for p in scratch.parameters()) == 37_864_104


def test_paper_profile_samples_tail_instances_as_the_reference():
    ref = REF["finetune"]["instance_sampling"]
    opts = PAPER["instance_sampling"]
    assert opts["enabled"] and opts["classes"] == "tail"
    assert opts["per_scene"] == ref["num_instances_per_scene"] and opts["tries"] == ref["max_placing_iterations"]
