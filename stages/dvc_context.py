"""What DVC tells a stage, in one place: the stage's name, the repository, the experiment and its
commit (from DVC's environment), and what dvc.yaml declares for the stage. The package gets these
as arguments (``lgseg.tracking.RunContext``) and reads no DVC variable itself."""

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


def stage_spec(stage: str) -> dict:
    """From the stage's entry in dvc.yaml: the ``params`` it reads, its ``metrics`` files and its
    ``small`` files (outputs DVC leaves to git, ``cache: false``: curves, per-class tables)."""
    spec = (yaml.safe_load(PIPELINE.read_text()) or {}).get("stages", {}).get(stage, {}) if PIPELINE.is_file() else {}

    def names(key, uncached_only=False):
        return [next(iter(e)) if isinstance(e, dict) else e for e in spec.get(key, [])
                if not uncached_only or (isinstance(e, dict) and next(iter(e.values())).get("cache") is False)]

    return {"params": names("params"), "metrics": names("metrics"), "small": names("outs", uncached_only=True)}


def run_context(stage: str, params: list[str]):
    """This stage execution as the tracker needs it."""
    from lgseg.tracking import RunContext

    return RunContext(stage=stage, root=repo_root(), group=experiment_name(), commit=git_commit(),
                      source=f"stages/{stage.replace('-', '_')}.py", params=tuple(params))
