"""What DVC tells a stage, in one place: the stage's name, the repository, the experiment and its
commit (from DVC's environment), and what dvc.yaml declares for the stage and for the stages
upstream of it. The package gets these as arguments (``lgseg.tracking.RunContext``) and reads no
DVC variable itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

PIPELINE = Path("dvc.yaml")


def stage_name() -> str:
    """DVC_STAGE under DVC; run by hand, the script's name (``text_embed.py`` -> ``text-embed``)."""
    return os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem.replace("_", "-")


def repo_root() -> Path:
    """The repository the user works in: DVC sets DVC_ROOT to it also inside the copies that
    ``--temp`` and queued experiments run in, so all runs land in one store."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def experiment_name() -> str:
    return os.environ.get("DVC_EXP_NAME") or "workspace"


def git_commit(cwd: Path | None = None) -> str | None:
    if os.environ.get("DVC_EXP_BASELINE_REV"):  # experiment copies: the commit they branch from
        return os.environ["DVC_EXP_BASELINE_REV"]
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _stages() -> dict:
    return (yaml.safe_load(PIPELINE.read_text()) or {}).get("stages") or {} if PIPELINE.is_file() else {}


def _names(spec: dict, key: str, uncached_only: bool = False) -> list[str]:
    """The paths of a stage's ``deps``, ``outs``, ``metrics`` or ``params`` entries (an entry is a
    path, or one path with its options)."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in spec.get(key) or []
            if not uncached_only or (isinstance(e, dict) and (next(iter(e.values())) or {}).get("cache") is False)]


def stage_spec(stage: str) -> dict:
    """From the stage's entry in dvc.yaml: the ``params`` it reads, its ``metrics`` files and its
    ``small`` files (outputs DVC leaves to git, ``cache: false``: curves, per-class tables)."""
    spec = _stages().get(stage) or {}
    return {"params": _names(spec, "params"), "metrics": _names(spec, "metrics"),
            "small": _names(spec, "outs", uncached_only=True)}


def _overlap(a: str, b: str) -> bool:
    """One path is the other or inside it (a dep ``data/gt/val`` reads the out ``data/gt``)."""
    a, b = a.strip("/").removeprefix("./"), b.strip("/").removeprefix("./")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def upstream_stages(stage: str) -> list[str]:
    """The stages whose outputs ``stage`` reads, directly or through others, in dvc.yaml's order.
    DVC brings each of them up to date (runs or restores it) before ``stage`` starts."""
    stages = _stages()
    produced = {name: _names(s or {}, "outs") + _names(s or {}, "metrics") + _names(s or {}, "plots")
                for name, s in stages.items()}
    found, todo = set(), [stage]
    while todo:
        deps = _names(stages.get(todo.pop()) or {}, "deps")
        for name, outs in produced.items():
            if name not in found and name != stage and any(_overlap(d, o) for d in deps for o in outs):
                found.add(name)
                todo.append(name)
    return [name for name in stages if name in found]


def run_context(stage: str):
    """This stage execution as the tracker needs it: who runs, and the files of this stage and of
    the stages upstream of it, as dvc.yaml declares them."""
    from lgseg.tracking import RunContext, StageFiles

    spec = stage_spec(stage)
    upstream = []
    for name in upstream_stages(stage):
        s = stage_spec(name)
        upstream.append(StageFiles(name, tuple(s["metrics"]), tuple(s["small"])))
    return RunContext(stage=stage, root=repo_root(), group=experiment_name(), commit=git_commit(),
                      source=f"stages/{stage.replace('-', '_')}.py", params=tuple(spec["params"]),
                      metrics=tuple(spec["metrics"]), small=tuple(spec["small"]), upstream=tuple(upstream))
