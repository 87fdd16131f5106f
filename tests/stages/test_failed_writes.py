"""A failed output write under a real `dvc repro`: the rerun finishes the run, it never retrains.

DVC deletes a stage's outputs (all but ``persist`` ones) before it reruns the stage, so a run whose
model or metrics write failed must be finished from what survives: the checkpoint folder. The
failure is made real inside the stage process: a ``sitecustomize`` module on PYTHONPATH makes
creating the output's temporary file fail with EACCES, as a folder without write permission does
(a chmod would not stop root, whom CI may run as)."""

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import make_project, sh

FAULT = """
import errno, os, tempfile
_real = tempfile.mkstemp
def _mkstemp(suffix=None, prefix=None, dir=None, text=False):
    if prefix and prefix.startswith({prefix!r}):
        raise PermissionError(errno.EACCES, "Permission denied", dir)
    return _real(suffix, prefix, dir, text)
tempfile.mkstemp = _mkstemp
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    d = make_project(tmp_path_factory.mktemp("proj"), scenes=5)
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["finetune"].update(epochs=2, val_every=1)
    params["tracking"]["enabled"] = False
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["dvc", "repro", "pretrain"], d)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("output", ["models/finetune.pt", "metrics/finetune.json"])
def test_a_failed_output_write_is_finished_by_the_next_repro_without_training(project, tmp_path, output):
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "sitecustomize.py").write_text(FAULT.format(prefix=f".{Path(output).name}.tmp-"))
    r = sh(["dvc", "repro", "-f", "-s", "finetune"], project,
           env={**os.environ, "PYTHONPATH": str(fault)}, check=False)
    assert r.returncode != 0
    err = r.stderr.splitlines()
    line = next(x for x in err if "finetune: error:" in x)
    assert f"{output}: cannot write it (Permission denied" in line and "the rerun resumes there" in line
    assert "Traceback" not in r.stderr
    assert not (project / output).exists()

    r = sh(["dvc", "repro", "finetune"], project)  # DVC deletes the stage's outputs, then reruns it
    log = r.stdout + r.stderr
    assert "finetune epoch" not in log and "holds all 2 epochs" in log  # nothing trained again
    assert (project / "models/finetune.pt").is_file()
    assert json.loads((project / "metrics/finetune.json").read_text())["best_val_miou"] is not None
    curve = (project / "metrics/finetune_curve.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in curve[1:]] == ["1", "2"]
    assert (project / "metrics/finetune_val.csv").read_text().count("\n") == 3  # header + 2 validated epochs

    r = sh(["dvc", "repro", "finetune"], project)
    assert "finetune epoch" not in r.stdout + r.stderr and "didn't change" in r.stdout
