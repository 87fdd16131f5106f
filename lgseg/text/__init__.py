"""Text side: class-name embeddings from CLIP or an offline sentence encoder.

``lgseg.config.build_text_encoder(params["text"])`` -> ``TextEncoder``; ``class_embeddings`` embeds the 200
ScanNet200 names; ``save_embeddings`` / ``load_embeddings`` store them with a meta.json.
"""

from lgseg.text.clip_text import build_clip, load_clip_weights, tokenize
from lgseg.text.embed import (
    check_compatible,
    class_embeddings,
    embedding_meta,
    load_embeddings,
    save_embeddings,
)
from lgseg.text.encoders import (
    TEXT_ENCODERS,
    ClipTextEncoder,
    SentenceTextEncoder,
    TextEncoder,
)

__all__ = [
    "TEXT_ENCODERS", "ClipTextEncoder", "SentenceTextEncoder", "TextEncoder", "build_clip",
    "check_compatible", "class_embeddings", "embedding_meta",
    "load_clip_weights", "load_embeddings", "save_embeddings", "tokenize",
]
