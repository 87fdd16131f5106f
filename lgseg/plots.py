"""PNG charts of the pipeline's plot files, for MLflow and reports (DVC renders the same CSVs itself).

``render_plot(csv, png)`` recognises, by its columns, a training curve (``epoch`` and ``loss``: the
loss per epoch), the validated epochs of a run (``epoch`` and ``val_miou``: the val mIoUs), the
per-class table (``iou``, ``split`` and ``train_points``: the long-tail view, and beside it
``per_class_iou_best_worst.png``, each split's best and worst classes by name; without
``train_points``, that chart alone) and the most confused class pairs (``pair`` and ``points``).
Each chart draws one quantity per axis, and only the epochs that were validated.
"""

from __future__ import annotations

import csv
from pathlib import Path

SPLIT_COLOURS = {"head": "#1f77b4", "common": "#ff7f0e", "tail": "#d62728"}
VAL_SERIES = {"val_miou": ("all classes", "#333333"), "val_miou_head": ("head", SPLIT_COLOURS["head"]),
              "val_miou_common": ("common", SPLIT_COLOURS["common"]), "val_miou_tail": ("tail", SPLIT_COLOURS["tail"])}
BEST_WORST = 5  # classes named at each end of a split in the per-class chart
PER_CLASS_PNG = "per_class_iou_best_worst.png"


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


def _val_series(rows: list[dict]) -> list[str]:
    """The val mIoU columns to draw: all classes, head/common/tail, then any class group's."""
    keys = [k for k in rows[0] if k.startswith("val_miou") and k != "val_miou_200" and not k.endswith("_chance")]
    return sorted(keys, key=lambda k: (list(VAL_SERIES).index(k) if k in VAL_SERIES else len(VAL_SERIES), k))


def _draw_val(ax, rows: list[dict]) -> None:
    for key in _val_series(rows):
        x, y = _floats(rows, key, "epoch")  # epochs without validation (empty cells) are left out
        if x:
            label, colour = VAL_SERIES.get(key, (key.removeprefix("val_miou_").replace("_", " "), None))
            ax.plot(x, y, marker="o", label=label, color=colour)
    ax.set(xlabel="epoch", ylabel="val mIoU (%)", title="validation mIoU (validated epochs)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.lines:
        ax.legend(fontsize=8)


def training_curves(rows: list[dict], png: str | Path, title: str = "") -> None:
    """The train loss per epoch; a table that also holds validation columns (an older curve, or a
    run written without a separate validation file) gets the validated epochs' mIoUs beside it."""
    has_val = any(k.startswith("val_miou") for k in rows[0])
    fig, axes = _figure(2 if has_val else 1)
    ax_loss = axes[0]
    ax_loss.plot(*_floats(rows, "loss", "epoch"), marker=".")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="train loss per epoch")
    ax_loss.xaxis.get_major_locator().set_params(integer=True)
    if has_val:
        _draw_val(axes[1], rows)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, png)


def validation_curves(rows: list[dict], png: str | Path, title: str = "") -> None:
    """The val mIoUs (all classes, head, common, tail, class groups) at the validated epochs."""
    fig, (ax,) = _figure()
    _draw_val(ax, rows)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, png)


def _log_ticks(ax) -> None:
    """Label a log axis at powers of ten only (1k, 10k, ...): labels of 2x, 3x... collide."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=12))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _si(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def long_tail(rows: list[dict], png: str | Path, title: str = "per-class IoU against train frequency") -> None:
    """Per-class IoU against the class's number of train points (log scale), head/common/tail coloured."""
    fig, (ax,) = _figure()
    for split, colour in SPLIT_COLOURS.items():
        sel = [r for r in rows if r["split"] == split and r["iou"] != "" and float(r.get("train_points") or 0) > 0]
        ax.scatter([float(r["train_points"]) for r in sel], [float(r["iou"]) for r in sel], s=14, c=colour,
                   label=f"{split} ({len(sel)} classes)", alpha=0.8)
    ax.set_xscale("log")
    _log_ticks(ax)
    ax.set(xlabel="train points of the class (log)", ylabel="IoU (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, png)


def best_and_worst(rows: list[dict], k: int = BEST_WORST) -> dict[str, dict]:
    """Per split: ``classes`` (scored: a defined IoU), ``miou`` (their mean), ``zero`` (how many at 0)
    and ``shown``, the ``k`` best then the ``k`` worst ``(name, IoU)`` (all when at most 2k), best first."""
    out = {}
    for split in SPLIT_COLOURS:
        scored = sorted(((r["name"], float(r["iou"])) for r in rows if r["split"] == split and r["iou"] != ""),
                        key=lambda t: -t[1])
        shown = scored if len(scored) <= 2 * k else scored[:k] + scored[-k:]
        out[split] = {"classes": len(scored), "zero": sum(v == 0 for _, v in scored), "shown": shown,
                      "miou": sum(v for _, v in scored) / len(scored) if scored else None}
    return out


def per_class_iou(rows: list[dict], png: str | Path, k: int = BEST_WORST) -> None:
    """Per split (head, common, tail), the ``k`` best and ``k`` worst classes by IoU, named, with the
    split's mIoU; every class's numbers are in the per-class CSV."""
    groups = best_and_worst(rows, k)
    heights = [max(1, len(g["shown"])) + 1.5 for g in groups.values()]
    plt = pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(6.5, 0.22 * sum(heights) + 1.2),
                             gridspec_kw={"height_ratios": heights})
    for ax, (split, g) in zip(axes, groups.items(), strict=True):
        names = [n for n, _ in g["shown"]][::-1]
        values = [v for _, v in g["shown"]][::-1]
        ax.barh(range(len(values)), values, color=SPLIT_COLOURS[split], height=0.7)
        for y, v in enumerate(values):
            ax.text(v + 1, y, f"{v:.1f}", va="center", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlim(0, 100)
        if len(g["shown"]) == 2 * k and g["classes"] > 2 * k:  # a gap line between the best and the worst
            ax.axhline(k - 0.5, color="grey", lw=0.8, ls=":")
        miou = "n/a" if g["miou"] is None else f"{g['miou']:.1f}"
        shown = "all shown" if g["classes"] <= 2 * k else f"{k} best, {k} worst"
        ax.set_title(f"{split}: mIoU {miou}; {g['classes']} classes scored, {g['zero']} at 0; {shown}",
                     fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
    axes[-1].set_xlabel("IoU (%)")
    fig.suptitle("per-class IoU by split (all 200 classes: per_class.csv)", fontsize=10)
    fig.tight_layout()
    save_png(fig, png)


def confused_pairs(rows: list[dict], png: str | Path, title: str = "most confused class pairs") -> None:
    """Points per (ground truth → prediction) pair, largest on top."""
    rows = sorted(rows, key=lambda r: -float(r["points"]))
    fig, (ax,) = _figure()
    fig.set_size_inches(7, max(2.5, 0.28 * len(rows) + 1.2))
    ax.barh([r["pair"] for r in rows][::-1], [float(r["points"]) for r in rows][::-1], color="#d62728")
    ax.set(xlabel="val points", title=title)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    save_png(fig, png)


def render_plot(csv_path: str | Path, png: str | Path) -> bool:
    """Render a known plot CSV to ``png``; False for a file of another shape (or an empty one).
    The per-class table also writes ``per_class_iou_best_worst.png`` beside ``png``."""
    rows = _read(csv_path)
    if not rows:
        return False
    title = Path(csv_path).stem.removesuffix("_curve").removesuffix("_val").replace("_", " ")  # the stage
    if "epoch" in rows[0] and "loss" in rows[0]:
        training_curves(rows, png, title=title)
        return True
    if "epoch" in rows[0] and "val_miou" in rows[0]:
        validation_curves(rows, png, title=title)
        return True
    if {"iou", "split", "train_points"} <= rows[0].keys():
        long_tail(rows, png)
        per_class_iou(rows, Path(png).parent / PER_CLASS_PNG)
        return True
    if {"iou", "split", "name"} <= rows[0].keys():  # without train frequencies: no long-tail view
        per_class_iou(rows, png)
        return True
    if {"pair", "points"} <= rows[0].keys():
        confused_pairs(rows, png)
        return True
    return False
