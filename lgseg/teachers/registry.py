"""The registry of 2D teachers and the interface every teacher keeps.

``TEACHERS.build({"type": "clip" | "dino" | "sam", **options})`` builds one (each builder is
registered next to its class, in ``clip_image.py``, ``dino.py``, ``sam.py``; importing
``lgseg.teachers`` registers them all).

Two kinds of teacher:

- a **feature teacher** (:class:`FeatureTeacher`): ``features(image)`` -> ``(h, w, dim)`` float32,
  a per-cell map whose grid ``output_size(H, W)`` gives; cell ``(i, j)`` covers input pixels
  ``[i*sy, (i+1)*sy) x [j*sx, (j+1)*sx)`` with ``(sy, sx) = stride`` (see each teacher for rounding);
- a **mask teacher** (:class:`MaskTeacher`): ``masks(image)`` -> ``(H, W)`` int32 region ids, 0 = no
  region, the regions numbered 1..K without gaps.

Images are ``(H, W, 3)`` uint8 RGB numpy arrays (what ``cv2.imread`` gives after ``cv2.cvtColor(...,
cv2.COLOR_BGR2RGB)``). Teachers hold no gradients and never download anything: their weights come
from local files (see :mod:`lgseg.teachers.weights`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from lgseg.registry import Registry

TEACHERS = Registry("teacher")


def check_image(image: Any) -> np.ndarray:
    """``image`` as a C-contiguous, writable (H, W, 3) uint8 array (copied only when it is neither);
    TypeError/ValueError naming what is wrong."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"a teacher takes an (H, W, 3) uint8 RGB numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"a teacher takes a uint8 RGB image (0..255), not {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a teacher takes an (H, W, 3) RGB image, not shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"the image is empty (shape {image.shape})")
    return np.require(image, requirements=["C", "W"])


class FeatureTeacher(ABC):
    """``features(image)`` -> (h, w, dim) float32; ``name`` is the registry key, ``model`` the network."""

    name: str
    model: str
    dim: int

    @abstractmethod
    def features(self, image: np.ndarray) -> np.ndarray:
        """The (h, w, dim) float32 feature map of one (H, W, 3) uint8 RGB image."""

    @abstractmethod
    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The grid (h, w) that ``features`` gives for an image of ``height`` x ``width`` pixels."""

    def features_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``features`` of each image (teachers that can batch override this)."""
        return [self.features(image) for image in images]

    def text_space(self) -> dict | None:
        """The text encoder whose embedding space the features share (encoder, model, dim), None when
        they are in no text space (DINO): distillation reads out classes only through matching anchors."""
        return None

    def meta(self) -> dict:
        """What lifted features of this teacher are: its name, model, width and text space."""
        return {"teacher": self.name, "model": self.model, "dim": int(self.dim), "text": self.text_space()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, dim={self.dim})"


class MaskTeacher(ABC):
    """``masks(image)`` -> (H, W) int32 region ids: 0 = none, regions numbered 1..K."""

    name: str
    model: str

    @abstractmethod
    def masks(self, image: np.ndarray) -> np.ndarray:
        """The (H, W) int32 region-id map of one (H, W, 3) uint8 RGB image."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
