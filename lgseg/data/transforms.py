"""The reference's training augmentations, each a small class registered in ``TRANSFORMS``.

A transform is called as ``t(sample, rng)`` on a dict sample with "coord" (N, 3) metres and
"color" (N, 3) in 0..255 (other keys such as "label" pass through untouched) and returns a new
dict; the input arrays are never modified in place. Randomness comes only from the
``np.random.Generator`` passed in, so a sample is reproducible from its generator's seed.

Defaults are the reference's (notes 1.3): elastic distortion ((0.2, 0.4), (0.8, 1.6)) with
p=0.95; rotation x, y ~ U(-pi/64, pi/64), z ~ U(-pi, pi) in random axis order; scale U(0.9, 1.1);
horizontal flip p=0.95 then each horizontal axis with p=0.5; chromatic auto-contrast p=0.2 with
a random blend; chromatic translation ratio 0.1 (p=0.95); chromatic jitter std 0.05 (p=0.95);
colour normalised as rgb/255 - 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from lgseg.config import augment_cfgs
from lgseg.registry import Registry

Sample = dict[str, Any]
Transform = Callable[[Sample, np.random.Generator], Sample]

TRANSFORMS = Registry("transform")


def _check_p(p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be in [0, 1], not {p}")
    return float(p)


def _check_range(name: str, r: Sequence[float]) -> tuple[float, float]:
    if len(r) != 2 or float(r[0]) > float(r[1]):
        raise ValueError(f"{name} must be a [low, high] pair with low <= high, not {list(r)}")
    return float(r[0]), float(r[1])


def _bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max of (N, C) ``x``; column by column, which numpy does far faster
    than ``x.min(axis=0)`` on a C-ordered array."""
    cols = [x[:, c] for c in range(x.shape[1])]
    return np.array([c.min() for c in cols]), np.array([c.max() for c in cols])


def _centre(coord: np.ndarray) -> np.ndarray:
    """Centre of the bounding box: geometric transforms act about it, so the scene stays put."""
    lo, hi = _bounds(coord)
    return (lo + hi) / 2


def _with(sample: Sample, **arrays: np.ndarray) -> Sample:
    out = dict(sample)
    out.update(arrays)
    return out


@TRANSFORMS.register("elastic")
class ElasticDistortion:
    """Smooth random displacement field, one per (granularity, magnitude) pair, in metres.

    Gaussian noise on a coarse grid of spacing ``granularity`` is blurred (two passes of a
    3x3x3 box filter) and trilinearly interpolated at each point, times ``magnitude``.
    """

    def __init__(self, params: Sequence[Sequence[float]] = ((0.2, 0.4), (0.8, 1.6)), p: float = 0.95) -> None:
        pairs = [tuple(float(v) for v in pair) for pair in params]
        if any(len(pair) != 2 or pair[0] <= 0 or pair[1] < 0 for pair in pairs):
            raise ValueError(f"params must be [granularity > 0, magnitude >= 0] pairs, not {params}")
        self.params = pairs
        self.p = _check_p(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        coord = np.asarray(sample["coord"], dtype=np.float64)
        for granularity, magnitude in self.params:
            coord = coord + magnitude * self._field(coord, granularity, rng)
        return _with(sample, coord=coord)

    @staticmethod
    def _field(coord: np.ndarray, granularity: float, rng: np.random.Generator) -> np.ndarray:
        lo, hi = _bounds(coord)
        # Grid node k sits at lo + (k - 1) * granularity: one node of margin on each side.
        dims = ((hi - lo) // granularity).astype(int) + 3
        noise = rng.standard_normal((*dims, 3))
        for _ in range(2):
            noise = ndimage.uniform_filter(noise, size=(3, 3, 3, 1), mode="reflect")
        pos = ((coord - lo) / granularity + 1).T
        return np.stack(
            [ndimage.map_coordinates(noise[..., c], pos, order=1, mode="nearest") for c in range(3)],
            axis=1,
        )


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@TRANSFORMS.register("rotation")
class RandomRotation:
    """Rotate about the scene centre by a random angle per axis, composed in random axis order."""

    def __init__(
        self,
        x: Sequence[float] = (-math.pi / 64, math.pi / 64),
        y: Sequence[float] = (-math.pi / 64, math.pi / 64),
        z: Sequence[float] = (-math.pi, math.pi),
        p: float = 1.0,
    ) -> None:
        self.ranges = (_check_range("x", x), _check_range("y", y), _check_range("z", z))
        self.p = _check_p(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        rots = [_axis_rotation(a, rng.uniform(*self.ranges[a])) for a in range(3)]
        order = rng.permutation(3)
        rot = rots[order[0]] @ rots[order[1]] @ rots[order[2]]
        coord = np.asarray(sample["coord"], dtype=np.float64)
        centre = _centre(coord)
        # einsum, not @: a threaded BLAS call for an (N,3)x(3,3) product can stall for tens of
        # ms when DataLoader workers compete for cores.
        return _with(sample, coord=np.einsum("ij,kj->ik", coord - centre, rot) + centre)


@TRANSFORMS.register("scale")
class RandomScale:
    """Isotropic scaling about the scene centre by a factor ~ U(scale_range)."""

    def __init__(self, scale_range: Sequence[float] = (0.9, 1.1), p: float = 1.0) -> None:
        self.scale_range = _check_range("scale_range", scale_range)
        if self.scale_range[0] <= 0:
            raise ValueError(f"scale_range must be positive, not {list(scale_range)}")
        self.p = _check_p(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        factor = rng.uniform(*self.scale_range)
        coord = np.asarray(sample["coord"], dtype=np.float64)
        centre = _centre(coord)
        return _with(sample, coord=(coord - centre) * factor + centre)


@TRANSFORMS.register("flip")
class RandomHorizontalFlip:
    """With probability p, mirror each horizontal axis (x, y; z is up) with probability 0.5."""

    def __init__(self, p: float = 0.95) -> None:
        self.p = _check_p(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        coord = np.array(sample["coord"], dtype=np.float64)  # copy: edited per axis below
        for axis in (0, 1):
            if rng.random() < 0.5:
                # (min + max) - v mirrors about the centre and keeps the bounding box.
                coord[:, axis] = coord[:, axis].min() + coord[:, axis].max() - coord[:, axis]
        return _with(sample, coord=coord)


@TRANSFORMS.register("crop")
class RandomCrop:
    """Keep the ``points`` points nearest (in xy) to a random point of the scene.

    Not in the reference (it trained on whole scenes, off there); it bounds the work per sample,
    so small CPU budgets still take many optimiser steps on varied pieces of rooms.
    """

    def __init__(self, points: int) -> None:
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise ValueError(f"crop points must be a positive integer, not {points!r}")
        self.points = points

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        coord = np.asarray(sample["coord"])
        n = len(coord)
        if n <= self.points:
            return sample
        centre = coord[rng.integers(n), :2]
        d2 = ((coord[:, :2] - centre) ** 2).sum(axis=1)
        keep = np.sort(np.argpartition(d2, self.points - 1)[: self.points])  # sorted: keep point order
        return {k: v[keep] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == n else v
                for k, v in sample.items()}


@TRANSFORMS.register("auto_contrast")
class ChromaticAutoContrast:
    """Stretch each channel to 0..255 and blend with the original (random blend if None)."""

    def __init__(self, p: float = 0.2, blend_factor: float | None = None) -> None:
        self.p = _check_p(p)
        if blend_factor is not None and not 0.0 <= blend_factor <= 1.0:
            raise ValueError(f"blend_factor must be in [0, 1] or null, not {blend_factor}")
        self.blend_factor = blend_factor

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        color = np.asarray(sample["color"], dtype=np.float64)
        lo, hi = _bounds(color)
        span = np.where(hi > lo, hi - lo, 1.0)  # a flat channel stays as it is
        contrast = np.where(hi > lo, (color - lo) * (255.0 / span), color)
        blend = rng.random() if self.blend_factor is None else self.blend_factor
        return _with(sample, color=np.clip((1 - blend) * color + blend * contrast, 0.0, 255.0))


@TRANSFORMS.register("color_translation")
class ChromaticTranslation:
    """Add one random RGB offset, uniform in +-ratio*255 per channel, to every point of a scene."""

    def __init__(self, ratio: float = 0.1, p: float = 0.95) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], not {ratio}")
        self.ratio = float(ratio)
        self.p = _check_p(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        shift = (rng.random(3) - 0.5) * 2 * 255 * self.ratio
        color = np.asarray(sample["color"], dtype=np.float64)
        return _with(sample, color=np.clip(color + shift, 0.0, 255.0))


@TRANSFORMS.register("color_jitter")
class ChromaticJitter:
    """Add independent Gaussian noise of std ``std * 255`` to every colour value."""

    def __init__(self, std: float = 0.05, p: float = 0.95) -> None:
        if std < 0:
            raise ValueError(f"std must be >= 0, not {std}")
        self.std = float(std)
        self.p = _check_p(p)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        color = np.asarray(sample["color"], dtype=np.float64)
        noise = rng.standard_normal(color.shape) * (self.std * 255)
        return _with(sample, color=np.clip(color + noise, 0.0, 255.0))


@TRANSFORMS.register("normalize_color")
class NormalizeColor:
    """rgb/255 - 0.5 as float32 (the reference's ``normalize_color``); always the last transform."""

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        color = np.asarray(sample["color"], dtype=np.float32)
        return _with(sample, color=color / np.float32(255.0) - np.float32(0.5))


@TRANSFORMS.register("compose")
class Compose:
    """Apply transforms in order; entries may be transforms or cfg dicts with a "type" key."""

    def __init__(self, transforms: Sequence[Transform | Mapping[str, Any]] = ()) -> None:
        self.transforms: list[Transform] = [
            TRANSFORMS.build(t) if isinstance(t, Mapping) else t for t in transforms
        ]

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self) -> str:
        return f"Compose([{', '.join(type(t).__name__ for t in self.transforms)}])"


def build_transforms(cfg: Mapping[str, Any] | None, train: bool) -> Compose:
    """The pipeline for params.yaml's ``augment`` section, e.g. ``{"elastic": true, "scale_range": [0.9, 1.1]}``.

    ``lgseg.config.augment_cfgs`` turns the section into one ``TRANSFORMS`` cfg per augmentation
    (switches, option names). With ``train=False`` the result is only NormalizeColor (the section is
    still built, so a typo fails early). Unknown keys and bad values raise ValueError naming the key.
    """
    transforms: list[Transform] = []
    for spec, keys in augment_cfgs(cfg):
        try:
            transforms.append(TRANSFORMS.build(spec))
        except ValueError as e:
            raise ValueError(f"{', '.join(keys)}: {e}") from e
    if not train:
        transforms = []
    transforms.append(NormalizeColor())
    return Compose(transforms)
