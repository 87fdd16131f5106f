"""lgseg.tracking against a real MLflow SQLite store in a temp dir."""

import json
import logging
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mlflow_server import artifact_paths, mlflow_server

from lgseg import tracking
from lgseg.plots import PER_CLASS_PNG
from lgseg.tracking import (
    NullTracker,
    RunContext,
    StageFiles,
    StageTracker,
    flatten,
    numeric,
    select_params,
    start_stage_run,
)

PARAMS = {"data": {"voxel_size": 0.08, "workers": 2}, "loss": {"type": "cb_focal", "gamma": 2.0},
          "pretrain": {"scheduler": {"milestones": [20, 26]}}, "tracking": {"experiment": "t"}}


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The default store of a repo at tmp_path (the context's root), with the process working elsewhere."""
    for var in ("MLFLOW_TRACKING_URI", "RANK"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "copy"
    work.mkdir()
    monkeypatch.chdir(work)
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture
def ctx(tmp_path):
    """A stage's context in the repo at tmp_path, as a stage script passes it."""
    def make(stage, params=(), **kw):
        return RunContext(stage, tmp_path, params=tuple(params), **kw)
    return make


def runs(client, exp="t", filt=""):
    return client.search_runs([client.get_experiment_by_name(exp).experiment_id], filt)


def artifacts(root: Path, run) -> set[str]:
    """The files of a run's artifacts: its ``mlflow-artifacts:/<exp>/<run>/artifacts`` URI, which
    ``mlflow ui`` serves from ``./mlartifacts``, under ``mlartifacts/`` of the repo at ``root``."""
    assert run.info.artifact_uri == f"mlflow-artifacts:/{run.info.experiment_id}/{run.info.run_id}/artifacts"
    folder = root / "mlartifacts" / run.info.experiment_id / run.info.run_id / "artifacts"
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_flatten_select_and_numeric():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}
    assert select_params(PARAMS, ["data.voxel_size", "loss", "missing.key"]) == {
        "data.voxel_size": 0.08, "loss.type": "cb_focal", "loss.gamma": 2.0, "missing.key": None}
    assert numeric({"a": 1, "b": 2.5, "c": float("nan"), "d": "x", "e": True, "f": None}) == {"a": 1.0, "b": 2.5}


def test_uri_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri({}, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert tracking.tracking_uri({"uri": ""}, tmp_path) == "http://env:5000"
    assert tracking.tracking_uri({"uri": "http://param:5000"}, tmp_path) == "http://param:5000"


def test_stage_run_logs_params_epochs_outputs_and_tags(store, ctx, tmp_path):
    (tmp_path / "copy/m.json").write_text('{"all": {"miou": 12.5}, "loss": 0.7, "skip": null}')
    (tmp_path / "copy/curve.csv").write_text("epoch,loss,val_miou\n1,2.0,\n2,1.5,10.0\n")
    t = StageTracker(ctx("finetune", ["data.voxel_size", "loss", "pretrain"], group="exp-a", commit="0123abcd" * 5,
                         metrics=("m.json",), small=("curve.csv", "not-there.csv")), PARAMS)
    assert t.enabled
    t.log_metrics({"loss": 2.0, "val_miou": float("nan")}, step=1)
    t.log_metrics({"loss": 1.5, "val_miou": 10.0}, step=2)
    t.log_outputs()
    t.end(tracking.FINISHED)

    (run,) = runs(store, filt="tags.`lgseg.kind` = 'stage'")
    assert run.info.status == "FINISHED" and run.info.run_name == "finetune"
    assert run.data.params == {"data.voxel_size": "0.08", "loss.type": "cb_focal", "loss.gamma": "2.0",
                               "pretrain.scheduler.milestones": "[20, 26]"}
    assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, "loss")] == [(1, 2.0), (2, 1.5)]
    assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, "val_miou")] == [(2, 10.0)]
    # the final numbers not logged per epoch, at the last epoch's step
    assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, "all.miou")] == [(2, 12.5)]
    tags = run.data.tags
    assert tags["lgseg.stage"] == "finetune" and tags["dvc.exp_name"] == "exp-a"
    assert tags["mlflow.source.git.commit"] == "0123abcd" * 5 and tags["lgseg.host"] == socket.gethostname()
    # artifacts live beside the database at the repo root, not in the working copy
    assert artifacts(tmp_path, run) == {"m.json", "curve.csv", "plots/curve.png"}
    assert not (tmp_path / "copy/mlartifacts").exists() and not (tmp_path / "copy/mlruns").exists()
    exp = store.get_experiment_by_name("t")
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training view

    (parent,) = runs(store, filt="tags.`lgseg.kind` = 'pipeline'")
    assert tags["mlflow.parentRunId"] == parent.info.run_id and parent.info.run_name == "exp-a"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["tracking.experiment"] == "t" and parent.data.params["data.workers"] == "2"
    assert parent.data.metrics == {"finetune/all.miou": 12.5, "finetune/loss": 0.7}
    assert artifacts(tmp_path, parent) == {"m.json", "curve.csv", "curve.png"}


def write_pipeline_files(folder: Path, evaluate_miou: float) -> None:
    """Metric and small files of a pretrain -> finetune -> evaluate pipeline, keys as they come."""
    (folder / "metrics").mkdir(exist_ok=True)
    (folder / "metrics/pretrain.json").write_text('{"val_miou": 4.0, "val_miou_holdout": 1.5}')
    (folder / "metrics/pretrain_curve.csv").write_text("epoch,loss,val_miou\n1,3.0,4.0\n")
    (folder / "metrics/finetune.json").write_text('{"best_val_miou": 9.0}')
    (folder / "metrics/evaluate.json").write_text(json.dumps({
        "all": {"miou": evaluate_miou, "precision": 30.0, "recall": 20.0, "miou_200": 8.0},
        "head": {"miou": 25.0}, "common": {"miou": 5.0}, "tail": {"miou": None}}))
    (folder / "metrics/per_class.csv").write_text(
        "id,name,split,iou,train_points\n1,wall,head,80.0,1000\n40,stool,common,5.0,20\n300,x,tail,0.0,3\n")
    (folder / "metrics/confusion.csv").write_text("pair,gt,predicted,points,share\nchair → table,chair,table,120,0.2\n")


PIPELINE = {"pretrain": StageFiles("pretrain", ("metrics/pretrain.json",), ("metrics/pretrain_curve.csv",)),
            "finetune": StageFiles("finetune", ("metrics/finetune.json",)),
            "evaluate": StageFiles("evaluate", ("metrics/evaluate.json",),
                                   ("metrics/per_class.csv", "metrics/confusion.csv"))}


def stage_ctx(ctx, stage, group, upstream):
    files = PIPELINE[stage]
    return ctx(stage, group=group, metrics=files.metrics, small=files.small,
               upstream=tuple(PIPELINE[s] for s in upstream))


def test_parent_carries_every_stage_finals_and_evaluate_artifacts_when_stages_were_restored(store, ctx, tmp_path):
    work = tmp_path / "copy"
    write_pipeline_files(work, evaluate_miou=10.0)
    # the first experiment runs the whole pipeline
    for stage, upstream in (("pretrain", ()), ("finetune", ("pretrain",)), ("evaluate", ("pretrain", "finetune"))):
        t = StageTracker(stage_ctx(ctx, stage, "g1", upstream), PARAMS)
        t.log_outputs()
        t.end(tracking.FINISHED)
    # the second changes a loss param: DVC restores pretrain's outputs and runs finetune and evaluate
    write_pipeline_files(work, evaluate_miou=12.0)
    (work / "metrics/finetune.json").write_text('{"best_val_miou": 11.0}')
    params = {**PARAMS, "loss": {"type": "cb_focal", "gamma": 3.0}}
    for stage, upstream in (("finetune", ("pretrain",)), ("evaluate", ("pretrain", "finetune"))):
        t = StageTracker(stage_ctx(ctx, stage, "g3", upstream), params)
        t.log_outputs()
        t.end(tracking.FINISHED)

    parents = {p.info.run_name: p for p in runs(store, filt="tags.`lgseg.kind` = 'pipeline'")}
    g3 = parents["g3"]
    assert {r.data.tags["lgseg.stage"] for r in runs(store, filt=f"tags.`mlflow.parentRunId` = '{g3.info.run_id}'")} \
        == {"finetune", "evaluate"}
    assert g3.data.metrics == {
        "pretrain/val_miou": 4.0, "pretrain/val_miou_holdout": 1.5,  # restored, not run: still there
        "finetune/best_val_miou": 11.0,
        "evaluate/all.miou": 12.0, "evaluate/all.precision": 30.0, "evaluate/all.recall": 20.0,
        "evaluate/all.miou_200": 8.0, "evaluate/head.miou": 25.0, "evaluate/common.miou": 5.0,
        # the headline numbers again, named to sort first (tail.miou is null: not measured)
        "_headline/all.miou": 12.0, "_headline/head.miou": 25.0, "_headline/common.miou": 5.0,
        "_headline/all.precision": 30.0, "_headline/all.recall": 20.0}
    assert parents["g1"].data.metrics["evaluate/all.miou"] == 10.0 and parents["g1"].data.metrics[
        "pretrain/val_miou"] == 4.0
    # logged by finetune and again by evaluate, the same value is one point
    assert len(store.get_metric_history(g3.info.run_id, "pretrain/val_miou")) == 1
    # at the top of its artifacts, where MLflow's compare view lists the files runs have in common
    assert artifacts(tmp_path, g3) == {
        "evaluate.json", "per_class.csv", "confusion.csv",
        "long_tail_iou_vs_train_points.png", PER_CLASS_PNG, "most_confused_pairs.png",
        "pretrain.json", "pretrain_curve.csv", "pretrain_curve.png", "finetune.json"}
    (ev,) = runs(store, filt="tags.`lgseg.stage` = 'evaluate' and tags.`dvc.exp_name` = 'g3'")
    assert artifacts(tmp_path, ev) == {"evaluate.json", "per_class.csv", "confusion.csv",
                                       "plots/long_tail_iou_vs_train_points.png", f"plots/{PER_CLASS_PNG}",
                                       "plots/most_confused_pairs.png"}


def test_artifact_location_follows_the_repo_root(tmp_path, monkeypatch):
    """A repo copied with its store (or moved): its runs write into its own mlartifacts/, also when the
    experiment was made by an older lgseg with the first copy's absolute folder as its location."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.mkdir()
    legacy = MlflowClient(f"sqlite:///{a / 'mlflow.db'}")
    exp_id = legacy.create_experiment("t", artifact_location=(a / "mlartifacts").as_uri())
    write_pipeline_files(a, evaluate_miou=10.0)
    old_run = legacy.create_run(exp_id).info.run_id
    legacy.log_artifact(old_run, str(a / "metrics/evaluate.json"))

    def evaluate(repo: Path, group: str):
        monkeypatch.chdir(repo)
        t = StageTracker(RunContext("evaluate", repo, group=group, metrics=PIPELINE["evaluate"].metrics,
                                    small=PIPELINE["evaluate"].small), PARAMS)
        t.log_outputs()
        t.end(tracking.FINISHED)
        client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
        (run,) = runs(client, filt=f"tags.`lgseg.stage` = 'evaluate' and tags.`dvc.exp_name` = '{group}'")
        return run

    def files(repo: Path) -> list[Path]:
        return sorted((repo / "mlartifacts").rglob("*"))

    shutil.copytree(a, b)  # a store whose experiment names a's folder
    before = files(a)
    in_b = evaluate(b, "in-b")
    assert artifacts(b, in_b) == {"evaluate.json", "per_class.csv", "confusion.csv",
                                  "plots/long_tail_iou_vs_train_points.png", f"plots/{PER_CLASS_PNG}",
                                  "plots/most_confused_pairs.png"}
    assert files(a) == before  # nothing written into the other copy
    shutil.copytree(b, c)  # and a copy of that
    before = files(b)
    in_c = evaluate(c, "in-c")
    assert "per_class.csv" in artifacts(c, in_c) and files(b) == before
    in_a = evaluate(a, "in-a")  # the first copy, still where it was, logs into its own
    assert "per_class.csv" in artifacts(a, in_a)
    # `mlflow ui` (here its server) started in the copy, as the README says, shows the copy's files,
    # those of runs logged before the copy was made included
    with mlflow_server(c, "--backend-store-uri", "sqlite:///mlflow.db") as url:
        assert "plots/long_tail_iou_vs_train_points.png" in artifact_paths(url, in_c.info.run_id)
        assert "per_class.csv" in artifact_paths(url, in_c.data.tags["mlflow.parentRunId"])
        assert "per_class.csv" in artifact_paths(url, in_b.info.run_id)


def test_one_parent_per_experiment_and_configuration(store, ctx):
    for stage in ("pretrain", "finetune"):
        StageTracker(ctx(stage), PARAMS).end(tracking.FINISHED)
    StageTracker(ctx("finetune", group="other"), PARAMS).end(tracking.FINISHED)
    parents = runs(store, filt="tags.`lgseg.kind` = 'pipeline'")
    assert sorted(p.info.run_name for p in parents) == ["other", "workspace"]
    children = {p.info.run_name: len(runs(store, filt=f"tags.`mlflow.parentRunId` = '{p.info.run_id}'"))
                for p in parents}
    assert children == {"workspace": 2, "other": 1}


def test_failed_status_reaches_run_and_parent(store, ctx):
    StageTracker(ctx("evaluate"), PARAMS).end(tracking.FAILED)
    assert {r.info.status for r in runs(store)} == {"FAILED"}


def test_runs_of_dead_processes_are_marked_killed(store, ctx):
    StageTracker(ctx("pretrain"), PARAMS)  # never ended: its process "dies"
    dead = subprocess.Popen(["true"])
    dead.wait()
    (stale,) = runs(store, filt="tags.`lgseg.stage` = 'pretrain'")
    store.set_tag(stale.info.run_id, "lgseg.pid", str(dead.pid))
    alive = StageTracker(ctx("finetune"), PARAMS)  # this process's run stays RUNNING
    status = {r.data.tags["lgseg.stage"]: r.info.status for r in runs(store, filt="tags.`lgseg.kind` = 'stage'")}
    assert status == {"pretrain": "KILLED", "finetune": "RUNNING"}
    alive.end(tracking.FINISHED)


def test_unreachable_store_warns_once_and_goes_on(store, ctx, monkeypatch, caplog):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="lgseg.tracking"):
        t = StageTracker(ctx("pretrain", ["loss"]), PARAMS)
        t.log_metrics({"loss": 1.0}, step=1)
        t.log_outputs()
        t.end(tracking.FINISHED)
    assert not t.enabled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0].getMessage()
    assert "DVC's files" in warnings[0].getMessage()


def test_switched_off_or_not_rank_zero_is_a_null_tracker(store, ctx, monkeypatch):
    assert isinstance(start_stage_run(ctx("x"), {**PARAMS, "tracking": {"enabled": False}}), NullTracker)
    monkeypatch.setenv("RANK", "1")
    t = start_stage_run(ctx("x"), PARAMS)
    assert type(t) is NullTracker and not t.enabled
    monkeypatch.setenv("RANK", "0")
    t = start_stage_run(ctx("x"), PARAMS)
    assert isinstance(t, StageTracker) and t.enabled
    t.end(tracking.FINISHED)
