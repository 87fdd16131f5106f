"""Augmentations: geometric invariants, colour ranges, switches, labels untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from lgseg.data.transforms import (
    TRANSFORMS,
    ChromaticAutoContrast,
    ChromaticJitter,
    ChromaticTranslation,
    Compose,
    ElasticDistortion,
    NormalizeColor,
    RandomHorizontalFlip,
    RandomRotation,
    RandomScale,
    build_transforms,
)

ALL_ON = {k: True for k in ("elastic", "rotation", "scale", "flip", "auto_contrast",
                            "color_translation", "color_jitter")}


def _sample(n: int = 300, seed: int = 0, color_range: tuple[float, float] = (0.0, 255.0)) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "coord": rng.uniform([0, 0, 0], [4.0, 3.0, 2.5], size=(n, 3)),
        "color": rng.uniform(*color_range, size=(n, 3)),
        "label": rng.integers(-1, 200, size=n),
    }


def _fit_linear(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The 3x3 matrix R with after - mean = R (before - mean) (the transform's linear part)."""
    a, b = before - before.mean(0), after - after.mean(0)
    return np.linalg.lstsq(a, b, rcond=None)[0].T


def test_rotation_preserves_distances_and_respects_z_range():
    s = _sample()
    out = RandomRotation()(s, np.random.default_rng(0))
    np.testing.assert_allclose(pdist(out["coord"]), pdist(s["coord"]), rtol=1e-9)

    t = RandomRotation(x=(0, 0), y=(0, 0), z=(0.1, 0.2))
    angles = []
    for seed in range(10):
        rot = _fit_linear(s["coord"], t(s, np.random.default_rng(seed))["coord"])
        angles.append(math.atan2(rot[1, 0], rot[0, 0]))
        np.testing.assert_allclose(rot[2], [0, 0, 1], atol=1e-9)  # z untouched by a z rotation
    assert all(0.1 - 1e-9 <= a <= 0.2 + 1e-9 for a in angles)
    assert np.ptp(angles) > 0.01  # the angle is random


def test_default_rotation_tilts_up_axis_at_most_pi_over_64_per_axis():
    s = _sample()
    yaw = []
    for seed in range(20):
        rot = _fit_linear(s["coord"], RandomRotation()(s, np.random.default_rng(seed))["coord"])
        tilt = math.acos(np.clip(rot[2, 2], -1, 1))
        assert tilt <= math.hypot(math.pi / 64, math.pi / 64) + 1e-9
        yaw.append(math.atan2(rot[1, 0], rot[0, 0]))
    assert np.ptp(yaw) > 1.0  # full turns about z are drawn


def test_scale_is_uniform_and_in_range():
    s = _sample()
    factors = []
    for seed in range(20):
        ratio = pdist(RandomScale((0.9, 1.1))(s, np.random.default_rng(seed))["coord"]) / pdist(s["coord"])
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
        factors.append(ratio[0])
    assert 0.9 <= min(factors) and max(factors) <= 1.1 and np.ptp(factors) > 0.02


def test_flip_mirrors_horizontal_axes_only():
    s = _sample()
    c = s["coord"]
    mirrored = c.min(0) + c.max(0) - c
    seen = set()
    for seed in range(30):
        out = RandomHorizontalFlip(p=1.0)(s, np.random.default_rng(seed))["coord"]
        np.testing.assert_allclose(pdist(out), pdist(c), rtol=1e-9)
        np.testing.assert_array_equal(out[:, 2], c[:, 2])
        flips = []
        for ax in (0, 1):
            flipped = np.allclose(out[:, ax], mirrored[:, ax])
            assert flipped or np.array_equal(out[:, ax], c[:, ax])
            flips.append(flipped)
        seen.add(tuple(flips))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


def test_elastic_displacement_is_bounded_and_smooth():
    rng = np.random.default_rng(1)
    base = rng.uniform([0, 0, 0], [4.0, 3.0, 2.5], size=(500, 3))
    near = base + rng.normal(size=base.shape) * 1e-3 / math.sqrt(3)  # ~1 mm away
    s = {"coord": np.concatenate([base, near]), "color": np.zeros((1000, 3)), "label": np.zeros(1000)}
    t = ElasticDistortion(p=1.0)
    out = t(s, np.random.default_rng(2))["coord"]
    disp = out - s["coord"]
    norms = np.linalg.norm(disp, axis=1)
    assert norms.max() <= 0.4 + 1.6  # the sum of the magnitudes
    assert np.median(norms) > 0.02  # it does move points
    # points 1 mm apart move alike (a smooth field): far less than the typical displacement
    assert np.linalg.norm(disp[:500] - disp[500:], axis=1).max() < 0.005


def test_chromatic_ranges_and_statistics():
    extreme = _sample(2000, seed=3)
    extreme["color"][:10] = 0.0
    extreme["color"][10:20] = 255.0
    for t in (ChromaticAutoContrast(p=1.0), ChromaticTranslation(ratio=0.5, p=1.0),
              ChromaticJitter(std=0.3, p=1.0)):
        for seed in range(5):
            col = t(extreme, np.random.default_rng(seed))["color"]
            assert col.min() >= 0.0 and col.max() <= 255.0

    mid = _sample(20000, seed=4, color_range=(60.0, 190.0))  # far from the clip bounds
    noise = ChromaticJitter(std=0.05, p=1.0)(mid, np.random.default_rng(0))["color"] - mid["color"]
    assert abs(noise.mean()) < 0.5
    assert noise.std() == pytest.approx(0.05 * 255, rel=0.05)

    shift = ChromaticTranslation(ratio=0.1, p=1.0)(mid, np.random.default_rng(0))["color"] - mid["color"]
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-9)  # one vector
    assert np.abs(shift[0]).max() <= 0.1 * 255 and np.abs(shift[0]).max() > 0


def test_auto_contrast_stretches_each_channel():
    s = _sample(500, seed=5, color_range=(50.0, 150.0))
    full = ChromaticAutoContrast(p=1.0, blend_factor=1.0)(s, np.random.default_rng(0))["color"]
    np.testing.assert_allclose(full.min(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(full.max(0), 255.0, atol=1e-9)
    none = ChromaticAutoContrast(p=1.0, blend_factor=0.0)(s, np.random.default_rng(0))["color"]
    np.testing.assert_allclose(none, s["color"])


def test_normalize_color():
    out = NormalizeColor()({"color": np.array([[0, 255, 51]], dtype=np.uint8)})
    assert out["color"].dtype == np.float32
    np.testing.assert_allclose(out["color"], [[-0.5, 0.5, -0.3]], atol=1e-6)


@pytest.mark.parametrize("t", [
    ElasticDistortion(p=0.0), RandomRotation(p=0.0), RandomScale(p=0.0), RandomHorizontalFlip(p=0.0),
    ChromaticAutoContrast(p=0.0), ChromaticTranslation(p=0.0), ChromaticJitter(p=0.0),
])
def test_p_zero_is_identity(t):
    s = _sample()
    out = t(s, np.random.default_rng(0))
    np.testing.assert_array_equal(out["coord"], s["coord"])
    np.testing.assert_array_equal(out["color"], s["color"])


def test_full_pipeline_keeps_labels_and_inputs_and_is_reproducible():
    s = _sample()
    original = {k: v.copy() for k, v in s.items()}
    pipeline = build_transforms(ALL_ON, train=True)
    assert len(pipeline.transforms) == 8 and isinstance(pipeline.transforms[-1], NormalizeColor)
    for seed in range(5):
        out = pipeline(s, np.random.default_rng(seed))
        assert out["label"] is s["label"]
        assert out["color"].min() >= -0.5 and out["color"].max() <= 0.5
    for k in s:
        np.testing.assert_array_equal(s[k], original[k])  # inputs never modified in place
    a, b = pipeline(s, np.random.default_rng(7)), pipeline(s, np.random.default_rng(7))
    np.testing.assert_array_equal(a["coord"], b["coord"])
    np.testing.assert_array_equal(a["color"], b["color"])


def test_build_transforms_switches_and_overrides():
    s = _sample()
    off = build_transforms({k: False for k in ALL_ON}, train=True)
    assert [type(t) for t in off.transforms] == [NormalizeColor]
    eval_only = build_transforms(ALL_ON, train=False)
    assert [type(t) for t in eval_only.transforms] == [NormalizeColor]
    out = off(s, np.random.default_rng(0))
    np.testing.assert_array_equal(out["coord"], s["coord"])

    only_scale = build_transforms({**{k: False for k in ALL_ON}, "scale": True, "scale_range": [2, 2]},
                                  train=True)
    doubled = only_scale(s, np.random.default_rng(0))["coord"]
    np.testing.assert_allclose(pdist(doubled), 2 * pdist(s["coord"]))

    defaults = build_transforms({}, train=True)  # missing switches = the reference's defaults (on)
    assert len(defaults.transforms) == 8
    elastic = build_transforms({"elastic_params": [[0.1, 0.2]]}, train=True).transforms[0]
    assert elastic.params == [(0.1, 0.2)]


@pytest.mark.parametrize("cfg, key", [
    ({"elastik": True}, "elastik"),
    ({"scale_range": [1.2, 0.8]}, "scale_range"),
    ({"flip": "yes"}, "flip"),
    ({"color_jitter_p": 1.5}, "color_jitter_p"),
])
def test_build_transforms_rejects_bad_keys_and_values(cfg, key):
    with pytest.raises(ValueError, match=key):
        build_transforms(cfg, train=True)


def test_registry_and_compose_from_dicts():
    assert {"elastic", "rotation", "scale", "flip", "auto_contrast", "color_translation", "color_jitter",
            "normalize_color", "compose"} <= set(TRANSFORMS.keys())
    comp = Compose([{"type": "scale", "scale_range": [0.5, 0.5]}, NormalizeColor()])
    s = _sample()
    out = comp(s, np.random.default_rng(0))
    np.testing.assert_allclose(pdist(out["coord"]), 0.5 * pdist(s["coord"]))
    with pytest.raises(ValueError, match="bogus"):
        TRANSFORMS.build({"type": "flip", "bogus": 1})


def test_random_crop_keeps_the_nearest_points_in_order():
    from lgseg.data.transforms import RandomCrop

    rng = np.random.default_rng(0)
    coord = rng.uniform(0, 10, size=(1000, 3))
    sample = {"coord": coord, "color": rng.uniform(0, 255, (1000, 3)), "label": np.arange(1000), "scene": "s"}
    out = RandomCrop(100)(sample, np.random.default_rng(1))
    assert len(out["coord"]) == len(out["color"]) == len(out["label"]) == 100 and out["scene"] == "s"
    kept = out["label"]
    assert (np.diff(kept) > 0).all()  # original order preserved
    np.testing.assert_array_equal(out["coord"], coord[kept])
    # every kept point is at least as close (in xy) to the crop centre as every dropped point
    centre = coord[np.random.default_rng(1).integers(1000), :2]
    d = np.linalg.norm(coord[:, :2] - centre, axis=1)
    dropped = np.setdiff1d(np.arange(1000), kept)
    assert d[kept].max() <= d[dropped].min()
    small = {"coord": coord[:50], "label": np.arange(50)}
    assert RandomCrop(100)(small, rng) is small


def test_crop_is_off_unless_asked_and_validated():
    from lgseg.data.transforms import RandomCrop, build_transforms

    assert not any(isinstance(t, RandomCrop) for t in build_transforms({}, train=True).transforms)
    assert isinstance(build_transforms({"crop_points": 500}, train=True).transforms[0], RandomCrop)
    with pytest.raises(ValueError, match="crop_points"):
        build_transforms({"crop_points": -3}, train=True)
