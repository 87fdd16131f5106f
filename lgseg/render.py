"""Pictures of a scene: from above and from an oblique view, coloured by ground truth, prediction,
error, instances or a per-vertex score, with a legend of the classes present.

Colours: a stable palette, one colour per class index (golden-ratio hues, so neighbouring
indices differ), light grey for unlabelled vertices.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES, NUM_CLASSES

UNLABELLED = np.array([0.82, 0.82, 0.82])
CORRECT, WRONG = np.array([0.30, 0.69, 0.31]), np.array([0.90, 0.17, 0.15])


def palette() -> np.ndarray:
    """(200, 3) RGB in [0, 1]: the colour of each class index, the same in every picture."""
    rows = []
    for i in range(NUM_CLASSES):
        h = (i * 0.618033988749895) % 1.0
        s = (0.55, 0.75, 0.95)[i % 3]
        v = (0.95, 0.75, 0.85)[(i // 3) % 3]
        rows.append(colorsys.hsv_to_rgb(h, s, v))
    return np.array(rows)


PALETTE = palette()


def label_colors(labels: np.ndarray) -> np.ndarray:
    """(N, 3) colours of class indices (-1 or out of range: unlabelled grey)."""
    labels = np.asarray(labels)
    ok = (labels >= 0) & (labels < NUM_CLASSES)
    out = np.tile(UNLABELLED, (len(labels), 1))
    out[ok] = PALETTE[labels[ok]]
    return out


def instance_colors(ids: np.ndarray) -> np.ndarray:
    """(N, 3) colours of instance ids (any integers, one colour each; -1: no instance, grey). Ids are
    ranked, so that neighbouring ranks get the palette's well-separated hues."""
    ids = np.asarray(ids)
    out = np.tile(UNLABELLED, (len(ids), 1))
    some = ids >= 0
    rank = np.unique(ids[some], return_inverse=True)[1]
    out[some] = PALETTE[rank % NUM_CLASSES]
    return out


def render_instances(coord: np.ndarray, gt: np.ndarray | None, pred: np.ndarray, out: str | Path,
                     title: str = "", pred_note: str = "") -> Path:
    """Ground-truth instances (when given) beside predicted ones, one colour per instance, grey none."""
    panels = [] if gt is None else [(f"ground-truth instances ({len(np.unique(gt[gt >= 0]))})", instance_colors(gt))]
    panels.append((f"predicted instances ({len(np.unique(pred[pred >= 0]))}){pred_note}", instance_colors(pred)))
    return render(coord, panels, out, title)


def error_colors(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Green where the prediction is right, red where wrong, grey where the ground truth is unlabelled."""
    out = np.tile(UNLABELLED, (len(gt), 1))
    labelled = gt >= 0
    out[labelled & (pred == gt)] = CORRECT
    out[labelled & (pred != gt)] = WRONG
    return out


def score_colors(score: np.ndarray, cmap: str = "turbo") -> np.ndarray:
    """A score in [0, 1] per vertex as colours of ``cmap`` (turbo: blue low, red high, vivid on white)."""
    import matplotlib

    return matplotlib.colormaps[cmap](np.clip(score, 0, 1))[:, :3]


def _oblique(coord: np.ndarray, azimuth: float = 35.0, elevation: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Screen x, y and depth of a view from above at ``elevation`` degrees, turned by ``azimuth``."""
    a, e = np.radians(azimuth), np.radians(elevation)
    c = coord - coord.mean(0)
    x = c[:, 0] * np.cos(a) - c[:, 1] * np.sin(a)
    y = c[:, 0] * np.sin(a) + c[:, 1] * np.cos(a)
    screen_y = y * np.sin(e) + c[:, 2] * np.cos(e)
    depth = -y * np.cos(e) + c[:, 2] * np.sin(e)  # larger = nearer the viewer
    return np.stack([x, screen_y], 1), depth


def _draw(ax, coord: np.ndarray, colors: np.ndarray, view: str, size: float) -> None:
    if view == "top":
        xy, order = coord[:, :2], np.argsort(coord[:, 2])  # higher points drawn last
    else:
        xy, depth = _oblique(coord)
        order = np.argsort(depth)
    ax.scatter(xy[order, 0], xy[order, 1], c=colors[order], s=size, linewidths=0, rasterized=True)
    ax.set_aspect("equal")
    ax.axis("off")


def legend_entries(*label_arrays: np.ndarray, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, colour) of the classes present, most frequent first (all of them, or the first ``limit``)."""
    labels = np.concatenate([np.asarray(a) for a in label_arrays])
    labels = labels[(labels >= 0) & (labels < NUM_CLASSES)]
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    order = [c for c in np.argsort(-counts, kind="stable") if counts[c] > 0][:limit]
    return [(CLASS_NAMES[c], PALETTE[c]) for c in order]


LEGEND_ROWS = 30  # entries per legend column; 30 rows of 8 pt text fit the 9.5 in high figure
LEGEND_COLUMNS = 3  # at most; beyond 90 classes the rarest are summed up as "+ N more"


def legend_layout(entries: list[tuple[str, np.ndarray]], rows: int = LEGEND_ROWS,
                  max_columns: int = LEGEND_COLUMNS) -> tuple[list[tuple[str, np.ndarray | None]], int]:
    """The legend's lines and its number of columns: every class while ``rows * max_columns`` fit,
    else the most frequent ones and a last line "+ N more classes" (colour None), so that no class
    disappears from the legend unsaid."""
    room = rows * max_columns
    lines: list[tuple[str, np.ndarray | None]] = list(entries)
    if len(lines) > room:
        hidden = len(lines) - (room - 1)
        lines = lines[: room - 1] + [(f"+ {hidden} more (fewer points)", None)]
    columns = max(1, min(max_columns, -(-len(lines) // rows)))
    return lines, columns


def render(coord: np.ndarray, panels: list[tuple[str, np.ndarray]], out: str | Path, title: str = "",
           legend: list[tuple[str, np.ndarray]] | None = None, point_size: float | None = None) -> Path:
    """Save ``panels`` (title, (N, 3) colours) as columns, a top and an oblique view each, to ``out`` (PNG),
    with ``legend`` (name, colour; most frequent first) in as many columns as it needs (``legend_layout``)."""
    from matplotlib.patches import Patch

    from lgseg.plots import pyplot, save_png

    coord = np.asarray(coord, dtype=np.float64)
    size = point_size or float(np.clip(60_000 / max(len(coord), 1), 0.3, 4.0))
    ncols = len(panels)
    panels_width = 5.2 * ncols
    fig, axes = pyplot().subplots(2, ncols, figsize=(panels_width, 9.5), squeeze=False)
    for j, (name, colors) in enumerate(panels):
        _draw(axes[0, j], coord, colors, "top", size)
        _draw(axes[1, j], coord, colors, "oblique", size)
        axes[0, j].set_title(f"{name}\nfrom above", fontsize=11)
        axes[1, j].set_title("oblique", fontsize=10)
    legend_width = 0.0
    if legend:
        lines, columns = legend_layout(legend)
        handles = [Patch(color=c, label=n) if c is not None else Patch(facecolor="none", edgecolor="none", label=n)
                   for n, c in lines]
        heading = f"{len(legend)} class{'es' if len(legend) > 1 else ''}, most points first"
        box = fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False, ncols=columns,
                         title=heading, title_fontsize=9, columnspacing=1.0)
        # widen the figure by the legend's measured width (text sizes are in inches, not figure fractions)
        legend_width = box.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi + 0.2
        fig.set_figwidth(panels_width + legend_width)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / fig.get_figwidth(), 0.96))
    return save_png(fig, out, dpi=90)


def render_segmentation(coord: np.ndarray, gt: np.ndarray | None, pred: np.ndarray | None, out: str | Path,
                        title: str = "") -> Path:
    """Ground truth, prediction and error side by side (whichever are given)."""
    panels = []
    if gt is not None:
        panels.append(("ground truth", label_colors(gt)))
    if pred is not None:
        panels.append(("prediction", label_colors(pred)))
    if gt is not None and pred is not None:
        acc = float((pred[gt >= 0] == gt[gt >= 0]).mean() * 100) if (gt >= 0).any() else float("nan")
        panels.append((f"error (green right, red wrong: {acc:.1f} % right)", error_colors(gt, pred)))
    if not panels:
        raise ValueError("nothing to render: give ground truth, a prediction or both")
    present = [a for a in (gt, pred) if a is not None]
    return render(coord, panels, out, title, legend=legend_entries(*present))


def render_scenes(processed: str | Path, pred_dir: str | Path, split: str, which, out_dir: str | Path) -> list[Path]:
    """Render ground truth / prediction / error of ``which`` scenes of ``split`` (a number: the first
    that many in sorted order; or a list of scene ids) into ``out_dir/<scene>.png``."""
    from lgseg.fileio import atomic_dir
    from lgseg.scannet.constants import check_scene_id
    from lgseg.scannet.splits import scene_folders, scene_path
    from lgseg.scene_io import load_prediction, load_scene, split_dir

    if isinstance(which, int):
        scenes = scene_folders(split_dir(processed, split))[:which]
    else:  # ids from params (evaluate.render): checked before anything is written
        scenes = [check_scene_id(s, fix="list scene ids such as scene0011_00 in evaluate.render (params.yaml)")
                  for s in which]
    with atomic_dir(out_dir) as tmp:
        for scene in scenes:
            data = load_scene(processed, scene)
            pred = load_prediction(pred_dir, scene, len(data["coord"]))
            render_segmentation(data["coord"], data["gt"], pred, scene_path(tmp, scene, ".png"), title=scene)
    return [Path(out_dir) / f"{s}.png" for s in scenes]

