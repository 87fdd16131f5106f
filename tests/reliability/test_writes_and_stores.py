"""Issue 11, items 3, 4, 5, 10, 11, 13: full disks, a final model write that failed, temporaries of
writes killed midway, read-only and concurrently created tracking stores, code-carrying checkpoints.

A full disk is simulated with /dev/full, whose writes fail with the kernel's own ENOSPC: torch,
numpy and Python's file objects react to it exactly as they do on a full filesystem.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lgseg.engine.checkpoint import load_checkpoint, read_weights, save_checkpoint
from lgseg.engine.launch import TrainPaths, run_training
from lgseg.engine.trainer import Trainer
from lgseg.errors import LgsegError
from lgseg.fileio import atomic_dir, atomic_file, write_json
from lgseg.scannet.preprocess import preprocess

REPO = Path(__file__).resolve().parents[2]
FREE = r"[\d.]+ (B|KiB|MiB|GiB|TiB) free"  # how the message states the free space


def _child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


# ---- 3: disk full --------------------------------------------------------------------------------

def _torch_save_into_full_disk(monkeypatch, only: str = "") -> None:
    """torch.save of files whose name holds ``only`` writes into /dev/full (the kernel's ENOSPC)."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        name = os.readlink(f"/proc/self/fd/{f.fileno()}") if hasattr(f, "fileno") else str(f)
        if only not in name:
            return real_save(obj, f, *args, **kwargs)
        with open("/dev/full", "wb", buffering=0) as full:
            real_save(obj, full, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def _assert_disk_full_message(msg: str, path: Path) -> None:
    assert "\n" not in msg and "Traceback" not in msg
    assert "disk is full" in msg and str(path) in msg and re.search(FREE, msg), msg


def _only_final_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_disk_full_checkpoint_names_file_and_free_space_and_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "ckpt" / "state.pt"
    save_checkpoint(path, {"epoch": 1})
    _torch_save_into_full_disk(monkeypatch)
    with pytest.raises(LgsegError) as e:
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(10_000)})
    _assert_disk_full_message(str(e.value), path)
    assert load_checkpoint(path)["epoch"] == 1
    assert _only_final_files(path.parent) == ["state.pt"]


def test_disk_full_text_file_names_file_and_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"v": 1})
    real_mkstemp = tempfile.mkstemp

    def mkstemp_on_full_disk(*args, **kwargs):  # the temp file exists, its writes hit /dev/full
        fd, name = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_on_full_disk)
    with pytest.raises(LgsegError) as e:
        write_json(path, {"v": 2, "pad": "x" * 100_000})
    _assert_disk_full_message(str(e.value), path)
    assert json.loads(path.read_text()) == {"v": 1} and _only_final_files(tmp_path) == ["metrics.json"]


def test_disk_full_preprocessed_scene_names_it_and_keeps_previous_arrays(tiny_raw, tmp_path, monkeypatch):
    out = tmp_path / "processed"
    preprocess(tiny_raw, out, splits=("train",), progress=False)
    scene = out / "train" / "scene0000_00"
    before = {p.name: p.read_bytes() for p in scene.iterdir()}
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_on_full_disk(*args, **kwargs):  # the scene's first array lands on /dev/full
        d = real_mkdtemp(*args, **kwargs)
        os.symlink("/dev/full", Path(d) / "coord.npy")
        return d

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp_on_full_disk)
    with pytest.raises(LgsegError) as e:
        preprocess(tiny_raw, out, splits=("train",), progress=False)
    line = str(e.value)
    assert "\n" not in line and "--keep-going processes the other scenes" in line  # one line, with the hint
    assert "disk is full" in line and str(scene) in line and re.search(FREE, line)
    assert {p.name: p.read_bytes() for p in scene.iterdir()} == before
    assert not [p for p in (out / "train").iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("short_write", [
    OSError("86039 requested and 47072 written"),  # numpy's tofile: a short write, no errno
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),  # torch.save to a path
], ids=["numpy", "torch"])
def test_short_writes_without_errno_are_reported_as_disk_full(tmp_path, short_write):
    for writer, final in ((atomic_file, tmp_path / "a.bin"), (atomic_dir, tmp_path / "scene")):
        with pytest.raises(LgsegError) as e, writer(final):
            raise short_write
        _assert_disk_full_message(str(e.value), final)
    assert _only_final_files(tmp_path) == []


def test_other_write_errors_are_not_called_disk_full(tmp_path):
    with pytest.raises(RuntimeError, match="something else"), atomic_file(tmp_path / "a.bin"):
        raise RuntimeError("something else")


# ---- 4, 5: a final model write that failed; temporaries of killed writes -------------------------

TINY_CFG = {
    "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "epochs": 1, "batch_size": 2, "max_points": 10**7,
    "val_every": 10, "seed": 0, "device": "cpu", "amp": False, "num_workers": 0, "cpu_threads": 1,
    "voxel_size": 0.1, "voxel_point": "random", "augment": {}, "loss": {"type": "ce"},
    "optimizer": {"type": "sgd", "lr": 0.02, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-4},
    "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5},
}


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    from lgseg.synthetic import generate

    d = tmp_path_factory.mktemp("train_data")
    generate(d / "raw", num_scenes=6, seed=5, progress=False)
    preprocess(d / "raw", d / "processed", progress=False)
    return d / "processed"


def _count_epochs(monkeypatch) -> list:
    trained = []
    real = Trainer.train_epoch
    monkeypatch.setattr(Trainer, "train_epoch", lambda self: trained.append(self.epoch) or real(self))
    return trained


def test_finished_run_whose_model_write_failed_only_writes_the_model(processed, tmp_path, monkeypatch):
    paths = TrainPaths(processed=processed, checkpoint=tmp_path / "ckpt" / "state.pt", model=tmp_path / "model.pt",
                       curve=tmp_path / "curve.csv")
    with monkeypatch.context() as m:
        _torch_save_into_full_disk(m, only=".model.pt.tmp-")
        with pytest.raises(LgsegError, match="disk is full"):
            run_training("finetune", TINY_CFG, paths, progress=False)
    assert not paths.model.exists() and load_checkpoint(paths.checkpoint)["epoch"] == 1
    stale = [tmp_path / "ckpt" / ".state.pt.tmp-k1ll3d_x", tmp_path / ".model.pt.tmp-k1ll3d_x"]  # killed writes
    for p in stale:
        p.write_bytes(b"half")

    trained = _count_epochs(monkeypatch)
    r = run_training("finetune", TINY_CFG, paths, progress=False)
    assert trained == [] and r["epochs"] == 1 and len(r["history"]) == 1  # no epoch trained again
    _, meta = read_weights(paths.model)
    assert meta["epochs"] == 1 and load_checkpoint(paths.checkpoint)["complete"]
    assert not any(p.exists() for p in stale)

    # `dvc repro` deletes models/<stage>.pt before it reruns a stage whose inputs changed: a finished
    # run must then train anew, never hand back the old weights
    paths.model.unlink()
    run_training("finetune", TINY_CFG, paths, progress=False)
    assert trained == [0] and paths.model.is_file()


def test_checkpoint_write_killed_midway_leaves_a_temporary_that_the_next_start_removes(tmp_path):
    from lgseg.fileio import remove_stale_temporaries

    path = tmp_path / "ckpt" / "state.pt"
    save_checkpoint(path, {"epoch": 1})
    pid = os.fork()
    if pid == 0:  # a writer SIGKILLed while torch.save is writing
        def save(obj, f, *args, **kwargs):
            (f.write if hasattr(f, "write") else Path(f).write_bytes)(b"PK half a checkpoint")
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save
        try:
            save_checkpoint(path, {"epoch": 2})
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    leftover = [p for p in path.parent.iterdir() if p.name != "state.pt"]
    assert len(leftover) == 1 and leftover[0].name.startswith(".state.pt.tmp-")
    not_ours = [path.parent / n for n in (".state.pt.tmp-toolongname", ".other.pt.tmp-abcdefgh", "notes.txt",
                                          "state.pt.tmp-abcdefgh")]
    for p in not_ours:
        p.write_text("keep")

    assert remove_stale_temporaries(path) == leftover
    assert sorted(path.parent.iterdir()) == sorted([path, *not_ours])
    assert load_checkpoint(path)["epoch"] == 1


# ---- 10, 11: tracking stores -----------------------------------------------------------------------

PARAMS = {"loss": {"gamma": 2.0}, "tracking": {"experiment": "t"}}

_STAGE = textwrap.dedent("""
    import logging, os, sys, time
    from pathlib import Path
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from lgseg.tracking import FINISHED, RunContext, StageTracker
    import mlflow.store.tracking.sqlalchemy_store  # the slow imports before the start line
    uri, stage, go = sys.argv[1:4]
    Path(go + "." + stage).touch()
    while not Path(go).exists():
        time.sleep(0.005)
    t = StageTracker(RunContext(stage, Path.cwd(), params=("loss",)),
                     {"loss": {"gamma": 2.0}, "tracking": {"experiment": "t", "uri": uri}})
    t.log_metrics({"loss": 1.0}, step=1)
    t.end(FINISHED)
    print("enabled" if t.enabled else "disabled")
""")


def _stages(uri: str, names: list[str], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run a tracked stage per name in its own process, all starting at the same moment."""
    go = cwd / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _STAGE, uri, n, str(go)], cwd=cwd, env=_child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in names]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{n}").exists() for n in names) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs)]


def _info_free(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("INFO ")]


def test_read_only_store_is_one_warning_line_naming_it(tmp_path):
    from mlflow.tracking import MlflowClient

    db = tmp_path / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # the store exists, schema and all
    # opened read-only, as a file without write permission or on a read-only mount is (tests run as root)
    (r,) = _stages(f"sqlite:///file:{db}?mode=ro&uri=true", ["pretrain"], tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "disabled", r.stderr
    lines = _info_free(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("WARNING lgseg.tracking:") and str(db) in lines[0] and "read-only" in lines[0]
    assert "autoflush" not in lines[0] and "DVC's files" in lines[0]


def test_stages_creating_a_new_store_at_once_both_log_their_run(tmp_path):
    from mlflow.tracking import MlflowClient

    db = tmp_path / "store" / "mlflow.db"
    results = _stages(f"sqlite:///{db}", ["pretrain", "finetune"], tmp_path)
    for r in results:
        assert r.returncode == 0 and r.stdout.strip() == "enabled" and not _info_free(r.stderr), r.stderr
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("t").experiment_id], "tags.`lgseg.kind` = 'stage'")
    assert sorted(run.info.run_name for run in runs) == ["finetune", "pretrain"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert _only_final_files(db.parent) == ["mlflow.db"]  # the lock file went with its holder


# ---- 13: code-carrying checkpoints through the CLI ------------------------------------------------

class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_code_carrying_checkpoint_is_refused_in_one_line_by_the_cli(tmp_path):
    marker = tmp_path / "ran"
    files = {"zip": tmp_path / "evil.pt", "legacy": tmp_path / "evil_legacy.pt"}
    payload = {"state_dict": {"x": torch.zeros(1)}, "meta": _RunsCode(marker)}
    torch.save(payload, files["zip"])
    torch.save(payload, files["legacy"], _use_new_zipfile_serialization=False)
    (tmp_path / "data").mkdir()  # predict checks that the data folder exists before it reads the model
    procs = [subprocess.Popen([sys.executable, "-m", "lgseg.cli", "predict", "--checkpoint", str(f), "--data",
                               str(tmp_path / "data"), "--out", str(tmp_path / "out")], env=_child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files.values()]
    for f, p in zip(files.values(), procs):
        _, err = p.communicate(timeout=120)
        lines = err.splitlines()
        assert p.returncode == 1 and len(lines) == 1, err
        assert lines[0].startswith(f"lgseg predict: error: {f}: ") and "system" in lines[0]
        assert "not a plain-data checkpoint" in lines[0] and "will not be loaded" in lines[0]
        assert "weights_only" not in lines[0]
    assert not marker.exists() and not (tmp_path / "out").exists()
