"""A real `mlflow server` on a free 127.0.0.1 port, for tests that check what a user's UI gets."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent


@contextlib.contextmanager
def mlflow_server(cwd: Path, *args: str, timeout: float = 180):
    """``mlflow server ARGS`` started in ``cwd`` (its default ``./mlartifacts`` is relative to it);
    yields its URL; stopped by its PID (and its workers by its process group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(cwd) / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *args],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
                pass
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def artifact_paths(url: str, run_id: str, path: str = "") -> set[str]:
    """Every file under ``path`` of a run's artifacts, as the server lists them to the UI."""
    r = requests.get(f"{url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": path}, timeout=30)
    assert r.status_code == 200, r.text
    out = set()
    for f in r.json().get("files", []):
        out |= artifact_paths(url, run_id, f["path"]) if f["is_dir"] else {f["path"]}
    return out
