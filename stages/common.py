"""What every stage script shares: its params, its MLflow run, its exit. Stages run from the repo
root (DVC's wdir); dvc.yaml says which params a stage reads and which metric and small files it
writes, and the MLflow run logs exactly those."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import yaml

PARAMS, PIPELINE = Path("params.yaml"), Path("dvc.yaml")


def load_params() -> dict:
    with open(PARAMS) as f:
        return yaml.safe_load(f)


def stage_spec(stage: str) -> dict:
    """From the stage's entry in dvc.yaml: the ``params`` it reads, its ``metrics`` files and its
    ``small`` files (outputs DVC leaves to git, ``cache: false``: curves, per-class tables)."""
    spec = (yaml.safe_load(PIPELINE.read_text()) or {}).get("stages", {}).get(stage, {}) if PIPELINE.is_file() else {}

    def names(key, uncached_only=False):
        return [next(iter(e)) if isinstance(e, dict) else e for e in spec.get(key, [])
                if not uncached_only or (isinstance(e, dict) and next(iter(e.values())).get("cache") is False)]

    return {"params": names("params"), "metrics": names("metrics"), "small": names("outs", uncached_only=True)}


def write_final_metrics(path: str, result: dict) -> None:
    """The last epoch's numbers (and the best validation mIoU) as the stage's DVC metrics file."""
    import math

    from lgseg.fileio import write_json

    def defined(v) -> bool:  # epochs without validation carry NaN, which JSON cannot hold
        return not (isinstance(v, float) and math.isnan(v))

    history = result["history"]
    vals = [h["val_miou"] for h in history if defined(h.get("val_miou", math.nan))]
    write_json(path, {**{k: v for k, v in history[-1].items() if defined(v)},
                      "best_val_miou": max(vals) if vals else None,
                      "epochs": result["epochs"], "steps": result["steps"]})


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, `kill`, `dvc queue kill`) as an exception, so the run ends as KILLED."""


def _on_sigterm(main_pid: int):
    def handler(signum, frame):
        if os.getpid() != main_pid:  # a forked data-loader worker: die as the signal means
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    return handler


def run(main, check_params: bool = True) -> None:
    """Run ``main(params, tracker)`` as one MLflow run; user errors print one clear line, not a traceback.
    ``check_params``: first check the whole params.yaml against its schema (off only for test stages
    whose params are not the project's)."""
    import logging

    from lgseg.errors import LgsegError
    from lgseg.params_schema import params_problems
    from lgseg.tracking import FAILED, FINISHED, KILLED, start_stage_run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stage = os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem.replace("_", "-")
    name = Path(sys.argv[0]).stem
    try:
        params = load_params()
    except (OSError, yaml.YAMLError) as e:
        print(f"{name}: error: cannot read {PARAMS}: {e}", file=sys.stderr)
        sys.exit(1)
    problems = params_problems(params) if check_params else []
    if problems:  # before any work: a bad `dvc exp run -S` fails in seconds, every problem at once
        print("\n".join(f"{name}: error: {PARAMS}: {p}" for p in problems), file=sys.stderr)
        sys.exit(1)
    spec = stage_spec(stage)
    tracker = start_stage_run(stage, params, spec["params"])
    signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    status = FAILED
    try:
        main(params, tracker)
        tracker.log_outputs(spec["metrics"], spec["small"])
        status = FINISHED
    except KeyboardInterrupt:
        status = KILLED
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(143 if isinstance(sys.exc_info()[1], Terminated) else 130)
    except LgsegError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        tracker.end(status)
