"""benchmarks/bench_gpu.py without a GPU: it says it needs one and exits 0, and its --cpu-check
path (the GPU code on the CPU at a tiny size) prints the equivalence verdict and the training
table with finite numbers. Run as subprocesses, with the modules the GPU machines lack
(plyfile, dvc, mlflow, threadpoolctl; MinkowskiEngine in one case) made unimportable. No timings are asserted.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
NO_CUDA = "bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); nothing measured"
# runs the script as __main__ with `import X` failing for the named modules, as on the GPU machines
LAUNCH = ("import runpy, sys\n"
          "for m in sys.argv[1].split(','):\n"
          "    sys.modules[m] = None\n"
          "sys.argv = [sys.argv[2], *sys.argv[3:]]\n"
          "runpy.run_path(sys.argv[0], run_name='__main__')\n")
ROW = re.compile(r"^(fp32|amp\*)\s+(\d+)\s+([\d,]+)\s+([\d.]+)\s+(-|[\d.]+)\s+(\S+)->(\S+)\s*$", re.M)


def run(*args: str, block: str = "plyfile,dvc,mlflow,threadpoolctl") -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", LAUNCH, block, str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_without_cuda_it_measures_nothing_and_exits_0():
    r = run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == NO_CUDA


@pytest.mark.parametrize("reference", ["minkowski", "spconv"])
def test_cpu_check_prints_the_equivalence_and_a_finite_table(reference):
    block = "plyfile,dvc,mlflow,threadpoolctl"
    if reference == "spconv":
        block += ",MinkowskiEngine"  # the fallback reference, as on the GPU machines
    elif importlib.util.find_spec("MinkowskiEngine") is None:
        pytest.skip("MinkowskiEngine is not installed")
    r = run("--cpu-check", block=block)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout

    eq = re.search(r"^equivalence \S+ eval: spconv-cpu vs (\S+)-cpu on ([\d,]+) voxels: max \|diff\| (\S+), "
                   r"scale (\S+), relative (\S+) \(tol (\S+)\) (PASS|FAIL)$", out, re.M)
    assert eq, out
    assert eq.group(1) == reference
    diff, scale, rel, tol = map(float, eq.group(3, 4, 5, 6))
    assert scale > 0 and math.isfinite(diff) and rel <= tol and eq.group(7) == "PASS", eq.group(0)

    rows = {m.group(1): m for m in ROW.finditer(out)}
    assert set(rows) == {"fp32", "amp*"}, out
    for m in rows.values():
        steps, vox_s, step_ms = int(m.group(2)), float(m.group(3).replace(",", "")), float(m.group(4))
        losses = float(m.group(6)), float(m.group(7))
        assert steps >= 1 and vox_s > 0 and step_ms > 0 and all(map(math.isfinite, (vox_s, step_ms, *losses)))
        assert m.group(5) == "-"  # no GPU memory on the CPU
    speedup = re.search(r"^AMP speed-up: (\S+)x", out, re.M)
    assert speedup and math.isfinite(float(speedup.group(1))) and float(speedup.group(1)) > 0, out


def test_gpu_pipeline_without_cuda_measures_nothing_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", LAUNCH, "plyfile,dvc,mlflow,MinkowskiEngine,pydantic",
                        str(ROOT / "benchmarks" / "gpu_pipeline.py"), "--data", "nowhere", "--out", "nowhere"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("gpu_pipeline.py needs a CUDA GPU (torch.cuda.is_available() is False); "
                                "nothing measured")
    assert not (ROOT / "nowhere").exists()
