"""Sparse 3D U-Nets (MinkowskiEngine) and weight transfer.

Names resolve lazily so that ``import lgseg.models`` does not load MinkowskiEngine.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "build_model": "lgseg.models.registry",
    "MODELS": "lgseg.models.registry",
    "SegmentationNet": "lgseg.models.res16unet",
    "InstanceSegmentationNet": "lgseg.models.res16unet",
    "semantic_logits": "lgseg.models.res16unet",
    "count_parameters": "lgseg.models.res16unet",
    "transfer_weights": "lgseg.models.weights",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lgseg.models' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
