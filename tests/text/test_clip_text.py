"""CLIP text side: tokenizer ids, reading weight files (TorchScript / plain / missing / corrupt), build_clip.

A tiny CLIP (one layer, 64 wide, but 512-d ViT output like ViT-B/32) keeps these fast; the real
ViT-B/32 architecture is exercised in test_encoders.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lgseg.errors import LgsegError
from lgseg.text.clip_text import (
    EOT_TOKEN,
    SOT_TOKEN,
    build_clip,
    clip_model_module,
    load_clip_weights,
    tokenize,
)


def tiny_clip(seed: int = 0) -> torch.nn.Module:
    """A random 1-layer ViT CLIP with 512-d embeddings and CLIP's vocabulary, fp16 like the published files."""
    torch.manual_seed(seed)
    clip_model = clip_model_module()
    model = clip_model.CLIP(embed_dim=512, image_resolution=32, vision_layers=1, vision_width=64,
                            vision_patch_size=32, context_length=77, vocab_size=49408,
                            transformer_width=64, transformer_heads=1, transformer_layers=1)
    clip_model.convert_weights(model)
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[dict[str, torch.Tensor], Path, Path]:
    """(state dict, plain torch.save file, TorchScript archive) of one tiny CLIP."""
    model = tiny_clip()
    state_dict = {k: v.clone() for k, v in model.state_dict().items()}
    d = tmp_path_factory.mktemp("tiny_clip")
    torch.save(state_dict, d / "plain.pt")
    # the published archives are traced models that also carry these three entries
    for key, value in [("input_resolution", 32), ("context_length", 77), ("vocab_size", 49408)]:
        if hasattr(model, key):
            delattr(model, key)  # plain int attributes on CLIP; tensors in the archives
        model.register_buffer(key, torch.tensor(value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the argmax are irrelevant here
        traced = torch.jit.trace_module(model.float(), {"encode_text": tokenize(["a chair"])})
        torch.jit.save(traced, str(d / "jit.pt"))
    return state_dict, d / "plain.pt", d / "jit.pt"


# --- tokenizer ---------------------------------------------------------------------------------

def test_tokenize_known_ids_and_padding():
    tokens = tokenize(["a diagram", "chair"])
    assert tokens.dtype == torch.long and tokens.shape == (2, 77)
    # ids checked against clip.tokenize (openai-clip 1.0.1) when this was written
    assert tokens[0, :4].tolist() == [SOT_TOKEN, 320, 22697, EOT_TOKEN]
    assert tokens[1, :3].tolist() == [SOT_TOKEN, 4269, EOT_TOKEN]
    assert (tokens[0, 4:] == 0).all() and (tokens[1, 3:] == 0).all()


def test_tokenize_cleans_case_and_whitespace():
    assert torch.equal(tokenize("Chair"), tokenize("  chair \n"))
    assert not torch.equal(tokenize("chair"), tokenize("chairs"))


def test_tokenize_length_limit_names_the_text():
    assert tokenize("a " * 75)[0, -1] == EOT_TOKEN  # 75 words + SOT + EOT = 77 fits exactly
    with pytest.raises(LgsegError, match=r"'a a a .*78 CLIP tokens"):
        tokenize("a " * 76)
    assert tokenize("a b", context_length=4).shape == (1, 4)


# --- weights files -----------------------------------------------------------------------------

def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)


def test_load_plain_state_dict(tiny):
    state_dict, plain, _ = tiny
    assert _equal(load_clip_weights("ViT-B/32", plain), state_dict)


def test_load_torchscript_archive(tiny):
    state_dict, _, jit = tiny
    loaded = load_clip_weights("ViT-B/32", jit)
    assert {"input_resolution", "context_length", "vocab_size"} <= loaded.keys()
    assert _equal({k: loaded[k] for k in state_dict}, state_dict)
    model = build_clip(loaded)  # the extra entries are dropped by build_model
    assert _equal(model.state_dict(), state_dict)


def test_default_location_is_clip_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / ".cache" / "clip"
    cache.mkdir(parents=True)
    (cache / "ViT-B-32.pt").write_bytes(tiny[1].read_bytes())
    assert _equal(load_clip_weights("ViT-B/32"), tiny[0])
    assert _equal(load_clip_weights("ViT-B/32", ""), tiny[0])  # params.yaml's empty clip_weights


def test_missing_weights_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LgsegError) as e:
        load_clip_weights("ViT-B/32")
    msg = str(e.value)
    assert "~/.cache/clip/ViT-B-32.pt" in msg and "text.clip_weights" in msg
    assert str(tmp_path / ".cache" / "clip" / "ViT-B-32.pt") in msg
    assert "lgseg download-clip ViT-B/32" in msg
    with pytest.raises(LgsegError, match="RN50.pt"):
        load_clip_weights("RN50")
    with pytest.raises(LgsegError, match=r"nowhere\.pt.*does not exist"):
        load_clip_weights("ViT-B/32", tmp_path / "nowhere.pt")


def test_corrupt_or_foreign_files_are_named(tiny, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny[1].read_bytes()[:5000])
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    for path in (garbage, truncated, tensor):
        with pytest.raises(LgsegError, match=str(path)):
            load_clip_weights("ViT-B/32", path)


def test_weights_of_another_model_are_refused(tiny):
    with pytest.raises(LgsegError, match="not ViT-L/14"):
        load_clip_weights("ViT-L/14", tiny[1])  # 512-d file, ViT-L/14 is 768-d
    with pytest.raises(LgsegError, match="not RN101"):
        load_clip_weights("RN101", tiny[1])  # 512-d too, but a ViT
    with pytest.raises(LgsegError, match="unknown CLIP model 'ViT-X'.*ViT-B/32"):
        load_clip_weights("ViT-X", tiny[1])


# --- build_clip --------------------------------------------------------------------------------

def test_build_clip_round_trips_and_keeps_its_input(tiny):
    state_dict = dict(tiny[0])
    state_dict["vocab_size"] = torch.tensor(49408)
    model = build_clip(state_dict)
    assert "vocab_size" in state_dict  # build_model deletes keys: it must get a copy
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp16 is slow on CPU
    assert not model.training
    assert _equal(model.state_dict(), tiny[0])


def test_build_clip_rejects_a_non_clip_state_dict():
    with pytest.raises(LgsegError, match="not a CLIP state dict"):
        build_clip({"weight": torch.zeros(2, 2)})
