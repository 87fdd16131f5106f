"""SIGTERM to a running `dvc repro` (a scheduler's stop, `kill -- -PGID`): the training stage stops
with one line and no traceback (its data-loader worker's neither), leaves no half-written file, is
gone as soon as `dvc` is, and the next `dvc repro` resumes from its last epoch."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import VENV_BIN, make_project, sh


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    d = make_project(tmp_path_factory.mktemp("proj"), scenes=5)
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["pretrain"].update(epochs=200, val_every=100)
    params["train"]["num_workers"] = 1  # a worker process, busy when the signal comes
    params["tracking"]["enabled"] = False
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["dvc", "repro", "text-embed"], d)
    return d


def _start(project: Path, err: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ["PATH"]}
    with open(err, "w") as f:
        return subprocess.Popen(["dvc", "repro", "pretrain"], cwd=project, env=env, stdout=subprocess.DEVNULL,
                                stderr=f, start_new_session=True)


def _wait_for(check, what: str, err: Path, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not check() and time.time() < deadline:
        time.sleep(0.2)
    assert check(), f"no {what} within {seconds} s:\n{err.read_text()[-2000:]}"


def _stop(p: subprocess.Popen) -> None:
    """SIGTERM to the whole `dvc repro` process group; then every process of it must be gone with dvc."""
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(timeout=60)
    for _ in range(100):
        left = subprocess.run(["pgrep", "-a", "-g", str(p.pid)], capture_output=True, text=True)
        if left.returncode != 0:
            return
        time.sleep(0.1)
    pytest.fail(f"a process of the stopped `dvc repro` is still running 10 s after dvc exited:\n{left.stdout}")


@pytest.mark.slow
def test_sigterm_to_dvc_repro_stops_the_stage_cleanly_and_the_rerun_resumes(project):
    from lgseg.engine.checkpoint import load_checkpoint

    err = project / "repro.err"
    state = project / "checkpoints/pretrain/state.pt"
    p = _start(project, err)
    _wait_for(state.exists, "first epoch's checkpoint", err)
    time.sleep(1.0)  # mid-epoch, the worker busy
    _stop(p)
    log = err.read_text()
    assert "pretrain: interrupted" in log and "Traceback" not in log, log[-3000:]
    assert sorted(x.name for x in state.parent.iterdir()) == ["state.pt"]  # no temporary of a write cut short
    stopped_at = load_checkpoint(state)["epoch"]
    assert 1 <= stopped_at < 200

    again = project / "again.err"
    p = _start(project, again)
    _wait_for(lambda: "resuming pretrain from" in again.read_text(), "resume", again)
    _stop(p)
    assert f"at epoch {stopped_at} " in again.read_text()
