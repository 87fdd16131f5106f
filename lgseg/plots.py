"""PNG charts of the pipeline's plot files, for MLflow and reports (DVC renders the same CSVs itself).

``render_plot(csv, png)`` recognises a training curve (an ``epoch`` column), the per-class table
(``iou``, ``split`` and ``train_points`` columns: the long-tail view) and the most confused class
pairs (``pair`` and ``points``).
"""

from __future__ import annotations

import csv
from pathlib import Path

SPLIT_COLOURS = {"head": "#1f77b4", "common": "#ff7f0e", "tail": "#d62728"}


def _read(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _floats(rows: list[dict], key: str, by: str) -> tuple[list[float], list[float]]:
    pairs = [(float(r[by]), float(r[key])) for r in rows
             if r.get(key) not in (None, "") and r.get(by) not in (None, "")]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (stages and CLIs have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` atomically as a PNG and release it."""
    from lgseg.fileio import atomic_file

    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    pyplot().close(fig)
    return Path(path)


def _figure(ncols: int = 1):
    fig, axes = pyplot().subplots(1, ncols, figsize=(5.5 * ncols, 4), squeeze=False)
    return fig, axes[0]


def training_curves(rows: list[dict], png: str | Path, title: str = "") -> None:
    """Loss per epoch (left) and the validation mIoUs (right)."""
    fig, (ax_loss, ax_val) = _figure(2)
    ax_loss.plot(*_floats(rows, "loss", "epoch"), marker=".")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="loss")
    for key in [k for k in rows[0] if k.startswith("val_miou")]:
        x, y = _floats(rows, key, "epoch")
        if x:
            ax_val.plot(x, y, marker="o", label=key.removeprefix("val_").replace("_", " "))
    ax_val.set(xlabel="epoch", ylabel="%", title="validation mIoU")
    if ax_val.lines:
        ax_val.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, png)


def long_tail(rows: list[dict], png: str | Path, title: str = "per-class IoU against train frequency") -> None:
    """Per-class IoU against the class's number of train points (log scale), head/common/tail coloured."""
    fig, (ax,) = _figure()
    for split, colour in SPLIT_COLOURS.items():
        sel = [r for r in rows if r["split"] == split and r["iou"] != "" and float(r.get("train_points") or 0) > 0]
        ax.scatter([float(r["train_points"]) for r in sel], [float(r["iou"]) for r in sel], s=14, c=colour,
                   label=f"{split} ({len(sel)} classes)", alpha=0.8)
    ax.set_xscale("log")
    ax.set(xlabel="train points of the class (log)", ylabel="IoU (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, png)


def confused_pairs(rows: list[dict], png: str | Path, title: str = "most confused class pairs") -> None:
    """Points per (ground truth → prediction) pair, largest on top."""
    fig, (ax,) = _figure()
    fig.set_size_inches(7, max(2.5, 0.28 * len(rows) + 1.2))
    ax.barh([r["pair"] for r in rows][::-1], [float(r["points"]) for r in rows][::-1], color="#d62728")
    ax.set(xlabel="val points", title=title)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    save_png(fig, png)


def render_plot(csv_path: str | Path, png: str | Path) -> bool:
    """Render a known plot CSV to ``png``; False for a file of another shape (or an empty one)."""
    rows = _read(csv_path)
    if not rows:
        return False
    if "epoch" in rows[0] and "loss" in rows[0]:
        training_curves(rows, png, title=Path(csv_path).stem.replace("_", " "))
        return True
    if {"iou", "split", "train_points"} <= rows[0].keys():
        long_tail(rows, png)
        return True
    if {"pair", "points"} <= rows[0].keys():
        confused_pairs(rows, png)
        return True
    return False
