"""stages/common.py: how a stage ends (done, user error, crash, SIGTERM, Ctrl-C, SIGKILL) and the
MLflow status it leaves. A probe stage runs the real common.py as DVC would (DVC_STAGE, DVC_ROOT)."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent('''
    import json, os, sys, time
    from common import run
    from lgseg.errors import LgsegError

    class Slow:  # a data loader whose worker process is busy when the signal comes
        def __len__(self): return 1000
        def __getitem__(self, i): time.sleep(0.2); return i

    def main(params, tracker):
        mode = params["probe"]["mode"]
        tracker.log_metrics({"progress": 1.0}, step=1)
        if mode == "ok":
            os.makedirs("metrics", exist_ok=True)
            json.dump({"score": 0.5}, open("metrics/probe.json", "w"))
        elif mode == "user-error":
            raise LgsegError("params.yaml: probe.mode is wrong. Set it to ok")
        elif mode == "crash":
            raise ValueError("boom")
        elif mode == "rewrite":  # another `dvc exp run` in this workspace rewrites params.yaml meanwhile
            with open("params.yaml", "w") as f:
                json.dump({"probe": {"mode": "ok"}}, f)
        elif mode == "wait":
            import torch.utils.data
            for i, _ in enumerate(torch.utils.data.DataLoader(Slow(), num_workers=1)):
                if i == 0:
                    print("ready", flush=True)

    run(main, check_params=False)  # a probe stage: its params are not the project's
''')


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "stages").mkdir()
    for name in ("common.py", "dvc_context.py"):
        shutil.copy(ROOT / "stages" / name, tmp_path / "stages" / name)
    (tmp_path / "stages/probe.py").write_text(PROBE)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"probe": {
        "cmd": "python stages/probe.py", "params": ["probe"],
        "metrics": [{"metrics/probe.json": {"cache": False}}]}}}))
    return tmp_path


def start(repo: Path, mode: str, sigint=signal.SIG_DFL) -> subprocess.Popen:
    """The probe stage, its SIGINT disposition set (the default: pytest's parent may ignore SIGINT,
    as a shell does for a job it starts in the background, and a child inherits that)."""
    (repo / "params.yaml").write_text(yaml.safe_dump({"probe": {"mode": mode}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env.update(DVC_STAGE="probe", DVC_ROOT=str(repo))
    return subprocess.Popen([sys.executable, "stages/probe.py"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))


def stage_runs(repo: Path) -> list:
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lgseg")
    return client.search_runs([exp.experiment_id], "tags.`lgseg.kind` = 'stage'",
                              order_by=["attributes.start_time ASC"])


def test_a_finished_stage_logs_its_metrics_file(repo):
    p = start(repo, "ok")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    (run,) = stage_runs(repo)
    assert run.info.status == "FINISHED" and run.info.run_name == "probe"
    assert run.data.metrics == {"progress": 1.0, "score": 0.5} and run.data.params == {"probe.mode": "ok"}


@pytest.mark.parametrize("mode, traceback", [("user-error", False), ("crash", True)])
def test_errors_fail_the_run(repo, mode, traceback):
    p = start(repo, mode)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1
    assert ("Traceback" in err) == traceback  # user errors are one clear line
    if not traceback:
        assert "probe: error: params.yaml: probe.mode is wrong. Set it to ok" in err
    (run,) = stage_runs(repo)
    assert run.info.status == "FAILED"


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_kills_the_run_cleanly(repo, sig, code):
    p = start(repo, "wait")
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert "probe: interrupted" in err
    assert "Traceback" not in err  # not the data-loader worker's, not the stage's: one line
    (run,) = stage_runs(repo)
    assert run.info.status == "KILLED"


def test_a_stage_started_with_sigint_ignored_keeps_ignoring_it_and_stops_on_sigterm(repo):
    """What `nohup dvc repro &` in a script gives its stages: the shell ignores SIGINT for background
    jobs, and a stage keeps that (a Ctrl-C meant for the foreground must not stop it); SIGTERM, which
    `kill` sends, stops it cleanly."""
    p = start(repo, "wait", sigint=signal.SIG_IGN)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=3)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "probe: interrupted" in err and "Traceback" not in err, err
    (run,) = stage_runs(repo)
    assert run.info.status == "KILLED"


def test_a_stage_whose_params_changed_while_it_ran_fails_naming_them(repo):
    p = start(repo, "rewrite")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    line = next(x for x in err.splitlines() if x.startswith("probe: error:"))
    assert "params.yaml changed while this stage ran (probe: {'mode': 'rewrite'} -> {'mode': 'ok'})" in line
    assert "dvc exp run --queue" in line and "Traceback" not in err
    (run,) = stage_runs(repo)
    assert run.info.status == "FAILED"


def test_after_sigkill_the_next_stage_marks_the_orphan_killed(repo):
    p = start(repo, "wait")
    assert p.stdout.readline().strip() == "ready"
    p.kill()
    p.communicate(timeout=60)
    assert [r.info.status for r in stage_runs(repo)] == ["RUNNING"]  # nothing can run on SIGKILL
    q = start(repo, "ok")
    q.communicate(timeout=120)
    assert [r.info.status for r in stage_runs(repo)] == ["KILLED", "FINISHED"]
