"""CLIP image teacher: CLIP's preprocessing in torch, the global embedding, 3D-OVS's multi-scale patch features.

A random ViT-B/32 CLIP (the real architecture, fp16 like the published weights) is saved as a state
dict and read through lgseg.text.clip_text as the text encoder reads it. The expected patch
features are computed here: torchvision's own transforms prepare each crop, the loaded network
encodes it, and the embeddings are averaged pixel by pixel in plain loops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from lgseg.errors import InputError, LgsegError
from lgseg.teachers import TEACHERS, ClipImageTeacher
from lgseg.teachers.clip_image import CLIP_MEAN, CLIP_STD, clip_preprocess, crop_boxes
from lgseg.text.clip_text import clip_model_module

pytestmark = pytest.mark.usefixtures("one_thread")


def random_clip(seed: int = 0, **vision) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    cm = clip_model_module()
    arch = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                transformer_layers=12)
    model = cm.CLIP(**{**arch, **vision})
    cm.convert_weights(model)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory) -> tuple[dict[str, torch.Tensor], Path]:
    state_dict = random_clip()
    path = tmp_path_factory.mktemp("clip") / "ViT-B-32-random.pt"
    torch.save(state_dict, path)
    return state_dict, path


@pytest.fixture(scope="module")
def patches(vit_b32) -> ClipImageTeacher:
    # 48x64 -> 12x16 after downsampling; patches 6 and 4 pixels, stride = patch: 6 + 12 crops, grown by <= 1
    return TEACHERS.build({"type": "clip", "model": "ViT-B/32", "weights": str(vit_b32[1]), "downsample": 4,
                           "patch_divisors": [2, 3], "stride_divisor": 1, "growth_divisor": 4, "seed": 3})


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def tv_preprocess(crop_u8: torch.Tensor) -> torch.Tensor:
    """CLIP's _transform with torchvision's tensor ops on a (3, h, w) uint8 tensor."""
    x = T.CenterCrop(224)(T.Resize(224, interpolation=T.InterpolationMode.BICUBIC, antialias=True)(crop_u8))
    return T.Normalize(CLIP_MEAN, CLIP_STD)(x.float() / 255)


def test_preprocessing_is_clips_transform():
    for h, w in [(37, 53), (300, 260), (224, 224), (500, 120)]:
        img = image(h, w, h)
        ours = clip_preprocess(torch.from_numpy(img).permute(2, 0, 1).float(), 224)
        assert ours.shape == (3, 224, 224)
        # the same ops torchvision applies to a uint8 tensor: equal up to float rounding
        assert torch.allclose(ours, tv_preprocess(torch.from_numpy(img).permute(2, 0, 1)), atol=1e-5)
        # CLIP's own pipeline runs on PIL images, whose bicubic rounds between its two passes: on a
        # smooth (photo-like) image the two agree within one grey level
        smooth = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(3)))
        ours = clip_preprocess(torch.from_numpy(smooth.copy()).permute(2, 0, 1).float(), 224)
        pil = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                         T.Normalize(CLIP_MEAN, CLIP_STD)])(Image.fromarray(smooth))
        levels = (ours - pil).abs() * torch.tensor(CLIP_STD)[:, None, None] * 255
        assert levels.max() < 1.01 and levels.mean() < 0.2


def test_global_mode_is_one_normalised_embedding_everywhere(vit_b32):
    saved, path = vit_b32
    t = ClipImageTeacher("ViT-B/32", weights=path, mode="global", downsample=4)
    assert (t.name, t.model, t.dim, t.n_px) == ("clip", "ViT-B/32", 512, 224)
    loaded = t.network.state_dict()
    visual = {k[len("visual."):]: v for k, v in saved.items() if k.startswith("visual.")}
    assert loaded.keys() == visual.keys() and all(torch.equal(loaded[k], visual[k].float()) for k in visual)

    img = image(41, 58)
    feat = t.features(img)
    assert feat.shape == (10, 14, 512) == (*t.output_size(41, 58), 512) and feat.dtype == np.float32
    with torch.no_grad():
        ref = t.network(tv_preprocess(torch.from_numpy(img).permute(2, 0, 1))[None])[0]
    ref = (ref / ref.norm()).numpy()
    assert np.allclose(feat, ref, atol=1e-5) and np.allclose(np.linalg.norm(feat, axis=-1), 1, atol=1e-5)
    assert np.array_equal(t.embed(img), t.embed(img))


def test_crop_grid_is_3dovs():
    # a 640x480 image at 3D-OVS's settings: 80x60 after /8, patches 12, 8, 6 with strides 3, 2, 1
    scales = crop_boxes(60, 80, (5, 7, 10), 4, 0)
    assert [len(s) for s in scales] == [17 * 24, 27 * 37, 55 * 75]
    for boxes, p, s in zip(scales, (12, 8, 6), (3, 2, 1)):
        expected = []
        for x_idx in range((60 - p) // s + 1 + int((60 - p) % s > 0)):  # 3D-OVS's loops, without the growth
            for y_idx in range((80 - p) // s + 1 + int((80 - p) % s > 0)):
                top, left = x_idx * s, y_idx * s
                expected.append((top, left, min(top + p, 60), min(left + p, 80)))
        assert boxes == expected
    grown = crop_boxes(60, 80, (5, 7, 10), 4, 4, seed=1)
    assert grown == crop_boxes(60, 80, (5, 7, 10), 4, 4, seed=1) != crop_boxes(60, 80, (5, 7, 10), 4, 4, seed=2)
    for boxes, plain, p in zip(grown, scales, (12, 8, 6)):  # each side moved out by 0..p//4, clipped
        g = np.array(boxes) - np.array(plain)
        assert (g[:, :2] <= 0).all() and (g[:, 2:] >= 0).all() and (np.abs(g) <= p // 4).all() and g.any()
        assert (np.array(boxes)[:, :2] >= 0).all() and (np.array(boxes)[:, 2] <= 60).all()
    with pytest.raises(ValueError, match="too small for patch divisor 10"):
        crop_boxes(8, 40, (5, 10))


def test_patch_features_average_the_crops_covering_each_pixel(patches):
    img = image(48, 64, 7)
    maps = patches.scale_features(img)
    assert maps.shape == (2, 12, 16, 512) and maps.dtype == np.float32
    assert np.allclose(np.linalg.norm(maps, axis=-1), 1, atol=1e-5)

    small = T.Resize((12, 16), interpolation=T.InterpolationMode.BICUBIC, antialias=True)(
        torch.from_numpy(img).permute(2, 0, 1))
    boxes = patches.crop_boxes(12, 16)
    assert [len(b) for b in boxes] == [6, 12]
    for scale, scale_boxes in enumerate(boxes):
        with torch.no_grad():
            emb = patches.network(torch.stack([tv_preprocess(small[:, t:b, l:r]) for t, l, b, r in scale_boxes]))
        expected = np.zeros((12, 16, 512))
        for y in range(12):
            for x in range(16):
                covering = [k for k, (t, l, b, r) in enumerate(scale_boxes) if t <= y < b and l <= x < r]
                mean = emb[covering].double().mean(0).numpy()
                expected[y, x] = mean / np.linalg.norm(mean)
        assert np.allclose(maps[scale], expected, atol=1e-4)

    feat = patches.features(img)  # the mean over scales, normalised again (and computed afresh: deterministic)
    mean = maps.mean(0)
    assert feat.shape == (12, 16, 512) and np.allclose(feat, mean / np.linalg.norm(mean, axis=-1, keepdims=True),
                                                       atol=1e-6)


def test_wrong_files_are_refused_in_one_line(tmp_path):
    tiny = random_clip(vision_layers=1, vision_width=64, image_resolution=32, transformer_width=64,
                       transformer_heads=1, transformer_layers=1)
    bad = dict(tiny)
    del bad["visual.ln_post.weight"]
    torch.save(bad, tmp_path / "missing.pt")
    with pytest.raises(InputError) as e:
        ClipImageTeacher("ViT-B/32", weights=tmp_path / "missing.pt", mode="global")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'missing.pt'}: not CLIP ViT-B/32 weights: ")
    assert "visual.ln_post.weight" in msg

    bad = dict(tiny)
    bad["visual.ln_post.bias"] = torch.zeros(3)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(InputError) as e:
        ClipImageTeacher("ViT-B/32", weights=tmp_path / "shape.pt", mode="global")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "shape.pt") in msg and "visual.ln_post.bias" in msg
    assert "torch.Size([3])" in msg

    torch.save(tiny, tmp_path / "tiny.pt")  # a 512-d ViT file is not a 768-d ViT-L/14
    with pytest.raises(InputError, match=r"tiny\.pt: holds a ViT CLIP with 512-d embeddings, not ViT-L/14"):
        ClipImageTeacher("ViT-L/14", weights=tmp_path / "tiny.pt", mode="global")


def test_a_missing_file_names_download_clip(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LgsegError) as e:
        TEACHERS.build({"type": "clip"})
    msg = str(e.value)
    assert "\n" not in msg and "lgseg download-clip ViT-B/16" in msg and "ViT-B-16.pt" in msg
    with pytest.raises(LgsegError, match=r"none\.pt: CLIP ViT-B/32 weights .*not found.*lgseg download-clip ViT-B/32"):
        ClipImageTeacher("ViT-B/32", weights=tmp_path / "none.pt")


def test_options_are_checked():
    with pytest.raises(ValueError, match="mode must be one of global, patches"):
        TEACHERS.build({"type": "clip", "mode": "dense"})
    with pytest.raises(ValueError, match="stride_divisor must be an integer >= 1"):
        TEACHERS.build({"type": "clip", "stride_divisor": 0})
    with pytest.raises(ValueError, match="teacher.scales is not a key"):
        TEACHERS.build({"type": "clip", "scales": 3})
