"""Class-name embeddings (the language anchors of the pre-training loss) and their files.

A directory holds ``embeddings.npy`` (200 x D float32, row i = class index i) and ``meta.json``
{"encoder", "model", "prompt", "dim", "class_names"} that says how the rows were made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgseg.errors import InputError, LgsegError
from lgseg.fileio import atomic_file, write_json
from lgseg.scannet.constants import CLASS_NAMES
from lgseg.text.encoders import TextEncoder

EMBEDDINGS_FILE = "embeddings.npy"
META_FILE = "meta.json"
META_KEYS = ("encoder", "model", "prompt", "dim", "class_names")
COMPAT_KEYS = ("encoder", "model", "prompt", "dim")  # what a consumer's anchors must agree on
_FIX = "Recompute the embeddings: dvc repro text-embed"


def check_prompt(prompt: str) -> str:
    """A prompt template holds exactly one ``{}`` (the class name), e.g. ``"a photo of a {}."``."""
    if not isinstance(prompt, str) or prompt.count("{}") != 1:
        raise LgsegError(f"text.prompt must contain exactly one '{{}}' for the class name, not {prompt!r}")
    return prompt


def class_embeddings(encoder: TextEncoder, class_names: Sequence[str] = CLASS_NAMES,
                     prompt: str = "{}") -> np.ndarray:
    """(len(class_names), D) float32 unit rows; row i embeds ``prompt`` with class i's name.

    The default ``"{}"`` embeds the plain names, as the reference implementation did.
    """
    check_prompt(prompt)
    texts = [prompt.replace("{}", name) for name in class_names]  # replace: names may hold braces
    emb = np.asarray(encoder.encode(texts), dtype=np.float32)
    if emb.shape != (len(texts), encoder.dim):
        raise RuntimeError(f"encoder returned shape {emb.shape}, expected {(len(texts), encoder.dim)}")
    return emb


def embedding_meta(encoder: TextEncoder, prompt: str = "{}",
                   class_names: Sequence[str] = CLASS_NAMES) -> dict[str, Any]:
    """The meta.json content describing ``class_embeddings(encoder, class_names, prompt)``."""
    return {"encoder": encoder.name, "model": encoder.model, "prompt": prompt, "dim": int(encoder.dim),
            "class_names": list(class_names)}


def _validate(emb: np.ndarray, meta: Mapping[str, Any], where: Path) -> None:
    """Raise InputError (naming ``where``) unless ``emb``/``meta`` describe the 200 classes in order."""
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise InputError(where / META_FILE, f"missing keys {missing}", _FIX)
    if list(meta["class_names"]) != list(CLASS_NAMES):
        diff = next((i for i, (a, b) in enumerate(zip(meta["class_names"], CLASS_NAMES)) if a != b), None)
        detail = (f"{len(meta['class_names'])} names instead of {len(CLASS_NAMES)}" if diff is None
                  else f"name {diff} is {meta['class_names'][diff]!r}, expected {CLASS_NAMES[diff]!r}")
        raise InputError(where / META_FILE, f"class_names are not the ScanNet200 classes in order ({detail})",
                         _FIX)
    dim = meta["dim"]
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise InputError(where / META_FILE, f"dim must be a positive integer, not {dim!r}", _FIX)
    if emb.shape != (len(CLASS_NAMES), dim):
        raise InputError(where / EMBEDDINGS_FILE,
                         f"shape {emb.shape} does not match meta.json ({len(CLASS_NAMES)} classes x {dim})", _FIX)
    if emb.dtype != np.float32 or not np.isfinite(emb).all():
        raise InputError(where / EMBEDDINGS_FILE, f"must be finite float32 (dtype {emb.dtype})", _FIX)


def save_embeddings(out_dir: str | Path, emb: np.ndarray, meta: Mapping[str, Any]) -> None:
    """Write ``embeddings.npy`` and ``meta.json`` into ``out_dir``, each atomically.

    ``meta`` needs "encoder", "model" and "prompt" (see ``embedding_meta``); "dim" and
    "class_names" default to the array width and CLASS_NAMES. Nothing is written that
    ``load_embeddings`` would refuse.
    """
    out_dir = Path(out_dir)
    emb = np.asarray(emb)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (classes x dim), not shape {emb.shape}")
    full = {"dim": int(emb.shape[1]), "class_names": list(CLASS_NAMES), **meta}
    _validate(emb, full, out_dir)
    check_prompt(full["prompt"])
    with atomic_file(out_dir / EMBEDDINGS_FILE, "wb") as f:
        np.save(f, emb)
    write_json(out_dir / META_FILE, full)  # written last: a meta.json implies its embeddings are there


def load_embeddings(in_dir: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """``(emb, meta)`` from a directory written by ``save_embeddings``, checked for consistency."""
    in_dir = Path(in_dir)
    for name in (META_FILE, EMBEDDINGS_FILE):
        if not (in_dir / name).is_file():
            raise InputError(in_dir / name, "missing", _FIX)
    try:
        meta = json.loads((in_dir / META_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(in_dir / META_FILE, f"not valid JSON ({e})", _FIX) from e
    if not isinstance(meta, dict):
        raise InputError(in_dir / META_FILE, "must hold a JSON object", _FIX)
    try:
        emb = np.load(in_dir / EMBEDDINGS_FILE, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(in_dir / EMBEDDINGS_FILE, f"not a readable .npy array ({e})", _FIX) from e
    _validate(emb, meta, in_dir)
    return emb, meta


def check_compatible(meta_a: Mapping[str, Any], meta_b: Mapping[str, Any],
                     what_a: str = "embeddings", what_b: str = "checkpoint") -> None:
    """Raise LgsegError unless both metas name the same encoder, model, prompt and dim.

    For consumers that must match e.g. a pre-trained checkpoint to the anchors it was trained on.
    Note: two different weight files of one CLIP model name are not told apart.
    """
    diffs = [f"{k}: {meta_a.get(k)!r} vs {meta_b.get(k)!r}" for k in COMPAT_KEYS if meta_a.get(k) != meta_b.get(k)]
    if "class_names" in meta_a and "class_names" in meta_b and \
            list(meta_a["class_names"]) != list(meta_b["class_names"]):
        diffs.append("class_names differ")
    if diffs:
        raise LgsegError(f"{what_a} and {what_b} come from different text embeddings ({'; '.join(diffs)}). "
                         f"Use the same text settings (params.yaml text.*) for both")
