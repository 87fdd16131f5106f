"""Experiments as researchers run them: `dvc exp run -S`, the queue, apply and branch, with every
stage logged to MLflow: a real `mlflow server` on 127.0.0.1 (checked through its REST API) and the
default SQLite database at the repository root (for queued experiments, which run in a copy)."""

import json
import os
import re
import time

import pytest
import requests
import yaml
from conftest import make_project, sh
from mlflow.tracking import MlflowClient
from mlflow_server import artifact_paths, mlflow_server

from lgseg.plots import PER_CLASS_PNG
from lgseg.tracking import flatten, numeric


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on a free local port, with its own database and artifact folder."""
    d = tmp_path_factory.mktemp("mlflow")
    with mlflow_server(d, "--backend-store-uri", f"sqlite:///{d / 'server.db'}",
                       "--artifacts-destination", str(d / "artifacts")) as url:
        yield url


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = make_project(tmp_path_factory.mktemp("exp"))
    sh(["git", "add", "-A"], d)
    sh(["git", "commit", "-qm", "pipeline"], d)
    yield d
    # no queue worker outlives the tests (one whose idle-shutdown thread crashed would run on)
    sh(["dvc", "queue", "stop"], d, env=env_without_tracking(), check=False, pipes=False)


def env_without_tracking() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}


def exp_table(project, all_metrics: bool = False) -> dict:
    """name -> (params.yaml, metrics/evaluate.json) of each experiment, from `dvc exp show --json`;
    ``all_metrics``: every metric file's data by its path instead of evaluate.json's."""
    table = {}
    for base in json.loads(sh(["dvc", "exp", "show", "--json"], project).stdout):
        for exp in base.get("experiments") or []:
            rev = exp["revs"][0]
            data = rev["data"]
            metrics = {path: m["data"] for path, m in data["metrics"].items()}
            table[rev["name"]] = (data["params"]["params.yaml"]["data"],
                                  metrics if all_metrics else metrics["metrics/evaluate.json"])
    return table


def metric_files_by_stage(project) -> dict:
    """stage -> its metric files, as the project's dvc.yaml declares them."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {name: [next(iter(e)) if isinstance(e, dict) else e for e in s.get("metrics", [])]
            for name, s in stages.items() if s.get("metrics")}


def wait_for_queue(project, env, timeout=900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; every task must have succeeded."""
    deadline = time.time() + timeout
    while True:
        status = sh(["dvc", "queue", "status"], project, env=env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            assert "Failed" not in status, status
            return status
        assert time.time() < deadline, status
        time.sleep(3)


def api(url, endpoint, **body):
    r = requests.post(f"{url}/api/2.0/mlflow/{endpoint}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def search(url, exp_id, filt):
    return api(url, "runs/search", experiment_ids=[exp_id], filter=filt, max_results=100).get("runs", [])


def test_two_experiments_reach_the_mlflow_server(project, server):
    env = {**env_without_tracking(), "MLFLOW_TRACKING_URI": server}
    first = sh(["dvc", "exp", "run", "-n", "gamma1", "-S", "loss.gamma=1"], project, env=env)
    assert first.stdout.count("Running stage") == 13
    second = sh(["dvc", "exp", "run", "-n", "gamma3", "-S", "loss.gamma=3"], project, env=env)
    ran = {line.split("'")[1] for line in second.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"finetune", "evaluate", "insseg-finetune", "insseg-evaluate"}  # nothing upstream of the loss

    table = exp_table(project)
    assert table["gamma1"][0]["loss"]["gamma"] == 1 and table["gamma3"][0]["loss"]["gamma"] == 3
    all_metrics = exp_table(project, all_metrics=True)

    exp_id = requests.get(f"{server}/api/2.0/mlflow/experiments/get-by-name",
                          params={"experiment_name": "lgseg"}, timeout=30).json()["experiment"]["experiment_id"]
    commit = sh(["git", "rev-parse", "HEAD"], project).stdout.strip()
    stages = {"gamma1": {"download", "preprocess", "text-embed", "pretrain", "finetune", "evaluate",
                         "insseg-finetune", "insseg-evaluate", "feature-space", "frames", "teacher", "lift",
                         "zeroshot"},
              "gamma3": {"finetune", "evaluate", "insseg-finetune", "insseg-evaluate"}}
    for name, gamma in (("gamma1", "1"), ("gamma3", "3")):
        runs = search(server, exp_id, f"tags.`dvc.exp_name` = '{name}'")
        by_kind = {}
        for r in runs:
            tags = {t["key"]: t["value"] for t in r["data"]["tags"]}
            assert r["info"]["status"] == "FINISHED"
            assert tags["mlflow.source.git.commit"] == commit
            by_kind.setdefault(tags["lgseg.kind"], {})[tags.get("lgseg.stage", "pipeline")] = (r, tags)
        assert set(by_kind["stage"]) == stages[name] and len(by_kind["pipeline"]) == 1
        parent, _ = by_kind["pipeline"]["pipeline"]
        assert {t["mlflow.parentRunId"] for _, t in by_kind["stage"].values()} == {parent["info"]["run_id"]}

        ft, _ = by_kind["stage"]["finetune"]
        params = {p["key"]: p["value"] for p in ft["data"]["params"]}
        assert params["loss.gamma"] == gamma and params["finetune.epochs"] == "1" and "text.encoder" not in params
        history = requests.get(f"{server}/api/2.0/mlflow/metrics/get-history", timeout=30,
                               params={"run_id": ft["info"]["run_id"], "metric_key": "loss"}).json()["metrics"]
        assert [m["step"] for m in history] == [1]
        ev, _ = by_kind["stage"]["evaluate"]
        miou = {m["key"]: m["value"] for m in ev["data"]["metrics"]}["all.miou"]
        assert miou == pytest.approx(table[name][1]["all"]["miou"])
        parent_metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
        assert parent_metrics["evaluate/all.miou"] == pytest.approx(miou)
        assert parent_metrics["_headline/all.miou"] == pytest.approx(miou)  # named to sort first
        assert {p["key"]: p["value"] for p in parent["data"]["params"]}["loss.gamma"] == gamma
        # every stage's final metrics, gamma3's pretrain too, which DVC restored instead of running; not
        # those of stages that neither ran nor feed one that did (gamma3's feature-space and zeroshot)
        left_out = {"feature-space", "zeroshot"} if name == "gamma3" else set()
        expected = {f"{stage}/{k}": v for stage, files in metric_files_by_stage(project).items() for f in files
                    if stage not in left_out for k, v in numeric(flatten(all_metrics[name][1][f])).items()}
        assert {k: v for k, v in parent_metrics.items() if not k.startswith("_")} == pytest.approx(expected)
        assert any(k.startswith("pretrain/") for k in expected)
        # and the evaluate stage's files, as the UI lists them
        files = artifact_paths(server, parent["info"]["run_id"])
        assert {"evaluate.json", "per_class.csv", "long_tail_iou_vs_train_points.png", PER_CLASS_PNG,
                "most_confused_pairs.png", "finetune_curve.png"} <= files, files
        assert "per_class.png" not in files


def test_queued_experiments_run_in_copies_and_log_to_the_repo_database(project):
    env = env_without_tracking()
    sh(["dvc", "exp", "apply", "gamma1"], project, env=env)  # the baseline for the queue: gamma1's results
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "gamma1 results"], project)
    for name, gamma in (("q0", 0), ("q5", 5)):
        sh(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"loss.gamma={gamma}"], project, env=env)
    sh(["dvc", "queue", "start"], project, env=env, pipes=False)
    status = wait_for_queue(project, env)
    assert status.count("Success") == 2, status
    table = exp_table(project)
    assert table["q0"][0]["loss"]["gamma"] == 0 and table["q5"][0]["loss"]["gamma"] == 5

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")  # not the copies' own directories
    exp = client.get_experiment_by_name("lgseg")
    for name in ("q0", "q5"):
        runs = client.search_runs([exp.experiment_id],
                                  f"tags.`dvc.exp_name` = '{name}' and tags.`lgseg.kind` = 'stage'")
        assert {"finetune", "evaluate"} <= {r.data.tags["lgseg.stage"] for r in runs}
        assert {r.info.status for r in runs} == {"FINISHED"}
        ev = next(r for r in runs if r.data.tags["lgseg.stage"] == "evaluate")
        assert ev.data.metrics["all.miou"] == pytest.approx(table[name][1]["all"]["miou"])
        # artifacts in the repo's mlartifacts/ (which `mlflow ui` started there serves), not the copies'
        assert ev.info.artifact_uri == f"mlflow-artifacts:/{exp.experiment_id}/{ev.info.run_id}/artifacts"
        folder = project / "mlartifacts" / exp.experiment_id / ev.info.run_id / "artifacts"
        assert (folder / "per_class.csv").is_file() and (folder / "plots/long_tail_iou_vs_train_points.png").is_file()


def test_exp_apply_and_branch(project):
    env = env_without_tracking()
    table = exp_table(project)
    sh(["dvc", "exp", "apply", "q5"], project, env=env)
    assert yaml.safe_load((project / "params.yaml").read_text())["loss"]["gamma"] == 5
    applied = json.loads((project / "metrics/evaluate.json").read_text())
    assert applied["all"]["miou"] == pytest.approx(table["q5"][1]["all"]["miou"])
    sh(["dvc", "exp", "branch", "q0", "gamma0"], project, env=env)
    assert yaml.safe_load(sh(["git", "show", "gamma0:params.yaml"], project).stdout)["loss"]["gamma"] == 0
    branch_metrics = json.loads(sh(["git", "show", "gamma0:metrics/evaluate.json"], project).stdout)
    assert branch_metrics["all"]["miou"] == pytest.approx(table["q0"][1]["all"]["miou"])


def test_table1_queued_with_one_command_and_reported(project):
    env = env_without_tracking()
    sh(["git", "checkout", "--", "."], project)  # the committed baseline, not the last applied experiment
    sh(["dvc", "checkout", "--force"], project, env=env)
    sh(["lgseg", "queue", "table1", "--start"], project, env=env, pipes=False)
    wait_for_queue(project, env)
    sh(["lgseg", "report", "--out", "reports"], project, env=env)
    table = (project / "reports/table1.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    assert [r.split(" | ")[0][2:] for r in rows] == ["Scratch", "Ins. samp.", "C-Focal", "SupCon", "CSC",
                                                     "Ours (positives only)", "Ours (CLIP only)", "Ours",
                                                     "2D distillation"]
    for row in rows:  # one run each (params.yaml's seeds), then 12 cells "ours (paper)"; ours is "–" only
        runs, *cells = row.rstrip(" |").split(" | ")[1:]  # where a score is undefined on the tiny set
        paper = r"" if "positives only" in row or "distillation" in row else r" \(\d+\.\d\)"  # not in the paper
        assert runs == "1", row
        assert len(cells) == 12 and all(re.fullmatch(r"(–|\d+\.\d)" + paper, c) for c in cells), row
        assert re.fullmatch(r"\d+\.\d", cells[3].split()[0])  # mIoU over all classes is always defined
    zeroshot = (project / "reports/zeroshot.md").read_text()  # Table 1's queue runs every zero-shot row
    readouts = [line for line in zeroshot.splitlines() if line.startswith("| ") and not line.startswith("| Readout")]
    assert len(readouts) == 5 and "Not run yet" not in zeroshot
    assert all(re.fullmatch(r"\d+\.\d", r.split(" | ")[3]) for r in readouts), readouts
    assert "not ScanNet numbers" in table and (project / "reports/table1.png").stat().st_size > 10_000
    results = exp_table(project)
    assert results["t1-ours"][0]["instance_sampling"]["enabled"] is True
    assert results["t1-scratch"][0]["finetune"]["init"] == results["t1-scratch"][0]["insseg"]["init"] == "scratch"
    # Table 2: the same experiments of its five methods, which ran the instance stages too
    table2 = (project / "reports/table2.md").read_text()
    rows2 = [line for line in table2.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    assert [r.split(" | ")[:3] for r in rows2] == [["| Scratch", "t1-scratch", "1"], ["| CSC", "t1-csc", "1"],
                                                   ["| CLIP only", "t1-clip-only", "1"], ["| Ours", "t1-ours", "1"],
                                                   ["| 2D distillation", "t1-distill", "1"]]
    assert all(re.fullmatch(r"\d+\.\d", r.split(" | ")[5].split()[0]) for r in rows2)  # mAP@0.5 is defined
    # Fig. 7: the feature spaces of four of them, scored, and their t-SNE points read from each experiment's commit
    fig7 = (project / "reports/fig7.md").read_text()
    rows7 = [line.split(" | ") for line in fig7.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    assert [(r[1], r[2], r[3]) for r in rows7] == [("t1-csc", "1", "t1-csc"), ("t1-supcon", "1", "t1-supcon"),
                                                   ("t1-pos-only", "1", "t1-pos-only"), ("t1-ours", "1", "t1-ours")]
    assert all(re.fullmatch(r"\d+\.\d", r[4]) for r in rows7)  # k-NN accuracy of every pictured run
    points = (project / "reports/fig7_points.csv").read_text().splitlines()[1:]
    assert {p.split(",")[0] for p in points} == {"t1-csc", "t1-supcon", "t1-pos-only", "t1-ours"}
    assert (project / "reports/fig7.png").stat().st_size > 10_000
