"""lgseg.render: stable class colours, error colours, legends, legible pictures."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from lgseg.render import (
    CORRECT,
    LEGEND_COLUMNS,
    LEGEND_ROWS,
    PALETTE,
    UNLABELLED,
    WRONG,
    error_colors,
    label_colors,
    legend_entries,
    legend_layout,
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


def test_legend_fits_every_class_of_a_busy_scene():
    entries = legend_entries(np.arange(53))  # scene0028_00 of the demo has 52 with its prediction
    assert len(entries) == 53
    lines, columns = legend_layout(entries)
    assert [n for n, _ in lines] == [n for n, _ in entries] and columns == 2


def test_legend_says_how_many_classes_it_leaves_out():
    entries = legend_entries(np.repeat(np.arange(200), np.arange(200, 0, -1)))  # class 0 most frequent
    lines, columns = legend_layout(entries)
    assert columns == LEGEND_COLUMNS and len(lines) == LEGEND_ROWS * LEGEND_COLUMNS
    assert [n for n, _ in lines[:-1]] == list(CLASS_NAMES[: len(lines) - 1])  # the most frequent kept
    assert lines[-1] == (f"+ {200 - len(lines) + 1} more (fewer points)", None)


def drawn_legend(monkeypatch, draw):
    """Run ``draw``; return its picture's legend texts and title, and the boxes (pixels) of the
    figure, the legend and every panel as drawn when the figure was saved."""
    import lgseg.plots

    seen = []
    original = lgseg.plots.save_png

    def keep(fig, path, **kw):
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        seen.append({"texts": [t.get_text() for t in legend.get_texts()], "title": legend.get_title().get_text(),
                     "suptitle": fig.get_suptitle(),
                     "page": fig.bbox, "legend": legend.get_window_extent(renderer),
                     "panels": [ax.get_tightbbox(renderer) for ax in fig.axes]})
        return original(fig, path, **kw)

    monkeypatch.setattr(lgseg.plots, "save_png", keep)
    draw()
    (drawn,) = seen
    return drawn


@pytest.mark.parametrize("num_classes", [53, 150])
def test_rendered_legend_lists_every_class_beside_the_panels(tmp_path, monkeypatch, num_classes):
    rng = np.random.default_rng(0)
    coord = rng.uniform(0, 4, size=(4000, 3))
    gt = np.arange(4000) % num_classes
    drawn = drawn_legend(monkeypatch, lambda: render_segmentation(coord, gt, gt, tmp_path / "r.png", title="busy"))
    texts = drawn["texts"]
    assert drawn["title"] == f"{num_classes} classes, most points first" and drawn["suptitle"] == "busy"
    if num_classes <= LEGEND_ROWS * LEGEND_COLUMNS:
        assert sorted(texts) == sorted(CLASS_NAMES[:num_classes])
    else:
        assert len(texts) == LEGEND_ROWS * LEGEND_COLUMNS
        assert texts[-1] == f"+ {num_classes - len(texts) + 1} more (fewer points)"
    # the legend lies inside the picture and right of every panel: nothing cut off or drawn over
    box, page = drawn["legend"], drawn["page"]
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    assert all(panel.x1 <= box.x0 for panel in drawn["panels"])
    assert mpimg.imread(tmp_path / "r.png").shape[1] > 1000
