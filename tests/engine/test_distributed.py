"""Two CPU processes under torchrun (gloo): sharded data, synchronised weights, rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lgseg.engine.checkpoint import load_checkpoint

# generous: alone the test takes ~15 s; CI runs it on a loaded 2-core machine
TIMEOUT_S = 600

SCRIPT = """
import json, sys, torch
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import train_paths
from lgseg.engine import launch
cfg = json.loads(Path({cfg!r}).read_text())
data = {{k: Path(v) for k, v in json.loads(Path({data!r}).read_text()).items()}}
seen = {{}}
real_fit = launch.Trainer.fit
def fit(self):  # record what this rank trains on and its final weights
    hist = real_fit(self)
    seen["rank"], seen["world"] = self.dist.rank, self.dist.world_size
    seen["batches"] = len(self.train_loader)
    seen["checksum"] = float(sum(p.double().sum() for p in self.net.parameters()))
    return hist
launch.Trainer.fit = fit
r = launch.run_training("finetune", cfg, train_paths(data, Path({out!r}), stats=data["stats"]), progress=False)
# one file per rank: both ranks printing to one pipe can interleave their lines
Path({results!r}, f"rank{{seen['rank']}}.json").write_text(json.dumps({{**seen, "steps": r["steps"]}}))
"""


def test_two_process_training_with_gloo(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg.update(epochs=2, val_every=1, batch_size=1)
    (tmp_path / "cfg.json").write_text(json.dumps(tiny_cfg))
    (tmp_path / "data.json").write_text(json.dumps({k: str(v) for k, v in tiny_data.items()}))
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), cfg=str(tmp_path / "cfg.json"),
                                    data=str(tmp_path / "data.json"), out=str(tmp_path / "out"),
                                    results=str(tmp_path)))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = tmp_path / "logs"  # torchrun writes each rank's stdout and stderr to its own file there
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", f"--log-dir={logs}", "--redirects=3", str(script)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"torchrun still running after {TIMEOUT_S} s\n{_tail(e.stderr)}\n{rank_logs(logs)}")
    assert r.returncode == 0, f"torchrun exit code {r.returncode}\n{_tail(r.stderr)}\n{rank_logs(logs)}"
    missing = [rank for rank in (0, 1) if not (tmp_path / f"rank{rank}.json").is_file()]
    assert not missing, f"rank(s) {missing} wrote no result\n{rank_logs(logs)}"
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [x["rank"] for x in results] == [0, 1] and all(x["world"] == 2 for x in results)
    # 4 train scenes, batch 1, 2 processes: 2 batches per process per epoch, 4 steps over 2 epochs
    assert all(x["batches"] == 2 and x["steps"] == 4 for x in results)
    assert abs(results[0]["checksum"] - results[1]["checksum"]) < 1e-6 * max(1.0, abs(results[0]["checksum"]))
    state = load_checkpoint(tmp_path / "out/ckpt/state.pt")
    assert state["complete"] and state["global_step"] == 4
    assert (tmp_path / "out/model.pt").is_file() and (tmp_path / "out/curve.csv").is_file()
    assert not list((tmp_path / "out").rglob("*.tmp-*"))


def rank_logs(logs: Path) -> str:
    """Each rank's stderr (torchrun's failure summary in its own stderr names each rank's exit code)."""
    found = sorted(logs.rglob("stderr.log"))
    return "\n".join(f"--- {p.relative_to(logs)}:\n{_tail(p.read_text(errors='replace'))}" for p in found) or \
        f"(no rank logs under {logs})"


def _tail(text, n: int = 3000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-n:]
