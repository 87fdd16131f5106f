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
    clean_env.setenv("DVC_ROOT", str(tmp_path))
    clean_env.setenv("DVC_EXP_NAME", "exp-a")
    clean_env.setenv("DVC_EXP_BASELINE_REV", "0123abcd" * 5)
    ctx = dvc_context.run_context("text-embed", ["text"])
    assert ctx.root == tmp_path.resolve() and ctx.group == "exp-a" and ctx.commit == "0123abcd" * 5
    assert ctx.stage == "text-embed" and ctx.source == "stages/text_embed.py" and ctx.params == ("text",)


def test_outside_dvc_the_workspace_and_git_head(clean_env, tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=tmp_path, check=True)
    clean_env.chdir(tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    ctx = dvc_context.run_context("probe", [])
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
