"""The paper's Table 1 and Fig. 5 as named DVC experiments, and the report that lays them out.

``lgseg queue table1|fig5`` queues the experiments (``dvc exp run --queue -n <name> -S ...``);
``dvc queue start`` runs them; ``lgseg report`` reads ``dvc exp show --json --all-commits`` and writes
``reports/table1.{md,png}`` and ``reports/fig5.{md,png}``: mIoU / precision / recall over head /
common / tail / all, the paper's numbers beside ours.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lgseg.errors import LgsegError
from lgseg.plots import pyplot, save_png

SPLITS = ("head", "common", "tail", "all")
METRICS = ("miou", "precision", "recall")
METRIC_TITLES = {"miou": "mIoU", "precision": "Precision", "recall": "Recall"}

# Rozenberszki et al., ECCV 2022, Table 1: ScanNet200 val, head / common / tail / all, in percent
PAPER_TABLE1 = {
    "Scratch": {"miou": (48.29, 19.08, 7.86, 25.02), "precision": (68.81, 66.29, 39.88, 58.32),
                "recall": (60.45, 25.50, 15.06, 33.67)},
    "Ins. samp.": {"miou": (48.46, 18.97, 9.22, 25.49), "precision": (70.04, 62.98, 49.41, 60.81),
                   "recall": (59.64, 24.66, 19.25, 34.52)},
    "C-Focal": {"miou": (48.10, 20.28, 9.38, 25.86), "precision": (68.10, 65.64, 47.43, 60.39),
                "recall": (60.08, 26.28, 19.14, 35.48)},
    "Ours (CLIP only)": {"miou": (50.39, 22.84, 10.10, 27.73), "precision": (71.64, 69.72, 44.47, 61.94),
                         "recall": (62.20, 29.37, 17.35, 36.16)},
    "Ours": {"miou": (51.51, 22.68, 12.41, 28.87), "precision": (72.72, 66.69, 58.30, 65.90),
             "recall": (62.50, 29.09, 26.61, 39.40)},
}


@dataclass(frozen=True)
class Row:
    name: str  # the DVC experiment's name
    label: str  # as the paper prints it
    overrides: dict = field(default_factory=dict)


SCRATCH = {"finetune.init": "scratch", "loss.type": "ce", "instance_sampling.enabled": False}
OURS = {"finetune.init": "pretrained", "loss.type": "cb_focal", "instance_sampling.enabled": True}
TABLE1 = (
    Row("t1-scratch", "Scratch", SCRATCH),
    Row("t1-ins-samp", "Ins. samp.", {**SCRATCH, "instance_sampling.enabled": True}),
    Row("t1-c-focal", "C-Focal", {**SCRATCH, "loss.type": "cb_focal"}),
    Row("t1-clip-only", "Ours (CLIP only)", {"finetune.init": "pretrained", "loss.type": "ce",
                                            "instance_sampling.enabled": False}),
    Row("t1-ours", "Ours", OURS),
)
FRACTIONS = (0.05, 0.1, 0.5)  # Fig. 5's limited settings; 100 % is Table 1's row
FIG5_METHODS = (("Scratch", SCRATCH, "t1-scratch"), ("Ours", OURS, "t1-ours"))
FIG5 = tuple(Row(f"f5-{label.lower()}-{round(f * 100)}", label, {**o, "annotation.fraction": f})
             for label, o, _ in FIG5_METHODS for f in FRACTIONS)
EXPERIMENTS = {"table1": TABLE1, "fig5": FIG5}


def _value(metrics: dict, split: str, metric: str) -> float | None:
    return (metrics.get(split) or {}).get(metric)


def _cell(ours: float | None, paper: float | None) -> str:
    o = "–" if ours is None else f"{ours:.1f}"
    return o if paper is None else f"{o} ({paper:.1f})"


def _data_note(results: dict, names) -> str:
    sources = {str(((results[n]["params"].get("data") or {}).get("source"))) for n in names if n in results}
    if not sources:
        return "No results yet."
    if sources == {"synthetic"}:
        return ("Ours: the demo profile on synthetic ScanNet-format scenes. **These are not ScanNet "
                "numbers**; they show the pipeline end to end, not the method's accuracy.")
    if sources == {"scannet"}:
        return "Ours: ScanNet v2 val, per mesh vertex (the benchmark's convention)."
    return f"Ours: data sources {sorted(sources)}."


def table1_markdown(results: dict) -> str:
    head = ("| Method | " + " | ".join(f"{METRIC_TITLES[m]} {s}" for m in METRICS for s in SPLITS) + " |")
    lines = ["# Table 1: ScanNet200 semantic segmentation, ours (paper)", "", head,
             "|---|" + "---|" * (len(METRICS) * len(SPLITS))]
    for row in TABLE1:
        metrics = results.get(row.name, {}).get("metrics", {})
        paper = PAPER_TABLE1[row.label]
        cells = [_cell(_value(metrics, s, m), paper[m][i]) for m in METRICS for i, s in enumerate(SPLITS)]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    missing = [r.name for r in TABLE1 if r.name not in results]
    lines += ["", _data_note(results, [r.name for r in TABLE1]),
              "Paper: Rozenberszki et al., ECCV 2022, Table 1 (ScanNet200 val, Res16UNet34 backbones). "
              "Cells: ours (paper), percent; `all` is the mean over classes with a defined score."]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)} (`lgseg queue table1 && dvc queue start`).")
    return "\n".join(lines) + "\n"


def fig5_markdown(results: dict) -> str:
    lines = ["# Fig. 5: mIoU against the annotated fraction of train points", "",
             "| Method | annotated | mIoU all | head | common | tail |", "|---|---|---|---|---|---|"]
    for label, _, full in FIG5_METHODS:
        names = [(f, f"f5-{label.lower()}-{round(f * 100)}") for f in FRACTIONS] + [(1.0, full)]
        for f, name in names:
            m = results.get(name, {}).get("metrics", {})
            cells = [_cell(_value(m, s, "miou"), None) for s in ("all", "head", "common", "tail")]
            lines.append(f"| {label} | {f:.0%} | " + " | ".join(cells) + " |")
    lines += ["", _data_note(results, [r.name for r in FIG5]),
              "The paper gives Fig. 5 as a plot without numbers; its text: with 5 % of the annotations "
              "the language-grounded pretraining recovers the fully supervised scratch model's mIoU and "
              "gains +8 tail mIoU over CSC."]
    return "\n".join(lines) + "\n"


def table1_png(results: dict, path: str | Path) -> None:
    import numpy as np

    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / len(TABLE1)
    x = np.arange(len(SPLITS))
    for ax, metric in zip(axes, METRICS, strict=True):
        for j, row in enumerate(TABLE1):
            metrics = results.get(row.name, {}).get("metrics", {})
            ours = [_value(metrics, s, metric) for s in SPLITS]
            pos = x - 0.4 + width * (j + 0.5)
            ax.bar(pos, [np.nan if v is None else v for v in ours], width, label=row.label, color=f"C{j}")
            ax.scatter(pos, PAPER_TABLE1[row.label][metric], marker="_", s=120, color="black", zorder=3,
                       label="paper" if j == 0 else None)
        ax.set_xticks(x, SPLITS)
        ax.set_title(METRIC_TITLES[metric])
        ax.set_ylabel("%")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Table 1: bars ours, black ticks the paper's ScanNet200 numbers")
    fig.tight_layout()
    save_png(fig, path)


def fig5_png(results: dict, path: str | Path) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 4.2))
    for j, (label, _, full) in enumerate(FIG5_METHODS):
        pts = [(f, f"f5-{label.lower()}-{round(f * 100)}") for f in FRACTIONS] + [(1.0, full)]
        xy = [(f * 100, _value(results[n]["metrics"], "all", "miou")) for f, n in pts if n in results]
        xy = [(x, y) for x, y in xy if y is not None]
        if xy:
            ax.plot(*zip(*xy, strict=True), marker="o", color=f"C{j}", label=label)
    ax.set_xscale("log")
    ax.set_xticks([5, 10, 50, 100], ["5 %", "10 %", "50 %", "100 %"])
    ax.set(xlabel="annotated train points", ylabel="mIoU (%)", title="Fig. 5: limited annotations")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def write_report(out: str | Path, exp_show: list) -> dict[str, Path]:
    """Write Table 1 and Fig. 5 (Markdown and PNG) into ``out``; returns the files."""
    from lgseg.fileio import atomic_file

    out = Path(out)
    results = experiment_results(exp_show)
    files = {"table1.md": table1_markdown(results), "fig5.md": fig5_markdown(results)}
    for name, text in files.items():
        with atomic_file(out / name) as f:
            f.write(text)
    table1_png(results, out / "table1.png")
    fig5_png(results, out / "fig5.png")
    return {n: out / n for n in ("table1.md", "table1.png", "fig5.md", "fig5.png")}


# ---- DVC: the one place in lgseg/ that speaks to it --------------------------------------------
# `lgseg queue` and `lgseg report` are DVC commands by design: they run its command line (never
# import it) and read its `exp show --json` output, which names the files below.
EVALUATE_METRICS = "metrics/evaluate.json"  # the evaluate stage's metrics (dvc.yaml)
PARAMS_FILE = "params.yaml"


def _dvc(*args: str, cwd: str | Path = ".") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)


def queue_command(row: Row) -> list[str]:
    sets = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in row.overrides.items()]
    return ["dvc", "exp", "run", "--queue", "-n", row.name, *[a for s in sets for a in ("-S", s)]]


def queue(which: str, cwd: str | Path = ".") -> list[str]:
    """Queue the experiments of ``which`` ('table1', 'fig5'); returns their names."""
    rows = EXPERIMENTS[which]
    for row in rows:
        r = _dvc(*queue_command(row)[1:], cwd=cwd)
        if r.returncode != 0:
            raise LgsegError(f"{' '.join(queue_command(row))} failed:\n{r.stderr.strip()}")
    return [r.name for r in rows]


def exp_show_json(cwd: str | Path = ".") -> list:
    """Experiments of every commit: a table's rows may have been run from different baselines."""
    r = _dvc("exp", "show", "--json", "--all-commits", cwd=cwd)
    if r.returncode != 0:
        raise LgsegError(f"dvc exp show --json failed in {Path(cwd).resolve()}:\n{r.stderr.strip()}")
    return json.loads(r.stdout)


def experiment_results(exp_show: list) -> dict[str, dict]:
    """``{experiment name: {"metrics": evaluate.json, "params": params.yaml}}`` from ``dvc exp show --json``;
    of experiments run again under one name (e.g. on a later commit) the newest counts. Queued, running
    and failed ones are left out: until an experiment finishes, DVC shows its baseline's metrics."""
    out, when = {}, {}
    for base in exp_show:
        for exp in base.get("experiments") or []:
            if ((exp.get("executor") or {}).get("state")) not in (None, "success"):
                continue
            for rev in exp.get("revs") or []:
                data, name = rev.get("data") or {}, rev.get("name")
                metrics = ((data.get("metrics") or {}).get(EVALUATE_METRICS) or {}).get("data")
                stamp = str(data.get("timestamp") or "")
                if name and metrics and not rev.get("error") and stamp >= when.get(name, ""):
                    params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {}
                    out[name], when[name] = {"metrics": metrics, "params": params}, stamp
    return out
