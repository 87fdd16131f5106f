"""lgseg.render: stable class colours, error colours, legends, legible pictures."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from lgseg.render import (
    CORRECT,
    PALETTE,
    UNLABELLED,
    WRONG,
    error_colors,
    label_colors,
    legend_entries,
    palette,
    render_segmentation,
)
from lgseg.scannet.constants import CLASS_NAMES


def test_palette_is_stable_and_tells_classes_apart():
    assert PALETTE.shape == (200, 3) and (palette() == PALETTE).all()
    assert len({tuple(np.round(c, 3)) for c in PALETTE}) == 200
    # neighbouring class indices never share a hue band: colours differ clearly
    assert np.abs(np.diff(PALETTE, axis=0)).sum(1).min() > 0.1


def test_label_and_error_colours():
    labels = np.array([0, 5, -1, 250])
    c = label_colors(labels)
    assert (c[0] == PALETTE[0]).all() and (c[1] == PALETTE[5]).all()
    assert (c[2] == UNLABELLED).all() and (c[3] == UNLABELLED).all()
    e = error_colors(np.array([1, 1, -1, 2]), np.array([1, 2, 3, -1]))
    assert (e[0] == CORRECT).all() and (e[1] == WRONG).all() and (e[2] == UNLABELLED).all() and (e[3] == WRONG).all()


def test_legend_lists_present_classes_most_frequent_first():
    entries = legend_entries(np.array([3, 3, 3, 1, -1]), np.array([7, 3]))
    assert [n for n, _ in entries] == [CLASS_NAMES[3], CLASS_NAMES[1], CLASS_NAMES[7]]


def test_render_segmentation_writes_a_picture(tmp_path):
    rng = np.random.default_rng(0)
    coord = rng.uniform(0, 4, size=(3000, 3))
    gt = (coord[:, 0] > 2).astype(int) * 2  # two classes split along x
    pred = gt.copy()
    pred[:300] = 5
    out = render_segmentation(coord, gt, pred, tmp_path / "r.png", title="scene")
    image = mpimg.imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 1000 and image.std() > 0.05
    with pytest.raises(ValueError, match="nothing to render"):
        render_segmentation(coord, None, None, tmp_path / "x.png")
