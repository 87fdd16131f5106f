"""Text encoders: CLIP with the real ViT-B/32 architecture (random weights) and the offline sentence model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lgseg.config import build_text_encoder
from lgseg.errors import LgsegError
from lgseg.text.clip_text import clip_model_module
from lgseg.text.encoders import (
    TEXT_ENCODERS,
    ClipTextEncoder,
    SentenceTextEncoder,
)

NAMES = ["chair", "office chair", "wall", "table", "toilet paper dispenser"]


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory) -> tuple[dict[str, torch.Tensor], Path]:
    """Random ViT-B/32 CLIP (the real architecture), fp16 like the published weights, saved as a state dict."""
    torch.manual_seed(0)
    clip_model = clip_model_module()
    model = clip_model.CLIP(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                            vision_patch_size=32, context_length=77, vocab_size=49408,
                            transformer_width=512, transformer_heads=8, transformer_layers=12)
    clip_model.convert_weights(model)
    state_dict = model.state_dict()
    path = tmp_path_factory.mktemp("vit_b32") / "ViT-B-32-random.pt"
    torch.save(state_dict, path)
    return state_dict, path


@pytest.fixture(scope="module")
def clip_encoder(vit_b32) -> ClipTextEncoder:
    return build_text_encoder({"encoder": "clip", "clip_model": "ViT-B/32", "clip_weights": str(vit_b32[1]),
                               "prompt": "{}"})


@pytest.fixture(scope="module")
def sentence_encoder() -> SentenceTextEncoder:
    # clip_* keys stay in params.yaml when switching encoder; they must be ignored
    return build_text_encoder({"encoder": "sentence", "clip_model": "ViT-B/32", "clip_weights": ""})


def _unit_rows(emb: np.ndarray) -> bool:
    return np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


# --- CLIP --------------------------------------------------------------------------------------

def test_clip_encoder_from_params(clip_encoder, vit_b32):
    assert isinstance(clip_encoder, ClipTextEncoder)
    assert (clip_encoder.name, clip_encoder.model, clip_encoder.dim) == ("clip", "ViT-B/32", 512)
    # build_clip round trip on the full architecture: every weight arrives unchanged, as float32
    loaded = clip_encoder.network.state_dict()
    assert loaded.keys() == vit_b32[0].keys()
    assert all(torch.equal(loaded[k], v.float()) for k, v in vit_b32[0].items())


@pytest.fixture(scope="module")
def clip_emb(clip_encoder) -> np.ndarray:
    return clip_encoder.encode(NAMES)  # CLIP on CPU is slow: encode once, reuse


def test_clip_encode_shape_norm_distinct(clip_emb):
    assert clip_emb.shape == (len(NAMES), 512) and clip_emb.dtype == np.float32
    assert _unit_rows(clip_emb)
    cos = clip_emb @ clip_emb.T
    assert cos[~np.eye(len(NAMES), dtype=bool)].max() < 0.999  # different names, different rows


def test_clip_encode_is_repeatable_batch_and_spelling_independent(clip_encoder, clip_emb):
    """Re-encoding one at a time, with other case and spacing, gives the same rows (up to float order)."""
    clip_encoder.batch_size = 1
    try:
        again = clip_encoder.encode([NAMES[0], "  Office   Chair"])  # tokenizer cleans case/spaces
    finally:
        clip_encoder.batch_size = 64
    np.testing.assert_allclose(again, clip_emb[:2], atol=1e-5)


def test_clip_encoder_without_weights_explains_offline_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LgsegError, match=r"~/\.cache/clip/ViT-B-32\.pt.*text\.clip_weights"):
        ClipTextEncoder()


# --- sentence ----------------------------------------------------------------------------------

def test_sentence_encoder(sentence_encoder):
    assert isinstance(sentence_encoder, SentenceTextEncoder)
    assert sentence_encoder.dim == 384
    emb = sentence_encoder.encode(["chair", "office chair", "wall"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32 and _unit_rows(emb)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2  # a real language model, not noise


# --- interface and params ----------------------------------------------------------------------

def test_encode_input_checks(sentence_encoder):
    with pytest.raises(TypeError, match="not a single string"):
        sentence_encoder.encode("chair")
    assert sentence_encoder.encode([]).shape == (0, 384)


def test_build_text_encoder_errors():
    assert TEXT_ENCODERS.keys() == ("clip", "sentence")
    with pytest.raises(ValueError, match=r"text\.encoder must be one of clip, sentence, not 'bert'"):
        build_text_encoder({"encoder": "bert"})
    with pytest.raises(ValueError, match="not 'None'|not None"):
        build_text_encoder({"clip_model": "ViT-B/32"})
    with pytest.raises(ValueError, match=r"text\.clip_weight is not.*clip_weights"):
        build_text_encoder({"encoder": "clip", "clip_weight": "x.pt"})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        build_text_encoder({"encoder": "clip", "batch_size": 0})
