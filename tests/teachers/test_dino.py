"""DINO / DINOv2 teacher: official checkpoint layouts through timm's filter, strict loading, patch maps.

Random ViT-S models of the real timm architectures stand in for Meta's files: DINO v1's backbone
files are timm's own state-dict layout; DINOv2's add ``mask_token``, and its register variants keep
``register_tokens`` and the class token's slot in ``pos_embed`` (the layouts timm's
``checkpoint_filter_fn`` converts). The expected outputs are computed here with a forward hook on
the last block, as 3D-OVS extracts DINO features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from lgseg.errors import InputError, LgsegError
from lgseg.teachers import TEACHERS, DinoTeacher

pytestmark = pytest.mark.usefixtures("one_thread")

V1 = "vit_small_patch8_224.dino"
V2 = "vit_small_patch14_dinov2.lvd142m"
V2_REG = "vit_small_patch14_reg4_dinov2.lvd142m"


def random_vit(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True)
    with torch.no_grad():  # timm zero-inits some tensors: make every one distinct from a fresh model
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def official_layout(model: torch.nn.Module, name: str) -> dict[str, torch.Tensor]:
    """The model's weights laid out as Meta's backbone checkpoint of ``name`` holds them."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    if "dinov2" not in name:
        return sd  # DINO v1's vision_transformer.py uses timm's names and shapes
    torch.manual_seed(1)
    sd["mask_token"] = torch.randn(1, sd["cls_token"].shape[-1])
    if "reg" in name:  # DINOv2 keeps the class token's position embedding and calls registers register_tokens
        cls_pos = torch.randn(1, 1, sd["cls_token"].shape[-1]) * 0.02
        sd["register_tokens"] = sd.pop("reg_token")
        sd["cls_token"] = sd["cls_token"] - cls_pos
        sd["pos_embed"] = torch.cat([cls_pos, sd["pos_embed"]], dim=1)
    return sd


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, Path]]:
    d = tmp_path_factory.mktemp("dino")
    out = {}
    for name in (V1, V2, V2_REG):
        model = random_vit(name)
        path = d / f"{name}.pth"
        torch.save(official_layout(model, name), path)
        out[name] = (model, path)
    return out


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def normalised(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_DEFAULT_STD)[:, None, None]
    return (x - mean) / std


def last_block_output(model: torch.nn.Module, img: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(the output tokens of blocks[-1], the final-normed tokens) of ``img``, as 3D-OVS hooks them."""
    seen = {}
    handle = model.blocks[-1].register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    with torch.no_grad():
        normed = model.forward_features(normalised(img))
    handle.remove()
    return seen["out"][0], normed[0]


@pytest.fixture(scope="module")
def v1(files) -> DinoTeacher:
    return TEACHERS.build({"type": "dino", "model": V1, "weights": str(files[V1][1])})


def test_v1_loads_every_tensor_and_gives_the_last_block_patch_tokens(v1, files):
    model, _ = files[V1]
    assert (v1.name, v1.model, v1.dim, v1.patch_size, v1.version, v1.final_norm) == ("dino", V1, 384, 8, 1, False)
    loaded, saved = v1.network.state_dict(), model.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)

    img = image(256, 256)  # 3D-OVS's FDA patches: 256x256 -> 32x32 cells of 8x8 pixels
    feat = v1.features(img)
    assert feat.shape == (32, 32, 384) and feat.dtype == np.float32 and v1.output_size(256, 256) == (32, 32)
    block, _ = last_block_output(model, img)
    assert np.allclose(feat, block[1:].reshape(32, 32, 384).numpy(), atol=1e-5)  # CLS left out, no final norm
    small = image(64, 48, 5)
    assert np.array_equal(v1.features(small), v1.features(small))  # deterministic


def test_v1_odd_sizes_floor_to_the_patch_grid_and_batches_agree(v1, files):
    img, other = image(45, 70, 1), image(45, 70, 2)
    feat = v1.features(img)
    assert feat.shape == (5, 8, 384) == (*v1.output_size(45, 70), 384)
    block, _ = last_block_output(files[V1][0], img[:40, :64])  # the bottom/right remainder is not seen
    assert np.allclose(feat, block[1:].reshape(5, 8, 384).numpy(), atol=1e-5)
    batch = v1.features_batch([img, image(24, 24, 3), other])
    assert [b.shape for b in batch] == [(5, 8, 384), (3, 3, 384), (5, 8, 384)]
    assert np.allclose(batch[0], feat, atol=1e-5) and np.allclose(batch[2], v1.features(other), atol=1e-5)
    with pytest.raises(ValueError, match="smaller than one 8-pixel patch"):
        v1.features(image(7, 30))
    with pytest.raises(TypeError, match="uint8"):
        v1.features(img.astype(np.float32))


def test_dinov2_drops_mask_token_and_returns_normed_tokens(files):
    model, path = files[V2]
    t = TEACHERS.build({"type": "dino", "model": V2, "weights": str(path)})
    assert (t.dim, t.patch_size, t.version, t.final_norm) == (384, 14, 2, True)
    loaded, saved = t.network.state_dict(), model.state_dict()
    assert "mask_token" not in loaded and all(torch.equal(loaded[k], saved[k]) for k in saved)
    img = image(56, 42)
    feat, emb = t.features_and_embedding(img)
    assert feat.shape == (4, 3, 384) and emb.shape == (384,) and feat.dtype == emb.dtype == np.float32
    block, normed = last_block_output(model, img)
    assert np.allclose(feat, normed[1:].reshape(4, 3, 384).numpy(), atol=1e-5)  # Bridge3D's last_hidden_state
    assert np.allclose(emb, normed[0].numpy(), atol=1e-5) and np.allclose(t.embedding(img), emb, atol=1e-6)
    raw = DinoTeacher(V2, weights=path, final_norm=False).features(img)
    assert np.allclose(raw, block[1:].reshape(4, 3, 384).numpy(), atol=1e-5)
    resized = DinoTeacher(V2, weights=path, image_size=[28, 42]).features(image(100, 60))
    assert resized.shape == (2, 3, 384)


def test_dinov2_registers_are_converted_and_left_out_of_the_map(files):
    model, path = files[V2_REG]
    t = DinoTeacher(V2_REG, weights=path)
    assert t.num_prefix_tokens == 5
    loaded, saved = t.network.state_dict(), model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.allclose(loaded[k], saved[k], atol=1e-6) for k in saved)  # cls_token re-summed
    img = image(42, 28)
    _, normed = last_block_output(model, img)
    assert np.allclose(t.features(img), normed[5:].reshape(3, 2, 384).numpy(), atol=1e-4)


def _one_line_input_error(excinfo, path: Path, *needles: str) -> str:
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, InputError) and "\n" not in msg and str(path) in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_wrong_files_are_refused_in_one_line(files, tmp_path):
    model, _ = files[V1]
    sd = official_layout(model, V1)
    bad = dict(sd)
    del bad["norm.weight"]
    bad["head.weight"] = torch.zeros(1000, 384)
    bad["blocks.0.norm1.weight"] = torch.zeros(10)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(InputError) as e:
        DinoTeacher(V1, weights=tmp_path / "bad.pth")
    _one_line_input_error(e, tmp_path / "bad.pth", "1 tensor missing (norm.weight)", "1 unexpected (head.weight)",
                          "blocks.0.norm1.weight: [10] in the file, [384] in the model")

    # another patch size: timm's filter would resample it silently, the teacher refuses
    torch.save(random_vit("vit_small_patch16_224.dino").state_dict(), tmp_path / "s16.pth")
    with pytest.raises(InputError) as e:
        DinoTeacher(V1, weights=tmp_path / "s16.pth")
    _one_line_input_error(e, tmp_path / "s16.pth", "patch embedding is [384, 3, 16, 16] in the file, [384, 3, 8, 8]")

    # a DINOv2 file of another resolution (pos_embed grid) is refused rather than resampled
    v2 = official_layout(files[V2][0], V2)
    v2["pos_embed"] = v2["pos_embed"][:, :257]
    torch.save(v2, tmp_path / "v2_224.pth")
    with pytest.raises(InputError) as e:
        DinoTeacher(V2, weights=tmp_path / "v2_224.pth")
    _one_line_input_error(e, tmp_path / "v2_224.pth", "position embedding has 257 tokens in the file, 1370")


class Payload:  # a pickled object of this class names code: weights_only refuses to load it
    pass


def test_checkpoints_are_data_never_code(tmp_path):
    torch.save({"cls_token": Payload()}, tmp_path / "code.pth")
    with pytest.raises(InputError) as e:
        DinoTeacher(V1, weights=tmp_path / "code.pth")
    _one_line_input_error(e, tmp_path / "code.pth", "refused: its pickle names code", "Payload")


def test_a_missing_file_names_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LgsegError) as e:
        TEACHERS.build({"type": "dino", "model": "vit_base_patch8_224.dino"})
    msg = str(e.value)
    assert "\n" not in msg and "lgseg download-weights dino_vitb8" in msg
    assert str(tmp_path / ".cache/lgseg/weights/dino_vitbase8_pretrain.pth") in msg
    with pytest.raises(LgsegError, match=r"nothing\.pth: .*not found.*lgseg download-weights dinov2_vitl14"):
        DinoTeacher("vit_large_patch14_dinov2.lvd142m", weights=tmp_path / "nothing.pth")


def test_options_are_checked():
    with pytest.raises(ValueError, match=r"teacher type 'dino': model must be one of .*vit_base_patch8_224\.dino"):
        TEACHERS.build({"type": "dino", "model": "vit_base_patch16_224"})
    with pytest.raises(ValueError, match="teacher.layer is not a key"):
        TEACHERS.build({"type": "dino", "layer": 11})
    with pytest.raises(ValueError, match="image_size must be"):
        TEACHERS.build({"type": "dino", "image_size": [224]})
