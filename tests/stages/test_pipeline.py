"""`dvc repro` on a copy of the project with a tiny synthetic set: the real DVC, the real stages."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import VENV_BIN, make_project, sh
from mlflow.tracking import MlflowClient

from lgseg.evaluation.benchmark import read_benchmark_file
from lgseg.plots import PER_CLASS_PNG
from lgseg.scannet.constants import VALID_CLASS_IDS

STAGES = ("download", "preprocess", "text-embed", "frames", "teacher", "lift", "pretrain", "zeroshot",
          "feature-space", "finetune", "evaluate", "insseg-finetune", "insseg-evaluate")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("proj"))


def test_repro_runs_the_stages_and_is_then_up_to_date(project):
    sh(["dvc", "repro"], project)
    stats = json.loads((project / "data/processed/stats.json").read_text())
    assert stats["scenes"]["train"] >= 3 and stats["scenes"]["val"] >= 1
    m = json.loads((project / "metrics/preprocess.json").read_text())
    assert m["scenes"] == stats["scenes"] and 0.5 < m["train_labelled_fraction"] <= 1.0
    val = sorted(p.stem for p in (project / "data/gt/val").glob("*.txt"))
    assert val and json.loads((project / "data/text/meta.json").read_text())["dim"] == 384
    for stage in ("pretrain", "finetune", "insseg"):  # the epoch counter is bookkeeping: the curve's, not a metric
        with open(project / f"metrics/{stage}_curve.csv") as f:
            assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1]
        assert (project / f"models/{stage}.pt").is_file()
    ins = json.loads((project / "metrics/insseg.json").read_text())  # AP overall and per split, the head's mIoU
    assert set(ins) == {"all", "head", "common", "tail"} and {"ap", "ap50", "ap25", "miou"} <= set(ins["all"])
    val_instance = sorted(p.stem for p in (project / "data/gt/val_instance").glob("*.txt"))
    assert val_instance == val and sorted(p.stem for p in (project / "predictions_instance").glob("*.txt")) == val
    # the DVC metric files hold headline numbers only: the counts are beside them
    assert set(json.loads((project / "metrics/pretrain.json").read_text())) == {"val_miou"}
    assert set(json.loads((project / "metrics/finetune.json").read_text())) == {"best_val_miou"}
    ev = json.loads((project / "metrics/evaluate.json").read_text())
    assert set(ev) == {"all", "head", "common", "tail"} and ev["all"]["miou"] is not None
    counts = json.loads((project / "metrics/evaluate_counts.json").read_text())
    assert counts["scenes"] == len(val) and counts["points"] > 0
    assert sorted(p.stem for p in (project / "predictions").glob("*.txt")) == val
    for scene in val:  # one prediction per mesh vertex, raw ScanNet ids
        pred = read_benchmark_file(project / "predictions" / f"{scene}.txt")
        assert len(pred) == len(read_benchmark_file(project / "data/gt/val" / f"{scene}.txt"))
        assert np.isin(pred, VALID_CLASS_IDS).all()
    val_scenes = sorted(p.name for p in (project / "data/processed/val").iterdir())
    assert sorted(p.stem for p in (project / "renders").glob("*.png")) == val_scenes[:2]
    with open(project / "metrics/confusion.csv") as f:  # the most confused class pairs, largest first
        pairs = list(csv.DictReader(f))
    assert 0 < len(pairs) <= 20 and [int(r["points"]) for r in pairs] == sorted((int(r["points"]) for r in pairs),
                                                                              reverse=True)
    with open(project / "metrics/per_class.csv") as f:  # the long-tail view's train frequencies
        rows = list(csv.DictReader(f))
    assert [int(r["train_points"]) for r in rows] == stats["train_points"]
    again = sh(["dvc", "repro"], project)
    assert "Running stage" not in again.stdout


def test_each_stage_is_one_mlflow_run_in_the_repo_database(project):
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lgseg")
    stages = client.search_runs([exp.experiment_id], "tags.`lgseg.kind` = 'stage'")
    assert sorted(r.data.tags["lgseg.stage"] for r in stages) == sorted(STAGES)
    assert {r.info.status for r in stages} == {"FINISHED"}
    assert len({r.data.tags["mlflow.parentRunId"] for r in stages}) == 1  # one pipeline execution
    ev = next(r for r in stages if r.data.tags["lgseg.stage"] == "evaluate")
    assert ev.data.metrics["all.miou"] == pytest.approx(
        json.loads((project / "metrics/evaluate.json").read_text())["all"]["miou"])
    # the run's artifacts: mlflow-artifacts:/<exp>/<run>/artifacts, served by `mlflow ui` from ./mlartifacts
    folder = project / "mlartifacts" / exp.experiment_id / ev.info.run_id / "artifacts"
    assert ev.info.artifact_uri == f"mlflow-artifacts:/{exp.experiment_id}/{ev.info.run_id}/artifacts"
    assert {p.name for p in (folder / "plots").iterdir()} == {"long_tail_iou_vs_train_points.png", PER_CLASS_PNG,
                                                              "most_confused_pairs.png"}
    renders = {f"renders/{p.name}" for p in (folder / "renders").iterdir()}
    assert renders == {f"renders/{p.name}" for p in (project / "renders").glob("*.png")} and renders


def test_plots_show_renders_curves_and_the_long_tail(project):
    plots = json.loads(sh(["dvc", "plots", "show", "--json"], project).stdout)["data"]
    long_tail = plots["long tail, per-class IoU against train frequency"][0]["content"]
    assert len(long_tail["data"]["values"]) == 200
    assert long_tail["encoding"]["x"]["scale"] == {"type": "log"} and long_tail["encoding"]["color"]["field"] == "split"
    for name in ("pretrain loss", "pretrain zero-shot val mIoU", "finetune loss", "finetune val mIoU"):
        assert {v["epoch"] for v in plots[name][0]["content"]["data"]["values"]} == {"1"}


@pytest.mark.parametrize("key, value, stages", [
    ("loss.gamma", 1.0, {"finetune", "insseg-finetune"}),  # the evaluations follow through the models
    ("data.voxel_size", 0.1, {"pretrain", "finetune", "insseg-finetune"}),
    ("text.prompt", "a {} in a scene", {"text-embed"}),
    ("data.synthetic.seed", 1, {"download"}),
    ("evaluate.split", "test", {"evaluate", "insseg-evaluate"}),
    ("evaluate.render", 1, {"evaluate"}),
    ("pretrain.holdout", ["chair"], {"pretrain"}),
    ("annotation.fraction", 0.1, {"preprocess"}),
    ("instance_sampling.enabled", True, {"finetune", "insseg-finetune"}),
    ("instance_sampling.classes", "common", {"preprocess", "finetune", "insseg-finetune"}),
    ("insseg.cluster_radius", 0.05, {"insseg-evaluate"}),  # the clustering: the instance evaluation alone
    ("insseg.epochs", 2, {"insseg-finetune"}),
    # the image side's params start their own stages only (what reads those stages' outputs follows)
    ("frames.step", 2, {"frames"}),
    ("teacher.lseg_demo.epochs", 2, {"teacher"}),
    ("teacher.type", "clip", {"lift"}),
    ("lift.border", 3, {"lift"}),
    ("pretrain.objective", "distill", {"pretrain"}),
    ("features.knn", 5, {"feature-space"}),
    ("tracking.uri", "http://127.0.0.1:1", set()),  # where runs are logged changes no result
])
def test_a_param_invalidates_only_the_stages_that_read_it(project, key, value, stages):
    original = (project / "params.yaml").read_text()
    p = yaml.safe_load(original)
    *path, leaf = key.split(".")
    node = p
    for part in path:
        node = node[part]
    node[leaf] = value
    (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    try:
        assert set(json.loads(sh(["dvc", "status", "--json"], project).stdout)) == stages
    finally:
        (project / "params.yaml").write_text(original)


def test_ground_truth_through_the_pipeline_scores_100(project):
    gt, pred = project / "data/gt/val", project / "gt_as_pred"
    shutil.copytree(gt, pred)  # a folder scored against itself is refused
    (pred / ".lgseg-product").unlink()  # and so is a folder marked as ground truth
    sh(["lgseg", "evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(project / "m.json")], project)
    assert json.loads((project / "m.json").read_text())["all"]["miou"] == 100.0


def test_bad_source_param_is_a_clear_error(project):
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ["PATH"]}
    r = subprocess.run([sys.executable, "stages/download.py"], cwd=project, env=env, capture_output=True,
                       text=True, input=None)
    assert r.returncode == 0  # the valid demo params work as a plain script too
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["data"]["source"] = "scannet"
    (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    try:
        r = subprocess.run([sys.executable, "stages/download.py"], cwd=project, env=env, capture_output=True, text=True)
        assert r.returncode == 1 and "data.scannet_root is empty" in r.stderr
    finally:
        p["data"]["source"] = "synthetic"
        (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
