"""`dvc repro` on a copy of the project with a tiny synthetic set: the real DVC, the real stages."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lgseg.evaluation.benchmark import read_benchmark_file
from lgseg.scannet.constants import VALID_CLASS_IDS

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ["PATH"],
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git + DVC repo holding the project's pipeline files, a 6-scene demo set, 1-epoch training."""
    d = tmp_path_factory.mktemp("proj")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, d / name)
    for name in ("stages", "lgseg"):
        shutil.copytree(ROOT / name, d / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["data"]["synthetic"]["scenes"] = 6
    for stage in ("pretrain", "finetune"):  # a smoke-sized run of the real stages
        params[stage].update(epochs=1, val_every=1)
    params["augment"]["crop_points"] = 4000
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["git", "init", "-q"], d)
    sh(["dvc", "init", "-q"], d)
    sh(["dvc", "config", "core.analytics", "false"], d)
    return d


def test_repro_runs_the_stages_and_is_then_up_to_date(project):
    sh(["dvc", "repro"], project)
    stats = json.loads((project / "data/processed/stats.json").read_text())
    assert stats["scenes"]["train"] >= 3 and stats["scenes"]["val"] >= 1
    m = json.loads((project / "metrics/preprocess.json").read_text())
    assert m["scenes"] == stats["scenes"] and 0.5 < m["train_labelled_fraction"] <= 1.0
    val = sorted(p.stem for p in (project / "data/gt/val").glob("*.txt"))
    assert val and json.loads((project / "data/text/meta.json").read_text())["dim"] == 384
    for stage in ("pretrain", "finetune"):
        assert json.loads((project / f"metrics/{stage}.json").read_text())["epochs"] == 1
        assert (project / f"models/{stage}.pt").is_file()
    ev = json.loads((project / "metrics/evaluate.json").read_text())
    assert ev["scenes"] == len(val) and ev["points"] > 0
    assert sorted(p.stem for p in (project / "predictions").glob("*.txt")) == val
    for scene in val:  # one prediction per mesh vertex, raw ScanNet ids
        pred = read_benchmark_file(project / "predictions" / f"{scene}.txt")
        assert len(pred) == len(read_benchmark_file(project / "data/gt/val" / f"{scene}.txt"))
        assert np.isin(pred, VALID_CLASS_IDS).all()
    assert len((project / "metrics/per_class.csv").read_text().splitlines()) == 201
    again = sh(["dvc", "repro"], project)
    assert "Running stage" not in again.stdout


def test_ground_truth_through_the_pipeline_scores_100(project):
    gt = project / "data/gt/val"
    sh(["lgseg", "evaluate", "--pred", str(gt), "--gt", str(gt), "--out", str(project / "m.json")], project)
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
