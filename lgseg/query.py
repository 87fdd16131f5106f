"""Open-vocabulary queries: how close each mesh vertex's language-grounded feature lies to a text.

The pretrained backbone maps every voxel into the text encoder's embedding space; a query embeds
the text with the same encoder (and prompt) that made the training anchors and scores each vertex
by the cosine similarity between its voxel's feature and that embedding. Any text works, not only
the 200 class names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgseg.data import ScanNetDataset
from lgseg.engine.checkpoint import load_model
from lgseg.engine.predict import predict_vertices
from lgseg.errors import LgsegError
from lgseg.scene_io import scene_dir
from lgseg.config import build_text_encoder
from lgseg.text.embed import check_compatible, embedding_meta


def query_encoder(text_meta: dict, encoder: str | None = None, clip_weights: str | None = None):
    """The text encoder a checkpoint was trained with (or ``encoder``, which must then match it)."""
    name = encoder or text_meta["encoder"]
    if name != text_meta["encoder"]:
        raise LgsegError(f"the checkpoint was trained towards the {text_meta['encoder']!r} text encoder "
                         f"({text_meta['model']}, {text_meta['dim']}-d); the {name!r} encoder embeds text in "
                         "another space, so its similarities would mean nothing. Leave --encoder out")
    cfg = {"encoder": name}
    if name == "clip":
        cfg.update(clip_model=text_meta["model"], clip_weights=clip_weights or "")
    try:
        enc = build_text_encoder(cfg)
    except ValueError as e:
        raise LgsegError(str(e)) from None
    check_compatible(text_meta, embedding_meta(enc, prompt=text_meta["prompt"]), "the checkpoint",
                     "the query's text encoder")
    return enc


def query_scores(model_path: str | Path, processed: str | Path, scene: str, text: str,
                 encoder: str | None = None, clip_weights: str | None = None, device: str = "cpu",
                 progress: bool = False) -> np.ndarray:
    """Cosine similarity (N,) between each mesh vertex's feature and the embedding of ``text``."""
    net, meta = load_model(model_path, device)
    if meta.get("kind") != "pretrain" or not meta.get("text"):
        raise LgsegError(f"{model_path}: a {meta.get('kind')} model; text queries need the language-grounded "
                         "backbone from pretraining (models/pretrain.pt), whose features live in the text space")
    text_meta = meta["text"]
    enc = query_encoder(text_meta, encoder, clip_weights)
    emb = torch.from_numpy(np.asarray(enc.encode([text_meta["prompt"].replace("{}", text)]), np.float32))
    emb = F.normalize(emb, dim=1).to(device)[0]
    if net.feature_dim != emb.numel():  # also covered by check_compatible; kept for hand-made checkpoints
        raise LgsegError(f"{model_path}: features are {net.feature_dim}-d but the text embedding is {emb.numel()}-d")
    d = scene_dir(processed, scene)
    dataset = ScanNetDataset(d.parent.parent, d.parent.name, voxel_size=meta["voxel_size"], scenes=[scene])
    with torch.no_grad():
        (_, scores), = predict_vertices(net, dataset, lambda out: F.normalize(out.float(), dim=1) @ emb,
                                        device, progress)
    return scores.astype(np.float32)
