"""A copy of the project in a temp git + DVC repo, with a tiny synthetic set and 1-epoch training."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def sh(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True,
       pipes: bool = True) -> subprocess.CompletedProcess:
    """Run a command as a user would in the activated environment (stages call `python`).

    ``pipes=False``: output through temporary files, for commands that start a daemon (`dvc queue
    start`): a daemon that inherits an output pipe would keep the call waiting as long as it lives."""
    env = {**(os.environ if env is None else env), "PATH": VENV_BIN + os.pathsep + os.environ["PATH"],
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    if pipes:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    else:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            code = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  timeout=300).returncode
            out.seek(0), err.seek(0)
            r = subprocess.CompletedProcess(cmd, code, out.read(), err.read())
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def make_project(d: Path, scenes: int = 6) -> Path:
    """The project's pipeline files and package in ``d``; smoke-sized params; git and DVC initialised."""
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, d / name)
    for name in ("stages", "lgseg"):
        shutil.copytree(ROOT / name, d / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["data"]["synthetic"]["scenes"] = scenes
    for stage in ("pretrain", "finetune", "insseg"):  # a smoke-sized run of the real stages
        params[stage].update(epochs=1, val_every=1)
    params["augment"]["crop_points"] = 4000
    params["data"]["synthetic"]["frames"] = 4  # the image stages on a few frames per scene
    params["teacher"]["lseg_demo"]["epochs"] = 1
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (d / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n__pycache__/\n")
    sh(["git", "init", "-q", "-b", "main"], d)
    sh(["dvc", "init", "-q"], d)
    sh(["dvc", "config", "core.analytics", "false"], d)
    sh(["dvc", "config", "core.autostage", "true"], d)
    shutil.copytree(ROOT / ".dvc/plots", d / ".dvc/plots")
    return d
