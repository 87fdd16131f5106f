"""The paper's Table 1, Table 2 and Fig. 5 as named DVC experiments, and the report that lays them out.

``lgseg queue table1|table2|fig5 [--seeds N]`` queues the experiments (``dvc exp run --queue -n <name>
-S ...``), leaving out those already run or queued; ``dvc queue start`` runs them; ``lgseg report``
reads ``dvc exp show --json --all-commits`` and writes ``reports/table1.{md,png}`` (mIoU / precision /
recall over head / common / tail / all), ``reports/table2.{md,png}`` (instance segmentation) and
``reports/fig5.{md,png}``, the paper's numbers beside ours.

Every experiment runs the whole pipeline, the semantic and the instance stages, so Table 2's rows are
Table 1's experiments of the same method (``t1-scratch``, ``t1-csc``, ``t1-clip-only``, ``t1-ours``):
their ``metrics/insseg.json`` beside their ``metrics/evaluate.json``.

Seeds: ``--seeds N`` queues every row N times, ``<row>-s<seed>`` with ``pretrain.seed``,
``finetune.seed`` and ``insseg.seed`` set to seed = 42, 43, ... (42: params.yaml's); without it a row runs once under its
bare name with params.yaml's seeds. The report pools a row's runs (its bare name and its ``-s<seed>``
names; two runs with the same seeds count once, the newest) and prints mean ± sample std (n - 1) per
cell. A row differs from Scratch beyond the seeds' spread (▲ higher, ▼ lower) where both have at least
2 runs and |mean difference| > std(row) + std(Scratch): a plain rule on the spread, not a significance
test.
"""

from __future__ import annotations

import json
import re
import statistics
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
    "SupCon": {"miou": (48.55, 19.17, 10.34, 26.02), "precision": (69.52, 65.42, 40.62, 58.52),
               "recall": (60.27, 26.28, 19.14, 35.23)},
    "CSC": {"miou": (49.43, 19.52, 10.28, 26.41), "precision": (70.00, 67.75, 40.78, 59.51),
            "recall": (61.01, 25.75, 17.62, 34.79)},
    "Ours (CLIP only)": {"miou": (50.39, 22.84, 10.10, 27.73), "precision": (71.64, 69.72, 44.47, 61.94),
                         "recall": (62.20, 29.37, 17.35, 36.16)},
    "Ours": {"miou": (51.51, 22.68, 12.41, 28.87), "precision": (72.72, 66.69, 58.30, 65.90),
             "recall": (62.50, 29.09, 26.61, 39.40)},
}


# Table 2: instance segmentation on ScanNet200 val: the instance model's semantic head (precision,
# mIoU) and mAP@0.5; the paper prints no AP or AP25
PAPER_TABLE2 = {"Scratch": {"precision": 61.04, "miou": 25.37, "ap50": 24.47},
                "CSC": {"precision": 63.13, "miou": 25.92, "ap50": 25.24},
                "CLIP only": {"precision": 64.24, "miou": 27.58, "ap50": 27.91},
                "Ours": {"precision": 65.32, "miou": 27.72, "ap50": 26.09}}
TABLE2_COLUMNS = (("precision", "Precision"), ("miou", "mIoU"), ("ap50", "mAP@0.5"), ("ap", "AP"), ("ap25", "AP25"))


@dataclass(frozen=True)
class Row:
    name: str  # the DVC experiment's name
    label: str  # as the paper prints it
    overrides: dict = field(default_factory=dict)


# each row sets how both fine-tunings start (finetune.init for Table 1, insseg.init for Table 2)
SCRATCH = {"finetune.init": "scratch", "insseg.init": "scratch", "loss.type": "ce", "instance_sampling.enabled": False}
OURS = {"pretrain.objective": "language", "finetune.init": "pretrained", "insseg.init": "pretrained",
        "loss.type": "cb_focal", "instance_sampling.enabled": True}
CLIP_ONLY = {"pretrain.objective": "language", "finetune.init": "pretrained", "insseg.init": "pretrained",
             "loss.type": "ce", "instance_sampling.enabled": False}
# CSC: pretraining without labels or text (two views of each train scene), fine-tuned as "CLIP only" is
CSC = {**CLIP_ONLY, "pretrain.objective": "csc"}
# the paper's ablation behind Fig. 7: the language objective without its negative term, fine-tuned as Ours
POSITIVES_ONLY = {**OURS, "pretrain.contrastive.neg_weight": 0.0}
# OpenScene's 2D-to-3D distillation as pretraining (no 3D labels), fine-tuned as CLIP only, CSC and SupCon are
DISTILL = {**CLIP_ONLY, "pretrain.objective": "distill"}
TABLE1 = (
    Row("t1-scratch", "Scratch", SCRATCH),
    Row("t1-ins-samp", "Ins. samp.", {**SCRATCH, "instance_sampling.enabled": True}),
    Row("t1-c-focal", "C-Focal", {**SCRATCH, "loss.type": "cb_focal"}),
    # supervised contrastive pretraining on the same voxels, no text; fine-tuned as "CLIP only" is
    Row("t1-supcon", "SupCon", {**CLIP_ONLY, "pretrain.objective": "supcon"}),
    Row("t1-csc", "CSC", CSC),
    Row("t1-pos-only", "Ours (positives only)", POSITIVES_ONLY),
    Row("t1-clip-only", "Ours (CLIP only)", CLIP_ONLY),
    Row("t1-ours", "Ours", OURS),
    Row("t1-distill", "2D distillation", DISTILL),
)
_T1 = {r.label: r for r in TABLE1}
# the same experiments as Table 1's rows of these methods (their instance stages' metrics)
TABLE2 = tuple(Row(_T1[t1].name, label, _T1[t1].overrides)
               for label, t1 in (("Scratch", "Scratch"), ("CSC", "CSC"), ("CLIP only", "Ours (CLIP only)"),
                                 ("Ours", "Ours"), ("2D distillation", "2D distillation")))
BASELINE, METHOD = "Scratch", "Ours"  # the comparison the report spells out
FRACTIONS = (0.05, 0.1, 0.5)  # Fig. 5's limited settings; 100 % is Table 1's row
# CSC and 2D distillation pretrain on all the train geometry (they read no 3D labels) and fine-tune on the
# limited labels; (label, overrides, the 100 % row, the experiments' name part)
FIG5_METHODS = (("Scratch", SCRATCH, "t1-scratch", "scratch"), ("CSC", CSC, "t1-csc", "csc"),
                ("Ours", OURS, "t1-ours", "ours"), ("2D distillation", DISTILL, "t1-distill", "distill"))
FIG5 = tuple(Row(f"f5-{slug}-{round(f * 100)}", label, {**o, "annotation.fraction": f})
             for label, o, _, slug in FIG5_METHODS for f in FRACTIONS)
# Fig. 7: the pretrained feature spaces of these Table 1 experiments (their feature-space stage)
FIG7 = tuple(_T1[label] for label in ("CSC", "SupCon", "Ours (positives only)", "Ours"))
FIG7_TITLES = {"CSC": "CSC", "SupCon": "SupCon", "Ours (positives only)": "Ours, positives only", "Ours": "Ours"}
# the zero-shot table: (readout, Table 1 experiment, which of its zeroshot stage's readouts)
ZEROSHOT_ROWS = (("Ours: the language-grounded readout", "Ours", "model"),
                 ("Ours (positives only)", "Ours (positives only)", "model"),
                 ("2D fusion: the demo teacher's features fused onto the points", "2D distillation", "fusion"),
                 ("2D distillation: the 3D network", "2D distillation", "model"),
                 ("2D distillation: OpenScene's ensemble of 2D and 3D", "2D distillation", "ensemble"))
ZEROSHOT = tuple(_T1[label] for label in dict.fromkeys(label for _, label, _ in ZEROSHOT_ROWS))
EXPERIMENTS = {"table1": TABLE1, "table2": TABLE2, "fig5": FIG5, "fig7": FIG7, "zeroshot": ZEROSHOT}

BASE_SEED = 42  # params.yaml's pretrain.seed and finetune.seed
SEED_KEYS = ("pretrain.seed", "finetune.seed", "insseg.seed")


def seed_values(n: int) -> tuple[int, ...]:
    """The seeds of ``--seeds n``: 42, 43, ..., 42 + n - 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LgsegError(f"--seeds must be an integer >= 1, not {n!r}")
    return tuple(BASE_SEED + i for i in range(n))


def with_seeds(rows, seeds: int | None) -> tuple[Row, ...]:
    """``rows`` once each (``seeds`` None: params.yaml's seeds, the bare names), or ``seeds`` times:
    ``<name>-s<seed>`` with pretrain.seed and finetune.seed set, seed by seed (the first seed's
    table is complete before the second seed's runs start)."""
    if seeds is None:
        return tuple(rows)
    return tuple(Row(f"{r.name}-s{s}", r.label, {**r.overrides, **dict.fromkeys(SEED_KEYS, s)})
                 for s in seed_values(seeds) for r in rows)


# ---- a row's runs and their statistics ------------------------------------------------------------

def _param(params: dict, dotted: str):
    for key in dotted.split("."):
        if not isinstance(params, dict):
            return None
        params = params.get(key)
    return params


def runs_of(results: dict, name: str) -> list[dict]:
    """The finished runs of experiment ``name``: ``name`` itself and ``name-s<seed>``. Runs with the
    same seeds (params' pretrain.seed and finetune.seed, which ``with_seeds`` sets with insseg.seed)
    are one configuration: the newest counts."""
    pattern = re.compile(re.escape(name) + r"(-s\d+)?")
    by_seed: dict = {}
    for exp, r in sorted(results.items()):
        if not pattern.fullmatch(exp):
            continue
        seeds = tuple(_param(r.get("params") or {}, k) for k in SEED_KEYS[:2])
        key = seeds if None not in seeds else exp
        if key not in by_seed or str(r.get("timestamp") or "") > str(by_seed[key].get("timestamp") or ""):
            by_seed[key] = r
    return list(by_seed.values())


@dataclass(frozen=True)
class Stat:
    values: tuple[float, ...]  # the runs' defined values
    runs: int  # the runs, with or without a defined value

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1); None below 2 values."""
        return statistics.stdev(self.values) if self.n >= 2 else None


def _value(metrics: dict, split: str, metric: str) -> float | None:
    return (metrics.get(split) or {}).get(metric)


def stat(runs: list[dict], split: str, metric: str, source: str = "metrics") -> Stat:
    """A cell over ``runs``: ``source`` "metrics" (evaluate.json) or "insseg" (insseg.json)."""
    values = (_value(r.get(source) or {}, split, metric) for r in runs)
    return Stat(tuple(float(v) for v in values if v is not None), len(runs))


def beyond_spread(a: Stat, b: Stat) -> int:
    """+1 / -1 where ``a``'s mean is above / below ``b``'s by more than std(a) + std(b), both with at
    least 2 values; else 0 (no spread to judge by, or within it)."""
    if a.n < 2 or b.n < 2:
        return 0
    diff = a.mean - b.mean
    return (diff > 0) - (diff < 0) if abs(diff) > a.std + b.std else 0


MARKS = {1: " ▲", -1: " ▼", 0: ""}


def _format(st: Stat) -> str:
    if st.n == 0:
        return "–"
    text = f"{st.mean:.1f}" if st.n == 1 else f"{st.mean:.1f} ± {st.std:.1f}"
    return text + ("†" if st.n < st.runs else "")


def _cell(st: Stat, paper: float | None, mark: int = 0) -> str:
    text = _format(st) + MARKS[mark]
    return text if paper is None else f"{text} ({paper:.1f})"


def _seeds_text(runs: list[dict]) -> str:
    seeds = sorted({s for r in runs if (s := _param(r.get("params") or {}, "finetune.seed")) is not None})
    return f"{len(runs)}" + (f" ({', '.join(map(str, seeds))})" if seeds and len(runs) > 1 else "")


def _data_note(runs: list[dict]) -> str:
    sources = {str(((r.get("params") or {}).get("data") or {}).get("source")) for r in runs}
    if not sources:
        return "No results yet."
    if sources == {"synthetic"}:
        return ("Ours: the demo profile on synthetic ScanNet-format scenes. **These are not ScanNet "
                "numbers**: in the demo world semantically related classes look related by construction "
                "(docs/data.md, \"The synthetic demo world\"), so they show what the method does under that "
                "assumption at a small budget, not its accuracy on real rooms.")
    if sources == {"scannet"}:
        return "Ours: ScanNet v2 val, per mesh vertex (the benchmark's convention)."
    return f"Ours: data sources {sorted(sources)}."


def _comparison(runs: dict) -> str:
    """One sentence: where ``METHOD`` differs from ``BASELINE`` beyond the seeds' spread."""
    method, base = (next(r.name for r in TABLE1 if r.label == lab) for lab in (METHOD, BASELINE))
    n_m, n_b = len(runs[method]), len(runs[base])
    head = f"{METHOD} vs {BASELINE} ({n_m} and {n_b} runs)"
    if n_m < 2 or n_b < 2:
        return (f"{head}: fewer than 2 runs on a side, so no spread to compare against "
                f"(`lgseg queue table1 --seeds 3`); no cell is marked.")
    found, cells = [], 0
    for m in METRICS:
        for s in SPLITS:
            a, b = stat(runs[method], s, m), stat(runs[base], s, m)
            if a.n and b.n:
                cells += 1
            if beyond_spread(a, b):
                found.append(f"{METRIC_TITLES[m]} {s} {a.mean - b.mean:+.1f}")
    if not found:
        return f"{head}: no difference beyond the seeds' spread in any of the {cells} cells."
    return (f"{head}: beyond the seeds' spread in {len(found)} of {cells} cells: {', '.join(found)}; "
            f"the other cells are within it.")


def table_runs(results: dict) -> dict[str, list[dict]]:
    """Each Table 1 row's runs, by the row's experiment name."""
    return {row.name: runs_of(results, row.name) for row in TABLE1}


def table1_markdown(results: dict) -> str:
    runs = table_runs(results)
    base = runs[next(r.name for r in TABLE1 if r.label == BASELINE)]
    head = ("| Method | runs | " + " | ".join(f"{METRIC_TITLES[m]} {s}" for m in METRICS for s in SPLITS) + " |")
    lines = ["# Table 1: ScanNet200 semantic segmentation, ours (paper)", "", head,
             "|---|---|" + "---|" * (len(METRICS) * len(SPLITS))]
    for row in TABLE1:
        paper, mine = PAPER_TABLE1.get(row.label), runs[row.name]
        cells = []
        for m in METRICS:
            for i, s in enumerate(SPLITS):
                st = stat(mine, s, m)
                mark = beyond_spread(st, stat(base, s, m)) if row.label != BASELINE else 0
                cells.append(_cell(st, paper[m][i] if paper else None, mark))
        lines.append(f"| {row.label} | {_seeds_text(mine)} | " + " | ".join(cells) + " |")
    missing = [r.name for r in TABLE1 if not runs[r.name]]
    lines += ["", _data_note([r for rs in runs.values() for r in rs]),
              "Paper: Rozenberszki et al., ECCV 2022, Table 1 (ScanNet200 val, Res16UNet34 backbones). "
              "Cells: ours (paper), percent; ours is the mean ± sample standard deviation (n - 1) over the "
              "row's runs (`runs`: how many, with their seeds), a single number for one run; † marks a "
              "cell defined in fewer of the row's runs (a split without a defined score in a run); `all` "
              "is the mean over classes with a defined score.",
              f"▲ / ▼: above / below {BASELINE} by more than the sum of both rows' standard deviations "
              "(both with at least 2 runs); a plain rule on the seeds' spread, not a significance test.",
              "SupCon: supervised contrastive pretraining on the same voxels without text "
              "(`pretrain.objective=supcon`), fine-tuned like Ours (CLIP only).",
              "CSC: Contrastive Scene Contexts pretraining without labels or text (`pretrain.objective=csc`), "
              "its two views two augmentations of one reconstructed scene (CSC paired RGB-D frames), "
              "fine-tuned like Ours (CLIP only).",
              "2D distillation: OpenScene's 2D-to-3D distillation (`pretrain.objective=distill`) towards the demo's "
              "2D teacher's features lifted onto the points (no 3D labels; the teacher learnt from the train "
              "scenes' 2D label images), fine-tuned like Ours (CLIP only); not in the paper.",
              "Ours (positives only): the language objective without its negative term "
              "(`pretrain.contrastive.neg_weight=0`), fine-tuned like Ours; the paper's ablation (Sec. 3.1: "
              "negatives were \"necessary for effective 3D representation learning\"; Fig. 7), printed without "
              "numbers there.",
              _comparison(runs)]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)} (`lgseg queue table1 --seeds 3 && dvc queue start`).")
    return "\n".join(lines) + "\n"


def _table2_comparison(runs: dict) -> str:
    """One sentence: where Ours differs from Scratch beyond the seeds' spread in Table 2's columns."""
    method, base = (next(r.name for r in TABLE2 if r.label == lab) for lab in (METHOD, BASELINE))
    head = f"{METHOD} vs {BASELINE} ({len(runs[method])} and {len(runs[base])} runs)"
    if len(runs[method]) < 2 or len(runs[base]) < 2:
        return f"{head}: fewer than 2 runs on a side, so no spread to compare against; no cell is marked."
    parts = []
    for key, title in TABLE2_COLUMNS:
        a, b = stat(runs[method], "all", key, "insseg"), stat(runs[base], "all", key, "insseg")
        if a.n and b.n:
            verdict = {1: "above", -1: "below", 0: "within"}[beyond_spread(a, b)]
            spread = (a.std or 0) + (b.std or 0)
            parts.append(f"{title} {a.mean - b.mean:+.1f} ({verdict} the spread {spread:.1f})")
    return f"{head}: " + ("; ".join(parts) if parts else "no instance metrics yet") + "."


def table2_markdown(results: dict) -> str:
    runs = {row.name: [r for r in runs_of(results, row.name) if r.get("insseg")] for row in TABLE2}
    base = runs[next(r.name for r in TABLE2 if r.label == BASELINE)]
    lines = ["# Table 2: ScanNet200 instance segmentation, ours (paper)", "",
             "| Method | experiment | runs | " + " | ".join(t for _, t in TABLE2_COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(TABLE2_COLUMNS)]
    for row in TABLE2:
        mine, paper = runs[row.name], PAPER_TABLE2.get(row.label, {})
        cells = []
        for key, _ in TABLE2_COLUMNS:
            st = stat(mine, "all", key, "insseg")
            mark = beyond_spread(st, stat(base, "all", key, "insseg")) if row.label != BASELINE else 0
            cells.append(_cell(st, paper.get(key), mark))
        lines.append(f"| {row.label} | {row.name} | {_seeds_text(mine)} | " + " | ".join(cells) + " |")
    lines += ["", _data_note([r for rs in runs.values() for r in rs]),
              "Paper: Rozenberszki et al., ECCV 2022, Table 2 (ScanNet200 val): Precision and mIoU of the "
              "instance model's semantic head, mAP@0.5; the paper prints no AP (IoU 0.50-0.90, as the official "
              "evaluation's thresholds) or AP25. Cells: ours (paper), percent, mean ± sample std over the runs. "
              "AP: the official ScanNet instance evaluation over ScanNet200's 198 instance classes (the 200 "
              "without wall and floor), per mesh vertex; classes without ground truth left out of the means.",
              "Rows: the Table 1 experiments of the same method (every experiment runs the semantic and the "
              "instance stages). ▲ / ▼ as in Table 1.",
              _table2_comparison(runs)]
    missing = [r.name for r in TABLE2 if not runs[r.name]]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)} (`lgseg queue table2 --seeds 3 && dvc queue start`).")
    return "\n".join(lines) + "\n"


def table2_png(results: dict, path: str | Path) -> None:
    import numpy as np

    runs = {row.name: [r for r in runs_of(results, row.name) if r.get("insseg")] for row in TABLE2}
    fig, ax = pyplot().subplots(figsize=(9, 4.4))
    width = 0.8 / len(TABLE2)
    x = np.arange(len(TABLE2_COLUMNS))
    for j, row in enumerate(TABLE2):
        stats = [stat(runs[row.name], "all", key, "insseg") for key, _ in TABLE2_COLUMNS]
        mean = [np.nan if st.mean is None else st.mean for st in stats]
        std = [0.0 if st.std is None else min(st.std, m) if m == m else 0.0 for st, m in zip(stats, mean)]
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(pos, mean, width, yerr=std, capsize=2, color=f"C{j}", label=f"{row.label} (n={len(runs[row.name])})")
        paper = [PAPER_TABLE2.get(row.label, {}).get(key, np.nan) for key, _ in TABLE2_COLUMNS]
        ax.scatter(pos, paper, marker="_", s=120, color="black", zorder=3, label="paper" if j == 0 else None)
    ax.set_xticks(x, [t for _, t in TABLE2_COLUMNS])
    ax.set_ylabel("%")
    ax.legend(fontsize=7)
    ax.set_title("Table 2: instance segmentation, bars ours (mean ± std over seeds), black ticks the paper's "
                 "ScanNet200 numbers", fontsize=9)
    fig.tight_layout()
    save_png(fig, path)


def _fig5_runs(results: dict) -> dict[tuple[str, float], list[dict]]:
    """(method, annotated fraction) -> runs; 100 % is the method's Table 1 row."""
    out = {}
    for label, _, full, slug in FIG5_METHODS:
        for f in FRACTIONS:
            out[label, f] = runs_of(results, f"f5-{slug}-{round(f * 100)}")
        out[label, 1.0] = runs_of(results, full)
    return out


def fig5_seeds_note(points: dict) -> str:
    """What a Fig. 5 point is: ``one seed each``, or which points pool several runs."""
    multi = sorted({f for (_, f), rs in points.items() if len(rs) > 1})
    if not multi:
        return "one seed each"
    counts = sorted({len(rs) for rs in points.values() if len(rs) > 1})
    runs = "/".join(map(str, counts))
    where = ", ".join(f"{f:.0%}".replace("%", " %") for f in multi)
    return f"one seed each, except {where}: mean ± std of {runs} seeds"


def fig5_markdown(results: dict) -> str:
    points = _fig5_runs(results)
    lines = ["# Fig. 5: mIoU against the annotated fraction of train points", "",
             "| Method | annotated | runs | mIoU all | head | common | tail |", "|---|---|---|---|---|---|---|"]
    for label, *_ in FIG5_METHODS:
        for f in (*FRACTIONS, 1.0):
            rs = points[label, f]
            cells = [_cell(stat(rs, s, "miou"), None) for s in ("all", "head", "common", "tail")]
            lines.append(f"| {label} | {f:.0%} | {_seeds_text(rs)} | " + " | ".join(cells) + " |")
    lines += ["", _data_note([r for rs in points.values() for r in rs]),
              f"Runs per point: {fig5_seeds_note(points)} (mean ± sample std where a point has several).",
              "CSC pretrains on all the train scenes' geometry (it reads no labels) and fine-tunes on the "
              "limited annotations; Ours pretrains on the limited annotations only, as in the paper.",
              "The paper gives Fig. 5 as a plot without numbers; its text: with 5 % of the annotations "
              "the language-grounded pretraining recovers the fully supervised scratch model's mIoU and "
              "gains +8 tail mIoU over CSC."]
    return "\n".join(lines) + "\n"


def table1_png(results: dict, path: str | Path) -> None:
    import numpy as np

    runs = table_runs(results)
    base = runs[next(r.name for r in TABLE1 if r.label == BASELINE)]
    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.4))
    width = 0.8 / len(TABLE1)
    x = np.arange(len(SPLITS))
    for ax, metric in zip(axes, METRICS, strict=True):
        for j, row in enumerate(TABLE1):
            stats = [stat(runs[row.name], s, metric) for s in SPLITS]
            mean = [np.nan if st.mean is None else st.mean for st in stats]
            std = [0.0 if st.std is None else st.std for st in stats]
            # a percentage stays in [0, 100]: the bars stop there (the table keeps the plain ± std)
            err = [[min(d, m) if m == m else 0.0 for d, m in zip(std, mean)],
                   [min(d, 100 - m) if m == m else 0.0 for d, m in zip(std, mean)]]
            pos = x - 0.4 + width * (j + 0.5)
            ax.bar(pos, mean, width, yerr=err, capsize=2, error_kw={"elinewidth": 0.8},
                   label=f"{row.label} (n={len(runs[row.name])})", color=f"C{j}")
            if row.label in PAPER_TABLE1:
                ax.scatter(pos, PAPER_TABLE1[row.label][metric], marker="_", s=120, color="black", zorder=3,
                           label="paper" if j == 0 else None)
            if row.label != BASELINE:
                for p, st, s in zip(pos, stats, SPLITS, strict=True):
                    mark = beyond_spread(st, stat(base, s, metric))
                    if mark:
                        ax.text(p, st.mean + (st.std or 0) + 0.5, MARKS[mark].strip(), ha="center",
                                va="bottom", fontsize=7, color=f"C{j}")
        ax.set_xticks(x, SPLITS)
        ax.set_title(METRIC_TITLES[metric])
        ax.set_ylabel("%")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Table 1: bars ours (mean, error bars ± std over seeds, within 0-100; n = runs), black ticks the paper's "
                 f"ScanNet200 numbers; ▲/▼: beyond the seeds' spread vs {BASELINE}")
    fig.tight_layout()
    save_png(fig, path)


def fig5_png(results: dict, path: str | Path) -> None:
    points = _fig5_runs(results)
    fig, ax = pyplot().subplots(figsize=(6, 4.4))
    for j, (label, *_) in enumerate(FIG5_METHODS):
        xs, ys, errs = [], [], []
        for f in (*FRACTIONS, 1.0):
            st = stat(points[label, f], "all", "miou")
            if st.mean is not None:
                xs.append(f * 100)
                ys.append(st.mean)
                errs.append(st.std or 0.0)
        if xs:
            ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, color=f"C{j}", label=label)
    ax.set_xscale("log")
    ax.set_xticks([5, 10, 50, 100], ["5 %", "10 %", "50 %", "100 %"])
    ax.set(xlabel="annotated train points", ylabel="mIoU (%)")
    ax.set_title(f"Fig. 5: limited annotations\n{fig5_seeds_note(points)}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    save_png(fig, path)


# ---- Fig. 7: the pretrained feature spaces -----------------------------------------------------------

FIG7_SCORES = (("all", "k-NN all"), ("head", "head"), ("common", "common"), ("tail", "tail"))


def fig7_runs(results: dict) -> dict[str, list[dict]]:
    """Each Fig. 7 row's runs that have feature-space scores, by the row's experiment name."""
    return {row.name: [r for r in runs_of(results, row.name) if r.get("features")] for row in FIG7}


def pictured_run(runs: list[dict]) -> dict | None:
    """The run a Fig. 7 panel shows: the seed-42 one (params.yaml's), else the first by name."""
    if not runs:
        return None
    return next((r for r in runs if _param(r.get("params") or {}, "pretrain.seed") == BASE_SEED),
                sorted(runs, key=lambda r: r.get("name") or "")[0])


def _feature_stat(runs: list[dict], key: str) -> Stat:
    values = [((r["features"].get("knn_accuracy") or {}).get(key) if key in SPLITS
               else r["features"].get(key)) for r in runs]
    return Stat(tuple(float(v) for v in values if v is not None), len(runs))


def fig7_markdown(results: dict) -> str:
    runs = fig7_runs(results)
    lines = ["# Fig. 7: the pretrained feature spaces (val voxels, t-SNE in fig7.png)", "",
             "| Method | experiment | runs | pictured | " + " | ".join(t for _, t in FIG7_SCORES)
             + " | silhouette |", "|---|---|---|---|" + "---|" * (len(FIG7_SCORES) + 1)]
    for row in FIG7:
        mine = runs[row.name]
        shown = pictured_run(mine)
        cells = [_format(_feature_stat(mine, key)) for key, _ in FIG7_SCORES]
        sil = _feature_stat(mine, "silhouette")
        sil_text = "–" if not sil.n else (f"{sil.mean:.3f}" if sil.n == 1 else f"{sil.mean:.3f} ± {sil.std:.3f}")
        lines.append(f"| {row.label} | {row.name} | {_seeds_text(mine)} | {shown['name'] if shown else '–'} | "
                     + " | ".join(cells) + f" | {sil_text} |")
    all_runs = [r for rs in runs.values() for r in rs]
    lines += ["", _data_note(all_runs),
              "Every model is read on the same val voxels: `features.per_group` of each of head, common and "
              "tail, spread evenly over the classes present, chosen from the labels alone (the feature-space "
              "stage, `metrics/features.json`; how many voxels and classes: `metrics/features_counts.json`). k-NN "
              "all / head / common / tail: leave-one-out `features.knn`-nearest-neighbour class accuracy of the "
              "L2-normalised features (cosine), percent, mean ± sample std over the row's runs; chance is about "
              "100 / the number of sampled classes. silhouette: scikit-learn's "
              "mean silhouette, cosine distance, classes as clusters (1: tight and apart, 0: overlapping). The "
              "picture (fig7.png) is one run's t-SNE per method; its distances are not the features'.",
              "Paper: Rozenberszki et al., ECCV 2022, Fig. 7 (t-SNE of CSC, SupCon, positives only and the full "
              "method; no numbers): \"our full language-grounded pre-training results in a more structured "
              "feature representation space\"."]
    missing = [r.name for r in FIG7 if not runs[r.name]]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)} (`lgseg queue fig7 --seeds 3 && dvc queue start`).")
    return "\n".join(lines) + "\n"


def fig7_png(results: dict, points: dict[str, list[tuple[float, float, int]]], path: str | Path) -> None:
    """One t-SNE panel per Fig. 7 method (``points``: pictured run name -> (x, y, class) rows), points in
    the class colours of lgseg's renders, the run's scores in the panel's title."""
    import numpy as np

    from lgseg.render import label_colors

    runs = fig7_runs(results)
    fig, axes = pyplot().subplots(1, len(FIG7), figsize=(4.2 * len(FIG7), 4.6))
    for ax, row in zip(axes, FIG7, strict=True):
        shown = pictured_run(runs[row.name])
        rows = points.get(shown["name"]) if shown else None
        ax.set_xticks([])
        ax.set_yticks([])
        if not rows:
            ax.set_title(f"{FIG7_TITLES[row.label]}\nnot run yet", fontsize=10)
            continue
        xy = np.array([(x, y) for x, y, _ in rows], dtype=float)
        classes = np.array([c for _, _, c in rows])
        ax.scatter(xy[:, 0], xy[:, 1], s=4, c=label_colors(classes), linewidths=0)
        f = shown["features"]
        sil = f.get("silhouette")
        k = _param(shown.get("params") or {}, "features.knn") or "k"
        ax.set_title(f"{FIG7_TITLES[row.label]} ({shown['name']})\n{k}-NN accuracy "
                     f"{f['knn_accuracy']['all']:.1f} %, silhouette {'n/a' if sil is None else format(sil, '.3f')}",
                     fontsize=10)
    fig.suptitle("Fig. 7: t-SNE of pretrained val voxel features, coloured by class (the same voxels in every panel)")
    fig.tight_layout()
    save_png(fig, path)


FIG7_POINTS = "fig7_points.csv"  # the pictured runs' t-SNE points, kept beside the report


def fig7_points(results: dict, saved: Path, cwd: str | Path = ".") -> dict[str, list[tuple[float, float, int]]]:
    """The t-SNE points of every pictured Fig. 7 run: from its experiment's commit (``git show
    <rev>:metrics/features_tsne.csv``), else from ``saved`` (an earlier report's points file), where
    the run's commit is gone (another clone)."""
    import csv
    import io

    kept: dict[str, list] = {}
    if saved.is_file():
        with open(saved, newline="") as f:
            for rec in csv.DictReader(f):
                kept.setdefault(rec["experiment"], []).append((float(rec["x"]), float(rec["y"]), int(rec["class"])))
    out = {}
    for rows in fig7_runs(results).values():
        run = pictured_run(rows)
        if run is None:
            continue
        text = _git_file(run.get("rev"), FEATURES_TSNE, cwd)
        if text is not None:
            out[run["name"]] = [(float(r["x"]), float(r["y"]), int(r["class"])) for r in csv.DictReader(io.StringIO(text))]
        elif run["name"] in kept:
            out[run["name"]] = kept[run["name"]]
    return out


def _write_points(path: Path, points: dict) -> None:
    from lgseg.fileio import atomic_file

    with atomic_file(path) as f:
        f.write("experiment,x,y,class\n")
        for name in sorted(points):
            f.writelines(f"{name},{x:.3f},{y:.3f},{c}\n" for x, y, c in points[name])


# ---- the zero-shot (label-free) table --------------------------------------------------------------------

def _zeroshot_stat(runs: list[dict], readout: str, split: str) -> Stat:
    values = [(((r.get("zeroshot") or {}).get(readout) or {}).get(split) or {}).get("miou") for r in runs]
    return Stat(tuple(float(v) for v in values if v is not None), len(runs))


def zeroshot_markdown(results: dict) -> str:
    lines = ["# Zero-shot (label-free) 3D segmentation: val, per mesh vertex, through the text anchors", "",
             "| Readout | experiment | runs | mIoU all | head | common | tail |", "|---|---|---|---|---|---|---|"]
    for label, t1, readout in ZEROSHOT_ROWS:
        row = _T1[t1]
        runs = [r for r in runs_of(results, row.name) if (r.get("zeroshot") or {}).get(readout)]
        cells = [_format(_zeroshot_stat(runs, readout, s)) for s in ("all", "head", "common", "tail")]
        lines.append(f"| {label} | {row.name} | {_seeds_text(runs)} | " + " | ".join(cells) + " |")
    teacher = [r for r in runs_of(results, _T1["2D distillation"].name) if r.get("teacher")]
    t = [_format(Stat(tuple(float(v) for r in teacher if (v := ((r["teacher"].get(s) or {}).get("miou"))) is not None),
                      len(teacher))) for s in ("all", "head", "common", "tail")]
    lines += ["", _data_note([r for row in ZEROSHOT for r in runs_of(results, row.name)]),
              "Every readout gives each val mesh vertex the class of the text anchor nearest its feature (cosine) "
              "and is scored as the benchmark scores predictions (the zeroshot stage, `metrics/zeroshot.json`; "
              "mean ± sample std over the experiment's runs): the pretrained 3D network's feature of the vertex's "
              "voxel, the 2D teacher's features fused onto the vertex (a vertex no frame sees counts as a miss, "
              "OpenScene's \"unknown\"), and OpenScene's ensemble, per vertex the one of the two nearer to its "
              "nearest anchor. A uniformly random readout scores about 0.2 mIoU.",
              f"The demo teacher itself, per pixel of its feature map on the val frames (the teacher stage, "
              f"`metrics/teacher.json`): 2D mIoU all / head / common / tail {' / '.join(t)}. It is an LSeg-style "
              "network trained inside the pipeline on the train scenes' 2D label images towards the same text "
              "anchors (docs/images.md): a stand-in for LSeg or OpenSeg, which learn from other 2D data and see no "
              "ScanNet label."]
    missing = [r.name for r in ZEROSHOT if not runs_of(results, r.name)]
    if missing:
        lines.append(f"Not run yet: {', '.join(missing)} (`lgseg queue zeroshot --seeds 3 && dvc queue start`).")
    return "\n".join(lines) + "\n"


# ---- the report as a whole ---------------------------------------------------------------------------

RUNS_FILE = "runs.json"  # every run the report used, so that it can be written again from another clone


def merged_results(live: dict, saved: Path) -> dict:
    """``live`` (``experiment_results``) over the runs an earlier report kept in ``saved``: a name in both
    counts once, its newest run (experiments live in one clone's git refs and DVC cache; the report's
    own record of them travels with the repository)."""
    import json

    results = json.loads(saved.read_text()) if saved.is_file() else {}
    for name, r in live.items():
        if name not in results or str(r.get("timestamp") or "") >= str(results[name].get("timestamp") or ""):
            results[name] = r
    return results


def _kept(r: dict) -> dict:
    """What the report reads of a run: its metric files, the params it reads, when and where it ran."""
    params = r.get("params") or {}
    keep = {"data": ("source",), "annotation": ("fraction",), "pretrain": ("seed", "objective"),
            "finetune": ("seed",), "insseg": ("seed",), "features": ("per_group", "knn")}
    small = {sec: {k: params[sec][k] for k in keys if k in (params.get(sec) or {})} for sec, keys in keep.items()
             if isinstance(params.get(sec), dict)}
    return {k: v for k, v in {**r, "params": small}.items() if v is not None}


def write_report(out: str | Path, exp_show: list, cwd: str | Path = ".") -> dict[str, Path]:
    """Write Table 1, Table 2, Fig. 5 and Fig. 7 (Markdown and PNG) into ``out`` from the experiments of
    ``exp_show`` and those an earlier report kept there (``runs.json``); returns the files."""
    from lgseg.fileio import atomic_file, write_json

    out = Path(out)
    results = merged_results(experiment_results(exp_show), out / RUNS_FILE)
    files = {"table1.md": table1_markdown(results), "table2.md": table2_markdown(results),
             "fig5.md": fig5_markdown(results), "fig7.md": fig7_markdown(results),
             "zeroshot.md": zeroshot_markdown(results)}
    for name, text in files.items():
        with atomic_file(out / name) as f:
            f.write(text)
    table1_png(results, out / "table1.png")
    table2_png(results, out / "table2.png")
    fig5_png(results, out / "fig5.png")
    points = fig7_points(results, out / FIG7_POINTS, cwd)
    fig7_png(results, points, out / "fig7.png")
    _write_points(out / FIG7_POINTS, points)
    write_json(out / RUNS_FILE, {name: _kept(r) for name, r in sorted(results.items())})
    names = ("table1.md", "table1.png", "table2.md", "table2.png", "fig5.md", "fig5.png", "fig7.md", "fig7.png",
             "zeroshot.md", FIG7_POINTS, RUNS_FILE)
    return {n: out / n for n in names}


# ---- DVC: the one place in lgseg/ that speaks to it --------------------------------------------
# `lgseg queue` and `lgseg report` are DVC commands by design: they run its command line (never
# import it) and read its `exp show --json` output, which names the files below.
EVALUATE_METRICS = "metrics/evaluate.json"  # the evaluate stage's metrics (dvc.yaml)
INSSEG_METRICS = "metrics/insseg.json"  # the insseg-evaluate stage's
FEATURES_METRICS = "metrics/features.json"  # the feature-space stage's, and its t-SNE points
ZEROSHOT_METRICS = "metrics/zeroshot.json"  # the zeroshot stage's
TEACHER_METRICS = "metrics/teacher.json"  # the teacher stage's (the demo teacher's 2D val scores)
FEATURES_TSNE = "metrics/features_tsne.csv"
PARAMS_FILE = "params.yaml"


def _dvc(*args: str, cwd: str | Path = ".") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)


def queue_command(row: Row) -> list[str]:
    sets = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in row.overrides.items()]
    return ["dvc", "exp", "run", "--queue", "-n", row.name, *[a for s in sets for a in ("-S", s)]]


def queue(which: str, cwd: str | Path = ".", seeds: int | None = None) -> tuple[list[str], list[str]]:
    """Queue the experiments of ``which`` ('table1', 'table2', 'fig5'), each ``seeds`` times when given
    (``with_seeds``), but those that already ran or are queued (Table 2 shares Table 1's); returns the
    names queued and the names left out."""
    rows = with_seeds(EXPERIMENTS[which], seeds)
    present = experiment_names(exp_show_json(cwd))
    queued = []
    for row in rows:
        if row.name in present:
            continue
        r = _dvc(*queue_command(row)[1:], cwd=cwd)
        if r.returncode != 0:
            raise LgsegError(f"{' '.join(queue_command(row))} failed:\n{r.stderr.strip()}")
        queued.append(row.name)
        present.add(row.name)
    return queued, [r.name for r in rows if r.name not in queued]


def experiment_names(exp_show: list) -> set[str]:
    """The experiments that finished or are queued or running (a failed one may be queued again)."""
    names = set()
    for base in exp_show:
        for exp in base.get("experiments") or []:
            if ((exp.get("executor") or {}).get("state")) in (None, "success", "queued", "running"):
                names.update(rev["name"] for rev in exp.get("revs") or [] if rev.get("name"))
    return names


def _git_file(rev: str | None, path: str, cwd: str | Path = ".") -> str | None:
    """``path`` as committed in ``rev`` (an experiment's commit, where DVC keeps its ``cache: false``
    outputs), None when this clone has no such commit or file."""
    if not rev or not re.fullmatch(r"[0-9a-f]{7,40}", rev):
        return None
    r = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=cwd, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def exp_show_json(cwd: str | Path = ".") -> list:
    """Experiments of every commit: a table's rows may have been run from different baselines."""
    r = _dvc("exp", "show", "--json", "--all-commits", cwd=cwd)
    if r.returncode != 0:
        raise LgsegError(f"dvc exp show --json failed in {Path(cwd).resolve()}:\n{r.stderr.strip()}")
    return json.loads(r.stdout)


def experiment_results(exp_show: list) -> dict[str, dict]:
    """``{experiment name: {"metrics": evaluate.json, "params": params.yaml, "timestamp": ...}}`` from
    ``dvc exp show --json``;
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
                    files = {path: (f or {}).get("data") for path, f in (data.get("metrics") or {}).items()}
                    out[name] = {"name": name, "rev": rev.get("rev"), "metrics": metrics,
                                 "insseg": files.get(INSSEG_METRICS), "features": files.get(FEATURES_METRICS),
                                 "zeroshot": files.get(ZEROSHOT_METRICS), "teacher": files.get(TEACHER_METRICS),
                                 "params": params, "timestamp": stamp}
                    when[name] = stamp
    return out
