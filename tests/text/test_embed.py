"""Class embeddings with the offline sentence encoder, and the embeddings.npy / meta.json pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lgseg.errors import InputError, LgsegError
from lgseg.scannet.constants import CLASS_NAMES, NAME_TO_INDEX
from lgseg.text.embed import (
    check_compatible,
    class_embeddings,
    embedding_meta,
    load_embeddings,
    save_embeddings,
)
from lgseg.text.encoders import SentenceTextEncoder


@pytest.fixture(scope="module")
def encoder() -> SentenceTextEncoder:
    return SentenceTextEncoder()


@pytest.fixture(scope="module")
def emb(encoder) -> np.ndarray:
    return class_embeddings(encoder)


@pytest.fixture
def saved(tmp_path, encoder, emb) -> Path:
    out = tmp_path / "text"
    save_embeddings(out, emb, embedding_meta(encoder))
    return out


def test_class_embeddings_rows_follow_class_order(encoder, emb):
    assert emb.shape == (200, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    for name in ("chair", "wall", "mattress"):
        np.testing.assert_allclose(emb[NAME_TO_INDEX[name]], encoder.encode([name])[0], atol=1e-5)


def test_prompt_template_is_applied(encoder, emb):
    prompted = class_embeddings(encoder, ["chair", "table"], prompt="a photo of a {}.")
    np.testing.assert_allclose(prompted, encoder.encode(["a photo of a chair.", "a photo of a table."]),
                               atol=1e-5)
    assert not np.allclose(prompted[0], emb[NAME_TO_INDEX["chair"]], atol=1e-3)
    for bad in ("no placeholder", "{} and {}", "a {0}"):
        with pytest.raises(LgsegError, match="exactly one"):
            class_embeddings(encoder, ["chair"], prompt=bad)


def test_save_load_round_trip(saved, emb):
    assert sorted(p.name for p in saved.iterdir()) == ["embeddings.npy", "meta.json"]  # no temp files
    loaded, meta = load_embeddings(saved)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, emb)
    assert meta == {"encoder": "sentence", "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "prompt": "{}", "dim": 384, "class_names": list(CLASS_NAMES)}


def _edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))


def test_load_rejects_wrong_dim(saved):
    _edit_meta(saved, dim=512)
    with pytest.raises(InputError, match=r"embeddings\.npy: shape \(200, 384\) does not match meta\.json"):
        load_embeddings(saved)


def test_load_rejects_reordered_class_names(saved):
    names = list(CLASS_NAMES)
    names[3], names[4] = names[4], names[3]
    _edit_meta(saved, class_names=names)
    with pytest.raises(InputError, match=rf"meta\.json: class_names .*name 3 is '{names[3]}'"):
        load_embeddings(saved)


def test_load_rejects_wrong_rows_and_missing_files(saved, emb):
    np.save(saved / "embeddings.npy", emb[:199])
    with pytest.raises(InputError, match=r"embeddings\.npy: shape \(199, 384\)"):
        load_embeddings(saved)
    (saved / "meta.json").unlink()
    with pytest.raises(InputError, match=r"meta\.json: missing"):
        load_embeddings(saved)


def test_save_refuses_inconsistent_input(tmp_path, encoder, emb):
    meta = embedding_meta(encoder)
    with pytest.raises(InputError, match="shape"):
        save_embeddings(tmp_path, emb[:10], meta)
    with pytest.raises(InputError, match="float32"):
        save_embeddings(tmp_path, emb.astype(np.float64), meta)
    with pytest.raises(InputError, match="missing keys"):
        save_embeddings(tmp_path, emb, {"encoder": "sentence"})
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_check_compatible(encoder):
    meta = embedding_meta(encoder)
    check_compatible(meta, dict(meta))
    with pytest.raises(LgsegError, match=r"prompt: '\{\}' vs 'a \{\}'"):
        check_compatible(meta, {**meta, "prompt": "a {}"})
    with pytest.raises(LgsegError, match="encoder: 'sentence' vs 'clip'.*dim: 384 vs 512"):
        check_compatible(meta, {**meta, "encoder": "clip", "dim": 512})
