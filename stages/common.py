"""What every stage script shares: reading its params. Stages run from the repo root (DVC's wdir)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

PARAMS = Path("params.yaml")


def load_params() -> dict:
    with open(PARAMS) as f:
        return yaml.safe_load(f)


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


def run(main) -> None:
    """Run a stage's main; user errors print one clear line instead of a traceback."""
    import logging

    from lgseg.errors import LgsegError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except LgsegError as e:
        print(f"{Path(sys.argv[0]).stem}: error: {e}", file=sys.stderr)
        sys.exit(1)
