"""What every stage script shares: reading its params. Stages run from the repo root (DVC's wdir)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

PARAMS = Path("params.yaml")


def load_params() -> dict:
    with open(PARAMS) as f:
        return yaml.safe_load(f)


def run(main) -> None:
    """Run a stage's main; user errors print one clear line instead of a traceback."""
    from lgseg.errors import LgsegError

    try:
        main()
    except LgsegError as e:
        print(f"{Path(sys.argv[0]).stem}: error: {e}", file=sys.stderr)
        sys.exit(1)
