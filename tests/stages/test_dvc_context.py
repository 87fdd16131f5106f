"""stages/dvc_context.py: what DVC's environment and dvc.yaml tell the tracker."""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "stages"))
import dvc_context  # noqa: E402


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("DVC_STAGE", "DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_context_from_dvc_environment(clean_env, tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  text-embed:\n    cmd: python stages/text_embed.py\n"
                                       "    params: [text]\n    outs: [data/text]\n")
    clean_env.chdir(tmp_path)
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    clean_env.setenv("DVC_EXP_NAME", "exp-a")
    clean_env.setenv("DVC_EXP_BASELINE_REV", "0123abcd" * 5)
    ctx = dvc_context.run_context("text-embed")
    assert ctx.root == tmp_path.resolve() and ctx.group == "exp-a" and ctx.commit == "0123abcd" * 5
    assert ctx.stage == "text-embed" and ctx.source == "stages/text_embed.py" and ctx.params == ("text",)
    assert ctx.metrics == ctx.small == ctx.upstream == ()


def test_outside_dvc_the_workspace_and_git_head(clean_env, tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=tmp_path, check=True)
    clean_env.chdir(tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    ctx = dvc_context.run_context("probe")  # no dvc.yaml: nothing declared
    assert ctx.root == tmp_path.resolve() and ctx.group == "workspace" and ctx.commit == head
    clean_env.setenv("DVC_STAGE", "evaluate")
    assert dvc_context.stage_name() == "evaluate"


def test_stage_spec_from_dvc_yaml(clean_env, tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: python stages/s.py --out o\n    params: [a, b.c]\n"
        "    outs: [o, {curve.csv: {cache: false}}]\n    metrics: [{m.json: {cache: false}}]\n")
    clean_env.chdir(tmp_path)
    assert dvc_context.stage_spec("s") == {"params": ["a", "b.c"], "metrics": ["m.json"], "small": ["curve.csv"]}
    assert dvc_context.stage_spec("other") == {"params": [], "metrics": [], "small": []}


PIPELINE = """
stages:
  download:
    cmd: python stages/download.py
    outs: [{data/raw: {cache: false, persist: true}}]
  preprocess:
    cmd: python stages/preprocess.py
    deps: [stages/preprocess.py, data/raw]
    outs: [data/processed, data/gt, {metrics/preprocess.json: {cache: false}}]
  text-embed:
    cmd: python stages/text_embed.py
    outs: [data/text]
  report-data:
    cmd: python stages/report_data.py
    deps: [data/raw]
    metrics: [{metrics/report_data.json: {cache: false}}]
  pretrain:
    cmd: python stages/pretrain.py
    deps: [data/processed, data/text]
    params: [pretrain]
    outs: [models/pretrain.pt, {metrics/pretrain_curve.csv: {cache: false}}]
    metrics: [{metrics/pretrain.json: {cache: false}}]
  finetune:
    cmd: python stages/finetune.py
    deps: [models/pretrain.pt]
    params: [finetune, loss]
    outs: [models/finetune.pt, {metrics/finetune_curve.csv: {cache: false}}]
    metrics: [{metrics/finetune.json: {cache: false}}]
  evaluate:
    cmd: python stages/evaluate.py
    deps: [models/finetune.pt, data/gt/val]
    outs: [predictions, {metrics/per_class.csv: {cache: false}}, {metrics/confusion.csv: {cache: false}}]
    metrics: [{metrics/evaluate.json: {cache: false}}]
"""


def test_upstream_stages_follow_deps_to_the_outputs_that_hold_them(clean_env, tmp_path):
    (tmp_path / "dvc.yaml").write_text(PIPELINE)
    clean_env.chdir(tmp_path)
    up = dvc_context.upstream_stages
    assert up("download") == [] and up("text-embed") == []
    assert up("preprocess") == ["download"]
    assert up("finetune") == ["download", "preprocess", "text-embed", "pretrain"]  # through models/pretrain.pt
    # evaluate reads data/gt/val, inside preprocess's data/gt; report-data is beside, never before it
    assert up("evaluate") == ["download", "preprocess", "text-embed", "pretrain", "finetune"]


def test_run_context_carries_the_files_of_the_stage_and_its_upstream(clean_env, tmp_path):
    """What the tracker logs into the parent run: every upstream stage's metric files, whether DVC
    ran that stage in this experiment or restored it."""
    from lgseg.tracking import StageFiles

    (tmp_path / "dvc.yaml").write_text(PIPELINE)
    clean_env.chdir(tmp_path)
    ctx = dvc_context.run_context("evaluate")
    assert ctx.metrics == ("metrics/evaluate.json",)
    assert ctx.small == ("metrics/per_class.csv", "metrics/confusion.csv")
    assert ctx.upstream == (
        StageFiles("download", (), ("data/raw",)),
        StageFiles("preprocess", (), ("metrics/preprocess.json",)),
        StageFiles("text-embed"),
        StageFiles("pretrain", ("metrics/pretrain.json",), ("metrics/pretrain_curve.csv",)),
        StageFiles("finetune", ("metrics/finetune.json",), ("metrics/finetune_curve.csv",)))
    assert ctx.pipeline[-1] == StageFiles("evaluate", ctx.metrics, ctx.small)
    assert dvc_context.run_context("finetune").params == ("finetune", "loss")


def test_the_projects_last_stages_read_every_metric_file(clean_env):
    """In the project's own dvc.yaml, the last stages (evaluate, insseg-evaluate, feature-space,
    zeroshot: no stage reads their outputs) follow from every stage with metrics: the parent run of an
    experiment that reran them carries all of them."""
    clean_env.chdir(Path(__file__).resolve().parents[2])
    import yaml

    stages = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]
    with_metrics = {name for name, s in stages.items() if s.get("metrics")}
    last = {n for n in stages if not any(n in dvc_context.upstream_stages(m) for m in stages if m != n)}
    assert last == {"evaluate", "insseg-evaluate", "feature-space", "zeroshot"}
    reached = set(last).union(*(dvc_context.upstream_stages(n) for n in last))
    assert with_metrics and with_metrics <= reached
