"""The DVC metric files hold the numbers a researcher compares (so `dvc exp show` fits a terminal);
the run's bookkeeping is in outputs that dvc.yaml does not declare as metrics."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "stages"))
from common import write_final_metrics  # noqa: E402

from lgseg.evaluation.metrics import write_metrics  # noqa: E402
from lgseg.scannet.constants import NUM_CLASSES  # noqa: E402

# keys that count or time a run rather than score it
BOOKKEEPING = {"epoch", "epochs", "steps", "lr", "loss", "data_share", "voxels_per_s", "outside_share", "scenes",
               "points", "vertices", "train_labelled_fraction", "train_classes_present", "bank_instances",
               "bank_classes"}
HEADLINE = {
    "metrics/pretrain.json": {"val_miou", "val_miou_holdout", "val_miou_holdout_chance"},
    "metrics/finetune.json": {"best_val_miou"},
    "metrics/evaluate.json": {f"{split}.{m}" for split in ("all", "head", "common", "tail")
                              for m in ("miou", "precision", "recall")} | {"all.miou_200"},
    "metrics/insseg_finetune.json": {"best_val_miou"},
    "metrics/insseg.json": {f"{split}.{m}" for split in ("all", "head", "common", "tail") for m in ("ap", "ap50", "ap25")}
                           | {"all.miou", "all.precision", "all.recall"},  # the last three: the semantic head's
    "metrics/features.json": {f"knn_accuracy.{split}" for split in ("all", "head", "common", "tail")} | {"silhouette"},
    "metrics/teacher.json": {f"{split}.{m}" for split in ("all", "head", "common", "tail")
                             for m in ("miou", "precision", "recall")} | {"all.miou_200"},
    "metrics/zeroshot.json": {f"{r}.{split}.miou" for r in ("model", "fusion", "ensemble")
                              for split in ("all", "head", "common", "tail")},
}


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def result(groups: bool) -> dict:
    """run_training's result: a history with every epoch's bookkeeping, validation on some epochs."""
    hist = []
    for e in range(1, 7):
        row = {"epoch": e, "loss": 1.0 / e, "lr": 0.1, "voxels_per_s": 9e3, "data_share": 0.02, "outside_share": 0.05,
               "steps": 14 * e}
        if e % 3 == 0:
            row.update(val_miou=float(10 - e), val_miou_200=1.0, val_miou_head=2.0, val_miou_common=0.0,
                       val_miou_tail=math.nan)
            if groups:
                row.update(val_miou_holdout=4.0 * e, val_miou_holdout_chance=0.5)
        hist.append(row)
    return {"history": hist, "epochs": 6, "steps": 84}


def test_dvc_yaml_declares_the_headline_files_as_metrics_and_the_bookkeeping_as_outputs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    metrics = {next(iter(m)) for s in stages.values() for m in s.get("metrics", [])}
    assert metrics == set(HEADLINE)
    outs = {next(iter(o)): o[next(iter(o))] for s in stages.values() for o in s.get("outs", []) if isinstance(o, dict)}
    for path in ("metrics/preprocess.json", "metrics/evaluate_counts.json", "metrics/pretrain_curve.csv",
                 "metrics/pretrain_val.csv", "metrics/finetune_curve.csv", "metrics/finetune_val.csv",
                 "metrics/insseg_curve.csv", "metrics/insseg_val.csv", "metrics/insseg_per_class.csv",
                 "metrics/features_tsne.csv", "metrics/features_counts.json", "metrics/frames.json",
                 "metrics/teacher_counts.json", "metrics/teacher_curve.csv", "metrics/lift.json",
                 "metrics/zeroshot_counts.json"):
        assert outs[path] == {"cache": False}, path  # versioned with git, beside the metrics, not one of them


def test_training_metric_files_hold_the_headline_numbers_only(tmp_path):
    write_final_metrics(tmp_path / "pretrain.json", result(groups=True), "pretrain")
    pre = json.loads((tmp_path / "pretrain.json").read_text())
    assert pre == {"val_miou": 4.0, "val_miou_holdout": 24.0, "val_miou_holdout_chance": 0.5}  # the last validation
    write_final_metrics(tmp_path / "finetune.json", result(groups=False), "finetune")
    assert json.loads((tmp_path / "finetune.json").read_text()) == {"best_val_miou": 7.0}
    for name in ("pretrain.json", "finetune.json"):
        keys = set(json.loads((tmp_path / name).read_text()))
        assert keys <= HEADLINE[f"metrics/{name}"] and not keys & BOOKKEEPING


def test_a_run_without_validation_writes_no_number(tmp_path):
    r = {"history": [{"epoch": 1, "loss": 1.0}], "epochs": 1, "steps": 3}
    write_final_metrics(tmp_path / "p.json", r, "pretrain")
    write_final_metrics(tmp_path / "f.json", r, "finetune")
    assert json.loads((tmp_path / "p.json").read_text()) == {}
    assert json.loads((tmp_path / "f.json").read_text()) == {"best_val_miou": None}


def test_evaluate_metrics_hold_the_scores_and_the_counts_go_beside(tmp_path):
    rng = np.random.default_rng(0)
    conf = rng.integers(0, 5, size=(NUM_CLASSES, NUM_CLASSES + 1))
    summary = write_metrics(conf, tmp_path / "evaluate.json", scenes=3, counts_json=tmp_path / "counts.json")
    scores = json.loads((tmp_path / "evaluate.json").read_text())
    assert set(flat(scores)) == HEADLINE["metrics/evaluate.json"]
    assert list(scores["all"]) == ["miou", "precision", "recall", "miou_200"]  # `dvc exp show` keeps this order
    assert json.loads((tmp_path / "counts.json").read_text()) == {"scenes": 3, "points": int(conf.sum())}
    assert summary["scenes"] == 3 and summary["all"] == scores["all"]
    # `lgseg evaluate` (no counts file): one file with both, as before
    write_metrics(conf, tmp_path / "cli.json", scenes=3)
    assert set(json.loads((tmp_path / "cli.json").read_text())) == {"all", "head", "common", "tail", "scenes", "points"}


def test_the_instance_metrics_file_holds_scores_only(tmp_path):
    """insseg-evaluate's metrics/insseg.json: AP, AP50, AP25 overall and per split, the semantic
    head's scores; no count (``classes`` stays in the CLI's file)."""
    from lgseg.evaluation.instance_ap import evaluate_instances, write_instance_metrics
    from lgseg.evaluation.instance_files import InstancePrediction

    gt = np.array([2 * 1000 + 1] * 120 + [0] * 10)  # one chair (raw id 2) of 120 vertices
    pred = InstancePrediction(masks=np.array([[True] * 120 + [False] * 10]), label_ids=[2], scores=[0.5])
    written = write_instance_metrics(evaluate_instances([(gt, pred)]), tmp_path / "insseg.json", counts=False,
                                     extra={"all": {"miou": 1.0, "precision": 2.0, "recall": 3.0}})
    keys = set(flat(json.loads((tmp_path / "insseg.json").read_text())))
    assert keys == HEADLINE["metrics/insseg.json"] and not keys & BOOKKEEPING and written["all"]["ap50"] == 100.0
