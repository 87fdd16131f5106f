"""lgseg.tracking against a real MLflow SQLite store in a temp dir."""

import logging
import socket
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from lgseg import tracking
from lgseg.tracking import (
    NullTracker,
    RunContext,
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
    (tmp_path / "copy/m.json").write_text('{"all": {"miou": 12.5}, "loss": 0.7, "epochs": 2, "skip": null}')
    (tmp_path / "copy/curve.csv").write_text("epoch,loss,val_miou\n1,2.0,\n2,1.5,10.0\n")
    t = StageTracker(ctx("finetune", ["data.voxel_size", "loss", "pretrain"], group="exp-a", commit="0123abcd" * 5),
                     PARAMS)
    assert t.enabled
    t.log_metrics({"loss": 2.0, "val_miou": float("nan")}, step=1)
    t.log_metrics({"loss": 1.5, "val_miou": 10.0}, step=2)
    t.log_outputs(["m.json"], ["curve.csv", "not-there.csv"])
    t.end(tracking.FINISHED)

    (run,) = runs(store, filt="tags.`lgseg.kind` = 'stage'")
    assert run.info.status == "FINISHED" and run.info.run_name == "finetune"
    assert run.data.params == {"data.voxel_size": "0.08", "loss.type": "cb_focal", "loss.gamma": "2.0",
                               "pretrain.scheduler.milestones": "[20, 26]"}
    assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, "loss")] == [(1, 2.0), (2, 1.5)]
    assert [(m.step, m.value) for m in store.get_metric_history(run.info.run_id, "val_miou")] == [(2, 10.0)]
    assert run.data.metrics["all.miou"] == 12.5 and run.data.metrics["epochs"] == 2
    tags = run.data.tags
    assert tags["lgseg.stage"] == "finetune" and tags["dvc.exp_name"] == "exp-a"
    assert tags["mlflow.source.git.commit"] == "0123abcd" * 5 and tags["lgseg.host"] == socket.gethostname()
    names = {a.path for a in store.list_artifacts(run.info.run_id)}
    assert names == {"m.json", "curve.csv", "plots"}
    assert [a.path for a in store.list_artifacts(run.info.run_id, "plots")] == ["plots/curve.png"]
    # artifacts live beside the database at the repo root, not in the working copy
    assert store.get_experiment_by_name("t").artifact_location == (tmp_path / "mlartifacts").as_uri()

    (parent,) = runs(store, filt="tags.`lgseg.kind` = 'pipeline'")
    assert tags["mlflow.parentRunId"] == parent.info.run_id and parent.info.run_name == "exp-a"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["tracking.experiment"] == "t" and parent.data.params["data.workers"] == "2"
    assert parent.data.metrics["finetune/all.miou"] == 12.5


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
        t.log_outputs([], [])
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
